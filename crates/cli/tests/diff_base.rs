//! `asya diff --base`: the real `asya` binary against a temporary git repository (real
//! git): flavor impact grouped across actors, added/removed actors and objects, object
//! leaves, text and JSON, git refs and directories as the base, exit codes.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git on PATH");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn actor(name: &str, flavors: &str, extra: &str) -> String {
    format!(
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {{name: {name}, namespace: ml}}\nspec:\n  actor: {name}\n  image: ghcr.io/acme/{name}:1\n  handler: h.run\n  flavors: [{flavors}]\n{extra}"
    )
}

fn flavor(memory: &str) -> String {
    format!(
        "apiVersion: asya.sh/v1alpha1\nkind: Flavor\nmetadata: {{name: big-memory}}\nspec:\n  resources:\n    limits: {{memory: {memory}}}\n"
    )
}

/// A repository whose first commit (tagged `base`) has actors a, b, c (a and b with the
/// flavor at 16Gi, c without), and whose working tree raises the flavor to 24Gi, removes c,
/// adds d and sets an env var on b.
fn repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "platform/flavors/big-memory.yaml", &flavor("16Gi"));
    write(d, "platform/actors/a.yaml", &actor("a", "big-memory", ""));
    write(d, "platform/actors/b.yaml", &actor("b", "big-memory", ""));
    write(d, "platform/actors/c.yaml", &actor("c", "", ""));
    write(d, "README.md", "not an input\n");
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "base"]);
    git(d, &["tag", "base"]);
    write(d, "platform/flavors/big-memory.yaml", &flavor("24Gi"));
    std::fs::remove_file(d.join("platform/actors/c.yaml")).expect("rm");
    write(d, "platform/actors/d.yaml", &actor("d", "", ""));
    write(
        d,
        "platform/actors/b.yaml",
        &actor(
            "b",
            "big-memory",
            "  env: [{name: LOG_LEVEL, value: debug}]\n",
        ),
    );
    tmp
}

fn asya(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_asya"))
        .args(args)
        .current_dir(dir)
        .env_remove("ASYA_PLATFORM")
        .output()
        .expect("asya binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf8"),
        String::from_utf8(out.stderr).expect("utf8"),
    )
}

const ARGS: [&str; 4] = ["-f", "actors/", "--flavors", "flavors/"];

fn diff(dir: &Path, base: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["diff", "--base", base];
    args.extend(ARGS);
    args.extend(extra);
    asya(dir, &args)
}

#[test]
fn diff_base_git_ref_reports_flavor_impact_and_actor_changes_as_text() {
    let repo = repo();
    let dir = repo.path().join("platform");
    let (code, out, err) = diff(&dir, "base", &[]);
    assert_eq!(code, 1, "changes exit 1; stderr: {err}");
    assert!(out.starts_with("asya diff base → working tree\n"), "{out}");
    assert!(
        out.contains("actors: 2 changed, 1 added, 1 removed, 0 unchanged;"),
        "{out}"
    );
    assert!(
        out.contains(
            "flavor `big-memory` changed `spec.resources.limits.memory` 16Gi → 24Gi in 2 actors: ml/a, ml/b\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "the actor changed `spec.env[name=LOG_LEVEL].value` (unset) → debug in 1 actor: ml/b\n"
        ),
        "{out}"
    );
    // The object leaf behind the spec leaf, addressed by container name.
    assert!(
        out.contains(
            "spec.template.spec.containers[name=asya-runtime].resources.limits.memory: 16Gi → 24Gi"
        ),
        "{out}"
    );
    assert!(
        out.contains("  ml/c removed (actors/c.yaml)\n    - Deployment/c\n"),
        "{out}"
    );
    assert!(
        out.contains("  ml/d added (actors/d.yaml)\n    + Deployment/d\n"),
        "{out}"
    );
    // The temporary checkout of the base never shows, and is gone afterwards.
    assert!(!out.contains("asya-diff-base-"), "{out}");
    let tmpdir = tempfile::tempdir().expect("TMPDIR");
    let out = Command::new(env!("CARGO_BIN_EXE_asya"))
        .args(["diff", "--base", "base"])
        .args(ARGS)
        .current_dir(&dir)
        .env("TMPDIR", tmpdir.path())
        .output()
        .expect("asya binary");
    assert_eq!(out.status.code(), Some(1));
    let left: Vec<_> = std::fs::read_dir(tmpdir.path())
        .expect("read TMPDIR")
        .collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

#[test]
fn diff_base_json_is_stable_and_complete() {
    let repo = repo();
    let dir = repo.path().join("platform");
    let (code, out, err) = diff(&dir, "base", &["-o", "json"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(v["base"], "base");
    assert_eq!(
        v["summary"]["actors"],
        serde_json::json!({"added": 1, "removed": 1, "changed": 2, "unchanged": 0})
    );
    let causes = v["causes"].as_array().expect("causes");
    assert_eq!(
        causes[0],
        serde_json::json!({
            "origin": {"from": "flavor", "name": "big-memory"},
            "path": "spec.resources.limits.memory",
            "old": "16Gi", "new": "24Gi",
            "actors": ["ml/a", "ml/b"]
        })
    );
    let names: Vec<(&str, &str)> = v["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .map(|a| (a["actor"].as_str().unwrap(), a["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("ml/a", "changed"),
            ("ml/b", "changed"),
            ("ml/c", "removed"),
            ("ml/d", "added")
        ]
    );
    let a = &v["actors"][0];
    assert_eq!(a["source"], "actors/a.yaml");
    let deployment = a["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["object"] == "Deployment/a")
        .expect("Deployment/a changed");
    assert_eq!(deployment["change"], "changed");
    assert!(
        deployment["leaves"]
            .as_array()
            .expect("leaves")
            .iter()
            .any(|l| l["path"]
                == "spec.template.spec.containers[name=asya-runtime].resources.limits.memory"
                && l["old"] == "16Gi"
                && l["new"] == "24Gi"),
        "{deployment}"
    );
    // Same inputs, same bytes.
    let (_, again, _) = diff(&dir, "base", &["-o", "json"]);
    assert_eq!(out, again);
}

#[test]
fn diff_base_directory_and_no_change_exit_zero() {
    let repo = repo();
    let dir = repo.path().join("platform");
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "head"]);
    // HEAD against the clean working tree: nothing changes.
    let (code, out, err) = diff(&dir, "HEAD", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("actors: 0 changed, 0 added, 0 removed, 3 unchanged;"),
        "{out}"
    );
    // A directory as the base: an old checkout made with git worktree.
    let old = repo.path().join("old");
    git(
        repo.path(),
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            old.to_str().unwrap(),
            "base",
        ],
    );
    let (code, out, err) = diff(&dir, "../old/platform", &["-o", "json"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["base"], "../old/platform");
    assert_eq!(v["causes"][0]["new"], "24Gi");
    assert_eq!(v["summary"]["actors"]["removed"], 1);
}

#[test]
fn diff_base_names_actors_changed_by_the_platform_alone() {
    let repo = repo();
    let dir = repo.path().join("platform");
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/asya/files/platform.yaml"),
    )
    .expect("shipped platform");
    // The file does not exist at the base: the base's error is named, without temp paths.
    write(&dir, "platform.yaml", &shipped);
    let (code, _, err) = diff(&dir, "base", &["--platform", "platform.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("error: base: platform.yaml"), "{err}");
    assert!(!err.contains("asya-diff-base-"), "{err}");
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "platform"]);
    let newer = shipped.replace("asya-sidecar:0.1.0", "asya-sidecar:0.2.0");
    assert_ne!(newer, shipped, "the shipped platform names sidecar 0.1.0");
    write(&dir, "platform.yaml", &newer);
    let (code, out, err) = diff(&dir, "HEAD", &["--platform", "platform.yaml"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("platform, compositions or actor metadata changed the objects of 3 actors with no spec change: ml/a, ml/b, ml/d\n"),
        "{out}"
    );
    assert!(
        out.contains("spec.template.spec.containers[name=asya-sidecar].image: ghcr.io/asya-sh/asya-sidecar:0.1.0 → ghcr.io/asya-sh/asya-sidecar:0.2.0"),
        "{out}"
    );
}

#[test]
fn diff_base_rejects_an_unknown_ref_and_stdin() {
    let repo = repo();
    let dir = repo.path().join("platform");
    let (code, out, err) = diff(&dir, "no-such-branch", &[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("--base no-such-branch: expected an existing directory or a git ref"),
        "{err}"
    );
    let (code, _, err) = asya(&dir, &["diff", "--base", "base", "-f", "-"]);
    assert_eq!(code, 2);
    assert!(err.contains("stdin has no base revision"), "{err}");
    let (code, _, err) = asya(&dir, &["diff", "-f", "actors/", "-o", "json"]);
    assert_eq!(code, 2);
    assert!(err.contains("expected --base"), "{err}");
}
