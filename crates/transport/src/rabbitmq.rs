//! RabbitMQ transport (lapin).
//!
//! Topology (the controller and the sidecar declare the same, idempotently):
//! - exchange `asya` (configurable), direct, durable;
//! - queue `asya-<ns>-<actor>`, durable, bound to the exchange with routing
//!   key = queue name;
//! - delayed redelivery: `asya.delay.<ms>.<queue>`, durable, with
//!   `x-message-ttl = ms`, dead-lettering into the exchange with the target
//!   queue's routing key. One queue per (delay, target): every message in it
//!   has the same TTL, so expiry is FIFO and no message waits behind a longer
//!   one. Delays are rounded *up* to two significant digits (1234 ms → 1300 ms)
//!   so that jittered delays share a bounded number of queues. Each delay
//!   queue has `x-expires = ms + 15 min` and is re-declared before every
//!   delayed publish (a declare renews the lease), so it can only expire once
//!   its last message has dead-lettered for at least 15 minutes.
//!
//! Data path: one connection consumes (manual ack, prefetch = concurrency)
//! and feeds deliveries into a bounded channel; acks are coalesced per
//! channel ([`acks`]: one `multiple` ack for a run of finished deliveries);
//! another connection publishes with
//! publisher confirms (`mandatory`, persistent, delivery mode 2) and waits for
//! the confirm of every message. Both reconnect with exponential backoff; the
//! broker redelivers what was unacked on a dead consumer channel. A delivery
//! received on a channel that has since died is skipped (its ack could never
//! reach the broker, which redelivers it anyway).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::{Mutex, Notify};

use crate::{Delivery, DeliveryHandle, QueueAdmin, QueueDepth, Transport, TransportError};
use acks::{AckBook, Refused};
use asya_contract::QueueNaming;

mod acks;

/// How long an idle delay queue outlives the TTL of its last message.
const DELAY_QUEUE_GRACE: Duration = Duration::from_secs(15 * 60);
/// Publish attempts (with a reconnect in between) before giving up.
const PUBLISH_ATTEMPTS: u32 = 3;
/// Cap of the reconnect backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long [`Transport::close`] waits for the consumer to send its last acks.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct RabbitMqConfig {
    /// Full AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// The direct exchange every actor queue is bound to.
    pub exchange: String,
    /// Namespace part of queue names (`asya-<namespace>-<actor>`).
    pub namespace: String,
    /// How actor names map to queue names (the platform's `queue.naming`).
    pub naming: QueueNaming,
    /// Unacked deliveries the broker may hand to this consumer (= concurrency).
    pub prefetch: u16,
    /// Name shown in the broker's connection list.
    pub connection_name: String,
    /// Coalesce consumer acks ([`acks`]); false sends one `basic.ack` per
    /// message through lapin's own acker, as a plain lapin consumer does.
    pub coalesce_acks: bool,
}

impl RabbitMqConfig {
    /// Config with the default exchange `asya` and prefetch 1.
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange: "asya".into(),
            namespace: namespace.into(),
            naming: QueueNaming::Namespaced,
            prefetch: 1,
            connection_name: "asya".into(),
            coalesce_acks: true,
        }
    }
}

/// Name of the delay queue holding messages for `queue` for `delay_ms`.
pub fn delay_queue_name(delay_ms: u64, queue: &str) -> String {
    format!("asya.delay.{delay_ms}.{queue}")
}

/// Rounds a delay up to two significant digits of milliseconds, so that
/// jittered delays share a bounded number of delay queues (at most 90 per
/// decade) and never wait less than asked.
pub fn delay_bucket_ms(delay: Duration) -> u64 {
    let ms = delay.as_millis().min(u128::from(u32::MAX)) as u64;
    let ms = if Duration::from_millis(ms) < delay {
        ms + 1
    } else {
        ms
    };
    let mut unit = 1u64;
    while ms / unit >= 100 {
        unit *= 10;
    }
    ms.div_ceil(unit) * unit
}

fn conn_err(context: &str, err: impl std::fmt::Display) -> TransportError {
    TransportError::Connection(format!("{context}: {err}"))
}

/// How a RabbitMQ delivery is settled: lapin's acker (which knows when its
/// channel has died, so a stale delivery is never acked on a new one) and,
/// when acks are coalesced, the ledger of its channel.
#[derive(Debug, Clone)]
pub struct AmqpHandle {
    acker: lapin::Acker,
    tag: u64,
    book: Option<Arc<AckBook>>,
}

/// A live publishing channel and the connection it belongs to.
struct Publisher {
    conn: Connection,
    channel: Channel,
    /// Queues declared on this connection (re-declared after a reconnect, as
    /// the broker may have lost non-durable state or the queue may be new).
    declared: std::sync::Mutex<HashSet<String>>,
}

/// The RabbitMQ transport: consumer (optional) and publisher.
pub struct RabbitMq {
    cfg: RabbitMqConfig,
    publisher: Mutex<Option<Arc<Publisher>>>,
    /// Shared by the sidecar's slots: a multi-consumer channel, so a delivery
    /// wakes one waiting slot directly (no lock handed from slot to slot).
    deliveries: Option<flume::Receiver<Delivery>>,
    consumer_up: Arc<AtomicBool>,
    /// The consumer task, awaited on close so its last acks go out.
    consumer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: Arc<Notify>,
    stopped: Arc<AtomicBool>,
}

impl RabbitMq {
    /// A publisher/admin-only transport (no queue is consumed). Connects
    /// eagerly so that a wrong URL fails here.
    pub async fn connect(cfg: RabbitMqConfig) -> Result<Self, TransportError> {
        let this = Self {
            cfg,
            publisher: Mutex::new(None),
            deliveries: None,
            consumer_up: Arc::new(AtomicBool::new(false)),
            consumer: std::sync::Mutex::new(None),
            stop: Arc::new(Notify::new()),
            stopped: Arc::new(AtomicBool::new(false)),
        };
        this.publisher().await?;
        Ok(this)
    }

    /// A transport that consumes the queue of `actor` (declaring it) and
    /// publishes. The consumer runs in a background task that reconnects
    /// with backoff until [`Transport::close`].
    pub async fn consume(cfg: RabbitMqConfig, actor: &str) -> Result<Self, TransportError> {
        let mut this = Self::connect(cfg).await?;
        let queue = this.queue_of(actor);
        // Buffer one delivery per slot: the broker's prefetch already bounds
        // how many can be outstanding.
        let (tx, rx) = flume::bounded(usize::from(this.cfg.prefetch.max(1)));
        this.deliveries = Some(rx);
        let task = ConsumerTask {
            cfg: this.cfg.clone(),
            queue,
            tx,
            up: this.consumer_up.clone(),
            stop: this.stop.clone(),
            stopped: this.stopped.clone(),
        };
        let running = tokio::spawn(task.run());
        if let Ok(mut c) = this.consumer.lock() {
            *c = Some(running);
        }
        Ok(this)
    }

    /// The queue name of `actor` in this transport's namespace.
    pub fn queue_of(&self, actor: &str) -> String {
        self.cfg.naming.queue(&self.cfg.namespace, actor)
    }

    async fn publisher(&self) -> Result<Arc<Publisher>, TransportError> {
        let mut slot = self.publisher.lock().await;
        if let Some(p) = slot.as_ref()
            && p.channel.status().connected()
        {
            return Ok(p.clone());
        }
        *slot = None;
        let conn = connect(&self.cfg, "publisher").await?;
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| conn_err("create publish channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| conn_err("enable publisher confirms", e))?;
        declare_exchange(&channel, &self.cfg.exchange).await?;
        let p = Arc::new(Publisher {
            conn,
            channel,
            declared: std::sync::Mutex::new(HashSet::new()),
        });
        *slot = Some(p.clone());
        Ok(p)
    }

    async fn drop_publisher(&self, dead: &Arc<Publisher>) {
        let mut slot = self.publisher.lock().await;
        if slot.as_ref().is_some_and(|p| Arc::ptr_eq(p, dead)) {
            *slot = None;
        }
    }

    /// Publishes `body` straight to `queue` (a full queue name), declaring
    /// the queue first; waits for the broker's confirm.
    pub async fn publish_to_queue(
        &self,
        queue: &str,
        body: &[u8],
        delay: Duration,
    ) -> Result<(), TransportError> {
        let mut last = None;
        for attempt in 0..PUBLISH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            let p = match self.publisher().await {
                Ok(p) => p,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match self.publish_once(&p, queue, body, delay).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(queue, attempt, error = %e, "publish failed");
                    if !p.channel.status().connected() {
                        self.drop_publisher(&p).await;
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| TransportError::Publish {
            queue: queue.to_string(),
            reason: "no attempt made".into(),
        }))
    }

    async fn publish_once(
        &self,
        p: &Publisher,
        queue: &str,
        body: &[u8],
        delay: Duration,
    ) -> Result<(), TransportError> {
        let publish_err = |reason: String| TransportError::Publish {
            queue: queue.to_string(),
            reason,
        };
        let known = p
            .declared
            .lock()
            .map(|d| d.contains(queue))
            .unwrap_or(false);
        if !known {
            declare_actor_queue(&p.channel, &self.cfg.exchange, queue).await?;
            if let Ok(mut d) = p.declared.lock() {
                d.insert(queue.to_string());
            }
        }
        let (exchange, routing_key) = if delay.is_zero() {
            (self.cfg.exchange.clone(), queue.to_string())
        } else {
            let ms = delay_bucket_ms(delay);
            let dq = delay_queue_name(ms, queue);
            // Re-declared on every delayed publish: this renews the queue's
            // x-expires lease, so it cannot expire while holding messages.
            declare_delay_queue(&p.channel, &self.cfg.exchange, &dq, queue, ms).await?;
            (String::new(), dq)
        };
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"));
        let confirm = p
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                props,
            )
            .await
            .map_err(|e| publish_err(e.to_string()))?
            .await
            .map_err(|e| publish_err(e.to_string()))?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => {
                // The queue vanished (deleted by the controller?): declare it
                // again on the next attempt.
                if let Ok(mut d) = p.declared.lock() {
                    d.remove(queue);
                }
                Err(publish_err(format!(
                    "returned by the broker as unroutable ({})",
                    returned.reply_text
                )))
            }
            Confirmation::Nack(_) => Err(publish_err("negatively acknowledged".into())),
            Confirmation::NotRequested => Err(publish_err("confirms not enabled".into())),
        }
    }

    /// Runs `op` on a fresh channel of the publisher connection (admin
    /// operations may close their channel on a 404; that must not disturb
    /// publishing).
    async fn admin_channel(&self) -> Result<Channel, TransportError> {
        let p = self.publisher().await?;
        let ch = p.conn.create_channel().await;
        match ch {
            Ok(ch) => Ok(ch),
            Err(e) => {
                self.drop_publisher(&p).await;
                Err(conn_err("create admin channel", e))
            }
        }
    }
}

impl Transport for RabbitMq {
    async fn receive(&self) -> Result<Delivery, TransportError> {
        let Some(rx) = &self.deliveries else {
            return Err(TransportError::Config(
                "this RabbitMQ transport was created without a queue to consume".into(),
            ));
        };
        loop {
            // Cancel-safe: a receive dropped after being woken passes the wake on.
            let Ok(d) = rx.recv_async().await else {
                return Err(TransportError::Connection("consumer stopped".into()));
            };
            // A delivery from a channel that died meanwhile can no longer be
            // acked; the broker has requeued it already.
            if let DeliveryHandle::Amqp(h) = &d.handle
                && !h.acker.usable()
            {
                continue;
            }
            return Ok(d);
        }
    }

    async fn publish(
        &self,
        actor: &str,
        body: Bytes,
        delay: Duration,
    ) -> Result<(), TransportError> {
        let queue = self.queue_of(actor);
        self.publish_to_queue(&queue, &body, delay).await
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), TransportError> {
        let DeliveryHandle::Amqp(h) = &delivery.handle else {
            return Err(TransportError::Settle("not an AMQP delivery".into()));
        };
        if let Some(book) = &h.book {
            return book
                .mark(h.tag, true)
                .map_err(|r| TransportError::Settle(r.to_string()));
        }
        match h.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(TransportError::Settle(Refused::ChannelGone.to_string())),
            Err(e) => Err(TransportError::Settle(e.to_string())),
        }
    }

    async fn requeue(&self, delivery: &Delivery) -> Result<(), TransportError> {
        let DeliveryHandle::Amqp(h) = &delivery.handle else {
            return Err(TransportError::Settle("not an AMQP delivery".into()));
        };
        if let Some(book) = &h.book {
            return match book.mark(h.tag, false) {
                // The channel is gone: the broker requeues on its own.
                Ok(()) | Err(Refused::ChannelGone) => Ok(()),
                Err(r) => Err(TransportError::Settle(r.to_string())),
            };
        }
        let opts = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        match h.acker.nack(opts).await {
            Ok(true) => Ok(()),
            // The channel is gone: the broker requeues on its own.
            Ok(false) => Ok(()),
            Err(e) => Err(TransportError::Settle(e.to_string())),
        }
    }

    async fn extend(&self, _delivery: &Delivery, _by: Duration) -> Result<(), TransportError> {
        // Unacked messages stay with this consumer for as long as the channel lives.
        Ok(())
    }

    fn is_connected(&self) -> bool {
        let publisher_ok = self
            .publisher
            .try_lock()
            .map(|p| p.as_ref().is_none_or(|p| p.channel.status().connected()))
            .unwrap_or(true);
        let consumer_ok = self.deliveries.is_none() || self.consumer_up.load(Ordering::Relaxed);
        publisher_ok && consumer_ok
    }

    async fn close(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        self.stop.notify_one();
        let consumer = self.consumer.lock().ok().and_then(|mut c| c.take());
        if let Some(consumer) = consumer
            && tokio::time::timeout(CLOSE_WAIT, consumer).await.is_err()
        {
            tracing::warn!(
                "the consumer did not stop in time; the broker redelivers what it did not ack"
            );
        }
        let p = self.publisher.lock().await.take();
        if let Some(p) = p {
            let _ = p.conn.close(200, "sidecar shutdown".into()).await;
        }
    }
}

impl QueueAdmin for RabbitMq {
    async fn ensure_actor_queue(&self, namespace: &str, actor: &str) -> Result<(), TransportError> {
        self.ensure_queue(&self.cfg.naming.queue(namespace, actor))
            .await
    }

    async fn ensure_queue(&self, queue: &str) -> Result<(), TransportError> {
        let ch = self.admin_channel().await?;
        declare_exchange(&ch, &self.cfg.exchange).await?;
        declare_actor_queue(&ch, &self.cfg.exchange, queue).await?;
        let _ = ch.close(200, "done".into()).await;
        Ok(())
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, TransportError> {
        let ch = self.admin_channel().await?;
        let q = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| TransportError::Admin {
                queue: queue.to_string(),
                reason: e.to_string(),
            })?;
        let _ = ch.close(200, "done".into()).await;
        // AMQP reports only ready messages; unacked needs the management API.
        Ok(QueueDepth {
            queued: u64::from(q.message_count()),
            processing: None,
        })
    }

    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        let ch = self.admin_channel().await?;
        ch.queue_delete(queue.into(), QueueDeleteOptions::default())
            .await
            .map_err(|e| TransportError::Admin {
                queue: queue.to_string(),
                reason: e.to_string(),
            })?;
        let _ = ch.close(200, "done".into()).await;
        // Delay queues of this queue expire on their own (x-expires).
        Ok(())
    }
}

async fn connect(cfg: &RabbitMqConfig, role: &str) -> Result<Connection, TransportError> {
    let props = ConnectionProperties::default()
        .with_connection_name(format!("{} ({role})", cfg.connection_name).into());
    Connection::connect(&cfg.url, props)
        .await
        .map_err(|e| conn_err("connect to RabbitMQ", e))
}

async fn declare_exchange(ch: &Channel, exchange: &str) -> Result<(), TransportError> {
    ch.exchange_declare(
        exchange.into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(|e| TransportError::Admin {
        queue: exchange.to_string(),
        reason: format!("declare exchange: {e}"),
    })
}

async fn declare_actor_queue(
    ch: &Channel,
    exchange: &str,
    queue: &str,
) -> Result<(), TransportError> {
    let admin = |reason: String| TransportError::Admin {
        queue: queue.to_string(),
        reason,
    };
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(|e| admin(format!("declare: {e}")))?;
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        queue.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| admin(format!("bind: {e}")))?;
    Ok(())
}

async fn declare_delay_queue(
    ch: &Channel,
    exchange: &str,
    delay_queue: &str,
    target: &str,
    ms: u64,
) -> Result<(), TransportError> {
    let mut args = FieldTable::default();
    let ttl = i64::try_from(ms).unwrap_or(i64::MAX);
    let expires = ttl.saturating_add(DELAY_QUEUE_GRACE.as_millis() as i64);
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
    args.insert("x-expires".into(), AMQPValue::LongLongInt(expires));
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(exchange.into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(target.into()),
    );
    ch.queue_declare(
        delay_queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await
    .map_err(|e| TransportError::Admin {
        queue: delay_queue.to_string(),
        reason: format!("declare delay queue: {e}"),
    })?;
    Ok(())
}

/// The background consumer: connect, declare, consume, forward; on any
/// failure reconnect with backoff.
struct ConsumerTask {
    cfg: RabbitMqConfig,
    queue: String,
    tx: flume::Sender<Delivery>,
    up: Arc<AtomicBool>,
    stop: Arc<Notify>,
    stopped: Arc<AtomicBool>,
}

impl ConsumerTask {
    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        while !self.stopped.load(Ordering::SeqCst) {
            match self.consume_once(&mut backoff).await {
                Ok(()) => break,
                Err(e) => {
                    self.up.store(false, Ordering::Relaxed);
                    if self.stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    tracing::warn!(queue = %self.queue, error = %e, retry_in = ?backoff, "RabbitMQ consumer down; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.stop.notified() => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.up.store(false, Ordering::Relaxed);
    }

    async fn consume_once(&self, backoff: &mut Duration) -> Result<(), TransportError> {
        let conn = connect(&self.cfg, "consumer").await?;
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| conn_err("create consume channel", e))?;
        declare_exchange(&ch, &self.cfg.exchange).await?;
        declare_actor_queue(&ch, &self.cfg.exchange, &self.queue).await?;
        ch.basic_qos(self.cfg.prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(|e| conn_err("set prefetch", e))?;
        let mut consumer = ch
            .basic_consume(
                self.queue.as_str().into(),
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| conn_err("start consuming", e))?;
        self.up.store(true, Ordering::Relaxed);
        *backoff = Duration::from_millis(100);
        tracing::info!(queue = %self.queue, prefetch = self.cfg.prefetch, coalesce_acks = self.cfg.coalesce_acks, "consuming");
        let acks = self.cfg.coalesce_acks.then(|| {
            // Done deliveries held behind a slow one take up at most a
            // quarter of the prefetch window.
            let book = Arc::new(AckBook::new(usize::from(self.cfg.prefetch / 4).max(1)));
            let acker = tokio::spawn(book.clone().run(ch.clone()));
            (book, acker)
        });
        let book = acks.as_ref().map(|(b, _)| b);
        let ended = self.forward(&mut consumer, book).await;
        // Sends the last acks (on stop: of everything settled; on failure the
        // channel is gone and the broker redelivers).
        if let Some((book, acker)) = acks {
            book.close(acker).await;
        }
        ended?;
        self.shut(&conn, &ch, &consumer).await
    }

    /// Hands deliveries to the slots until stopped (`Ok`) or the consumer fails.
    async fn forward(
        &self,
        consumer: &mut lapin::Consumer,
        book: Option<&Arc<AckBook>>,
    ) -> Result<(), TransportError> {
        loop {
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = self.stop.notified() => return Ok(()),
            };
            match next {
                Some(Ok(d)) => {
                    if let Some(book) = book {
                        book.received(d.delivery_tag);
                    }
                    let delivery = Delivery {
                        body: Bytes::from(d.data),
                        handle: DeliveryHandle::Amqp(AmqpHandle {
                            acker: d.acker,
                            tag: d.delivery_tag,
                            book: book.cloned(),
                        }),
                        redelivered: d.redelivered,
                    };
                    tokio::select! {
                        sent = self.tx.send_async(delivery) => if sent.is_err() {
                            return Ok(());
                        },
                        // The undelivered message is requeued by the broker
                        // when the connection closes.
                        _ = self.stop.notified() => return Ok(()),
                    }
                }
                Some(Err(e)) => return Err(conn_err("consumer", e)),
                None => return Err(TransportError::Connection("consumer stream ended".into())),
            }
        }
    }

    /// Called from [`Transport::close`], i.e. after in-flight work has been
    /// settled: unacked prefetched messages go back to the queue.
    async fn shut(
        &self,
        conn: &Connection,
        ch: &Channel,
        consumer: &lapin::Consumer,
    ) -> Result<(), TransportError> {
        let _ = ch
            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
            .await;
        let _ = conn.close(200, "sidecar shutdown".into()).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_two_significant_digits() {
        assert_eq!(delay_bucket_ms(Duration::from_millis(57)), 57);
        assert_eq!(delay_bucket_ms(Duration::from_millis(200)), 200);
        assert_eq!(delay_bucket_ms(Duration::from_millis(1234)), 1300);
        assert_eq!(delay_bucket_ms(Duration::from_millis(61_001)), 62_000);
        assert_eq!(delay_bucket_ms(Duration::from_micros(1500)), 2);
    }

    #[test]
    fn delay_queue_names_carry_delay_and_target() {
        assert_eq!(
            delay_queue_name(200, "asya-ns-a"),
            "asya.delay.200.asya-ns-a"
        );
    }
}
