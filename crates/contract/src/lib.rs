//! The sidecar contract, in one place: what `asya render` writes into the `asya-sidecar`
//! container's environment and what the sidecar reads back. Render and the sidecar both
//! depend on this crate and on nothing of each other.
//!
//! - [`env`]: every `ASYA_*` name, and [`SidecarEnv`], the resolved settings with
//!   [`SidecarEnv::to_env`] (render) and [`SidecarEnv::from_env`] (sidecar). Defaults are
//!   applied once, in [`SidecarEnv::from_env`]; none of its fields is optional unless
//!   "absent" is a meaning of its own.
//! - [`duration`]: Go-style durations (`300ms`, `1.5s`, `1h30m`), one parser for all.
//! - [`headers`]: envelope headers (and the `status.deadline_at` field) shared by the
//!   gateway and the sidecar.
//! - [`queue_name`], [`QueueNaming`] and [`TransportKind`].

pub mod duration;
pub mod env;
pub mod headers;

pub use env::{Role, SidecarEnv};

/// The queue of `actor` in `namespace`: `asya-<namespace>-<actor>` (the default
/// [`QueueNaming::Namespaced`] scheme).
pub fn queue_name(namespace: &str, actor: &str) -> String {
    format!("asya-{namespace}-{actor}")
}

/// How queue names are built: the platform's `queue.naming`, written into the sidecar's
/// `ASYA_QUEUE_NAMING` so render, the controller and every sidecar agree.
///
/// `Legacy` (`asya-<actor>`) is upstream's scheme: a migrating cluster keeps the queues its
/// producers already write to, at the price that two namespaces cannot both have an actor
/// of the same name on one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QueueNaming {
    /// `asya-<namespace>-<actor>`.
    #[default]
    Namespaced,
    /// `asya-<actor>` (upstream Asya before namespaced queues).
    Legacy,
}

impl QueueNaming {
    /// The queue of `actor` in `namespace` under this scheme.
    pub fn queue(self, namespace: &str, actor: &str) -> String {
        match self {
            QueueNaming::Namespaced => queue_name(namespace, actor),
            QueueNaming::Legacy => format!("asya-{actor}"),
        }
    }

    /// The name in `ASYA_QUEUE_NAMING` and the platform's `queue.naming`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueNaming::Namespaced => "namespaced",
            QueueNaming::Legacy => "legacy",
        }
    }
}

impl std::str::FromStr for QueueNaming {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "namespaced" => Ok(QueueNaming::Namespaced),
            "legacy" => Ok(QueueNaming::Legacy),
            other => Err(format!("expected namespaced or legacy, got {other:?}")),
        }
    }
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
    fn legacy_naming_drops_the_namespace() {
        assert_eq!(QueueNaming::Legacy.queue("prod", "echo"), "asya-echo");
        assert_eq!(
            QueueNaming::Namespaced.queue("prod", "echo"),
            queue_name("prod", "echo")
        );
        for n in [QueueNaming::Namespaced, QueueNaming::Legacy] {
            assert_eq!(n.as_str().parse::<QueueNaming>(), Ok(n));
        }
        assert!("flat".parse::<QueueNaming>().is_err());
    }

    #[test]
    fn transport_kinds_round_trip() {
        for k in [TransportKind::RabbitMq, TransportKind::Sqs] {
            assert_eq!(k.as_str().parse::<TransportKind>(), Ok(k));
        }
        assert!("kafka".parse::<TransportKind>().is_err());
    }
}
