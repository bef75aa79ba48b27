//! `asya migrate` through the real binary: each upstream-shaped fixture, once migrated,
//! renders to exactly the objects the fixture itself renders to (its golden file), is flat,
//! and migrates to itself a second time.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn asya(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_asya"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run asya");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn render(actor: &Path, case: &Path) -> (i32, String, String) {
    let actor = actor.display().to_string();
    let mut args = vec!["render", "-f", &actor, "--flavors", "flavors"];
    let platform = case.join("platform.yaml").display().to_string();
    if case.join("platform.yaml").exists() {
        args.extend(["--platform", &platform]);
    }
    asya(&args)
}

/// Upstream-shaped golden cases (operator-era shape, upstream spellings) and one flat case.
const CASES: &[&str] = &[
    "seed-002-complete-legacy",
    "legacy-statefulset-fixed-replicas",
    "upstream-sidecar-image-object-legacy-defaults",
    "migrated-legacy-queues-amqp-keda",
];

#[test]
fn migrated_fixtures_render_to_the_same_objects_as_the_originals() {
    for name in CASES {
        let case = root().join("golden").join(name);
        let out = tempfile::tempdir().expect("tempdir");
        let dir = out.path().display().to_string();
        let src = case.join("actor.yaml").display().to_string();
        let (code, _, err) = asya(&["migrate", "-f", &src, "-o", &dir]);
        assert_eq!(code, 0, "{name}: {err}");
        let migrated = out.path().join("actor.yaml");
        let text = std::fs::read_to_string(&migrated).expect("migrated file");

        // Same objects, byte for byte, as the original's golden render.
        let (code, rendered, err) = render(&migrated, &case);
        assert_eq!(
            code, 0,
            "{name}: migrated file does not render: {err}\n{text}"
        );
        let expected = std::fs::read_to_string(case.join("expected.yaml")).expect("golden");
        assert!(
            rendered == expected,
            "{name}: migrated render differs from the original's\n{text}"
        );

        // Flat: no operator-era field is left.
        let v: serde_json::Value = serde_norway::from_str(&text).expect("yaml");
        let spec = &v["spec"];
        for legacy in [
            "/timeout",
            "/socket",
            "/workload/type",
            "/workload/template",
            "/scaling/minReplicas",
            "/scaling/maxReplicas",
            "/workload/pythonExecutable",
        ] {
            assert!(
                spec.pointer(legacy).is_none(),
                "{name}: {legacy} left in\n{text}"
            );
        }
        assert!(spec["actor"].is_string(), "{name}: no spec.actor\n{text}");

        // A second run changes nothing.
        let again = out.path().join("again");
        let again_dir = again.display().to_string();
        let m = migrated.display().to_string();
        let (code, _, err) = asya(&["migrate", "-f", &m, "-o", &again_dir]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("already flat"), "{name}: {err}");
        let twice = std::fs::read_to_string(again.join("actor.yaml")).expect("again");
        assert_eq!(twice, text, "{name}: migrating twice changed the file");
    }
}

#[test]
fn crossplane_era_fields_are_removed_with_their_replacement_named() {
    let src = "golden/upstream-crossplane-fields-error/actor.yaml";
    // As written, render refuses it and says what replaced each field.
    let (code, _, err) = asya(&["render", "-f", src]);
    assert_eq!(code, 1);
    assert!(err.contains("spec.region"), "{err}");

    let (code, migrated, report) = asya(&["migrate", "-f", src]);
    assert_eq!(code, 0, "{report}");
    for note in [
        "needs a human: spec.region (\"eu-west-1\") was removed: moved to the platform's transports.sqs.config.region",
        "needs a human: spec.providerConfigRef",
        "needs a human: spec.overlays ([\"gpu\"]) was removed: replaced by flavors",
        "needs a human: queue names: upstream used asya-<actor>",
        "kedaProtocol: amqp",
    ] {
        assert!(report.contains(note), "missing {note:?} in\n{report}");
    }
    // The file's own comment is kept; the migrated actor renders.
    assert!(
        migrated.starts_with("# An AsyncActor written for upstream's Crossplane-era XRD"),
        "{migrated}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("enhancer.yaml");
    std::fs::write(&file, &migrated).expect("write");
    let (code, objects, err) = asya(&["render", "-f", &file.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(objects.contains("kind: Deployment"), "{objects}");
}

#[test]
fn a_directory_keeps_its_layout_and_other_documents() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let old = tmp.path().join("old/team-a");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(
        old.join("actors.yaml"),
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a, namespace: t}\n\
         spec:\n  workload:\n    type: Deployment\n    template:\n      spec:\n        containers:\n\
         \x20       - name: asya-runtime\n          image: python:3.12-slim\n\
         \x20         env: [{name: ASYA_HANDLER, value: m.f}]\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep-me}\ndata: {k: v}\n",
    )
    .expect("write");
    let src = tmp.path().join("old").display().to_string();
    let dst = tmp.path().join("new").display().to_string();
    let (code, _, err) = asya(&["migrate", "-f", &src, "-o", &dst]);
    assert_eq!(code, 0, "{err}");
    let text =
        std::fs::read_to_string(tmp.path().join("new/team-a/actors.yaml")).expect("layout kept");
    assert!(
        text.contains("kind: ConfigMap") && text.contains("keep-me"),
        "{text}"
    );
    assert!(
        text.contains("handler: m.f") && !text.contains("template:"),
        "{text}"
    );
    assert!(err.contains("ConfigMap: kept as is"), "{err}");
}

#[test]
fn a_field_written_in_both_shapes_is_an_error_with_its_place() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = tmp.path().join("both.yaml");
    std::fs::write(
        &f,
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a}\nspec:\n  actor: a\n\
         \x20 image: i\n  handler: m.f\n  terminationGracePeriodSeconds: 30\n\
         \x20 timeout: {gracefulShutdown: 60}\n",
    )
    .expect("write");
    let (code, out, err) = asya(&["migrate", "-f", &f.display().to_string()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("both.yaml") && err.contains("spec.timeout.gracefulShutdown"),
        "{err}"
    );
    assert!(err.contains("not both"), "{err}");
    assert!(
        out.is_empty(),
        "nothing is written when a file fails: {out}"
    );
}
