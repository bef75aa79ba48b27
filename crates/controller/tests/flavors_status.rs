//! Flavors, status, GitOps hand-off and quiet resyncs, against a real kube-apiserver 1.20.

mod common;

use std::sync::Arc;
use std::time::Duration;

use asya_controller::queue::DeletionPolicy;
use asya_controller::reconcile::{self, Context};
use asya_controller::render::PlatformRenderer;
use asya_render::api::platform::Platform;
use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use serde_json::{Value, json};

fn actor(ns: &str, name: &str, spec: Value) -> Value {
    let mut base = json!({"actor": name, "image": "python:3.13-slim", "handler": "echo.process", "transport": "rabbitmq"});
    if let (Some(b), Some(extra)) = (base.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            b.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor", "metadata": {"name": name, "namespace": ns}, "spec": base})
}

fn renderer() -> Arc<PlatformRenderer> {
    Arc::new(PlatformRenderer::new(Platform::default()).expect("embedded compositions"))
}

async fn apply_flavor(c: &Cluster, name: &str, spec: Value) {
    let api: Api<DynamicObject> =
        Api::all_with(c.client.clone(), &asya_controller::resources::flavor());
    let body = json!({"apiVersion": "asya.sh/v1alpha1", "kind": "Flavor", "metadata": {"name": name}, "spec": spec});
    api.patch(
        name,
        &PatchParams::apply("test-user").force(),
        &Patch::Apply(&body),
    )
    .await
    .expect("apply flavor");
}

async fn delete_flavor(c: &Cluster, name: &str) {
    let api: Api<DynamicObject> =
        Api::all_with(c.client.clone(), &asya_controller::resources::flavor());
    let _ = api.delete(name, &Default::default()).await;
}

/// The stored actor as the controller's typed resource.
fn typed(a: DynamicObject) -> asya_controller::crd::AsyncActor {
    serde_json::from_value(serde_json::to_value(a).expect("actor JSON")).expect("typed actor")
}

fn runtime_env(d: &DynamicObject) -> String {
    serde_json::to_string(&d.data["spec"]["template"]["spec"]["containers"]).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flavor_change_rerenders_the_actors_that_list_it() {
    let Some(c) = cluster("flavor").await else {
        return;
    };
    let flavor = format!("mark-{}", short_id());
    apply_flavor(
        &c,
        &flavor,
        json!({"env": [{"name": "FLAVOR_MARK", "value": "one"}]}),
    )
    .await;
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    c.apply_actor(actor(&c.ns, "fl", json!({"flavors": [flavor]})))
        .await;
    wait_for("flavor env in Deployment", || async {
        let d = c.deployments().get_opt("fl").await.ok().flatten()?;
        runtime_env(&d).contains("\"one\"").then_some(())
    })
    .await;
    apply_flavor(
        &c,
        &flavor,
        json!({"env": [{"name": "FLAVOR_MARK", "value": "two"}]}),
    )
    .await;
    wait_for("changed flavor env in Deployment", || async {
        let d = c.deployments().get_opt("fl").await.ok().flatten()?;
        runtime_env(&d).contains("\"two\"").then_some(())
    })
    .await;
    delete_flavor(&c, &flavor).await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_flavor_marks_the_actor_invalid_and_applies_nothing() {
    let Some(c) = cluster("invalid").await else {
        return;
    };
    // One Flavor exists and is listed, another exists and is not: the hint
    // names both (the controller loads only listed flavors, but the cluster has more).
    let listed = format!("listed-{}", short_id());
    let other = format!("other-{}", short_id());
    apply_flavor(&c, &listed, json!({"env": [{"name": "A", "value": "1"}]})).await;
    apply_flavor(&c, &other, json!({"env": [{"name": "B", "value": "2"}]})).await;
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    let missing = format!("nope-{}", short_id());
    c.apply_actor(actor(&c.ns, "inv", json!({"flavors": [listed, missing]})))
        .await;
    let status = c
        .wait_status("inv", "phase Invalid", |s| s["phase"] == "Invalid")
        .await;
    let msg = condition(&status, "WorkloadReady").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains(&missing),
        "condition does not quote the error: {msg}"
    );
    assert!(
        msg.contains(&listed) && msg.contains(&other) && !msg.contains("none loaded"),
        "the hint must name the cluster's Flavors: {msg}"
    );
    assert!(
        c.deployments().get_opt("inv").await.unwrap().is_none(),
        "something was applied for an invalid actor"
    );
    let events: Api<DynamicObject> = c.api(&kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("events.k8s.io", "v1", "Event"),
        "events",
    ));
    wait_for("RenderInvalid event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.data["reason"] == "RenderInvalid" && e.data["regarding"]["name"] == "inv")
            .then_some(())
    })
    .await;
    delete_flavor(&c, &listed).await;
    delete_flavor(&c, &other).await;
    c.cleanup().await;
}

async fn pods_of(c: &Cluster, actor: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let Ok(d) = c.deployments().get(actor).await else {
        return Vec::new();
    };
    let labels = d.data["spec"]["selector"]["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let sel: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    api.list(&ListParams::default().labels(&sel.join(",")))
        .await
        .expect("pods")
        .items
}

async fn set_pod_status(c: &Cluster, pod: &str, status: Value) {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    api.patch_status(
        pod,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .expect("pod status");
}

fn container_status(name: &str, waiting: Option<&str>) -> Value {
    let state = match waiting {
        Some(reason) => json!({"waiting": {"reason": reason, "message": "simulated"}}),
        None => json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}),
    };
    json!({"name": name, "ready": waiting.is_none(), "restartCount": 0, "image": "python:3.13-slim", "imageID": "", "state": state})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_the_pods_of_the_workload() {
    let Some(c) = cluster("status").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    c.apply_actor(actor(
        &c.ns,
        "st",
        json!({"replicas": 1, "scaling": {"enabled": false}}),
    ))
    .await;
    // kube-controller-manager creates the ReplicaSet and its pod; nothing schedules it.
    let pod = wait_for("pod created by the ReplicaSet", || async {
        pods_of(&c, "st").await.into_iter().next()
    })
    .await;
    let status = c
        .wait_status("st", "pending pod counted", |s| {
            s["replicas"]["pending"] == 1
        })
        .await;
    assert_eq!(status["phase"], "Creating");

    let ready = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [container_status("asya-runtime", None), container_status("asya-sidecar", None)]});
    set_pod_status(&c, &pod.name_any(), ready).await;
    let status = c
        .wait_status("st", "Running", |s| s["phase"] == "Running")
        .await;
    assert_eq!(status["replicas"]["running"], 1);
    assert_eq!(
        condition(&status, "WorkloadReady").unwrap()["status"],
        "True"
    );

    let crash = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [container_status("asya-runtime", Some("CrashLoopBackOff")), container_status("asya-sidecar", None)]});
    set_pod_status(&c, &pod.name_any(), crash).await;
    let status = c
        .wait_status("st", "RuntimeError", |s| s["phase"] == "RuntimeError")
        .await;
    assert_eq!(status["replicas"]["failing"], 1);
    let msg = condition(&status, "WorkloadReady").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("CrashLoopBackOff"), "{msg}");

    let pull = json!({"phase": "Pending", "containerStatuses": [container_status("asya-runtime", Some("ImagePullBackOff")),
        container_status("asya-sidecar", None)]});
    set_pod_status(&c, &pod.name_any(), pull).await;
    c.wait_status("st", "ImagePullError", |s| s["phase"] == "ImagePullError")
        .await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitops_actor_is_not_applied_but_gets_status() {
    let Some(c) = cluster("gitops").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    let mut a = actor(&c.ns, "go", json!({}));
    a["metadata"]["annotations"] = json!({"asya.sh/rendered-by": "gitops"});
    c.apply_actor(a).await;
    let status = c
        .wait_status("go", "status", |s| {
            s["conditions"].as_array().is_some_and(|c| c.len() == 3)
        })
        .await;
    assert_eq!(
        condition(&status, "WorkloadReady").unwrap()["reason"],
        "WorkloadMissing"
    );
    assert!(
        condition(&status, "WorkloadReady").unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("GitOps")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        c.deployments().get_opt("go").await.unwrap().is_none(),
        "controller applied a GitOps actor"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_of_an_unchanged_actor_writes_nothing() {
    let Some(c) = cluster("resync").await else {
        return;
    };
    let ar = asya_controller::resources::async_actor();
    let ctx = Arc::new(Context {
        client: c.client.clone(),
        renderer: renderer(),
        queues: rabbit_drivers(DeletionPolicy::Delete),
        metrics: c.metrics.clone(),
        recorder: Recorder::new(
            c.client.clone(),
            Reporter {
                controller: "asya-test".into(),
                instance: None,
            },
        ),
        flavors: Writer::<asya_controller::crd::Flavor>::default().as_reader(),
        resync: Duration::from_secs(600),
        failures: Default::default(),
        applied: Default::default(),
        caches: None,
        kinds: Default::default(),
        secrets: Default::default(),
        hpa_version: Default::default(),
    });
    c.apply_actor(actor(&c.ns, "rs", json!({"scaling": {"enabled": true}})))
        .await;
    // First passes: finalizer, apply, status (each pass sees the object the previous one wrote).
    for _ in 0..3 {
        let a = c.get_actor("rs").await;
        reconcile::reconcile(Arc::new(typed(a)), ctx.clone())
            .await
            .expect("reconcile");
    }
    let before = c.get_actor("rs").await;
    assert!(
        before.data.get("status").is_some(),
        "no status after three passes"
    );
    let children: Vec<(String, Option<String>)> = {
        let d = c.deployments().get("rs").await.unwrap();
        let so = c.scaled_objects().get("rs").await.unwrap();
        vec![
            ("Deployment".into(), d.resource_version()),
            ("ScaledObject".into(), so.resource_version()),
        ]
    };
    let status_writes = c.metrics.status_writes.get();
    let writes = c
        .metrics
        .writes_total
        .load(std::sync::atomic::Ordering::SeqCst);
    let _ = ar;
    reconcile::reconcile(Arc::new(typed(before.clone())), ctx.clone())
        .await
        .expect("resync");
    assert_eq!(
        c.metrics.status_writes.get(),
        status_writes,
        "resync wrote the status again"
    );
    let writes_after = c
        .metrics
        .writes_total
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        writes_after,
        writes,
        "resync issued {} write requests (PATCH/POST/PUT/DELETE)",
        writes_after - writes
    );
    let after = c.get_actor("rs").await;
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "actor changed on resync"
    );
    let d = c.deployments().get("rs").await.unwrap();
    let so = c.scaled_objects().get("rs").await.unwrap();
    assert_eq!(
        vec![
            ("Deployment".to_string(), d.resource_version()),
            ("ScaledObject".to_string(), so.resource_version())
        ],
        children
    );
    // A label another writer adds is not drift (it is not ours): no re-apply.
    // A child whose own label someone edited is applied again, but the same set
    // of objects needs no prune: the pass reads at most each child, the pods and
    // the HPA once (a prune would add a LIST per prunable kind).
    let d = c.deployments().get("rs").await.expect("deployment");
    let ours = d
        .labels()
        .keys()
        .find(|k| !k.starts_with("applyset.kubernetes.io/"))
        .expect("a label the render sets")
        .clone();
    c.deployments()
        .patch(
            "rs",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {ours.as_str(): "edited", "edited-by": "someone"}}}),
            ),
        )
        .await
        .expect("edit deployment");
    let children_count = after.data["status"]["appliedRefs"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let (requests, writes) = (
        c.metrics
            .requests_total
            .load(std::sync::atomic::Ordering::SeqCst),
        c.metrics
            .writes_total
            .load(std::sync::atomic::Ordering::SeqCst),
    );
    reconcile::reconcile(Arc::new(typed(c.get_actor("rs").await)), ctx.clone())
        .await
        .expect("re-apply");
    let restored = c.deployments().get("rs").await.expect("deployment");
    assert_ne!(
        restored.labels().get(&ours).map(String::as_str),
        Some("edited"),
        "our label is put back"
    );
    let reads = (c
        .metrics
        .requests_total
        .load(std::sync::atomic::Ordering::SeqCst)
        - requests)
        - (c.metrics
            .writes_total
            .load(std::sync::atomic::Ordering::SeqCst)
            - writes);
    assert!(
        children_count > 0 && reads <= children_count as u64 + 2,
        "re-apply of {children_count} unchanged objects read {reads} times"
    );
    c.cleanup().await;
}
