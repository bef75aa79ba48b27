//! Prometheus metrics of the controller and the API requests it issues.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
}

/// The controller's metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub status_writes: Counter,
    pub api_requests: Family<RequestLabels, Counter>,
    /// Plain totals for tests and the benchmark (no registry round trip).
    pub requests_total: Arc<AtomicU64>,
    pub writes_total: Arc<AtomicU64>,
    pub registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let status_writes = Counter::default();
        let api_requests = Family::<RequestLabels, Counter>::default();
        let mut registry = Registry::with_prefix("asya_controller");
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by error kind",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            duration.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches sent",
            status_writes.clone(),
        );
        registry.register(
            "api_requests",
            "Kubernetes API requests, by HTTP verb",
            api_requests.clone(),
        );
        Metrics {
            reconciles,
            errors,
            duration,
            status_writes,
            api_requests,
            requests_total: Arc::default(),
            writes_total: Arc::default(),
            registry: Arc::new(registry),
        }
    }
}

impl Metrics {
    pub fn observe_reconcile(&self, took: Duration) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn observe_error(&self, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts one API request (called by [`crate::client::CountingLayer`]).
    pub fn observe_request(&self, method: &str) {
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        if method != "GET" {
            self.writes_total.fetch_add(1, Ordering::Relaxed);
        }
        self.api_requests
            .get_or_create(&RequestLabels {
                verb: method.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
