//! Configuration from `ASYA_*` environment variables (see `docs/sidecar.md`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use asya_contract::env as names;
use asya_contract::{QueueNaming, SidecarEnv};

use crate::error::SidecarError;
use crate::resiliency::Resiliency;

pub use asya_contract::{Role, TransportKind};

/// Everything the sidecar reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub actor: String,
    pub namespace: String,
    pub transport: TransportKind,
    /// How actor names map to queue names (`ASYA_QUEUE_NAMING`).
    pub queue_naming: QueueNaming,
    pub role: Role,
    pub socket_dir: PathBuf,
    pub socket_name: String,
    pub sink: String,
    pub sump: String,
    pub concurrency: usize,
    pub actor_timeout: Duration,
    pub resiliency: Option<Resiliency>,
    pub shutdown_grace: Duration,
    pub runtime_ready_timeout: Duration,
    pub metrics_addr: SocketAddr,
    pub log_level: String,
    pub log_format: String,
    pub max_frame_bytes: usize,
    pub rabbitmq_url: String,
    pub rabbitmq_exchange: String,
    /// Unacked deliveries the broker may hand out (RabbitMQ prefetch): the
    /// ones in the handler plus the ones whose results await confirms.
    pub prefetch: usize,
    /// SQS visibility per receive; the sidecar extends it every third of it
    /// while a message is processed.
    pub visibility_timeout: Duration,
    /// Gateway URL for envelopes without `x-asya-gateway-url` (`ASYA_GATEWAY_URL`),
    /// checked by the same guard as the header.
    pub gateway_url: Option<String>,
    /// This actor's queue (the contract's naming).
    queue: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SidecarError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads a given environment (tests). Names, defaults and formats are the contract's
    /// (`asya_contract::SidecarEnv::from_env`), the ones render writes with.
    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, SidecarError> {
        let bad = |var: &str, why: String| SidecarError::Config {
            var: var.to_string(),
            reason: why,
        };
        let e = SidecarEnv::from_env(|k| env.get(k).cloned()).map_err(|e| bad(e.var, e.reason))?;
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let concurrency = usize::from(e.concurrency);
        let resiliency = Resiliency::from_json(
            e.resiliency_policies.as_deref(),
            e.resiliency_rules.as_deref(),
        )
        .map_err(|why| {
            bad(
                &format!("{}/{}", names::RESILIENCY_POLICIES, names::RESILIENCY_RULES),
                why,
            )
        })?;
        let metrics_addr =
            parse_addr(&e.metrics_addr).map_err(|why| bad(names::METRICS_ADDR, why))?;
        let max_frame_bytes = usize::try_from(e.max_frame_bytes).map_err(|_| {
            bad(
                names::MAX_FRAME_BYTES,
                "is too large for this machine".into(),
            )
        })?;
        let r = &e.rabbitmq;
        let rabbitmq_url = r.amqp_url(get(names::RABBITMQ_PASSWORD));
        let prefetch = match e.rabbitmq.prefetch {
            None => default_prefetch(concurrency),
            Some(n) if usize::from(n) >= concurrency => usize::from(n),
            Some(n) => {
                return Err(bad(
                    names::RABBITMQ_PREFETCH,
                    format!("{n} is below ASYA_CONCURRENCY ({concurrency})"),
                ));
            }
        };
        if let Some(u) = &e.gateway_url {
            crate::progress::checked_base(u).map_err(|why| bad(names::GATEWAY_URL, why))?;
        }
        Ok(Self {
            gateway_url: e.gateway_url.clone(),
            prefetch,
            queue: e.queue(),
            actor: e.actor,
            namespace: e.namespace,
            transport: e.transport,
            queue_naming: e.queue_naming,
            role: e.role,
            socket_dir: PathBuf::from(e.socket_dir),
            socket_name: e.socket_name,
            sink: e.sink,
            sump: e.sump,
            concurrency,
            actor_timeout: e.actor_timeout,
            resiliency,
            shutdown_grace: e.shutdown_grace,
            runtime_ready_timeout: e.runtime_ready_timeout,
            metrics_addr,
            log_level: e.log_level,
            log_format: e.log_format,
            max_frame_bytes,
            rabbitmq_url,
            rabbitmq_exchange: e.rabbitmq.exchange,
            visibility_timeout: e.sqs.visibility_timeout,
        })
    }

    /// How many deliveries may await their results' confirms at once.
    pub fn pipeline_depth(&self) -> usize {
        (self.prefetch - self.concurrency.min(self.prefetch)).max(1)
    }

    /// The queue this sidecar consumes.
    pub fn queue(&self) -> String {
        self.queue.clone()
    }

    /// The queue of another actor in this sidecar's namespace.
    pub fn queue_of(&self, actor: &str) -> String {
        self.queue_naming.queue(&self.namespace, actor)
    }
}

/// Enough deliveries to keep the handler slots busy while earlier results
/// await confirms (about one confirm round trip per handler call), without
/// hoarding many messages a second replica could take.
pub fn default_prefetch(concurrency: usize) -> usize {
    (concurrency * 2 + 8).min(u16::MAX as usize)
}

fn parse_addr(raw: &str) -> Result<SocketAddr, String> {
    // Go-style ":8080" means all interfaces.
    let raw = if raw.starts_with(':') {
        format!("0.0.0.0{raw}")
    } else {
        raw.to_string()
    };
    raw.parse()
        .map_err(|e| format!("{raw:?} is not host:port ({e})"))
}

/// Parses a Go duration (the contract's parser): `300ms`, `1.5s`, `5m`, `1h30m`, a bare `0`.
pub fn parse_go_duration(raw: &str) -> Result<Duration, String> {
    asya_contract::duration::parse(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(parse_go_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_go_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("5 parsecs").is_err());
    }

    #[test]
    fn defaults_apply_when_only_required_vars_are_set() {
        let c =
            Config::from_map(&env(&[("ASYA_ACTOR_NAME", "a"), ("ASYA_NAMESPACE", "ns")])).unwrap();
        assert_eq!(c.queue(), "asya-ns-a");
        assert_eq!(c.role, Role::Regular);
        assert_eq!(c.concurrency, 1);
        assert_eq!(c.actor_timeout, Duration::from_secs(300));
        assert_eq!(c.shutdown_grace, Duration::from_secs(25));
        // One default for render and sidecar: the contract's in-cluster service name.
        assert_eq!(
            c.rabbitmq_url,
            "amqp://guest:guest@rabbitmq.default.svc.cluster.local:5672/%2F"
        );
        assert_eq!(c.metrics_addr.port(), 8080);
        assert!(c.resiliency.is_none());
    }

    #[test]
    fn missing_actor_name_is_a_clear_error() {
        let err = Config::from_map(&env(&[("ASYA_NAMESPACE", "ns")])).unwrap_err();
        assert!(err.to_string().contains("ASYA_ACTOR_NAME"), "{err}");
    }

    #[test]
    fn legacy_end_actor_flag_picks_role_by_name() {
        let sink = Config::from_map(&env(&[
            ("ASYA_ACTOR_NAME", "happy-end"),
            ("ASYA_NAMESPACE", "ns"),
            ("ASYA_IS_END_ACTOR", "true"),
        ]))
        .unwrap();
        assert_eq!(sink.role, Role::Sink);
        let sump = Config::from_map(&env(&[
            ("ASYA_ACTOR_NAME", "error-end"),
            ("ASYA_NAMESPACE", "ns"),
            ("ASYA_IS_END_ACTOR", "1"),
        ]))
        .unwrap();
        assert_eq!(sump.role, Role::Sump);
    }

    #[test]
    fn bad_concurrency_is_rejected() {
        let err = Config::from_map(&env(&[
            ("ASYA_ACTOR_NAME", "a"),
            ("ASYA_NAMESPACE", "ns"),
            ("ASYA_CONCURRENCY", "0"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("ASYA_CONCURRENCY"));
    }
}
