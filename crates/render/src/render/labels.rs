//! The labels every rendered object carries, and the ApplySet the actor's objects belong to.

use std::collections::BTreeMap;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::api::ActorDocument;
use crate::api::platform::Platform;

/// Label that makes every rendered object a member of the actor's ApplySet.
pub const APPLYSET_PART_OF: &str = "applyset.kubernetes.io/part-of";

/// ApplySet id of an AsyncActor per the ApplySet KEP:
/// `applyset-<base64url(sha256(<name>.<namespace>.AsyncActor.asya.sh))>-v1`.
pub fn applyset_id(name: &str, namespace: &str) -> String {
    let digest =
        Sha256::digest(format!("{name}.{namespace}.AsyncActor.{}", crate::api::GROUP).as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// User labels (not `app.kubernetes.io/*`), then platform extras, then ours, which win.
pub(super) fn actor_labels(
    doc: &ActorDocument,
    platform: &Platform,
    actor: &str,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = doc
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("app.kubernetes.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(platform.labels.clone());
    labels.insert("app.kubernetes.io/name".into(), actor.to_string());
    labels.insert("app.kubernetes.io/part-of".into(), "asya".into());
    labels.insert("app.kubernetes.io/managed-by".into(), "asya".into());
    labels.insert("asya.sh/actor".into(), actor.to_string());
    labels
}

/// `app.kubernetes.io/component` of an object kind; `None` for a kind Asya never renders.
pub(super) fn component_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment" | "StatefulSet" => "actor",
        "ScaledObject" => "scaledobject",
        "TriggerAuthentication" => "triggerauthentication",
        "ServiceAccount" => "serviceaccount",
        "Queue" => "queue",
        _ => return None,
    })
}
