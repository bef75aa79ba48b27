//! The boundary to the render crate.
//!
//! The controller sees a render as "actor JSON + the flavors it lists in, a
//! list of objects out". Keeping that behind [`Renderer`] lets the CLI's
//! `asya diff`, the controller and the benchmark share one adapter
//! ([`PlatformRenderer`]) over the same pure function `asya render` uses.

use serde_json::Value;

/// A render as the controller needs it.
#[derive(Debug, Clone)]
pub struct RenderedActor {
    pub actor: String,
    pub transport: String,
    pub queue_name: String,
    pub scaling_enabled: bool,
    pub workload_kind: String,
    pub workload_name: String,
    pub applyset_id: String,
    /// Objects in apply order, without namespace-independent surprises: no
    /// ownerReferences (the controller adds them).
    pub objects: Vec<Value>,
}

/// Renders one actor with the flavors it lists (those that exist).
pub trait Renderer: Send + Sync {
    /// `actor` is the AsyncActor object as stored (apiVersion, kind,
    /// metadata, spec); `flavors` the Flavor objects it lists that exist.
    /// The error is the human-readable validation message.
    fn render(&self, actor: &Value, flavors: &[Value]) -> Result<RenderedActor, String>;

    /// The name of the platform's default transport (for actors that set none).
    fn default_transport(&self) -> String;
}
