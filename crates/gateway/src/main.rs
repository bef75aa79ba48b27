//! `asya-gateway --config tools.yaml [--database-url URL] [--listen ADDR] [--mesh-listen ADDR]`

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use asya_gateway::auth::BearerAuth;
use asya_gateway::config::ToolsConfig;
use asya_gateway::publish::{BrokerSettings, Publisher};
use asya_gateway::store::Store;
use asya_gateway::{ApiOptions, Gateway, reload, serve_with};
use clap::Parser;

use asya_contract::env::gateway::{AUTH_TOKEN, DATABASE_PASSWORD};

/// MCP tools and a REST API that start Asya actor pipelines.
///
/// Broker settings come from the same ASYA_* variables as an actor's sidecar
/// (ASYA_TRANSPORT, ASYA_NAMESPACE, ASYA_QUEUE_NAMING, ASYA_RABBITMQ_*).
#[derive(Parser)]
#[command(name = "asya-gateway", version)]
struct Args {
    /// The tools file: `routes.tools` (chart values) or a top-level `tools` list. Re-read
    /// when it changes (see --reload-interval).
    #[arg(long)]
    config: PathBuf,
    /// Check the tools file, print its tools and exit (no broker or database needed).
    #[arg(long)]
    check_config: bool,
    /// Task store: postgres://... or sqlite:FILE (created if missing) or sqlite::memory:.
    /// The PostgreSQL password may come apart from the URL, in ASYA_DATABASE_PASSWORD.
    #[arg(
        long,
        env = asya_contract::env::gateway::DATABASE_URL,
        default_value = "sqlite:asya-gateway.db"
    )]
    database_url: String,
    /// API listener: /tasks, /mcp, /healthz, /readyz, /metrics.
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
    /// Require `Authorization: Bearer <token>` on /mcp and /tasks, the token read from this
    /// file (re-read when it changes). Or set ASYA_GATEWAY_AUTH_TOKEN.
    #[arg(long, env = asya_contract::env::gateway::AUTH_TOKEN_FILE)]
    auth_token_file: Option<PathBuf>,
    /// Seconds after a task's deadline (created + the tool's timeout) before a task with
    /// no final report is failed (`DeadlineExceeded`); 0: never.
    #[arg(long, default_value_t = 30)]
    deadline_grace: u64,
    /// Seconds between looks at the tools file (and token file) for changes; 0: never.
    #[arg(long, default_value_t = 5)]
    reload_interval: u64,
}

/// The bearer token, if one is configured: the file wins over the variable.
fn bearer_auth(args: &Args) -> anyhow::Result<Option<BearerAuth>> {
    if let Some(f) = &args.auth_token_file {
        return Ok(Some(BearerAuth::from_file(f)?));
    }
    match std::env::var(AUTH_TOKEN) {
        Ok(t) => Ok(Some(BearerAuth::new(&t, AUTH_TOKEN)?)),
        Err(_) => Ok(None),
    }
}

/// What `--check-config` prints: one line per tool.
fn describe_tools(file: &str, tools: &ToolsConfig) -> String {
    let n = tools.tools.len();
    let mut out = format!("{file}: {n} tool{} ok\n", if n == 1 { "" } else { "s" });
    for t in &tools.tools {
        let params: Vec<String> = t
            .parameters
            .iter()
            .map(|p| format!("{}{}", p.name, if p.required { "*" } else { "" }))
            .collect();
        out.push_str(&format!(
            "  {}: {} (parameters: {}; timeout {} s)\n",
            t.name,
            t.route.join(" -> "),
            if params.is_empty() {
                "none".to_string()
            } else {
                params.join(", ")
            },
            t.timeout.as_secs_f64()
        ));
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.check_config {
        let tools = ToolsConfig::load(&args.config)?;
        print!(
            "{}",
            describe_tools(&args.config.display().to_string(), &tools)
        );
        return Ok(());
    }
    let broker = BrokerSettings::from_env(|k| std::env::var(k).ok())
        .context("reading the broker settings")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&broker.env.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colours only on a terminal: a pod's log (or a file) gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let tools = ToolsConfig::load(&args.config)?;
    let auth = bearer_auth(&args)?;
    let password = std::env::var(DATABASE_PASSWORD)
        .ok()
        .filter(|p| !p.is_empty());
    let store = Store::connect_with_password(&args.database_url, password.as_deref()).await?;
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
        auth = auth.is_some(),
        "asya-gateway listening"
    );
    let gw = Gateway::new(tools, store, publisher, args.mesh_url);
    let watcher = (args.reload_interval > 0).then(|| {
        tokio::spawn(reload::watch(
            gw.clone(),
            args.config.clone(),
            auth.clone(),
            Duration::from_secs(args.reload_interval),
        ))
    });
    let sweeper = (args.deadline_grace > 0).then(|| {
        let grace = Duration::from_secs(args.deadline_grace);
        let every = (grace / 2).clamp(Duration::from_secs(1), Duration::from_secs(10));
        tokio::spawn(asya_gateway::reaper::run(gw.clone(), grace, every))
    });
    // Kubernetes stops a pod with SIGTERM; a terminal with Ctrl-C.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let opts = ApiOptions {
        allowed_hosts: args.allowed_hosts.clone(),
        auth,
    };
    // Open SSE streams would hold a graceful shutdown forever: give them a bound.
    let served = serve_with(gw.clone(), api, mesh, &opts, shutdown);
    served.await?;
    for task in [watcher, sweeper].into_iter().flatten() {
        task.abort();
    }
    tokio::time::timeout(Duration::from_secs(5), gw.publisher().close())
        .await
        .ok();
    Ok(())
}
