//! Wiring: watches, the kube-runtime Controller, health and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::apply::APPLYSET_LABEL;
use crate::crd::{AsyncActor, Flavor};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::queue::QueueDrivers;
use crate::reconcile::{self, Context};
use crate::render::Renderer;
use crate::resources;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Periodic resync of every actor.
    pub resync: Duration,
    /// Where `/metrics`, `/healthz` and `/readyz` listen; `None` = no server.
    pub metrics_addr: Option<SocketAddr>,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Lease-based leader election (namespace, lease name, identity).
    pub leader_election: Option<crate::leader::LeaseConfig>,
    /// Watch one namespace only (`None` = all namespaces).
    pub namespace: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            resync: Duration::from_secs(300),
            metrics_addr: None,
            concurrency: 16,
            leader_election: None,
            namespace: None,
        }
    }
}

/// Runs the controller until the process is asked to stop (or loses its lease).
pub async fn run(
    client: Client,
    renderer: Arc<dyn Renderer>,
    queues: QueueDrivers,
    metrics: Metrics,
    opts: Options,
) -> Result<()> {
    let ready = Arc::new(AtomicBool::new(false));
    if let Some(addr) = opts.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tokio::spawn(crate::server::serve(
            listener,
            metrics.clone(),
            ready.clone(),
        ));
    }
    let lease = match &opts.leader_election {
        Some(cfg) => Some(crate::leader::acquire(client.clone(), cfg.clone()).await?),
        None => None,
    };

    let actors_api: Api<AsyncActor> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let controller = Controller::new(actors_api, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(opts.concurrency));
    let actors = controller.store();

    // Flavors are watched once: the watch fills the store render reads, and
    // each Flavor it delivers re-reconciles the actors that list it.
    let (flavors, flavor_writer) = reflector::store::<Flavor>();
    let (flavor_changed, actors_to_rerender) = futures::channel::mpsc::unbounded();
    let actors_for_flavors = actors.clone();
    let flavor_watch = reflector::reflector(
        flavor_writer,
        watcher(
            Api::<Flavor>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .applied_objects()
    .for_each(move |flavor| {
        if let Ok(flavor) = flavor {
            let name = flavor.name_any();
            for actor in actors_for_flavors.state() {
                if crate::crd::listed_flavors(&actor).contains(&name.as_str()) {
                    let _ = flavor_changed.unbounded_send(ObjectRef::from_obj(actor.as_ref()));
                }
            }
        }
        futures::future::ready(())
    });
    tokio::spawn(flavor_watch);
    flavors.wait_until_ready().await.ok();

    let ctx = Arc::new(Context {
        client: client.clone(),
        renderer,
        queues,
        metrics: metrics.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "asya-controller".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        flavors,
        resync: opts.resync,
        failures: Default::default(),
        applied: Default::default(),
        kinds: Default::default(),
        secrets: Default::default(),
        hpa_version: Default::default(),
    });

    let scoped = |ar: &kube::core::ApiResource| -> Api<DynamicObject> {
        match &opts.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
            None => Api::all_with(client.clone(), ar),
        }
    };
    let children = watcher::Config::default().labels(APPLYSET_LABEL);
    let actors_for_pods = actors.clone();
    let pods_api: Api<Pod> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut controller = controller;
    for ar in resources::prunable() {
        controller = controller.owns_with(scoped(&ar), ar, children.clone());
    }
    let controller = controller
        .reconcile_on(actors_to_rerender)
        .watches(
            pods_api,
            watcher::Config::default().labels("asya.sh/actor"),
            move |pod: Pod| {
                let ns = pod.namespace().unwrap_or_default();
                let actor = pod
                    .labels()
                    .get("asya.sh/actor")
                    .cloned()
                    .unwrap_or_default();
                actors_for_pods
                    .state()
                    .into_iter()
                    .filter(|a| a.namespace().as_deref() == Some(ns.as_str()))
                    .filter(|a| {
                        a.name_any() == actor
                            || a.spec.0.get("actor").and_then(Value::as_str) == Some(actor.as_str())
                    })
                    .map(|a| ObjectRef::from_obj(a.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal();

    ready.store(true, Ordering::SeqCst);
    let run = controller
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|res| {
            if let Err(e) = res {
                tracing::debug!(error = %e, "controller event");
            }
            futures::future::ready(())
        });
    match lease {
        Some(lease) => {
            tokio::select! {
                _ = run => Ok(()),
                lost = lease.lost() => Err(lost),
            }
        }
        None => {
            run.await;
            Ok(())
        }
    }
}
