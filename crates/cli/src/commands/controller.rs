//! `asya controller`: run the in-cluster controller (or against any kubeconfig).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use asya_controller::leader::LeaseConfig;
use asya_controller::metrics::Metrics;
use asya_controller::render::PlatformRenderer;
use asya_controller::run::Options;

/// Arguments of `asya controller`.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Platform configuration (transports, queue provisioner and deletion policy, KEDA, sidecar).
    /// Without it the built-in defaults apply (RabbitMQ on 127.0.0.1).
    #[arg(long, env = "ASYA_PLATFORM")]
    pub platform: Option<PathBuf>,
    /// Kubeconfig to use; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(
        long,
        default_value = "0.0.0.0:8080",
        env = "ASYA_CONTROLLER_METRICS_ADDR"
    )]
    pub metrics_addr: SocketAddr,
    /// Seconds between periodic resyncs of every actor.
    #[arg(long, default_value_t = 300)]
    pub resync_seconds: u64,
    /// Actors reconciled at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    /// Take a coordination.k8s.io Lease before reconciling (for more than one replica).
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "asya-system")]
    pub leader_election_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "asya-controller")]
    pub leader_election_id: String,
    /// Log format; default: `text` on a terminal, `json` otherwise (one object per line).
    #[arg(long, value_enum, env = "ASYA_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// How the controller writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Runs the controller until SIGINT/SIGTERM; returns the exit code.
pub fn run(
    args: &ControllerArgs,
    _out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> i32 {
    match serve(args) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            1
        }
    }
}

/// Logs go to stdout; colours only on a terminal, JSON by default elsewhere
/// (a pod's log collector reads it line by line).
fn init_logging(format: Option<LogFormat>) {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    let format = format.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let filter = tracing_subscriber::EnvFilter::try_from_env("ASYA_LOG")
        .unwrap_or_else(|_| "info,kube=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(terminal && format == LogFormat::Text);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn serve(args: &ControllerArgs) -> Result<(), asya_controller::Error> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let platform = match &args.platform {
            Some(path) => asya_controller::platform::load(path)?,
            None => Default::default(),
        };
        let queues = asya_controller::platform::queue_drivers(&platform);
        let renderer = Arc::new(PlatformRenderer::new(platform)?);
        let metrics = Metrics::default();
        let client = asya_controller::client::build(args.kubeconfig.as_deref(), &metrics).await?;
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("asya-controller-{}", std::process::id()));
        let opts = Options {
            resync: Duration::from_secs(args.resync_seconds.max(1)),
            metrics_addr: Some(args.metrics_addr),
            concurrency: args.concurrency.max(1),
            leader_election: args.leader_elect.then(|| LeaseConfig {
                namespace: args.leader_election_namespace.clone(),
                name: args.leader_election_id.clone(),
                identity,
                duration: Duration::from_secs(15),
            }),
            namespace: args.namespace.clone(),
        };
        asya_controller::run::run(client, renderer, queues, metrics, opts).await
    })
}
