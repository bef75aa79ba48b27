//! Shared helpers of the SQS tests: moto endpoint, unique namespaces, queues.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asya_transport::sqs::{SqsAdmin, SqsConfig, SqsTransport};
use asya_transport::{Delivery, Transport};

/// Generous: the test machine is small and busy.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn endpoint() -> String {
    std::env::var("ASYA_TEST_AWS_ENDPOINT")
        .expect("ASYA_TEST_AWS_ENDPOINT is unset: run `eval \"$(bash tests/servers/up.sh)\"` first")
}

/// A namespace no other test (or test run) uses; no `-`, so queue names split cleanly.
pub fn unique_namespace() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{:x}{:x}{n}", std::process::id(), nanos % 0xffff_ffff)
}

/// Test settings: moto, 1 s long polls (so cancelled receives end quickly).
pub fn config() -> SqsConfig {
    let mut config = SqsConfig::new("us-east-1", Some(endpoint()));
    config.wait_time = Duration::from_secs(1);
    config
}

pub async fn admin(config: &SqsConfig) -> SqsAdmin {
    SqsAdmin::connect(config).await.expect("SQS admin")
}

/// Creates `actor`'s queue in `ns` and connects a transport to it.
pub async fn transport_for(config: SqsConfig, ns: &str, actor: &str) -> SqsTransport {
    admin(&config)
        .await
        .ensure_actor_queue(ns, actor)
        .await
        .expect("create queue");
    SqsTransport::connect(config, ns, actor)
        .await
        .expect("connect transport")
}

/// Receives one message or fails after [`PATIENCE`].
pub async fn receive(t: &SqsTransport) -> Delivery {
    tokio::time::timeout(PATIENCE, t.receive())
        .await
        .expect("no message within the patience window")
        .expect("receive failed")
}

/// Receives for `window`; `None` when nothing arrived.
pub async fn receive_within(t: &SqsTransport, window: Duration) -> Option<Delivery> {
    match tokio::time::timeout(window, t.receive()).await {
        Ok(result) => Some(result.expect("receive failed")),
        Err(_) => None,
    }
}
