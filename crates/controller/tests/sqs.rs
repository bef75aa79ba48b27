//! The SQS queue driver through the controller, against moto and a real kube-apiserver.

mod common;

use std::sync::Arc;

use asya_controller::queue::{DeletionPolicy, QueueDrivers};
use asya_controller::render::PlatformRenderer;
use asya_render::api::platform::{Platform, TransportSettings};
use asya_transport::sqs::{SqsAdmin, SqsConfig};
use common::*;
use kube::api::DeleteParams;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_actor_gets_its_queue_on_the_emulator_and_loses_it_with_the_actor() {
    let Ok(endpoint) = std::env::var("ASYA_TEST_AWS_ENDPOINT") else {
        eprintln!("SKIP: ASYA_TEST_AWS_ENDPOINT is unset (eval \"$(bash tests/servers/up.sh)\")");
        return;
    };
    let Some(c) = cluster("sqs").await else {
        return;
    };
    let settings = TransportSettings {
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.clone()),
        ..Default::default()
    };
    let mut queues = QueueDrivers::default();
    queues.insert(
        "sqs",
        asya_controller::queue::sqs_driver(&settings, Default::default()).expect("sqs driver"),
        DeletionPolicy::Delete,
    );
    let _ctl = c.start_controller(
        Arc::new(PlatformRenderer::new(Platform::default()).expect("compositions")),
        queues,
    );

    let actor = json!({"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor",
        "metadata": {"name": "sq", "namespace": c.ns},
        "spec": {"actor": "sq", "image": "python:3.13-slim", "handler": "echo.process", "transport": "sqs"}});
    c.apply_actor(actor).await;
    let status = c
        .wait_status("sq", "TransportReady", |s| {
            condition(s, "TransportReady").is_some_and(|t| t["status"] != "Unknown")
        })
        .await;
    assert_eq!(
        condition(&status, "TransportReady").unwrap()["status"],
        "True",
        "{status}"
    );
    let queue = format!("asya-{}-sq", c.ns);
    let admin = SqsAdmin::new(&SqsConfig::new("us-east-1", Some(endpoint))).expect("admin");
    assert!(
        admin.queue_url(&queue).await.expect("lookup").is_some(),
        "queue {queue} not on the emulator"
    );
    assert!(
        status["queue"]["processing"].is_number(),
        "SQS reports in-flight messages: {status}"
    );

    c.actors()
        .delete("sq", &DeleteParams::background())
        .await
        .expect("delete actor");
    wait_for("queue deleted", || async {
        admin.queue_url(&queue).await.ok()?.is_none().then_some(())
    })
    .await;
    c.cleanup().await;
}
