//! Configuration from `ASYA_*` environment variables (see `docs/sidecar.md`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::SidecarError;
use crate::resiliency::Resiliency;

/// What this sidecar does with the messages of its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Calls the runtime and routes the results.
    Regular,
    /// `x-sink`: persists final envelopes; forwards failed ones to x-sump.
    Sink,
    /// `x-sump`: persists and logs envelopes that fell out of the flow.
    Sump,
}

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    RabbitMq,
    Sqs,
}

/// Everything the sidecar reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub actor: String,
    pub namespace: String,
    pub transport: TransportKind,
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
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SidecarError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads a given environment (tests).
    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, SidecarError> {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let bad = |var: &str, why: String| SidecarError::Config {
            var: var.to_string(),
            reason: why,
        };
        let required = |k: &str| {
            get(k)
                .map(str::to_string)
                .ok_or_else(|| bad(k, "is required".into()))
        };
        let duration = |k: &str, default: &str| {
            let raw = get(k).unwrap_or(default);
            parse_go_duration(raw).map_err(|e| bad(k, e))
        };

        let actor = required("ASYA_ACTOR_NAME")?;
        let namespace = required("ASYA_NAMESPACE")?;
        let transport = match get("ASYA_TRANSPORT").unwrap_or("rabbitmq") {
            "rabbitmq" => TransportKind::RabbitMq,
            "sqs" => TransportKind::Sqs,
            other => {
                return Err(bad(
                    "ASYA_TRANSPORT",
                    format!("{other:?} is not one of rabbitmq, sqs"),
                ));
            }
        };
        let sink = get("ASYA_ACTOR_SINK").unwrap_or("x-sink").to_string();
        let sump = get("ASYA_ACTOR_SUMP").unwrap_or("x-sump").to_string();
        let role = match get("ASYA_ACTOR_ROLE") {
            Some("regular") => Role::Regular,
            Some("sink") => Role::Sink,
            Some("sump") => Role::Sump,
            Some(other) => {
                return Err(bad(
                    "ASYA_ACTOR_ROLE",
                    format!("{other:?} is not one of regular, sink, sump"),
                ));
            }
            None if get("ASYA_IS_END_ACTOR").is_some_and(parse_bool) => {
                // Legacy: the end role follows from the actor's name.
                match actor.as_str() {
                    "x-sump" | "error-end" => Role::Sump,
                    a if a == sump => Role::Sump,
                    _ => Role::Sink,
                }
            }
            None => Role::Regular,
        };
        let concurrency = match get("ASYA_CONCURRENCY") {
            None => 1,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=u16::MAX as usize).contains(n))
                .ok_or_else(|| {
                    bad(
                        "ASYA_CONCURRENCY",
                        format!("{raw:?} is not an integer in 1..=65535"),
                    )
                })?,
        };
        let resiliency = Resiliency::from_json(
            get("ASYA_RESILIENCY_POLICIES"),
            get("ASYA_RESILIENCY_RULES"),
        )
        .map_err(|e| bad("ASYA_RESILIENCY_POLICIES/ASYA_RESILIENCY_RULES", e))?;
        let metrics_addr = get("ASYA_METRICS_ADDR").unwrap_or("0.0.0.0:8080");
        let metrics_addr = parse_addr(metrics_addr).map_err(|e| bad("ASYA_METRICS_ADDR", e))?;
        let max_frame_bytes = match get("ASYA_MAX_FRAME_BYTES") {
            None => 64 << 20,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    bad(
                        "ASYA_MAX_FRAME_BYTES",
                        format!("{raw:?} is not a positive integer"),
                    )
                })?,
        };
        let rabbitmq_url = match get("ASYA_RABBITMQ_URL") {
            Some(url) => url.to_string(),
            None => {
                let host = get("ASYA_RABBITMQ_HOST").unwrap_or("127.0.0.1");
                let port = get("ASYA_RABBITMQ_PORT").unwrap_or("5672");
                port.parse::<u16>()
                    .map_err(|_| bad("ASYA_RABBITMQ_PORT", format!("{port:?} is not a port")))?;
                let vhost = get("ASYA_RABBITMQ_VHOST").unwrap_or("/");
                let user = get("ASYA_RABBITMQ_USERNAME").unwrap_or("guest");
                let pass = get("ASYA_RABBITMQ_PASSWORD").unwrap_or("guest");
                format!(
                    "amqp://{}:{}@{host}:{port}/{}",
                    percent_encode(user),
                    percent_encode(pass),
                    percent_encode(vhost)
                )
            }
        };
        let prefetch = match get("ASYA_RABBITMQ_PREFETCH") {
            None => default_prefetch(concurrency),
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (concurrency..=u16::MAX as usize).contains(n))
                .ok_or_else(|| {
                    bad(
                        "ASYA_RABBITMQ_PREFETCH",
                        format!("{raw:?} is not an integer in {concurrency}..=65535 (at least ASYA_CONCURRENCY)"),
                    )
                })?,
        };
        Ok(Self {
            prefetch,
            actor,
            namespace,
            transport,
            role,
            socket_dir: PathBuf::from(get("ASYA_SOCKET_DIR").unwrap_or("/var/run/asya")),
            socket_name: get("ASYA_SOCKET_NAME")
                .unwrap_or("asya-runtime.sock")
                .to_string(),
            sink,
            sump,
            concurrency,
            actor_timeout: duration("ASYA_RESILIENCY_ACTOR_TIMEOUT", "5m")?,
            resiliency,
            shutdown_grace: duration("ASYA_SHUTDOWN_GRACE", "25s")?,
            runtime_ready_timeout: duration("ASYA_RUNTIME_READY_TIMEOUT", "5m")?,
            metrics_addr,
            log_level: get("ASYA_LOG_LEVEL").unwrap_or("info").to_string(),
            log_format: get("ASYA_LOG_FORMAT").unwrap_or("json").to_string(),
            max_frame_bytes,
            rabbitmq_url,
            rabbitmq_exchange: get("ASYA_RABBITMQ_EXCHANGE").unwrap_or("asya").to_string(),
            visibility_timeout: duration("ASYA_SQS_VISIBILITY_TIMEOUT", "30s")?,
        })
    }

    /// How many deliveries may await their results' confirms at once.
    pub fn pipeline_depth(&self) -> usize {
        (self.prefetch - self.concurrency.min(self.prefetch)).max(1)
    }

    /// The queue this sidecar consumes.
    pub fn queue(&self) -> String {
        asya_transport::naming::queue_name(&self.namespace, &self.actor)
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

fn parse_bool(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
}

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

/// Parses a Go duration: `300ms`, `1.5s`, `5m`, `1h30m`; a bare `0` is zero.
pub fn parse_go_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("{raw:?} is not a duration like 30s, 5m, 1h30m"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{raw:?}: bad number {:?}", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{raw:?}: missing unit (ms, s, m, h)")),
            u => return Err(format!("{raw:?}: unknown unit {u:?}")),
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("{raw:?}: {e}"))
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
        assert_eq!(c.rabbitmq_url, "amqp://guest:guest@127.0.0.1:5672/%2F");
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
