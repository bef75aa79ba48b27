//! The sidecar contract, in one place: what `asya render` writes into the `asya-sidecar`
//! container's environment and what the sidecar reads back. Render and the sidecar both
//! depend on this crate and on nothing of each other.
//!
//! - [`env`]: every `ASYA_*` name, and [`SidecarEnv`], the resolved settings with
//!   [`SidecarEnv::to_env`] (render) and [`SidecarEnv::from_env`] (sidecar). Defaults are
//!   applied once, in [`SidecarEnv::from_env`]; none of its fields is optional unless
//!   "absent" is a meaning of its own.
//! - [`duration`]: Go-style durations (`300ms`, `1.5s`, `1h30m`), one parser for all.
//! - [`queue_name`] and [`TransportKind`].

pub mod duration;
pub mod env;

pub use env::{Role, SidecarEnv};

/// The queue of `actor` in `namespace`: `asya-<namespace>-<actor>`.
pub fn queue_name(namespace: &str, actor: &str) -> String {
    format!("asya-{namespace}-{actor}")
}

/// Which broker an actor's queue lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    RabbitMq,
    Sqs,
}

impl TransportKind {
    /// The name in `ASYA_TRANSPORT` and the platform's `transports.<name>.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::RabbitMq => "rabbitmq",
            TransportKind::Sqs => "sqs",
        }
    }
}

impl std::str::FromStr for TransportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rabbitmq" => Ok(TransportKind::RabbitMq),
            "sqs" => Ok(TransportKind::Sqs),
            other => Err(format!("expected rabbitmq or sqs, got {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_carry_the_namespace() {
        assert_eq!(queue_name("prod", "x-sink"), "asya-prod-x-sink");
    }

    #[test]
    fn transport_kinds_round_trip() {
        for k in [TransportKind::RabbitMq, TransportKind::Sqs] {
            assert_eq!(k.as_str().parse::<TransportKind>(), Ok(k));
        }
        assert!("kafka".parse::<TransportKind>().is_err());
    }
}
