//! SQS settings, from the contract's `ASYA_*` variables or set directly.

use asya_contract::QueueNaming;
use asya_contract::env as names;
use std::time::Duration;

use crate::TransportError;

/// SQS's own cap on `DelaySeconds`.
pub const SQS_MAX_DELAY: Duration = Duration::from_secs(900);
/// SQS's cap on a message's visibility timeout (12 h).
pub const SQS_MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// Messages per `ReceiveMessage` call cannot exceed 10.
pub const SQS_MAX_BATCH: i32 = 10;

/// How the SQS transport talks to SQS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsConfig {
    /// AWS region (`ASYA_AWS_REGION`, default `us-east-1`).
    pub region: String,
    /// Endpoint override for emulators (`ASYA_SQS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Long-polling wait per `ReceiveMessage` (`ASYA_SQS_WAIT_TIME_SECONDS`,
    /// default 20 s, at most 20 s).
    pub wait_time: Duration,
    /// Visibility timeout given to every received message
    /// (`ASYA_SQS_VISIBILITY_TIMEOUT`, default 30 s); the sidecar extends it
    /// while a handler runs.
    pub visibility_timeout: Duration,
    /// Messages fetched per `ReceiveMessage` (1..=10; the sidecar's
    /// `ASYA_CONCURRENCY`, capped at 10).
    pub batch_size: i32,
    /// Longest delay of one hop. Longer delays are chained through the queue
    /// (see [`super::delay`]). SQS's 900 s; tests lower it.
    pub max_hop_delay: Duration,
    /// How actor names map to queue names (`ASYA_QUEUE_NAMING`).
    pub naming: QueueNaming,
}

impl SqsConfig {
    /// Defaults for `region`, optionally against an emulator at `endpoint`.
    pub fn new(region: impl Into<String>, endpoint: Option<String>) -> Self {
        Self {
            region: region.into(),
            endpoint,
            wait_time: Duration::from_secs(20),
            visibility_timeout: Duration::from_secs(30),
            batch_size: 1,
            max_hop_delay: SQS_MAX_DELAY,
            naming: QueueNaming::Namespaced,
        }
    }

    /// Reads the contract's variables; missing ones take their defaults,
    /// malformed ones are an error naming the variable.
    pub fn from_env() -> Result<Self, TransportError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any variable source (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, TransportError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let region = var(names::AWS_REGION).unwrap_or_else(|| names::defaults::AWS_REGION.into());
        let mut config = Self::new(region, var(names::SQS_ENDPOINT));
        if let Some(raw) = var(names::QUEUE_NAMING) {
            config.naming = raw.trim().parse().map_err(|why| {
                TransportError::Config(format!("{}={raw:?}: {why}", names::QUEUE_NAMING))
            })?;
        }
        if let Some(raw) = var(names::SQS_WAIT_TIME_SECONDS) {
            let secs: u64 = raw.trim().parse().map_err(|_| {
                TransportError::Config(format!(
                    "ASYA_SQS_WAIT_TIME_SECONDS={raw:?} is not a whole number of seconds"
                ))
            })?;
            config.wait_time = Duration::from_secs(secs);
        }
        if let Some(raw) = var(names::SQS_VISIBILITY_TIMEOUT) {
            config.visibility_timeout = parse_duration(&raw).map_err(|why| {
                TransportError::Config(format!("ASYA_SQS_VISIBILITY_TIMEOUT={raw:?}: {why}"))
            })?;
        }
        if let Some(raw) = var(names::CONCURRENCY) {
            let n: u32 = raw.trim().parse().map_err(|_| {
                TransportError::Config(format!(
                    "ASYA_CONCURRENCY={raw:?} is not a positive whole number"
                ))
            })?;
            config.batch_size = i32::try_from(n)
                .unwrap_or(SQS_MAX_BATCH)
                .clamp(1, SQS_MAX_BATCH);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values against SQS's limits.
    pub fn validate(&self) -> Result<(), TransportError> {
        if self.region.trim().is_empty() {
            return Err(TransportError::Config("AWS region is empty".into()));
        }
        if self.wait_time > Duration::from_secs(20) {
            return Err(TransportError::Config(format!(
                "SQS long-polling wait {:?} exceeds SQS's 20 s maximum",
                self.wait_time
            )));
        }
        if self.visibility_timeout < Duration::from_secs(1)
            || self.visibility_timeout > SQS_MAX_VISIBILITY
        {
            return Err(TransportError::Config(format!(
                "SQS visibility timeout {:?} must be between 1 s and 12 h",
                self.visibility_timeout
            )));
        }
        if !(1..=SQS_MAX_BATCH).contains(&self.batch_size) {
            return Err(TransportError::Config(format!(
                "SQS receive batch size {} must be between 1 and 10",
                self.batch_size
            )));
        }
        if self.max_hop_delay < Duration::from_secs(1) || self.max_hop_delay > SQS_MAX_DELAY {
            return Err(TransportError::Config(format!(
                "SQS hop delay cap {:?} must be between 1 s and 900 s",
                self.max_hop_delay
            )));
        }
        Ok(())
    }
}

/// Whole seconds for an SQS API field, rounded up so that a delay or timeout
/// is never shorter than asked.
pub(crate) fn ceil_secs(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Parses a Go-style duration (`30s`, `1m30s`, `250ms`): the contract's parser, the one
/// render validates with.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    asya_contract::duration::parse(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = SqsConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.endpoint, None);
        assert_eq!(c.wait_time, Duration::from_secs(20));
        assert_eq!(c.visibility_timeout, Duration::from_secs(30));
        assert_eq!(c.batch_size, 1);
        assert_eq!(c.max_hop_delay, Duration::from_secs(900));
    }

    #[test]
    fn contract_variables_are_read() {
        let c = SqsConfig::from_lookup(lookup(&[
            ("ASYA_AWS_REGION", "eu-west-1"),
            ("ASYA_SQS_ENDPOINT", "http://127.0.0.1:5055"),
            ("ASYA_SQS_WAIT_TIME_SECONDS", "5"),
            ("ASYA_SQS_VISIBILITY_TIMEOUT", "1m30s"),
            ("ASYA_CONCURRENCY", "32"),
        ]))
        .unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:5055"));
        assert_eq!(c.wait_time, Duration::from_secs(5));
        assert_eq!(c.visibility_timeout, Duration::from_secs(90));
        assert_eq!(c.batch_size, 10, "batch is capped at SQS's 10");
    }

    #[test]
    fn malformed_variables_name_themselves() {
        let err = SqsConfig::from_lookup(lookup(&[("ASYA_SQS_VISIBILITY_TIMEOUT", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ASYA_SQS_VISIBILITY_TIMEOUT"), "{err}");
        let err = SqsConfig::from_lookup(lookup(&[("ASYA_SQS_WAIT_TIME_SECONDS", "60")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("20 s"), "{err}");
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        // One parser for render and readers: a number needs its unit (render writes one).
        assert!(parse_duration("45").is_err());
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2500)), 3);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
