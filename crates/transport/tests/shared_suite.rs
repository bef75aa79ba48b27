//! The behaviours every [`Transport`] shares, written once and run against the
//! in-memory transport and the RabbitMQ transport (the real broker at
//! ASYA_TEST_RABBITMQ_URL, from `tests/servers/up.sh`): a pipeline must
//! behave the same under `asya dev` as on the broker.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use asya_transport::Transport;
use asya_transport::memory::MemoryBroker;
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use bytes::Bytes;

/// Hands out consumers of one namespace of one broker.
trait Harness: Sync {
    type T: Transport;
    fn consumer(&self, actor: &str) -> impl Future<Output = Self::T> + Send;
}

struct Memory {
    broker: MemoryBroker,
}

impl Harness for Memory {
    type T = asya_transport::memory::MemoryTransport;
    async fn consumer(&self, actor: &str) -> Self::T {
        self.broker.consume("suite", actor)
    }
}

struct Rabbit {
    cfg: RabbitMqConfig,
}

impl Harness for Rabbit {
    type T = RabbitMq;
    async fn consumer(&self, actor: &str) -> Self::T {
        RabbitMq::consume(self.cfg.clone(), actor)
            .await
            .expect("RabbitMQ consumer")
    }
}

fn memory() -> Memory {
    Memory {
        broker: MemoryBroker::new(),
    }
}

fn rabbit() -> Option<Rabbit> {
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
    Some(Rabbit {
        cfg: RabbitMqConfig::new(url, format!("suite{}-{nanos}", std::process::id())),
    })
}

const PATIENCE: Duration = Duration::from_secs(20);

async fn next<T: Transport>(t: &T) -> asya_transport::Delivery {
    tokio::time::timeout(PATIENCE, t.receive())
        .await
        .expect("no message within the patience window")
        .expect("receive failed")
}

async fn nothing_within<T: Transport>(t: &T, window: Duration) -> bool {
    tokio::time::timeout(window, t.receive()).await.is_err()
}

// ---- the suite -------------------------------------------------------------

async fn delayed_publish_is_invisible_until_its_delay_passed<H: Harness>(h: H) {
    let t = h.consumer("delayed").await;
    let sent = Instant::now();
    t.publish(
        "delayed",
        Bytes::from_static(b"later"),
        Duration::from_millis(400),
    )
    .await
    .unwrap();
    t.publish("delayed", Bytes::from_static(b"now"), Duration::ZERO)
        .await
        .unwrap();
    let first = next(&t).await;
    assert_eq!(
        &first.body[..],
        b"now",
        "an undelayed message overtakes a delayed one"
    );
    t.ack(&first).await.unwrap();
    let d = next(&t).await;
    let waited = sent.elapsed();
    assert_eq!(&d.body[..], b"later");
    assert!(!d.redelivered);
    assert!(
        waited >= Duration::from_millis(400),
        "arrived after {waited:?}"
    );
    t.ack(&d).await.unwrap();
    t.close().await;
}

async fn requeued_message_comes_back_redelivered_and_acked_one_does_not<H: Harness>(h: H) {
    let t = h.consumer("settle").await;
    t.publish("settle", Bytes::from_static(b"m"), Duration::ZERO)
        .await
        .unwrap();
    let first = next(&t).await;
    assert!(!first.redelivered);
    t.requeue(&first).await.unwrap();
    let again = next(&t).await;
    assert_eq!(&again.body[..], b"m");
    assert!(again.redelivered);
    t.ack(&again).await.unwrap();
    assert!(nothing_within(&t, Duration::from_millis(500)).await);
    t.close().await;
}

async fn immediate_publishes_arrive_in_order<H: Harness>(h: H) {
    let t = h.consumer("fifo").await;
    for i in 0..5u8 {
        t.publish("fifo", Bytes::from(vec![b'0' + i]), Duration::ZERO)
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = next(&t).await;
        got.push(d.body[0]);
        t.ack(&d).await.unwrap();
    }
    assert_eq!(got, b"01234");
    t.close().await;
}

async fn unacked_message_goes_back_when_its_consumer_closes<H: Harness>(h: H) {
    let first = h.consumer("crash").await;
    first
        .publish("crash", Bytes::from_static(b"in flight"), Duration::ZERO)
        .await
        .unwrap();
    let d = next(&first).await;
    assert!(!d.redelivered);
    first.close().await;
    let second = h.consumer("crash").await;
    let again = next(&second).await;
    assert_eq!(&again.body[..], b"in flight");
    assert!(
        again.redelivered,
        "a message handed back by a closed consumer is a redelivery"
    );
    second.ack(&again).await.unwrap();
    assert!(nothing_within(&second, Duration::from_millis(500)).await);
    second.close().await;
}

async fn messages_reach_only_the_named_actors_queue<H: Harness>(h: H) {
    let a = h.consumer("a").await;
    let b = h.consumer("b").await;
    a.publish("b", Bytes::from_static(b"for b"), Duration::ZERO)
        .await
        .unwrap();
    let d = next(&b).await;
    assert_eq!(&d.body[..], b"for b");
    b.ack(&d).await.unwrap();
    assert!(nothing_within(&a, Duration::from_millis(500)).await);
    a.close().await;
    b.close().await;
}

// ---- memory ----------------------------------------------------------------

#[tokio::test]
async fn memory_delayed_publish_is_invisible_until_its_delay_passed() {
    delayed_publish_is_invisible_until_its_delay_passed(memory()).await;
}

#[tokio::test]
async fn memory_requeued_message_comes_back_redelivered_and_acked_one_does_not() {
    requeued_message_comes_back_redelivered_and_acked_one_does_not(memory()).await;
}

#[tokio::test]
async fn memory_immediate_publishes_arrive_in_order() {
    immediate_publishes_arrive_in_order(memory()).await;
}

#[tokio::test]
async fn memory_unacked_message_goes_back_when_its_consumer_closes() {
    unacked_message_goes_back_when_its_consumer_closes(memory()).await;
}

#[tokio::test]
async fn memory_messages_reach_only_the_named_actors_queue() {
    messages_reach_only_the_named_actors_queue(memory()).await;
}

// ---- rabbitmq --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_delayed_publish_is_invisible_until_its_delay_passed() {
    let Some(h) = rabbit() else { return };
    delayed_publish_is_invisible_until_its_delay_passed(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_requeued_message_comes_back_redelivered_and_acked_one_does_not() {
    let Some(h) = rabbit() else { return };
    requeued_message_comes_back_redelivered_and_acked_one_does_not(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_immediate_publishes_arrive_in_order() {
    let Some(h) = rabbit() else { return };
    immediate_publishes_arrive_in_order(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_unacked_message_goes_back_when_its_consumer_closes() {
    let Some(h) = rabbit() else { return };
    unacked_message_goes_back_when_its_consumer_closes(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_messages_reach_only_the_named_actors_queue() {
    let Some(h) = rabbit() else { return };
    messages_reach_only_the_named_actors_queue(h).await;
}

// ---- memory only: what the broker cannot be asked directly -----------------

#[tokio::test]
async fn memory_a_dropped_consumer_gives_its_deliveries_back_and_stale_acks_fail() {
    let broker = MemoryBroker::new();
    let first = broker.consume("ns", "a");
    first
        .publish("a", Bytes::from_static(b"x"), Duration::ZERO)
        .await
        .unwrap();
    let d = next(&first).await;
    let q = asya_transport::naming::queue_name("ns", "a");
    assert_eq!(broker.depth_of(&q).processing, Some(1));
    drop(first);
    assert_eq!(broker.depth_of(&q).queued, 1);
    let second = broker.consume("ns", "a");
    // The old delivery's handle is stale: it was handed back.
    assert!(second.ack(&d).await.is_err());
    let again = next(&second).await;
    assert!(again.redelivered);
    second.ack(&again).await.unwrap();
    assert!(
        second.ack(&again).await.is_err(),
        "a delivery is settled once"
    );
    let depth = broker.depth_of(&q);
    assert_eq!((depth.queued, depth.processing), (0, Some(0)));
}

#[tokio::test]
async fn memory_delayed_messages_count_as_queued_until_delivered() {
    let broker = MemoryBroker::new();
    let t = broker.consume("ns", "a");
    t.publish("a", Bytes::from_static(b"x"), Duration::from_millis(200))
        .await
        .unwrap();
    let q = asya_transport::naming::queue_name("ns", "a");
    assert_eq!(broker.depth_of(&q).queued, 1);
    let d = next(&t).await;
    t.ack(&d).await.unwrap();
    assert_eq!(broker.depth_of(&q).queued, 0);
}
