//! Helpers both gateway test binaries use (`gateway.rs` in process, `features.rs` on the
//! binary): the broker they need, unique names, and reading the first actor's queue.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asya_transport::Transport;
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use serde_json::Value;

/// `ASYA_TEST_RABBITMQ_URL`, or `None` after printing why the test is skipped.
pub fn rabbit_url() -> Option<String> {
    match std::env::var("ASYA_TEST_RABBITMQ_URL") {
        Ok(u) => Some(u),
        Err(_) => {
            eprintln!(
                "SKIPPED: ASYA_TEST_RABBITMQ_URL unset; run `eval \"$(bash tests/servers/up.sh)\"`"
            );
            None
        }
    }
}

/// `prefix` + process id + time: a namespace no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// The next envelope on `t` (acked), within 10 s.
pub async fn receive(t: &RabbitMq) -> Value {
    let d = tokio::time::timeout(Duration::from_secs(10), t.receive())
        .await
        .expect("no envelope on the first actor's queue")
        .unwrap();
    t.ack(&d).await.unwrap();
    serde_json::from_slice(&d.body).unwrap()
}

/// Nothing reaches `t` within 0.8 s.
pub async fn nothing_arrives(t: &RabbitMq) {
    let got = tokio::time::timeout(Duration::from_millis(800), t.receive()).await;
    assert!(got.is_err(), "something was published: {got:?}");
}

/// A consumer of `actor`'s queue in `namespace` (declared now, so nothing published later
/// is lost).
pub async fn consumer(rabbit: &str, namespace: &str, actor: &str) -> RabbitMq {
    RabbitMq::consume(
        RabbitMqConfig::new(rabbit.to_string(), namespace.to_string()),
        actor,
    )
    .await
    .unwrap()
}
