//! The write-avoidance cache: per actor, a fingerprint of the apply bodies
//! last sent and the [`live_version`] of each child right after. When both
//! still match, a pass reads (from the watch caches) instead of applying, so
//! a resync of an unchanged actor writes nothing.
//!
//! Contract: only ever a hint. A missing entry means "apply and prune"; a
//! stale one costs one extra read, because the live versions are compared
//! before anything is skipped. The entry of a deleted actor is removed by
//! its cleanup ([`Written::forget`]); the map lives as long as the process.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use serde_json::Value;

use crate::apply::ObjectKey;
use crate::error::Result;
use crate::observe::read_error;
use crate::reconcile::Context;

/// What was last applied for one actor (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedFingerprint {
    pub bodies: u64,
    pub versions: Vec<(ObjectKey, String)>,
    /// The ApplySet id and sorted object keys the last prune kept. A re-apply
    /// of the same set needs no prune: anything outside it was pruned then.
    pub pruned: (String, Vec<ObjectKey>),
}

/// The cache itself, keyed by actor uid.
#[derive(Default)]
pub struct Written {
    by_uid: Mutex<HashMap<String, AppliedFingerprint>>,
}

impl Written {
    pub fn get(&self, uid: &str) -> Option<AppliedFingerprint> {
        self.by_uid.lock().ok().and_then(|m| m.get(uid).cloned())
    }

    pub fn remember(&self, uid: String, applied: AppliedFingerprint) {
        if let Ok(mut m) = self.by_uid.lock() {
            m.insert(uid, applied);
        }
    }

    /// Called when the actor is deleted: its entry is never needed again.
    pub fn forget(&self, uid: &str) {
        if let Ok(mut m) = self.by_uid.lock() {
            m.remove(uid);
        }
    }

    /// Entries held (for tests of [`Written::forget`]).
    pub fn len(&self) -> usize {
        self.by_uid.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn fingerprint(objects: &[Value], owner: &OwnerReference) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for o in objects {
        o.to_string().hash(&mut h);
    }
    owner.uid.hash(&mut h);
    h.finish()
}

/// What must stay the same for a child to count as untouched since our apply:
/// `metadata.generation` (bumped by spec edits, not by status updates such as
/// the Deployment controller's), the values of the labels and annotations the
/// render sets (`rendered`; others' keys, such as the Deployment controller's
/// `deployment.kubernetes.io/revision`, are not ours and not drift) and the
/// owner references. Kinds without a generation fall back to the resourceVersion.
pub fn live_version(obj: &DynamicObject, rendered: Option<&Value>) -> String {
    let ours = |field: &str, live: &std::collections::BTreeMap<String, String>| {
        rendered
            .and_then(|r| r.pointer(&format!("/metadata/{field}")))
            .and_then(Value::as_object)
            .map(|m| {
                m.keys()
                    .map(|k| (k.clone(), live.get(k).cloned()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    match obj.metadata.generation {
        Some(g) => format!(
            "g{g}|{:?}|{:?}|{:?}",
            ours("labels", obj.labels()),
            ours("annotations", obj.annotations()),
            obj.metadata
                .owner_references
                .as_ref()
                .map(|o| o.iter().map(|r| r.uid.clone()).collect::<Vec<_>>())
        ),
        None => format!("rv{}", obj.resource_version().unwrap_or_default()),
    }
}

/// Reads the children; returns them if every one still has the
/// resourceVersion the last apply left, `None` if any changed or vanished.
pub async fn read_if_unchanged(
    namespace: &str,
    f: &AppliedFingerprint,
    rendered: &[Value],
    ctx: &Context,
) -> Result<Option<HashMap<String, Value>>> {
    let mut live = HashMap::new();
    for (key, version) in &f.versions {
        let body = rendered_object(rendered, key);
        if let Some(cached) = ctx
            .caches
            .as_ref()
            .and_then(|c| c.get(&key.api_version, &key.kind, namespace, &key.name))
        {
            let Some(obj) = cached else {
                return Ok(None);
            };
            if live_version(&obj, body) != *version {
                return Ok(None);
            }
            if let Ok(v) = serde_json::to_value(obj.as_ref()) {
                live.insert(key.kind.clone(), v);
            }
            continue;
        }
        let ar = ctx
            .kinds
            .resolve(&ctx.client, &key.api_version, &key.kind)
            .await
            .map_err(|e| read_error(key, e))?;
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &ar);
        let Some(obj) = api
            .get_opt(&key.name)
            .await
            .map_err(|e| read_error(key, e))?
        else {
            return Ok(None);
        };
        if live_version(&obj, body) != *version {
            return Ok(None);
        }
        if let Ok(v) = serde_json::to_value(&obj) {
            live.insert(key.kind.clone(), v);
        }
    }
    Ok(Some(live))
}

/// The rendered object with `key` (the fingerprint matched, so it is the one applied).
pub fn rendered_object<'a>(rendered: &'a [Value], key: &ObjectKey) -> Option<&'a Value> {
    rendered
        .iter()
        .find(|o| crate::apply::object_key(o).is_ok_and(|k| k == *key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(annotations: Value, generation: i64) -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "generation": generation, "labels": {"app": "a"},
                         "annotations": annotations}}))
        .expect("object")
    }

    #[test]
    fn only_what_the_render_sets_counts_as_drift() {
        let rendered = json!({"metadata": {"name": "a", "labels": {"app": "a"},
                                           "annotations": {"asya.sh/x": "1"}}});
        let applied = live_version(&live(json!({"asya.sh/x": "1"}), 1), Some(&rendered));
        // The Deployment controller's annotation is not ours.
        let revised = live(
            json!({"asya.sh/x": "1", "deployment.kubernetes.io/revision": "1"}),
            1,
        );
        assert_eq!(live_version(&revised, Some(&rendered)), applied);
        // Our annotation edited, or the spec edited: drift.
        assert_ne!(
            live_version(&live(json!({"asya.sh/x": "2"}), 1), Some(&rendered)),
            applied
        );
        assert_ne!(
            live_version(&live(json!({"asya.sh/x": "1"}), 2), Some(&rendered)),
            applied
        );
    }
}
