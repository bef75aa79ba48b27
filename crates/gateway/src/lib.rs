//! The Asya gateway: MCP tools and a REST API that start actor pipelines, a task store
//! (PostgreSQL or SQLite) and live progress reported by the pipeline.
//!
//! - [`config`]: the tools file, read once into typed config;
//! - [`tool`]: parameters, the JSON Schema agents see, argument checks;
//! - [`store`]: tasks and their updates (sqlx, embedded migrations);
//! - [`publish`]: envelopes onto the first actor's queue (the transport crate);
//! - [`service`]: start a task, apply reports, follow a task;
//! - [`http`]: the API and mesh listeners; [`mcp`]: the MCP server at `/mcp`;
//! - [`auth`]: the optional bearer token on `/mcp` and `/tasks`;
//! - [`metrics`]: Prometheus metrics at `/metrics`;
//! - [`reload`]: re-reading the tools file (and token file) when it changes.

pub mod auth;
pub mod config;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod publish;
pub mod reaper;
pub mod reload;
pub mod service;
pub mod store;
pub mod task;
pub mod tool;

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::{TcpListener, TcpStream};

pub use service::Gateway;

/// How the API listener is set up.
#[derive(Clone, Default)]
pub struct ApiOptions {
    /// `Host` values MCP accepts (rmcp guards against DNS rebinding; empty keeps its
    /// loopback-only default).
    pub allowed_hosts: Vec<String>,
    /// The bearer token `/mcp` and `/tasks` require; none: open.
    pub auth: Option<auth::BearerAuth>,
}

/// The API router with the MCP endpoint at `/mcp`, without auth.
pub fn api_app(gw: Arc<Gateway>, allowed_hosts: &[String]) -> axum::Router {
    api_app_with(
        gw,
        &ApiOptions {
            allowed_hosts: allowed_hosts.to_vec(),
            auth: None,
        },
    )
}

/// The API router: `/mcp` and `/tasks` (behind the token of `opts.auth`, if any), and the
/// open `/healthz`, `/readyz`, `/metrics`.
pub fn api_app_with(gw: Arc<Gateway>, opts: &ApiOptions) -> axum::Router {
    // Stateless: any replica can answer any request (no session affinity needed).
    let mut cfg = StreamableHttpServerConfig::default().with_legacy_session_mode(false);
    if !opts.allowed_hosts.is_empty() {
        cfg.allowed_hosts = opts.allowed_hosts.clone();
    }
    let for_mcp = gw.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(mcp::McpServer::new(for_mcp.clone())),
        Arc::new(LocalSessionManager::default()),
        cfg,
    );
    let mut guarded = http::tasks_router(gw.clone()).nest_service("/mcp", mcp);
    if let Some(a) = &opts.auth {
        guarded = guarded.layer(axum::middleware::from_fn_with_state(
            (a.clone(), gw.metrics.clone()),
            auth::require_bearer,
        ));
    }
    guarded.merge(http::open_router(gw))
}

/// Serves the API on `api` and the mesh endpoints on `mesh` until `shutdown` resolves.
pub async fn serve(
    gw: Arc<Gateway>,
    api: TcpListener,
    mesh: TcpListener,
    allowed_hosts: &[String],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let opts = ApiOptions {
        allowed_hosts: allowed_hosts.to_vec(),
        auth: None,
    };
    serve_with(gw, api, mesh, &opts, shutdown).await
}

/// [`serve`] with every API option.
pub async fn serve_with(
    gw: Arc<Gateway>,
    api: TcpListener,
    mesh: TcpListener,
    opts: &ApiOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // TCP_NODELAY: an SSE stream writes small chunks one after another; with Nagle's
    // algorithm each waited for the client's delayed ACK (about 40 ms per call, measured).
    let api_srv = axum::serve(api.tap_io(no_delay), api_app_with(gw.clone(), opts))
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    let mesh_srv = axum::serve(mesh.tap_io(no_delay), http::mesh_router(gw))
        .with_graceful_shutdown(stopped(stop_rx));
    let (a, m) = tokio::join!(api_srv, mesh_srv);
    a.and(m)
}

fn no_delay(tcp: &mut TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
    }
}
