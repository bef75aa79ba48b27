//! Inputs from outside the repository, as users really hand them over: concatenated YAML on
//! stdin, hostile documents, the seed's platform values, Argo CD's plugin environment. Each
//! runs the real `asya` binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `asya args` with `stdin`, extra env, in `dir`; returns (exit code, stdout, stderr).
fn asya(args: &[&str], stdin: &str, env: &[(&str, &str)], dir: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asya"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn asya");
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.to_string();
    // Written from a thread: a large input must not deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn concatenated_example_files_are_rejected_not_half_rendered() {
    // `cat examples/*.yaml | asya render -f -`: files without a leading `---` merge into one
    // document with repeated keys. It used to render 2 of the 5 actors and exit 0.
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    let (code, out, err) = asya(&["render", "-f", "-"], &text, &[], &root());
    if code == 0 {
        // Every file starts with `---`: then every actor must come out.
        let actors = text.matches("kind: AsyncActor").count();
        let workloads =
            out.matches("\nkind: Deployment").count() + out.matches("\nkind: StatefulSet").count();
        assert_eq!(workloads, actors, "{out}");
    } else {
        assert!(err.contains("expected each key once"), "{err}");
        assert!(out.is_empty());
    }
}

#[test]
fn alias_bombs_and_deep_nesting_fail_fast_with_a_clear_error() {
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{p}"); 9].join(", ")
        ));
    }
    let (code, _, err) = asya(&["validate", "-f", "-"], &bomb, &[], &root());
    assert_eq!(code, 1);
    assert!(err.contains("after expanding aliases"), "{err}");

    let deep = format!("spec: {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
    let (code, _, err) = asya(&["validate", "-f", "-"], &deep, &[], &root());
    assert_eq!(code, 1);
    assert!(
        err.contains("<stdin>:1:") && err.contains("levels of nesting"),
        "{err}"
    );
}

#[test]
fn seed_004_transport_without_type_renders_that_transport() {
    // The Helm values table of seed 004: transports keyed by name, no `type`.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("platform.yaml"),
        "transports:\n  rabbitmq:\n    enabled: false\n  sqs:\n    enabled: true\n    config:\n      region: eu-west-1\n      accountId: \"123456789012\"\n",
    )
    .expect("write");
    let actor = "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: echo, namespace: demo}\nspec: {actor: echo, image: python:3.12-slim, handler: echo.run}\n";
    let (code, out, err) = asya(
        &["render", "-f", "-", "--platform", "platform.yaml"],
        actor,
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("name: ASYA_TRANSPORT\n          value: sqs"),
        "{out}"
    );
    assert!(out.contains("type: aws-sqs-queue"), "{out}");
    assert!(!out.contains("rabbitmq"), "{out}");
}

#[test]
fn argo_cd_plugin_environment_sets_namespace_flavors_and_platform() {
    // A directory laid out like an Argo CD source: actors, flavors, a platform file.
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path();
    std::fs::create_dir_all(src.join("actors")).expect("mkdir");
    std::fs::write(
        src.join("actors/echo.yaml"),
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: echo}\nspec: {actor: echo, image: python:3.12-slim, handler: echo.run, flavors: [tiny]}\n",
    )
    .expect("write");
    std::fs::create_dir_all(src.join("platform")).expect("mkdir");
    std::fs::write(
        src.join("platform/flavors.yaml"),
        "apiVersion: asya.sh/v1alpha1\nkind: Flavor\nmetadata: {name: tiny}\nspec: {resources: {limits: {memory: 123Mi}}}\n",
    )
    .expect("write");
    std::fs::write(src.join("platform/platform.yaml"), "labels: {team: ml}\n").expect("write");
    let env = [
        ("ARGOCD_APP_NAMESPACE", "ml-prod"),
        ("ARGOCD_APP_NAME", "actors"),
        ("ARGOCD_ENV_ASYA_FLAVORS", "platform/flavors.yaml"),
        ("ARGOCD_ENV_ASYA_PLATFORM", "platform/platform.yaml"),
    ];
    let (code, out, err) = asya(&["render", "-f", "actors"], "", &env, src);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "nothing but objects, and no noise: {err}");
    assert!(out.contains("namespace: ml-prod"), "{out}");
    assert!(out.contains("memory: 123Mi"), "{out}");
    assert!(out.contains("team: ml"), "{out}");
    let docs = asya_render::parse_stream("out", &out).expect("stdout holds only objects");
    assert!(docs.iter().all(|(_, d)| d["kind"].is_string()));

    // argocd/plugin.yaml's command, `asya render -f .`: the whole source is walked (the
    // Flavor is found there), the platform file inside it is not read as an input.
    let env_dot = [
        ("ARGOCD_APP_NAMESPACE", "ml-prod"),
        ("ARGOCD_ENV_ASYA_PLATFORM", "platform/platform.yaml"),
    ];
    let (code, dot, err) = asya(&["render", "-f", "."], "", &env_dot, src);
    assert_eq!(code, 0, "{err}");
    assert_eq!(dot, out);
    // The repo-server sidecar's ASYA_PLATFORM applies when no parameter names a platform.
    let abs = src.join("platform/platform.yaml").display().to_string();
    let env_sidecar = [
        ("ARGOCD_APP_NAMESPACE", "ml-prod"),
        ("ASYA_PLATFORM", abs.as_str()),
    ];
    let (code, side, err) = asya(&["render", "-f", "."], "", &env_sidecar, src);
    assert_eq!(code, 0, "{err}");
    assert_eq!(side, out);

    // An error: nothing on stdout, the reason on stderr, non-zero exit.
    let env_bad = [("ARGOCD_ENV_ASYA_FLAVORS", "platform/missing.yaml")];
    let (code, out, err) = asya(&["render", "-f", "actors"], "", &env_bad, src);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("missing.yaml"), "{err}");
}

#[test]
fn golden_manifests_for_users_ci_are_written_and_checked() {
    let dir = tempfile::tempdir().expect("tmp");
    let repo = dir.path();
    std::fs::create_dir_all(repo.join("actors")).expect("mkdir");
    let actor = |name: &str| {
        format!(
            "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {{name: {name}, namespace: ml}}\nspec: {{actor: {name}, image: python:3.12-slim, handler: h.run, flavors: [small]}}\n"
        )
    };
    std::fs::write(repo.join("actors/a.yaml"), actor("a")).expect("write");
    std::fs::write(repo.join("actors/b.yaml"), actor("b")).expect("write");
    let flavor = |mem: &str| {
        format!(
            "apiVersion: asya.sh/v1alpha1\nkind: Flavor\nmetadata: {{name: small}}\nspec: {{resources: {{limits: {{memory: {mem}}}}}}}\n"
        )
    };
    std::fs::write(repo.join("flavor.yaml"), flavor("1Gi")).expect("write");
    let run = |args: &[&str]| {
        let mut all = vec!["render", "-f", "actors", "--flavors", "flavor.yaml"];
        all.extend_from_slice(args);
        asya(&all, "", &[], repo)
    };

    let (code, out, err) = run(&["--out-dir", "rendered"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("6 objects"), "{out}");
    let deployment = repo.join("rendered/ml/a/deployment-a.yaml");
    assert!(deployment.exists());
    // The files hold exactly what `asya render` prints.
    let (_, printed, _) = run(&[]);
    let file = std::fs::read_to_string(&deployment).expect("read");
    assert!(printed.contains(&file));

    let (code, out, _) = run(&["--check", "rendered"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("6 objects up to date"), "{out}");

    // A flavor change: both actors' Deployments differ, with the flavor named.
    std::fs::write(repo.join("flavor.yaml"), flavor("2Gi")).expect("write");
    let (code, out, _) = run(&["--check", "rendered"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("--- a/ml/a/deployment-a.yaml")
            && out.contains("+++ b/ml/a/deployment-a.yaml"),
        "{out}"
    );
    assert!(
        out.contains("-            memory: 1Gi") && out.contains("+            memory: 2Gi"),
        "{out}"
    );
    assert!(
        out.contains("rendered from actors/b.yaml (flavors small)"),
        "{out}"
    );
    assert!(out.contains("2 of 6 objects differ"), "{out}");

    // An actor removed: its files are reported, then removed by --out-dir.
    std::fs::remove_file(repo.join("actors/b.yaml")).expect("rm");
    let (code, out, _) = run(&["--check", "rendered"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("ml/b/deployment-b.yaml: no longer rendered"),
        "{out}"
    );
    let (code, out, _) = run(&["--out-dir", "rendered"]);
    assert_eq!(code, 0);
    assert!(out.contains("3 removed"), "{out}");
    let (code, _, _) = run(&["--check", "rendered"]);
    assert_eq!(code, 0);
}

#[test]
fn krm_function_renders_actors_and_passes_other_items_through() {
    let list = r#"
apiVersion: config.kubernetes.io/v1
kind: ResourceList
functionConfig:
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: asya}
  data: {namespace: team-a}
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: unrelated, annotations: {config.kubernetes.io/path: cm.yaml}}
  data: {k: v}
- apiVersion: asya.sh/v1alpha1
  kind: Flavor
  metadata: {name: small}
  spec: {resources: {limits: {memory: 1Gi}}}
- apiVersion: asya.sh/v1alpha1
  kind: AsyncActor
  metadata: {name: echo, annotations: {config.kubernetes.io/path: actors/echo.yaml}}
  spec: {actor: echo, image: python:3.12-slim, handler: echo.run, flavors: [small]}
"#;
    let (code, out, err) = asya(&["krm"], list, &[], &root());
    assert_eq!(code, 0, "{err}");
    let docs = asya_render::parse_stream("out", &out).expect("yaml");
    let rl = &docs[0].1;
    assert_eq!(rl["kind"], "ResourceList");
    let kinds: Vec<&str> = rl["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "TriggerAuthentication",
            "ScaledObject"
        ]
    );
    assert_eq!(rl["items"][1]["metadata"]["namespace"], "team-a");
    assert!(rl.get("results").is_none(), "{out}");

    // A broken actor: an error result with field path and file, exit 1, items still printed.
    let broken = list.replace("handler: echo.run", "handler: not-a-handler");
    let (code, out, _) = asya(&["krm"], &broken, &[], &root());
    assert_eq!(code, 1);
    let rl = asya_render::parse_stream("out", &out)
        .expect("yaml")
        .remove(0)
        .1;
    let r = &rl["results"][0];
    assert_eq!(r["severity"], "error");
    assert_eq!(r["field"]["path"], "spec.handler");
    assert_eq!(r["file"]["path"], "actors/echo.yaml");
    assert!(
        r["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expected module.function")
    );
}
