//! The gateway against real servers: RabbitMQ (ASYA_TEST_RABBITMQ_URL, from
//! `tests/servers/up.sh`), PostgreSQL (ASYA_TEST_POSTGRES_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres; a fresh database per test) and SQLite (a
//! temporary file). The same scenarios run over both stores.
//!
//! The pipeline's reports are made here with plain HTTP calls to the mesh listener, as an
//! actor's sidecar and x-sink will: the envelope is taken from the first actor's real
//! queue with the transport crate, and its id addresses the reports.

mod common;

use common::{nothing_arrives, rabbit_url, receive, unique};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asya_contract::env as names;
use asya_gateway::config::ToolsConfig;
use asya_gateway::publish::{BrokerSettings, Publisher};
use asya_gateway::store::Store;
use asya_gateway::{Gateway, serve};
use asya_transport::rabbitmq::RabbitMq;
use serde_json::{Value, json};

const TOOLS: &str = "\
routes:
  tools:
  - name: text-processor
    description: Process text with ML model
    parameters:
      text:
        type: string
        required: true
        description: the text
      model:
        type: string
        default: small
        options: [small, large]
    route: [text-preprocess, text-infer, text-postprocess]
    timeout: 20s
  - name: slow
    description: Never answers in time
    route: [slow-actor]
    timeout: 1
";

#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

/// A database URL for one test: a new SQLite file, or a new PostgreSQL database.
async fn database(db: Db, dir: &tempfile::TempDir) -> Option<String> {
    match db {
        Db::Sqlite => Some(format!("sqlite:{}", dir.path().join("tasks.db").display())),
        Db::Postgres => common::postgres_database().await.map(|d| d.url),
    }
}

struct Harness {
    api: String,
    mesh: String,
    http: reqwest::Client,
    rabbit: String,
    namespace: String,
    db_url: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    async fn start(db: Db) -> Option<Harness> {
        let rabbit = rabbit_url()?;
        let dir = tempfile::tempdir().unwrap();
        let db_url = database(db, &dir).await?;
        let namespace = unique("gwt");
        let mut h = Harness {
            api: String::new(),
            mesh: String::new(),
            http: reqwest::Client::new(),
            rabbit,
            namespace,
            db_url,
            _dir: dir,
            stop: None,
            server: None,
        };
        h.boot().await;
        Some(h)
    }

    /// Starts (or restarts) the gateway on fresh ports over the same database and broker.
    async fn boot(&mut self) {
        let env: HashMap<&str, String> = HashMap::from([
            (names::NAMESPACE, self.namespace.clone()),
            (names::RABBITMQ_URL, self.rabbit.clone()),
        ]);
        let broker = BrokerSettings::from_env(|k| env.get(k).cloned()).unwrap();
        let tools = ToolsConfig::parse("tools.yaml", TOOLS).unwrap();
        let store = Store::connect(&self.db_url).await.unwrap();
        let publisher = Publisher::connect(&broker).await.unwrap();
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mesh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.api = format!("http://{}", api.local_addr().unwrap());
        self.mesh = format!("http://{}", mesh.local_addr().unwrap());
        let gw = Gateway::new(tools, store, publisher, Some(self.mesh.clone()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.server = Some(tokio::spawn(async move {
            serve(gw, api, mesh, &[], async move {
                let _ = rx.await;
            })
            .await
        }));
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = s.await;
        }
    }

    /// A consumer of `actor`'s queue (declared now, so nothing published later is lost).
    async fn consumer(&self, actor: &str) -> RabbitMq {
        common::consumer(&self.rabbit, &self.namespace, actor).await
    }

    /// `POST /tasks` for `tool` with `arguments`; the new task's id (201 required).
    async fn start_task(&self, tool: &str, arguments: Value) -> String {
        let (s, task) = self
            .post(
                format!("{}/tasks", self.api),
                json!({"tool": tool, "arguments": arguments}),
            )
            .await;
        assert_eq!(s, 201, "{task}");
        task["id"].as_str().unwrap().to_string()
    }

    async fn post(&self, url: String, body: Value) -> (u16, Value) {
        let r = self.http.post(url).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn progress(
        &self,
        id: &str,
        prev: &[&str],
        curr: &str,
        next: &[&str],
        step: &str,
    ) -> Value {
        let (s, v) = self
            .post(
                format!("{}/mesh/{id}/progress", self.mesh),
                json!({"prev": prev, "curr": curr, "next": next, "status": step}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn finish(&self, id: &str, body: Value) -> Value {
        let (s, v) = self
            .post(format!("{}/mesh/{id}/final", self.mesh), body)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// The SSE stream of task `id`, read to its end: (event, id, data) per event.
    async fn stream(&self, id: &str) -> Vec<(String, String, Value)> {
        let r = self
            .http
            .get(format!("{}/tasks/{id}/stream", self.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let text = tokio::time::timeout(Duration::from_secs(20), r.text())
            .await
            .expect("the stream did not end after the final update")
            .unwrap();
        parse_sse(&text)
    }
}

fn parse_sse(text: &str) -> Vec<(String, String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let (mut ev, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    ev = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            (!ev.is_empty()).then(|| (ev, id, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

// ------------------------------------------------------------------ scenarios

/// POST /tasks publishes the envelope to the first actor's queue; reports through the mesh
/// listener move the task along; GET and the SSE stream show every update in order, then
/// the result.
async fn task_runs_through_rest_mesh_and_sse(db: Db) {
    let Some(mut h) = Harness::start(db).await else {
        return;
    };
    let first = h.consumer("text-preprocess").await;
    let (s, task) = h
        .post(
            format!("{}/tasks", h.api),
            json!({"tool": "text-processor", "arguments": {"text": "hello"}}),
        )
        .await;
    assert_eq!(s, 201, "{task}");
    assert_eq!(task["status"], "pending");
    assert_eq!(
        task["arguments"],
        json!({"text": "hello", "model": "small"})
    );
    let id = task["id"].as_str().unwrap().to_string();

    let env = receive(&first).await;
    assert_eq!(env["id"], id.as_str());
    assert_eq!(
        env["route"],
        json!({"prev": [], "curr": "text-preprocess", "next": ["text-infer", "text-postprocess"]})
    );
    assert_eq!(env["payload"], json!({"text": "hello", "model": "small"}));
    assert_eq!(env["headers"]["x-asya-gateway-url"], h.mesh.as_str());
    assert_eq!(env["status"]["phase"], "pending");
    // The pipeline's deadline: created + the tool's 20 s, rounded up to the second.
    let secs = |field: &str| {
        let text = env["status"][field].as_str().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("status.{field} {text:?}: {e}"))
            .timestamp()
    };
    let ahead = secs("deadline_at") - secs("created_at");
    assert!(
        (20..=21).contains(&ahead),
        "deadline_at - created_at = {ahead} s"
    );

    h.progress(
        &id,
        &[],
        "text-preprocess",
        &["text-infer", "text-postprocess"],
        "received",
    )
    .await;
    h.progress(
        &id,
        &[],
        "text-preprocess",
        &["text-infer", "text-postprocess"],
        "completed",
    )
    .await;
    h.progress(
        &id,
        &["text-preprocess"],
        "text-infer",
        &["text-postprocess"],
        "processing",
    )
    .await;
    let (_, mid) = h.get(&format!("/tasks/{id}")).await;
    assert_eq!(mid["status"], "running");
    assert_eq!(mid["actor"], "text-infer");
    assert_eq!(mid["progress"], json!(50.0));

    let done = h
        .finish(
            &id,
            json!({"status": "succeeded", "result": {"text": "HELLO"}, "actor": "x-sink"}),
        )
        .await;
    assert_eq!(done["applied"], true);
    let (s, t) = h.get(&format!("/tasks/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["result"], json!({"text": "HELLO"}));
    assert_eq!(t["progress"], json!(100.0));

    let events = h.stream(&id).await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|(_, _, d)| {
            (
                d["status"].as_str().unwrap().to_string(),
                d["actor"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("pending", ""),
            ("running", "text-preprocess"),
            ("running", "text-preprocess"),
            ("running", "text-infer"),
            ("succeeded", "x-sink"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let seqs: Vec<i64> = events
        .iter()
        .map(|(_, id, _)| id.parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(events.iter().all(|(e, _, _)| e == "update"));
    assert_eq!(events.last().unwrap().2["result"], json!({"text": "HELLO"}));
    h.shutdown().await;
}

/// A stream opened before the task finishes gets the live updates and ends with the
/// failure (type and message).
async fn live_stream_ends_with_the_failure(db: Db) {
    let Some(mut h) = Harness::start(db).await else {
        return;
    };
    let first = h.consumer("text-preprocess").await;
    let id = h
        .start_task("text-processor", json!({"text": "x", "model": "large"}))
        .await;
    receive(&first).await;
    let reader = {
        let (http, api, id) = (h.http.clone(), h.api.clone(), id.clone());
        tokio::spawn(async move {
            let r = http
                .get(format!("{api}/tasks/{id}/stream"))
                .send()
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(20), r.text())
                .await
                .unwrap()
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.progress(
        &id,
        &[],
        "text-preprocess",
        &["text-infer", "text-postprocess"],
        "processing",
    )
    .await;
    h.finish(
        &id,
        json!({"status": "failed", "error": {"type": "ValueError", "message": "bad text"}, "actor": "text-preprocess"}),
    )
    .await;
    let events = parse_sse(&reader.await.unwrap());
    let statuses: Vec<&str> = events
        .iter()
        .map(|(_, _, d)| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "running", "failed"]);
    assert_eq!(
        events[2].2["error"],
        json!({"type": "ValueError", "message": "bad text"})
    );
    h.shutdown().await;
}

/// Bad arguments name the parameter, expected and found; nothing is published.
async fn bad_arguments_publish_nothing(db: Db) {
    let Some(mut h) = Harness::start(db).await else {
        return;
    };
    let first = h.consumer("text-preprocess").await;
    let (s, e) = h
        .post(
            format!("{}/tasks", h.api),
            json!({"tool": "text-processor", "arguments": {"text": 42}}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        e["error"],
        json!({
            "type": "InvalidArguments",
            "message": "tool text-processor: parameter text: expected a string, got number 42",
            "parameter": "text", "expected": "a string", "found": "number 42",
        })
    );
    let (s, e) = h
        .post(format!("{}/tasks", h.api), json!({"tool": "nope"}))
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        e["error"]["message"],
        "unknown tool \"nope\"; configured tools: text-processor, slow"
    );
    let (s, e) = h
        .post(format!("{}/tasks", h.api), json!({"tol": "x"}))
        .await;
    assert_eq!(s, 400, "{e}");
    nothing_arrives(&first).await;
    h.shutdown().await;
}

/// Reports after the final one, repeated finals and unknown tasks change nothing.
async fn late_reports_are_not_applied(db: Db) {
    let Some(mut h) = Harness::start(db).await else {
        return;
    };
    let id = h.start_task("text-processor", json!({"text": "x"})).await;
    // An earlier actor's report after a later one's is stale: progress and the update
    // history stay in route order.
    let ahead = h.progress(&id, &["a"], "b", &[], "completed").await;
    assert_eq!(ahead["applied"], true, "{ahead}");
    let behind = h.progress(&id, &[], "a", &["b"], "processing").await;
    assert_eq!(behind, json!({"applied": false, "status": "running"}));
    let same = h.progress(&id, &["a"], "b", &[], "completed").await;
    assert_eq!(
        same["applied"], true,
        "a repeated report at the same progress: {same}"
    );
    h.finish(&id, json!({"status": "succeeded", "result": 1}))
        .await;
    let late = h.progress(&id, &["a"], "b", &[], "completed").await;
    assert_eq!(late, json!({"applied": false, "status": "succeeded"}));
    let again = h
        .finish(&id, json!({"status": "failed", "error": "boom"}))
        .await;
    assert_eq!(again, json!({"applied": false, "status": "succeeded"}));
    let (_, t) = h.get(&format!("/tasks/{id}")).await;
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["result"], 1);
    let (s, _) = h
        .post(
            format!("{}/mesh/nope/final", h.mesh),
            json!({"status": "succeeded"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, e) = h
        .post(
            format!("{}/mesh/{id}/progress", h.mesh),
            json!({"status": "dancing"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        e["error"]["message"],
        "request body: status: expected received, processing or completed, got \"dancing\""
    );
    let (s, _) = h.get("/tasks/nope").await;
    assert_eq!(s, 404);
    h.shutdown().await;
}

/// A task started before a restart is completed after it (same database).
async fn task_survives_a_restart(db: Db) {
    let Some(mut h) = Harness::start(db).await else {
        return;
    };
    let id = h.start_task("text-processor", json!({"text": "x"})).await;
    h.progress(
        &id,
        &[],
        "text-preprocess",
        &["text-infer", "text-postprocess"],
        "completed",
    )
    .await;
    h.shutdown().await;
    h.boot().await;
    h.finish(&id, json!({"status": "succeeded", "result": "ok"}))
        .await;
    let (_, t) = h.get(&format!("/tasks/{id}")).await;
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["result"], "ok");
    let statuses: Vec<String> = h
        .stream(&id)
        .await
        .iter()
        .map(|(_, _, d)| d["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["pending", "running", "succeeded"]);
    let (s, _) = h.get("/readyz").await;
    assert_eq!(s, 200);
    h.shutdown().await;
}

/// The deadline sweep (`reaper`), run by a second gateway over the same store as another
/// replica would: a task past its deadline with no final report is failed
/// (`DeadlineExceeded`), one within its timeout is left alone, and a final report that
/// arrives after the sweep is not applied.
async fn overdue_tasks_are_failed_by_the_sweep(db: Db) {
    let Some(mut h) = Harness::start(db).await else {
        return;
    };
    // `slow`: timeout 1 s, and nothing consumes its queue.
    let late = h.start_task("slow", json!({})).await;
    let fresh = h.start_task("text-processor", json!({"text": "x"})).await;

    let env: HashMap<&str, String> = HashMap::from([
        (names::NAMESPACE, h.namespace.clone()),
        (names::RABBITMQ_URL, h.rabbit.clone()),
    ]);
    let broker = BrokerSettings::from_env(|k| env.get(k).cloned()).unwrap();
    let replica = Gateway::new(
        ToolsConfig::parse("tools.yaml", TOOLS).unwrap(),
        Store::connect(&h.db_url).await.unwrap(),
        Publisher::connect(&broker).await.unwrap(),
        None,
    );
    let sweep = tokio::spawn(asya_gateway::reaper::run(
        replica,
        Duration::from_millis(500),
        Duration::from_millis(200),
    ));
    let mut task = Value::Null;
    for _ in 0..50 {
        task = h.get(&format!("/tasks/{late}")).await.1;
        if task["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sweep.abort();
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(task["error"]["type"], "DeadlineExceeded", "{task}");
    assert_eq!(
        h.get(&format!("/tasks/{fresh}")).await.1["status"],
        "pending"
    );
    let (code, body) = h
        .post(
            format!("{}/mesh/{late}/final", h.mesh),
            json!({"status": "succeeded", "result": "too late"}),
        )
        .await;
    assert_eq!(
        (code, body["applied"].clone()),
        (200, json!(false)),
        "{body}"
    );
    h.shutdown().await;
}

macro_rules! over_both_stores {
    ($($name:ident),* $(,)?) => {
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

over_both_stores!(
    task_runs_through_rest_mesh_and_sse,
    live_stream_ends_with_the_failure,
    bad_arguments_publish_nothing,
    late_reports_are_not_applied,
    task_survives_a_restart,
    overdue_tasks_are_failed_by_the_sweep,
);

// ------------------------------------------------------------------ MCP

mod mcp {
    use super::*;
    use rmcp::model::{CallToolRequestParams, ClientRequest, Request, ServerResult};
    use rmcp::service::{NotificationContext, PeerRequestOptions};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::{ClientHandler, RoleClient, ServiceExt};

    /// One progress notification: value and message.
    type Seen = (f64, Option<String>);

    /// Records progress notifications.
    #[derive(Clone, Default)]
    struct Client {
        progress: Arc<Mutex<Vec<Seen>>>,
    }

    impl ClientHandler for Client {
        async fn on_progress(
            &self,
            params: rmcp::model::ProgressNotificationParam,
            _context: NotificationContext<RoleClient>,
        ) {
            self.progress
                .lock()
                .unwrap()
                .push((params.progress, params.message));
        }
    }

    fn args(v: Value) -> CallToolRequestParams {
        let mut p = CallToolRequestParams::new("text-processor");
        p.arguments = v.as_object().cloned();
        p
    }

    /// rmcp's client lists the tools (schema from the parameters) and calls one: the
    /// envelope reaches the first actor's queue, the pipeline's reports come back as
    /// progress notifications in route order, and the result is the call's answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rmcp_client_lists_and_calls_a_tool() {
        let Some(mut h) = Harness::start(Db::Sqlite).await else {
            return;
        };
        let first = h.consumer("text-preprocess").await;
        let recorder = Client::default();
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", h.api)),
        );
        let client = recorder
            .clone()
            .serve(transport)
            .await
            .expect("MCP initialize");

        let tools = client.list_all_tools().await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["text-processor", "slow"]);
        assert_eq!(
            Value::Object((*tools[0].input_schema).clone()),
            json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "the text"},
                    "model": {"type": "string", "default": "small", "enum": ["small", "large"]},
                },
                "required": ["text"],
                "additionalProperties": false,
            })
        );

        // The pipeline: takes the envelope off the real queue and reports as actors would.
        let pipeline = {
            let (http, mesh) = (h.http.clone(), h.mesh.clone());
            tokio::spawn(async move {
                let env = receive(&first).await;
                let id = env["id"].as_str().unwrap().to_string();
                let route = ["text-preprocess", "text-infer", "text-postprocess"];
                for (i, actor) in route.iter().enumerate() {
                    let body = json!({"prev": route[..i], "curr": actor, "next": route[i + 1..], "status": "completed"});
                    http.post(format!("{mesh}/mesh/{id}/progress"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                }
                let text = env["payload"]["text"].as_str().unwrap().to_uppercase();
                http.post(format!("{mesh}/mesh/{id}/final"))
                    .json(&json!({"status": "succeeded", "result": {"text": text}}))
                    .send()
                    .await
                    .unwrap();
                env
            })
        };
        let handle = client
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(args(json!({"text": "hello"})))),
                PeerRequestOptions::no_options(),
            )
            .await
            .unwrap();
        let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
            panic!("not a tool result")
        };
        let env = pipeline.await.unwrap();
        assert_eq!(env["payload"], json!({"text": "hello", "model": "small"}));
        assert_eq!(result.is_error, Some(false));
        assert_eq!(result.structured_content, Some(json!({"text": "HELLO"})));
        // Notifications are handled by the client concurrently with the response.
        for _ in 0..40 {
            if recorder.progress.lock().unwrap().len() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // rmcp's client runs each notification's handler in a task of its own, so they
        // reach the recorder in any order (the wire order is the server's): sort them.
        recorder
            .progress
            .lock()
            .unwrap()
            .sort_by(|a, b| a.0.total_cmp(&b.0));
        let progress: Vec<f64> = recorder
            .progress
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.0)
            .collect();
        // pending (0), then each actor completed (1/3, 2/3, 3/3 of the route); the final
        // update adds no progress, so no notification.
        let want = [0.0, 100.0 / 3.0, 200.0 / 3.0, 100.0];
        assert_eq!(progress.len(), want.len(), "{progress:?}");
        assert!(
            progress.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-9),
            "{progress:?}"
        );
        let messages: Vec<Option<String>> = recorder
            .progress
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.1.clone())
            .collect();
        assert_eq!(
            messages,
            [
                Some("task created".to_string()),
                Some("text-preprocess: completed".to_string()),
                Some("text-infer: completed".to_string()),
                Some("text-postprocess: completed".to_string()),
            ]
        );

        // Bad arguments: an MCP error naming the parameter; nothing published.
        let err = client
            .call_tool(args(json!({"text": "x", "model": "huge"})))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "parameter model: expected one of [\"small\",\"large\"], got string \"huge\""
            ),
            "{err}"
        );
        nothing_arrives(&h.consumer("text-preprocess").await).await;

        // Past the tool's timeout the call answers with the task id and where to follow it.
        let mut slow = CallToolRequestParams::new("slow");
        slow.arguments = None;
        let r = client.call_tool(slow).await.unwrap();
        let sc = r.structured_content.unwrap();
        assert_eq!(sc["status"], "pending");
        let id = sc["task_id"].as_str().unwrap();
        assert_eq!(sc["links"]["stream"], format!("/tasks/{id}/stream"));
        let (s, t) = h.get(&format!("/tasks/{id}")).await;
        assert_eq!((s, t["tool"].clone()), (200, json!("slow")));
        client.cancel().await.ok();
        h.shutdown().await;
    }
}

// ------------------------------------------------------------------ the binary

/// A broken tools file stops the binary with file, line, field path, expected and found.
#[test]
fn binary_rejects_a_bad_tools_file_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tools.yaml");
    std::fs::write(
        &file,
        "tools:\n- name: a\n  description: d\n  route: [x]\n  parameters:\n    n:\n      type: int\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_asya-gateway"))
        .arg("--config")
        .arg(&file)
        .env(names::NAMESPACE, "t")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:7:7: tools[0].parameters.n.type: expected one of string, number, integer, boolean, object, array, got \"int\"",
        file.display()
    );
    assert!(err.contains(&want), "{err}");
}
