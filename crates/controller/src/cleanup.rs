//! The finalizer's cleanup: the queue (per the transport's deletion policy)
//! and the actor's entry in the write-avoidance cache.

use kube::ResourceExt;
use kube::runtime::controller::Action;

use crate::crd::AsyncActor;
use crate::error::{Error, Result};
use crate::queue::DeletionPolicy;
use crate::reconcile::{Context, render_actor};

/// On deletion: delete the queue when the transport's policy says Delete.
pub async fn cleanup_actor(actor: &AsyncActor, ctx: &Context) -> Result<Action> {
    // The write-avoidance memory of a deleted actor is never needed again.
    if let Some(uid) = actor.uid() {
        ctx.applied.forget(&uid);
    }
    let (transport, queue) = match render_actor(actor, ctx) {
        Ok(r) => (r.transport_name, r.queue_name),
        Err(_) => {
            // The spec no longer renders (e.g. its flavor is gone): fall back to what status recorded.
            let recorded = actor
                .status
                .as_ref()
                .and_then(|s| Some((s.transport.clone()?, s.queue_name.clone()?)));
            match recorded {
                Some(tq) => tq,
                None => {
                    tracing::warn!(actor = %actor.name_any(), "deleted actor never got a queue recorded; nothing to delete");
                    return Ok(Action::await_change());
                }
            }
        }
    };
    match ctx.queues.get(&transport) {
        Some((driver, DeletionPolicy::Delete)) => {
            driver.delete(&queue).await.map_err(|source| Error::Queue {
                transport: transport.clone(),
                source,
            })?;
            tracing::info!(actor = %actor.name_any(), %queue, "queue deleted");
        }
        Some((_, DeletionPolicy::Retain)) => {
            tracing::info!(actor = %actor.name_any(), %queue, "queue retained (policy Retain)")
        }
        None => {
            tracing::warn!(actor = %actor.name_any(), %transport, "no queue driver; queue left alone")
        }
    }
    Ok(Action::await_change())
}
