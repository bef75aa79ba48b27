//! The gateway and real pipelines: a real `asya-gateway` process (SQLite file or a fresh
//! PostgreSQL database), real `asya-sidecar` processes with real Python runtimes, x-sink
//! and x-sump sidecars, all on real RabbitMQ. Tasks are started with `POST /tasks`; the
//! sidecars report progress to the gateway's mesh listener and x-sink reports the result.
//!
//! The gateway binary is the workspace's own (`target/<profile>/asya-gateway`, next to
//! this test's directory): `cargo nextest run --workspace` builds it.
//! Needs the variables of `tests/servers/up.sh` (RabbitMQ, moto, Python; PostgreSQL for
//! the `_postgres` tests); each test prints a SKIPPED line and passes when they are unset.
//!
//! The benchmark (`gateway_bench`, ignored) is documented in BENCHMARKS.md, "Gateway".

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Broker, Mesh, collect_ids, servers_available};
use serde_json::{Value, json};

const B: Broker = Broker::RabbitMq;
const LONG: Duration = Duration::from_secs(90);

const TOOLS: &str = "\
tools:
- name: pipeline
  description: three real actors
  parameters:
    n: {type: integer, required: true, description: a number}
    trail: {type: array, required: true, description: actors passed}
    pause: {type: number, required: true, description: seconds each actor sleeps}
  route: [a, b, c]
  timeout: 90s
- name: failing
  description: fails at its second actor
  parameters:
    n: {type: integer, required: true, description: a number}
    trail: {type: array, required: true, description: actors passed}
    pause: {type: number, required: true, description: seconds each actor sleeps}
  route: [a, boom]
  timeout: 90s
- name: slow-pipeline
  description: a slow actor in the middle
  parameters:
    n: {type: integer, required: true, description: a number}
    trail: {type: array, required: true, description: actors passed}
    sleep: {type: number, required: true, description: seconds the middle actor sleeps}
  route: [a, slow, c]
  timeout: 90s
- name: too-slow
  description: one actor past its timeout (x-sump, not x-sink)
  parameters:
    sleep: {type: number, required: true, description: seconds the actor sleeps}
  route: [late]
  timeout: 90s
- name: short-deadline
  description: a slow actor past the tool's 3 s timeout (the pipeline's deadline)
  parameters:
    sleep: {type: number, required: true, description: seconds the actor sleeps}
  route: [slow]
  timeout: 3s
- name: echo
  description: one actor that echoes
  parameters:
    text: {type: string, required: true, description: anything}
  route: [echo]
  timeout: 90s
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

/// The gateway binary of this build.
fn gateway_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/asya-gateway
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("asya-gateway"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo build --workspace --bins)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A fresh PostgreSQL database (dropped with the value), or a SQLite file in the mesh's
/// directory. `None` (with a SKIPPED line) when PostgreSQL is wanted but not configured.
struct Database {
    url: String,
    /// (server URL, database name) to drop at the end.
    drop: Option<(String, String)>,
}

impl Database {
    fn new(db: Db, mesh: &Mesh) -> Option<Database> {
        match db {
            Db::Sqlite => Some(Database {
                url: format!("sqlite:{}", mesh.scratch_path("gateway.db").display()),
                drop: None,
            }),
            Db::Postgres => {
                let server = match std::env::var("ASYA_TEST_POSTGRES_URL") {
                    Ok(u) if !u.is_empty() => u,
                    _ => {
                        eprintln!(
                            "SKIPPED: ASYA_TEST_POSTGRES_URL unset; run `eval \"$(bash tests/servers/up.sh)\"` first"
                        );
                        return None;
                    }
                };
                let name = format!("gwe2e_{}", mesh.namespace);
                psql(&server, &format!("CREATE DATABASE {name}"));
                let (base, _) = server.rsplit_once('/').expect("postgres URL has a path");
                Some(Database {
                    url: format!("{base}/{name}"),
                    drop: Some((server, name)),
                })
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.drop {
            let _ = Command::new("psql")
                .arg(server)
                .arg("-qc")
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn psql(server: &str, sql: &str) {
    let out = Command::new("psql")
        .args([server, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql (installed with PostgreSQL by tests/servers/up.sh)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One `asya-gateway` process; restartable on the same ports and store.
struct Gateway {
    child: Option<Child>,
    api: u16,
    mesh: u16,
    db_url: String,
    tools: PathBuf,
    log_dir: PathBuf,
    namespace: String,
    starts: u32,
    http: reqwest::Client,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Gateway {
    async fn start(mesh: &Mesh, db: &Database) -> Gateway {
        let tools = mesh.scratch_path("tools.yaml");
        std::fs::write(&tools, TOOLS).expect("tools file");
        let mut gw = Gateway {
            child: None,
            api: free_port(),
            mesh: free_port(),
            db_url: db.url.clone(),
            tools,
            log_dir: mesh.scratch_path(""),
            namespace: mesh.namespace.clone(),
            starts: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        };
        gw.spawn();
        gw.wait_ready().await;
        gw
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_dir.join(format!("gateway-{}.log", self.starts)))
            .expect("log file");
        let child = Command::new(gateway_bin())
            .arg("--config")
            .arg(&self.tools)
            .args(["--database-url", &self.db_url])
            .args(["--listen", &format!("127.0.0.1:{}", self.api)])
            .args(["--mesh-listen", &format!("127.0.0.1:{}", self.mesh)])
            .args(["--mesh-url", &self.mesh_url()])
            .env("ASYA_NAMESPACE", &self.namespace)
            .env("ASYA_TRANSPORT", "rabbitmq")
            .env(
                "ASYA_RABBITMQ_URL",
                std::env::var("ASYA_TEST_RABBITMQ_URL").unwrap_or_default(),
            )
            .env("ASYA_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn asya-gateway");
        self.child = Some(child);
    }

    fn mesh_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.mesh)
    }

    fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api)
    }

    async fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(r) = self.http.get(self.api("/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("asya-gateway exited: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "asya-gateway not ready after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_ready().await;
    }

    /// `POST /tasks`; the task's id.
    async fn start_task(&self, tool: &str, arguments: Value) -> String {
        let body = json!({"tool": tool, "arguments": arguments}).to_string();
        let r = self
            .http
            .post(self.api("/tasks"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /tasks");
        let code = r.status().as_u16();
        let v: Value = serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON");
        assert_eq!(code, 201, "{v}");
        v["id"].as_str().expect("task id").to_string()
    }

    async fn task(&self, id: &str) -> Value {
        let r = self
            .http
            .get(self.api(&format!("/tasks/{id}")))
            .send()
            .await
            .expect("GET task");
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON")
    }

    /// Every update of the task, from `GET /tasks/{id}/stream` (which ends after the
    /// terminal update: this waits for it).
    async fn history(&self, id: &str) -> Vec<Value> {
        let r = self
            .http
            .get(self.api(&format!("/tasks/{id}/stream")))
            .send()
            .await
            .expect("GET stream");
        let text = String::from_utf8(r.bytes().await.expect("stream").to_vec()).expect("utf-8");
        text.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).expect("update JSON"))
            .collect()
    }

    /// Polls until the task is finished or `timeout`.
    async fn wait_done(&self, mesh: &Mesh, id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let t = self.task(id).await;
            if matches!(t["status"].as_str(), Some("succeeded" | "failed")) {
                return t;
            }
            if start.elapsed() > timeout {
                mesh.dump_logs();
                panic!("task {id} not finished after {timeout:?}: {t}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// (actor, step) of every progress update, in the order applied.
fn steps(history: &[Value]) -> Vec<(String, String)> {
    history
        .iter()
        .filter(|u| u["status"] == "running")
        .map(|u| {
            let actor = u["actor"].as_str().unwrap_or_default().to_string();
            let msg = u["message"].as_str().unwrap_or_default();
            let step = msg
                .strip_prefix(&format!("{actor}: "))
                .unwrap_or(msg)
                .to_string();
            (actor, step)
        })
        .collect()
}

/// The actors appear in route order and each one's steps in the order received,
/// processing, completed (the gateway refuses a report behind the task's progress); with
/// `complete`, every actor's `received` and `processing` were applied (each actor sleeps,
/// so they are posted well before the next actor's reports). `completed` is not required:
/// it races with the next actor's `received` (or x-sink's final report), posted by
/// another process a few milliseconds later. Progress never went down.
fn assert_reports_follow_the_route(history: &[Value], route: &[&str], complete: bool) {
    let s = steps(history);
    let mut first: Vec<&str> = Vec::new();
    for (a, _) in &s {
        if !first.contains(&a.as_str()) {
            first.push(a);
        }
    }
    let idx = |a: &str| {
        route
            .iter()
            .position(|r| *r == a)
            .expect("actor of the route")
    };
    assert!(
        first.windows(2).all(|w| idx(w[0]) < idx(w[1])),
        "actors out of route order: {s:?}"
    );
    for actor in route {
        let mine: Vec<&str> = s
            .iter()
            .filter(|(a, _)| a == actor)
            .map(|(_, st)| st.as_str())
            .collect();
        let order = ["received", "processing", "completed"];
        let ranks: Vec<usize> = mine
            .iter()
            .map(|st| order.iter().position(|o| o == st).expect("known step"))
            .collect();
        assert!(
            ranks.windows(2).all(|w| w[0] < w[1]),
            "{actor}: steps out of order: {s:?}"
        );
        if complete {
            assert_eq!(
                mine[..2.min(mine.len())],
                ["received", "processing"],
                "{actor}: {s:?}"
            );
        }
    }
    let progress: Vec<f64> = history
        .iter()
        .map(|u| u["progress"].as_f64().unwrap_or(-1.0))
        .collect();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress went down: {progress:?}"
    );
}

/// The mesh of the functional tests: a → b → c, a → boom (raises), a → slow → c, x-sink and
/// x-sump, every sidecar reporting to the gateway the envelopes name.
async fn pipeline_mesh() -> Mesh {
    let mut mesh = Mesh::new(B).await;
    mesh.actor("a", "asya_test_handlers.step_a", &[]).await;
    mesh.actor("b", "asya_test_handlers.step_b", &[]).await;
    mesh.actor("c", "asya_test_handlers.step_c", &[]).await;
    mesh.actor("boom", "asya_test_handlers.fatal", &[]).await;
    mesh.actor("slow", "asya_test_handlers.slow", &[]).await;
    mesh.end_actor("x-sink").await;
    mesh.end_actor("x-sump").await;
    mesh
}

/// A three-actor tool ends `succeeded` with the transformed result and every actor's
/// progress in route order; a tool whose second actor raises ends `failed` with the
/// handler's error type and message (x-sink's report); a tool whose actor runs past its
/// timeout ends `failed` with the timeout (x-sump's report).
async fn results_and_failures(db: Db) {
    if !servers_available(B) {
        return;
    }
    let mut mesh = pipeline_mesh().await;
    mesh.actor(
        "late",
        "asya_test_handlers.slow",
        &[("ASYA_RESILIENCY_ACTOR_TIMEOUT", "1s")],
    )
    .await;
    let Some(database) = Database::new(db, &mesh) else {
        return;
    };
    let gw = Gateway::start(&mesh, &database).await;

    let ok = gw
        .start_task("pipeline", json!({"n": 1, "trail": [], "pause": 0.3}))
        .await;
    let bad = gw
        .start_task("failing", json!({"n": 1, "trail": [], "pause": 0.3}))
        .await;
    let late = gw.start_task("too-slow", json!({"sleep": 5})).await;
    let expired = gw.start_task("short-deadline", json!({"sleep": 30})).await;

    let done = gw.wait_done(&mesh, &ok, LONG).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // (1 × 2 + 1) × 10, through a, b and c.
    assert_eq!(
        done["result"],
        json!({"n": 30, "trail": ["a", "b", "c"], "pause": 0.3})
    );
    assert_eq!(done["progress"], 100.0);
    let history = gw.history(&ok).await;
    let last = history.last().expect("updates");
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["result"]["n"], 30);
    eprintln!(
        "{db:?}: updates of {ok}: {:?}",
        history
            .iter()
            .map(|u| format!(
                "{} {} {} {:.1}",
                &u["at"].as_str().unwrap_or("")[17..],
                u["status"].as_str().unwrap_or(""),
                u["message"].as_str().unwrap_or(""),
                u["progress"].as_f64().unwrap_or(0.0)
            ))
            .collect::<Vec<_>>()
    );
    assert_reports_follow_the_route(&history, &["a", "b", "c"], true);

    let failed = gw.wait_done(&mesh, &bad, LONG).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let err = &failed["error"];
    assert!(
        err["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("FatalError")),
        "{err}"
    );
    assert_eq!(err["message"], "not worth retrying", "{err}");
    let history = gw.history(&bad).await;
    // a and boom received and started it; no `completed` for boom.
    assert_reports_follow_the_route(&history, &["a", "boom"], true);
    let s = steps(&history);
    assert!(s.contains(&("boom".into(), "processing".into())), "{s:?}");
    assert!(!s.contains(&("boom".into(), "completed".into())), "{s:?}");
    // x-sump got it from x-sink too, and its report changed nothing.
    mesh.wait_stored("sump", 1, LONG).await;
    assert_eq!(gw.task(&bad).await["status"], "failed");

    // Past the actor's timeout the envelope goes straight to x-sump, whose report fails
    // the task with the timeout.
    let timed_out = gw.wait_done(&mesh, &late, LONG).await;
    assert_eq!(timed_out["status"], "failed", "{timed_out}");
    assert!(
        timed_out["error"]["type"]
            .as_str()
            .is_some_and(|t| t.contains("Timeout")),
        "{timed_out}"
    );
    eprintln!("{db:?}: too-slow ended with {}", timed_out["error"]);

    // The tool's 3 s timeout is the envelope's status.deadline_at: the slow actor's 30 s
    // call is ended there (its own timeout is 5 min), and x-sink's report fails the task.
    let past_deadline = gw.wait_done(&mesh, &expired, LONG).await;
    assert_eq!(past_deadline["status"], "failed", "{past_deadline}");
    assert!(
        past_deadline["error"]["type"]
            .as_str()
            .is_some_and(|t| t.contains("Timeout") || t == "DeadlineExceeded"),
        "{past_deadline}"
    );
    eprintln!(
        "{db:?}: short-deadline ended with {}",
        past_deadline["error"]
    );
}

/// `kill -9` of the gateway while the middle actor works, 1.5 s down, restart on the same
/// ports and store: the pipeline went on without it, and x-sink's final report after the
/// restart still finishes the task with the right result.
async fn gateway_killed_mid_pipeline(db: Db) {
    if !servers_available(B) {
        return;
    }
    let mesh = pipeline_mesh().await;
    let Some(database) = Database::new(db, &mesh) else {
        return;
    };
    let mut gw = Gateway::start(&mesh, &database).await;
    let id = gw
        .start_task("slow-pipeline", json!({"n": 4, "trail": [], "sleep": 4}))
        .await;
    // Wait until the slow actor's `processing` is applied: it now sleeps 4 s.
    let start = Instant::now();
    loop {
        let t = gw.task(&id).await;
        if t["message"] == "slow: processing" {
            break;
        }
        assert!(start.elapsed() < LONG, "slow never reported: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.kill9();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gw.restart().await;
    eprintln!("{db:?}: gateway down for {:?}", down.elapsed());
    let done = gw.wait_done(&mesh, &id, LONG).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // 4 × 2 at a, then × 10 at c; slow passes it on.
    assert_eq!(done["result"]["n"], 80, "{done}");
    assert_eq!(done["result"]["trail"], json!(["a", "c"]), "{done}");
    let history = gw.history(&id).await;
    assert_reports_follow_the_route(&history, &["a", "slow", "c"], false);
    let s = steps(&history);
    assert!(s.contains(&("slow".into(), "processing".into())), "{s:?}");
    eprintln!("{db:?}: progress applied: {s:?}");
}

/// The envelope the gateway would publish for the echo route, with or without a gateway URL.
fn echo_envelope(id: &str, gateway: Option<&str>) -> Vec<u8> {
    let headers = match gateway {
        Some(u) => json!({"x-asya-gateway-url": u}),
        None => json!({}),
    };
    serde_json::to_vec(&json!({
        "id": id,
        "route": {"prev": [], "curr": "echo", "next": []},
        "headers": headers,
        "payload": {"text": id},
    }))
    .expect("json")
}

/// Messages per second through the echo actor (test consumer on the x-sink queue).
async fn rate(
    mesh: &Mesh,
    sink: &common::Client,
    tag: &str,
    n: usize,
    gateway: Option<&str>,
) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        mesh.publish("echo", &echo_envelope(&format!("{tag}-{i}"), gateway))
            .await;
    }
    let (seen, _) = collect_ids(sink, n, LONG, |_| {}).await;
    assert_eq!(seen.len(), n, "{tag}: only {} of {n} arrived", seen.len());
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_keeps_full_speed_while_the_gateway_is_down() {
    if !servers_available(B) {
        return;
    }
    let mut mesh = Mesh::new(B).await;
    mesh.actor(
        "echo",
        "asya_test_handlers.echo",
        &[("ASYA_CONCURRENCY", "4")],
    )
    .await;
    let sink = mesh.consumer("x-sink", 64).await;
    // Nothing listens there: every report is refused, tried again, dropped.
    let dead = format!("http://127.0.0.1:{}", free_port());
    const N: usize = 600;
    rate(&mesh, &sink, "warm", 100, None).await;
    let without = rate(&mesh, &sink, "plain", N, None).await;
    let with_dead = rate(&mesh, &sink, "dead", N, Some(&dead)).await;
    let again = rate(&mesh, &sink, "plain2", N, None).await;
    let baseline = without.max(again);
    let ratio = with_dead / baseline;
    eprintln!(
        "echo actor, {N} messages: no gateway header {without:.0} and {again:.0} msg/s, \
         gateway URL at a dead port {with_dead:.0} msg/s, ratio {ratio:.2}"
    );
    assert!(
        ratio > 0.5,
        "reporting to a dead gateway slowed the sidecar: {with_dead:.0} vs {baseline:.0} msg/s"
    );
    let log = mesh.sidecar_log("echo");
    assert!(
        log.contains("gateway unreachable"),
        "the sidecar did try to report (and said the gateway is unreachable):\n{log}"
    );
}

macro_rules! both_stores {
    ($($name:ident),*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Db::Postgres).await })*
        }
    };
}

/// One progress notification: its value and message.
type Progress = (f64, Option<String>);

/// Records the progress notifications an MCP client receives.
#[derive(Clone, Default)]
struct McpRecorder {
    progress: std::sync::Arc<std::sync::Mutex<Vec<Progress>>>,
}

impl rmcp::ClientHandler for McpRecorder {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        if let Ok(mut seen) = self.progress.lock() {
            seen.push((params.progress, params.message));
        }
    }
}

/// rmcp's own client calls the three-actor tool over `/mcp`: real sidecars and runtimes
/// run it, the call answers with the transformed result, and the progress notifications
/// it received name the actors in route order (a's before b's before c's).
async fn mcp_call_through_real_actors(db: Db) {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ClientRequest, Request, ServerResult};
    use rmcp::service::PeerRequestOptions;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    if !servers_available(B) {
        return;
    }
    let mesh = pipeline_mesh().await;
    let Some(database) = Database::new(db, &mesh) else {
        return;
    };
    let gw = Gateway::start(&mesh, &database).await;
    let recorder = McpRecorder::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(gw.api("/mcp")),
    );
    let client = recorder
        .clone()
        .serve(transport)
        .await
        .expect("MCP initialize");
    let mut params = CallToolRequestParams::new("pipeline");
    params.arguments = json!({"n": 2, "trail": [], "pause": 0.3})
        .as_object()
        .cloned();
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("tools/call sent");
    let answer = tokio::time::timeout(LONG, handle.await_response())
        .await
        .expect("tools/call answered in time")
        .expect("tools/call");
    let ServerResult::CallToolResult(result) = answer else {
        panic!("not a tool result: {answer:?}")
    };
    assert_eq!(result.is_error, Some(false), "{result:?}");
    // (2 × 2 + 1) × 10, through a, b and c.
    assert_eq!(
        result.structured_content,
        Some(json!({"n": 50, "trail": ["a", "b", "c"], "pause": 0.3}))
    );
    // The client handles notifications in tasks of their own: wait for them to land,
    // then order them by progress (MCP requires the server to send them increasing).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen = recorder.progress.lock().expect("recorder").clone();
    seen.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!("{db:?}: MCP progress {seen:?}");
    assert_eq!(
        seen.first().and_then(|s| s.1.as_deref()),
        Some("task created"),
        "{seen:?}"
    );
    let actor_of = |m: &Option<String>| {
        m.as_deref()
            .and_then(|m| m.split(':').next())
            .map(str::to_string)
    };
    let mut order: Vec<String> = Vec::new();
    for (_, message) in &seen[1..] {
        if let Some(actor) = actor_of(message)
            && order.last() != Some(&actor)
        {
            order.push(actor);
        }
    }
    assert_eq!(order, ["a", "b", "c"], "{seen:?}");
    let values: Vec<f64> = seen.iter().map(|s| s.0).collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "progress values repeat: {values:?}"
    );
    let _ = client.cancel().await;
}

both_stores!(
    results_and_failures,
    gateway_killed_mid_pipeline,
    mcp_call_through_real_actors
);

/// p-th percentile of sorted `v` (milliseconds).
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// BENCHMARKS.md "Gateway": tool calls per second and the gateway's added latency, against
/// the same echo actor fed directly (baseline), over SQLite and PostgreSQL.
///
/// `cargo nextest run -p asya-sidecar --run-ignored only -E 'test(gateway_bench)' --no-capture`
/// (env `GATEWAY_BENCH_CALLS`, default 300; `GATEWAY_BENCH_CONCURRENCY`, default 16).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run by the command in BENCHMARKS.md"]
async fn gateway_bench() {
    if !servers_available(B) {
        return;
    }
    let calls: usize = std::env::var("GATEWAY_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let conc: usize = std::env::var("GATEWAY_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let seq = (calls / 3).max(20);

    // Baseline: the envelope published straight to the echo actor, taken off x-sink's queue.
    let mut base = Mesh::new(B).await;
    base.actor(
        "echo",
        "asya_test_handlers.echo",
        &[("ASYA_CONCURRENCY", "8")],
    )
    .await;
    let sink = base.consumer("x-sink", 64).await;
    rate(&base, &sink, "warm", 50, None).await;
    let mut base_lat = Vec::new();
    for i in 0..seq {
        let t = Instant::now();
        base.publish("echo", &echo_envelope(&format!("lat-{i}"), None))
            .await;
        let (seen, _) = collect_ids(&sink, 1, LONG, |_| {}).await;
        assert_eq!(seen.len(), 1);
        base_lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    base_lat.sort_by(f64::total_cmp);
    let base_rate = rate(&base, &sink, "rate", calls, None).await;
    println!(
        "baseline (publish to echo, take from x-sink queue): {base_rate:.0} msg/s; latency p50 {:.2} ms, p99 {:.2} ms",
        pct(&base_lat, 0.5),
        pct(&base_lat, 0.99)
    );

    for db in [Db::Sqlite, Db::Postgres] {
        let mut mesh = Mesh::new(B).await;
        mesh.actor(
            "echo",
            "asya_test_handlers.echo",
            &[("ASYA_CONCURRENCY", "8")],
        )
        .await;
        mesh.end_actor("x-sink").await;
        // x-sink without storage (it logs the envelope): the baseline stores nothing either,
        // and moto, a single-threaded emulator, would set the pace.
        let sink = mesh.procs("x-sink");
        sink.kill_sidecar();
        sink.env.retain(|(k, _)| k != "ASYA_S3_BUCKET");
        sink.start_sidecar();
        let Some(database) = Database::new(db, &mesh) else {
            continue;
        };
        let gw = std::sync::Arc::new(Gateway::start(&mesh, &database).await);
        let call = |gw: std::sync::Arc<Gateway>, i: usize| async move {
            let t = Instant::now();
            let id = gw
                .start_task("echo", json!({"text": format!("c{i}")}))
                .await;
            let h = gw.history(&id).await;
            assert_eq!(
                h.last().map(|u| u["status"].clone()),
                Some(json!("succeeded")),
                "{h:?}"
            );
            t.elapsed().as_secs_f64() * 1000.0
        };
        for i in 0..20 {
            call(gw.clone(), i).await;
        }
        let mut lat = Vec::new();
        for i in 0..seq {
            lat.push(call(gw.clone(), i).await);
        }
        lat.sort_by(f64::total_cmp);
        let t = Instant::now();
        let mut workers = Vec::new();
        for w in 0..conc {
            let gw = gw.clone();
            let mine = (w..calls).step_by(conc).collect::<Vec<_>>();
            workers.push(tokio::spawn(async move {
                for i in mine {
                    call(gw.clone(), i).await;
                }
            }));
        }
        for w in workers {
            w.await.expect("worker");
        }
        let gw_rate = calls as f64 / t.elapsed().as_secs_f64();
        let (p50, p99) = (pct(&lat, 0.5), pct(&lat, 0.99));
        println!(
            "{db:?}: {gw_rate:.0} calls/s at {conc} concurrent callers ({:.2} × baseline msg/s); \
             call latency p50 {p50:.2} ms, p99 {p99:.2} ms; added over baseline p50 {:.2} ms, p99 {:.2} ms",
            gw_rate / base_rate,
            p50 - pct(&base_lat, 0.5),
            p99 - pct(&base_lat, 0.99),
        );
    }
}
