//! Test scenarios written once, run on each broker (`rabbitmq_*.rs`, `sqs_*.rs`).

#![allow(dead_code)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Broker, Mesh, collect_ids, envelope};

const LONG: Duration = Duration::from_secs(90);

fn status<'a>(v: &'a Value, key: &str) -> &'a Value {
    &v["status"][key]
}

/// A → B → C → x-sink: each handler's transformation arrives in storage.
pub async fn pipeline(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor("a", "asya_test_handlers.step_a", &[]).await;
    mesh.actor("b", "asya_test_handlers.step_b", &[]).await;
    mesh.actor("c", "asya_test_handlers.step_c", &[]).await;
    mesh.end_actor("x-sink").await;
    for n in 0..3 {
        let id = format!("pipe-{n}");
        mesh.publish(
            "a",
            &envelope(&id, &["a", "b", "c"], json!({"n": n, "trail": []})),
        )
        .await;
    }
    let stored = mesh.wait_stored("succeeded", 3, LONG).await;
    assert_eq!(stored.len(), 3);
    for env in stored {
        let n: i64 = env["id"].as_str().unwrap()[5..].parse().unwrap();
        assert_eq!(env["payload"]["n"], json!((n * 2 + 1) * 10), "{env}");
        assert_eq!(env["payload"]["trail"], json!(["a", "b", "c"]));
        assert_eq!(env["route"]["prev"], json!(["a", "b", "c"]));
        assert_eq!(status(&env, "phase"), "succeeded");
        assert_eq!(status(&env, "reason"), "Completed");
    }
}

/// A generator yielding N values makes N envelopes: frame 0 keeps the id,
/// the others get fresh ids and `parent_id`.
pub async fn fan_out(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor("f", "asya_test_handlers.fan_out", &[]).await;
    mesh.end_actor("x-sink").await;
    mesh.publish("f", &envelope("origin", &["f"], json!({"count": 5})))
        .await;
    let stored = mesh.wait_stored("succeeded", 5, LONG).await;
    let ids: HashSet<&str> = stored.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 5, "ids must be distinct: {ids:?}");
    assert!(ids.contains("origin"));
    let mut indexes: Vec<i64> = stored
        .iter()
        .map(|e| e["payload"]["index"].as_i64().unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1, 2, 3, 4]);
    for e in &stored {
        if e["id"] == "origin" {
            assert!(
                e.get("parent_id").is_none() || e["parent_id"].is_null(),
                "{e}"
            );
            assert_eq!(e["payload"]["index"], 0);
        } else {
            assert_eq!(e["parent_id"], "origin", "{e}");
        }
    }
}

fn exponential_policy(max_attempts: u32, initial: &str) -> String {
    json!({"transient": {"maxAttempts": max_attempts, "backoff": "exponential", "initialDelay": initial, "maxInterval": "5s"}})
        .to_string()
}

const TRANSIENT_RULE: &str = r#"[{"errors": ["TransientError"], "policy": "transient"}]"#;

/// Fails twice, then succeeds; the delays between calls respect the policy
/// (200 ms, then 400 ms).
pub async fn retries_wait_then_succeed(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    let policies = exponential_policy(5, "200ms");
    mesh.actor(
        "r",
        "asya_test_handlers.flaky",
        &[
            ("ASYA_RESILIENCY_POLICIES", &policies),
            ("ASYA_RESILIENCY_RULES", TRANSIENT_RULE),
        ],
    )
    .await;
    mesh.end_actor("x-sink").await;
    mesh.publish(
        "r",
        &envelope("flaky-1", &["r"], json!({"key": "k1", "fail_times": 2})),
    )
    .await;
    let stored = mesh.wait_stored("succeeded", 1, LONG).await;
    let env = &stored[0];
    let calls: Vec<f64> = env["payload"]["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(calls.len(), 3, "two failures then one success: {env}");
    let gaps = [calls[1] - calls[0], calls[2] - calls[1]];
    eprintln!("measured retry delays: {gaps:?} (policy: 0.2 s, 0.4 s)");
    assert!(
        gaps[0] >= 0.2,
        "first retry came after {} s < 200 ms",
        gaps[0]
    );
    assert!(
        gaps[1] >= 0.4,
        "second retry came after {} s < 400 ms",
        gaps[1]
    );
    assert!(
        gaps[0] < 15.0 && gaps[1] < 15.0,
        "retries far too slow: {gaps:?}"
    );
    assert!(mesh.store.list("failed/").await.unwrap().is_empty());
}

/// Retries run out → x-sink with phase failed and the error, and from there x-sump.
pub async fn exhausted_retries_go_to_sink_as_failed(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    let policies = exponential_policy(3, "100ms");
    mesh.actor(
        "r",
        "asya_test_handlers.always_fails",
        &[
            ("ASYA_RESILIENCY_POLICIES", &policies),
            ("ASYA_RESILIENCY_RULES", TRANSIENT_RULE),
        ],
    )
    .await;
    mesh.end_actor("x-sink").await;
    mesh.end_actor("x-sump").await;
    mesh.publish("r", &envelope("doomed", &["r", "never"], json!({"x": 1})))
        .await;
    let failed = mesh.wait_stored("failed", 1, LONG).await;
    let env = &failed[0];
    assert_eq!(status(env, "phase"), "failed", "{env}");
    assert_eq!(status(env, "reason"), "PolicyExhausted");
    assert_eq!(status(env, "attempt"), 3);
    assert_eq!(status(env, "max_attempts"), 3);
    assert!(
        status(env, "error")["type"]
            .as_str()
            .unwrap()
            .ends_with("TransientError")
    );
    assert_eq!(status(env, "error")["message"], "this handler always fails");
    assert_eq!(env["payload"]["original_payload"], json!({"x": 1}));
    // Handler failures reach x-sump through x-sink.
    let sump = mesh.wait_stored("sump", 1, LONG).await;
    assert_eq!(sump[0]["id"], "doomed");
    assert!(mesh.store.list("succeeded/").await.unwrap().is_empty());
}

/// `action: fail` sends the envelope to x-sink failed at once, no retry.
pub async fn fail_action_skips_retries(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    let policies =
        json!({"default": {"maxAttempts": 5, "backoff": "constant", "initialDelay": "10s"}})
            .to_string();
    mesh.actor(
        "r",
        "asya_test_handlers.fatal",
        &[
            ("ASYA_RESILIENCY_POLICIES", &policies),
            (
                "ASYA_RESILIENCY_RULES",
                r#"[{"errors": ["asya_test_handlers.FatalError"], "action": "fail"}]"#,
            ),
        ],
    )
    .await;
    mesh.end_actor("x-sink").await;
    let start = Instant::now();
    mesh.publish("r", &envelope("fatal-1", &["r"], json!({})))
        .await;
    let failed = mesh.wait_stored("failed", 1, LONG).await;
    let env = &failed[0];
    assert_eq!(status(env, "attempt"), 1, "no retry expected: {env}");
    assert_eq!(status(env, "reason"), "RuntimeError");
    assert_eq!(
        status(env, "error")["type"],
        "asya_test_handlers.FatalError"
    );
    // A retry would have waited the policy's 10 s first.
    assert!(start.elapsed() < Duration::from_secs(60));
}

/// Exhausted with `onExhausted`: the route is shifted properly, so the
/// fallback actor accepts the envelope.
pub async fn on_exhausted_shifts_the_route_to_the_fallback(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    let policies = json!({"transient": {"maxAttempts": 2, "backoff": "constant", "initialDelay": "100ms", "onExhausted": ["fallback"]}}).to_string();
    mesh.actor(
        "r",
        "asya_test_handlers.always_fails",
        &[
            ("ASYA_RESILIENCY_POLICIES", &policies),
            ("ASYA_RESILIENCY_RULES", TRANSIENT_RULE),
        ],
    )
    .await;
    mesh.actor("fallback", "asya_test_handlers.echo", &[]).await;
    mesh.end_actor("x-sink").await;
    mesh.publish("r", &envelope("fb-1", &["r", "unreached"], json!({"v": 7})))
        .await;
    let stored = mesh.wait_stored("succeeded", 1, LONG).await;
    let env = &stored[0];
    assert_eq!(env["route"]["prev"], json!(["r", "fallback"]), "{env}");
    assert_eq!(env["payload"], json!({"v": 7}));
}

/// A body that is not an envelope goes to x-sump with the raw body kept.
pub async fn unparseable_message_goes_to_sump(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor("a", "asya_test_handlers.echo", &[]).await;
    mesh.end_actor("x-sump").await;
    mesh.publish("a", b"this is {not json").await;
    let sump = mesh.wait_stored("sump", 1, LONG).await;
    assert_eq!(sump[0]["payload"]["raw"], "this is {not json");
    assert_eq!(status(&sump[0], "reason"), "ParseError");
    assert_eq!(status(&sump[0], "phase"), "failed");
}

/// An envelope whose `route.curr` is another actor goes to x-sump.
pub async fn route_mismatch_goes_to_sump(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor("a", "asya_test_handlers.echo", &[]).await;
    mesh.end_actor("x-sump").await;
    mesh.publish("a", &envelope("lost-1", &["someone-else"], json!({})))
        .await;
    let sump = mesh.wait_stored("sump", 1, LONG).await;
    assert_eq!(sump[0]["id"], "lost-1");
    assert_eq!(status(&sump[0], "reason"), "RouteMismatch");
}

/// `status.deadline_at` (the gateway's deadline for the whole pipeline): an envelope past
/// it goes to x-sink as failed (reason `Timeout`, `DeadlineExceeded`) without a handler
/// call; one whose deadline is nearer than the actor timeout (5 min here) has its slow
/// call ended at the deadline, and goes to x-sink too (not x-sump: the handler kept to
/// its own timeout).
pub async fn pipeline_deadline_ends_at_x_sink(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor("s", "asya_test_handlers.slow", &[]).await;
    mesh.end_actor("x-sink").await;
    let with_deadline = |id: &str, sleep: u64, at: std::time::SystemTime| {
        let mut env: Value =
            serde_json::from_slice(&envelope(id, &["s"], json!({"sleep": sleep}))).expect("json");
        env["status"] = json!({"phase": "pending", "actor": "s", "attempt": 1,
            "deadline_at": humantime::format_rfc3339_seconds(at).to_string()});
        serde_json::to_vec(&env).expect("json")
    };
    let now = std::time::SystemTime::now();
    mesh.publish(
        "s",
        &with_deadline("dl-past", 0, now - Duration::from_secs(10)),
    )
    .await;
    let started = Instant::now();
    mesh.publish(
        "s",
        &with_deadline("dl-near", 30, now + Duration::from_secs(4)),
    )
    .await;
    let failed = mesh.wait_stored("failed", 2, LONG).await;
    let took = started.elapsed();
    let by_id = |id: &str| {
        failed
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in x-sink's failed/: {failed:?}"))
    };
    let past = by_id("dl-past");
    assert_eq!(status(past, "reason"), "Timeout", "{past}");
    assert_eq!(status(past, "error")["type"], "DeadlineExceeded", "{past}");
    let near = by_id("dl-near");
    assert_eq!(status(near, "reason"), "Timeout", "{near}");
    let kind = status(near, "error")["type"].clone();
    assert!(kind == "asya.Timeout" || kind == "Timeout", "{near}");
    assert!(
        took < Duration::from_secs(20),
        "the 30 s call was not ended at its 4 s deadline: {took:?}"
    );
    assert!(
        mesh.wait_stored("succeeded", 0, Duration::from_millis(1))
            .await
            .is_empty(),
        "an envelope past its deadline was processed"
    );
}

/// A call longer than actorTimeout is abandoned: x-sump with Timeout.
pub async fn actor_timeout_sends_to_sump(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor(
        "s",
        "asya_test_handlers.slow",
        &[("ASYA_RESILIENCY_ACTOR_TIMEOUT", "1s")],
    )
    .await;
    mesh.end_actor("x-sump").await;
    mesh.publish("s", &envelope("slow-1", &["s"], json!({"sleep": 5})))
        .await;
    let sump = mesh.wait_stored("sump", 1, LONG).await;
    assert_eq!(status(&sump[0], "reason"), "Timeout");
    // The runtime enforces the deadline the sidecar sends (docs/runtime-protocol.md) and
    // answers first; the sidecar's own timer is the backstop ("Timeout").
    let kind = status(&sump[0], "error")["type"].clone();
    assert!(kind == "asya.Timeout" || kind == "Timeout", "{kind}");
}

/// What to break while 2,000 messages flow.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    KillSidecar,
    KillRuntime,
    RestartBroker,
}

/// Publishes `total` messages through one echo actor while `fault` strikes
/// twice; every id must reach x-sink (duplicates are counted and printed).
pub async fn zero_loss(broker: Broker, fault: Fault, total: usize) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor(
        "a",
        "asya_test_handlers.echo_briefly",
        &[("ASYA_CONCURRENCY", "8")],
    )
    .await;
    let sink = mesh.consumer("x-sink", 64).await;
    let started = Instant::now();
    let bodies: Vec<Vec<u8>> = (0..total)
        .map(|i| envelope(&format!("m-{i}"), &["a"], json!({"i": i})))
        .collect();
    for chunk in bodies.chunks(100) {
        futures::future::join_all(chunk.iter().map(|b| mesh.client.publish("a", b)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .expect("publish");
    }
    eprintln!("published {total} in {:?}", started.elapsed());
    let strikes = [total / 5, total * 3 / 5];
    let mut struck = 0;
    let procs = mesh.actors.get_mut("a").unwrap();
    let (seen, dups) = collect_ids(&sink, total, Duration::from_secs(180), |n| {
        if struck < strikes.len() && n >= strikes[struck] {
            struck += 1;
            eprintln!("fault {fault:?} #{struck} at {n} received");
            match fault {
                Fault::KillSidecar => {
                    procs.kill_sidecar();
                    procs.start_sidecar();
                }
                Fault::KillRuntime => {
                    procs.kill_runtime();
                    procs.start_runtime();
                }
                Fault::RestartBroker => restart_rabbitmq(),
            }
        }
    })
    .await;
    sink.close().await;
    let missing: Vec<usize> = (0..total)
        .filter(|i| !seen.contains(&format!("m-{i}")))
        .collect();
    eprintln!(
        "zero-loss {fault:?}: {} of {total} ids reached x-sink, {dups} duplicates, {} missing, in {:?}",
        seen.len(),
        missing.len(),
        started.elapsed()
    );
    if !missing.is_empty() {
        mesh.dump_logs();
    }
    assert_eq!(struck, 2, "faults were not injected");
    assert!(
        missing.is_empty(),
        "lost messages: {:?}",
        &missing[..missing.len().min(20)]
    );
}

/// `rabbitmqctl stop_app`, a pause, `start_app` (also on panic).
///
/// Every `rabbitmqctl` call is bounded: this runs inside the collector's
/// callback, and one CI run saw `stop_app` hang until nextest killed the test,
/// which left the broker stopped and failed every later RabbitMQ test. The
/// guard keeps calling `start_app` until AMQP answers again.
pub fn restart_rabbitmq() {
    struct StartGuard;
    impl Drop for StartGuard {
        fn drop(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let started = rabbitmqctl("start_app", Duration::from_secs(40));
                if started && amqp_port_open() {
                    return;
                }
                if Instant::now() >= deadline {
                    eprintln!("RabbitMQ did not come back within 120 s of start_app");
                    return;
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
    let _guard = StartGuard;
    let stopped = rabbitmqctl("stop_app", Duration::from_secs(60));
    assert!(
        stopped,
        "rabbitmqctl stop_app failed or did not finish in 60 s"
    );
    std::thread::sleep(Duration::from_secs(2));
}

/// Runs `rabbitmqctl -q <command>` under coreutils `timeout`; true on exit 0.
fn rabbitmqctl(command: &str, limit: Duration) -> bool {
    let status = std::process::Command::new("timeout")
        .args(["-k", "5", &format!("{}s", limit.as_secs())])
        .args(["rabbitmqctl", "-q", command])
        .status();
    match status {
        Ok(s) if s.success() => true,
        other => {
            eprintln!("rabbitmqctl {command}: {other:?}");
            false
        }
    }
}

fn amqp_port_open() -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 5672)),
        Duration::from_secs(2),
    )
    .is_ok()
}

/// SIGTERM while a slow handler runs: it completes, is acked, the sidecar
/// exits 0, and nothing is redelivered.
pub async fn sigterm_finishes_in_flight_work(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor(
        "s",
        "asya_test_handlers.slow",
        &[("ASYA_SHUTDOWN_GRACE", "20s")],
    )
    .await;
    let sink = mesh.consumer("x-sink", 8).await;
    // Wait until the sidecar has consumed: the handler sleeps 3 s.
    mesh.publish("s", &envelope("term-1", &["s"], json!({"sleep": 3})))
        .await;
    wait_until_taken(&mesh, "s").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let procs = mesh.procs("s");
    let code = procs.sigterm_sidecar(Duration::from_secs(30));
    assert_eq!(code, Some(0), "sidecar must exit 0 after SIGTERM");
    let (seen, dups) = collect_ids(&sink, 1, Duration::from_secs(30), |_| {}).await;
    assert!(
        seen.contains("term-1"),
        "in-flight message did not complete"
    );
    assert_eq!(dups, 0);
    // Not redelivered: a new sidecar gets nothing and nothing more reaches x-sink.
    let procs = mesh.procs("s");
    procs.start_sidecar();
    let (more, _) = collect_ids(&sink, 1, Duration::from_secs(6), |_| {}).await;
    assert!(more.is_empty(), "redelivered after SIGTERM: {more:?}");
    assert_eq!(mesh.depth("s").await, 0);
}

async fn wait_until_taken(mesh: &Mesh, actor: &str) {
    let start = Instant::now();
    while mesh.depth(actor).await > 0 {
        assert!(start.elapsed() < LONG, "sidecar never took the message");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Plain HTTP GET against a sidecar's metrics address; (status code, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// `/readyz` turns 200 once broker and runtime are up; `/metrics` counts
/// the processed message under the documented names.
pub async fn probes_and_metrics_are_served(broker: Broker) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut mesh = Mesh::new(broker).await;
    mesh.actor(
        "m",
        "asya_test_handlers.echo",
        &[("ASYA_METRICS_ADDR", &addr)],
    )
    .await;
    mesh.end_actor("x-sink").await;
    let start = Instant::now();
    loop {
        if http_get(&addr, "/readyz").is_some_and(|(code, _)| code == 200) {
            break;
        }
        assert!(start.elapsed() < LONG, "/readyz never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(http_get(&addr, "/healthz").map(|(c, _)| c), Some(200));
    mesh.publish("m", &envelope("metered", &["m"], json!({"v": 1})))
        .await;
    mesh.wait_stored("succeeded", 1, LONG).await;
    let queue = asya_transport::naming::queue_name(&mesh.namespace, "m");
    let sink_queue = asya_transport::naming::queue_name(&mesh.namespace, "x-sink");
    let expected = [
        format!("asya_actor_messages_processed_total{{queue=\"{queue}\",status=\"success\"}} 1"),
        format!(
            "asya_actor_messages_sent_total{{destination_queue=\"{sink_queue}\",message_type=\"sink\"}} 1"
        ),
        format!("asya_actor_processing_duration_seconds_count{{queue=\"{queue}\"}} 1"),
        "asya_actor_active_messages 0".to_string(),
        format!("asya_actor_handler_invocations_total{{queue=\"{queue}\",outcome=\"success\"}} 1"),
    ];
    // The ack (and so the counter) may trail the sink's write by a moment.
    let start = Instant::now();
    loop {
        let (code, body) = http_get(&addr, "/metrics").expect("/metrics");
        assert_eq!(code, 200);
        if expected.iter().all(|e| body.contains(e.as_str())) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "metrics missing {expected:?} in\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// Waits until `/metrics` at `addr` contains every line of `expected`.
async fn wait_metrics(addr: &str, expected: &[String]) {
    let start = Instant::now();
    loop {
        let body = http_get(addr, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        if expected.iter().all(|e| body.contains(e.as_str())) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "metrics missing {expected:?} in\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `kind` holds `count` envelopes, restarting exited runtimes of
/// `actor` meanwhile (as Kubernetes would).
async fn wait_stored_supervised(
    mesh: &mut Mesh,
    actor: &str,
    kind: &str,
    count: usize,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        mesh.procs(actor).supervise();
        let keys = mesh.store.list(&format!("{kind}/")).await.expect("list");
        if keys.len() >= count {
            return mesh.wait_stored(kind, count, LONG).await;
        }
        if start.elapsed() > LONG {
            mesh.dump_logs();
            panic!(
                "only {} of {count} {kind} envelopes after {LONG:?}",
                keys.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request over ASYA_MAX_FRAME_BYTES is refused by the sidecar itself:
/// one x-sump envelope saying so, and the runtime never sees it.
pub async fn oversize_request_is_refused_by_the_sidecar(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor(
        "big",
        "asya_test_handlers.echo",
        &[("ASYA_MAX_FRAME_BYTES", "4096")],
    )
    .await;
    mesh.end_actor("x-sump").await;
    mesh.end_actor("x-sink").await;
    let blob = "x".repeat(10_000);
    mesh.publish("big", &envelope("big-1", &["big"], json!({"blob": blob})))
        .await;
    // A small one afterwards still goes through: the runtime was not disturbed.
    mesh.publish("big", &envelope("small-1", &["big"], json!({"v": 1})))
        .await;
    let sump = mesh.wait_stored("sump", 1, LONG).await;
    mesh.wait_stored("succeeded", 1, LONG).await;
    assert_eq!(sump.len(), 1, "{sump:?}");
    assert_eq!(sump[0]["id"], "big-1");
    assert_eq!(status(&sump[0], "reason"), "RuntimeError");
    let err = status(&sump[0], "error");
    assert_eq!(err["type"], "asya.PayloadTooLarge");
    let msg = err["message"].as_str().unwrap_or_default();
    let n: usize = msg
        .strip_prefix("payload of ")
        .and_then(|m| m.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message {msg:?}"));
    assert!(n > 10_000, "{msg}");
    assert!(
        msg.ends_with(" bytes exceeds ASYA_MAX_FRAME_BYTES = 4096"),
        "{msg}"
    );
    let runtime_log = mesh.runtime_log("big");
    assert!(
        !runtime_log.contains("refusing"),
        "the runtime saw the oversize request:\n{runtime_log}"
    );
}

/// A message whose handler kills the runtime twice succeeds on the third
/// runtime life: each death counts once, and the invocation metric says the
/// handler ran three times.
pub async fn a_runtime_crash_is_counted_once_per_life(broker: Broker) {
    let addr = free_addr();
    let mut mesh = Mesh::new(broker).await;
    mesh.actor(
        "c",
        "asya_test_handlers.crash_until",
        &[("ASYA_METRICS_ADDR", &addr)],
    )
    .await;
    mesh.end_actor("x-sink").await;
    mesh.end_actor("x-sump").await;
    let marker = mesh.scratch_path("crashes");
    mesh.publish(
        "c",
        &envelope(
            "crashy-1",
            &["c"],
            json!({"marker": marker.display().to_string(), "crashes": 2}),
        ),
    )
    .await;
    let done = wait_stored_supervised(&mut mesh, "c", "succeeded", 1).await;
    assert_eq!(done[0]["id"], "crashy-1");
    assert_eq!(done[0]["payload"]["survived"], 2, "{}", done[0]);
    let queue = asya_transport::naming::queue_name(&mesh.namespace, "c");
    wait_metrics(
        &addr,
        &[
            format!(
                "asya_actor_handler_invocations_total{{queue=\"{queue}\",outcome=\"crashed\"}} 2"
            ),
            format!(
                "asya_actor_handler_invocations_total{{queue=\"{queue}\",outcome=\"success\"}} 1"
            ),
            format!(
                "asya_actor_runtime_errors_total{{queue=\"{queue}\",error_type=\"RuntimeCrash\"}} 2"
            ),
        ],
    )
    .await;
    let sump = mesh.store.list("sump/").await.expect("list");
    assert!(sump.is_empty(), "{sump:?}");
}

/// After a timeout the sidecar waits for a new runtime life before it sends
/// the next message, so the next message is never blamed for the slow one.
/// Both runtimes keep the contract (answer `asya.Timeout` at `deadline_ms` and
/// exit; the harness restarts them as Kubernetes would): `fake` is a small
/// scripted one (`tests/handlers/fake_runtime.py`), otherwise the real
/// `runtime/asya_runtime.py`.
pub async fn a_timeout_never_blames_the_next_message(broker: Broker, fake: bool) {
    let mut mesh = Mesh::new(broker).await;
    let extra = [
        ("ASYA_RESILIENCY_ACTOR_TIMEOUT", "1s"),
        ("ASYA_RUNTIME_READY_TIMEOUT", "6s"),
    ];
    if fake {
        mesh.actor_with_runtime("t", "fake_runtime.py", &extra)
            .await;
    } else {
        mesh.actor("t", "asya_test_handlers.slow", &extra).await;
    }
    mesh.end_actor("x-sink").await;
    mesh.end_actor("x-sump").await;
    mesh.publish("t", &envelope("slow-1", &["t"], json!({"sleep": 4})))
        .await;
    mesh.publish("t", &envelope("fast-1", &["t"], json!({"sleep": 0})))
        .await;
    let sump = wait_stored_supervised(&mut mesh, "t", "sump", 1).await;
    let done = wait_stored_supervised(&mut mesh, "t", "succeeded", 1).await;
    // Give a wrongly blamed second message time to show up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sump_keys = mesh.store.list("sump/").await.expect("list");
    assert_eq!(sump_keys.len(), 1, "{sump_keys:?}");
    assert_eq!(sump[0]["id"], "slow-1");
    assert_eq!(status(&sump[0], "reason"), "Timeout");
    assert_eq!(
        status(&sump[0], "error")["type"],
        "asya.Timeout",
        "{}",
        sump[0]
    );
    assert_eq!(done[0]["id"], "fast-1");
    if fake {
        let log = mesh.runtime_log("t");
        assert!(log.contains("deadline_ms=1000"), "{log}");
    }
}

/// A frame whose route is not a route (a runtime breaking the protocol) sends the message
/// to x-sump as `asya.ProtocolError` naming the frame; it is not routed, dropped or retried.
pub async fn a_frame_without_a_valid_route_goes_to_sump(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor_with_runtime("t", "fake_runtime.py", &[]).await;
    mesh.end_actor("x-sink").await;
    mesh.end_actor("x-sump").await;
    let bad = [
        ("string", json!("nowhere")),
        ("null", Value::Null),
        ("number-curr", json!({"prev": [], "curr": 5, "next": []})),
    ];
    for (id, route) in &bad {
        mesh.publish("t", &envelope(id, &["t"], json!({"frame_route": route})))
            .await;
    }
    let sump = mesh.wait_stored("sump", bad.len(), LONG).await;
    let mut ids: Vec<&str> = sump.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["null", "number-curr", "string"]);
    for e in &sump {
        let error = status(e, "error");
        assert_eq!(error["type"], "asya.ProtocolError", "{e}");
        assert_eq!(error["message"], "frame 0 has no valid route", "{e}");
    }
    let sink = mesh.store.list("succeeded/").await.expect("list");
    assert!(sink.is_empty(), "{sink:?}");
}

/// Log lines about an x-sump envelope carry the original id and the id of
/// the envelope x-sump receives.
pub async fn sump_log_lines_carry_both_ids(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor("a", "asya_test_handlers.echo", &[]).await;
    mesh.end_actor("x-sump").await;
    // Valid JSON with an id but no payload: not an envelope.
    mesh.publish("a", br#"{"id":"orig-7","route":{"curr":"a"}}"#)
        .await;
    let sump = mesh.wait_stored("sump", 1, LONG).await;
    let new_id = sump[0]["id"].as_str().expect("id").to_string();
    assert_ne!(new_id, "orig-7");
    let log = mesh.sidecar_log("a");
    let line = log
        .lines()
        .find(|l| l.contains("unparseable message"))
        .unwrap_or_else(|| panic!("no ParseError line in\n{log}"));
    assert!(line.contains("orig-7"), "{line}");
    assert!(line.contains(&new_id), "{line}");
}

/// Envelopes still in flight from upstream carry the legacy route `{actors, current}`: they
/// are converted on arrival and finish the pipeline, including one caught mid-route.
pub async fn legacy_routes_finish_the_pipeline(broker: Broker) {
    let mut mesh = Mesh::new(broker).await;
    mesh.actor("a", "asya_test_handlers.step_a", &[]).await;
    mesh.actor("b", "asya_test_handlers.step_b", &[]).await;
    mesh.actor("c", "asya_test_handlers.step_c", &[]).await;
    mesh.end_actor("x-sink").await;
    let legacy = |id: &str, current: u64| {
        serde_json::to_vec(&json!({
            "id": id,
            "route": {"actors": ["a", "b", "c"], "current": current},
            "payload": {"n": 0, "trail": []},
        }))
        .unwrap()
    };
    mesh.publish("a", &legacy("legacy-start", 0)).await;
    mesh.publish("b", &legacy("legacy-mid", 1)).await;
    let stored = mesh.wait_stored("succeeded", 2, LONG).await;
    assert_eq!(stored.len(), 2);
    for env in stored {
        let trail = if env["id"] == "legacy-start" {
            json!(["a", "b", "c"])
        } else {
            json!(["b", "c"])
        };
        assert_eq!(env["payload"]["trail"], trail, "{env}");
        assert_eq!(env["route"]["prev"], json!(["a", "b", "c"]), "{env}");
        assert!(env["route"].get("actors").is_none(), "{env}");
        assert_eq!(status(&env, "phase"), "succeeded");
    }
}
