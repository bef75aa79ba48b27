//! The apply and prune steps, skipped when the write-avoidance cache
//! ([`crate::written`]) shows nothing changed since the last apply.

use std::collections::HashMap;

use kube::ResourceExt;
use serde_json::Value;

use crate::apply::{self, ObjectKey};
use crate::crd::AsyncActor;
use crate::error::Result;
use crate::reconcile::{Context, owner_reference};
use crate::render::RenderedActor;
use crate::written::{
    AppliedFingerprint, fingerprint, live_version, read_if_unchanged, rendered_object,
};

/// Applies the render (and prunes what it dropped) unless the children are
/// as the last apply left them; returns the live children by kind (the
/// apply responses, or the cached objects).
pub async fn apply_unless_unchanged(
    actor: &AsyncActor,
    rendered: &RenderedActor,
    keys: &[ObjectKey],
    namespace: &str,
    ctx: &Context,
) -> Result<HashMap<String, Value>> {
    let mut live: HashMap<String, Value> = HashMap::new();
    let owner = owner_reference(actor)?;
    let uid = actor.uid().unwrap_or_default();
    let fingerprint = fingerprint(&rendered.objects, &owner);
    let remembered = ctx.applied.get(&uid);
    let mut kept = keys.to_vec();
    kept.sort();
    let kept = (rendered.applyset_id.clone(), kept);
    let prune_needed = remembered.as_ref().is_none_or(|f| f.pruned != kept);
    let unchanged = match remembered {
        Some(f) if f.bodies == fingerprint => {
            read_if_unchanged(namespace, &f, &rendered.objects, ctx).await?
        }
        _ => None,
    };
    match unchanged {
        Some(objects) => live = objects,
        None => {
            let applied = apply::apply_all(
                &ctx.client,
                &ctx.kinds,
                namespace,
                &rendered.objects,
                &owner,
                false,
            )
            .await?;
            let pruned = if prune_needed {
                apply::prune(
                    &ctx.client,
                    &ctx.kinds,
                    ctx.caches.as_ref(),
                    namespace,
                    &rendered.applyset_id,
                    &uid,
                    keys,
                )
                .await?
            } else {
                Vec::new()
            };
            for p in pruned {
                tracing::info!(actor = %actor.name_any(), kind = %p.kind, name = %p.name, "pruned");
            }
            let versions = applied
                .iter()
                .map(|a| {
                    let body = rendered_object(&rendered.objects, &a.key);
                    (a.key.clone(), live_version(&a.object, body))
                })
                .collect();
            ctx.applied.remember(
                uid,
                AppliedFingerprint {
                    bodies: fingerprint,
                    versions,
                    pruned: kept,
                },
            );
            for a in applied {
                if let Ok(v) = serde_json::to_value(&a.object) {
                    live.insert(a.key.kind.clone(), v);
                }
            }
        }
    }
    Ok(live)
}
