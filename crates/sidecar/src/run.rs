//! The sidecar's main loop: N slots, each receive → decide → publish all
//! (confirmed) → ack; graceful shutdown on SIGTERM.

use std::sync::Arc;
use std::time::{Duration, Instant};

use asya_transport::{Delivery, Transport};
use futures::future::join_all;
use tokio::sync::Mutex;

use crate::config::{Config, Role, TransportKind};
use crate::end_roles::EndRole;
use crate::error::SidecarError;
use crate::metrics::Metrics;
use crate::router::{Handled, Router, Slot};
use crate::runtime_client::RuntimeClient;
use crate::shutdown::Shutdown;

/// Pause before handing back a message that could not be decided, so a
/// missing dependency (store down, runtime away) does not spin.
const REQUEUE_PAUSE: Duration = Duration::from_millis(500);

/// What processes a message: the router or an end role.
#[derive(Clone)]
pub enum Handler {
    Regular(Router),
    End(EndRole),
}

/// Everything a slot needs.
pub struct Worker<T: Transport> {
    pub cfg: Arc<Config>,
    pub transport: Arc<T>,
    pub handler: Handler,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
}

impl<T: Transport> Worker<T> {
    /// Runs the slots until shutdown; then waits up to the grace period for
    /// in-flight messages, requeues what did not finish, and closes the
    /// transport.
    pub async fn run(self) -> Result<(), SidecarError> {
        let this = Arc::new(self);
        let mut tasks = Vec::new();
        let mut in_flight = Vec::new();
        for n in 0..this.cfg.concurrency {
            let current: Arc<Mutex<Option<Delivery>>> = Arc::new(Mutex::new(None));
            in_flight.push(current.clone());
            let w = this.clone();
            tasks.push(tokio::spawn(async move { w.slot(n, current).await }));
        }
        this.shutdown.wait().await;
        tracing::info!(grace = ?this.cfg.shutdown_grace, "shutting down: no new messages; finishing in-flight ones");
        let mut all = join_all(tasks.iter_mut());
        let finished = tokio::time::timeout(this.cfg.shutdown_grace, &mut all).await;
        drop(all);
        if finished.is_err() {
            tracing::warn!("grace period over; requeueing unfinished messages");
            for t in &tasks {
                t.abort();
            }
            for current in &in_flight {
                if let Some(d) = current.lock().await.take()
                    && let Err(e) = this.transport.requeue(&d).await
                {
                    tracing::warn!(error = %e, "requeue at shutdown failed; the broker will redeliver");
                }
            }
        }
        this.transport.close().await;
        tracing::info!("stopped");
        Ok(())
    }

    async fn slot(&self, n: usize, current: Arc<Mutex<Option<Delivery>>>) {
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
            *current.lock().await = Some(delivery.clone());
            self.process(&mut slot, &delivery).await;
            *current.lock().await = None;
        }
    }

    async fn process(&self, slot: &mut Slot, delivery: &Delivery) {
        let started = Instant::now();
        self.metrics.received();
        self.metrics.active_inc();
        let work = async {
            match &self.handler {
                Handler::Regular(r) => r.handle(slot, &delivery.body).await,
                Handler::End(e) => e.handle(&delivery.body).await,
            }
        };
        tokio::pin!(work);
        // Keep the message invisible to other consumers while a long handler
        // runs (SQS visibility timeout; a no-op on RabbitMQ).
        let lease = self.cfg.visibility_timeout;
        let period = (lease / 3).max(Duration::from_millis(500));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let handled = loop {
            tokio::select! {
                h = &mut work => break h,
                _ = heartbeat.tick(), if self.cfg.transport == TransportKind::Sqs => {
                    if let Err(e) = self.transport.extend(delivery, lease).await {
                        tracing::warn!(error = %e, "extending the message's visibility failed");
                    }
                }
            }
        };
        match handled {
            Handled::Forward { out, status } => {
                let sends = out.iter().map(|o| async move {
                    let r = self
                        .transport
                        .publish(&o.actor, bytes::Bytes::from(o.body.clone()), o.delay)
                        .await;
                    (o, r)
                });
                let mut ok = true;
                for (o, r) in join_all(sends).await {
                    match r {
                        Ok(()) => self.metrics.sent(
                            &asya_transport::naming::queue_name(&self.cfg.namespace, &o.actor),
                            o.message_type,
                        ),
                        Err(e) => {
                            ok = false;
                            tracing::error!(to = %o.actor, error = %e, "publish failed; the message will be requeued");
                        }
                    }
                }
                if ok {
                    match self.transport.ack(delivery).await {
                        Ok(()) => self.metrics.processed(status),
                        Err(e) => {
                            tracing::warn!(error = %e, "ack failed; the broker will redeliver")
                        }
                    }
                } else {
                    self.metrics.failed("routing_error");
                    self.requeue(delivery).await;
                }
            }
            Handled::Requeue(why) => {
                tracing::warn!(reason = %why, "requeueing");
                tokio::time::sleep(REQUEUE_PAUSE).await;
                self.requeue(delivery).await;
                self.metrics.processed("requeued");
            }
        }
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
            }))
        }
    }
}
