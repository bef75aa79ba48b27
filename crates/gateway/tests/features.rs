//! The `asya-gateway` binary as a pod runs it, against real RabbitMQ
//! (ASYA_TEST_RABBITMQ_URL), SQS on moto (ASYA_TEST_AWS_ENDPOINT) and a SQLite file:
//! bearer-token auth, `/metrics`, the tools file re-read when it changes, publishing to
//! SQS, `--check-config`.
//!
//! The pipeline's reports are plain HTTP calls to the mesh listener, as a sidecar and
//! x-sink make them; envelopes are taken off the first actor's real queue.

mod common;

use common::{nothing_arrives, rabbit_url, receive, unique};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asya_contract::env as names;
use asya_transport::Transport;
use asya_transport::rabbitmq::RabbitMq;
use asya_transport::sqs::{SqsAdmin, SqsConfig, SqsTransport};
use serde_json::{Value, json};

const TOOLS: &str = "\
routes:
  tools:
  - name: text-processor
    description: Process text with ML model
    parameters:
      text: {type: string, required: true}
      model: {type: string, default: small, options: [small, large]}
    route: [text-preprocess, text-infer, text-postprocess]
    timeout: 20s
";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `text` to `path` in one step (rename), as a ConfigMap update swaps the file: a
/// reader never sees half a file.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A running gateway binary; killed on drop.
struct Gw {
    child: Child,
    api: String,
    mesh: String,
    rabbit: String,
    namespace: String,
    log: PathBuf,
    tools: PathBuf,
    http: reqwest::Client,
    token: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gw {
    /// Starts the binary on RabbitMQ with TOOLS, a SQLite file and a 1 s reload interval;
    /// `token`: the content of a token file given with --auth-token-file.
    async fn start(token: Option<&str>) -> Option<Gw> {
        let rabbit = rabbit_url()?;
        let env = [(names::RABBITMQ_URL, rabbit.clone())];
        Some(Gw::start_with(TOOLS, token, &env, rabbit, unique("gwf")).await)
    }

    async fn start_with(
        tools_text: &str,
        token_file: Option<&str>,
        env: &[(&str, String)],
        rabbit: String,
        namespace: String,
    ) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        let tools = dir.path().join("tools.yaml");
        std::fs::write(&tools, tools_text).unwrap();
        let log = dir.path().join("gateway.log");
        let out = std::fs::File::create(&log).unwrap();
        let (api_port, mesh_port) = (free_port(), free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_asya-gateway"));
        cmd.arg("--config").arg(&tools);
        if !env.iter().any(|(k, _)| *k == "ASYA_DATABASE_URL") {
            cmd.arg("--database-url")
                .arg(format!("sqlite:{}", dir.path().join("tasks.db").display()));
        }
        cmd.arg(format!("--listen=127.0.0.1:{api_port}"))
            .arg(format!("--mesh-listen=127.0.0.1:{mesh_port}"))
            .arg(format!("--mesh-url=http://127.0.0.1:{mesh_port}"))
            .arg("--reload-interval=1")
            .env(names::NAMESPACE, &namespace)
            .env(names::LOG_LEVEL, "info")
            .env_remove("ASYA_GATEWAY_AUTH_TOKEN")
            .env_remove("ASYA_GATEWAY_AUTH_TOKEN_FILE")
            .env_remove("ASYA_DATABASE_URL")
            .env_remove("ASYA_DATABASE_PASSWORD")
            // after the removals: the caller's variables win
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            // one descriptor for both, so neither overwrites the other
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        let mut token = None;
        if let Some(t) = token_file {
            let f = dir.path().join("token");
            std::fs::write(&f, format!("{t}\n")).unwrap();
            cmd.arg("--auth-token-file").arg(&f);
            token = Some(t.to_string());
        }
        let child = cmd.spawn().unwrap();
        let gw = Gw {
            child,
            api: format!("http://127.0.0.1:{api_port}"),
            mesh: format!("http://127.0.0.1:{mesh_port}"),
            rabbit,
            namespace,
            log,
            tools,
            http: reqwest::Client::new(),
            token,
            _dir: dir,
        };
        gw.wait_ready().await;
        gw
    }

    async fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.api)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the gateway did not become ready:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    fn token_file(&self) -> PathBuf {
        self._dir.path().join("token")
    }

    /// A consumer of `actor`'s queue (declared now, so nothing published later is lost).
    async fn consumer(&self, actor: &str) -> RabbitMq {
        common::consumer(&self.rabbit, &self.namespace, actor).await
    }

    /// POST to the API with the configured token (if any).
    async fn post_task(&self, body: Value) -> (u16, Value) {
        let mut r = self.http.post(format!("{}/tasks", self.api)).json(&body);
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn mesh(&self, id: &str, what: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/mesh/{id}/{what}", self.mesh))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn metrics(&self) -> String {
        let r = self
            .http
            .get(format!("{}/metrics", self.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "/metrics needs no token");
        r.text().await.unwrap()
    }
}

/// The value of the sample `name{labels}` in Prometheus text (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

// ------------------------------------------------------------------ auth

/// With a token file, /mcp and /tasks answer 401 (with the RFC 6750 challenge) unless the
/// request carries the token; probes, /metrics and the mesh listener need none; a rotated
/// token file takes effect without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_guards_mcp_and_tasks_only() {
    let Some(mut gw) = Gw::start(Some("s3cret")).await else {
        return;
    };
    let first = gw.consumer("text-preprocess").await;
    let body = json!({"tool": "text-processor", "arguments": {"text": "hi"}});

    let r = gw
        .http
        .post(format!("{}/tasks", gw.api))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"asya-gateway\""
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "Unauthorized");

    let r = gw
        .http
        .post(format!("{}/tasks", gw.api))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"asya-gateway\", error=\"invalid_token\""
    );
    let r = gw
        .http
        .post(format!("{}/mcp", gw.api))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "/mcp without a token");
    let r = gw
        .http
        .get(format!("{}/tasks/some-id", gw.api))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "GET /tasks/{{id}} without a token"
    );
    nothing_arrives(&first).await;

    // open: probes, metrics
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = gw
            .http
            .get(format!("{}{path}", gw.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }

    // with the token: the task starts; the mesh listener takes reports without one
    let (s, task) = gw.post_task(body.clone()).await;
    assert_eq!(s, 201, "{task}");
    let id = task["id"].as_str().unwrap().to_string();
    assert_eq!(receive(&first).await["id"], id.as_str());
    let (s, v) = gw
        .mesh(
            &id,
            "final",
            json!({"status": "succeeded", "result": {"ok": 1}}),
        )
        .await;
    assert_eq!((s, &v["applied"]), (200, &json!(true)), "{v}");

    // MCP with the token, through rmcp's client
    {
        use rmcp::ServiceExt;
        use rmcp::transport::StreamableHttpClientTransport;
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        let cfg = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", gw.api))
            .auth_header("s3cret");
        let client =
            ().serve(StreamableHttpClientTransport::from_config(cfg))
                .await
                .expect("MCP initialize with the token");
        let tools = client.list_all_tools().await.unwrap();
        assert_eq!(tools.len(), 1);
        let _ = client.cancel().await;
    }

    // rotate: the new token works and the old one stops, without a restart
    replace_file(&gw.token_file(), "n3w-token\n");
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = gw.post_task(body.clone()).await;
        if s == 401 {
            break;
        }
        assert!(Instant::now() < until, "the old token still works");
        receive(&first).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gw.token = Some("n3w-token".into());
    let (s, v) = gw.post_task(body).await;
    assert_eq!(s, 201, "{v}");
    assert!(
        gw.log_text().contains("auth token reloaded"),
        "{}",
        gw.log_text()
    );
    let m = gw.metrics().await;
    assert!(
        sample(&m, "asya_gateway_unauthorized_requests_total") >= 5.0,
        "{m}"
    );
}

// ------------------------------------------------------------------ metrics

/// Tasks created by tool and outcome, mesh reports applied and ignored, the task duration
/// and MCP calls, read back from /metrics after real calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_tasks_reports_and_mcp_calls() {
    let Some(gw) = Gw::start(None).await else {
        return;
    };
    let first = gw.consumer("text-preprocess").await;
    let m = gw.metrics().await;
    assert_eq!(sample(&m, "asya_gateway_tools"), 1.0, "{m}");

    let (s, task) = gw
        .post_task(json!({"tool": "text-processor", "arguments": {"text": "hi"}}))
        .await;
    assert_eq!(s, 201);
    let id = task["id"].as_str().unwrap().to_string();
    receive(&first).await;
    let (s, _) = gw
        .post_task(json!({"tool": "text-processor", "arguments": {"text": 1}}))
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw.post_task(json!({"tool": "nope", "arguments": {}})).await;
    assert_eq!(s, 404);

    let route = ["text-preprocess", "text-infer", "text-postprocess"];
    let (s, _) = gw
        .mesh(
            &id,
            "progress",
            json!({"prev": [], "curr": route[0], "next": route[1..], "status": "completed"}),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let done = json!({"status": "succeeded", "result": {"text": "HI"}});
    assert_eq!(gw.mesh(&id, "final", done.clone()).await.1["applied"], true);
    assert_eq!(
        gw.mesh(&id, "final", done.clone()).await.1["applied"],
        false
    );
    assert_eq!(gw.mesh("no-such-task", "final", done).await.0, 404);
    assert_eq!(
        gw.mesh(&id, "progress", json!({"status": "sleeping"}))
            .await
            .0,
        400
    );

    // MCP: a list and a call with a bad argument
    {
        use rmcp::ServiceExt;
        use rmcp::model::CallToolRequestParams;
        use rmcp::transport::StreamableHttpClientTransport;
        let client = ()
            .serve(StreamableHttpClientTransport::from_uri(format!(
                "{}/mcp",
                gw.api
            )))
            .await
            .unwrap();
        client.list_all_tools().await.unwrap();
        let mut p = CallToolRequestParams::new("text-processor");
        p.arguments = json!({"text": "x", "model": "huge"}).as_object().cloned();
        assert!(client.call_tool(p).await.is_err());
        let _ = client.cancel().await;
    }
    nothing_arrives(&first).await;

    let m = gw.metrics().await;
    let want = [
        (
            r#"asya_gateway_tasks_created_total{tool="text-processor",outcome="created"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_tasks_created_total{tool="text-processor",outcome="invalid_arguments"}"#,
            2.0,
        ),
        (
            r#"asya_gateway_tasks_created_total{tool="(unknown)",outcome="unknown_tool"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_mesh_reports_total{kind="progress",result="applied"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_mesh_reports_total{kind="final",result="applied"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_mesh_reports_total{kind="final",result="ignored"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_mesh_reports_total{kind="final",result="not_found"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_mesh_reports_total{kind="progress",result="bad_request"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_task_duration_seconds_count{tool="text-processor",status="succeeded"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_mcp_calls_total{method="tools/list",tool="",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"asya_gateway_mcp_calls_total{method="tools/call",tool="text-processor",outcome="invalid_params"}"#,
            1.0,
        ),
    ];
    for (series, v) in want {
        assert_eq!(sample(&m, series), v, "{series} in\n{m}");
    }
    // the task took at least the 300 ms between its reports
    let secs = sample(
        &m,
        r#"asya_gateway_task_duration_seconds_sum{tool="text-processor",status="succeeded"}"#,
    );
    assert!((0.3..20.0).contains(&secs), "duration {secs} in\n{m}");
}

// ------------------------------------------------------------------ reload

/// A changed tools file replaces the tools without a restart; a broken one is logged with
/// its position and the old tools stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_file_is_reloaded_and_a_bad_one_keeps_the_old_tools() {
    let Some(gw) = Gw::start(None).await else {
        return;
    };
    let echo = gw.consumer("echo").await;
    let first = gw.consumer("text-preprocess").await;

    // broken: a typo at line 5, column 3
    replace_file(
        &gw.tools,
        "tools:\n- name: echo\n  description: Echo\n  route: [echo]\n  timout: 5s\n",
    );
    let want = format!(
        "{}:5:3: tools[0].timout: expected one of name, description, parameters, route, timeout, got unknown field \"timout\"",
        gw.tools.display()
    );
    let until = Instant::now() + Duration::from_secs(10);
    while !gw.log_text().contains(&want) {
        assert!(
            Instant::now() < until,
            "no error naming the position:\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gw.log_text().contains("the old tools stay in use"));
    let (s, v) = gw
        .post_task(json!({"tool": "text-processor", "arguments": {"text": "still"}}))
        .await;
    assert_eq!(s, 201, "the old tools are still in use: {v}");
    receive(&first).await;
    let m = gw.metrics().await;
    assert_eq!(
        sample(&m, r#"asya_gateway_tools_reloads_total{result="error"}"#),
        1.0,
        "{m}"
    );

    // fixed: the new tool replaces the old one
    replace_file(
        &gw.tools,
        "tools:\n- name: echo\n  description: Echo\n  route: [echo]\n  timeout: 5s\n",
    );
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = gw.post_task(json!({"tool": "echo", "arguments": {}})).await;
        if s == 201 {
            break;
        }
        assert_eq!(s, 404, "{v}");
        assert!(Instant::now() < until, "the new tools file was not read");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(receive(&echo).await["route"]["curr"], "echo");
    let (s, v) = gw
        .post_task(json!({"tool": "text-processor", "arguments": {"text": "gone"}}))
        .await;
    assert_eq!(s, 404, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("echo"));
    nothing_arrives(&first).await;
    let m = gw.metrics().await;
    assert_eq!(
        sample(&m, r#"asya_gateway_tools_reloads_total{result="ok"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(sample(&m, "asya_gateway_tools"), 1.0);
}

// ------------------------------------------------------------------ SQS

/// With ASYA_TRANSPORT=sqs the envelope goes to the first actor's SQS queue (moto), named
/// as the actor's sidecar names it; a tool whose first queue does not exist fails the
/// task with the reason (502 PublishError) instead of leaving it pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_transport_publishes_to_the_first_actors_queue() {
    let Ok(endpoint) = std::env::var("ASYA_TEST_AWS_ENDPOINT") else {
        eprintln!(
            "SKIPPED: ASYA_TEST_AWS_ENDPOINT unset; run `eval \"$(bash tests/servers/up.sh)\"`"
        );
        return;
    };
    let namespace = unique("gws");
    let mut cfg = SqsConfig::new("us-east-1", Some(endpoint.clone()));
    cfg.wait_time = Duration::from_secs(1);
    SqsAdmin::connect(&cfg)
        .await
        .unwrap()
        .ensure_actor_queue(&namespace, "text-preprocess")
        .await
        .unwrap();
    let tools = format!(
        "{TOOLS}  - name: ghost\n    description: Its queue does not exist\n    route: [ghost]\n"
    );
    let env = [
        (names::TRANSPORT, "sqs".to_string()),
        (names::AWS_REGION, "us-east-1".to_string()),
        (names::SQS_ENDPOINT, endpoint),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
    ];
    let gw = Gw::start_with(&tools, None, &env, String::new(), namespace.clone()).await;
    let first = SqsTransport::connect(cfg, &namespace, "text-preprocess")
        .await
        .unwrap();

    let (s, task) = gw
        .post_task(json!({"tool": "text-processor", "arguments": {"text": "via sqs"}}))
        .await;
    assert_eq!(s, 201, "{task}");
    let d = tokio::time::timeout(Duration::from_secs(10), first.receive())
        .await
        .expect("no envelope on the SQS queue")
        .unwrap();
    first.ack(&d).await.unwrap();
    let env: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(env["id"], task["id"]);
    assert_eq!(env["payload"], json!({"text": "via sqs", "model": "small"}));
    assert_eq!(env["route"]["curr"], "text-preprocess");

    let (s, v) = gw
        .post_task(json!({"tool": "ghost", "arguments": {}}))
        .await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(v["error"]["type"], "PublishError");
    assert_eq!(v["error"]["task"]["status"], "failed");
    let queue = format!("asya-{namespace}-ghost");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&queue),
        "{v}"
    );
}

// ------------------------------------------------------------------ store from the environment

/// The chart's way of naming the store: `ASYA_DATABASE_URL` without a password, and the
/// password apart in `ASYA_DATABASE_PASSWORD` (with characters a URL would need escaped).
/// The test server trusts local connections, so this shows that both variables are read
/// and the task lands in PostgreSQL; it cannot show that the server checked the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_url_and_password_come_from_the_environment() {
    use sqlx::{Connection, Row};
    let Some(rabbit) = rabbit_url() else {
        return;
    };
    let Some(common::PgDatabase {
        url,
        name,
        mut admin,
    }) = common::postgres_database().await
    else {
        return;
    };
    let env = [
        (names::RABBITMQ_URL, rabbit.clone()),
        ("ASYA_DATABASE_URL", url.clone()),
        ("ASYA_DATABASE_PASSWORD", "p@ss/w:rd#1".to_string()),
    ];
    let gw = Gw::start_with(TOOLS, None, &env, rabbit, unique("gwp")).await;
    assert!(
        gw.log_text().contains("store=\"postgres\""),
        "{}",
        gw.log_text()
    );
    let first = gw.consumer("text-preprocess").await;
    let (s, task) = gw
        .post_task(json!({"tool": "text-processor", "arguments": {"text": "pg"}}))
        .await;
    assert_eq!(s, 201, "{task}");
    receive(&first).await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let row = sqlx::query("SELECT tool FROM tasks WHERE id = $1")
        .bind(task["id"].as_str().unwrap())
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("tool"), "text-processor");
    drop(db);
    drop(gw);
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}

// ------------------------------------------------------------------ --check-config

/// `--check-config` reads only the file: it prints the tools, or the error with its
/// position, without a broker or a database.
#[test]
fn check_config_prints_the_tools_or_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tools.yaml");
    std::fs::write(&f, TOOLS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_asya-gateway"))
        .args(["--check-config", "--config"])
        .arg(&f)
        .env_remove(names::NAMESPACE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout,
        format!(
            "{}: 1 tool ok\n  text-processor: text-preprocess -> text-infer -> text-postprocess (parameters: text*, model; timeout 20 s)\n",
            f.display()
        )
    );
    std::fs::write(&f, "routes:\n  tools:\n  - name: a\n    description: d\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_asya-gateway"))
        .args(["--check-config", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:3:9: routes.tools[0]: expected a field route (a list of actors), got none",
            f.display()
        )),
        "{err}"
    );
}
