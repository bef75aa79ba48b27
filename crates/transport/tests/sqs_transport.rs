//! The SQS transport against moto (`ASYA_TEST_AWS_ENDPOINT`).

mod sqs_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use asya_transport::sqs::SqsTransport;
use asya_transport::{QueueAdmin, Transport, TransportError, naming};
use bytes::Bytes;
use sqs_support::*;

#[tokio::test]
async fn published_message_is_received_and_ack_deletes_it() {
    let ns = unique_namespace();
    let t = transport_for(config(), &ns, "a").await;
    t.publish("a", Bytes::from_static(br#"{"id":"m1"}"#), Duration::ZERO)
        .await
        .unwrap();
    let d = receive(&t).await;
    assert_eq!(&d.body[..], br#"{"id":"m1"}"#);
    assert!(!d.redelivered);
    t.ack(&d).await.unwrap();
    let depth = admin(&config())
        .await
        .depth(&naming::queue_name(&ns, "a"))
        .await
        .unwrap();
    assert_eq!((depth.queued, depth.processing), (0, Some(0)));
}

#[tokio::test]
async fn requeued_message_comes_back_at_once_marked_redelivered() {
    let ns = unique_namespace();
    let t = transport_for(config(), &ns, "a").await; // visibility 30 s
    t.publish("a", Bytes::from_static(b"again"), Duration::ZERO)
        .await
        .unwrap();
    let first = receive(&t).await;
    t.requeue(&first).await.unwrap();
    let started = Instant::now();
    let second = receive(&t).await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "requeue must not wait for the 30 s visibility timeout"
    );
    assert_eq!(&second.body[..], b"again");
    assert!(second.redelivered);
    t.ack(&second).await.unwrap();
}

#[tokio::test]
async fn extended_message_stays_invisible_past_its_original_timeout() {
    let ns = unique_namespace();
    let mut short = config();
    short.visibility_timeout = Duration::from_secs(3);
    let worker = transport_for(short.clone(), &ns, "a").await;
    let rival = SqsTransport::connect(short, &ns, "a").await.unwrap();
    worker
        .publish("a", Bytes::from_static(b"long job"), Duration::ZERO)
        .await
        .unwrap();
    let d = receive(&worker).await;
    worker.extend(&d, Duration::from_secs(20)).await.unwrap();
    // Closing stops the automatic keep-alive: only the explicit extension
    // holds the message now, for well past its original 3 s.
    worker.close().await;
    assert!(
        receive_within(&rival, Duration::from_secs(9))
            .await
            .is_none(),
        "an extended message was delivered twice"
    );
    // Control: given back, the same message does reappear.
    worker.requeue(&d).await.unwrap();
    let back = receive(&rival).await;
    assert_eq!(&back.body[..], b"long job");
    assert!(back.redelivered);
    rival.ack(&back).await.unwrap();
}

#[tokio::test]
async fn delayed_message_is_invisible_until_its_delay() {
    let ns = unique_namespace();
    let t = transport_for(config(), &ns, "a").await;
    let started = Instant::now();
    t.publish("a", Bytes::from_static(b"later"), Duration::from_secs(2))
        .await
        .unwrap();
    let d = receive(&t).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "arrived after {:?}",
        started.elapsed()
    );
    assert_eq!(&d.body[..], b"later");
    t.ack(&d).await.unwrap();
}

#[tokio::test]
async fn delays_longer_than_one_hop_are_chained_and_arrive_once_on_time() {
    let ns = unique_namespace();
    let mut capped = config();
    capped.max_hop_delay = Duration::from_secs(1);
    let t = transport_for(capped, &ns, "a").await;
    let started = Instant::now();
    t.publish(
        "a",
        Bytes::from_static(b"chained"),
        Duration::from_millis(2500),
    )
    .await
    .unwrap();
    let d = receive(&t).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "arrived early, after {waited:?}"
    );
    assert_eq!(&d.body[..], b"chained");
    assert!(!d.redelivered, "hops are fresh messages, not redeliveries");
    // Hop 1 is visible after 1 s, 1.5 s early: it is sent on at least once.
    assert!(t.chained_hops() >= 1, "delivered without chaining");
    t.ack(&d).await.unwrap();
    // Every early hop was deleted: nothing else is left to receive.
    assert!(
        receive_within(&t, Duration::from_secs(4)).await.is_none(),
        "a chained delay left a copy behind"
    );
}

#[tokio::test]
async fn batch_receive_hands_out_each_message_once() {
    let ns = unique_namespace();
    let mut batched = config();
    batched.batch_size = 5;
    let t = transport_for(batched, &ns, "a").await;
    let sent: BTreeSet<String> = (0..7).map(|i| format!("m{i}")).collect();
    for body in &sent {
        t.publish("a", Bytes::from(body.clone()), Duration::ZERO)
            .await
            .unwrap();
    }
    let mut got = BTreeSet::new();
    while got.len() < sent.len() {
        let d = receive(&t).await;
        assert!(
            got.insert(String::from_utf8(d.body.to_vec()).unwrap()),
            "duplicate delivery"
        );
        t.ack(&d).await.unwrap();
    }
    assert_eq!(got, sent);
}

#[tokio::test]
async fn publish_reaches_another_actors_queue() {
    let ns = unique_namespace();
    let a = transport_for(config(), &ns, "a").await;
    let b = transport_for(config(), &ns, "b").await;
    a.publish("b", Bytes::from_static(b"to b"), Duration::ZERO)
        .await
        .unwrap();
    let d = receive(&b).await;
    assert_eq!(&d.body[..], b"to b");
    b.ack(&d).await.unwrap();
}

#[tokio::test]
async fn publish_to_a_missing_queue_is_a_publish_error() {
    let ns = unique_namespace();
    let t = transport_for(config(), &ns, "a").await;
    let err = t
        .publish("nobody", Bytes::from_static(b"x"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::Publish { queue, .. } if queue.ends_with("-nobody")),
        "{err}"
    );
}

#[tokio::test]
async fn non_utf8_bodies_are_refused_not_mangled() {
    let ns = unique_namespace();
    let t = transport_for(config(), &ns, "a").await;
    let err = t
        .publish("a", Bytes::from_static(&[0xff, 0xfe]), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Publish { .. }), "{err}");
}

#[tokio::test]
async fn connecting_to_a_missing_queue_says_so() {
    let err = SqsTransport::connect(config(), &unique_namespace(), "ghost")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::Config(m) if m.contains("does not exist")),
        "{err}"
    );
}

#[tokio::test]
async fn handed_out_message_is_kept_invisible_until_settled_without_explicit_extends() {
    let ns = unique_namespace();
    let mut short = config();
    short.visibility_timeout = Duration::from_secs(3);
    let worker = transport_for(short.clone(), &ns, "a").await;
    let rival = SqsTransport::connect(short, &ns, "a").await.unwrap();
    worker
        .publish("a", Bytes::from_static(b"slow handler"), Duration::ZERO)
        .await
        .unwrap();
    let d = receive(&worker).await;
    // Three visibility timeouts pass while "the handler runs".
    assert!(
        receive_within(&rival, Duration::from_secs(9))
            .await
            .is_none(),
        "a message in progress was delivered twice"
    );
    worker.ack(&d).await.unwrap();
    assert!(
        receive_within(&rival, Duration::from_secs(5))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn closing_the_transport_lets_unsettled_messages_come_back() {
    let ns = unique_namespace();
    let mut short = config();
    short.visibility_timeout = Duration::from_secs(2);
    let worker = transport_for(short.clone(), &ns, "a").await;
    let rival = SqsTransport::connect(short, &ns, "a").await.unwrap();
    worker
        .publish("a", Bytes::from_static(b"orphan"), Duration::ZERO)
        .await
        .unwrap();
    let _unsettled = receive(&worker).await;
    worker.close().await;
    let back = receive(&rival).await;
    assert_eq!(&back.body[..], b"orphan");
    assert!(back.redelivered);
    rival.ack(&back).await.unwrap();
}
