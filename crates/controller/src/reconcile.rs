//! One reconcile of one AsyncActor: render, apply, prune, queue, status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asya_render::api::status::AsyncActorStatus;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::apply::{self, ObjectKey};
use crate::crd::{AsyncActor, Flavor};
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::metrics::Metrics;
use crate::queue::{DeletionPolicy, QueueDrivers};
use crate::render::{RenderedActor, Renderer};
use crate::resources::{self, Kinds};
use crate::status::{self, Observed, Outcome, RenderSummary};

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
    /// What was last applied per actor uid: a fingerprint of the apply bodies
    /// and the [`live_version`] of each child right after. When both still
    /// match, a pass reads instead of applying, so a resync writes nothing.
    /// Only ever a hint (a missing entry means "apply and prune"); an entry
    /// is removed when its actor is deleted.
    pub applied: Mutex<HashMap<String, AppliedFingerprint>>,
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

/// See [`Context::applied`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedFingerprint {
    pub bodies: u64,
    pub versions: Vec<(ObjectKey, String)>,
    /// The ApplySet id and sorted object keys the last prune kept. A re-apply
    /// of the same set needs no prune: anything outside it was pruned then.
    pub pruned: (String, Vec<ObjectKey>),
}

/// Reconciles one actor (the entry point given to the kube-runtime Controller).
pub async fn reconcile(actor: Arc<AsyncActor>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let namespace = actor.namespace().unwrap_or_default();
    let api: Api<AsyncActor> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, actor.clone(), |event| async {
        match event {
            finalizer::Event::Apply(a) => apply_actor(&a, &ctx).await,
            finalizer::Event::Cleanup(a) => cleanup_actor(&a, &ctx).await,
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
    ctx.renderer.render(&value, &flavors)
}

/// The controller owner reference of every child (kube's helper: group,
/// version, kind, name, uid, controller and blockOwnerDeletion).
fn owner_reference(actor: &AsyncActor) -> Result<OwnerReference> {
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
                if let Err(e) = write_status(actor, &Outcome::Failed(failure), ctx).await {
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
    let mut live: HashMap<String, Value> = HashMap::new();
    if !gitops {
        let owner = owner_reference(actor)?;
        let uid = actor.uid().unwrap_or_default();
        let fingerprint = fingerprint(&rendered.objects, &owner);
        let remembered = ctx.applied.lock().ok().and_then(|m| m.get(&uid).cloned());
        let mut kept = keys.clone();
        kept.sort();
        let kept = (rendered.applyset_id.clone(), kept);
        let prune_needed = remembered.as_ref().is_none_or(|f| f.pruned != kept);
        let unchanged = match remembered {
            Some(f) if f.bodies == fingerprint => read_if_unchanged(&namespace, &f, ctx).await?,
            _ => None,
        };
        match unchanged {
            Some(objects) => live = objects,
            None => {
                let applied = apply::apply_all(
                    &ctx.client,
                    &ctx.kinds,
                    &namespace,
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
                        &namespace,
                        &rendered.applyset_id,
                        &uid,
                        &keys,
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
                    .map(|a| (a.key.clone(), live_version(&a.object)))
                    .collect();
                if let Ok(mut m) = ctx.applied.lock() {
                    m.insert(
                        uid,
                        AppliedFingerprint {
                            bodies: fingerprint,
                            versions,
                            pruned: kept,
                        },
                    );
                }
                for a in applied {
                    if let Ok(v) = serde_json::to_value(&a.object) {
                        live.insert(a.key.kind.clone(), v);
                    }
                }
            }
        }
    }
    let queue = ensure_queue(&rendered, ctx).await;
    let mut observed = observe(&namespace, &rendered, &keys, live, queue, ctx).await?;
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
    write_status(
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

fn fingerprint(objects: &[Value], owner: &OwnerReference) -> u64 {
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
/// the Deployment controller's), labels, annotations and owner references.
/// Kinds without a generation fall back to the resourceVersion.
pub fn live_version(obj: &DynamicObject) -> String {
    match obj.metadata.generation {
        Some(g) => format!(
            "g{g}|{:?}|{:?}|{:?}",
            obj.metadata.labels,
            obj.metadata.annotations,
            obj.metadata
                .owner_references
                .as_ref()
                .map(|o| o.iter().map(|r| r.uid.clone()).collect::<Vec<_>>())
        ),
        None => format!("rv{}", obj.resource_version().unwrap_or_default()),
    }
}

fn read_error(key: &ObjectKey, source: kube::Error) -> Error {
    Error::Read {
        what: format!("{} {}", key.kind, key.name),
        source,
    }
}

/// Reads the children; returns them if every one still has the
/// resourceVersion the last apply left, `None` if any changed or vanished.
async fn read_if_unchanged(
    namespace: &str,
    f: &AppliedFingerprint,
    ctx: &Context,
) -> Result<Option<HashMap<String, Value>>> {
    let mut live = HashMap::new();
    for (key, version) in &f.versions {
        if let Some(cached) = ctx
            .caches
            .as_ref()
            .and_then(|c| c.get(&key.api_version, &key.kind, namespace, &key.name))
        {
            let Some(obj) = cached else {
                return Ok(None);
            };
            if live_version(&obj) != *version {
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
        if live_version(&obj) != *version {
            return Ok(None);
        }
        if let Ok(v) = serde_json::to_value(&obj) {
            live.insert(key.kind.clone(), v);
        }
    }
    Ok(Some(live))
}

async fn ensure_queue(
    r: &RenderedActor,
    ctx: &Context,
) -> Option<std::result::Result<asya_transport::QueueDepth, String>> {
    if ctx.queues.external() {
        return None;
    }
    let Some((driver, _)) = ctx.queues.get(&r.transport_name) else {
        return Some(Err(format!(
            "the controller has no queue driver for transport {:?}",
            r.transport_name
        )));
    };
    if let Err(e) = driver.ensure(&r.namespace, &r.actor).await {
        return Some(Err(e.to_string()));
    }
    Some(driver.depth(&r.queue_name).await.map_err(|e| e.to_string()))
}

/// Reads what status needs. Objects just applied come from the apply
/// responses (SSA returns the live object, status included); the rest is read.
async fn observe(
    namespace: &str,
    r: &RenderedActor,
    keys: &[ObjectKey],
    mut live: HashMap<String, Value>,
    queue: Option<std::result::Result<asya_transport::QueueDepth, String>>,
    ctx: &Context,
) -> Result<Observed> {
    let get = |kind: &str| -> Option<ObjectKey> { keys.iter().find(|k| k.kind == kind).cloned() };
    let workload_key = get(&r.workload_kind);
    let so_key = get("ScaledObject");
    let mut fetch = async |key: &Option<ObjectKey>| -> Result<Option<Value>> {
        let Some(key) = key else { return Ok(None) };
        if let Some(v) = live.remove(&key.kind) {
            return Ok(Some(v));
        }
        if let Some(cached) = ctx
            .caches
            .as_ref()
            .and_then(|c| c.get(&key.api_version, &key.kind, namespace, &key.name))
        {
            return Ok(cached.and_then(|o| serde_json::to_value(o.as_ref()).ok()));
        }
        let ar = ctx
            .kinds
            .resolve(&ctx.client, &key.api_version, &key.kind)
            .await
            .map_err(|e| read_error(key, e))?;
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &ar);
        Ok(api
            .get_opt(&key.name)
            .await
            .map_err(|e| read_error(key, e))?
            .and_then(|o| serde_json::to_value(o).ok()))
    };
    let workload = fetch(&workload_key).await?;
    let scaled_object = fetch(&so_key).await?;
    // A workload that neither wants nor has pods (scaled to zero) has none
    // to count: pods being deleted are not counted anyway.
    let count = |ptr: &str| {
        workload
            .as_ref()
            .and_then(|w| w.pointer(ptr))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let has_pods = count("/spec/replicas") > 0
        || count("/status/replicas") > 0
        || workload
            .as_ref()
            .is_some_and(|w| w.pointer("/spec/replicas").is_none());
    let pods = match workload
        .as_ref()
        .and_then(|w| w.pointer("/spec/selector/matchLabels"))
        .and_then(Value::as_object)
    {
        Some(labels) if !labels.is_empty() && has_pods && ctx.caches.is_some() => {
            let selector = labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            ctx.caches
                .as_ref()
                .map(|c| c.pods(namespace, &selector))
                .unwrap_or_default()
        }
        Some(labels) if !labels.is_empty() && has_pods => {
            let mut selector: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            selector.sort();
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
            api.list(&ListParams::default().labels(&selector.join(",")))
                .await
                .map_err(|source| Error::Read {
                    what: "pods".into(),
                    source,
                })?
                .items
        }
        _ => Vec::new(),
    };
    let hpa = match &so_key {
        Some(so) => read_hpa(namespace, &format!("keda-hpa-{}", so.name), ctx).await?,
        None => None,
    };
    Ok(Observed {
        workload,
        pods,
        scaled_object,
        hpa,
        queue,
        missing_secrets: Vec::new(),
    })
}

/// KEDA names its HPA `keda-hpa-<ScaledObject>`. `autoscaling/v2` where
/// served (1.23+), else `v2beta2` (1.20).
async fn read_hpa(namespace: &str, name: &str, ctx: &Context) -> Result<Option<Value>> {
    let known = ctx.hpa_version.lock().ok().and_then(|v| *v);
    let versions: &[&'static str] = match known {
        Some("v2") => &["v2"],
        Some(_) => &["v2beta2"],
        None => &["v2", "v2beta2"],
    };
    for &version in versions {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), namespace, &resources::hpa(version));
        match api.get_opt(name).await {
            Ok(found) => {
                if let Ok(mut v) = ctx.hpa_version.lock() {
                    *v = Some(version);
                }
                return Ok(found.and_then(|o| serde_json::to_value(o).ok()));
            }
            // The version is not served: try the next one.
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(source) => {
                return Err(Error::Read {
                    what: format!("HorizontalPodAutoscaler {name}"),
                    source,
                });
            }
        }
    }
    Ok(None)
}

/// Writes the status only when it differs from the stored one: a server-side
/// apply of the typed status under [`STATUS_FIELD_MANAGER`], so the server
/// drops what this manager wrote before and the new status lacks.
async fn write_status(actor: &AsyncActor, outcome: &Outcome, ctx: &Context) -> Result<()> {
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
    publish_new_failures(actor, previous, &new, ctx).await;
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

/// Publishes a Warning Event for each condition that is False in `new` with
/// a reason or message it did not have in `previous`, so a failure retried
/// with backoff yields one Event, not one per retry.
async fn publish_new_failures(
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

/// On deletion: delete the queue when the transport's policy says Delete.
async fn cleanup_actor(actor: &AsyncActor, ctx: &Context) -> Result<Action> {
    // The write-avoidance memory of a deleted actor is never needed again.
    if let (Some(uid), Ok(mut applied)) = (actor.uid(), ctx.applied.lock()) {
        applied.remove(&uid);
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
