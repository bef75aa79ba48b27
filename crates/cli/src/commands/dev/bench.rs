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

/// Rounds per measurement: the two are interleaved round by round so that
/// the load of a busy machine falls on both alike; medians are reported.
const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the measurements and prints one line each plus the ratio.
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
    let per_round = n.div_ceil(ROUNDS).max(1);
    let client = RuntimeClient::new(socket_dir.to_path_buf(), socket_name, max_frame);
    let mut conn = client
        .connect(Duration::from_secs(60))
        .await
        .map_err(|e| format!("bench: {e}"))?;
    let (mut alone_us, mut piped_us, mut transport_us) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = 0usize;
    let mut next_id = 0usize;
    for _ in 0..ROUNDS {
        // 1. The runtime alone: the sidecar's own client, one call at a time.
        let frames: Vec<Vec<u8>> = (0..per_round)
            .map(|_| {
                next_id += 1;
                let body = serde_json::to_vec(&envelope(route, next_id)).unwrap_or_default();
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
        alone_us.push(t0.elapsed().as_secs_f64() * 1e6 / per_round as f64);

        // 2. The pipeline: every envelope published, then wait for x-sink to have them all.
        let bodies: Vec<bytes::Bytes> = (0..per_round)
            .map(|_| {
                next_id += 1;
                serde_json::to_vec(&envelope(route, next_id))
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
        while finals < per_round {
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
                        "bench: only {finals} of {per_round} envelopes reached x-sink"
                    ));
                }
            }
        }
        piped_us.push(t1.elapsed().as_secs_f64() * 1e6 / per_round as f64);

        // 3. The in-memory transport alone: publish, receive, ack on a broker of its own.
        let broker = asya_transport::memory::MemoryBroker::new();
        let queue = broker.consume("bench", "echo");
        let bodies: Vec<bytes::Bytes> = (0..per_round)
            .map(|i| {
                serde_json::to_vec(&envelope(route, i))
                    .unwrap_or_default()
                    .into()
            })
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
        transport_us.push(t2.elapsed().as_secs_f64() * 1e6 / per_round as f64);
    }
    let (alone, piped, transport) = (median(alone_us), median(piped_us), median(transport_us));
    let _ = writeln!(
        out,
        "{ROUNDS} interleaved rounds of {per_round} messages; medians of µs per message:"
    );
    let _ = writeln!(
        out,
        "runtime alone over its socket: {alone:.1} µs/msg = {:.0} msg/s",
        1e6 / alone
    );
    let _ = writeln!(
        out,
        "pipeline ({} → x-sink, in-process sidecar, in-memory queues): {piped:.1} µs/msg = {:.0} msg/s; pipeline/runtime rate ratio {:.3}",
        route.join(" → "),
        1e6 / piped,
        alone / piped
    );
    let _ = writeln!(
        out,
        "in-memory transport alone (publish + receive + ack): {transport:.2} µs/msg = {:.2}% of the runtime's own time",
        transport / alone * 100.0
    );
    Ok(failed == 0)
}
