//! Test harness: real brokers, real `asya-sidecar` processes, real Python
//! runtimes over real Unix sockets.
//!
//! ```ignore
//! let mut mesh = Mesh::new(Broker::RabbitMq).await;
//! mesh.actor("a", "asya_test_handlers.step_a", &[]).await;   // runtime + sidecar
//! mesh.end_actor("x-sink").await;                           // sink role, persists to S3 (moto)
//! mesh.publish("a", &envelope("id-1", &["a"], json!({..}))).await;
//! let stored = mesh.wait_stored("succeeded", 1, Duration::from_secs(60)).await;
//! ```
//! Every mesh has its own namespace (random suffix) and bucket, so tests run
//! in parallel. Needs the variables printed by `tests/servers/up.sh`; without
//! them a test skips itself with a message (see [`servers_available`]).

#![allow(dead_code)]

pub mod scenarios;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asya_storage::EnvelopeStore;
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use asya_transport::sqs::{SqsAdmin, SqsConfig, SqsTransport};
use asya_transport::{Delivery, QueueAdmin, Transport, TransportError};
use bytes::Bytes;
use serde_json::{Value, json};

/// Which broker a mesh runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    RabbitMq,
    Sqs,
}

/// True when the test servers' variables are set; prints why not otherwise.
pub fn servers_available(broker: Broker) -> bool {
    let mut needed = vec!["ASYA_TEST_AWS_ENDPOINT", "ASYA_TEST_PYTHON"];
    if broker == Broker::RabbitMq {
        needed.push("ASYA_TEST_RABBITMQ_URL");
    }
    let missing: Vec<_> = needed
        .into_iter()
        .filter(|v| std::env::var(v).map(|s| s.is_empty()).unwrap_or(true))
        .collect();
    if missing.is_empty() {
        true
    } else {
        eprintln!("SKIPPED: {missing:?} unset; run `eval \"$(bash tests/servers/up.sh)\"` first");
        false
    }
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn handlers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/handlers")
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// A broker client for the test itself (publish, consume a queue directly).
pub enum Client {
    Rabbit(RabbitMq),
    Sqs(Box<SqsTransport>),
}

impl Client {
    pub async fn publish(&self, actor: &str, body: &[u8]) -> Result<(), TransportError> {
        let b = Bytes::copy_from_slice(body);
        match self {
            Client::Rabbit(t) => t.publish(actor, b, Duration::ZERO).await,
            Client::Sqs(t) => t.publish(actor, b, Duration::ZERO).await,
        }
    }

    pub async fn receive(&self) -> Result<Delivery, TransportError> {
        match self {
            Client::Rabbit(t) => t.receive().await,
            Client::Sqs(t) => t.receive().await,
        }
    }

    pub async fn ack(&self, d: &Delivery) -> Result<(), TransportError> {
        match self {
            Client::Rabbit(t) => t.ack(d).await,
            Client::Sqs(t) => t.ack(d).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Client::Rabbit(t) => t.close().await,
            Client::Sqs(t) => t.close().await,
        }
    }
}

/// One actor's processes.
pub struct ActorProcs {
    pub name: String,
    pub handler: Option<String>,
    pub socket_dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub sidecar: Option<Child>,
    pub runtime: Option<Child>,
    /// A script run instead of `runtime/asya_runtime.py` (a fake runtime).
    pub runtime_script: Option<PathBuf>,
    log_dir: PathBuf,
    starts: u32,
}

impl Drop for ActorProcs {
    fn drop(&mut self) {
        for c in [self.sidecar.as_mut(), self.runtime.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A set of actors in one fresh namespace, with a fresh bucket.
pub struct Mesh {
    pub broker: Broker,
    pub namespace: String,
    pub bucket: String,
    pub actors: HashMap<String, ActorProcs>,
    pub store: EnvelopeStore,
    pub client: Client,
    dir: tempfile::TempDir,
}

impl Mesh {
    pub async fn new(broker: Broker) -> Self {
        let suffix = random_suffix();
        let namespace = format!("t{suffix}");
        let bucket = format!("asya-test-{suffix}");
        let store = EnvelopeStore::new(
            &bucket,
            "results/",
            Some(&var("ASYA_TEST_AWS_ENDPOINT")),
            "us-east-1",
        )
        .await
        .expect("store");
        store.ensure_bucket().await.expect("create bucket");
        let client = match broker {
            Broker::RabbitMq => {
                let cfg = RabbitMqConfig::new(var("ASYA_TEST_RABBITMQ_URL"), namespace.clone());
                Client::Rabbit(RabbitMq::connect(cfg).await.expect("rabbitmq"))
            }
            Broker::Sqs => {
                let cfg = SqsConfig::new("us-east-1", Some(var("ASYA_TEST_AWS_ENDPOINT")));
                let admin = SqsAdmin::connect(&cfg).await.expect("sqs admin");
                // The test's own client is bound to a queue of its own.
                admin
                    .ensure_actor_queue(&namespace, "test-client")
                    .await
                    .expect("queue");
                Client::Sqs(Box::new(
                    SqsTransport::connect(cfg, &namespace, "test-client")
                        .await
                        .expect("sqs"),
                ))
            }
        };
        Self {
            broker,
            namespace,
            bucket,
            actors: HashMap::new(),
            store,
            client,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Creates the queue of `actor` (SQS needs it before a sidecar starts;
    /// RabbitMQ declares on use).
    pub async fn ensure_queue(&self, actor: &str) {
        match self.broker {
            Broker::RabbitMq => {}
            Broker::Sqs => {
                let cfg = SqsConfig::new("us-east-1", Some(var("ASYA_TEST_AWS_ENDPOINT")));
                let admin = SqsAdmin::connect(&cfg).await.expect("sqs admin");
                admin
                    .ensure_actor_queue(&self.namespace, actor)
                    .await
                    .expect("queue");
            }
        }
    }

    /// A consumer of `actor`'s queue for the test itself (e.g. to count what
    /// reaches x-sink without running a sink sidecar).
    pub async fn consumer(&self, actor: &str, prefetch: u16) -> Client {
        self.ensure_queue(actor).await;
        match self.broker {
            Broker::RabbitMq => {
                let mut cfg =
                    RabbitMqConfig::new(var("ASYA_TEST_RABBITMQ_URL"), self.namespace.clone());
                cfg.prefetch = prefetch;
                Client::Rabbit(RabbitMq::consume(cfg, actor).await.expect("consume"))
            }
            Broker::Sqs => {
                let mut cfg = SqsConfig::new("us-east-1", Some(var("ASYA_TEST_AWS_ENDPOINT")));
                cfg.wait_time = Duration::from_secs(1);
                cfg.batch_size = i32::from(prefetch.clamp(1, 10));
                Client::Sqs(Box::new(
                    SqsTransport::connect(cfg, &self.namespace, actor)
                        .await
                        .expect("sqs"),
                ))
            }
        }
    }

    /// Environment common to every sidecar of this mesh.
    pub fn base_env(&self, actor: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("ASYA_ACTOR_NAME", actor.to_string()),
            ("ASYA_NAMESPACE", self.namespace.clone()),
            ("ASYA_METRICS_ADDR", "127.0.0.1:0".to_string()),
            ("ASYA_LOG_LEVEL", "info".to_string()),
            ("ASYA_RUNTIME_READY_TIMEOUT", "60s".to_string()),
            ("ASYA_S3_BUCKET", self.bucket.clone()),
            ("ASYA_S3_PREFIX", "results/".to_string()),
            ("ASYA_S3_ENDPOINT", var("ASYA_TEST_AWS_ENDPOINT")),
            ("ASYA_AWS_REGION", "us-east-1".to_string()),
        ];
        match self.broker {
            Broker::RabbitMq => {
                env.push(("ASYA_TRANSPORT", "rabbitmq".into()));
                env.push(("ASYA_RABBITMQ_URL", var("ASYA_TEST_RABBITMQ_URL")));
            }
            Broker::Sqs => {
                env.push(("ASYA_TRANSPORT", "sqs".into()));
                env.push(("ASYA_SQS_ENDPOINT", var("ASYA_TEST_AWS_ENDPOINT")));
                env.push(("ASYA_SQS_WAIT_TIME_SECONDS", "1".into()));
            }
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Starts a regular actor: its runtime with `handler` and its sidecar.
    /// `extra` overrides/extends the sidecar's env (e.g. ASYA_CONCURRENCY,
    /// ASYA_RESILIENCY_POLICIES); ASYA_CONCURRENCY is passed to the runtime too.
    pub async fn actor(&mut self, name: &str, handler: &str, extra: &[(&str, &str)]) {
        self.ensure_queue(name).await;
        let socket_dir = self.dir.path().join(format!("sock-{name}"));
        std::fs::create_dir_all(&socket_dir).expect("socket dir");
        let mut env = self.base_env(name);
        env.push(("ASYA_SOCKET_DIR".into(), socket_dir.display().to_string()));
        for (k, v) in extra {
            env.push((k.to_string(), v.to_string()));
        }
        let mut procs = ActorProcs {
            name: name.to_string(),
            handler: Some(handler.to_string()),
            socket_dir,
            env,
            sidecar: None,
            runtime: None,
            runtime_script: None,
            log_dir: self.dir.path().to_path_buf(),
            starts: 0,
        };
        procs.start_runtime();
        procs.start_sidecar();
        self.actors.insert(name.to_string(), procs);
    }

    /// Like [`Mesh::actor`], with `script` (in `tests/handlers`) as the runtime.
    pub async fn actor_with_runtime(&mut self, name: &str, script: &str, extra: &[(&str, &str)]) {
        self.actor(name, "none", extra).await;
        let procs = self.procs(name);
        procs.kill_runtime();
        procs.runtime_script = Some(handlers_dir().join(script));
        procs.start_runtime();
    }

    /// A path in this mesh's temporary directory (for handler state).
    pub fn scratch_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Everything the sidecars of `actor` logged so far.
    pub fn sidecar_log(&self, actor: &str) -> String {
        self.logs_of(actor, "sidecar")
    }

    /// Everything the runtimes of `actor` logged so far.
    pub fn runtime_log(&self, actor: &str) -> String {
        self.logs_of(actor, "runtime")
    }

    fn logs_of(&self, actor: &str, what: &str) -> String {
        let mut out = String::new();
        let prefix = format!("{actor}-{what}-");
        for e in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(&prefix) && name.ends_with(".log") {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }

    /// Starts an end actor (`x-sink` or `x-sump`): a sidecar, no runtime.
    pub async fn end_actor(&mut self, name: &str) {
        self.ensure_queue(name).await;
        let role = if name == "x-sump" || name == "error-end" {
            "sump"
        } else {
            "sink"
        };
        let mut env = self.base_env(name);
        env.push(("ASYA_ACTOR_ROLE".into(), role.into()));
        env.push(("ASYA_CONCURRENCY".into(), "8".into()));
        let mut procs = ActorProcs {
            name: name.to_string(),
            handler: None,
            socket_dir: self.dir.path().join("none"),
            env,
            sidecar: None,
            runtime: None,
            runtime_script: None,
            log_dir: self.dir.path().to_path_buf(),
            starts: 0,
        };
        procs.start_sidecar();
        self.actors.insert(name.to_string(), procs);
    }

    pub fn procs(&mut self, actor: &str) -> &mut ActorProcs {
        self.actors.get_mut(actor).expect("no such actor")
    }

    /// Messages ready in `actor`'s queue.
    pub async fn depth(&self, actor: &str) -> u64 {
        let queue = asya_transport::naming::queue_name(&self.namespace, actor);
        match &self.client {
            Client::Rabbit(t) => t.depth(&queue).await.expect("depth").queued,
            Client::Sqs(_) => {
                let cfg = SqsConfig::new("us-east-1", Some(var("ASYA_TEST_AWS_ENDPOINT")));
                let admin = SqsAdmin::connect(&cfg).await.expect("sqs admin");
                let d = admin.depth(&queue).await.expect("depth");
                d.queued + d.processing.unwrap_or(0)
            }
        }
    }

    /// Publishes a raw body to `actor`'s queue.
    pub async fn publish(&self, actor: &str, body: &[u8]) {
        self.client.publish(actor, body).await.expect("publish");
    }

    /// Waits until at least `count` objects are stored under `kind`
    /// (`succeeded`, `failed`, `sump`); returns them parsed.
    pub async fn wait_stored(&self, kind: &str, count: usize, timeout: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let keys = self
                .store
                .list(&format!("{kind}/"))
                .await
                .expect("list store");
            if keys.len() >= count {
                let mut out = Vec::new();
                for k in keys {
                    let body = self
                        .store
                        .get(&k)
                        .await
                        .expect("get")
                        .expect("object vanished");
                    out.push(serde_json::from_slice(&body).expect("stored object is JSON"));
                }
                return out;
            }
            if start.elapsed() > timeout {
                self.dump_logs();
                panic!(
                    "only {} of {count} {kind} envelopes stored after {timeout:?}",
                    keys.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Prints every process log (on failure).
    pub fn dump_logs(&self) {
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return;
        };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("----- {} (last 40 lines)", e.path().display());
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

impl ActorProcs {
    fn log_file(&mut self, what: &str) -> std::fs::File {
        self.starts += 1;
        let path = self
            .log_dir
            .join(format!("{}-{what}-{}.log", self.name, self.starts));
        std::fs::File::create(path).expect("log file")
    }

    /// Starts (or restarts) the Python runtime.
    pub fn start_runtime(&mut self) {
        let Some(handler) = self.handler.clone() else {
            return;
        };
        let concurrency = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "ASYA_CONCURRENCY")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "1".into());
        let log = self.log_file("runtime");
        let script = self
            .runtime_script
            .clone()
            .unwrap_or_else(|| repo_root().join("runtime/asya_runtime.py"));
        let mut cmd = Command::new(var("ASYA_TEST_PYTHON"));
        // Both sides must agree on the frame limit.
        if let Some((_, v)) = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "ASYA_MAX_FRAME_BYTES")
        {
            cmd.env("ASYA_MAX_FRAME_BYTES", v);
        }
        let child = cmd
            .arg(script)
            .env("ASYA_HANDLER", handler)
            .env("ASYA_SOCKET_DIR", &self.socket_dir)
            .env("ASYA_RUNTIME_CONCURRENCY", concurrency)
            .env("ASYA_LOG_LEVEL", "INFO")
            .env("PYTHONPATH", handlers_dir())
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn runtime");
        self.runtime = Some(child);
    }

    /// Starts (or restarts) the sidecar.
    pub fn start_sidecar(&mut self) {
        let log = self.log_file("sidecar");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_asya-sidecar"));
        cmd.env_clear();
        for k in [
            "PATH",
            "HOME",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
        ] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sidecar");
        self.sidecar = Some(child);
    }

    /// `kill -9` of the sidecar.
    pub fn kill_sidecar(&mut self) {
        if let Some(mut c) = self.sidecar.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What Kubernetes does for the runtime container: starts it again
    /// when it has exited. True when it restarted it.
    pub fn supervise(&mut self) -> bool {
        let exited = self
            .runtime
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        if exited {
            self.runtime = None;
            self.start_runtime();
        }
        exited
    }

    /// `kill -9` of the runtime.
    pub fn kill_runtime(&mut self) {
        if let Some(mut c) = self.runtime.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM to the sidecar and waits for its exit code.
    pub fn sigterm_sidecar(&mut self, timeout: Duration) -> Option<i32> {
        let mut c = self.sidecar.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if start.elapsed() > timeout {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }
}

/// An envelope at the start of `route`.
pub fn envelope(id: &str, route: &[&str], payload: Value) -> Vec<u8> {
    let curr = route.first().copied().unwrap_or("");
    let next: Vec<&str> = route.iter().skip(1).copied().collect();
    serde_json::to_vec(&json!({
        "id": id,
        "route": {"prev": [], "curr": curr, "next": next},
        "headers": {},
        "payload": payload,
    }))
    .expect("json")
}

/// Drains `client` until `want` distinct ids were seen or `timeout`;
/// returns (distinct ids, duplicates).
pub async fn collect_ids(
    client: &Client,
    want: usize,
    timeout: Duration,
    mut on_progress: impl FnMut(usize),
) -> (std::collections::HashSet<String>, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut dups = 0;
    let deadline = Instant::now() + timeout;
    while seen.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let d = match tokio::time::timeout(left.min(Duration::from_secs(2)), client.receive()).await
        {
            Ok(Ok(d)) => d,
            Ok(Err(_)) | Err(_) => continue,
        };
        let v: Value = serde_json::from_slice(&d.body).expect("sink message is JSON");
        let id = v["id"].as_str().unwrap_or_default().to_string();
        if !seen.insert(id) {
            dups += 1;
        }
        let _ = client.ack(&d).await;
        on_progress(seen.len());
    }
    (seen, dups)
}
