//! Watch-backed caches of what a reconcile reads: the children a render
//! emits (one store per kind, only objects with an ApplySet label) and the
//! actors' pods. Each kind has one watch; it fills the store and asks for a
//! reconcile of the actor that owns (children) or runs (pods) the object, so
//! the watch the controller needs anyway also serves every read of a pass.
//!
//! Contract: a store lags the API server by the watch latency. Reads that
//! must see the newest state (what an apply just wrote) come from the apply
//! response, not from here; a stale read here costs at most one extra apply
//! or one later prune, never a wrong status for long, because the watch event
//! that updates the store also triggers the next reconcile.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;

use crate::apply::APPLYSET_LABEL;
use crate::crd::AsyncActor;

/// The label render puts on an actor's pods.
pub const ACTOR_LABEL: &str = "asya.sh/actor";

/// The stores (see the module docs).
#[derive(Clone)]
pub struct Caches {
    children: Vec<(ApiResource, Store<DynamicObject>)>,
    pods: Store<Pod>,
}

impl Caches {
    /// Starts one watch per kind in `kinds` and one of pods (in `namespace`,
    /// or all), each sending the actors to reconcile to `trigger`. `actors`
    /// resolves a pod's `asya.sh/actor` label to AsyncActors. Returns once
    /// every store holds its initial list.
    pub async fn start(
        client: &Client,
        namespace: Option<&str>,
        kinds: Vec<ApiResource>,
        actors: Store<AsyncActor>,
        trigger: UnboundedSender<ObjectRef<AsyncActor>>,
    ) -> Caches {
        let mut children = Vec::new();
        for ar in kinds {
            let api: Api<DynamicObject> = match namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                None => Api::all_with(client.clone(), &ar),
            };
            let writer = reflector::store::Writer::new(ar.clone());
            let store = writer.as_reader();
            let tx = trigger.clone();
            let watch = watcher(api, watcher::Config::default().labels(APPLYSET_LABEL))
                .default_backoff()
                .modify(trim_child)
                .reflect(writer)
                .touched_objects()
                .for_each(move |o| {
                    if let Ok(o) = o {
                        for owner in owners(&o) {
                            let _ = tx.unbounded_send(owner);
                        }
                    }
                    futures::future::ready(())
                });
            tokio::spawn(watch);
            children.push((ar, store));
        }
        let pods_api: Api<Pod> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (pods, pod_writer) = reflector::store::<Pod>();
        let tx = trigger;
        let watch = watcher(pods_api, watcher::Config::default().labels(ACTOR_LABEL))
            .default_backoff()
            .modify(|p: &mut Pod| {
                // Status counts read only the pod's status and metadata.
                p.managed_fields_mut().clear();
                p.spec = None;
            })
            .reflect(pod_writer)
            .touched_objects()
            .for_each(move |p| {
                if let Ok(p) = p {
                    for actor in actors_of_pod(&p, &actors) {
                        let _ = tx.unbounded_send(actor);
                    }
                }
                futures::future::ready(())
            });
        tokio::spawn(watch);
        // A kind whose CRD is absent never becomes ready (its watch retries): do not wait for it.
        for (ar, store) in &children {
            let ready =
                tokio::time::timeout(std::time::Duration::from_secs(30), store.wait_until_ready())
                    .await;
            if ready.is_err() {
                tracing::warn!(kind = %ar.kind, "watch of kind not ready after 30 s; reads of it go to the API server until it is");
            }
        }
        let _ = pods.wait_until_ready().await;
        Caches { children, pods }
    }

    fn store(&self, api_version: &str, kind: &str) -> Option<&Store<DynamicObject>> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        self.children
            .iter()
            .find(|(ar, _)| ar.group == group && ar.kind == kind)
            .map(|(_, s)| s)
    }

    /// The cached child; `None` when the kind is not cached (read it from the
    /// API), `Some(None)` when the cache has no such object.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Option<Arc<DynamicObject>>> {
        let (ar, store) = self.children.iter().find(|(ar, _)| {
            ar.kind == kind
                && ar.group == api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
        })?;
        Some(store.get(&ObjectRef::new_with(name, ar.clone()).within(namespace)))
    }

    /// Objects of `kind` in `namespace` whose ApplySet label is `applyset_id`;
    /// `None` when the kind is not cached.
    pub fn in_applyset(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        applyset_id: &str,
    ) -> Option<Vec<Arc<DynamicObject>>> {
        let store = self.store(api_version, kind)?;
        Some(
            store
                .state()
                .into_iter()
                .filter(|o| o.namespace().as_deref() == Some(namespace))
                .filter(|o| o.labels().get(APPLYSET_LABEL).map(String::as_str) == Some(applyset_id))
                .collect(),
        )
    }

    /// Pods in `namespace` whose labels include all of `selector`.
    pub fn pods(&self, namespace: &str, selector: &BTreeMap<String, String>) -> Vec<Pod> {
        self.pods
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(namespace))
            .filter(|p| {
                let labels = p.labels();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|p| p.as_ref().clone())
            .collect()
    }
}

/// Drops what no reconcile reads from a cached child, so 1,000 actors'
/// children stay small in memory: managed fields, a workload's pod template
/// (the controller wrote it; status reads replicas, selector and status) and
/// a ConfigMap's data. The fingerprint check compares generation, labels,
/// annotations and owner references, which stay.
fn trim_child(o: &mut DynamicObject) {
    o.managed_fields_mut().clear();
    if let Some(spec) = o.data.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("template");
        spec.remove("volumeClaimTemplates");
    }
    if let Some(data) = o.data.as_object_mut() {
        data.remove("data");
        data.remove("binaryData");
    }
}

/// The AsyncActor that controls `child`, if any.
fn owners(child: &DynamicObject) -> Vec<ObjectRef<AsyncActor>> {
    let ns = child.namespace().unwrap_or_default();
    let api_version = AsyncActor::api_version(&());
    let kind = AsyncActor::kind(&());
    child
        .owner_references()
        .iter()
        .filter(|o| o.controller == Some(true) && o.kind == kind && o.api_version == api_version)
        .map(|o| ObjectRef::new(&o.name).within(&ns))
        .collect()
}

/// The actors a pod belongs to: by name or `spec.actor`, in the pod's namespace.
fn actors_of_pod(pod: &Pod, actors: &Store<AsyncActor>) -> Vec<ObjectRef<AsyncActor>> {
    let ns = pod.namespace().unwrap_or_default();
    let Some(actor) = pod.labels().get(ACTOR_LABEL) else {
        return Vec::new();
    };
    actors
        .state()
        .into_iter()
        .filter(|a| a.namespace().as_deref() == Some(ns.as_str()))
        .filter(|a| {
            &a.name_any() == actor
                || a.spec.0.get("actor").and_then(Value::as_str) == Some(actor.as_str())
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}
