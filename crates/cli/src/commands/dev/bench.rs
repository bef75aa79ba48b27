//! `asya dev --bench N` (hidden; BENCHMARKS.md): in one run, the rate of
//! the first actor's runtime called straight over its socket, one call at a
//! time, and the rate of the whole local pipeline (transport, sidecar
//! worker, x-sink) for the same envelopes. The difference per message is
//! what `asya dev` adds to the runtime's own time.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use asya_sidecar::runtime_client::{InvokeOutcome, RuntimeClient, invoke_frame};
use asya_transport::Transport;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::tap::Event;

/// The same per-message envelope for both measurements.
fn envelope(route: &[String], i: usize) -> Value {
    json!({
        "id": format!("bench-{i}"),
        "route": {"prev": [], "curr": route[0], "next": route[1..]},
        "headers": {},
        "payload": {"i": i, "text": "hello world"},
    })
}

/// Runs both measurements and prints one line each plus the ratio.
#[allow(clippy::too_many_arguments)]
pub async fn run<T: Transport>(
    n: usize,
    route: &[String],
    socket_dir: &Path,
    socket_name: &str,
    max_frame: usize,
    publisher: &T,
    events: &mut mpsc::UnboundedReceiver<Event>,
    out: &mut dyn Write,
) -> Result<bool, String> {
    // 1. The runtime alone: the sidecar's own client, one connection, one call at a time.
    let client = RuntimeClient::new(socket_dir.to_path_buf(), socket_name, max_frame);
    let mut conn = client
        .connect(Duration::from_secs(60))
        .await
        .map_err(|e| format!("bench: {e}"))?;
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let body = serde_json::to_vec(&envelope(route, i)).unwrap_or_default();
            invoke_frame(&body, Some(Duration::from_secs(60)))
        })
        .collect();
    let t0 = Instant::now();
    for f in &frames {
        match conn.invoke(f).await {
            InvokeOutcome::Done(_) => {}
            other => return Err(format!("bench: the runtime answered {other:?}")),
        }
    }
    let alone = t0.elapsed();
    drop(conn);

    // 2. The pipeline: every envelope published, then wait for x-sink to have them all.
    let bodies: Vec<bytes::Bytes> = (0..n)
        .map(|i| {
            serde_json::to_vec(&envelope(route, n + i))
                .unwrap_or_default()
                .into()
        })
        .collect();
    let t1 = Instant::now();
    for b in bodies {
        publisher
            .publish(&route[0], b, Duration::ZERO)
            .await
            .map_err(|e| format!("bench: publish: {e}"))?;
    }
    let mut finals = 0usize;
    let mut failed = 0usize;
    while finals < n {
        match tokio::time::timeout(Duration::from_secs(120), events.recv()).await {
            Ok(Some(Event::Final(v))) => {
                finals += 1;
                if v["status"]["phase"] != "succeeded" {
                    failed += 1;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err(format!(
                    "bench: only {finals} of {n} envelopes reached x-sink"
                ));
            }
        }
    }
    let piped = t1.elapsed();

    // 3. The in-memory transport alone: the same bodies published, received
    //    and acked on a broker of their own (no sidecar, no runtime).
    let broker = asya_transport::memory::MemoryBroker::new();
    let queue = broker.consume("bench", "echo");
    let bodies: Vec<bytes::Bytes> = (0..n)
        .map(|i| serde_json::to_vec(&envelope(route, i)).unwrap_or_default().into())
        .collect();
    let t2 = Instant::now();
    for b in bodies {
        queue
            .publish("echo", b, Duration::ZERO)
            .await
            .map_err(|e| format!("bench: {e}"))?;
        let d = queue.receive().await.map_err(|e| format!("bench: {e}"))?;
        queue.ack(&d).await.map_err(|e| format!("bench: {e}"))?;
    }
    let transport = t2.elapsed();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let _ = writeln!(
        out,
        "runtime alone over its socket: {n} calls in {:.3}s = {:.0} msg/s ({:.1} µs/msg)",
        alone.as_secs_f64(),
        rate(alone),
        per(alone)
    );
    let _ = writeln!(
        out,
        "pipeline ({} → x-sink, in-process sidecar): {n} messages in {:.3}s = {:.0} msg/s ({:.1} µs/msg)",
        route.join(" → "),
        piped.as_secs_f64(),
        rate(piped),
        per(piped)
    );
    let _ = writeln!(
        out,
        "added per message by the whole local pipeline: {:.1} µs = {:.1}% of the runtime's own time (pipeline/runtime rate ratio {:.3})",
        per(piped) - per(alone),
        (per(piped) - per(alone)) / per(alone) * 100.0,
        rate(piped) / rate(alone)
    );
    let _ = writeln!(
        out,
        "in-memory transport alone (publish + receive + ack): {:.2} µs/msg = {:.1}% of the runtime's own time",
        per(transport),
        per(transport) / per(alone) * 100.0
    );
    Ok(failed == 0)
}
