//! Shared harness for the controller's tests against a real API server.
//!
//! Every test gets its own namespace and runs its own controller scoped to
//! that namespace, so tests running in parallel never reconcile each other's
//! actors. Without `ASYA_TEST_KUBECONFIG` the tests print why and pass
//! vacuously, so `cargo nextest` works on a machine with no cluster.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asya_controller::metrics::Metrics;
use asya_controller::queue::{DeletionPolicy, LazyRabbitMq, QueueDrivers};
use asya_controller::render::Renderer;
use asya_controller::run::{self, Options};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

pub const TIMEOUT: Duration = Duration::from_secs(90);

pub struct Cluster {
    pub client: Client,
    pub metrics: Metrics,
    pub ns: String,
}

/// The test cluster, or `None` (with the reason printed) when none is configured.
pub async fn cluster(test: &str) -> Option<Cluster> {
    let Ok(path) = std::env::var("ASYA_TEST_KUBECONFIG") else {
        eprintln!(
            "SKIP {test}: ASYA_TEST_KUBECONFIG is unset (run tests/k8s/up.sh; tests/run.sh does)"
        );
        return None;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter("asya_controller=debug,warn")
        .with_test_writer()
        .try_init();
    let metrics = Metrics::default();
    let client = asya_controller::client::build(Some(Path::new(&path)), &metrics)
        .await
        .expect("client from kubeconfig");
    install_crds(&client).await;
    let ns = format!(
        "t-{}-{}",
        test.replace('_', "-")
            .chars()
            .take(30)
            .collect::<String>()
            .trim_end_matches('-'),
        short_id()
    );
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.patch(
        &ns,
        &PatchParams::apply("asya-test").force(),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
        })),
    )
    .await
    .expect("create namespace");
    Some(Cluster {
        client,
        metrics,
        ns,
    })
}

pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Installs Asya's CRDs (from the render crate) and KEDA's real ones (tests/k8s/crds/keda).
async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| async {
        let mut crds = asya_render::crd::crds();
        crds.extend(
            asya_controller::install::read_crd_dir(&repo_root().join("tests/k8s/crds/keda"))
                .expect("KEDA CRDs"),
        );
        asya_controller::install::install_crds(client, &crds, "asya-test", TIMEOUT)
            .await
            .expect("install CRDs");
    })
    .await;
}

/// Polls `probe` until it returns `Some`, or panics after [`TIMEOUT`].
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn rabbitmq_url() -> String {
    std::env::var("ASYA_TEST_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn rabbit_drivers(policy: DeletionPolicy) -> QueueDrivers {
    let mut q = QueueDrivers::default();
    q.insert(
        "rabbitmq",
        Arc::new(LazyRabbitMq::new(rabbitmq_url(), Default::default())),
        policy,
    );
    q
}

impl Cluster {
    pub fn api(&self, ar: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.ns, ar)
    }

    pub fn actors(&self) -> Api<DynamicObject> {
        self.api(&asya_controller::resources::async_actor())
    }

    pub fn deployments(&self) -> Api<DynamicObject> {
        self.api(&kube::core::ApiResource::erase::<
            k8s_openapi::api::apps::v1::Deployment,
        >(&()))
    }

    pub fn scaled_objects(&self) -> Api<DynamicObject> {
        self.api(&asya_controller::resources::scaled_object())
    }

    pub fn trigger_auths(&self) -> Api<DynamicObject> {
        self.api(&asya_controller::resources::trigger_authentication())
    }

    /// Starts a controller scoped to this test's namespace.
    pub fn start_controller(
        &self,
        renderer: Arc<dyn Renderer>,
        queues: QueueDrivers,
    ) -> tokio::task::JoinHandle<()> {
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        let opts = Options {
            namespace: Some(self.ns.clone()),
            resync: Duration::from_secs(600),
            ..Options::default()
        };
        tokio::spawn(async move {
            if let Err(e) = run::run(client, renderer, queues, metrics, opts).await {
                panic!("controller stopped: {e}");
            }
        })
    }

    /// Creates or updates an actor (as a user would, with its own field manager).
    pub async fn apply_actor(&self, actor: Value) {
        let name = actor["metadata"]["name"].as_str().expect("name").to_owned();
        self.actors()
            .patch(
                &name,
                &PatchParams::apply("test-user").force(),
                &Patch::Apply(&actor),
            )
            .await
            .unwrap_or_else(|e| panic!("apply actor {name}: {e}"));
    }

    pub async fn get_actor(&self, name: &str) -> DynamicObject {
        self.actors().get(name).await.expect("get actor")
    }

    /// Waits for the actor's status to satisfy `check` and returns it.
    pub async fn wait_status(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_for(what, || async {
            let a = self.actors().get(name).await.ok()?;
            let s = a.data.get("status")?.clone();
            check(&s).then_some(s)
        })
        .await
    }

    /// Deletes the test's actors (letting a still-running controller run
    /// their finalizers, so queues go too), then the namespace. Finalizers
    /// left over (no controller) are removed so the namespace can go.
    pub async fn cleanup(&self) {
        let actors = self.actors();
        if let Ok(list) = actors.list(&Default::default()).await {
            for a in &list.items {
                let _ = actors
                    .delete(&a.name_any(), &DeleteParams::background())
                    .await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match actors.list(&Default::default()).await {
                Ok(list) if list.items.is_empty() => break,
                Err(_) => break,
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        if let Ok(list) = actors.list(&Default::default()).await {
            for a in &list.items {
                let _ = actors
                    .patch(
                        &a.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        }
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let _ = nss.delete(&self.ns, &DeleteParams::background()).await;
    }
}

pub fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub fn owned_by(obj: &DynamicObject, actor: &DynamicObject) -> bool {
    obj.owner_references()
        .iter()
        .any(|o| Some(&o.uid) == actor.metadata.uid.as_ref() && o.controller == Some(true))
}
