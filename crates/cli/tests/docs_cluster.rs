//! The cluster walk-through of docs/status.md and docs/data-scientist.md, for real: the
//! `asya` binary's controller against the loopback API server and RabbitMQ, the docs'
//! example actors applied with kubectl, pod states set through the pods' `/status` as a
//! kubelet would (the loopback server has none). Every phase, reason and message the docs
//! show for these actors must be what the controller writes, and the docs must still show
//! it. Needs `ASYA_TEST_KUBECONFIG` and `ASYA_TEST_RABBITMQ_URL` (set by `tests/run.sh`);
//! skips with a message otherwise.
#![cfg(feature = "controller")]

use std::path::{Path, PathBuf};
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

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn strip_key(v: &mut serde_json::Value, key: &str) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|v| strip_key(v, key));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| strip_key(v, key)),
        _ => {}
    }
}

struct Walk {
    k: String,
    ns: String,
}

impl Walk {
    fn kubectl(&self, args: &[&str], stdin: &str) -> String {
        let (ok, text) = kubectl(&self.k, args, stdin);
        assert!(ok, "kubectl {args:?}: {text}");
        text
    }

    /// `phase|condition type|status|reason|message` of one condition of `actor`.
    fn condition(&self, actor: &str, condition: &str) -> String {
        let path = format!(
            "jsonpath={{.status.phase}}|{{range .status.conditions[?(@.type==\"{condition}\")]}}{{.type}}|{{.status}}|{{.reason}}|{{.message}}{{end}}"
        );
        kubectl(
            &self.k,
            &["get", "asyncactor", actor, "-n", &self.ns, "-o", &path],
            "",
        )
        .1
    }

    /// Waits until `actor` is in `phase` with `condition` = `reason`, whose message holds
    /// `message` (the docs' text, namespace `ml` replaced); returns the message.
    fn expect(&self, actor: &str, phase: &str, condition: &str, reason: &str, message: &str) {
        let message = message.replace("-ml-", &format!("-{}-", self.ns));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let got = self.condition(actor, condition);
            let parts: Vec<&str> = got.splitn(5, '|').collect();
            if parts.len() == 5
                && parts[0] == phase
                && parts[3] == reason
                && parts[4].contains(&message)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{actor}: expected phase {phase}, {condition} {reason} with {message:?}; got {got}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn pod(&self, actor: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (_, name) = kubectl(
                &self.k,
                &[
                    "get",
                    "pods",
                    "-n",
                    &self.ns,
                    "-l",
                    &format!("asya.sh/actor={actor}"),
                    "-o",
                    "jsonpath={.items[0].metadata.name}",
                ],
                "",
            );
            if !name.trim().is_empty() && !name.contains("error") {
                return name.trim().to_string();
            }
            assert!(Instant::now() < deadline, "no pod for {actor}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn set_runtime_waiting(&self, pod: &str, reason: &str, message: &str) {
        let patch = serde_json::json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {"name": "asya-runtime", "ready": false, "restartCount": 4, "image": "x", "imageID": "",
                 "state": {"waiting": {"reason": reason, "message": message}}},
                {"name": "asya-sidecar", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"running": {}}}]}});
        self.kubectl(
            &[
                "patch",
                "pod",
                pod,
                "-n",
                &self.ns,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch.to_string(),
            ],
            "",
        );
    }
}

/// Deletes the walk's actors while the controller still runs (it removes their queues and
/// finalizers), then the namespace; on a failed test too. Declared after the controller so
/// that it drops first.
struct Cleanup<'a>(&'a Walk);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let (k, ns) = (&self.0.k, &self.0.ns);
        let _ = kubectl(
            k,
            &["delete", "asyncactors", "--all", "-n", ns, "--wait=false"],
            "",
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let (ok, names) = kubectl(k, &["get", "asyncactors", "-n", ns, "-o", "name"], "");
            if ok && names.trim().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = kubectl(k, &["delete", "namespace", ns, "--wait=false"], "");
        // The library's Flavors are cluster-scoped: leave none behind for the chart tests,
        // which install the same names through Helm.
        let flavors = repo_root().join("flavors").display().to_string();
        let _ = kubectl(
            k,
            &[
                "delete",
                "-f",
                &flavors,
                "--ignore-not-found",
                "--wait=false",
            ],
            "",
        );
    }
}

#[test]
fn the_status_walk_through_of_the_docs_is_what_the_controller_writes() {
    let (Some(k), Some(amqp)) = (env("ASYA_TEST_KUBECONFIG"), env("ASYA_TEST_RABBITMQ_URL")) else {
        return;
    };
    let root = repo_root();
    let docs = ["docs/status.md", "docs/data-scientist.md"]
        .map(|d| std::fs::read_to_string(root.join(d)).expect("doc"))
        .join("\n");
    let bin = env!("CARGO_BIN_EXE_asya");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let w = Walk {
        k: k.clone(),
        ns: format!("docs-walk-{nanos}"),
    };
    let crds = Command::new(bin).arg("crd").output().expect("asya crd");
    w.kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &String::from_utf8_lossy(&crds.stdout),
    );
    // KEDA's CRDs as tests/k8s/crds/keda has them, less the CEL rules 1.20 rejects.
    let mut keda = Vec::new();
    for f in ["scaledobjects", "triggerauthentications"] {
        let text =
            std::fs::read_to_string(root.join(format!("tests/k8s/crds/keda/keda.sh_{f}.yaml")))
                .expect("KEDA CRD");
        let mut v: serde_json::Value = serde_norway::from_str(&text).expect("KEDA CRD YAML");
        strip_key(&mut v, "x-kubernetes-validations");
        keda.push(v);
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": keda});
    w.kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &list.to_string(),
    );
    w.kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &root.join("flavors").display().to_string(),
        ],
        "",
    );
    w.kubectl(&["create", "namespace", &w.ns], "");
    // The KEDA secret a platform engineer provides (docs/status.md says so); without it
    // every scaled RabbitMQ actor is Degraded with SecretMissing.
    w.kubectl(
        &[
            "create",
            "secret",
            "generic",
            "rabbitmq-keda-secret",
            "-n",
            &w.ns,
            "--from-literal=managementUrl=http://guest:guest@127.0.0.1:15672/%2f",
        ],
        "",
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let platform = dir.path().join("platform.yaml");
    std::fs::write(
        &platform,
        format!("transports:\n  rabbitmq:\n    enabled: true\n    type: rabbitmq\n    config:\n      url: {amqp}\n"),
    )
    .expect("platform file");
    let log = std::fs::File::create(dir.path().join("controller.log")).expect("log");
    let _controller = KillOnDrop(
        Command::new(bin)
            .args(["controller", "--kubeconfig", &k, "--namespace", &w.ns])
            .args(["--metrics-addr", "127.0.0.1:0", "--platform"])
            .arg(&platform)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("asya controller"),
    );
    let _cleanup = Cleanup(&w);
    for f in [
        "docs/examples/sentiment.yaml",
        "docs/examples/errors/two-gpus.yaml",
        "docs/examples/errors/cluster-failures.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(f))
            .expect("example")
            .replace("namespace: ml", &format!("namespace: {}", w.ns));
        w.kubectl(&["apply", "-f", "-"], &text);
    }

    // (actor, phase, condition, reason, message as the docs show it)
    let shown = |m: &str| {
        assert!(docs.contains(m), "the docs no longer show {m:?}");
        m.to_string()
    };
    w.expect(
        "sentiment",
        "Creating",
        "TransportReady",
        "QueueReady",
        &shown("queue asya-ml-sentiment exists on rabbitmq"),
    );
    w.expect(
        "sentiment",
        "Creating",
        "WorkloadReady",
        "PodsNotReady",
        &shown("Deployment sentiment: 0/1 pods ready, 1 pending"),
    );
    w.expect(
        "sentiment",
        "Creating",
        "ScalingReady",
        "WaitingForKeda",
        &shown(
            "ScaledObject sentiment is applied; KEDA has not reported on it yet (is KEDA running?)",
        ),
    );
    w.expect("two-gpus", "Invalid", "WorkloadReady", "RenderInvalid", &shown("spec.nodeSelector.nvidia.com/gpu.product: flavors \"gpu-t4\" and \"gpu-a100\" both set this value"));
    w.expect(
        "two-gpus",
        "Invalid",
        "TransportReady",
        "RenderInvalid",
        &shown("not reconciled yet (see WorkloadReady)"),
    );
    w.expect(
        "missing-flavor",
        "Invalid",
        "WorkloadReady",
        "RenderInvalid",
        &shown("spec.flavors[0]: expected a known flavor, \"gpu-h100\" not found"),
    );
    w.expect("bad-selector", "Invalid", "WorkloadReady", "ApplyRejected", &shown("the API server rejected Deployment bad-selector: spec.template.spec.nodeSelector: Invalid value: \"bad key!\""));

    let columns = w.kubectl(&["get", "asyncactors", "-n", &w.ns], "");
    let header = columns.lines().next().unwrap_or("");
    let words: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "NAME",
            "STATUS",
            "RUNNING",
            "PENDING",
            "FAILING",
            "MIN",
            "MAX",
            "LAST-SCALE",
            "AGE"
        ]
    );
    assert!(
        docs.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == words),
        "the docs show no header like {header:?}"
    );

    let pod = w.pod("sentiment");
    w.set_runtime_waiting(
        &pod,
        "CrashLoopBackOff",
        "back-off 1m20s restarting failed container=asya-runtime",
    );
    w.expect("sentiment", "RuntimeError", "WorkloadReady", "PodsFailing", &shown("container asya-runtime is in CrashLoopBackOff: back-off 1m20s restarting failed container=asya-runtime"));
    w.set_runtime_waiting(&pod, "ImagePullBackOff", "Back-off pulling image");
    w.expect(
        "sentiment",
        "ImagePullError",
        "WorkloadReady",
        "PodsFailing",
        "ImagePullBackOff",
    );
    assert!(
        docs.contains("sentiment   ImagePullError"),
        "the docs no longer show ImagePullError"
    );
    w.kubectl(
        &[
            "scale",
            "deployment",
            "sentiment",
            "-n",
            &w.ns,
            "--replicas=0",
        ],
        "",
    );
    w.expect(
        "sentiment",
        "Napping",
        "WorkloadReady",
        "ScaledToZero",
        &shown("Deployment sentiment is scaled to zero; KEDA starts pods when messages arrive"),
    );
}
