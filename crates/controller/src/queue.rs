//! Queue drivers: one per transport the platform configures.
//!
//! The topology itself (durable queue, bindings, delay and dead-letter
//! companions, SQS attributes) lives in `asya-transport`'s [`QueueAdmin`]
//! implementations, shared with the sidecar. This module only makes them
//! object-safe so the controller can hold one per transport name.

use std::collections::BTreeMap;
use std::sync::Arc;

use asya_transport::{QueueAdmin, QueueDepth, TransportError};
use futures::future::BoxFuture;

/// An object-safe [`QueueAdmin`].
pub trait QueueDriver: Send + Sync {
    fn ensure<'a>(
        &'a self,
        namespace: &'a str,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<(), TransportError>>;
    fn depth<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueDepth, TransportError>>;
    fn delete<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), TransportError>>;
}

impl<T: QueueAdmin> QueueDriver for T {
    fn ensure<'a>(
        &'a self,
        namespace: &'a str,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.ensure_actor_queue(namespace, actor))
    }
    fn depth<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueDepth, TransportError>> {
        Box::pin(QueueAdmin::depth(self, queue))
    }
    fn delete<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.delete_queue(queue))
    }
}

/// What happens to an actor's queue when the actor is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Delete the queue (and any messages in it).
    #[default]
    Delete,
    /// Keep the queue and its messages.
    Retain,
}

/// The drivers by transport name (`rabbitmq`, `sqs`, or a platform's own name).
#[derive(Clone, Default)]
pub struct QueueDrivers {
    drivers: BTreeMap<String, (Arc<dyn QueueDriver>, DeletionPolicy)>,
    external: bool,
}

impl QueueDrivers {
    /// Registers the driver for transport `name`.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        driver: Arc<dyn QueueDriver>,
        policy: DeletionPolicy,
    ) {
        self.drivers.insert(name.into(), (driver, policy));
    }

    /// The driver and deletion policy for transport `name`.
    pub fn get(&self, name: &str) -> Option<(&Arc<dyn QueueDriver>, DeletionPolicy)> {
        self.drivers.get(name).map(|(d, p)| (d, *p))
    }

    /// Marks queues as provisioned by objects in the render (not by drivers).
    pub fn set_external(&mut self, external: bool) {
        self.external = external;
    }

    /// True when queues are objects in the render, not the controller's job.
    pub fn external(&self) -> bool {
        self.external
    }

    /// Transport names with a driver.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.drivers.keys().map(String::as_str)
    }
}

/// A RabbitMQ driver that connects on first use (and again after a failed
/// connect), so a broker that is down when the controller starts only marks
/// actors `TransportError` instead of stopping the controller.
pub struct LazyRabbitMq {
    config: asya_transport::rabbitmq::RabbitMqConfig,
    admin: tokio::sync::OnceCell<asya_transport::rabbitmq::RabbitMq>,
}

impl LazyRabbitMq {
    /// A driver for the broker at `url` whose queue names follow `naming` (the
    /// platform's `queue.naming`, the same the sidecars are given).
    pub fn new(url: impl Into<String>, naming: asya_contract::QueueNaming) -> Self {
        let mut config = asya_transport::rabbitmq::RabbitMqConfig::new(url, "");
        config.connection_name = "asya-controller".into();
        config.naming = naming;
        LazyRabbitMq {
            config,
            admin: tokio::sync::OnceCell::new(),
        }
    }

    async fn admin(&self) -> Result<&asya_transport::rabbitmq::RabbitMq, TransportError> {
        self.admin
            .get_or_try_init(|| asya_transport::rabbitmq::RabbitMq::connect(self.config.clone()))
            .await
    }
}

impl QueueAdmin for LazyRabbitMq {
    async fn ensure_actor_queue(&self, namespace: &str, actor: &str) -> Result<(), TransportError> {
        self.admin()
            .await?
            .ensure_actor_queue(namespace, actor)
            .await
    }
    async fn ensure_queue(&self, queue: &str) -> Result<(), TransportError> {
        self.admin().await?.ensure_queue(queue).await
    }
    async fn depth(&self, queue: &str) -> Result<QueueDepth, TransportError> {
        QueueAdmin::depth(self.admin().await?, queue).await
    }
    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        self.admin().await?.delete_queue(queue).await
    }
}

/// The SQS driver for a transport's settings (region, endpoint override,
/// visibility timeout, long-poll wait). The AWS client is built on first use;
/// credentials come from the usual chain (IRSA / Pod Identity in a cluster).
pub fn sqs_driver(
    settings: &asya_render::api::platform::TransportSettings,
    naming: asya_contract::QueueNaming,
) -> Option<Arc<dyn QueueDriver>> {
    let mut config = asya_transport::sqs::SqsConfig::new(
        settings
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".into()),
        settings.endpoint.clone(),
    );
    config.naming = naming;
    if let Some(v) = settings.visibility_timeout.as_deref() {
        match asya_transport::sqs::parse_duration(v) {
            Ok(d) => config.visibility_timeout = d,
            Err(e) => {
                tracing::warn!(value = %v, error = %e, "ignoring the SQS visibilityTimeout of the platform")
            }
        }
    }
    if let Some(w) = settings.wait_time_seconds {
        config.wait_time = std::time::Duration::from_secs(u64::from(w.min(20)));
    }
    match asya_transport::sqs::SqsAdmin::new(&config) {
        Ok(admin) => Some(Arc::new(admin)),
        Err(e) => {
            tracing::error!(error = %e, "SQS transport misconfigured; its actors will show TransportError");
            None
        }
    }
}

/// The queue step: ensures the actor's queue and reads its depth; `None`
/// when queues are provisioned by objects in the render.
pub async fn ensure(
    queues: &QueueDrivers,
    r: &crate::render::RenderedActor,
) -> Option<std::result::Result<asya_transport::QueueDepth, String>> {
    if queues.external() {
        return None;
    }
    let Some((driver, _)) = queues.get(&r.transport_name) else {
        return Some(Err(format!(
            "the controller has no queue driver for transport {:?}",
            r.transport_name
        )));
    };
    if let Err(e) = driver.ensure(&r.namespace, &r.actor).await {
        return Some(Err(e.to_string()));
    }
    Some(driver.depth(&r.queue_name).await.map_err(|e| e.to_string()))
}
