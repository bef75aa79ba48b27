//! The actor's queue: its name, and the `queue` section the queue-object templates read
//! (who provisions it, deletion, tags, SQS attributes).

use serde_json::{Value, json};

use super::context::Inputs;
use super::{s, string_map};
use crate::api::platform::{DeletionPolicy, Provisioner};
use crate::validate::parse_duration;

/// `asya-<namespace>-<actor>` (the contract's naming, shared with the sidecar).
pub use asya_contract::queue_name;

pub(super) fn queue_context(inp: &Inputs<'_>) -> Value {
    let platform = inp.platform;
    let cfg = inp.cfg;
    let visibility = cfg
        .visibility_timeout
        .as_deref()
        .and_then(parse_duration)
        .map(|v| v as i64)
        .unwrap_or(30);
    let mut tags = string_map(&platform.queue.tags);
    tags.insert("asya.sh/namespace".into(), s(inp.namespace));
    tags.insert("asya.sh/actor".into(), s(&inp.actor));
    json!({
        "provisioner": match platform.queue.provisioner {
            Provisioner::Controller => "controller",
            Provisioner::MessagingTopologyOperator => "messaging-topology-operator",
            Provisioner::Ack => "ack",
            Provisioner::Crossplane => "crossplane",
        },
        "delete": platform.queue.deletion_policy == DeletionPolicy::Delete,
        "provider_config": platform.queue.provider_config,
        "tags": Value::Object(tags),
        "visibility_timeout_seconds": visibility,
        "retention_seconds": 345600,
        "wait_time_seconds": cfg.wait_time_seconds.unwrap_or(20),
    })
}
