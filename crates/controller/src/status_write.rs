//! The status step: build the typed status and write it when it changed.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::crd::AsyncActor;
use crate::error::Result;
use crate::reconcile::{Context, STATUS_FIELD_MANAGER};
use crate::status::{self, Outcome};

/// Writes the status only when it differs from the stored one: a server-side
/// apply of the typed status under [`STATUS_FIELD_MANAGER`], so the server
/// drops what this manager wrote before and the new status lacks.
pub async fn write_status(actor: &AsyncActor, outcome: &Outcome, ctx: &Context) -> Result<()> {
    let previous = actor.status.as_ref();
    let previous_json = previous.map(serde_json::to_value).transpose()?;
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now());
    let new = status::build_typed(
        outcome,
        actor.metadata.generation,
        previous_json.as_ref(),
        &now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )?;
    if previous == Some(&new) {
        return Ok(());
    }
    crate::events::publish_new_failures(actor, previous, &new, ctx).await;
    let api: Api<AsyncActor> =
        Api::namespaced(ctx.client.clone(), &actor.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": AsyncActor::api_version(&()),
        "kind": AsyncActor::kind(&()),
        "status": new,
    });
    api.patch_status(
        &actor.name_any(),
        &PatchParams::apply(STATUS_FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    ctx.metrics.status_writes.inc();
    Ok(())
}
