//! The sidecar's main loop: N slots, each receive → decide → hand the
//! results to a settle task → next message. The settle task publishes every
//! result, waits for all their broker confirms and only then acks the
//! delivery (requeues it if a publish failed), so a slot never waits for
//! confirms and nothing is acked before its results are stored. Graceful
//! shutdown on SIGTERM drains the settle tasks too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asya_transport::{Delivery, Transport};
use futures::future::join_all;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, Role, TransportKind};
use crate::end_roles::EndRole;
use crate::error::SidecarError;
use crate::metrics::Metrics;
use crate::progress::Reporter;
use crate::router::{Handled, Outgoing, Router, Slot};
use crate::runtime_client::RuntimeClient;
use crate::shutdown::Shutdown;

/// How long shutdown waits for queued gateway reports (x-sink's last final reports).
const REPORT_DRAIN: Duration = Duration::from_secs(2);

/// Pause before handing back a message that could not be decided, so a
/// missing dependency (store down, runtime away) does not spin.
const REQUEUE_PAUSE: Duration = Duration::from_millis(500);

/// What processes a message: the router or an end role.
#[derive(Clone)]
pub enum Handler {
    Regular(Router),
    End(EndRole),
}

impl Handler {
    fn reporter(&self) -> &Reporter {
        match self {
            Handler::Regular(r) => &r.reporter,
            Handler::End(e) => &e.reporter,
        }
    }
}

/// Everything a slot needs.
pub struct Worker<T: Transport> {
    pub cfg: Arc<Config>,
    pub transport: Arc<T>,
    pub handler: Handler,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
}

/// The delivery a slot is deciding now (requeued if the grace period ends).
type Current = Arc<Mutex<Option<Delivery>>>;

impl<T: Transport> Worker<T> {
    /// Runs the slots until shutdown; then waits up to the grace period for
    /// in-flight messages and pending confirms, requeues what did not
    /// finish, and closes the transport.
    pub async fn run(self) -> Result<(), SidecarError> {
        let this = Arc::new(self);
        let depth = this.cfg.pipeline_depth();
        let settling = Arc::new(Semaphore::new(depth));
        let mut tasks = Vec::new();
        let mut in_flight = Vec::new();
        for n in 0..this.cfg.concurrency {
            let current: Current = Arc::new(Mutex::new(None));
            in_flight.push(current.clone());
            let w = this.clone();
            let settling = settling.clone();
            tasks.push(tokio::spawn(
                async move { w.slot(n, current, settling).await },
            ));
        }
        this.shutdown.wait().await;
        tracing::info!(grace = ?this.cfg.shutdown_grace, "shutting down: no new messages; finishing in-flight ones and their confirms");
        let drained = async {
            join_all(tasks.iter_mut()).await;
            // Every settle task holds a permit: all back means all settled.
            let _ = settling.acquire_many(depth as u32).await;
        };
        let finished = tokio::time::timeout(this.cfg.shutdown_grace, drained).await;
        if finished.is_err() {
            tracing::warn!("grace period over; requeueing unfinished messages");
            for t in &tasks {
                t.abort();
            }
            for current in &in_flight {
                let taken = current.lock().ok().and_then(|mut c| c.take());
                if let Some(d) = taken
                    && let Err(e) = this.transport.requeue(&d).await
                {
                    tracing::warn!(error = %e, "requeue at shutdown failed; the broker will redeliver");
                }
            }
        }
        this.handler.reporter().drain(REPORT_DRAIN).await;
        this.transport.close().await;
        tracing::info!("stopped");
        Ok(())
    }

    async fn slot(self: Arc<Self>, n: usize, current: Current, settling: Arc<Semaphore>) {
        let mut slot = Slot::default();
        loop {
            let delivery = tokio::select! {
                biased;
                _ = self.shutdown.wait() => return,
                d = self.transport.receive() => d,
            };
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(slot = n, error = %e, "receive failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let started = Instant::now();
            self.metrics.received();
            self.metrics.active_inc();
            set(&current, Some(delivery.clone()));
            let handled = self.decide(&mut slot, &delivery).await;
            match handled {
                Handled::Forward { out, status } => {
                    // Waits only when `pipeline_depth` deliveries await confirms.
                    let permit = settling.clone().acquire_owned().await;
                    set(&current, None);
                    let Ok(permit) = permit else {
                        return;
                    };
                    let w = self.clone();
                    tokio::spawn(async move {
                        w.settle(delivery, out, status, started, permit).await;
                    });
                }
                Handled::Requeue(why) => {
                    tracing::warn!(reason = %why, "requeueing");
                    tokio::time::sleep(REQUEUE_PAUSE).await;
                    self.requeue(&delivery).await;
                    set(&current, None);
                    self.metrics.processed("requeued");
                    self.finish(started);
                }
            }
        }
    }

    /// Runs the router or end role on one delivery.
    async fn decide(&self, slot: &mut Slot, delivery: &Delivery) -> Handled {
        let work = async {
            match &self.handler {
                Handler::Regular(r) => r.handle(slot, &delivery.body).await,
                Handler::End(e) => e.handle(&delivery.body).await,
            }
        };
        if self.cfg.transport != TransportKind::Sqs {
            return work.await;
        }
        tokio::pin!(work);
        // Keep the message invisible to other consumers while a long handler
        // runs (SQS visibility timeout).
        let lease = self.cfg.visibility_timeout;
        let period = (lease / 3).max(Duration::from_millis(500));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                h = &mut work => return h,
                _ = heartbeat.tick() => {
                    if let Err(e) = self.transport.extend(delivery, lease).await {
                        tracing::warn!(error = %e, "extending the message's visibility failed");
                    }
                }
            }
        }
    }

    /// Publishes every result (confirms awaited concurrently), then acks the
    /// delivery; on any publish failure requeues it instead.
    async fn settle(
        &self,
        delivery: Delivery,
        mut out: Vec<Outgoing>,
        status: &'static str,
        started: Instant,
        _permit: OwnedSemaphorePermit,
    ) {
        // Most messages have one result: publish it without join_all's boxing and moves.
        let ok = if out.len() == 1
            && let Some(o) = out.pop()
        {
            self.publish(o).await
        } else {
            let sends = out.into_iter().map(|o| self.publish(o));
            join_all(sends).await.into_iter().all(|ok| ok)
        };
        if ok {
            match self.transport.ack(&delivery).await {
                Ok(()) => self.metrics.processed(status),
                Err(e) => {
                    tracing::warn!(error = %e, "ack failed; the broker will redeliver")
                }
            }
        } else {
            self.metrics.failed("routing_error");
            self.requeue(&delivery).await;
        }
        self.finish(started);
    }

    /// Publishes one result and counts it; false when it could not be stored.
    async fn publish(&self, o: Outgoing) -> bool {
        let r = self
            .transport
            .publish(&o.actor, bytes::Bytes::from(o.body), o.delay)
            .await;
        match r {
            Ok(()) => {
                self.metrics
                    .sent_to(&o.actor, o.message_type, || self.cfg.queue_of(&o.actor));
                true
            }
            Err(e) => {
                tracing::error!(to = %o.actor, error = %e, "publish failed; the message will be requeued");
                false
            }
        }
    }

    fn finish(&self, started: Instant) {
        self.metrics.active_dec();
        self.metrics
            .observe_duration(started.elapsed().as_secs_f64());
    }

    async fn requeue(&self, delivery: &Delivery) {
        if let Err(e) = self.transport.requeue(delivery).await {
            tracing::warn!(error = %e, "requeue failed; the broker will redeliver");
        }
    }
}

fn set(current: &Current, value: Option<Delivery>) {
    if let Ok(mut c) = current.lock() {
        *c = value;
    }
}

/// Builds the handler for the configured role; for a regular actor waits
/// until the runtime answers a ping.
pub async fn build_handler(
    cfg: &Arc<Config>,
    metrics: &Metrics,
    shutdown: &Shutdown,
    runtime: &RuntimeClient,
) -> Result<Handler, SidecarError> {
    match cfg.role {
        Role::Regular => {
            let mut conn = runtime.connect(cfg.runtime_ready_timeout).await?;
            if let Err(e) = conn.ping().await {
                tracing::warn!(error = %e, "first ping to the runtime failed; continuing (slots reconnect)");
            }
            tracing::info!("runtime ready");
            Ok(Handler::Regular(Router {
                cfg: cfg.clone(),
                runtime: runtime.clone(),
                metrics: metrics.clone(),
                shutdown: shutdown.clone(),
                reporter: Reporter::start(cfg.gateway_url.as_deref(), metrics),
            }))
        }
        Role::Sink | Role::Sump => {
            let store = asya_storage::EnvelopeStore::from_env().await?;
            if store.is_none() {
                tracing::warn!("ASYA_S3_BUCKET is unset: final envelopes are logged, not stored");
            }
            Ok(Handler::End(EndRole {
                cfg: cfg.clone(),
                store,
                metrics: metrics.clone(),
                reporter: Reporter::start(cfg.gateway_url.as_deref(), metrics),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pipeline against a scripted transport whose publish confirms are
    //! released by the test: ordering only, no broker.
    use std::collections::HashMap;

    use asya_transport::{DeliveryHandle, TransportError};
    use tokio::sync::mpsc;

    use super::*;
    use crate::config::Config;

    struct Scripted {
        inbox: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
        events: Mutex<Vec<String>>,
        /// One gate per envelope id: its publish confirms once released.
        gates: Mutex<HashMap<String, Arc<Semaphore>>>,
    }

    impl Scripted {
        fn log(&self, e: String) {
            self.events.lock().unwrap().push(e);
        }
        fn gate(&self, id: &str) -> Arc<Semaphore> {
            self.gates
                .lock()
                .unwrap()
                .entry(id.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(0)))
                .clone()
        }
        fn events(&self) -> Vec<String> {
            self.events.lock().unwrap().clone()
        }
    }

    impl Transport for Scripted {
        async fn receive(&self) -> Result<Delivery, TransportError> {
            match self.inbox.lock().await.recv().await {
                Some(d) => Ok(d),
                None => std::future::pending().await,
            }
        }
        async fn publish(
            &self,
            _actor: &str,
            body: bytes::Bytes,
            _delay: Duration,
        ) -> Result<(), TransportError> {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let id = v["id"].as_str().unwrap().to_string();
            self.log(format!("publish {id}"));
            let _ = self.gate(&id).acquire().await.unwrap();
            self.log(format!("confirmed {id}"));
            Ok(())
        }
        async fn ack(&self, d: &Delivery) -> Result<(), TransportError> {
            let DeliveryHandle::Sqs(h) = &d.handle else {
                unreachable!()
            };
            self.log(format!("ack {h}"));
            Ok(())
        }
        async fn requeue(&self, d: &Delivery) -> Result<(), TransportError> {
            let DeliveryHandle::Sqs(h) = &d.handle else {
                unreachable!()
            };
            self.log(format!("requeue {h}"));
            Ok(())
        }
        async fn extend(&self, _d: &Delivery, _by: Duration) -> Result<(), TransportError> {
            Ok(())
        }
        async fn close(&self) {
            self.log("close".into());
        }
    }

    /// A failed envelope: x-sink forwards it to x-sump (one publish).
    fn failed(id: &str) -> Delivery {
        let body = serde_json::json!({
            "id": id, "route": {"prev": [], "curr": "", "next": []},
            "payload": 1, "status": {"phase": "failed"},
        });
        Delivery {
            body: serde_json::to_vec(&body).unwrap().into(),
            handle: DeliveryHandle::Sqs(id.to_string()),
            redelivered: false,
        }
    }

    async fn wait_for(t: &Scripted, event: &str) {
        let start = Instant::now();
        while !t.events().iter().any(|e| e == event) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no {event:?} in {:?}",
                t.events()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_slot_moves_on_while_confirms_are_pending_and_acks_follow_each_confirm() {
        let env: HashMap<String, String> = [
            ("ASYA_ACTOR_NAME", "x-sink"),
            ("ASYA_NAMESPACE", "ns"),
            ("ASYA_ACTOR_ROLE", "sink"),
            ("ASYA_TRANSPORT", "rabbitmq"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cfg = Arc::new(Config::from_map(&env).unwrap());
        assert_eq!(cfg.concurrency, 1);
        let (tx, rx) = mpsc::channel(8);
        let transport = Arc::new(Scripted {
            inbox: tokio::sync::Mutex::new(rx),
            events: Mutex::new(Vec::new()),
            gates: Mutex::new(HashMap::new()),
        });
        let metrics = Metrics::new("q", "rabbitmq");
        let shutdown = Shutdown::default();
        let worker = Worker {
            cfg: cfg.clone(),
            transport: transport.clone(),
            handler: Handler::End(EndRole {
                cfg,
                store: None,
                metrics: metrics.clone(),
                reporter: Reporter::disabled(),
            }),
            metrics,
            shutdown: shutdown.clone(),
        };
        tx.send(failed("d1")).await.unwrap();
        tx.send(failed("d2")).await.unwrap();
        let running = tokio::spawn(worker.run());
        // One slot, yet the second delivery is published before the first
        // delivery's confirm: the slot did not wait for it.
        wait_for(&transport, "publish d1").await;
        wait_for(&transport, "publish d2").await;
        assert!(!transport.events().iter().any(|e| e.starts_with("ack")));
        // Confirms come back in any order; each delivery is acked after its own.
        transport.gate("d2").add_permits(1);
        wait_for(&transport, "ack d2").await;
        assert!(!transport.events().contains(&"ack d1".to_string()));
        // SIGTERM with a confirm still pending: it is awaited, then acked,
        // and only then is the transport closed.
        shutdown.trigger();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!transport.events().contains(&"close".to_string()));
        transport.gate("d1").add_permits(1);
        running.await.unwrap().unwrap();
        let events = transport.events();
        let pos = |e: &str| events.iter().position(|x| x == e).unwrap();
        assert!(pos("confirmed d1") < pos("ack d1"), "{events:?}");
        assert!(pos("ack d1") < pos("close"), "{events:?}");
    }
}
