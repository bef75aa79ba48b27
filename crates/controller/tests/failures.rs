//! Every failure reaches the actor within one reconcile: phase, a condition
//! with a stable reason and a one-line message, and a Warning Event — checked
//! the way a user looks, with `kubectl get asyas` and `kubectl describe asya`,
//! against a real kube-apiserver 1.20.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use asya_controller::metrics::ErrorLabels;
use asya_controller::queue::{DeletionPolicy, QueueDrivers};
use asya_controller::render::{PlatformRenderer, RenderedActor, Renderer};
use asya_render::api::platform::{Platform, TransportSettings};
use common::*;
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

/// `kubectl <args>` against the test cluster; its stdout.
fn kubectl(args: &[&str]) -> String {
    let kubeconfig = std::env::var("ASYA_TEST_KUBECONFIG").expect("ASYA_TEST_KUBECONFIG");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `kubectl get asyas` shows `phase` for the actor and `kubectl
/// describe asya` shows the condition reason, the message and a Warning
/// Event with that reason; returns the describe output.
async fn wait_visible(c: &Cluster, name: &str, phase: &str, reason: &str, message: &str) -> String {
    wait_for(&format!("{name}: {phase}/{reason} in kubectl"), || async {
        let get = kubectl(&["get", "asyas", "-n", &c.ns]);
        let row = get
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))?;
        if row.split_whitespace().nth(1) != Some(phase) {
            return None;
        }
        let describe = kubectl(&["describe", "asya", name, "-n", &c.ns]);
        let event = describe
            .lines()
            .any(|l| l.trim_start().starts_with("Warning") && l.contains(reason));
        let condition_reason = describe.lines().any(|l| {
            let l = l.trim();
            l.starts_with("Reason:") && l.ends_with(reason)
        });
        (condition_reason && event && describe.contains(message)).then_some(describe)
    })
    .await
}

fn errors(c: &Cluster, kind: &str) -> u64 {
    c.metrics
        .errors
        .get_or_create(&ErrorLabels { kind: kind.into() })
        .get()
}

/// The condition's message is one line a person can act on.
fn assert_one_line(status: &Value, condition_type: &str, max: usize) -> String {
    let msg = condition(status, condition_type).expect("condition")["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(!msg.contains('\n'), "multi-line message: {msg}");
    assert!(msg.len() <= max, "{} chars: {msg}", msg.len());
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_the_api_server_rejects_is_apply_rejected_and_retried() {
    let Some(c) = cluster("apply-rejected").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    // A value render accepts and the API server rejects: a node selector key that is not a
    // label key. (A malformed quantity no longer gets this far: render rejects it, RenderInvalid.)
    c.apply_actor(actor(
        &c.ns,
        "rej",
        json!({"nodeSelector": {"bad key!": "x"}}),
    ))
    .await;
    let status = c
        .wait_status("rej", "ApplyRejected", |s| {
            condition(s, "WorkloadReady").is_some_and(|w| w["reason"] == "ApplyRejected")
        })
        .await;
    assert_eq!(status["phase"], "Invalid", "{status}");
    let msg = assert_one_line(&status, "WorkloadReady", 320);
    assert!(
        msg.starts_with("the API server rejected Deployment rej: ") && msg.contains("nodeSelector"),
        "{msg}"
    );
    assert!(msg.ends_with("fix the actor's spec"), "{msg}");
    let describe = wait_visible(
        &c,
        "rej",
        "Invalid",
        "ApplyRejected",
        "fix the actor's spec",
    )
    .await;
    assert!(describe.contains("WorkloadReady"), "{describe}");
    // Backoff continues: the failure is retried, and reported as one Event.
    wait_for("a retried apply", || async {
        (errors(&c, "apply") >= 2).then_some(())
    })
    .await;
    let events = kubectl(&[
        "get",
        "events",
        "-n",
        &c.ns,
        "--field-selector",
        "reason=ApplyRejected",
        "-o",
        "name",
    ]);
    assert_eq!(
        events.lines().count(),
        1,
        "one Event per distinct failure: {events}"
    );
    // Fixed spec: the next pass succeeds and the failure leaves the status.
    c.apply_actor(actor(
        &c.ns,
        "rej",
        json!({"resources": {"limits": {"cpu": "100m"}}}),
    ))
    .await;
    c.wait_status("rej", "WorkloadReady no longer ApplyRejected", |s| {
        s["phase"] != "Invalid"
            && condition(s, "WorkloadReady").is_some_and(|w| w["reason"] != "ApplyRejected")
    })
    .await;
    c.cleanup().await;
}

/// The platform's render, with the ScaledObject moved to a version of
/// `keda.sh` that no installed CRD serves — what a cluster without KEDA (or
/// with an older KEDA) answers for every ScaledObject apply. The shared test
/// cluster keeps KEDA's CRDs for the other tests running at the same time.
struct UnservedScaledObject(PlatformRenderer);

impl Renderer for UnservedScaledObject {
    fn render(&self, actor: &Value, flavors: &[Value]) -> Result<RenderedActor, String> {
        let mut r = self.0.render(actor, flavors)?;
        for o in &mut r.objects {
            if o["kind"] == "ScaledObject" {
                o["apiVersion"] = json!("keda.sh/v1alpha0");
            }
        }
        Ok(r)
    }
    fn default_transport(&self) -> String {
        self.0.default_transport()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaled_object_kind_the_server_does_not_serve_is_crd_missing() {
    let Some(c) = cluster("crd-missing").await else {
        return;
    };
    let inner = PlatformRenderer::new(Platform::default()).expect("compositions");
    let _ctl = c.start_controller(
        Arc::new(UnservedScaledObject(inner)),
        rabbit_drivers(DeletionPolicy::Delete),
    );
    c.apply_actor(actor(
        &c.ns,
        "nokeda",
        json!({"scaling": {"enabled": true}}),
    ))
    .await;
    let status = c
        .wait_status("nokeda", "CrdMissing", |s| {
            condition(s, "WorkloadReady").is_some_and(|w| w["reason"] == "CrdMissing")
        })
        .await;
    let msg = assert_one_line(&status, "WorkloadReady", 200);
    assert_eq!(
        msg,
        "ScaledObject CRD not found (keda.sh/v1alpha0 is not served): is KEDA installed?"
    );
    wait_visible(&c, "nokeda", "Degraded", "CrdMissing", "is KEDA installed?").await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_sqs_endpoint_is_queue_unavailable_in_one_line() {
    let Some(c) = cluster("queue-unavailable").await else {
        return;
    };
    // Nothing listens on port 1: every SQS call fails to connect.
    let settings = TransportSettings {
        region: Some("us-east-1".into()),
        endpoint: Some("http://127.0.0.1:1".into()),
        ..Default::default()
    };
    let mut queues = QueueDrivers::default();
    queues.insert(
        "sqs",
        asya_controller::queue::sqs_driver(&settings, Default::default()).expect("sqs driver"),
        DeletionPolicy::Retain,
    );
    let _ctl = c.start_controller(renderer(), queues);
    c.apply_actor(actor(&c.ns, "nosqs", json!({"transport": "sqs"})))
        .await;
    let status = c
        .wait_status("nosqs", "QueueUnavailable", |s| {
            condition(s, "TransportReady").is_some_and(|t| t["reason"] == "QueueUnavailable")
        })
        .await;
    assert_eq!(status["phase"], "TransportError", "{status}");
    let msg = assert_one_line(&status, "TransportReady", 320);
    assert!(msg.contains("Connection refused"), "{msg}");
    assert!(
        !msg.contains("DispatchFailure") && !msg.contains('{'),
        "the SDK's Debug dump leaked into the message: {msg}"
    );
    wait_visible(
        &c,
        "nosqs",
        "TransportError",
        "QueueUnavailable",
        "check the transport's endpoint",
    )
    .await;
    wait_for("a retried queue", || async {
        (errors(&c, "queue_not_ready") >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_flavor_is_render_invalid_in_kubectl() {
    let Some(c) = cluster("render-invalid").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    let missing = format!("nope-{}", short_id());
    c.apply_actor(actor(&c.ns, "badfl", json!({"flavors": [missing]})))
        .await;
    let status = c
        .wait_status("badfl", "RenderInvalid", |s| {
            condition(s, "WorkloadReady").is_some_and(|w| w["reason"] == "RenderInvalid")
        })
        .await;
    let msg = assert_one_line(&status, "WorkloadReady", 320);
    assert!(msg.contains(&missing), "{msg}");
    wait_visible(&c, "badfl", "Invalid", "RenderInvalid", &missing).await;
    c.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_the_trigger_authentication_names_is_checked_and_reported() {
    let Some(c) = cluster("secret-missing").await else {
        return;
    };
    let _ctl = c.start_controller(renderer(), rabbit_drivers(DeletionPolicy::Delete));
    c.apply_actor(actor(&c.ns, "sec", json!({"scaling": {"enabled": true}})))
        .await;
    // Whatever secret and key the render's TriggerAuthentication names.
    let (secret, key) = wait_for("a TriggerAuthentication with a secretTargetRef", || async {
        let list = c.trigger_auths().list(&Default::default()).await.ok()?;
        let r = list
            .items
            .iter()
            .find_map(|ta| ta.data.pointer("/spec/secretTargetRef/0").cloned())?;
        Some((
            r["name"].as_str()?.to_owned(),
            r["key"].as_str()?.to_owned(),
        ))
    })
    .await;
    let status = c
        .wait_status("sec", "SecretMissing", |s| {
            condition(s, "ScalingReady").is_some_and(|w| w["reason"] == "SecretMissing")
        })
        .await;
    assert_eq!(status["phase"], "Degraded", "{status}");
    let msg = condition(&status, "ScalingReady").expect("ScalingReady")["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(
        msg.starts_with(&format!("secret {secret} not found: "))
            && msg.contains(&format!("create secret {secret} with key {key} (")),
        "{msg}"
    );
    wait_visible(
        &c,
        "sec",
        "Degraded",
        "SecretMissing",
        &format!("create secret {secret} with key {key}"),
    )
    .await;

    // A secret with another key (e.g. upstream's, for the other protocol): named as such.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(c.client.clone(), &c.ns);
    let pp = kube::api::PatchParams::apply("test-user").force();
    let body = |data: Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": c.ns},
               "stringData": data})
    };
    secrets
        .patch(
            &secret,
            &pp,
            &kube::api::Patch::Apply(body(json!({"unrelated": "x"}))),
        )
        .await
        .expect("create secret");
    c.wait_status("sec", "the missing key named", |s| {
        condition(s, "ScalingReady").is_some_and(|w| {
            w["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("has no key {key} (it has: unrelated)")))
        })
    })
    .await;

    // The right key: the condition and the phase recover.
    secrets
        .patch(
            &secret,
            &pp,
            &kube::api::Patch::Apply(body(
                json!({ key.as_str(): "http://guest:guest@127.0.0.1:15672/" }),
            )),
        )
        .await
        .expect("fill secret");
    let status = c
        .wait_status("sec", "ScalingReady no longer SecretMissing", |s| {
            condition(s, "ScalingReady").is_some_and(|w| w["reason"] != "SecretMissing")
        })
        .await;
    assert_ne!(status["phase"], "Degraded", "{status}");
    c.cleanup().await;
}
