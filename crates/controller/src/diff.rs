//! `asya diff`: what applying the render would change in the cluster.
//!
//! Each rendered object goes to the API server as a server-side apply with
//! `dryRun=All`, exactly as the controller would send it (same field manager,
//! owner reference when the actor exists). The dry-run result is compared with
//! the live object, both stripped of fields the server maintains, so the diff
//! shows what the server would really store — defaults and other managers'
//! fields included — not a textual diff of YAML.

use std::fmt::Write as _;

use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;

use crate::apply::{self, APPLYSET_LABEL, ObjectKey};
use crate::crd::{AsyncActor, AsyncActorSpec};
use crate::error::{Error, Result};
use crate::render::RenderedActor;
use crate::resources::{self, Kinds};

/// What would happen to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Create,
    /// JSON-patch style lines: `replace /spec/x: old -> new`.
    Update(Vec<String>),
    Unchanged,
    /// In the ApplySet, owned by the actor, but no longer rendered.
    Prune,
}

/// One object's diff.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDiff {
    pub namespace: String,
    pub key: ObjectKey,
    pub change: Change,
}

/// Diffs one rendered actor against the cluster.
pub async fn diff_actor(
    client: &Client,
    namespace: &str,
    rendered: &RenderedActor,
) -> Result<Vec<ObjectDiff>> {
    let actors: Api<AsyncActor> = Api::namespaced(client.clone(), namespace);
    let live_actor = actors.get_opt(&rendered.name).await?;
    // A not-yet-created actor has no uid; the dry run only needs a syntactically valid one.
    let owner_of = live_actor.clone().unwrap_or_else(|| {
        let mut a = AsyncActor::new(&rendered.name, AsyncActorSpec::default());
        a.metadata.uid = Some("00000000-0000-0000-0000-000000000000".into());
        a
    });
    let owner = owner_of
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Finalizer(format!("actor {} has no uid", rendered.name)))?;
    let kinds = Kinds::default();
    let applied =
        apply::apply_all(client, &kinds, namespace, &rendered.objects, &owner, true).await?;
    let mut out = Vec::new();
    for a in &applied {
        let ar = kinds
            .resolve(client, &a.key.api_version, &a.key.kind)
            .await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        let change = match api.get_opt(&a.key.name).await? {
            None => Change::Create,
            Some(live) => {
                let before = comparable(&serde_json::to_value(&live).unwrap_or_default());
                let after = comparable(&serde_json::to_value(&a.object).unwrap_or_default());
                let lines = changes(&before, &after);
                if lines.is_empty() {
                    Change::Unchanged
                } else {
                    Change::Update(lines)
                }
            }
        };
        out.push(ObjectDiff {
            namespace: namespace.to_owned(),
            key: a.key.clone(),
            change,
        });
    }
    if let Some(actor) = live_actor {
        let uid = actor.uid().unwrap_or_default();
        let selector = format!("{APPLYSET_LABEL}={}", rendered.applyset_id);
        for ar in resources::prunable() {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
            let Ok(list) = api
                .list_metadata(&ListParams::default().labels(&selector))
                .await
            else {
                continue;
            };
            for item in list.items {
                let name = item.name_any();
                let rendered_here = applied
                    .iter()
                    .any(|a| a.key.kind == ar.kind && a.key.name == name);
                if !rendered_here && item.owner_references().iter().any(|o| o.uid == uid) {
                    let key = ObjectKey {
                        api_version: ar.api_version.clone(),
                        kind: ar.kind.clone(),
                        name,
                    };
                    out.push(ObjectDiff {
                        namespace: namespace.to_owned(),
                        key,
                        change: Change::Prune,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Drops what the server maintains and what never comes from a render.
fn comparable(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            ann.remove("deployment.kubernetes.io/revision");
            if ann.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// Human-readable changes from `before` to `after`, one line each, sorted by path.
pub fn changes(before: &Value, after: &Value) -> Vec<String> {
    let patch = json_patch::diff(before, after);
    let mut lines: Vec<String> = patch
        .0
        .iter()
        .map(|op| match op {
            json_patch::PatchOperation::Add(a) => format!("+ {}: {}", a.path, a.value),
            json_patch::PatchOperation::Remove(r) => {
                let old = before
                    .pointer(r.path.as_str())
                    .cloned()
                    .unwrap_or(Value::Null);
                format!("- {}: {old}", r.path)
            }
            json_patch::PatchOperation::Replace(r) => {
                let old = before
                    .pointer(r.path.as_str())
                    .cloned()
                    .unwrap_or(Value::Null);
                format!("~ {}: {old} -> {}", r.path, r.value)
            }
            other => format!("? {other:?}"),
        })
        .collect();
    lines.sort();
    lines
}

/// Renders diffs as text; returns the text and whether anything would change.
pub fn format(diffs: &[ObjectDiff]) -> (String, bool) {
    let mut out = String::new();
    let mut changed = false;
    for d in diffs {
        let what = format!("{} {}/{}", d.key.kind, d.namespace, d.key.name);
        match &d.change {
            Change::Unchanged => {
                let _ = writeln!(out, "= {what} (unchanged)");
            }
            Change::Create => {
                changed = true;
                let _ = writeln!(out, "+ {what} (create)");
            }
            Change::Prune => {
                changed = true;
                let _ = writeln!(out, "- {what} (prune)");
            }
            Change::Update(lines) => {
                changed = true;
                let _ = writeln!(out, "~ {what} (update)");
                for l in lines {
                    let _ = writeln!(out, "    {l}");
                }
            }
        }
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_name_the_path_and_both_values() {
        let before = json!({"spec": {"image": "a", "gone": 1}});
        let after = json!({"spec": {"image": "b", "new": true}});
        let lines = changes(&before, &after);
        assert_eq!(
            lines,
            vec![
                "+ /spec/new: true",
                "- /spec/gone: 1",
                "~ /spec/image: \"a\" -> \"b\""
            ]
        );
    }

    #[test]
    fn server_maintained_fields_are_not_differences() {
        let live = json!({"metadata": {"name": "a", "resourceVersion": "1", "managedFields": []}, "status": {"x": 1}});
        let dry = json!({"metadata": {"name": "a", "resourceVersion": "2"}});
        assert!(changes(&comparable(&live), &comparable(&dry)).is_empty());
    }
}
