//! A [`Transport`] wrapper that reports what one actor's worker does, so
//! `asya dev` can print each hop as it happens without changing the
//! sidecar: a hop starts at `receive`, collects the `publish`es made for it
//! (the results carry the received envelope's id, or it as `parent_id` for
//! fan-out children) and ends at `ack` (or `requeue`).
//!
//! Every publish is reported *before* it reaches the transport and every
//! settle after, on one FIFO channel: the counter of messages in flight
//! therefore never drops to zero while a result is on its way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use asya_transport::{Delivery, Transport, TransportError};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

/// What the session is told.
#[derive(Debug)]
pub enum Event {
    /// A message is about to be published (+1 in flight).
    Published,
    /// A publish failed: the message does not exist (-1 in flight).
    PublishFailed,
    /// A delivery was acked (-1 in flight).
    Acked,
    /// One actor finished one message.
    Hop(Hop),
    /// A delivery was given back to its queue (runtime away, storage down).
    Requeued { actor: String, id: String },
    /// x-sink stored a final envelope.
    Final(Value),
    /// x-sump received an envelope.
    Sump(Value),
}

/// One message through one actor.
#[derive(Debug)]
pub struct Hop {
    pub actor: String,
    pub id: String,
    pub took: Duration,
    /// `status.attempt - 1` of the received envelope: retries before this one.
    pub retries: u64,
    pub redelivered: bool,
    /// Destination actor and the result's `status.phase`, in publish order.
    pub out: Vec<(String, String)>,
}

/// Which end role (if any) the tapped worker plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Regular,
    Sink,
    Sump,
}

struct Started {
    at: Instant,
    retries: u64,
    redelivered: bool,
    out: Vec<(String, String)>,
}

pub struct Tap<T> {
    inner: T,
    actor: String,
    role: Role,
    events: UnboundedSender<Event>,
    started: Mutex<HashMap<String, Started>>,
}

impl<T: Transport> Tap<T> {
    pub fn new(inner: T, actor: &str, role: Role, events: UnboundedSender<Event>) -> Self {
        Self {
            inner,
            actor: actor.to_string(),
            role,
            events,
            started: Mutex::new(HashMap::new()),
        }
    }

    fn emit(&self, e: Event) {
        // The session outlives every worker; a closed channel only means it is exiting.
        let _ = self.events.send(e);
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl<T: Transport> Transport for Tap<T> {
    async fn receive(&self) -> Result<Delivery, TransportError> {
        let d = self.inner.receive().await?;
        if self.role == Role::Regular
            && let Ok(v) = serde_json::from_slice::<Value>(&d.body)
            && let Some(id) = field(&v, "id")
        {
            let attempt = v["status"]["attempt"].as_u64().unwrap_or(1).max(1);
            // A retry comes back to the same actor with the attempt already counted.
            let retries = if field(&v["status"], "actor") == Some(self.actor.as_str()) {
                attempt - 1
            } else {
                0
            };
            if let Ok(mut s) = self.started.lock() {
                s.insert(
                    id.to_string(),
                    Started {
                        at: Instant::now(),
                        retries,
                        redelivered: d.redelivered,
                        out: Vec::new(),
                    },
                );
            }
        }
        Ok(d)
    }

    async fn publish(
        &self,
        actor: &str,
        body: Bytes,
        delay: Duration,
    ) -> Result<(), TransportError> {
        if self.role == Role::Regular
            && let Ok(v) = serde_json::from_slice::<Value>(&body)
            && let Ok(mut s) = self.started.lock()
        {
            let key = [field(&v, "id"), field(&v, "parent_id")]
                .into_iter()
                .flatten()
                .find(|k| s.contains_key(*k))
                .map(str::to_string);
            if let Some(st) = key.and_then(|k| s.get_mut(&k)) {
                let phase = field(&v["status"], "phase").unwrap_or("").to_string();
                st.out.push((actor.to_string(), phase));
            }
        }
        self.emit(Event::Published);
        let r = self.inner.publish(actor, body, delay).await;
        if r.is_err() {
            self.emit(Event::PublishFailed);
        }
        r
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), TransportError> {
        self.inner.ack(delivery).await?;
        let v: Value = serde_json::from_slice(&delivery.body).unwrap_or(Value::Null);
        match self.role {
            Role::Regular => {
                let id = field(&v, "id").unwrap_or("-").to_string();
                let st = self.started.lock().ok().and_then(|mut s| s.remove(&id));
                if let Some(st) = st {
                    self.emit(Event::Hop(Hop {
                        actor: self.actor.clone(),
                        id,
                        took: st.at.elapsed(),
                        retries: st.retries,
                        redelivered: st.redelivered,
                        out: st.out,
                    }));
                }
            }
            Role::Sink => self.emit(Event::Final(v)),
            Role::Sump => self.emit(Event::Sump(v)),
        }
        self.emit(Event::Acked);
        Ok(())
    }

    async fn requeue(&self, delivery: &Delivery) -> Result<(), TransportError> {
        if let Ok(v) = serde_json::from_slice::<Value>(&delivery.body) {
            let id = field(&v, "id").unwrap_or("-").to_string();
            if let Ok(mut s) = self.started.lock() {
                s.remove(&id);
            }
            self.emit(Event::Requeued {
                actor: self.actor.clone(),
                id,
            });
        }
        self.inner.requeue(delivery).await
    }

    async fn extend(&self, delivery: &Delivery, by: Duration) -> Result<(), TransportError> {
        self.inner.extend(delivery, by).await
    }

    fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    async fn close(&self) {
        self.inner.close().await
    }
}
