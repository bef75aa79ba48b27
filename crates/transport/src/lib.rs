//! Message-queue transports for Asya.
//!
//! An actor owns one queue, `asya-<namespace>-<actor>`. The sidecar consumes it
//! and publishes results to other actors' queues; the controller creates,
//! measures and deletes it. Both talk to the broker through this crate, so the
//! queue topology (names, durability, delay queues, dead-lettering) is written
//! down exactly once.
//!
//! Three implementations sit behind [`Transport`] (the data path) and
//! [`QueueAdmin`] (the control path): [`rabbitmq`] with lapin and [`sqs`] with
//! aws-sdk-sqs, and [`memory`], one process holding every queue (`asya dev`). The traits are generic rather than object-safe: callers are
//! generic over the transport and pay no boxing on the hot path.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

pub mod error;
pub mod memory;
pub mod naming;
pub mod rabbitmq;
pub mod sqs;

pub use error::TransportError;

/// One message taken from the actor's queue, not yet settled.
///
/// Settle it exactly once with [`Transport::ack`] or [`Transport::requeue`].
/// Until then the broker keeps it (RabbitMQ: unacked; SQS: invisible), so a
/// crash of the sidecar redelivers it: this is what makes delivery
/// at-least-once.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The raw body, normally an envelope as JSON. It may be anything: the
    /// router, not the transport, decides what to do with a malformed body.
    pub body: Bytes,
    /// The broker's own handle for settling (delivery tag, receipt handle).
    pub handle: DeliveryHandle,
    /// True when the broker says this is a redelivery (RabbitMQ's flag, or an
    /// SQS receive count above one).
    pub redelivered: bool,
}

/// Opaque per-transport settle handle.
#[derive(Debug, Clone)]
pub enum DeliveryHandle {
    /// AMQP delivery of the consumer's channel ([`rabbitmq::AmqpHandle`]).
    Amqp(rabbitmq::AmqpHandle),
    /// SQS receipt handle.
    Sqs(String),
    /// In-memory queue and delivery tag ([`memory`], `asya dev`).
    Memory(memory::MemoryHandle),
}

/// The data path used by the sidecar.
pub trait Transport: Send + Sync + 'static {
    /// Waits for the next message of this actor's queue.
    fn receive(&self) -> impl Future<Output = Result<Delivery, TransportError>> + Send;

    /// Publishes `body` to the queue of actor `actor` (a bare actor name such as
    /// `b` or `x-sink`; the transport maps it to its queue), visible after
    /// `delay`. Returns only once the broker has confirmed the message is stored.
    fn publish(
        &self,
        actor: &str,
        body: Bytes,
        delay: Duration,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Removes a processed message from the queue.
    fn ack(&self, delivery: &Delivery) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Gives a message back to the queue for immediate redelivery.
    fn requeue(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Keeps a message invisible to other consumers for `by` more time while a
    /// long handler runs. A no-op where the broker has no such timer (RabbitMQ
    /// keeps unacked messages for as long as the channel lives).
    fn extend(
        &self,
        delivery: &Delivery,
        by: Duration,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// True while the transport believes it can receive and publish (for the
    /// sidecar's `/readyz`). Transports without a persistent connection
    /// answer true.
    fn is_connected(&self) -> bool {
        true
    }

    /// Stops receiving and releases the broker connection. Called once, after
    /// every in-flight delivery has been settled; deliveries received but not
    /// settled go back to the queue (RabbitMQ: on channel close; SQS: when
    /// their visibility timeout ends).
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Queue depth as far as the broker can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages waiting to be delivered.
    pub queued: u64,
    /// Messages delivered and not yet settled, where the broker reports it.
    pub processing: Option<u64>,
}

/// The control path used by the controller's queue drivers.
pub trait QueueAdmin: Send + Sync + 'static {
    /// Creates the queue (and its delay/dead-letter companions) if missing;
    /// idempotent.
    fn ensure_queue(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Creates the queue of `actor` in `namespace`. Prefer this to
    /// [`QueueAdmin::ensure_queue`] when the namespace is known: a queue name
    /// alone cannot say where a namespace with a dash in it ends, and SQS
    /// derives per-namespace companions (the DLQ, tags) from it.
    fn ensure_actor_queue(
        &self,
        namespace: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        let queue = naming::queue_name(namespace, actor);
        async move { self.ensure_queue(&queue).await }
    }
    /// Reads the queue's depth.
    fn depth(&self, queue: &str)
    -> impl Future<Output = Result<QueueDepth, TransportError>> + Send;
    /// Deletes the queue and its companions; deleting a missing queue is not an error.
    fn delete_queue(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// How long a message may be delayed in one hop; longer delays are chained.
pub const fn max_single_delay(kind: TransportKind) -> Duration {
    match kind {
        // SQS DelaySeconds is capped at 15 minutes.
        TransportKind::Sqs => Duration::from_secs(900),
        // Per-delay TTL queues have no practical cap.
        TransportKind::RabbitMq => Duration::from_secs(u32::MAX as u64),
    }
}

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    RabbitMq,
    Sqs,
}
