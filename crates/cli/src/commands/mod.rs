//! One module per subcommand.

pub mod bench;
pub mod completions;
pub mod crd;
pub mod explain;
pub mod render;
pub mod validate;
