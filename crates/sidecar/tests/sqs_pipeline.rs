//! The sidecar over SQS, end to end: real `asya-sidecar` processes, real
//! Python runtimes, moto for SQS and S3 (`ASYA_TEST_AWS_ENDPOINT`,
//! `ASYA_TEST_PYTHON`, both exported by `tests/servers/up.sh`).
//!
//! Every test uses its own namespace (so its own queues) and its own bucket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use asya_storage::EnvelopeStore;
use asya_transport::Transport;
use asya_transport::sqs::{SqsAdmin, SqsConfig, SqsTransport};
use serde_json::{Value, json};

/// Generous: several processes share a small, busy machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// Handlers of these tests, written into each test's temp dir.
const HANDLERS: &str = r#"
import json, os, time

def step_a(p):
    return {"n": p["n"] + 1, "trail": p["trail"] + ["a"]}

def step_b(p):
    return {"n": p["n"] * 10, "trail": p["trail"] + ["b"]}

def step_c(p):
    return {"n": p["n"] - 3, "trail": p["trail"] + ["c"]}

def _attempt(p):
    # One line per call, with the time, in a file per envelope key.
    path = os.path.join(os.environ["ASYA_TEST_STATE_DIR"], p["key"] + ".attempts")
    with open(path, "a") as f:
        f.write("%.3f\n" % time.time())
    with open(path) as f:
        return len(f.read().split())

def flaky(p):
    if _attempt(p) <= 2:
        raise ValueError("not yet")
    return {"key": p["key"], "done": True}

def broken(p):
    _attempt(p)
    raise ValueError("always broken")
"#;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is unset: run `eval \"$(bash tests/servers/up.sh)\"` first"))
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{:x}{n}", std::process::id(), nanos % 0xffff_ffff)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A child process killed (and reaped) when the test ends, however it ends.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("---- last lines of {} ----", self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// One test's world: namespace, queues, bucket, processes.
struct World {
    ns: String,
    dir: tempfile::TempDir,
    store: EnvelopeStore,
    bucket: String,
    procs: Vec<Proc>,
}

impl World {
    async fn new(actors: &[&str]) -> World {
        let ns = unique("p");
        let admin = SqsAdmin::connect(&sqs_config()).await.unwrap();
        for actor in actors.iter().chain(&["x-sink", "x-sump"]) {
            admin.ensure_actor_queue(&ns, actor).await.unwrap();
        }
        let bucket = unique("asya-pipe-");
        let store = EnvelopeStore::new(&bucket, "pipeline", Some(&env("ASYA_TEST_AWS_ENDPOINT")), "us-east-1")
            .await
            .unwrap();
        store.ensure_bucket().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sqs_test_handlers.py"), HANDLERS).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        World { ns, dir, store, bucket, procs: Vec::new() }
    }

    fn spawn(&mut self, name: &str, mut cmd: Command) {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .stdin(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.procs.push(Proc { name: name.to_string(), child, log });
    }

    fn sidecar_command(&self, actor: &str, socket_dir: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_asya-sidecar"));
        cmd.env("ASYA_ACTOR_NAME", actor)
            .env("ASYA_NAMESPACE", &self.ns)
            .env("ASYA_TRANSPORT", "sqs")
            .env("ASYA_SOCKET_DIR", socket_dir)
            .env("ASYA_METRICS_ADDR", "127.0.0.1:0")
            .env("ASYA_LOG_FORMAT", "text")
            .env("ASYA_LOG_LEVEL", "info")
            .env("ASYA_SHUTDOWN_GRACE", "2s")
            .env("ASYA_AWS_REGION", "us-east-1")
            .env("ASYA_SQS_ENDPOINT", env("ASYA_TEST_AWS_ENDPOINT"))
            .env("ASYA_SQS_WAIT_TIME_SECONDS", "1")
            .env("ASYA_SQS_VISIBILITY_TIMEOUT", "30s");
        cmd
    }

    /// A regular actor: its runtime with `handler`, and its sidecar.
    fn actor(&mut self, actor: &str, handler: &str, extra_env: &[(&str, &str)]) {
        let socket_dir = self.dir.path().join(format!("sock-{actor}"));
        let mut runtime = Command::new(env("ASYA_TEST_PYTHON"));
        runtime
            .arg(repo_root().join("runtime/asya_runtime.py"))
            .current_dir(self.dir.path())
            .env("ASYA_HANDLER", format!("sqs_test_handlers.{handler}"))
            .env("ASYA_SOCKET_DIR", &socket_dir)
            .env("ASYA_TEST_STATE_DIR", self.dir.path().join("state"));
        self.spawn(&format!("runtime {actor}"), runtime);
        let mut sidecar = self.sidecar_command(actor, &socket_dir);
        for (k, v) in extra_env {
            sidecar.env(k, v);
        }
        self.spawn(&format!("sidecar {actor}"), sidecar);
    }

    /// x-sink and x-sump persisting to this world's bucket.
    fn end_actors(&mut self) {
        for (actor, role) in [("x-sink", "sink"), ("x-sump", "sump")] {
            let socket_dir = self.dir.path().join(format!("sock-{actor}"));
            let mut sidecar = self.sidecar_command(actor, &socket_dir);
            sidecar
                .env("ASYA_ACTOR_ROLE", role)
                .env("ASYA_S3_BUCKET", &self.bucket)
                .env("ASYA_S3_PREFIX", "pipeline")
                .env("ASYA_S3_ENDPOINT", env("ASYA_TEST_AWS_ENDPOINT"));
            self.spawn(&format!("sidecar {actor}"), sidecar);
        }
    }

    async fn send(&self, first: &str, next: &[&str], id: &str, payload: Value) {
        let publisher = SqsTransport::connect(sqs_config(), &self.ns, first).await.unwrap();
        let envelope = json!({
            "id": id,
            "route": {"prev": [], "curr": first, "next": next},
            "headers": {},
            "payload": payload,
        });
        publisher
            .publish(first, envelope.to_string().into(), Duration::ZERO)
            .await
            .unwrap();
    }

    /// Waits until `kind/` holds `count` envelopes; returns them by id.
    async fn stored(&self, kind: &str, count: usize) -> BTreeMap<String, Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let keys = self.store.list(&format!("{kind}/")).await.unwrap();
            if keys.len() >= count {
                let mut out = BTreeMap::new();
                for key in keys {
                    let body = self.store.get(&key).await.unwrap().unwrap();
                    let envelope: Value = serde_json::from_slice(&body).unwrap();
                    out.insert(envelope["id"].as_str().unwrap().to_string(), envelope);
                }
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} envelopes reached {kind}/ in {PATIENCE:?}",
                keys.len()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn attempts(&self, key: &str) -> Vec<f64> {
        let path = self.dir.path().join("state").join(format!("{key}.attempts"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect()
    }
}

fn sqs_config() -> SqsConfig {
    let mut config = SqsConfig::new("us-east-1", Some(env("ASYA_TEST_AWS_ENDPOINT")));
    config.wait_time = Duration::from_secs(1);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_actor_pipeline_over_sqs_lands_transformed_payloads_in_the_sink_bucket() {
    let mut world = World::new(&["a", "b", "c"]).await;
    world.actor("a", "step_a", &[]);
    world.actor("b", "step_b", &[]);
    world.actor("c", "step_c", &[]);
    world.end_actors();
    for i in 0..5 {
        world
            .send("a", &["b", "c"], &format!("pipe-{i}"), json!({"n": i, "trail": []}))
            .await;
    }
    let done = world.stored("succeeded", 5).await;
    assert_eq!(done.len(), 5);
    for i in 0..5 {
        let envelope = &done[&format!("pipe-{i}")];
        assert_eq!(envelope["payload"]["n"], json!((i + 1) * 10 - 3), "{envelope}");
        assert_eq!(envelope["payload"]["trail"], json!(["a", "b", "c"]), "{envelope}");
    }
    assert!(world.store.list("failed/").await.unwrap().is_empty());
    assert!(world.store.list("sump/").await.unwrap().is_empty());
}

const POLICY: &str = r#"{"retry": {"maxAttempts": 4, "backoff": "exponential", "initialDelay": "1s", "maxInterval": "10s"}}"#;
const RULES: &str = r#"[{"errors": ["ValueError"], "policy": "retry"}]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_over_sqs_wait_their_exponential_delays_then_succeed_once() {
    let mut world = World::new(&["flaky"]).await;
    world.actor(
        "flaky",
        "flaky",
        &[("ASYA_RESILIENCY_POLICIES", POLICY), ("ASYA_RESILIENCY_RULES", RULES)],
    );
    world.end_actors();
    world.send("flaky", &[], "retry-1", json!({"key": "retry-1"})).await;
    let done = world.stored("succeeded", 1).await;
    assert_eq!(done["retry-1"]["payload"], json!({"key": "retry-1", "done": true}));
    let at = world.attempts("retry-1");
    assert_eq!(at.len(), 3, "two failures and one success, got {at:?}");
    // Exponential from 1 s: 1 s before the 2nd attempt, 2 s before the 3rd.
    assert!(at[1] - at[0] >= 1.0, "first retry after {:.3}s", at[1] - at[0]);
    assert!(at[2] - at[1] >= 2.0, "second retry after {:.3}s", at[2] - at[1]);
    assert!(world.store.list("failed/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_over_sqs_reach_the_sink_as_failed_with_the_error() {
    let mut world = World::new(&["broken"]).await;
    let policy = r#"{"retry": {"maxAttempts": 2, "backoff": "constant", "initialDelay": "1s"}}"#;
    world.actor(
        "broken",
        "broken",
        &[("ASYA_RESILIENCY_POLICIES", policy), ("ASYA_RESILIENCY_RULES", RULES)],
    );
    world.end_actors();
    world.send("broken", &[], "doomed-1", json!({"key": "doomed-1"})).await;
    let failed = world.stored("failed", 1).await;
    let envelope = &failed["doomed-1"];
    assert_eq!(envelope["status"]["phase"], json!("failed"), "{envelope}");
    assert!(
        envelope.to_string().contains("always broken"),
        "the handler's error travels with the envelope: {envelope}"
    );
    assert_eq!(world.attempts("doomed-1").len(), 2);
    // x-sink hands failures on to x-sump, which stores them too.
    world.stored("sump", 1).await;
    assert!(world.store.list("succeeded/").await.unwrap().is_empty());
}
