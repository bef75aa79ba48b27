//! Failure paths of one reconcile against a mocked API server: named
//! scenarios in the style of kube-rs's controller-rs. Each scenario says how
//! the server answers; the test runs one reconcile and checks what the
//! controller sent (status, Events, which requests at all). No cluster: the
//! client's transport is a `tower::service_fn` that records every request.
//! The same paths are tested on the real API server in `failures.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use asya_controller::crd::{AsyncActor, Flavor};
use asya_controller::metrics::Metrics;
use asya_controller::queue::QueueDrivers;
use asya_controller::reconcile::{self, Context};
use asya_controller::render::PlatformRenderer;
use asya_render::api::platform::Platform;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use serde_json::{Value, json};

/// One request the controller sent.
#[derive(Debug, Clone)]
struct Sent {
    method: String,
    /// Path and query.
    uri: String,
    body: Value,
}

/// How the mocked server answers a request: status code and JSON body.
type Answer = dyn Fn(&Sent) -> (u16, Value) + Send + Sync;

/// A client whose every request is answered by `answer` and recorded.
fn mocked(answer: Arc<Answer>) -> (Client, Arc<Mutex<Vec<Sent>>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = sent.clone();
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let answer = answer.clone();
        let log = log.clone();
        async move {
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let bytes = req
                .into_body()
                .collect_bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            let request = Sent {
                method,
                uri,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let (code, body) = answer(&request);
            log.lock().expect("log").push(request);
            let response = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(
                    serde_json::to_vec(&body).expect("json"),
                ))
                .expect("response");
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    (Client::new(service, "default"), sent)
}

fn status_error(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
               "code": code, "reason": reason, "message": message}),
    )
}

/// A server that accepts everything: an apply or status patch answers
/// with its body (plus a uid and generation), an Event with itself.
fn accept(req: &Sent) -> (u16, Value) {
    let mut body = req.body.clone();
    // A status apply carries no metadata; the server answers with the whole object.
    if body.is_object() && body.get("metadata").is_none() {
        body["metadata"] = json!({"name": "a", "namespace": "ns"});
    }
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("uid").or_insert(json!("child-uid"));
        meta.entry("generation").or_insert(json!(1));
        meta.entry("resourceVersion").or_insert(json!("1"));
    }
    if req.method == "GET" && req.uri.contains("labelSelector") {
        return (
            200,
            json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}),
        );
    }
    if req.method == "GET" {
        return status_error(404, "NotFound", "not found");
    }
    (if req.method == "POST" { 201 } else { 200 }, body)
}

/// An actor that already carries the finalizer (so the pass applies).
fn actor(spec: Value, status: Option<Value>) -> AsyncActor {
    let mut a = json!({
        "apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor",
        "metadata": {"name": "a", "namespace": "ns", "uid": "actor-uid", "generation": 1,
                     "resourceVersion": "7", "finalizers": [reconcile::FINALIZER]},
        "spec": spec,
    });
    if let Some(s) = status {
        a["status"] = s;
    }
    serde_json::from_value(a).expect("actor")
}

fn spec(extra: Value) -> Value {
    let mut s = json!({"actor": "a", "image": "python:3.13-slim", "handler": "echo.process", "transport": "rabbitmq"});
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    s
}

fn context(client: Client) -> Arc<Context> {
    let mut queues = QueueDrivers::default();
    // Queues are not this harness's subject (the real-server tests cover them).
    queues.set_external(true);
    Arc::new(Context {
        client: client.clone(),
        renderer: Arc::new(PlatformRenderer::new(Platform::default()).expect("compositions")),
        queues,
        metrics: Metrics::default(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "asya-test".into(),
                instance: None,
            },
        ),
        flavors: Writer::<Flavor>::default().as_reader(),
        resync: Duration::from_secs(600),
        failures: Default::default(),
        applied: Default::default(),
        caches: None,
        kinds: Default::default(),
        secrets: Default::default(),
        hpa_version: Default::default(),
    })
}

/// Runs one reconcile of `actor` against a server that answers with `answer`.
async fn scenario(
    actor: AsyncActor,
    answer: impl Fn(&Sent) -> (u16, Value) + Send + Sync + 'static,
) -> (Result<(), String>, Vec<Sent>) {
    let (client, sent) = mocked(Arc::new(answer));
    let result = reconcile::reconcile(Arc::new(actor), context(client))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let sent = sent.lock().expect("log").clone();
    (result, sent)
}

fn status_writes(sent: &[Sent]) -> Vec<&Value> {
    sent.iter()
        .filter(|s| s.method == "PATCH" && s.uri.contains("/asyncactors/a/status"))
        .map(|s| &s.body["status"])
        .collect()
}

fn events(sent: &[Sent]) -> Vec<&Value> {
    sent.iter()
        .filter(|s| s.method == "POST" && s.uri.contains("/events"))
        .map(|s| &s.body)
        .collect()
}

fn condition<'a>(status: &'a Value, t: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_workload_the_server_rejects_is_written_as_apply_rejected_with_one_event() {
    let (result, sent) = scenario(actor(spec(json!({})), None), |req| {
        if req.method == "PATCH" && req.uri.contains("/deployments/a") {
            return status_error(
                422,
                "Invalid",
                "Deployment.apps \"a\" is invalid: spec.template.spec.nodeSelector: Invalid value: \"bad key!\"",
            );
        }
        accept(req)
    })
    .await;
    assert!(result.is_err(), "the error goes back for backoff");
    let writes = status_writes(&sent);
    assert_eq!(writes.len(), 1, "{sent:#?}");
    let w = condition(writes[0], "WorkloadReady");
    assert_eq!(
        (&w["status"], &w["reason"]),
        (&json!("False"), &json!("ApplyRejected"))
    );
    assert_eq!(writes[0]["phase"], "Invalid");
    let status_patch = sent
        .iter()
        .find(|s| s.uri.contains("/asyncactors/a/status"))
        .expect("status patch");
    assert!(
        status_patch
            .uri
            .contains("fieldManager=asya-controller-status")
            && status_patch.uri.contains("force=true"),
        "status is server-side applied under its own manager: {}",
        status_patch.uri
    );
    let evs = events(&sent);
    assert_eq!(evs.len(), 1, "{evs:#?}");
    assert_eq!(evs[0]["reason"], "ApplyRejected");
    assert_eq!(evs[0]["type"], "Warning");
    assert!(
        !sent
            .iter()
            .any(|s| s.method == "GET" && s.uri.contains("labelSelector")),
        "no prune after a failed apply"
    );
}

#[tokio::test]
async fn an_unserved_scaled_object_is_crd_missing() {
    let (result, sent) = scenario(
        actor(spec(json!({"scaling": {"enabled": true}})), None),
        |req| {
            if req.uri.contains("/apis/keda.sh/") && req.method == "PATCH" {
                return status_error(404, "NotFound", "404 page not found");
            }
            accept(req)
        },
    )
    .await;
    assert!(result.is_err());
    let writes = status_writes(&sent);
    assert_eq!(writes.len(), 1, "{sent:#?}");
    let w = condition(writes[0], "WorkloadReady");
    assert_eq!(w["reason"], "CrdMissing");
    assert!(
        w["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("is KEDA installed?")),
        "{w}"
    );
}

#[tokio::test]
async fn an_invalid_spec_applies_nothing_and_says_render_invalid() {
    let (result, sent) = scenario(actor(spec(json!({"flavors": ["nowhere"]})), None), accept).await;
    assert!(result.is_err());
    assert!(
        !sent
            .iter()
            .any(|s| s.method == "PATCH" && !s.uri.contains("/asyncactors/")),
        "nothing but the status is written: {sent:#?}"
    );
    let writes = status_writes(&sent);
    assert_eq!(writes.len(), 1);
    assert_eq!(
        condition(writes[0], "WorkloadReady")["reason"],
        "RenderInvalid"
    );
    assert_eq!(events(&sent).len(), 1);
}

#[tokio::test]
async fn a_failure_already_in_status_is_neither_written_nor_published_again() {
    // First pass: the failure is written; its status becomes the stored one.
    let (_, first) = scenario(actor(spec(json!({"flavors": ["nowhere"]})), None), accept).await;
    let stored = status_writes(&first)[0].clone();
    let (result, sent) = scenario(
        actor(spec(json!({"flavors": ["nowhere"]})), Some(stored)),
        accept,
    )
    .await;
    assert!(result.is_err(), "still failing, still backing off");
    assert!(status_writes(&sent).is_empty(), "{sent:#?}");
    assert!(events(&sent).is_empty(), "{sent:#?}");
    assert!(
        sent.is_empty(),
        "a repeated failure costs no request: {sent:#?}"
    );
}

#[tokio::test]
async fn the_write_avoidance_cache_forgets_a_deleted_actor() {
    let a = actor(spec(json!({})), None);
    let stored = serde_json::to_value(&a).expect("json");
    // The finalizer's removal (a JSON patch of the actor) answers with the actor.
    let (client, sent) = mocked(Arc::new(move |req: &Sent| {
        if req.method == "PATCH" && req.uri.contains("/asyncactors/a/status") {
            let mut s = stored.clone();
            s["status"] = req.body["status"].clone();
            return (200, s);
        }
        if req.method == "PATCH" && req.uri.contains("/asyncactors/a?") {
            let mut s = stored.clone();
            s["metadata"]["finalizers"] = json!([]);
            return (200, s);
        }
        accept(req)
    }));
    let ctx = context(client);
    reconcile::reconcile(Arc::new(a.clone()), ctx.clone())
        .await
        .expect("a pass against a server that accepts everything");
    assert_eq!(ctx.applied.len(), 1, "the apply is remembered");
    let applies = |sent: &[Sent]| {
        sent.iter()
            .filter(|s| s.method == "PATCH" && !s.uri.contains("/asyncactors/"))
            .count()
    };
    assert!(applies(&sent.lock().expect("log")) > 0);
    let mut deleted = a;
    deleted.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    // The finalizer's removal answers with the object minus the finalizer.
    reconcile::reconcile(Arc::new(deleted), ctx.clone())
        .await
        .expect("cleanup");
    assert!(ctx.applied.is_empty(), "entry of the deleted actor removed");
}
