//! `queue.naming: legacy` on the real brokers: the controller's admin creates `asya-<actor>`,
//! a sidecar consumes it and routes to its peers' `asya-<actor>` queues, and nothing is
//! created under the namespaced name. (RabbitMQ from `ASYA_TEST_RABBITMQ_URL`, SQS on moto.)

mod sqs_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asya_contract::QueueNaming;
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use asya_transport::{QueueAdmin, Transport, naming};
use bytes::Bytes;
use sqs_support::*;

/// Actor names no other run uses: legacy names carry no namespace to keep runs apart.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{:x}{:x}", std::process::id(), nanos % 0xffff_ffff)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_legacy_names_are_used_by_admin_consumer_and_publisher() {
    let Ok(url) = std::env::var("ASYA_TEST_RABBITMQ_URL") else {
        eprintln!(
            "SKIPPED: ASYA_TEST_RABBITMQ_URL unset; run `eval \"$(bash tests/servers/up.sh)\"`"
        );
        return;
    };
    let (a, b) = (unique("lega"), unique("legb"));
    let mut cfg = RabbitMqConfig::new(url, "prod");
    cfg.naming = QueueNaming::Legacy;
    let admin = RabbitMq::connect(cfg.clone()).await.unwrap();
    admin.ensure_actor_queue("prod", &a).await.unwrap();
    admin.ensure_actor_queue("prod", &b).await.unwrap();
    assert_eq!(admin.queue_of(&a), format!("asya-{a}"));
    // The namespaced queue was never declared.
    assert!(
        QueueAdmin::depth(&admin, &naming::queue_name("prod", &a))
            .await
            .is_err()
    );

    let consumer_b = RabbitMq::consume(cfg.clone(), &b).await.unwrap();
    let sidecar_a = RabbitMq::connect(cfg).await.unwrap();
    sidecar_a
        .publish(&b, Bytes::from_static(b"to b"), Duration::ZERO)
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(30), consumer_b.receive())
        .await
        .expect("the message never reached asya-<b>")
        .unwrap();
    assert_eq!(&d.body[..], b"to b");
    consumer_b.ack(&d).await.unwrap();
    let depth = QueueAdmin::depth(&admin, &format!("asya-{b}"))
        .await
        .unwrap();
    assert_eq!(depth.queued, 0);
    for q in [&a, &b] {
        admin.delete_queue(&format!("asya-{q}")).await.unwrap();
    }
    consumer_b.close().await;
    sidecar_a.close().await;
    admin.close().await;
}

#[tokio::test]
async fn sqs_legacy_names_are_used_by_admin_consumer_and_publisher() {
    let ns = unique_namespace();
    let (a, b) = (unique("lega"), unique("legb"));
    let mut cfg = config();
    cfg.naming = QueueNaming::Legacy;
    let t_a = transport_for(cfg.clone(), &ns, &a).await;
    let t_b = transport_for(cfg.clone(), &ns, &b).await;
    t_a.publish(&b, Bytes::from_static(b"to b"), Duration::ZERO)
        .await
        .unwrap();
    let d = receive(&t_b).await;
    assert_eq!(&d.body[..], b"to b");
    t_b.ack(&d).await.unwrap();
    assert!(
        t_b.queue_url().ends_with(&format!("/asya-{b}")),
        "{}",
        t_b.queue_url()
    );
    let admin = admin(&cfg).await;
    assert!(admin.depth(&format!("asya-{a}")).await.is_ok());
    assert!(
        admin.depth(&naming::queue_name(&ns, &a)).await.is_err(),
        "the namespaced queue must not exist"
    );
}

#[test]
fn the_sidecar_env_selects_the_naming() {
    let lookup = |k: &str| (k == "ASYA_QUEUE_NAMING").then(|| "legacy".to_string());
    let c = asya_transport::sqs::SqsConfig::from_lookup(lookup).unwrap();
    assert_eq!(c.naming, QueueNaming::Legacy);
    let bad = |k: &str| (k == "ASYA_QUEUE_NAMING").then(|| "flat".to_string());
    let err = asya_transport::sqs::SqsConfig::from_lookup(bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ASYA_QUEUE_NAMING") && err.contains("namespaced or legacy"),
        "{err}"
    );
}
