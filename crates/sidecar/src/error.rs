//! Errors of the sidecar, by the layer that failed.

use asya_transport::TransportError;

/// What stopped the sidecar (or one message) from going on.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// An environment variable is missing or malformed.
    #[error("configuration: {var} {reason}")]
    Config { var: String, reason: String },
    /// The broker failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Persisting an envelope to S3-compatible storage failed.
    #[error("storage: {0}")]
    Storage(#[from] asya_storage::StorageError),
    /// The runtime did not become ready in time.
    #[error("runtime not ready after {0:?} (no {1})")]
    RuntimeNotReady(std::time::Duration, String),
    /// The metrics/health server could not start.
    #[error("metrics server on {addr}: {reason}")]
    Metrics { addr: String, reason: String },
    /// Writing the embedded runtime failed.
    #[error("install-runtime: {0}")]
    Install(String),
}
