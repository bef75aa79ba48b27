//! The controller against a real kube-apiserver 1.20 (tests/k8s/up.sh) and real RabbitMQ.

mod common;

use std::sync::Arc;

use asya_controller::queue::DeletionPolicy;
use asya_controller::render::PlatformRenderer;
use asya_render::api::platform::Platform;
use asya_transport::QueueAdmin;
use common::*;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

fn actor(ns: &str, name: &str, spec: Value) -> Value {
    let mut base = json!({
        "actor": name, "image": "python:3.13-slim", "handler": "echo.process", "transport": "rabbitmq",
    });
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

async fn queue_exists(queue: &str) -> bool {
    let admin = asya_controller::queue::LazyRabbitMq::new(rabbitmq_url(), Default::default());
    admin.depth(queue).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_actor_gets_every_child_with_owner_reference_and_its_queue() {
    let Some(c) = cluster("apply").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    c.apply_actor(actor(
        &c.ns,
        "echo",
        json!({"scaling": {"enabled": true, "maxReplicaCount": 4}}),
    ))
    .await;

    let status = c
        .wait_status("echo", "status with conditions", |s| {
            s["conditions"].as_array().is_some_and(|c| c.len() == 3)
        })
        .await;
    let a = c.get_actor("echo").await;
    let queue = format!("asya-{}-echo", c.ns);
    assert_eq!(status["queueName"], queue.as_str());
    assert!(
        queue_exists(&queue).await,
        "queue {queue} missing on the broker"
    );
    assert_eq!(
        condition(&status, "TransportReady").unwrap()["status"],
        "True"
    );

    let refs = status["appliedRefs"]
        .as_array()
        .expect("appliedRefs")
        .clone();
    assert!(refs.iter().any(|r| r["kind"] == "Deployment"), "{refs:?}");
    assert!(refs.iter().any(|r| r["kind"] == "ScaledObject"), "{refs:?}");
    for r in &refs {
        let ar = asya_controller::resources::known(
            r["apiVersion"].as_str().unwrap(),
            r["kind"].as_str().unwrap(),
        )
        .expect("a kind render emits");
        let obj = c
            .api(&ar)
            .get(r["name"].as_str().unwrap())
            .await
            .unwrap_or_else(|e| panic!("{r}: {e}"));
        assert!(owned_by(&obj, &a), "{r} lacks the owner reference");
        assert!(
            obj.labels().contains_key("applyset.kubernetes.io/part-of"),
            "{r} lacks the ApplySet label"
        );
    }
    let so = c.scaled_objects().get("echo").await.expect("ScaledObject");
    assert_eq!(so.data["spec"]["maxReplicaCount"], 4);
    // KEDA owns replicas: the controller's apply never set them.
    let d = c.deployments().get("echo").await.expect("Deployment");
    let ours = d
        .managed_fields()
        .iter()
        .find(|m| m.manager.as_deref() == Some("asya-controller"))
        .expect("managed by asya-controller");
    let fields = serde_json::to_string(&ours.fields_v1).unwrap();
    assert!(
        !fields.contains("f:replicas"),
        "controller owns spec.replicas under KEDA: {fields}"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_actor_updates_children_and_disabling_scaling_prunes_keda_objects() {
    let Some(c) = cluster("edit").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    c.apply_actor(actor(&c.ns, "ed", json!({"scaling": {"enabled": true}})))
        .await;
    wait_for("ScaledObject", || async {
        c.scaled_objects().get_opt("ed").await.ok().flatten()
    })
    .await;

    c.apply_actor(actor(
        &c.ns,
        "ed",
        json!({"image": "python:3.12-slim", "scaling": {"enabled": true}}),
    ))
    .await;
    wait_for("image updated", || async {
        let d = c.deployments().get("ed").await.ok()?;
        let s = serde_json::to_string(&d.data["spec"]["template"]["spec"]["containers"]).ok()?;
        s.contains("python:3.12-slim").then_some(())
    })
    .await;

    c.apply_actor(actor(
        &c.ns,
        "ed",
        json!({"image": "python:3.12-slim", "replicas": 2, "scaling": {"enabled": false}}),
    ))
    .await;
    wait_for("ScaledObject and TriggerAuthentication pruned", || async {
        let so = c.scaled_objects().list(&Default::default()).await.ok()?;
        let ta = c.trigger_auths().list(&Default::default()).await.ok()?;
        (so.items
            .iter()
            .all(|o| o.metadata.deletion_timestamp.is_some())
            && ta
                .items
                .iter()
                .all(|o| o.metadata.deletion_timestamp.is_some()))
        .then_some(())
    })
    .await;
    let d = c.deployments().get("ed").await.expect("Deployment stays");
    assert_eq!(
        d.data["spec"]["replicas"], 2,
        "fixed replicas applied once scaling is off"
    );
    let status = c
        .wait_status("ed", "Manual scaling in status", |s| {
            s["scaling"] == "Manual"
        })
        .await;
    assert_eq!(
        condition(&status, "ScalingReady").unwrap()["reason"],
        "ScalingDisabled"
    );
    // The status is server-side applied under its own field manager: a field the
    // new status lacks (no ScaledObject any more) is gone, not left behind.
    assert!(
        status.get("scaledObjectRef").is_none(),
        "stale scaledObjectRef: {status}"
    );
    let a = c.get_actor("ed").await;
    let status_managers: Vec<_> = a
        .metadata
        .managed_fields
        .iter()
        .flatten()
        // (1.20 has no managedFields[].subresource: look for who owns fields of .status)
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:status").is_some())
        })
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    assert_eq!(
        status_managers,
        vec![(
            Some(asya_controller::reconcile::STATUS_FIELD_MANAGER.to_owned()),
            Some("Apply".to_owned())
        )],
        "status written by server-side apply only"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_written_by_another_writer_survive_reconciles() {
    let Some(c) = cluster("scale").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    c.apply_actor(actor(&c.ns, "sc", json!({"scaling": {"enabled": true}})))
        .await;
    wait_for("Deployment", || async {
        c.deployments().get_opt("sc").await.ok().flatten()
    })
    .await;

    // KEDA's HPA writes spec.replicas through the scale subresource.
    c.deployments()
        .patch_scale(
            "sc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    // Force reconciles: an edit of the actor and of the Deployment's labels.
    c.apply_actor(actor(
        &c.ns,
        "sc",
        json!({"image": "python:3.12-slim", "scaling": {"enabled": true}}),
    ))
    .await;
    wait_for("image updated", || async {
        let d = c.deployments().get("sc").await.ok()?;
        serde_json::to_string(&d.data["spec"])
            .ok()?
            .contains("python:3.12-slim")
            .then_some(())
    })
    .await;
    let gen_before = c.get_actor("sc").await.metadata.generation;
    c.wait_status("sc", "status observed the edit", |s| {
        s["observedGeneration"].as_i64() == gen_before
    })
    .await;
    let d = c.deployments().get("sc").await.unwrap();
    assert_eq!(
        d.data["spec"]["replicas"], 3,
        "the controller reset the HPA's replicas"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_child_comes_back_and_deleted_actor_takes_children_and_queue() {
    let Some(c) = cluster("delete").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    c.apply_actor(actor(&c.ns, "del", json!({"scaling": {"enabled": true}})))
        .await;
    let d = wait_for("Deployment", || async {
        c.deployments().get_opt("del").await.ok().flatten()
    })
    .await;
    let queue = format!("asya-{}-del", c.ns);
    wait_for("queue", || async {
        queue_exists(&queue).await.then_some(())
    })
    .await;

    c.deployments()
        .delete("del", &DeleteParams::background())
        .await
        .expect("delete child");
    wait_for("Deployment re-created", || async {
        let again = c.deployments().get_opt("del").await.ok().flatten()?;
        (again.uid() != d.uid()).then_some(())
    })
    .await;

    c.actors()
        .delete("del", &DeleteParams::foreground())
        .await
        .expect("delete actor");
    wait_for("actor gone", || async {
        c.actors()
            .get_opt("del")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    wait_for("children garbage-collected", || async {
        let d = c.deployments().get_opt("del").await.ok()?;
        let so = c.scaled_objects().get_opt("del").await.ok()?;
        (d.is_none() && so.is_none()).then_some(())
    })
    .await;
    assert!(
        !queue_exists(&queue).await,
        "queue {queue} kept under policy Delete"
    );
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_policy_keeps_the_queue_of_a_deleted_actor() {
    let Some(c) = cluster("retain").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Retain));
    c.apply_actor(actor(&c.ns, "keep", json!({}))).await;
    let queue = format!("asya-{}-keep", c.ns);
    wait_for("queue", || async {
        queue_exists(&queue).await.then_some(())
    })
    .await;
    c.actors()
        .delete("keep", &DeleteParams::background())
        .await
        .expect("delete actor");
    wait_for("actor gone", || async {
        c.actors()
            .get_opt("keep")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(queue_exists(&queue).await, "queue deleted despite Retain");
    let _ = asya_controller::queue::LazyRabbitMq::new(rabbitmq_url(), Default::default())
        .delete_queue(&queue)
        .await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_dry_runs_the_render_and_names_what_would_change() {
    use asya_controller::diff::{Change, diff_actor};
    use asya_controller::render::Renderer;
    let Some(c) = cluster("diff").await else {
        return;
    };
    let r = renderer();
    let _ctl = c.start_controller(r.clone(), rabbit_drivers(DeletionPolicy::Delete));
    let applied = actor(&c.ns, "df", json!({"scaling": {"enabled": true}}));
    c.apply_actor(applied.clone()).await;
    c.wait_status("df", "reconciled", |s| s["appliedRefs"].is_array())
        .await;
    let live = serde_json::to_value(c.get_actor("df").await).unwrap();

    let same = r.render(&live, &[]).expect("render");
    let diffs = diff_actor(&c.client, &c.ns, &same).await.expect("diff");
    assert!(!diffs.is_empty());
    for d in &diffs {
        assert_eq!(d.change, Change::Unchanged, "{d:?}");
    }

    let mut edited = live.clone();
    edited["spec"]["image"] = json!("python:3.12-slim");
    edited["spec"]["scaling"] = json!({"enabled": false});
    let next = r.render(&edited, &[]).expect("render");
    let diffs = diff_actor(&c.client, &c.ns, &next).await.expect("diff");
    let (text, changed) = asya_controller::diff::format(&diffs);
    assert!(changed, "{text}");
    assert!(text.contains("python:3.12-slim"), "{text}");
    assert!(
        diffs
            .iter()
            .any(|d| d.key.kind == "ScaledObject" && d.change == Change::Prune),
        "{text}"
    );
    // A dry run changes nothing.
    let d = c.deployments().get("df").await.unwrap();
    assert!(
        !serde_json::to_string(&d.data["spec"])
            .unwrap()
            .contains("python:3.12-slim")
    );
    c.cleanup().await;
}
