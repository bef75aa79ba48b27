//! Faults on SQS (moto): long handlers past the visibility timeout, `kill -9`
//! of the sidecar or the runtime mid-stream, SIGTERM during a slow handler.

mod common;

use std::time::{Duration, Instant};

use common::scenarios::{self, Fault};
use common::{Broker, Mesh, collect_ids, envelope, servers_available};
use serde_json::json;

const B: Broker = Broker::Sqs;

/// Messages per zero-loss run: moto answers one request at a time, so fewer
/// than on RabbitMQ; every one of them must still arrive.
const ZERO_LOSS_TOTAL: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_running_past_the_visibility_timeout_is_processed_once() {
    if !servers_available(B) {
        return;
    }
    let mut mesh = Mesh::new(B).await;
    // Visibility 2 s, handler 7 s, and a second free slot that would take a
    // redelivered copy at once.
    mesh.actor(
        "s",
        "asya_test_handlers.slow",
        &[
            ("ASYA_SQS_VISIBILITY_TIMEOUT", "2s"),
            ("ASYA_CONCURRENCY", "2"),
        ],
    )
    .await;
    let sink = mesh.consumer("x-sink", 8).await;
    mesh.publish("s", &envelope("slow-1", &["s"], json!({"sleep": 7})))
        .await;
    let (seen, dups) = collect_ids(&sink, 1, Duration::from_secs(90), |_| {}).await;
    assert!(seen.contains("slow-1"), "the slow message never completed");
    // Anything delivered twice would reach x-sink a second time by now.
    let (more, _) = collect_ids(&sink, 1, Duration::from_secs(10), |_| {}).await;
    assert_eq!(dups, 0);
    assert!(more.is_empty(), "processed twice: {more:?}");
    sink.close().await;
}

/// The zero-loss scenario of `common::scenarios`, with a 5 s visibility
/// timeout: the keep-alive makes a short timeout safe, and it lets the
/// messages a killed sidecar held come back quickly, which keeps this test
/// well inside its time budget on a loaded machine.
async fn zero_loss(fault: Fault) {
    let total = ZERO_LOSS_TOTAL;
    let mut mesh = Mesh::new(B).await;
    mesh.actor(
        "a",
        "asya_test_handlers.echo_briefly",
        &[
            ("ASYA_CONCURRENCY", "8"),
            ("ASYA_SQS_VISIBILITY_TIMEOUT", "5s"),
        ],
    )
    .await;
    let sink = mesh.consumer("x-sink", 10).await;
    let started = Instant::now();
    let bodies: Vec<Vec<u8>> = (0..total)
        .map(|i| envelope(&format!("m-{i}"), &["a"], json!({"i": i})))
        .collect();
    for chunk in bodies.chunks(50) {
        futures::future::join_all(chunk.iter().map(|b| mesh.client.publish("a", b)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .expect("publish");
    }
    eprintln!("published {total} in {:?}", started.elapsed());
    let strikes = [total / 5, total * 3 / 5];
    let mut struck = 0;
    let procs = mesh.actors.get_mut("a").expect("actor a");
    let (seen, dups) = collect_ids(&sink, total, Duration::from_secs(300), |n| {
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
                Fault::RestartBroker => unreachable!("no broker restart on SQS"),
            }
        }
    })
    .await;
    sink.close().await;
    let missing: Vec<usize> = (0..total)
        .filter(|i| !seen.contains(&format!("m-{i}")))
        .collect();
    eprintln!(
        "zero-loss SQS {fault:?}: {} of {total} ids reached x-sink, {dups} duplicates, {} missing, in {:?}",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_over_sqs_when_the_sidecar_is_killed_twice() {
    if servers_available(B) {
        zero_loss(Fault::KillSidecar).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_over_sqs_when_the_runtime_is_killed_twice() {
    if servers_available(B) {
        zero_loss(Fault::KillRuntime).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_over_sqs_finishes_the_in_flight_message_without_redelivery() {
    if servers_available(B) {
        scenarios::sigterm_finishes_in_flight_work(B).await;
    }
}
