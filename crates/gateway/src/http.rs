//! The two HTTP listeners.
//!
//! - API (`--listen`): `POST /tasks`, `GET /tasks/{id}`, `GET /tasks/{id}/stream` (SSE),
//!   `/mcp` (MCP streamable HTTP) — behind the bearer token when one is configured
//!   ([`crate::auth`]) — and, always open, `/healthz`, `/readyz`, `/metrics`.
//! - Mesh (`--mesh-listen`): `POST /mesh/{id}/progress` and `POST /mesh/{id}/final`, what
//!   sidecars and x-sink call. A separate listener so that it is never reachable through
//!   the API's ingress; both bind to loopback unless told otherwise.
//!
//! Errors are JSON: `{"error": {"type", "message", ...}}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::service::{Gateway, StartError};
use crate::store::{Applied, StoreError};
use crate::task::{ActorStep, NewUpdate, TaskStatus, route_progress};

fn error(status: StatusCode, kind: &str, message: impl Into<String>, extra: Value) -> Response {
    let mut e = json!({"type": kind, "message": message.into()});
    if let (Some(e), Value::Object(extra)) = (e.as_object_mut(), extra) {
        e.extend(extra);
    }
    (status, axum::Json(json!({ "error": e }))).into_response()
}

fn store_error(e: StoreError) -> Response {
    tracing::error!(error = %e, "task store failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "StoreError",
        e.to_string(),
        Value::Null,
    )
}

/// Parses a JSON body into `T`; the error names the field and what was wrong.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("request body: {}", e.inner())
        } else {
            format!("request body: {path}: {}", e.inner())
        }
    })
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "BadRequest", message, Value::Null)
}

/// The API router without auth (with `/mcp` nested by the caller, see [`crate::serve`]).
pub fn api_router(gw: Arc<Gateway>) -> Router {
    tasks_router(gw.clone()).merge(open_router(gw))
}

/// `/tasks`: what the bearer token guards (with `/mcp`).
pub fn tasks_router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/tasks", post(create_task))
        .route("/tasks/{id}", get(get_task))
        .route("/tasks/{id}/stream", get(stream_task))
        .with_state(gw)
}

/// Probes and metrics: never behind auth (kubelet and Prometheus carry no token).
pub fn open_router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(gw)
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics.encode(),
    )
        .into_response()
}

/// The mesh router: what sidecars and x-sink call.
pub fn mesh_router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/mesh/{id}/progress", post(mesh_progress))
        .route("/mesh/{id}/final", post(mesh_final))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(gw)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTask {
    tool: String,
    #[serde(default)]
    arguments: Option<Value>,
}

async fn create_task(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    let req: CreateTask = match parse_body(&body) {
        Ok(r) => r,
        Err(msg) => return bad_request(msg),
    };
    let started = gw.start(&req.tool, req.arguments.as_ref()).await;
    gw.metrics.task_started(&req.tool, &started);
    match started {
        Ok(task) => (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/tasks/{}", task.id))],
            axum::Json(task.to_json()),
        )
            .into_response(),
        Err(e) => start_error(e),
    }
}

fn start_error(e: StartError) -> Response {
    match e {
        StartError::UnknownTool { .. } => error(
            StatusCode::NOT_FOUND,
            "UnknownTool",
            e.to_string(),
            Value::Null,
        ),
        StartError::Arguments(a) => error(
            StatusCode::BAD_REQUEST,
            "InvalidArguments",
            a.to_string(),
            json!({"parameter": a.parameter, "expected": a.expected, "found": a.found}),
        ),
        StartError::Store(s) => store_error(s),
        StartError::Publish { ref task, .. } => {
            let t = task.to_json();
            error(
                StatusCode::BAD_GATEWAY,
                "PublishError",
                e.to_string(),
                json!({"task": t}),
            )
        }
    }
}

async fn get_task(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    match gw.store.get(&id).await {
        Ok(Some(t)) => axum::Json(t.to_json()).into_response(),
        Ok(None) => not_found(&id),
        Err(e) => store_error(e),
    }
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "TaskNotFound",
        format!("no task {id:?}"),
        Value::Null,
    )
}

/// SSE: every update of the task in order (event `update`, id = the update's seq), the
/// last one carrying the result or error; then the stream ends.
async fn stream_task(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    match gw.store.get(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&id),
        Err(e) => return store_error(e),
    }
    let events = gw.follow(&id).map(|u| {
        Ok::<_, Infallible>(match u {
            Ok(u) => Event::default()
                .event("update")
                .id(u.seq.to_string())
                .data(u.to_json().to_string()),
            Err(e) => Event::default()
                .event("error")
                .data(json!({"type": "StoreError", "message": e.to_string()}).to_string()),
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    if let Err(e) = gw.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("task store: {e}")).into_response();
    }
    if !gw.publisher().is_connected() {
        return (StatusCode::SERVICE_UNAVAILABLE, "broker: not connected").into_response();
    }
    "ok".into_response()
}

/// An actor's report (upstream's `/mesh/{id}/progress` body; extra fields are ignored so
/// upstream sidecars can call it).
#[derive(Deserialize)]
struct Progress {
    #[serde(default)]
    prev: Vec<String>,
    #[serde(default)]
    curr: Option<String>,
    #[serde(default)]
    next: Vec<String>,
    /// `received`, `processing` or `completed`.
    status: String,
    #[serde(default)]
    message: Option<String>,
}

async fn mesh_progress(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let p: Progress = match parse_body(&body) {
        Ok(p) => p,
        Err(msg) => {
            gw.metrics.mesh_report("progress", "bad_request");
            return bad_request(msg);
        }
    };
    let Some(step) = ActorStep::parse(&p.status) else {
        gw.metrics.mesh_report("progress", "bad_request");
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "request body: status: expected received, processing or completed, got {:?}",
                p.status
            ),
            Value::Null,
        );
    };
    let actor = p.curr.filter(|c| !c.is_empty());
    let message = p
        .message
        .or_else(|| actor.as_ref().map(|a| format!("{a}: {}", step.as_str())));
    let update = NewUpdate {
        status: TaskStatus::Running,
        progress: route_progress(p.prev.len(), p.next.len(), step),
        actor,
        message,
        result: None,
        error: None,
    };
    let r = gw.report(&id, update).await;
    applied(&gw, "progress", &id, r).await
}

/// The final report (x-sink): `status` is `succeeded` with a `result`, or `failed` with an
/// `error` (an object `{type, message, ...}` or a string; upstream's `error_details` is
/// kept beside a string error).
#[derive(Deserialize)]
struct Final {
    status: String,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    error_details: Option<Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

async fn mesh_final(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let f: Final = match parse_body(&body) {
        Ok(f) => f,
        Err(msg) => {
            gw.metrics.mesh_report("final", "bad_request");
            return bad_request(msg);
        }
    };
    let update = match f.status.as_str() {
        "succeeded" => NewUpdate {
            status: TaskStatus::Succeeded,
            actor: f.actor,
            progress: 100.0,
            message: f.message,
            result: Some(f.result.unwrap_or(Value::Null)),
            error: None,
        },
        "failed" => {
            let error = match (f.error, f.error_details) {
                (Some(Value::String(m)), Some(d)) => json!({"message": m, "details": d}),
                (Some(Value::String(m)), None) => json!({"message": m}),
                (Some(e), _) => e,
                (None, Some(d)) => json!({"details": d}),
                (None, None) => json!({"message": "failed without an error"}),
            };
            NewUpdate {
                status: TaskStatus::Failed,
                actor: f.actor,
                progress: 0.0,
                message: f.message,
                result: None,
                error: Some(error),
            }
        }
        other => {
            gw.metrics.mesh_report("final", "bad_request");
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("request body: status: expected succeeded or failed, got {other:?}"),
                Value::Null,
            );
        }
    };
    let r = gw.report(&id, update).await;
    applied(&gw, "final", &id, r).await
}

/// 200 `{applied: true, seq}`; 200 `{applied: false, status}` for a late or repeated
/// report (a reporter must not retry it); 404 for an unknown task. Counted by `kind`; a
/// report that finished the task also records the task's duration.
async fn applied(gw: &Gateway, kind: &str, id: &str, r: Result<Applied, StoreError>) -> Response {
    let result = match &r {
        Ok(Applied::Applied(_)) => "applied",
        Ok(Applied::Stale(_)) => "ignored",
        Ok(Applied::NotFound) => "not_found",
        Err(_) => "store_error",
    };
    gw.metrics.mesh_report(kind, result);
    match r {
        Ok(Applied::Applied(u)) => {
            if u.status.is_terminal() {
                // The duration is the stored one (created_at to the final update), so
                // replicas agree; a failed read only loses the observation.
                if let Ok(Some(task)) = gw.store.get(id).await {
                    gw.metrics.task_finished(&task);
                }
            }
            axum::Json(json!({"applied": true, "seq": u.seq})).into_response()
        }
        Ok(Applied::Stale(s)) => {
            axum::Json(json!({"applied": false, "status": s.as_str()})).into_response()
        }
        Ok(Applied::NotFound) => not_found(id),
        Err(e) => store_error(e),
    }
}
