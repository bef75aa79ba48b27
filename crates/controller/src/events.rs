//! Event de-duplication: a Warning Event per failure, not per retry.

use asya_render::api::status::AsyncActorStatus;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use crate::crd::AsyncActor;
use crate::reconcile::Context;

/// Publishes a Warning Event for each condition that is False in `new` with
/// a reason or message it did not have in `previous`, so a failure retried
/// with backoff yields one Event, not one per retry.
pub async fn publish_new_failures(
    actor: &AsyncActor,
    previous: Option<&AsyncActorStatus>,
    new: &AsyncActorStatus,
    ctx: &Context,
) {
    let before = previous
        .map(|p| p.conditions.as_slice())
        .unwrap_or_default();
    for c in new.conditions.iter().filter(|c| c.status == "False") {
        let seen = before.iter().any(|b| {
            b.type_ == c.type_
                && b.status == c.status
                && b.reason == c.reason
                && b.message == c.message
        });
        if seen {
            continue;
        }
        let event = Event {
            type_: EventType::Warning,
            reason: if c.reason.is_empty() {
                "Failed".to_owned()
            } else {
                c.reason.clone()
            },
            note: Some(c.message.clone()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &actor.object_ref(&())).await {
            tracing::warn!(actor = %actor.name_any(), error = %e, "could not publish event");
        }
    }
}
