//! In-memory transport: one process holds every queue (`asya dev`).
//!
//! Semantics follow the RabbitMQ transport, so that a pipeline behaves the
//! same on a laptop as on a broker:
//! - a queue per actor, named like every transport's (`asya-<ns>-<actor>`),
//!   created on first use; FIFO;
//! - `publish` with a delay holds the message aside and makes it visible
//!   once the delay has passed (RabbitMQ: a TTL queue dead-lettering back);
//! - a received message stays *unacked* with its consumer until `ack`
//!   removes it or `requeue` puts it back at the head, marked `redelivered`;
//! - closing (or dropping) a consumer gives its unacked messages back,
//!   marked `redelivered` (RabbitMQ: channel close);
//! - settling a delivery twice, or after its consumer closed, is an error
//!   for `ack` and a no-op for `requeue` (the message is back already), as
//!   with a dead AMQP channel.
//!
//! Nothing is persisted: the queues live as long as the [`MemoryBroker`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::naming::queue_name;
use crate::{Delivery, DeliveryHandle, QueueAdmin, QueueDepth, Transport, TransportError};

/// Settle handle of an in-memory delivery: which queue, which delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryHandle {
    queue: String,
    tag: u64,
}

#[derive(Debug, Clone)]
struct Message {
    body: Bytes,
    redelivered: bool,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<Message>,
    /// Delivered, not settled: tag → (consumer id, message).
    unacked: HashMap<u64, (u64, Message)>,
    /// Published with a delay that has not passed yet.
    delayed: u64,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, Queue>,
}

struct Shared {
    state: Mutex<State>,
    next_id: AtomicU64,
}

/// The queues of one process. Cheap to clone; every clone is the same broker.
#[derive(Clone)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker").finish_non_exhaustive()
    }
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// A transport that publishes only (like [`crate::rabbitmq::RabbitMq::connect`]).
    pub fn publisher(&self, namespace: &str) -> MemoryTransport {
        MemoryTransport {
            broker: self.clone(),
            namespace: namespace.to_string(),
            queue: None,
            consumer: self.next_id(),
            closed: AtomicBool::new(false),
        }
    }

    /// A transport that consumes the queue of `actor` in `namespace` and publishes.
    pub fn consume(&self, namespace: &str, actor: &str) -> MemoryTransport {
        let queue = queue_name(namespace, actor);
        self.lock().queues.entry(queue.clone()).or_default();
        MemoryTransport {
            broker: self.clone(),
            namespace: namespace.to_string(),
            queue: Some(queue),
            consumer: self.next_id(),
            closed: AtomicBool::new(false),
        }
    }

    /// Depth of `queue`: ready messages (delayed ones included, as they
    /// are stored and will be delivered) and unacked ones.
    pub fn depth_of(&self, queue: &str) -> QueueDepth {
        let state = self.lock();
        match state.queues.get(queue) {
            Some(q) => QueueDepth {
                queued: q.ready.len() as u64 + q.delayed,
                processing: Some(q.unacked.len() as u64),
            },
            None => QueueDepth::default(),
        }
    }

    /// Messages waiting in every queue (ready or delayed; not the unacked ones).
    pub fn queued_total(&self) -> u64 {
        self.lock()
            .queues
            .values()
            .map(|q| q.ready.len() as u64 + q.delayed)
            .sum()
    }

    fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (every
        // mutation is a single insert/remove), so a poisoned lock is usable.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, queue: &str, msg: Message, front: bool) {
        let mut state = self.lock();
        let q = state.queues.entry(queue.to_string()).or_default();
        if front {
            q.ready.push_front(msg);
        } else {
            q.ready.push_back(msg);
        }
        q.notify.notify_one();
    }

    /// Gives every unacked message of `consumer` back to its queue's head,
    /// in the order they were delivered.
    fn return_unacked(&self, consumer: u64) {
        let mut state = self.lock();
        for q in state.queues.values_mut() {
            let mut mine: Vec<u64> = q
                .unacked
                .iter()
                .filter(|(_, (c, _))| *c == consumer)
                .map(|(tag, _)| *tag)
                .collect();
            if mine.is_empty() {
                continue;
            }
            mine.sort_unstable();
            for tag in mine.into_iter().rev() {
                if let Some((_, mut m)) = q.unacked.remove(&tag) {
                    m.redelivered = true;
                    q.ready.push_front(m);
                }
            }
            q.notify.notify_one();
        }
    }
}

/// One process's view of the broker: a consumer of one queue (optional) and a publisher.
pub struct MemoryTransport {
    broker: MemoryBroker,
    namespace: String,
    queue: Option<String>,
    consumer: u64,
    closed: AtomicBool,
}

impl MemoryTransport {
    /// The queue name of `actor` in this transport's namespace.
    pub fn queue_of(&self, actor: &str) -> String {
        queue_name(&self.namespace, actor)
    }

    /// The broker this transport belongs to.
    pub fn broker(&self) -> &MemoryBroker {
        &self.broker
    }

    fn handle<'a>(&self, delivery: &'a Delivery) -> Result<&'a MemoryHandle, TransportError> {
        match &delivery.handle {
            DeliveryHandle::Memory(h) => Ok(h),
            _ => Err(TransportError::Settle("not an in-memory delivery".into())),
        }
    }

    /// Takes the settled delivery out of its queue's unacked set.
    fn settle(&self, h: &MemoryHandle) -> Option<Message> {
        let mut state = self.broker.lock();
        let q = state.queues.get_mut(&h.queue)?;
        match q.unacked.get(&h.tag) {
            Some((c, _)) if *c == self.consumer => q.unacked.remove(&h.tag).map(|(_, m)| m),
            _ => None,
        }
    }
}

impl Transport for MemoryTransport {
    async fn receive(&self) -> Result<Delivery, TransportError> {
        let Some(queue) = &self.queue else {
            return Err(TransportError::Config(
                "this in-memory transport was created without a queue to consume".into(),
            ));
        };
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Err(TransportError::Connection("consumer stopped".into()));
            }
            let notify = {
                let mut state = self.broker.lock();
                let q = state.queues.entry(queue.clone()).or_default();
                if let Some(m) = q.ready.pop_front() {
                    let tag = self.broker.next_id();
                    q.unacked.insert(tag, (self.consumer, m.clone()));
                    // Several slots may wait on one queue: pass the wake-up on
                    // while messages remain.
                    if !q.ready.is_empty() {
                        q.notify.notify_one();
                    }
                    return Ok(Delivery {
                        body: m.body,
                        handle: DeliveryHandle::Memory(MemoryHandle {
                            queue: queue.clone(),
                            tag,
                        }),
                        redelivered: m.redelivered,
                    });
                }
                q.notify.clone()
            };
            // notify_one stores a permit when nobody waits, so a publish
            // between the unlock above and this await is not missed.
            notify.notified().await;
        }
    }

    async fn publish(
        &self,
        actor: &str,
        body: Bytes,
        delay: Duration,
    ) -> Result<(), TransportError> {
        let queue = self.queue_of(actor);
        let msg = Message {
            body,
            redelivered: false,
        };
        if delay.is_zero() {
            self.broker.push(&queue, msg, false);
            return Ok(());
        }
        self.broker
            .lock()
            .queues
            .entry(queue.clone())
            .or_default()
            .delayed += 1;
        let broker = self.broker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            {
                let mut state = broker.lock();
                let q = state.queues.entry(queue.clone()).or_default();
                q.delayed = q.delayed.saturating_sub(1);
            }
            broker.push(&queue, msg, false);
        });
        Ok(())
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), TransportError> {
        let h = self.handle(delivery)?;
        match self.settle(h) {
            Some(_) => Ok(()),
            None => Err(TransportError::Settle(format!(
                "delivery {} of {} is not unacked by this consumer (settled twice, or its consumer closed and it was redelivered)",
                h.tag, h.queue
            ))),
        }
    }

    async fn requeue(&self, delivery: &Delivery) -> Result<(), TransportError> {
        let h = self.handle(delivery)?;
        // Not unacked any more: back in the queue already (consumer closed).
        if let Some(mut m) = self.settle(h) {
            m.redelivered = true;
            self.broker.push(&h.queue, m, true);
        }
        Ok(())
    }

    async fn extend(&self, _delivery: &Delivery, _by: Duration) -> Result<(), TransportError> {
        // Like RabbitMQ: an unacked message stays with its consumer until settled.
        Ok(())
    }

    async fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.broker.return_unacked(self.consumer);
            if let Some(q) = &self.queue {
                let notify = self.broker.lock().queues.get(q).map(|q| q.notify.clone());
                // Wake our own slots so they see `closed`.
                if let Some(n) = notify {
                    n.notify_waiters();
                }
            }
        }
    }
}

impl Drop for MemoryTransport {
    /// A consumer that goes away without closing (a crashed sidecar) loses
    /// its deliveries to the queue, as a broken AMQP channel does.
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.broker.return_unacked(self.consumer);
        }
    }
}

impl QueueAdmin for MemoryTransport {
    async fn ensure_queue(&self, queue: &str) -> Result<(), TransportError> {
        self.broker
            .lock()
            .queues
            .entry(queue.to_string())
            .or_default();
        Ok(())
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, TransportError> {
        if !self.broker.lock().queues.contains_key(queue) {
            return Err(TransportError::Admin {
                queue: queue.to_string(),
                reason: "no such queue".into(),
            });
        }
        Ok(self.broker.depth_of(queue))
    }

    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        self.broker.lock().queues.remove(queue);
        Ok(())
    }
}
