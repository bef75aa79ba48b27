//! One actor's sidecar worker inside another process (`asya dev`).
//!
//! The same [`Worker`], router and end roles as the `asya-sidecar` binary,
//! minus what belongs to a pod: no signal handler (the caller owns
//! shutdown), no metrics server, no broker connect loop (the caller hands in
//! a connected transport) and, for the end roles, a store given by the
//! caller instead of one read from `ASYA_S3_*`.

use std::sync::Arc;

use asya_storage::EnvelopeStore;
use asya_transport::Transport;

use crate::config::{Config, Role};
use crate::end_roles::EndRole;
use crate::error::SidecarError;
use crate::metrics::Metrics;
use crate::progress::Reporter;
use crate::run::{Handler, Worker, build_handler};
use crate::runtime_client::RuntimeClient;
use crate::shutdown::Shutdown;

/// Runs the worker of the actor `cfg` describes over `transport` until
/// `shutdown` fires, then drains as the binary does (in-flight messages and
/// their confirms, within `cfg.shutdown_grace`) and closes the transport.
/// A regular actor first waits for its runtime's socket in `cfg.socket_dir`;
/// `x-sink` and `x-sump` write to `store` (logged only when `None`).
pub async fn run_actor<T: Transport>(
    cfg: Arc<Config>,
    transport: Arc<T>,
    store: Option<EnvelopeStore>,
    shutdown: Shutdown,
) -> Result<(), SidecarError> {
    let metrics = Metrics::new(&cfg.queue(), cfg.transport.as_str());
    let handler = match cfg.role {
        Role::Regular => {
            let runtime = RuntimeClient::new(
                cfg.socket_dir.clone(),
                &cfg.socket_name,
                cfg.max_frame_bytes,
            );
            tokio::select! {
                h = build_handler(&cfg, &metrics, &shutdown, &runtime) => h?,
                _ = shutdown.wait() => {
                    transport.close().await;
                    return Ok(());
                }
            }
        }
        Role::Sink | Role::Sump => Handler::End(EndRole {
            cfg: cfg.clone(),
            store,
            metrics: metrics.clone(),
            reporter: Reporter::start(cfg.gateway_url.as_deref(), &metrics),
        }),
    };
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
