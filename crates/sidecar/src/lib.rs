//! The Asya sidecar: it consumes one actor's queue, hands each envelope to
//! the Python runtime over a Unix socket, and routes what comes back — to the
//! next actor's queue, to `x-sink` when the route ends, back to its own queue
//! with a delay when a resiliency policy says retry, or to `x-sump` when the
//! message cannot be processed at all. It acknowledges a message only after
//! every envelope it produced has been confirmed by the broker, so delivery
//! is at-least-once and nothing is lost. The same binary runs the end roles
//! `x-sink` and `x-sump`, which persist final envelopes to S3-compatible
//! storage. Environment variables, metrics and the storage layout are
//! documented in `docs/sidecar.md`.

pub mod app;
pub mod config;
pub mod embed;
pub mod end_roles;
pub mod envelope;
pub mod error;
pub mod metrics;
pub mod progress;
pub mod resiliency;
pub mod router;
pub mod run;
pub mod runtime_client;
pub mod shutdown;

pub use error::SidecarError;

/// The Python runtime shipped inside this binary (`install-runtime`).
pub const RUNTIME_PY: &str = include_str!("../../../runtime/asya_runtime.py");

/// Writes the embedded runtime to `dir/asya_runtime.py`.
pub fn install_runtime(dir: &std::path::Path) -> Result<std::path::PathBuf, SidecarError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| SidecarError::Install(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join("asya_runtime.py");
    std::fs::write(&path, RUNTIME_PY)
        .map_err(|e| SidecarError::Install(format!("writing {}: {e}", path.display())))?;
    Ok(path)
}
