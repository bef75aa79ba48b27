//! One reconcile of one AsyncActor, as a sequence: render → apply and
//! prune ([`crate::children`], skipped when [`crate::written`] shows nothing
//! changed) → queue ([`crate::queue::ensure`]) → observe
//! ([`crate::observe`], [`crate::secrets`]) → status
//! ([`crate::status_write`], Events de-duplicated by [`crate::events`]).
//! Deletion runs [`crate::cleanup`] under the finalizer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;

use crate::apply::{self, ObjectKey};
use crate::crd::{AsyncActor, Flavor};
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::metrics::Metrics;
use crate::queue::QueueDrivers;
use crate::render::{RenderedActor, Renderer};
use crate::resources::Kinds;
use crate::status::{Outcome, RenderSummary};

/// Finalizer that guards queue deletion.
pub const FINALIZER: &str = "asya.sh/queue";
/// Annotation that hands applying to GitOps.
pub const RENDERED_BY: &str = "asya.sh/rendered-by";
/// The field manager of the status, apart from the one that applies children:
/// its server-side apply owns exactly the status fields it last wrote, so a
/// field the new status lacks is removed by the server.
pub const STATUS_FIELD_MANAGER: &str = "asya-controller-status";

/// Shared state of all reconciles.
pub struct Context {
    pub client: Client,
    pub renderer: Arc<dyn Renderer>,
    pub queues: QueueDrivers,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// All Flavors, kept current by a reflector.
    pub flavors: Store<Flavor>,
    /// Periodic resync interval (safety net; events drive everything else).
    pub resync: Duration,
    /// Consecutive failures per actor, for exponential backoff.
    pub failures: Mutex<HashMap<ObjectRef<AsyncActor>, u32>>,
    /// The write-avoidance cache ([`crate::written`]).
    pub applied: crate::written::Written,
    /// Watch-backed stores of children and pods; `None` reads from the API.
    pub caches: Option<crate::cache::Caches>,
    /// API resources of the kinds renders emit.
    pub kinds: Kinds,
    /// Recent reads of the Secrets KEDA's TriggerAuthentications name.
    pub secrets: crate::secrets::SecretCache,
    /// The HPA API version the server answered with (`v2` or `v2beta2`), so
    /// later reads go straight to it instead of trying `v2` first.
    pub hpa_version: Mutex<Option<&'static str>>,
}

/// Reconciles one actor (the entry point given to the kube-runtime Controller).
pub async fn reconcile(actor: Arc<AsyncActor>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let namespace = actor.namespace().unwrap_or_default();
    let api: Api<AsyncActor> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, actor.clone(), |event| async {
        match event {
            finalizer::Event::Apply(a) => apply_actor(&a, &ctx).await,
            finalizer::Event::Cleanup(a) => crate::cleanup::cleanup_actor(&a, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e) => Error::Kube(e),
        other => Error::Finalizer(other.to_string()),
    });
    let elapsed = started.elapsed();
    ctx.metrics.observe_reconcile(elapsed);
    log_outcome(&actor, elapsed, &result);
    // Success resets the backoff; a failure keeps its count for error_policy.
    if result.is_ok() {
        let key = ObjectRef::from_obj(actor.as_ref());
        if let Ok(mut failures) = ctx.failures.lock() {
            failures.remove(&key);
        }
    }
    result
}

/// One line per reconcile: actor, namespace, duration and result (with the
/// failure's stable reason, so logs can be filtered like conditions).
fn log_outcome(actor: &AsyncActor, elapsed: Duration, result: &Result<Action>) {
    let name = actor.name_any();
    let namespace = actor.namespace().unwrap_or_default();
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(_) => tracing::info!(
            actor = %name,
            namespace = %namespace,
            duration_ms,
            result = "ok",
            "reconciled"
        ),
        Err(error) => {
            let failure = Failure::from_error(error);
            tracing::warn!(
                actor = %name,
                namespace = %namespace,
                duration_ms,
                result = "error",
                reason = failure.reason,
                error = %error,
                "reconciled"
            )
        }
    }
}

/// Per-actor exponential backoff: 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn error_policy(actor: Arc<AsyncActor>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.observe_error(error.kind());
    let key = ObjectRef::from_obj(actor.as_ref());
    let n = match ctx.failures.lock() {
        Ok(mut failures) => {
            let n = failures.entry(key).or_insert(0);
            *n = n.saturating_add(1);
            *n
        }
        Err(_) => 1,
    };
    let delay =
        Duration::from_secs(1u64 << n.saturating_sub(1).min(9)).min(Duration::from_secs(300));
    tracing::debug!(actor = %actor.name_any(), namespace = ?actor.namespace(), retry_in = ?delay, "backing off");
    Action::requeue(delay)
}

/// The flavors the actor lists that exist, in its order.
fn listed_flavors(actor: &AsyncActor, store: &Store<Flavor>) -> Vec<Value> {
    crate::crd::listed_flavors(actor)
        .into_iter()
        .filter_map(|name| store.get(&ObjectRef::new(name)))
        .filter_map(|f| serde_json::to_value(f.as_ref()).ok())
        .collect()
}

/// Renders the actor as it is stored.
pub fn render_actor(
    actor: &AsyncActor,
    ctx: &Context,
) -> std::result::Result<RenderedActor, String> {
    let value = serde_json::to_value(actor).map_err(|e| e.to_string())?;
    let flavors = listed_flavors(actor, &ctx.flavors);
    if flavors.len() == crate::crd::listed_flavors(actor).len() {
        return ctx.renderer.render(&value, &flavors);
    }
    // A listed flavor is missing: the error names every Flavor in the cluster.
    let known: Vec<String> = ctx.flavors.state().iter().map(|f| f.name_any()).collect();
    ctx.renderer.render_with_known(&value, &flavors, &known)
}

/// The controller owner reference of every child (kube's helper: group,
/// version, kind, name, uid, controller and blockOwnerDeletion).
pub(crate) fn owner_reference(actor: &AsyncActor) -> Result<OwnerReference> {
    actor
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Finalizer(format!("actor {} has no uid", actor.name_any())))
}

/// Runs the steps; a failure of any of them is written to the actor's status
/// and published as an Event before it is returned for backoff.
async fn apply_actor(actor: &AsyncActor, ctx: &Context) -> Result<Action> {
    match steps(actor, ctx).await {
        Ok(action) => Ok(action),
        Err(error) => {
            // A queue failure is already in the status that `steps` wrote.
            if !matches!(error, Error::QueueNotReady { .. }) {
                let failure = Failure::from_error(&error);
                if let Err(e) =
                    crate::status_write::write_status(actor, &Outcome::Failed(failure), ctx).await
                {
                    tracing::warn!(actor = %actor.name_any(), error = %e, "could not write the failure to status");
                }
            }
            Err(error)
        }
    }
}

async fn steps(actor: &AsyncActor, ctx: &Context) -> Result<Action> {
    let namespace = actor.namespace().unwrap_or_default();
    let rendered = match render_actor(actor, ctx) {
        Ok(r) => r,
        // Nothing is applied; what was applied before stays.
        Err(message) => return Err(Error::RenderInvalid(message)),
    };
    let gitops = actor.annotations().get(RENDERED_BY).map(String::as_str) == Some("gitops");
    let keys: Vec<ObjectKey> = rendered
        .objects
        .iter()
        .map(apply::object_key)
        .collect::<Result<_>>()?;
    let live = if gitops {
        HashMap::new()
    } else {
        crate::children::apply_unless_unchanged(actor, &rendered, &keys, &namespace, ctx).await?
    };
    let queue = crate::queue::ensure(&ctx.queues, &rendered).await;
    let mut observed =
        crate::observe::observe(&namespace, &rendered, &keys, live, queue, ctx).await?;
    observed.missing_secrets = crate::secrets::check(
        &ctx.client,
        &ctx.secrets,
        &namespace,
        &crate::secrets::referenced(&rendered.objects),
    )
    .await;
    let recheck_secrets = !observed.missing_secrets.is_empty();
    let summary = RenderSummary {
        transport: rendered.transport.clone(),
        queue_name: rendered.queue_name.clone(),
        scaling_enabled: rendered.scaling_enabled,
        workload_kind: rendered.workload_kind.clone(),
        workload_name: rendered.workload_name.clone(),
        objects: keys,
        gitops,
        applyset_id: rendered.applyset_id.clone(),
        min_replicas: rendered.min_replicas,
        max_replicas: rendered.max_replicas,
    };
    let queue_error = match &observed.queue {
        Some(Err(e)) => Some(e.clone()),
        _ => None,
    };
    crate::status_write::write_status(
        actor,
        &Outcome::Reconciled(Box::new(summary), Box::new(observed)),
        ctx,
    )
    .await?;
    match queue_error {
        // Status already says TransportError; retry with backoff, not at the next resync.
        Some(message) => Err(Error::QueueNotReady {
            queue: rendered.queue_name.clone(),
            transport: rendered.transport.clone(),
            message,
        }),
        // No watch on Secrets: look again soon for the one the user is asked to create.
        None if recheck_secrets => Ok(Action::requeue(crate::secrets::RECHECK.min(ctx.resync))),
        None => Ok(Action::requeue(ctx.resync)),
    }
}
