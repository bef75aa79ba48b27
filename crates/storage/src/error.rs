//! Errors of the storage layer.

/// What went wrong persisting or reading an envelope.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store was configured wrongly (empty bucket name, bad prefix, ...).
    #[error("invalid storage configuration: {0}")]
    Config(String),
    /// A kind or id cannot be turned into a safe object key.
    #[error("invalid object key: {0}")]
    InvalidKey(String),
    /// Writing an object failed.
    #[error("writing s3://{bucket}/{key} failed: {reason}")]
    Put {
        bucket: String,
        key: String,
        reason: String,
    },
    /// Reading an object failed (a missing object is not an error).
    #[error("reading s3://{bucket}/{key} failed: {reason}")]
    Get {
        bucket: String,
        key: String,
        reason: String,
    },
    /// Listing objects failed.
    #[error("listing s3://{bucket}/{prefix} failed: {reason}")]
    List {
        bucket: String,
        prefix: String,
        reason: String,
    },
    /// Checking or creating the bucket failed.
    #[error("creating bucket {bucket} failed: {reason}")]
    Bucket { bucket: String, reason: String },
}
