//! The RabbitMQ transport against the real broker (ASYA_TEST_RABBITMQ_URL,
//! from `tests/servers/up.sh`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use asya_transport::{QueueAdmin, Transport};
use bytes::Bytes;

fn config() -> Option<RabbitMqConfig> {
    let Ok(url) = std::env::var("ASYA_TEST_RABBITMQ_URL") else {
        eprintln!(
            "SKIPPED: ASYA_TEST_RABBITMQ_URL unset; run `eval \"$(bash tests/servers/up.sh)\"`"
        );
        return None;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Some(RabbitMqConfig::new(
        url,
        format!("tt{}-{nanos}", std::process::id()),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_publish_really_waits_before_redelivery() {
    let Some(cfg) = config() else { return };
    let t = RabbitMq::consume(cfg, "delayed").await.unwrap();
    let sent = Instant::now();
    t.publish(
        "delayed",
        Bytes::from_static(b"later"),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(30), t.receive())
        .await
        .expect("delayed message never arrived")
        .unwrap();
    let waited = sent.elapsed();
    assert_eq!(&d.body[..], b"later");
    assert!(
        waited >= Duration::from_millis(300),
        "arrived after {waited:?}"
    );
    t.ack(&d).await.unwrap();
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_message_is_delivered_again_and_acked_one_is_not() {
    let Some(cfg) = config() else { return };
    let t = RabbitMq::consume(cfg, "settle").await.unwrap();
    t.publish("settle", Bytes::from_static(b"m"), Duration::ZERO)
        .await
        .unwrap();
    let first = t.receive().await.unwrap();
    t.requeue(&first).await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(10), t.receive())
        .await
        .unwrap()
        .unwrap();
    assert!(again.redelivered);
    t.ack(&again).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), t.receive())
            .await
            .is_err()
    );
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_admin_is_idempotent_and_counts_ready_messages() {
    let Some(cfg) = config() else { return };
    let ns = cfg.namespace.clone();
    let t = RabbitMq::connect(cfg).await.unwrap();
    let queue = asya_transport::naming::queue_name(&ns, "admin");
    t.ensure_queue(&queue).await.unwrap();
    t.ensure_queue(&queue).await.unwrap();
    for _ in 0..3 {
        t.publish("admin", Bytes::from_static(b"{}"), Duration::ZERO)
            .await
            .unwrap();
    }
    let depth = t.depth(&queue).await.unwrap();
    assert_eq!(depth.queued, 3);
    assert_eq!(depth.processing, None);
    t.delete_queue(&queue).await.unwrap();
    t.delete_queue(&queue).await.unwrap();
    assert!(
        t.depth(&queue).await.is_err(),
        "a deleted queue has no depth"
    );
    // The transport still works after the failed passive declare.
    t.ensure_queue(&queue).await.unwrap();
    t.delete_queue(&queue).await.unwrap();
}

/// Acks are coalesced (`multiple`) per channel: settled out of order, with a
/// requeue in the middle and one delivery never settled, exactly the
/// requeued and the unsettled messages come back, and nothing acked does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_acks_settle_exactly_the_marked_deliveries() {
    let Some(mut cfg) = config() else { return };
    cfg.prefetch = 16;
    let t = RabbitMq::consume(cfg.clone(), "coalesce").await.unwrap();
    for i in 0..8 {
        t.publish("coalesce", Bytes::from(format!("m{i}")), Duration::ZERO)
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..8 {
        let d = tokio::time::timeout(Duration::from_secs(10), t.receive())
            .await
            .unwrap()
            .unwrap();
        got.push(d);
    }
    let body = |d: &asya_transport::Delivery| String::from_utf8(d.body.to_vec()).unwrap();
    assert_eq!(body(&got[0]), "m0");
    // m6 stays unsettled; m3 goes back; the rest are acked out of order.
    for i in [5, 1, 7, 0, 2, 4] {
        t.ack(&got[i]).await.unwrap();
    }
    t.requeue(&got[3]).await.unwrap();
    assert!(
        t.ack(&got[5]).await.is_err(),
        "a delivery is settled only once"
    );
    let again = tokio::time::timeout(Duration::from_secs(10), t.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body(&again), "m3");
    assert!(again.redelivered);
    t.ack(&again).await.unwrap();
    t.close().await;
    // A new consumer finds only the never-settled m6.
    let t = RabbitMq::consume(cfg, "coalesce").await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), t.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body(&d), "m6");
    t.ack(&d).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), t.receive())
            .await
            .is_err(),
        "an acked message came back"
    );
    t.close().await;
}
