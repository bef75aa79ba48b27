//! The controller's side of SQS: queues with a redrive policy, depth, deletion.
//!
//! Every actor queue dead-letters into its namespace's `asya-<ns>-dlq` after
//! `max_receive_count` receives. The DLQ is created first and its ARN read
//! back with `GetQueueAttributes`: upstream built the ARN from a configured
//! account id that defaulted to a fake one, pointing every queue's redrive at
//! a queue that did not exist.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use tokio::sync::OnceCell;

use super::config::ceil_secs;
use super::{SqsConfig, describe, is_missing_queue};
use crate::{QueueAdmin, QueueDepth, TransportError};

/// How long actor queues keep messages (4 days, as upstream).
const RETENTION: Duration = Duration::from_secs(4 * 24 * 3600);
/// How long the dead-letter queue keeps messages (SQS's maximum, 14 days):
/// they wait there for an operator.
const DLQ_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// Splits `asya-<ns>-<actor>` into `(ns, actor)`.
///
/// A queue name alone is ambiguous when the namespace contains `-`; the
/// namespace is taken to end at the first `-`. Callers that know the
/// namespace use [`SqsAdmin::ensure_actor_queue`] instead.
pub fn split_queue_name(queue: &str) -> Option<(&str, &str)> {
    let rest = queue.strip_prefix("asya-")?;
    let (ns, actor) = rest.split_once('-')?;
    (!ns.is_empty() && !actor.is_empty()).then_some((ns, actor))
}

/// Creates, measures and deletes SQS queues.
///
/// The client is built on first use, so the controller can create an admin
/// synchronously at startup (see [`SqsAdmin::new`]).
#[derive(Debug, Clone)]
pub struct SqsAdmin {
    client: Arc<OnceCell<Client>>,
    config: SqsConfig,
    visibility_timeout: Duration,
    wait_time: Duration,
    max_receive_count: u32,
}

impl SqsAdmin {
    /// An admin whose queues get `config`'s visibility timeout and long-poll
    /// wait, and a redrive after 5 receives.
    pub async fn connect(config: &SqsConfig) -> Result<Self, TransportError> {
        let admin = Self::new(config)?;
        admin.client().await;
        Ok(admin)
    }

    /// Like [`connect`](Self::connect), but the client (AWS configuration,
    /// credentials) is only set up by the first call that needs it.
    pub fn new(config: &SqsConfig) -> Result<Self, TransportError> {
        config.validate()?;
        Ok(Self {
            client: Arc::new(OnceCell::new()),
            config: config.clone(),
            visibility_timeout: config.visibility_timeout,
            wait_time: config.wait_time,
            max_receive_count: 5,
        })
    }

    /// Like [`connect`](Self::connect) with an existing client.
    pub fn with_client(client: Client, config: &SqsConfig) -> Self {
        Self {
            client: Arc::new(OnceCell::new_with(Some(client))),
            config: config.clone(),
            visibility_timeout: config.visibility_timeout,
            wait_time: config.wait_time,
            max_receive_count: 5,
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| super::client(&self.config))
            .await
    }

    /// Sets after how many receives a message moves to the DLQ (at least 1).
    pub fn with_max_receive_count(mut self, count: u32) -> Self {
        self.max_receive_count = count.max(1);
        self
    }

    /// The dead-letter queue name of `namespace`.
    pub fn dlq_name(namespace: &str) -> String {
        crate::naming::queue_name(namespace, "dlq")
    }

    /// Creates (or updates) the namespace's DLQ and returns its ARN.
    pub async fn ensure_dlq(&self, namespace: &str) -> Result<String, TransportError> {
        let name = Self::dlq_name(namespace);
        let mut attributes = HashMap::new();
        attributes.insert(
            QueueAttributeName::MessageRetentionPeriod,
            ceil_secs(DLQ_RETENTION).to_string(),
        );
        let tags = [("asya.sh/namespace", namespace), ("asya.sh/role", "dlq")];
        let url = self.create_or_update(&name, attributes, &tags).await?;
        self.arn(&name, &url).await
    }

    /// Creates (or updates) the queue of `actor` in `namespace` with its
    /// redrive policy to the namespace's DLQ; returns the queue URL.
    pub async fn ensure_actor_queue(
        &self,
        namespace: &str,
        actor: &str,
    ) -> Result<String, TransportError> {
        let name = self.config.naming.queue(namespace, actor);
        let dlq_arn = self.ensure_dlq(namespace).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": self.max_receive_count.to_string(),
        });
        let mut attributes = HashMap::new();
        attributes.insert(
            QueueAttributeName::VisibilityTimeout,
            ceil_secs(self.visibility_timeout).to_string(),
        );
        attributes.insert(
            QueueAttributeName::MessageRetentionPeriod,
            ceil_secs(RETENTION).to_string(),
        );
        attributes.insert(
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
            ceil_secs(self.wait_time).to_string(),
        );
        attributes.insert(QueueAttributeName::RedrivePolicy, redrive.to_string());
        let tags = [("asya.sh/namespace", namespace), ("asya.sh/actor", actor)];
        self.create_or_update(&name, attributes, &tags).await
    }

    /// The URL of queue `name`, `None` when it does not exist.
    pub async fn queue_url(&self, name: &str) -> Result<Option<String>, TransportError> {
        match self
            .client()
            .await
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.queue_url),
            Err(err) if is_missing_queue(&err) => Ok(None),
            Err(err) => Err(admin_error(name, describe(&err))),
        }
    }

    /// The queue's attributes (all of them), for inspection.
    pub async fn attributes(
        &self,
        name: &str,
    ) -> Result<HashMap<QueueAttributeName, String>, TransportError> {
        let url = self.require_url(name).await?;
        let out = self
            .client()
            .await
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|err| admin_error(name, describe(&err)))?;
        Ok(out.attributes.unwrap_or_default())
    }

    async fn require_url(&self, name: &str) -> Result<String, TransportError> {
        self.queue_url(name)
            .await?
            .ok_or_else(|| admin_error(name, "queue does not exist".into()))
    }

    async fn arn(&self, name: &str, url: &str) -> Result<String, TransportError> {
        let out = self
            .client()
            .await
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|err| admin_error(name, describe(&err)))?;
        out.attributes
            .and_then(|mut attrs| attrs.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| admin_error(name, "SQS returned no QueueArn".into()))
    }

    /// Creates the queue, or brings an existing one's attributes and tags up
    /// to date (CreateQueue refuses differing attributes on an existing queue).
    async fn create_or_update(
        &self,
        name: &str,
        attributes: HashMap<QueueAttributeName, String>,
        tags: &[(&str, &str)],
    ) -> Result<String, TransportError> {
        let existing = match self.queue_url(name).await? {
            Some(url) => Some(url),
            None => {
                let created = self
                    .client()
                    .await
                    .create_queue()
                    .queue_name(name)
                    .set_attributes(Some(attributes.clone()))
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                            .collect(),
                    ))
                    .send()
                    .await;
                match created {
                    Ok(out) => {
                        return out
                            .queue_url
                            .ok_or_else(|| admin_error(name, "SQS returned no queue URL".into()));
                    }
                    // Created meanwhile by someone else with other attributes:
                    // fall through to updating it.
                    Err(err) => match self.queue_url(name).await? {
                        Some(url) => Some(url),
                        None => return Err(admin_error(name, describe(&err))),
                    },
                }
            }
        };
        let Some(url) = existing else {
            return Err(admin_error(
                name,
                "queue vanished while being updated".into(),
            ));
        };
        self.client()
            .await
            .set_queue_attributes()
            .queue_url(&url)
            .set_attributes(Some(attributes))
            .send()
            .await
            .map_err(|err| admin_error(name, describe(&err)))?;
        let mut tag = self.client().await.tag_queue().queue_url(&url);
        for (k, v) in tags {
            tag = tag.tags(*k, *v);
        }
        tag.send()
            .await
            .map_err(|err| admin_error(name, describe(&err)))?;
        Ok(url)
    }
}

fn admin_error(queue: &str, reason: String) -> TransportError {
    TransportError::Admin {
        queue: queue.to_string(),
        reason,
    }
}

fn count(attrs: &HashMap<QueueAttributeName, String>, name: &QueueAttributeName) -> u64 {
    attrs
        .get(name)
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(0)
}

impl QueueAdmin for SqsAdmin {
    /// Creates the queue with its redrive policy; the namespace is read from
    /// the name (see [`split_queue_name`]).
    async fn ensure_queue(&self, queue: &str) -> Result<(), TransportError> {
        let (namespace, actor) = split_queue_name(queue).ok_or_else(|| {
            admin_error(
                queue,
                "not an Asya queue name (asya-<namespace>-<actor>)".into(),
            )
        })?;
        SqsAdmin::ensure_actor_queue(self, namespace, actor)
            .await
            .map(|_| ())
    }

    /// The exact form: the namespace is given, not guessed from the name.
    async fn ensure_actor_queue(&self, namespace: &str, actor: &str) -> Result<(), TransportError> {
        SqsAdmin::ensure_actor_queue(self, namespace, actor)
            .await
            .map(|_| ())
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, TransportError> {
        let url = self.require_url(queue).await?;
        let out = self
            .client()
            .await
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|err| admin_error(queue, describe(&err)))?;
        let attrs = out.attributes.unwrap_or_default();
        Ok(QueueDepth {
            queued: count(&attrs, &QueueAttributeName::ApproximateNumberOfMessages),
            processing: Some(count(
                &attrs,
                &QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )),
        })
    }

    /// Deletes the actor queue. The namespace DLQ stays: it is shared and
    /// holds what operators still have to look at.
    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        let Some(url) = self.queue_url(queue).await? else {
            return Ok(());
        };
        match self
            .client()
            .await
            .delete_queue()
            .queue_url(&url)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_missing_queue(&err) => Ok(()),
            Err(err) => Err(admin_error(queue, describe(&err))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_split_at_the_first_dash_after_the_prefix() {
        assert_eq!(
            split_queue_name("asya-prod-x-sink"),
            Some(("prod", "x-sink"))
        );
        assert_eq!(split_queue_name("asya-prod-a"), Some(("prod", "a")));
        assert_eq!(split_queue_name("other-prod-a"), None);
        assert_eq!(split_queue_name("asya-prod"), None);
    }

    #[test]
    fn dlq_is_per_namespace() {
        assert_eq!(SqsAdmin::dlq_name("prod"), "asya-prod-dlq");
    }
}
