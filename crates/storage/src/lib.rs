//! S3-compatible persistence of final envelopes for Asya's end actors.
//!
//! `x-sink` stores every envelope that finished its route (`succeeded/` or
//! `failed/`), `x-sump` every envelope that fell out of the normal flow
//! (`sump/`). Objects live at `{prefix}{kind}/{id}.json` in one bucket; the id is
//! escaped so that a hostile id can neither leave its folder nor overwrite
//! another id's object (see [`sanitize_id`]). Any S3-compatible server works:
//! with an endpoint override (moto, MinIO) the client uses path-style
//! addressing and only sends checksums the server requires. The layout is
//! documented in `docs/storage.md`.

mod error;
mod key;
mod local;

use asya_contract::env as names;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

pub use error::StorageError;
pub use key::sanitize_id;

/// Kind of the envelopes x-sink stores after a successful route.
pub const KIND_SUCCEEDED: &str = "succeeded";
/// Kind of the envelopes x-sink stores after a failed route.
pub const KIND_FAILED: &str = "failed";
/// Kind of the envelopes x-sump stores.
pub const KIND_SUMP: &str = "sump";

/// Where envelopes are persisted: one bucket and a key prefix (or, for
/// `asya dev`, a local directory laid out the same way).
#[derive(Debug, Clone)]
pub struct EnvelopeStore {
    backend: Backend,
    prefix: String,
}

#[derive(Debug, Clone)]
enum Backend {
    S3 {
        client: Client,
        bucket: String,
        region: String,
    },
    /// Objects are files: `{dir}/{key}`.
    Dir(std::path::PathBuf),
}

impl EnvelopeStore {
    /// Builds the store from `ASYA_S3_BUCKET`, `ASYA_S3_PREFIX`,
    /// `ASYA_S3_ENDPOINT` and `ASYA_AWS_REGION` (default `us-east-1`).
    /// Returns `None` when `ASYA_S3_BUCKET` is unset or empty: persistence is
    /// optional. Credentials come from the usual AWS chain (env, web identity, ...).
    pub async fn from_env() -> Result<Option<Self>, StorageError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(bucket) = var(names::S3_BUCKET) else {
            return Ok(None);
        };
        let prefix = var(names::S3_PREFIX).unwrap_or_default();
        let endpoint = var(names::S3_ENDPOINT);
        let region = var(names::AWS_REGION).unwrap_or_else(|| names::defaults::AWS_REGION.into());
        Self::new(&bucket, &prefix, endpoint.as_deref(), &region)
            .await
            .map(Some)
    }

    /// Builds a store for `bucket`, writing under `prefix` (a trailing `/` is
    /// added when missing). `endpoint` overrides the S3 endpoint for
    /// S3-compatible servers and switches to path-style addressing.
    pub async fn new(
        bucket: &str,
        prefix: &str,
        endpoint: Option<&str>,
        region: &str,
    ) -> Result<Self, StorageError> {
        let bucket = bucket.trim();
        if bucket.is_empty() {
            return Err(StorageError::Config("bucket name is empty".into()));
        }
        if region.trim().is_empty() {
            return Err(StorageError::Config("region is empty".into()));
        }
        let prefix = key::normalize_prefix(prefix)?;
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .load()
            .await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared);
        if let Some(endpoint) = endpoint.filter(|e| !e.trim().is_empty()) {
            // Emulators and MinIO do not resolve virtual-hosted bucket names,
            // and some reject the SDK's default CRC checksums.
            config = config
                .endpoint_url(endpoint)
                .force_path_style(true)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        Ok(Self {
            backend: Backend::S3 {
                client: Client::from_conf(config.build()),
                bucket: bucket.to_string(),
                region: region.to_string(),
            },
            prefix,
        })
    }

    /// A store writing `{dir}/{prefix}{kind}/{id}.json` files: the same keys
    /// as in a bucket, on the local disk (`asya dev` writes results under
    /// `.asya/results/`).
    pub fn local(dir: impl Into<std::path::PathBuf>, prefix: &str) -> Result<Self, StorageError> {
        Ok(Self {
            backend: Backend::Dir(dir.into()),
            prefix: key::normalize_prefix(prefix)?,
        })
    }

    /// The bucket written to (for a local store, its directory).
    pub fn bucket(&self) -> &str {
        match &self.backend {
            Backend::S3 { bucket, .. } => bucket,
            Backend::Dir(dir) => dir.to_str().unwrap_or(""),
        }
    }

    /// The normalised key prefix (empty, or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key `put` would write for envelope `id` of `kind`.
    pub fn key_for(&self, kind: &str, id: &str) -> Result<String, StorageError> {
        key::object_key(&self.prefix, kind, id)
    }

    /// Writes `body` to `{prefix}{kind}/{id}.json` (`kind` is `succeeded`,
    /// `failed` or `sump`) and returns the key. Overwrites an existing object
    /// of the same id: a redelivered envelope is stored once.
    pub async fn put(&self, kind: &str, id: &str, body: &[u8]) -> Result<String, StorageError> {
        let key = self.key_for(kind, id)?;
        let (client, bucket) = match &self.backend {
            Backend::S3 { client, bucket, .. } => (client, bucket),
            Backend::Dir(dir) => {
                local::put(dir, &key, body)?;
                return Ok(key);
            }
        };
        client
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .map_err(|err| StorageError::Put {
                bucket: bucket.clone(),
                key: key.clone(),
                reason: DisplayErrorContext(&err).to_string(),
            })?;
        tracing::debug!(bucket = %bucket, key = %key, bytes = body.len(), "envelope stored");
        Ok(key)
    }

    /// Reads the object at the full `key` (as returned by [`put`](Self::put)
    /// or [`list`](Self::list)); `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let (client, bucket) = match &self.backend {
            Backend::S3 { client, bucket, .. } => (client, bucket),
            Backend::Dir(dir) => return local::get(dir, key),
        };
        let get_err = |reason: String| StorageError::Get {
            bucket: bucket.clone(),
            key: key.to_string(),
            reason,
        };
        let output = match client.get_object().bucket(bucket).key(key).send().await {
            Ok(output) => output,
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key())
                {
                    return Ok(None);
                }
                return Err(get_err(DisplayErrorContext(&err).to_string()));
            }
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|err| get_err(err.to_string()))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    /// Lists every key under `{prefix}{sub_prefix}` (following pagination),
    /// sorted. `sub_prefix` is relative to the store's prefix, e.g.
    /// `"succeeded/"`; the returned keys are full keys, ready for [`get`](Self::get).
    pub async fn list(&self, sub_prefix: &str) -> Result<Vec<String>, StorageError> {
        let full = format!("{}{}", self.prefix, sub_prefix);
        let (client, bucket) = match &self.backend {
            Backend::S3 { client, bucket, .. } => (client, bucket),
            Backend::Dir(dir) => return local::list(dir, &full),
        };
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| StorageError::List {
                bucket: bucket.clone(),
                prefix: full.clone(),
                reason: DisplayErrorContext(&err).to_string(),
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    /// Creates the bucket if it does not exist (tests, local setups).
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        let (client, bucket, region) = match &self.backend {
            Backend::S3 {
                client,
                bucket,
                region,
            } => (client, bucket, region),
            Backend::Dir(dir) => {
                return std::fs::create_dir_all(dir).map_err(|e| StorageError::Bucket {
                    bucket: dir.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        if self.bucket_exists().await {
            return Ok(());
        }
        let mut request = client.create_bucket().bucket(bucket);
        // us-east-1 is the one region that rejects an explicit location.
        if region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            // Another process may have created it meanwhile (parallel tests):
            // what matters is that it exists now and is ours to use.
            Err(err) => {
                if self.bucket_exists().await {
                    Ok(())
                } else {
                    Err(StorageError::Bucket {
                        bucket: bucket.clone(),
                        reason: DisplayErrorContext(&err).to_string(),
                    })
                }
            }
        }
    }

    async fn bucket_exists(&self) -> bool {
        match &self.backend {
            Backend::S3 { client, bucket, .. } => {
                client.head_bucket().bucket(bucket).send().await.is_ok()
            }
            Backend::Dir(dir) => dir.is_dir(),
        }
    }
}
