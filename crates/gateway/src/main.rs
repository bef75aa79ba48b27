//! `asya-gateway --config tools.yaml [--database-url URL] [--listen ADDR] [--mesh-listen ADDR]`

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use asya_gateway::config::ToolsConfig;
use asya_gateway::publish::{BrokerSettings, Publisher};
use asya_gateway::store::Store;
use asya_gateway::{Gateway, serve};
use clap::Parser;

/// MCP tools and a REST API that start Asya actor pipelines.
///
/// Broker settings come from the same ASYA_* variables as an actor's sidecar
/// (ASYA_TRANSPORT, ASYA_NAMESPACE, ASYA_QUEUE_NAMING, ASYA_RABBITMQ_*).
#[derive(Parser)]
#[command(name = "asya-gateway", version)]
struct Args {
    /// The tools file: `routes.tools` (chart values) or a top-level `tools` list.
    #[arg(long)]
    config: PathBuf,
    /// Task store: postgres://... or sqlite:FILE (created if missing) or sqlite::memory:.
    #[arg(long, default_value = "sqlite:asya-gateway.db")]
    database_url: String,
    /// API listener: /tasks, /mcp, /healthz, /readyz.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Mesh listener for sidecars and x-sink: /mesh/{id}/progress, /mesh/{id}/final.
    #[arg(long, default_value = "127.0.0.1:8081")]
    mesh_listen: String,
    /// URL sidecars reach the mesh listener at; stamped into envelopes as x-asya-gateway-url.
    #[arg(long)]
    mesh_url: Option<String>,
    /// Host header values /mcp accepts (repeatable); default: loopback names only.
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let broker = BrokerSettings::from_env(|k| std::env::var(k).ok())
        .context("reading the broker settings")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&broker.env.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let tools = ToolsConfig::load(&args.config)?;
    let store = Store::connect(&args.database_url).await?;
    let publisher = Publisher::connect(&broker)
        .await
        .context("connecting to the broker")?;
    let api = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("--listen {}", args.listen))?;
    let mesh = tokio::net::TcpListener::bind(&args.mesh_listen)
        .await
        .with_context(|| format!("--mesh-listen {}", args.mesh_listen))?;
    tracing::info!(
        tools = tools.tools.len(),
        store = store.backend(),
        namespace = %broker.namespace,
        api = %api.local_addr()?,
        mesh = %mesh.local_addr()?,
        "asya-gateway listening"
    );
    let gw = Gateway::new(tools, store, publisher, args.mesh_url);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // Open SSE streams would hold a graceful shutdown forever: give them a bound.
    let served = serve(gw.clone(), api, mesh, &args.allowed_hosts, shutdown);
    served.await?;
    tokio::time::timeout(Duration::from_secs(5), gw.publisher().close())
        .await
        .ok();
    Ok(())
}
