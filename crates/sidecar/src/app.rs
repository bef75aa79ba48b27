//! Wiring: logging, metrics server, transport, signals, worker.

use std::sync::Arc;
use std::time::Duration;

use asya_transport::Transport;
use asya_transport::rabbitmq::{RabbitMq, RabbitMqConfig};
use asya_transport::sqs::{SqsConfig, SqsTransport};

use crate::config::{Config, Role, TransportKind};
use crate::error::SidecarError;
use crate::metrics::{self, Metrics};
use crate::run::{Worker, build_handler};
use crate::runtime_client::RuntimeClient;
use crate::shutdown::Shutdown;

/// The sidecar's tokio runtime: tokio's current-thread scheduler, or the multi-thread one
/// when `workers_asked` (tokio's `TOKIO_WORKER_THREADS` is set; tokio reads the count).
///
/// One thread by default: lapin runs its own I/O threads, and a second worker mostly added
/// cross-thread wake-ups (BENCHMARKS.md, "One tokio worker"). The current-thread scheduler
/// runs the tasks on the thread that waits for them, without the multi-thread scheduler's
/// hand-off to a worker (BENCHMARKS.md, "One thread"). A sidecar is usually limited to a
/// fraction of a core anyway.
pub fn tokio_runtime(workers_asked: bool) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if workers_asked {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build()
}

/// Sets up JSON (or text) logs at `ASYA_LOG_LEVEL`.
pub fn init_logging(level: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "text" {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    }
}

/// Runs the sidecar until SIGTERM/SIGINT.
pub async fn run(cfg: Config) -> Result<(), SidecarError> {
    let cfg = Arc::new(cfg);
    let shutdown = Shutdown::default();
    spawn_signal_handler(shutdown.clone());
    let transport_name = match cfg.transport {
        TransportKind::RabbitMq => "rabbitmq",
        TransportKind::Sqs => "sqs",
    };
    let metrics = Metrics::new(&cfg.queue(), transport_name);
    let listener = tokio::net::TcpListener::bind(cfg.metrics_addr)
        .await
        .map_err(|e| SidecarError::Metrics {
            addr: cfg.metrics_addr.to_string(),
            reason: e.to_string(),
        })?;
    tracing::info!(actor = %cfg.actor, queue = %cfg.queue(), role = ?cfg.role, transport = transport_name,
        concurrency = cfg.concurrency, metrics = %cfg.metrics_addr, "asya-sidecar starting");
    match cfg.transport {
        TransportKind::RabbitMq => {
            let mut rcfg = RabbitMqConfig::new(cfg.rabbitmq_url.clone(), cfg.namespace.clone());
            rcfg.exchange = cfg.rabbitmq_exchange.clone();
            rcfg.naming = cfg.queue_naming;
            rcfg.prefetch = u16::try_from(cfg.prefetch).unwrap_or(u16::MAX);
            rcfg.connection_name = format!("asya-sidecar {}", cfg.queue());
            serve(cfg, metrics, listener, shutdown, move |actor: String| {
                let rcfg = rcfg.clone();
                async move { RabbitMq::consume(rcfg, &actor).await }
            })
            .await
        }
        TransportKind::Sqs => run_sqs(cfg, metrics, listener, shutdown).await,
    }
}

/// Publishes one body to `actor`'s queue (the `send` subcommand).
pub async fn send(cfg: &Config, actor: &str, body: Vec<u8>) -> Result<(), SidecarError> {
    let body = bytes::Bytes::from(body);
    match cfg.transport {
        TransportKind::RabbitMq => {
            let mut rcfg = RabbitMqConfig::new(cfg.rabbitmq_url.clone(), cfg.namespace.clone());
            rcfg.exchange = cfg.rabbitmq_exchange.clone();
            rcfg.naming = cfg.queue_naming;
            rcfg.connection_name = "asya-sidecar send".into();
            let t = RabbitMq::connect(rcfg).await?;
            t.publish(actor, body, Duration::ZERO).await?;
            t.close().await;
        }
        TransportKind::Sqs => {
            let t = SqsTransport::connect(SqsConfig::from_env()?, &cfg.namespace, actor).await?;
            t.publish(actor, body, Duration::ZERO).await?;
        }
    }
    Ok(())
}

/// SQS: the queue must exist (the controller creates it); until it does,
/// the sidecar retries with backoff.
async fn run_sqs(
    cfg: Arc<Config>,
    metrics: Metrics,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> Result<(), SidecarError> {
    let scfg = SqsConfig::from_env()?;
    let namespace = cfg.namespace.clone();
    serve(cfg, metrics, listener, shutdown, move |actor: String| {
        let scfg = scfg.clone();
        let namespace = namespace.clone();
        async move { SqsTransport::connect(scfg, &namespace, &actor).await }
    })
    .await
}

async fn serve<T, F, Fut>(
    cfg: Arc<Config>,
    metrics: Metrics,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
    connect: F,
) -> Result<(), SidecarError>
where
    T: Transport,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, asya_transport::TransportError>>,
{
    let runtime = RuntimeClient::new(
        cfg.socket_dir.clone(),
        &cfg.socket_name,
        cfg.max_frame_bytes,
    );
    let transport_slot: Arc<std::sync::OnceLock<Arc<T>>> = Arc::new(std::sync::OnceLock::new());
    let ready: metrics::ReadyFn = {
        let slot = transport_slot.clone();
        let runtime = runtime.clone();
        let regular = cfg.role == Role::Regular;
        Arc::new(move || {
            let transport_ok = slot.get().is_some_and(|t| t.is_connected());
            transport_ok && (!regular || runtime.is_reachable())
        })
    };
    tokio::spawn(metrics::serve(listener, metrics.clone(), ready));

    // The runtime first: no message is taken before it can be processed.
    let handler = tokio::select! {
        h = build_handler(&cfg, &metrics, &shutdown, &runtime) => h?,
        _ = shutdown.wait() => return Ok(()),
    };
    let mut backoff = Duration::from_millis(200);
    let transport = loop {
        let attempt = tokio::select! {
            t = connect(cfg.actor.clone()) => t,
            _ = shutdown.wait() => return Ok(()),
        };
        match attempt {
            Ok(t) => break Arc::new(t),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "broker unavailable");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    let _ = transport_slot.set(transport.clone());
    Worker {
        cfg,
        transport,
        handler,
        metrics,
        shutdown,
    }
    .run()
    .await
}

fn spawn_signal_handler(shutdown: Shutdown) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
        shutdown.trigger();
    });
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn one_thread_unless_workers_are_asked_for() {
        let flavor = |asked| {
            super::tokio_runtime(asked)
                .unwrap()
                .handle()
                .runtime_flavor()
        };
        assert_eq!(flavor(false), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(true), RuntimeFlavor::MultiThread);
    }
}
