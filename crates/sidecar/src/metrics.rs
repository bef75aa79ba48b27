//! Prometheus metrics (`asya_actor_*`, seed 001 and upstream §6.8) and the
//! `/metrics`, `/healthz`, `/readyz` endpoints.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceivedLabels {
    pub queue: String,
    pub transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub queue: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub queue: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorTypeLabels {
    pub queue: String,
    pub error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub queue: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SentLabels {
    pub destination_queue: String,
    pub message_type: String,
}

type HistogramFamily = Family<QueueLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ])
}

/// Counters already resolved for a `'static` label value, so the hot path
/// neither allocates label strings nor hashes them into the family.
#[derive(Clone, Default)]
struct Resolved(Arc<std::sync::Mutex<std::collections::HashMap<&'static str, Counter>>>);

impl Resolved {
    fn inc(&self, key: &'static str, resolve: impl FnOnce() -> Counter) {
        let Ok(mut map) = self.0.lock() else {
            return;
        };
        map.entry(key).or_insert_with(resolve).inc();
    }
}

/// All sidecar metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    queue: String,
    registry: Arc<Registry>,
    processed: Family<StatusLabels, Counter>,
    failed: Family<ReasonLabels, Counter>,
    runtime_errors: Family<ErrorTypeLabels, Counter>,
    sent: Family<SentLabels, Counter>,
    invocations: Family<OutcomeLabels, Counter>,
    active: Gauge<i64, std::sync::atomic::AtomicI64>,
    received_here: Counter,
    duration_here: Histogram,
    processed_by: Resolved,
    failed_by: Resolved,
    invocations_by: Resolved,
    reports_dropped: Family<ReasonLabels, Counter>,
    reports_dropped_by: Resolved,
    sent_by: SentBy,
}

/// `messages_sent_total` counters resolved per message type and destination actor:
/// a hit costs no queue name, no label strings and no family lookup.
type SentBy = Arc<
    std::sync::Mutex<
        std::collections::HashMap<&'static str, std::collections::HashMap<String, Counter>>,
    >,
>;

impl Metrics {
    pub fn new(queue: &str, transport: &str) -> Self {
        let mut registry = Registry::with_prefix("asya_actor");
        let received = Family::<ReceivedLabels, Counter>::default();
        let processed = Family::<StatusLabels, Counter>::default();
        let failed = Family::<ReasonLabels, Counter>::default();
        let runtime_errors = Family::<ErrorTypeLabels, Counter>::default();
        let sent = Family::<SentLabels, Counter>::default();
        let invocations = Family::<OutcomeLabels, Counter>::default();
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let active = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        let reports_dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "messages_received",
            "Messages received from the actor's queue",
            received.clone(),
        );
        registry.register(
            "messages_processed",
            "Messages settled, by outcome",
            processed.clone(),
        );
        registry.register(
            "messages_failed",
            "Messages that failed, by reason",
            failed.clone(),
        );
        registry.register(
            "runtime_errors",
            "Errors reported by or about the runtime, by type",
            runtime_errors.clone(),
        );
        registry.register(
            "messages_sent",
            "Envelopes published, by destination and kind",
            sent.clone(),
        );
        registry.register(
            "handler_invocations",
            "Requests the runtime received, i.e. times the handler ran (or may have, for crashed), by outcome",
            invocations.clone(),
        );
        registry.register(
            "processing_duration_seconds",
            "Time from receive to settle of one message",
            duration.clone(),
        );
        registry.register(
            "active_messages",
            "Messages being processed now",
            active.clone(),
        );
        registry.register(
            "gateway_reports_dropped",
            "Progress and final reports to the gateway that were not delivered, by reason",
            reports_dropped.clone(),
        );
        let received_here = received
            .get_or_create(&ReceivedLabels {
                queue: queue.to_string(),
                transport: transport.to_string(),
            })
            .clone();
        let duration_here = duration
            .get_or_create(&QueueLabels {
                queue: queue.to_string(),
            })
            .clone();
        Self {
            received_here,
            duration_here,
            processed_by: Resolved::default(),
            failed_by: Resolved::default(),
            invocations_by: Resolved::default(),
            reports_dropped,
            reports_dropped_by: Resolved::default(),
            sent_by: SentBy::default(),
            queue: queue.to_string(),
            registry: Arc::new(registry),
            processed,
            failed,
            runtime_errors,
            sent,
            invocations,
            active,
        }
    }

    pub fn received(&self) {
        self.received_here.inc();
    }

    pub fn processed(&self, status: &'static str) {
        self.processed_by.inc(status, || {
            self.processed
                .get_or_create(&StatusLabels {
                    queue: self.queue.clone(),
                    status: status.to_string(),
                })
                .clone()
        });
    }

    pub fn failed(&self, reason: &'static str) {
        self.failed_by.inc(reason, || {
            self.failed
                .get_or_create(&ReasonLabels {
                    queue: self.queue.clone(),
                    reason: reason.to_string(),
                })
                .clone()
        });
    }

    pub fn runtime_error(&self, error_type: &str) {
        self.runtime_errors
            .get_or_create(&ErrorTypeLabels {
                queue: self.queue.clone(),
                error_type: error_type.to_string(),
            })
            .inc();
    }

    /// One message published to `actor`, whose queue `queue_of` names (called only the
    /// first time: the counter is resolved once per destination and message type).
    pub fn sent_to(
        &self,
        actor: &str,
        message_type: &'static str,
        queue_of: impl FnOnce() -> String,
    ) {
        let Ok(mut by) = self.sent_by.lock() else {
            return;
        };
        let of_type = by.entry(message_type).or_default();
        if let Some(c) = of_type.get(actor) {
            c.inc();
            return;
        }
        let c = self
            .sent
            .get_or_create(&SentLabels {
                destination_queue: queue_of(),
                message_type: message_type.to_string(),
            })
            .clone();
        c.inc();
        of_type.insert(actor.to_string(), c);
    }

    /// One request the runtime received: `success`, `error` (the handler
    /// raised), `timeout`, `crashed` (the runtime died during the call).
    pub fn handler_invocation(&self, outcome: &'static str) {
        self.invocations_by.inc(outcome, || {
            self.invocations
                .get_or_create(&OutcomeLabels {
                    queue: self.queue.clone(),
                    outcome: outcome.to_string(),
                })
                .clone()
        });
    }

    /// A report to the gateway that was not delivered: `queue_full`, `retries_exhausted`,
    /// `rejected` (the gateway answered 4xx), `bad_url` (the header failed the URL guard).
    pub fn report_dropped(&self, reason: &'static str) {
        self.reports_dropped_by.inc(reason, || {
            self.reports_dropped
                .get_or_create(&ReasonLabels {
                    queue: self.queue.clone(),
                    reason: reason.to_string(),
                })
                .clone()
        });
    }

    pub fn observe_duration(&self, secs: f64) {
        self.duration_here.observe(secs);
    }

    pub fn active_inc(&self) {
        self.active.inc();
    }

    pub fn active_dec(&self) {
        self.active.dec();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What `/readyz` asks.
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct HttpState {
    metrics: Metrics,
    ready: ReadyFn,
}

/// Serves `/metrics`, `/healthz` (process alive) and `/readyz` on `listener`.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics, ready: ReadyFn) {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready_handler))
        .with_state(HttpState { metrics, ready });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics server stopped");
    }
}

async fn metrics_handler(State(s): State<HttpState>) -> Response {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn ready_handler(State(s): State<HttpState>) -> Response {
    if (s.ready)() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_match_the_documented_ones() {
        let m = Metrics::new("asya-ns-a", "rabbitmq");
        m.received();
        m.processed("success");
        m.failed("route_mismatch");
        m.runtime_error("ValueError");
        m.sent_to("b", "routing", || "asya-ns-b".into());
        m.sent_to("b", "routing", || "asya-ns-b".into());
        m.observe_duration(0.01);
        m.handler_invocation("success");
        m.active_inc();
        m.report_dropped("queue_full");
        let text = m.encode();
        for name in [
            "asya_actor_messages_received_total{queue=\"asya-ns-a\",transport=\"rabbitmq\"} 1",
            "asya_actor_messages_processed_total{queue=\"asya-ns-a\",status=\"success\"} 1",
            "asya_actor_messages_failed_total{queue=\"asya-ns-a\",reason=\"route_mismatch\"} 1",
            "asya_actor_runtime_errors_total{queue=\"asya-ns-a\",error_type=\"ValueError\"} 1",
            "asya_actor_messages_sent_total{destination_queue=\"asya-ns-b\",message_type=\"routing\"} 2",
            "asya_actor_processing_duration_seconds_count{queue=\"asya-ns-a\"} 1",
            "asya_actor_active_messages 1",
            "asya_actor_handler_invocations_total{queue=\"asya-ns-a\",outcome=\"success\"} 1",
            "asya_actor_gateway_reports_dropped_total{queue=\"asya-ns-a\",reason=\"queue_full\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
