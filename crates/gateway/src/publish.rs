//! Publishing envelopes to the first actor of a route, through the shared transport crate.
//!
//! The broker settings are the contract's (`ASYA_TRANSPORT`, `ASYA_NAMESPACE`,
//! `ASYA_QUEUE_NAMING`, `ASYA_RABBITMQ_*`, `ASYA_AWS_REGION`, `ASYA_SQS_ENDPOINT`), read by
//! [`SidecarEnv::from_env`] exactly as a sidecar reads them, so the gateway names queues
//! as the actors do.

use std::time::Duration;

use asya_contract::{SidecarEnv, TransportKind, env as names};
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use asya_transport::sqs::{SqsConfig, SqsPublisher};
use asya_transport::{Transport, TransportError};
use bytes::Bytes;

/// The identity the gateway reads the contract's settings under (it consumes no queue).
const GATEWAY_ACTOR: &str = "asya-gateway";

/// Where the gateway publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    pub transport: TransportKind,
    pub namespace: String,
    pub env: SidecarEnv,
    /// The AMQP URL (RabbitMQ), password included.
    pub rabbitmq_url: String,
    /// Region, endpoint and queue naming (SQS), from the same variables as the sidecar's.
    pub sqs: SqsConfig,
}

/// A variable that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct SettingsError {
    pub var: String,
    pub reason: String,
}

impl BrokerSettings {
    /// Reads the contract's variables through `get`. `ASYA_NAMESPACE` is required: queue
    /// names carry it.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let lookup = |k: &str| {
            if k == names::ACTOR_NAME {
                Some(GATEWAY_ACTOR.to_string())
            } else {
                get(k)
            }
        };
        let env = SidecarEnv::from_env(lookup).map_err(|e| SettingsError {
            var: e.var.to_string(),
            reason: e.reason,
        })?;
        let r = &env.rabbitmq;
        let rabbitmq_url = r.amqp_url(get(names::RABBITMQ_PASSWORD).as_deref());
        let sqs = SqsConfig::from_lookup(lookup).map_err(|e| SettingsError {
            var: "ASYA_AWS_REGION / ASYA_SQS_*".into(),
            reason: e.to_string(),
        })?;
        Ok(BrokerSettings {
            transport: env.transport,
            namespace: env.namespace.clone(),
            env,
            rabbitmq_url,
            sqs,
        })
    }

    /// The queue of `actor`, as the actor's sidecar names it.
    pub fn queue_of(&self, actor: &str) -> String {
        self.env.queue_naming.queue(&self.namespace, actor)
    }
}

/// A connected publisher.
pub enum Publisher {
    RabbitMq(RabbitMq),
    Sqs(SqsPublisher),
}

impl Publisher {
    /// Connects to the broker of `s` (eagerly: a wrong URL fails at startup).
    pub async fn connect(s: &BrokerSettings) -> Result<Publisher, TransportError> {
        match s.transport {
            TransportKind::RabbitMq => {
                let mut cfg = RabbitMqConfig::new(s.rabbitmq_url.clone(), s.namespace.clone());
                cfg.exchange = s.env.rabbitmq.exchange.clone();
                cfg.naming = s.env.queue_naming;
                cfg.connection_name = GATEWAY_ACTOR.into();
                Ok(Publisher::RabbitMq(RabbitMq::connect(cfg).await?))
            }
            TransportKind::Sqs => Ok(Publisher::Sqs(
                SqsPublisher::connect(s.sqs.clone(), &s.namespace).await?,
            )),
        }
    }

    /// Publishes `body` to `actor`'s queue; returns once the broker confirmed it.
    pub async fn publish(&self, actor: &str, body: Bytes) -> Result<(), TransportError> {
        match self {
            Publisher::RabbitMq(t) => t.publish(actor, body, Duration::ZERO).await,
            Publisher::Sqs(p) => p.publish(actor, &body).await,
        }
    }

    pub fn is_connected(&self) -> bool {
        match self {
            Publisher::RabbitMq(t) => t.is_connected(),
            // HTTP requests: nothing stays connected; a failed publish says why.
            Publisher::Sqs(_) => true,
        }
    }

    pub async fn close(&self) {
        match self {
            Publisher::RabbitMq(t) => t.close().await,
            Publisher::Sqs(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<BrokerSettings, SettingsError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerSettings::from_env(|k| m.get(k).cloned())
    }

    #[test]
    fn settings_come_from_the_contract_names() {
        let s = read(&[
            (names::NAMESPACE, "prod"),
            (names::RABBITMQ_HOST, "mq"),
            (names::RABBITMQ_USERNAME, "u@x"),
            (names::RABBITMQ_PASSWORD, "p/w"),
        ])
        .unwrap();
        assert_eq!(s.rabbitmq_url, "amqp://u%40x:p%2Fw@mq:5672/%2F");
        assert_eq!(s.queue_of("echo"), "asya-prod-echo");
        let legacy = read(&[(names::NAMESPACE, "prod"), (names::QUEUE_NAMING, "legacy")]).unwrap();
        assert_eq!(legacy.queue_of("echo"), "asya-echo");
        let err = read(&[]).unwrap_err();
        assert_eq!(err.var, names::NAMESPACE);
    }
}
