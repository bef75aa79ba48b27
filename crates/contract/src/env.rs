//! The `asya-sidecar` container's environment: the names, their defaults, and the resolved
//! settings render writes ([`SidecarEnv::to_env`]) and the sidecar reads
//! ([`SidecarEnv::from_env`]).

use std::time::Duration;

use crate::duration;
use crate::{QueueNaming, TransportKind};

// Who the actor is.
pub const ACTOR_NAME: &str = "ASYA_ACTOR_NAME";
pub const NAMESPACE: &str = "ASYA_NAMESPACE";
pub const TRANSPORT: &str = "ASYA_TRANSPORT";
/// `namespaced` (default) or `legacy`: see [`crate::QueueNaming`].
pub const QUEUE_NAMING: &str = "ASYA_QUEUE_NAMING";
pub const ACTOR_ROLE: &str = "ASYA_ACTOR_ROLE";
/// Upstream's flag for end actors; the role then follows from the actor's name.
pub const IS_END_ACTOR: &str = "ASYA_IS_END_ACTOR";
pub const ACTOR_SINK: &str = "ASYA_ACTOR_SINK";
pub const ACTOR_SUMP: &str = "ASYA_ACTOR_SUMP";
// The runtime's socket (both containers).
pub const SOCKET_DIR: &str = "ASYA_SOCKET_DIR";
pub const SOCKET_NAME: &str = "ASYA_SOCKET_NAME";
pub const MAX_FRAME_BYTES: &str = "ASYA_MAX_FRAME_BYTES";
pub const RUNTIME_READY_TIMEOUT: &str = "ASYA_RUNTIME_READY_TIMEOUT";
// Work and failure handling.
pub const CONCURRENCY: &str = "ASYA_CONCURRENCY";
pub const RESILIENCY_ACTOR_TIMEOUT: &str = "ASYA_RESILIENCY_ACTOR_TIMEOUT";
pub const RESILIENCY_POLICIES: &str = "ASYA_RESILIENCY_POLICIES";
pub const RESILIENCY_RULES: &str = "ASYA_RESILIENCY_RULES";
pub const SHUTDOWN_GRACE: &str = "ASYA_SHUTDOWN_GRACE";
// Observability.
pub const METRICS_ADDR: &str = "ASYA_METRICS_ADDR";
pub const LOG_LEVEL: &str = "ASYA_LOG_LEVEL";
pub const LOG_FORMAT: &str = "ASYA_LOG_FORMAT";
// RabbitMQ.
pub const RABBITMQ_URL: &str = "ASYA_RABBITMQ_URL";
pub const RABBITMQ_HOST: &str = "ASYA_RABBITMQ_HOST";
pub const RABBITMQ_PORT: &str = "ASYA_RABBITMQ_PORT";
pub const RABBITMQ_VHOST: &str = "ASYA_RABBITMQ_VHOST";
pub const RABBITMQ_USERNAME: &str = "ASYA_RABBITMQ_USERNAME";
/// From a Secret (render writes a `secretKeyRef`, never a value).
pub const RABBITMQ_PASSWORD: &str = "ASYA_RABBITMQ_PASSWORD";
pub const RABBITMQ_EXCHANGE: &str = "ASYA_RABBITMQ_EXCHANGE";
/// Unacked deliveries the broker may hand out; default 2 × concurrency + 8 (the sidecar's).
pub const RABBITMQ_PREFETCH: &str = "ASYA_RABBITMQ_PREFETCH";
// SQS.
pub const AWS_REGION: &str = "ASYA_AWS_REGION";
pub const SQS_ENDPOINT: &str = "ASYA_SQS_ENDPOINT";
pub const SQS_WAIT_TIME_SECONDS: &str = "ASYA_SQS_WAIT_TIME_SECONDS";
pub const SQS_VISIBILITY_TIMEOUT: &str = "ASYA_SQS_VISIBILITY_TIMEOUT";
// Where x-sink / x-sump store envelopes.
pub const S3_BUCKET: &str = "ASYA_S3_BUCKET";
pub const S3_PREFIX: &str = "ASYA_S3_PREFIX";
pub const S3_ENDPOINT: &str = "ASYA_S3_ENDPOINT";
// Progress reporting.
/// The gateway's mesh URL for envelopes that carry no `x-asya-gateway-url` header
/// ([`crate::headers::GATEWAY_URL`]); unset: only envelopes with the header are reported.
pub const GATEWAY_URL: &str = "ASYA_GATEWAY_URL";

/// Every `ASYA_*` name the sidecar reads. Render may write no other `ASYA_*` name into the
/// sidecar container (a test in the render crate checks every golden render).
pub const SIDECAR_READS: &[&str] = &[
    ACTOR_NAME,
    NAMESPACE,
    TRANSPORT,
    QUEUE_NAMING,
    ACTOR_ROLE,
    IS_END_ACTOR,
    ACTOR_SINK,
    ACTOR_SUMP,
    SOCKET_DIR,
    SOCKET_NAME,
    MAX_FRAME_BYTES,
    RUNTIME_READY_TIMEOUT,
    CONCURRENCY,
    RESILIENCY_ACTOR_TIMEOUT,
    RESILIENCY_POLICIES,
    RESILIENCY_RULES,
    SHUTDOWN_GRACE,
    METRICS_ADDR,
    LOG_LEVEL,
    LOG_FORMAT,
    RABBITMQ_URL,
    RABBITMQ_HOST,
    RABBITMQ_PORT,
    RABBITMQ_VHOST,
    RABBITMQ_USERNAME,
    RABBITMQ_PASSWORD,
    RABBITMQ_EXCHANGE,
    RABBITMQ_PREFETCH,
    AWS_REGION,
    SQS_ENDPOINT,
    SQS_WAIT_TIME_SECONDS,
    SQS_VISIBILITY_TIMEOUT,
    S3_BUCKET,
    S3_PREFIX,
    S3_ENDPOINT,
    GATEWAY_URL,
];

/// The runtime container's names that render sets (the runtime documents the rest).
pub mod runtime {
    pub const HANDLER: &str = "ASYA_HANDLER";
    pub const RUNTIME_CONCURRENCY: &str = "ASYA_RUNTIME_CONCURRENCY";
    pub use super::{LOG_LEVEL, SHUTDOWN_GRACE, SOCKET_DIR, SOCKET_NAME};
}

/// The gateway's own names (the `asya-gateway` chart writes them; the gateway reads
/// them beside the sidecar's broker settings above).
pub mod gateway {
    /// Task store URL: `postgres://…`, `sqlite:FILE` or `sqlite::memory:`.
    pub const DATABASE_URL: &str = "ASYA_DATABASE_URL";
    /// The PostgreSQL password, apart from the URL (the chart sets it from a Secret).
    pub const DATABASE_PASSWORD: &str = "ASYA_DATABASE_PASSWORD";
    /// Bearer token required on `/mcp` and `/tasks`.
    pub const AUTH_TOKEN: &str = "ASYA_GATEWAY_AUTH_TOKEN";
    /// File holding that token (re-read when it changes); wins over [`AUTH_TOKEN`].
    pub const AUTH_TOKEN_FILE: &str = "ASYA_GATEWAY_AUTH_TOKEN_FILE";
}

/// Defaults, applied once by [`SidecarEnv::from_env`] (render leaves out what equals them).
pub mod defaults {
    pub const SOCKET_DIR: &str = "/var/run/asya";
    pub const SOCKET_NAME: &str = "asya-runtime.sock";
    pub const SINK: &str = "x-sink";
    pub const SUMP: &str = "x-sump";
    pub const CONCURRENCY: u16 = 1;
    pub const ACTOR_TIMEOUT_SECS: u64 = 300;
    pub const SHUTDOWN_GRACE_SECS: u64 = 25;
    pub const RUNTIME_READY_TIMEOUT_SECS: u64 = 300;
    pub const METRICS_ADDR: &str = "0.0.0.0:8080";
    pub const LOG_LEVEL: &str = "info";
    pub const LOG_FORMAT: &str = "json";
    pub const MAX_FRAME_BYTES: u64 = 64 << 20;
    /// The in-cluster service name of a RabbitMQ installed with its chart in `default`.
    pub const RABBITMQ_HOST: &str = "rabbitmq.default.svc.cluster.local";
    pub const RABBITMQ_PORT: u16 = 5672;
    pub const RABBITMQ_VHOST: &str = "/";
    pub const RABBITMQ_USERNAME: &str = "guest";
    pub const RABBITMQ_EXCHANGE: &str = "asya";
    pub const AWS_REGION: &str = "us-east-1";
    pub const SQS_WAIT_TIME_SECONDS: u32 = 20;
    pub const SQS_VISIBILITY_TIMEOUT_SECS: u64 = 30;
}

/// What the sidecar does with the messages of its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Calls the runtime and routes the results.
    Regular,
    /// `x-sink`: persists final envelopes; forwards failed ones to x-sump.
    Sink,
    /// `x-sump`: persists and logs envelopes that fell out of the flow.
    Sump,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Regular => "regular",
            Role::Sink => "sink",
            Role::Sump => "sump",
        }
    }

    /// The role of a crew actor by its name (upstream's names included).
    pub fn of_actor(actor: &str) -> Role {
        match actor {
            "x-sink" | "happy-end" => Role::Sink,
            "x-sump" | "error-end" => Role::Sump,
            _ => Role::Regular,
        }
    }
}

/// RabbitMQ connection settings (the password comes from [`RABBITMQ_PASSWORD`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitMqEnv {
    /// A full AMQP URL; when set, host/port/vhost/username are not used.
    pub url: Option<String>,
    pub host: String,
    pub port: u16,
    pub vhost: String,
    pub username: String,
    pub exchange: String,
    /// `None`: the sidecar sizes it from the concurrency.
    pub prefetch: Option<u16>,
}

impl RabbitMqEnv {
    /// The AMQP URL to connect with: [`RabbitMqEnv::url`] when set, else one built from
    /// host, port, vhost, username and `password` (the value of [`RABBITMQ_PASSWORD`];
    /// `guest` when absent), each part percent-encoded.
    pub fn amqp_url(&self, password: Option<&str>) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => format!(
                "amqp://{}:{}@{}:{}/{}",
                percent_encode(&self.username),
                percent_encode(password.filter(|p| !p.is_empty()).unwrap_or("guest")),
                self.host,
                self.port,
                percent_encode(&self.vhost)
            ),
        }
    }
}

/// Percent-encodes a URL userinfo or path segment (RFC 3986 unreserved kept).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// SQS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEnv {
    pub region: String,
    /// Endpoint override (emulators).
    pub endpoint: Option<String>,
    pub wait_time_seconds: u32,
    pub visibility_timeout: Duration,
}

/// Where x-sink / x-sump store envelopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Env {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: Option<String>,
}

/// Everything the sidecar is told through its environment, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarEnv {
    pub actor: String,
    pub namespace: String,
    pub transport: TransportKind,
    /// How this sidecar names its own queue and the queues it routes to.
    pub queue_naming: QueueNaming,
    pub role: Role,
    pub sink: String,
    pub sump: String,
    pub socket_dir: String,
    pub socket_name: String,
    pub max_frame_bytes: u64,
    pub runtime_ready_timeout: Duration,
    pub concurrency: u16,
    pub actor_timeout: Duration,
    /// `spec.resiliency.policies` as canonical JSON (the sidecar's resiliency module parses it).
    pub resiliency_policies: Option<String>,
    /// `spec.resiliency.rules` as canonical JSON.
    pub resiliency_rules: Option<String>,
    pub shutdown_grace: Duration,
    pub metrics_addr: String,
    pub log_level: String,
    pub log_format: String,
    pub rabbitmq: RabbitMqEnv,
    pub sqs: SqsEnv,
    pub s3: Option<S3Env>,
    /// Fallback gateway URL for reports ([`GATEWAY_URL`]).
    pub gateway_url: Option<String>,
}

/// A variable that could not be read: its name and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub var: &'static str,
    pub reason: String,
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.var, self.reason)
    }
}

impl std::error::Error for EnvError {}

impl SidecarEnv {
    /// The settings of `actor` in `namespace` with every default.
    pub fn new(actor: &str, namespace: &str, transport: TransportKind) -> Self {
        use defaults as d;
        SidecarEnv {
            actor: actor.into(),
            namespace: namespace.into(),
            transport,
            queue_naming: QueueNaming::Namespaced,
            role: Role::of_actor(actor),
            sink: d::SINK.into(),
            sump: d::SUMP.into(),
            socket_dir: d::SOCKET_DIR.into(),
            socket_name: d::SOCKET_NAME.into(),
            max_frame_bytes: d::MAX_FRAME_BYTES,
            runtime_ready_timeout: Duration::from_secs(d::RUNTIME_READY_TIMEOUT_SECS),
            concurrency: d::CONCURRENCY,
            actor_timeout: Duration::from_secs(d::ACTOR_TIMEOUT_SECS),
            resiliency_policies: None,
            resiliency_rules: None,
            shutdown_grace: Duration::from_secs(d::SHUTDOWN_GRACE_SECS),
            metrics_addr: d::METRICS_ADDR.into(),
            log_level: d::LOG_LEVEL.into(),
            log_format: d::LOG_FORMAT.into(),
            rabbitmq: RabbitMqEnv {
                url: None,
                host: d::RABBITMQ_HOST.into(),
                port: d::RABBITMQ_PORT,
                vhost: d::RABBITMQ_VHOST.into(),
                username: d::RABBITMQ_USERNAME.into(),
                exchange: d::RABBITMQ_EXCHANGE.into(),
                prefetch: None,
            },
            sqs: SqsEnv {
                region: d::AWS_REGION.into(),
                endpoint: None,
                wait_time_seconds: d::SQS_WAIT_TIME_SECONDS,
                visibility_timeout: Duration::from_secs(d::SQS_VISIBILITY_TIMEOUT_SECS),
            },
            s3: None,
            gateway_url: None,
        }
    }

    /// The queue this sidecar consumes.
    pub fn queue(&self) -> String {
        self.queue_naming.queue(&self.namespace, &self.actor)
    }

    /// The environment render writes, in a fixed order. Identity, socket, sink/sump,
    /// concurrency, timeouts, observability and the transport's connection are always
    /// written; the rest only where it differs from the default.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        self.clone().into_env()
    }

    /// [`Self::to_env`], moving the strings out instead of copying them (render builds
    /// the settings only to write them).
    pub fn into_env(self) -> Vec<(&'static str, String)> {
        // Room for every variable at once: the list is not regrown as it fills.
        let mut out = Vec::with_capacity(32);
        out.extend([
            (ACTOR_NAME, self.actor),
            (NAMESPACE, self.namespace),
            (TRANSPORT, self.transport.as_str().to_string()),
        ]);
        // Written only for the non-default scheme: namespaced renders stay as they were.
        if self.queue_naming != QueueNaming::Namespaced {
            out.push((QUEUE_NAMING, self.queue_naming.as_str().to_string()));
        }
        out.extend([
            (ACTOR_ROLE, self.role.as_str().to_string()),
            (SOCKET_DIR, self.socket_dir),
            (SOCKET_NAME, self.socket_name),
            (ACTOR_SINK, self.sink),
            (ACTOR_SUMP, self.sump),
            (CONCURRENCY, self.concurrency.to_string()),
            (
                RESILIENCY_ACTOR_TIMEOUT,
                duration::format(self.actor_timeout),
            ),
        ]);
        if let Some(p) = self.resiliency_policies {
            out.push((RESILIENCY_POLICIES, p));
        }
        if let Some(r) = self.resiliency_rules {
            out.push((RESILIENCY_RULES, r));
        }
        out.push((SHUTDOWN_GRACE, duration::format(self.shutdown_grace)));
        out.push((METRICS_ADDR, self.metrics_addr));
        out.push((LOG_LEVEL, self.log_level));
        out.push((LOG_FORMAT, self.log_format));
        match self.transport {
            TransportKind::Sqs => {
                let s = self.sqs;
                out.push((AWS_REGION, s.region));
                if let Some(e) = s.endpoint {
                    out.push((SQS_ENDPOINT, e));
                }
                out.push((SQS_WAIT_TIME_SECONDS, s.wait_time_seconds.to_string()));
                if s.visibility_timeout
                    != Duration::from_secs(defaults::SQS_VISIBILITY_TIMEOUT_SECS)
                {
                    out.push((
                        SQS_VISIBILITY_TIMEOUT,
                        duration::format(s.visibility_timeout),
                    ));
                }
            }
            TransportKind::RabbitMq => {
                let r = self.rabbitmq;
                match r.url {
                    Some(u) => out.push((RABBITMQ_URL, u)),
                    None => {
                        out.push((RABBITMQ_HOST, r.host));
                        out.push((RABBITMQ_PORT, r.port.to_string()));
                        out.push((RABBITMQ_VHOST, r.vhost));
                        out.push((RABBITMQ_USERNAME, r.username));
                    }
                }
                out.push((RABBITMQ_EXCHANGE, r.exchange));
                if let Some(p) = r.prefetch {
                    out.push((RABBITMQ_PREFETCH, p.to_string()));
                }
            }
        }
        if let Some(s3) = self.s3 {
            out.push((S3_BUCKET, s3.bucket));
            if !s3.prefix.is_empty() {
                out.push((S3_PREFIX, s3.prefix));
            }
            if let Some(e) = s3.endpoint {
                out.push((S3_ENDPOINT, e));
            }
        }
        if let Some(u) = self.gateway_url {
            out.push((GATEWAY_URL, u));
        }
        if self.max_frame_bytes != defaults::MAX_FRAME_BYTES {
            out.push((MAX_FRAME_BYTES, self.max_frame_bytes.to_string()));
        }
        if self.runtime_ready_timeout != Duration::from_secs(defaults::RUNTIME_READY_TIMEOUT_SECS) {
            out.push((
                RUNTIME_READY_TIMEOUT,
                duration::format(self.runtime_ready_timeout),
            ));
        }
        out
    }

    /// Reads the settings from an environment (`get` returns a variable's value); blank
    /// values count as unset. Every error names its variable.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let bad = |var: &'static str, reason: String| EnvError { var, reason };
        let required = |k: &'static str| get(k).ok_or_else(|| bad(k, "is required".into()));
        let dur = |k: &'static str, default: Duration| match get(k) {
            None => Ok(default),
            Some(v) => duration::parse(&v).map_err(|e| bad(k, e)),
        };
        let actor = required(ACTOR_NAME)?;
        let namespace = required(NAMESPACE)?;
        let transport = match get(TRANSPORT) {
            None => TransportKind::RabbitMq,
            Some(t) => t.parse().map_err(|e| bad(TRANSPORT, e))?,
        };
        let mut env = SidecarEnv::new(&actor, &namespace, transport);
        if let Some(n) = get(QUEUE_NAMING) {
            env.queue_naming = n.parse().map_err(|e| bad(QUEUE_NAMING, e))?;
        }
        if let Some(s) = get(ACTOR_SINK) {
            env.sink = s;
        }
        if let Some(s) = get(ACTOR_SUMP) {
            env.sump = s;
        }
        env.role = match get(ACTOR_ROLE).as_deref() {
            Some("regular") => Role::Regular,
            Some("sink") => Role::Sink,
            Some("sump") => Role::Sump,
            Some(other) => {
                return Err(bad(
                    ACTOR_ROLE,
                    format!("expected regular, sink or sump, got {other:?}"),
                ));
            }
            // Upstream's end actors: the role follows from the name.
            None if get(IS_END_ACTOR).is_some_and(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
            }) =>
            {
                if actor == env.sump || Role::of_actor(&actor) == Role::Sump {
                    Role::Sump
                } else {
                    Role::Sink
                }
            }
            None => Role::Regular,
        };
        if let Some(v) = get(SOCKET_DIR) {
            env.socket_dir = v;
        }
        if let Some(v) = get(SOCKET_NAME) {
            env.socket_name = v;
        }
        if let Some(v) = get(MAX_FRAME_BYTES) {
            env.max_frame_bytes = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                bad(
                    MAX_FRAME_BYTES,
                    format!("expected a positive integer, got {v:?}"),
                )
            })?;
        }
        env.runtime_ready_timeout = dur(RUNTIME_READY_TIMEOUT, env.runtime_ready_timeout)?;
        if let Some(v) = get(CONCURRENCY) {
            env.concurrency = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                bad(
                    CONCURRENCY,
                    format!("expected an integer in 1..=65535, got {v:?}"),
                )
            })?;
        }
        env.actor_timeout = dur(RESILIENCY_ACTOR_TIMEOUT, env.actor_timeout)?;
        env.resiliency_policies = get(RESILIENCY_POLICIES);
        env.resiliency_rules = get(RESILIENCY_RULES);
        env.shutdown_grace = dur(SHUTDOWN_GRACE, env.shutdown_grace)?;
        if let Some(v) = get(METRICS_ADDR) {
            env.metrics_addr = v;
        }
        if let Some(v) = get(LOG_LEVEL) {
            env.log_level = v;
        }
        if let Some(v) = get(LOG_FORMAT) {
            env.log_format = v;
        }
        let r = &mut env.rabbitmq;
        r.url = get(RABBITMQ_URL);
        if let Some(v) = get(RABBITMQ_HOST) {
            r.host = v;
        }
        if let Some(v) = get(RABBITMQ_PORT) {
            r.port = v
                .parse()
                .map_err(|_| bad(RABBITMQ_PORT, format!("expected a port number, got {v:?}")))?;
        }
        if let Some(v) = get(RABBITMQ_VHOST) {
            r.vhost = v;
        }
        if let Some(v) = get(RABBITMQ_USERNAME) {
            r.username = v;
        }
        if let Some(v) = get(RABBITMQ_EXCHANGE) {
            r.exchange = v;
        }
        if let Some(v) = get(RABBITMQ_PREFETCH) {
            r.prefetch = Some(v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                bad(
                    RABBITMQ_PREFETCH,
                    format!("expected an integer in 1..=65535, got {v:?}"),
                )
            })?);
        }
        let s = &mut env.sqs;
        if let Some(v) = get(AWS_REGION) {
            s.region = v;
        }
        s.endpoint = get(SQS_ENDPOINT);
        if let Some(v) = get(SQS_WAIT_TIME_SECONDS) {
            s.wait_time_seconds = v.parse().ok().filter(|n| *n <= 20).ok_or_else(|| {
                bad(
                    SQS_WAIT_TIME_SECONDS,
                    format!("expected whole seconds 0..=20, got {v:?}"),
                )
            })?;
        }
        s.visibility_timeout = dur(SQS_VISIBILITY_TIMEOUT, s.visibility_timeout)?;
        env.s3 = get(S3_BUCKET).map(|bucket| S3Env {
            bucket,
            prefix: get(S3_PREFIX).unwrap_or_default(),
            endpoint: get(S3_ENDPOINT),
        });
        env.gateway_url = get(GATEWAY_URL);
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&'static str, String)]) -> Result<SidecarEnv, EnvError> {
        let map: HashMap<&str, String> = pairs.iter().map(|(k, v)| (*k, v.clone())).collect();
        SidecarEnv::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn only_identity_is_required_and_defaults_are_applied_once() {
        let e = read(&[(ACTOR_NAME, "a".into()), (NAMESPACE, "ns".into())]).expect("reads");
        assert_eq!(e, SidecarEnv::new("a", "ns", TransportKind::RabbitMq));
        assert_eq!(e.queue(), "asya-ns-a");
        let err = read(&[(NAMESPACE, "ns".into())]).unwrap_err();
        assert_eq!(err.var, ACTOR_NAME);
    }

    #[test]
    fn every_name_written_is_a_name_read() {
        let mut e = SidecarEnv::new("x-sink", "ns", TransportKind::Sqs);
        e.s3 = Some(S3Env {
            bucket: "b".into(),
            prefix: "p/".into(),
            endpoint: Some("http://minio".into()),
        });
        e.sqs.endpoint = Some("http://moto".into());
        e.max_frame_bytes = 1;
        e.runtime_ready_timeout = Duration::from_secs(1);
        e.sqs.visibility_timeout = Duration::from_secs(1);
        e.resiliency_policies = Some("{}".into());
        e.resiliency_rules = Some("[]".into());
        e.gateway_url = Some("http://gw:8081".into());
        for (k, _) in e.to_env() {
            assert!(SIDECAR_READS.contains(&k), "{k}");
        }
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,20}"
    }

    #[test]
    fn the_amqp_url_is_the_given_one_or_built_with_encoded_parts() {
        let mut r = SidecarEnv::new("a", "ns", TransportKind::RabbitMq).rabbitmq;
        r.username = "svc user".into();
        r.vhost = "/".into();
        assert_eq!(
            r.amqp_url(Some("p@ss:w/rd")),
            "amqp://svc%20user:p%40ss%3Aw%2Frd@rabbitmq.default.svc.cluster.local:5672/%2F"
        );
        assert!(r.amqp_url(None).contains(":guest@") && r.amqp_url(Some("")).contains(":guest@"));
        r.url = Some("amqp://u:p@h:1/v".into());
        assert_eq!(r.amqp_url(Some("ignored")), "amqp://u:p@h:1/v");
    }

    prop_compose! {
        fn any_env()(
            actor in text(), namespace in text(), sqs in any::<bool>(),
            role in 0u8..3, concurrency in 1u16.., timeout_ms in 0u64..100_000_000,
            grace_s in 0u64..10_000, frame in 1u64.., url in proptest::option::of(text()),
            port in any::<u16>(), prefetch in proptest::option::of(1u16..), wait in 0u32..=20, vis_s in 0u64..50_000,
            endpoint in proptest::option::of(text()), bucket in proptest::option::of(text()),
            policies in proptest::option::of(text()), legacy in any::<bool>(),
            gateway in proptest::option::of(text()),
        ) -> SidecarEnv {
            let mut e = SidecarEnv::new(&actor, &namespace, if sqs { TransportKind::Sqs } else { TransportKind::RabbitMq });
            if legacy {
                e.queue_naming = QueueNaming::Legacy;
            }
            e.role = [Role::Regular, Role::Sink, Role::Sump][role as usize];
            e.concurrency = concurrency;
            e.actor_timeout = Duration::from_millis(timeout_ms);
            e.shutdown_grace = Duration::from_secs(grace_s);
            e.max_frame_bytes = frame;
            e.resiliency_policies = policies;
            e.gateway_url = gateway;
            if sqs {
                e.sqs.endpoint = endpoint;
                e.sqs.wait_time_seconds = wait;
                e.sqs.visibility_timeout = Duration::from_secs(vis_s);
            } else {
                e.rabbitmq.url = url;
                e.rabbitmq.port = port;
                e.rabbitmq.prefetch = prefetch;
            }
            e.s3 = bucket.map(|b| S3Env { bucket: b, prefix: String::new(), endpoint: None });
            e
        }
    }

    proptest! {
        /// What render writes, the sidecar reads back unchanged (for the transport in use).
        #[test]
        fn to_env_then_from_env_is_identity(e in any_env()) {
            let back = read(&e.to_env()).expect("reads");
            let mut want = e.clone();
            // Settings of the other transport are not written: they read back as defaults.
            let fresh = SidecarEnv::new(&e.actor, &e.namespace, e.transport);
            match e.transport {
                TransportKind::Sqs => want.rabbitmq = fresh.rabbitmq.clone(),
                TransportKind::RabbitMq => want.sqs = fresh.sqs.clone(),
            }
            // With a URL, host and port are not written either.
            if want.rabbitmq.url.is_some() {
                want.rabbitmq.port = fresh.rabbitmq.port;
            }
            prop_assert_eq!(back, want);
        }
    }
}
