//! Errors of the transport layer.

/// What went wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The connection or channel to the broker failed; retrying after a
    /// reconnect may succeed.
    #[error("broker connection failed: {0}")]
    Connection(String),
    /// The broker refused or did not confirm a publish.
    #[error("publish to {queue} not confirmed: {reason}")]
    Publish { queue: String, reason: String },
    /// Settling (ack/requeue/extend) a delivery failed.
    #[error("settling a delivery failed: {0}")]
    Settle(String),
    /// Creating, measuring or deleting a queue failed.
    #[error("queue admin on {queue} failed: {reason}")]
    Admin { queue: String, reason: String },
    /// The transport was configured wrongly (bad URL, missing region, ...).
    #[error("invalid transport configuration: {0}")]
    Config(String),
}
