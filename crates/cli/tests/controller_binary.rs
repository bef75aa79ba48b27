//! `asya controller` as a user runs it: the real binary against the real API
//! server and RabbitMQ. Needs `ASYA_TEST_KUBECONFIG` and `ASYA_TEST_RABBITMQ_URL`
//! (set by `tests/run.sh`); skips with a message otherwise.
#![cfg(feature = "controller")]

use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;
use common::kubectl;

fn env(name: &str) -> Option<String> {
    let v = std::env::var(name).ok();
    if v.is_none() {
        eprintln!("skipped: {name} is not set (run via tests/run.sh)");
    }
    v
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_logs_and_finishes_deleting_an_actor_through_its_finalizer() {
    let (Some(k), Some(amqp)) = (env("ASYA_TEST_KUBECONFIG"), env("ASYA_TEST_RABBITMQ_URL")) else {
        return;
    };
    let bin = env!("CARGO_BIN_EXE_asya");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let ns = format!("cli-ctl-{nanos}");
    let dir = tempfile::tempdir().expect("tempdir");

    let crds = Command::new(bin).arg("crd").output().expect("asya crd");
    let (ok, text) = kubectl(
        &k,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &String::from_utf8_lossy(&crds.stdout),
    );
    assert!(ok, "{text}");
    let (ok, text) = kubectl(&k, &["create", "namespace", &ns], "");
    assert!(ok, "{text}");

    let platform = dir.path().join("platform.yaml");
    std::fs::write(
        &platform,
        format!("transports:\n  rabbitmq:\n    enabled: true\n    type: rabbitmq\n    config:\n      url: {amqp}\n"),
    )
    .expect("platform file");
    let log = dir.path().join("controller.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let _controller = KillOnDrop(
        Command::new(bin)
            .args(["controller", "--kubeconfig", &k, "--namespace", &ns])
            .args(["--metrics-addr", "127.0.0.1:0", "--platform"])
            .arg(&platform)
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("asya controller"),
    );

    let actor = format!(
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {{name: hello, namespace: {ns}}}\nspec: {{actor: hello, image: python:3.12-slim, handler: h.run}}\n"
    );
    let (ok, text) = kubectl(&k, &["apply", "-f", "-"], &actor);
    assert!(ok, "{text}");
    let finalizers = || {
        kubectl(
            &k,
            &[
                "get",
                "asyncactor",
                "hello",
                "-n",
                &ns,
                "-o",
                "jsonpath={.metadata.finalizers}",
            ],
            "",
        )
    };
    wait_until("the controller adds its finalizer", || {
        finalizers().1.contains("asya.sh/queue")
    });

    let (ok, text) = kubectl(
        &k,
        &["delete", "asyncactor", "hello", "-n", &ns, "--wait=false"],
        "",
    );
    assert!(ok, "{text}");
    wait_until("the actor is gone (finalizer removed)", || {
        let (ok, text) = finalizers();
        !ok && text.contains("NotFound")
    });
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("queue deleted"),
        "the controller's log lacks the cleanup line:\n{logged}"
    );
    // Not a terminal: JSON by default, one object per line, no colour codes,
    // and one line per reconcile outcome with actor, namespace, duration and result.
    assert!(
        !logged.contains('\u{1b}'),
        "ANSI codes off a terminal:\n{logged}"
    );
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "reconciled"
            && l["actor"] == "hello"
            && l["namespace"] == ns.as_str()
            && l["result"] == "ok"
            && l["duration_ms"].is_u64()),
        "no reconcile outcome line:\n{logged}"
    );
    let _ = kubectl(&k, &["delete", "namespace", &ns, "--wait=false"], "");
}
