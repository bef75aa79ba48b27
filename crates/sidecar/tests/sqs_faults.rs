//! Faults on SQS (moto): long handlers past the visibility timeout, `kill -9`
//! of the sidecar or the runtime mid-stream, SIGTERM during a slow handler.

mod common;

use std::time::Duration;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_over_sqs_when_the_sidecar_is_killed_twice() {
    if servers_available(B) {
        scenarios::zero_loss(B, Fault::KillSidecar, ZERO_LOSS_TOTAL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_over_sqs_when_the_runtime_is_killed_twice() {
    if servers_available(B) {
        scenarios::zero_loss(B, Fault::KillRuntime, ZERO_LOSS_TOTAL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_over_sqs_finishes_the_in_flight_message_without_redelivery() {
    if servers_available(B) {
        scenarios::sigterm_finishes_in_flight_work(B).await;
    }
}
