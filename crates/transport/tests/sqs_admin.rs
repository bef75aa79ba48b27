//! The SQS queue admin against moto (`ASYA_TEST_AWS_ENDPOINT`).

mod sqs_support;

use std::time::{Duration, Instant};

use asya_transport::sqs::{SqsAdmin, SqsConfig, SqsTransport};
use asya_transport::{QueueAdmin, QueueDepth, Transport, naming};
use aws_sdk_sqs::types::QueueAttributeName as Attr;
use bytes::Bytes;
use sqs_support::*;

async fn poll_depth(admin: &SqsAdmin, queue: &str, want: QueueDepth) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let depth = admin.depth(queue).await.unwrap();
        if depth == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "depth of {queue} is {depth:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn ensure_queue_sets_attributes_tags_and_redrive_to_the_namespace_dlq() {
    let ns = unique_namespace();
    let mut config = config();
    config.visibility_timeout = Duration::from_secs(45);
    config.wait_time = Duration::from_secs(20);
    let admin = admin(&config).await.with_max_receive_count(7);
    let queue = naming::queue_name(&ns, "x-sink");
    admin.ensure_queue(&queue).await.unwrap();

    let attrs = admin.attributes(&queue).await.unwrap();
    assert_eq!(attrs[&Attr::VisibilityTimeout], "45");
    assert_eq!(attrs[&Attr::MessageRetentionPeriod], "345600");
    assert_eq!(attrs[&Attr::ReceiveMessageWaitTimeSeconds], "20");
    let redrive: serde_json::Value = serde_json::from_str(&attrs[&Attr::RedrivePolicy]).unwrap();
    let dlq = admin.attributes(&format!("asya-{ns}-dlq")).await.unwrap();
    // The ARN is the DLQ's real one, read back from SQS, not assembled from an account id.
    assert_eq!(
        redrive["deadLetterTargetArn"],
        dlq[&Attr::QueueArn].as_str()
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "7"
    );

    let url = admin.queue_url(&queue).await.unwrap().unwrap();
    let tags = sqs_client(&config)
        .await
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert_eq!(tags.get("asya.sh/namespace"), Some(&ns));
    assert_eq!(
        tags.get("asya.sh/actor").map(String::as_str),
        Some("x-sink")
    );
}

async fn sqs_client(config: &SqsConfig) -> aws_sdk_sqs::Client {
    asya_transport::sqs::client(config).await
}

#[tokio::test]
async fn ensure_queue_is_idempotent_and_converges_on_new_settings() {
    let ns = unique_namespace();
    let queue = naming::queue_name(&ns, "a");
    let first = admin(&config()).await;
    first.ensure_queue(&queue).await.unwrap();
    first.ensure_queue(&queue).await.unwrap();
    let mut longer = config();
    longer.visibility_timeout = Duration::from_secs(120);
    admin(&longer).await.ensure_queue(&queue).await.unwrap();
    let attrs = first.attributes(&queue).await.unwrap();
    assert_eq!(attrs[&Attr::VisibilityTimeout], "120");
}

#[tokio::test]
async fn depth_counts_waiting_and_in_flight_messages() {
    let ns = unique_namespace();
    let t = transport_for(config(), &ns, "a").await;
    let admin = admin(&config()).await;
    let queue = naming::queue_name(&ns, "a");
    for i in 0..3 {
        t.publish("a", Bytes::from(format!("m{i}")), Duration::ZERO)
            .await
            .unwrap();
    }
    poll_depth(
        &admin,
        &queue,
        QueueDepth {
            queued: 3,
            processing: Some(0),
        },
    )
    .await;
    let d = receive(&t).await;
    poll_depth(
        &admin,
        &queue,
        QueueDepth {
            queued: 2,
            processing: Some(1),
        },
    )
    .await;
    t.ack(&d).await.unwrap();
    poll_depth(
        &admin,
        &queue,
        QueueDepth {
            queued: 2,
            processing: Some(0),
        },
    )
    .await;
}

#[tokio::test]
async fn delete_queue_is_idempotent_and_keeps_the_dlq() {
    let ns = unique_namespace();
    let queue = naming::queue_name(&ns, "a");
    // The lazily connecting constructor the controller uses.
    let admin = SqsAdmin::new(&config()).unwrap();
    admin.ensure_queue(&queue).await.unwrap();
    admin.delete_queue(&queue).await.unwrap();
    admin.delete_queue(&queue).await.unwrap();
    admin
        .delete_queue(&naming::queue_name(&ns, "never-existed"))
        .await
        .unwrap();
    assert_eq!(admin.queue_url(&queue).await.unwrap(), None);
    assert!(
        admin
            .queue_url(&format!("asya-{ns}-dlq"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn depth_of_a_missing_queue_is_an_admin_error() {
    let admin = admin(&config()).await;
    let err = admin
        .depth(&naming::queue_name(&unique_namespace(), "a"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn messages_received_too_often_move_to_the_dlq() {
    let ns = unique_namespace();
    let mut short = config();
    short.visibility_timeout = Duration::from_secs(1);
    let admin = admin(&short).await.with_max_receive_count(2);
    admin.ensure_actor_queue(&ns, "a").await.unwrap();
    let t = SqsTransport::connect(short.clone(), &ns, "a")
        .await
        .unwrap();
    t.publish("a", Bytes::from_static(b"poison"), Duration::ZERO)
        .await
        .unwrap();
    // Two receives without an ack, each by a consumer that then dies.
    for _ in 0..2 {
        let consumer = SqsTransport::connect(short.clone(), &ns, "a")
            .await
            .unwrap();
        let d = receive(&consumer).await;
        assert_eq!(&d.body[..], b"poison");
        consumer.close().await;
    }
    // The third receive attempt moves it to the DLQ instead of delivering it.
    assert!(
        receive_within(&t, Duration::from_secs(5)).await.is_none(),
        "delivered past maxReceiveCount"
    );
    let dlq = SqsTransport::connect(short, &ns, "dlq").await.unwrap();
    let dead = receive(&dlq).await;
    assert_eq!(&dead.body[..], b"poison");
}

#[tokio::test]
async fn ensure_actor_queue_uses_the_given_namespace_even_when_it_has_a_dash() {
    // `asya-team-a-x-sink` cannot say where the namespace ends; the
    // namespace-aware call must not guess.
    let ns = format!("team-{}", unique_namespace());
    let admin = admin(&config()).await;
    QueueAdmin::ensure_actor_queue(&admin, &ns, "x-sink")
        .await
        .unwrap();

    let queue = naming::queue_name(&ns, "x-sink");
    let attrs = admin.attributes(&queue).await.unwrap();
    let redrive: serde_json::Value = serde_json::from_str(&attrs[&Attr::RedrivePolicy]).unwrap();
    let dlq = admin.attributes(&format!("asya-{ns}-dlq")).await.unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        dlq[&Attr::QueueArn].as_str()
    );
}
