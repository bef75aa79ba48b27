//! Wiring: watches, the kube-runtime Controller, health and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Predicate, PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};

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
    // Reconcile on what the user changed (spec: generation; labels,
    // annotations, finalizers), not on the status this controller writes.
    let (actors, actor_writer) = reflector::store::<AsyncActor>();
    let actor_events = watcher(actors_api, watcher::Config::default())
        .default_backoff()
        .reflect(actor_writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::labels)
                .combine(predicates::annotations)
                .combine(predicates::finalizers),
            PredicateConfig::default(),
        );
    let controller = Controller::for_stream(actor_events, actors.clone())
        .with_config(ControllerConfig::default().concurrency(opts.concurrency));

    // Flavors are watched once: the watch fills the store render reads, and
    // each Flavor it delivers re-reconciles the actors that list it.
    let (flavors, flavor_writer) = reflector::store::<Flavor>();
    // Flavors, children and pods all ask for reconciles through one channel.
    let (flavor_changed, actors_to_rerender) = futures::channel::mpsc::unbounded();
    let flavor_changed_for_children = flavor_changed.clone();
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
    let caches = crate::cache::Caches::start(
        &client,
        opts.namespace.as_deref(),
        resources::prunable(),
        actors.clone(),
        flavor_changed_for_children,
    )
    .await;

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
        caches: Some(caches),
        kinds: Default::default(),
        secrets: Default::default(),
        hpa_version: Default::default(),
    });

    let controller = controller
        .reconcile_on(actors_to_rerender)
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
