//! The controller's one error type; each variant names the layer that failed.

use asya_transport::TransportError;

/// Everything a reconcile (or the controller's start-up) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The render rejected the actor (validation, flavor conflict or missing flavor).
    #[error("render: {0}")]
    RenderInvalid(String),
    /// Server-side apply of one rendered object failed.
    #[error("apply {} {} ({}): {source}", key.kind, key.name, key.api_version)]
    Apply {
        key: Box<crate::apply::ObjectKey>,
        #[source]
        source: kube::Error,
    },
    /// Listing or deleting objects the render dropped failed.
    #[error("prune {kind}: {source}")]
    Prune {
        kind: String,
        #[source]
        source: kube::Error,
    },
    /// Reading a child (workload, ScaledObject, HPA, pods) for status failed.
    #[error("read {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The render produced an object we cannot apply (no apiVersion, kind or name).
    #[error("rendered object is malformed: {0}")]
    MalformedObject(String),
    /// The queue driver (RabbitMQ or SQS) failed.
    #[error("queue driver for transport {transport}: {source}")]
    Queue {
        transport: String,
        #[source]
        source: TransportError,
    },
    /// The queue could not be ensured this pass (already reported in status);
    /// returned so the actor is retried with backoff instead of at the next resync.
    #[error("queue {queue} on {transport} not ready: {message}")]
    QueueNotReady {
        queue: String,
        transport: String,
        message: String,
    },
    /// The actor names a transport the platform configures no driver for.
    #[error("no queue driver for transport {0:?} (platform config lists no such transport)")]
    NoQueueDriver(String),
    /// The platform configuration file could not be read or parsed.
    #[error("platform config {path}: {message}")]
    Platform { path: String, message: String },
    /// The status built does not fit the typed status (a bug in status.rs).
    #[error("status does not fit AsyncActorStatus: {0}")]
    Status(#[from] serde_json::Error),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The metrics/health HTTP server failed.
    #[error("metrics server: {0}")]
    Serve(#[from] std::io::Error),
}

impl Error {
    /// A short, stable label for the `errors` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::RenderInvalid(_) => "render_invalid",
            Error::Apply { .. } => "apply",
            Error::Prune { .. } => "prune",
            Error::Read { .. } => "read",
            Error::MalformedObject(_) => "malformed_object",
            Error::Queue { .. } => "queue",
            Error::QueueNotReady { .. } => "queue_not_ready",
            Error::NoQueueDriver(_) => "no_queue_driver",
            Error::Platform { .. } => "platform",
            Error::Finalizer(_) => "finalizer",
            Error::Status(_) => "status",
            Error::Serve(_) => "serve",
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
