//! SQS transport (aws-sdk-sqs).
//!
//! The sidecar's [`SqsTransport`] long-polls its own queue, fetching up to
//! `batch_size` messages per call and handing them out one at a time; a
//! message waiting in that small local buffer has its visibility refreshed
//! before it is handed out, so buffering never lets it reappear on the queue.
//! Once handed out, a message is kept invisible by a small keep-alive task
//! (renewing its visibility every third of the timeout) until it is settled,
//! so a handler may run longer than the visibility timeout without a second
//! delivery; if the sidecar dies, the task dies with it and SQS redelivers.
//! `ack` deletes, `requeue` makes the message visible at once, `extend` sets
//! a longer timeout explicitly. Publishing uses `DelaySeconds`; delays past
//! SQS's 900 s are chained ([`delay`]).
//!
//! [`SqsAdmin`] is the controller's side: it creates queues with their
//! redrive policy to the namespace's dead-letter queue, reads depths and
//! deletes queues. Queue URLs are always resolved with `GetQueueUrl` and
//! ARNs read with `GetQueueAttributes`, so no account id is ever guessed.

mod admin;
mod config;
pub mod delay;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use bytes::Bytes;
use tokio::task::AbortHandle;

pub use admin::{SqsAdmin, split_queue_name};
pub use config::{SQS_MAX_BATCH, SQS_MAX_DELAY, SqsConfig, parse_duration};

use crate::{Delivery, DeliveryHandle, Transport, TransportError};
use config::ceil_secs;
use delay::{Arrival, DUE_AT_ATTRIBUTE, Hop};

/// Builds an SQS client for `config` (region, endpoint override); credentials
/// come from the standard AWS chain.
pub async fn client(config: &SqsConfig) -> Client {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .load()
        .await;
    let mut builder = aws_sdk_sqs::config::Builder::from(&shared);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Client::from_conf(builder.build())
}

/// Error codes SQS uses for a missing queue (JSON and query protocol).
pub(crate) fn is_missing_queue<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| {
            matches!(
                code,
                "QueueDoesNotExist" | "AWS.SimpleQueueService.NonExistentQueue"
            )
        })
}

pub(crate) fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    DisplayErrorContext(err).to_string()
}

/// A received message waiting in the local buffer.
struct Buffered {
    delivery: Delivery,
    received_at: Instant,
}

/// The sidecar's SQS transport, bound to one actor's queue.
pub struct SqsTransport {
    client: Client,
    config: SqsConfig,
    queue: String,
    queue_url: String,
    /// Where envelopes for other actors go (queue URLs cached).
    peers: Peers,
    buffer: tokio::sync::Mutex<VecDeque<Buffered>>,
    /// Visibility keep-alive tasks of the deliveries handed out, by receipt.
    heartbeats: Mutex<HashMap<String, AbortHandle>>,
    /// Early copies of chained delays re-published by this consumer.
    rehops: AtomicU64,
}

impl std::fmt::Debug for SqsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsTransport")
            .field("queue", &self.queue)
            .field("queue_url", &self.queue_url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SqsTransport {
    /// Connects to the queue of `actor` in `namespace`, which must exist (the
    /// controller creates it).
    pub async fn connect(
        config: SqsConfig,
        namespace: &str,
        actor: &str,
    ) -> Result<Self, TransportError> {
        config.validate()?;
        let client = client(&config).await;
        Self::with_client(client, config, namespace, actor).await
    }

    /// Connects with the settings of the contract's `ASYA_*` variables
    /// ([`SqsConfig::from_env`]): the sidecar's entry point.
    pub async fn from_env(namespace: &str, actor: &str) -> Result<Self, TransportError> {
        Self::connect(SqsConfig::from_env()?, namespace, actor).await
    }

    /// Like [`connect`](Self::connect) with an existing client.
    pub async fn with_client(
        client: Client,
        config: SqsConfig,
        namespace: &str,
        actor: &str,
    ) -> Result<Self, TransportError> {
        config.validate()?;
        let queue = config.naming.queue(namespace, actor);
        let queue_url = match client.get_queue_url().queue_name(&queue).send().await {
            Ok(out) => out.queue_url.ok_or_else(|| {
                TransportError::Connection(format!("SQS returned no URL for queue {queue}"))
            })?,
            Err(err) if is_missing_queue(&err) => {
                return Err(TransportError::Config(format!(
                    "SQS queue {queue} does not exist (the controller creates it)"
                )));
            }
            Err(err) => return Err(TransportError::Connection(describe(&err))),
        };
        let peers = Peers::new(client.clone(), &config, namespace);
        peers.remember(actor, &queue_url);
        Ok(Self {
            client,
            config,
            queue,
            queue_url,
            peers,
            buffer: tokio::sync::Mutex::new(VecDeque::new()),
            heartbeats: Mutex::new(HashMap::new()),
            rehops: AtomicU64::new(0),
        })
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The URL of this actor's queue.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// The settings in use.
    pub fn config(&self) -> &SqsConfig {
        &self.config
    }

    /// How many early copies of long delays this consumer has sent on.
    pub fn chained_hops(&self) -> u64 {
        self.rehops.load(Ordering::Relaxed)
    }

    /// Turns a received message into a delivery, or handles it here when it
    /// is an early hop of a chained delay (then `None`).
    async fn admit(&self, message: &Message) -> Option<Delivery> {
        let Some(receipt) = message.receipt_handle() else {
            tracing::warn!(queue = %self.queue, "SQS message without receipt handle ignored");
            return None;
        };
        let body = message.body().unwrap_or_default();
        // A malformed due time is ignored: delivering early beats losing.
        let due_at_ms = message
            .message_attributes()
            .and_then(|attrs| attrs.get(DUE_AT_ATTRIBUTE))
            .and_then(|value| value.string_value())
            .and_then(|raw| raw.parse::<u64>().ok());
        match delay::on_arrival(due_at_ms, self.config.max_hop_delay, delay::now_ms()) {
            Arrival::Deliver => {}
            Arrival::Rehop(hop) => {
                // Publish the next hop before deleting this one; if either
                // fails the message reappears after its visibility timeout
                // and is looked at again (a duplicate at worst, never a loss).
                self.rehops.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = send_to(&self.client, &self.queue_url, body, hop).await {
                    tracing::warn!(queue = %self.queue, error = %err, "re-publishing a delayed message failed");
                } else if let Err(err) = self
                    .client
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                {
                    tracing::warn!(queue = %self.queue, error = %describe(&err), "deleting an early delayed message failed");
                }
                return None;
            }
        }
        let receive_count = message
            .attributes()
            .and_then(|attrs| attrs.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|raw| raw.parse::<u64>().ok())
            .unwrap_or(1);
        Some(Delivery {
            body: Bytes::copy_from_slice(body.as_bytes()),
            handle: DeliveryHandle::Sqs(receipt.to_string()),
            redelivered: receive_count > 1,
        })
    }

    async fn set_visibility(&self, receipt: &str, seconds: i32) -> Result<(), TransportError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| TransportError::Settle(describe(&err)))
    }

    /// Keeps a handed-out message invisible until it is settled: every third
    /// of the visibility timeout its timeout is renewed, so a handler may run
    /// longer than the timeout without the message being delivered twice.
    /// SQS itself ends this 12 h after the receive; a dead sidecar ends it at
    /// once (the task dies with the process) and the message comes back.
    fn start_heartbeat(&self, receipt: &str) {
        let client = self.client.clone();
        let url = self.queue_url.clone();
        let handle = receipt.to_string();
        let visibility = self.config.visibility_timeout;
        let period = (visibility / 3).max(Duration::from_millis(300));
        let queue = self.queue.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if let Err(err) = client
                    .change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(&handle)
                    .visibility_timeout(ceil_secs(visibility))
                    .send()
                    .await
                {
                    tracing::warn!(queue = %queue, error = %describe(&err), "keeping a message invisible failed; it may be redelivered");
                    return;
                }
            }
        });
        if let Ok(mut beats) = self.heartbeats.lock()
            && let Some(old) = beats.insert(receipt.to_string(), task.abort_handle())
        {
            old.abort();
        }
    }

    fn stop_heartbeat(&self, receipt: &str) {
        if let Some(beat) = self
            .heartbeats
            .lock()
            .ok()
            .and_then(|mut beats| beats.remove(receipt))
        {
            beat.abort();
        }
    }

    fn stop_all_heartbeats(&self) {
        if let Ok(mut beats) = self.heartbeats.lock() {
            for (_, beat) in beats.drain() {
                beat.abort();
            }
        }
    }

    /// Gives buffered, never handed out messages back to the queue at once
    /// instead of letting them wait for their visibility timeout (on shutdown).
    pub async fn release_buffered(&self) {
        let mut buffer = self.buffer.lock().await;
        while let Some(waiting) = buffer.pop_front() {
            if let Ok(handle) = receipt(&waiting.delivery)
                && let Err(err) = self.set_visibility(handle, 0).await
            {
                tracing::debug!(queue = %self.queue, error = %err, "returning a buffered message failed; it reappears after its timeout");
            }
        }
    }
}

/// Publishing to actors' queues by name: queue URLs resolved with `GetQueueUrl` once per
/// actor and cached (forgotten when SQS says the queue is gone: it may come back under a
/// new URL). Shared by the sidecar's [`SqsTransport`] and the publish-only
/// [`SqsPublisher`].
struct Peers {
    client: Client,
    naming: asya_contract::QueueNaming,
    namespace: String,
    urls: RwLock<HashMap<String, String>>,
}

impl Peers {
    fn new(client: Client, config: &SqsConfig, namespace: &str) -> Self {
        Peers {
            client,
            naming: config.naming,
            namespace: namespace.to_string(),
            urls: RwLock::new(HashMap::new()),
        }
    }

    fn remember(&self, actor: &str, url: &str) {
        if let Ok(mut urls) = self.urls.write() {
            urls.insert(actor.to_string(), url.to_string());
        }
    }

    /// The URL of `actor`'s queue, from the cache or `GetQueueUrl`.
    async fn url_of(&self, actor: &str) -> Result<String, TransportError> {
        if let Some(url) = self.urls.read().ok().and_then(|m| m.get(actor).cloned()) {
            return Ok(url);
        }
        let queue = self.naming.queue(&self.namespace, actor);
        let url = match self.client.get_queue_url().queue_name(&queue).send().await {
            Ok(out) => out.queue_url.ok_or_else(|| TransportError::Publish {
                queue: queue.clone(),
                reason: "SQS returned no queue URL".into(),
            })?,
            Err(err) if is_missing_queue(&err) => {
                return Err(TransportError::Publish {
                    queue,
                    reason: "queue does not exist".into(),
                });
            }
            Err(err) => return Err(TransportError::Connection(describe(&err))),
        };
        self.remember(actor, &url);
        Ok(url)
    }

    fn forget_url(&self, actor: &str) {
        if let Ok(mut urls) = self.urls.write() {
            urls.remove(actor);
        }
    }

    async fn publish(
        &self,
        actor: &str,
        body: &[u8],
        delay: Duration,
        max_hop_delay: Duration,
    ) -> Result<(), TransportError> {
        let queue = self.naming.queue(&self.namespace, actor);
        let text = std::str::from_utf8(body).map_err(|_| TransportError::Publish {
            queue: queue.clone(),
            reason: "SQS message bodies must be UTF-8 text".into(),
        })?;
        let url = self.url_of(actor).await?;
        let hop = delay::plan(delay, max_hop_delay, delay::now_ms());
        send_to(&self.client, &url, text, hop).await.map_err(|err| {
            if matches!(err, SqsSendError::MissingQueue) {
                // The queue was deleted (and may come back under a new URL).
                self.forget_url(actor);
            }
            TransportError::Publish {
                queue,
                reason: err.to_string(),
            }
        })
    }
}

/// Publishes to actors' queues without consuming one (the gateway's side).
pub struct SqsPublisher {
    peers: Peers,
    config: SqsConfig,
}

impl std::fmt::Debug for SqsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsPublisher")
            .field("namespace", &self.peers.namespace)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SqsPublisher {
    /// A publisher for the actors of `namespace`. No call is made yet: queues are looked
    /// up on the first publish to each actor (a missing one fails that publish).
    pub async fn connect(config: SqsConfig, namespace: &str) -> Result<Self, TransportError> {
        config.validate()?;
        let client = client(&config).await;
        Ok(SqsPublisher {
            peers: Peers::new(client, &config, namespace),
            config,
        })
    }

    /// Publishes `body` to `actor`'s queue, now.
    pub async fn publish(&self, actor: &str, body: &[u8]) -> Result<(), TransportError> {
        self.peers
            .publish(actor, body, Duration::ZERO, self.config.max_hop_delay)
            .await
    }
}

/// Sends one message to the queue at `url`; a chained delay's due time travels as a
/// message attribute.
async fn send_to(client: &Client, url: &str, body: &str, hop: Hop) -> Result<(), SqsSendError> {
    let mut request = client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .delay_seconds(hop.delay_seconds);
    if let Some(due) = hop.due_at_ms {
        let attribute = MessageAttributeValue::builder()
            .data_type("Number")
            .string_value(due.to_string())
            .build()
            .map_err(|e| SqsSendError::Other(e.to_string()))?;
        request = request.message_attributes(DUE_AT_ATTRIBUTE, attribute);
    }
    request.send().await.map_err(|err| {
        if is_missing_queue(&err) {
            SqsSendError::MissingQueue
        } else {
            SqsSendError::Other(describe(&err))
        }
    })?;
    Ok(())
}

#[derive(Debug)]
enum SqsSendError {
    MissingQueue,
    Other(String),
}

impl std::fmt::Display for SqsSendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqsSendError::MissingQueue => f.write_str("queue does not exist"),
            SqsSendError::Other(reason) => f.write_str(reason),
        }
    }
}

fn receipt(delivery: &Delivery) -> Result<&str, TransportError> {
    match &delivery.handle {
        DeliveryHandle::Sqs(receipt) => Ok(receipt),
        other => Err(TransportError::Settle(format!(
            "not an SQS delivery: {other:?}"
        ))),
    }
}

impl Transport for SqsTransport {
    async fn receive(&self) -> Result<Delivery, TransportError> {
        let visibility = ceil_secs(self.config.visibility_timeout);
        let mut buffer = self.buffer.lock().await;
        loop {
            while let Some(waiting) = buffer.pop_front() {
                // A message that sat in the buffer for half its visibility gets
                // a fresh timeout, or is dropped (SQS redelivers it) if that fails.
                if waiting.received_at.elapsed() > self.config.visibility_timeout / 2 {
                    let Ok(handle) = receipt(&waiting.delivery) else {
                        continue;
                    };
                    if let Err(err) = self.set_visibility(handle, visibility).await {
                        tracing::warn!(queue = %self.queue, error = %err, "buffered message dropped; SQS will redeliver it");
                        continue;
                    }
                }
                if let Ok(handle) = receipt(&waiting.delivery) {
                    self.start_heartbeat(handle);
                }
                return Ok(waiting.delivery);
            }
            let output = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(self.config.batch_size)
                .wait_time_seconds(ceil_secs(self.config.wait_time))
                .visibility_timeout(visibility)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names(DUE_AT_ATTRIBUTE)
                .send()
                .await
                .map_err(|err| TransportError::Connection(describe(&err)))?;
            let received_at = Instant::now();
            for message in output.messages() {
                if let Some(delivery) = self.admit(message).await {
                    buffer.push_back(Buffered {
                        delivery,
                        received_at,
                    });
                }
            }
        }
    }

    async fn publish(
        &self,
        actor: &str,
        body: Bytes,
        delay: Duration,
    ) -> Result<(), TransportError> {
        self.peers
            .publish(actor, &body, delay, self.config.max_hop_delay)
            .await
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), TransportError> {
        let handle = receipt(delivery)?;
        self.stop_heartbeat(handle);
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| TransportError::Settle(describe(&err)))
    }

    async fn requeue(&self, delivery: &Delivery) -> Result<(), TransportError> {
        let handle = receipt(delivery)?;
        self.stop_heartbeat(handle);
        self.set_visibility(handle, 0).await
    }

    /// SQS counts a new visibility timeout from now: the message stays
    /// invisible for `by` from this call (at least 1 s, at most 12 h).
    async fn extend(&self, delivery: &Delivery, by: Duration) -> Result<(), TransportError> {
        let seconds = ceil_secs(by.min(config::SQS_MAX_VISIBILITY)).max(1);
        self.set_visibility(receipt(delivery)?, seconds).await
    }

    /// Returns buffered messages and stops keeping any message invisible:
    /// whatever was not settled comes back after its visibility timeout.
    async fn close(&self) {
        self.stop_all_heartbeats();
        self.release_buffered().await;
    }
}

impl Drop for SqsTransport {
    fn drop(&mut self) {
        self.stop_all_heartbeats();
    }
}
