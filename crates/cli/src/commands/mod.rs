//! One module per subcommand.

pub mod bench;
pub mod completions;
#[cfg(feature = "controller")]
pub mod controller;
pub mod crd;
#[cfg(feature = "dev")]
pub mod dev;
// `asya diff --base` works without the controller feature (only the cluster mode needs it).
pub mod diff;
pub mod explain;
pub mod krm;
pub mod manifests;
pub mod migrate;
pub mod render;
pub mod validate;
