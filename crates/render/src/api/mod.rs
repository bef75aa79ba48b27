//! Input documents: AsyncActor (flat and legacy shapes), Flavor, Crossplane
//! EnvironmentConfig flavors, and the platform configuration.

mod actor;
mod flavor;
pub mod platform;
pub mod spec;
pub mod status;
mod stream;
pub mod yaml;

use serde_json::Value;

pub use actor::ActorDocument;
pub use flavor::{FlavorEntry, FlavorLibrary};
pub use stream::{Document, classify, load_documents, parse_documents, parse_stream};

pub const GROUP: &str = "asya.sh";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "asya.sh/v1alpha1";
/// Label that makes a Crossplane EnvironmentConfig a flavor (upstream convention).
pub const FLAVOR_LABEL: &str = "asya.sh/flavor";

/// How diagnostics name the type of a value the user wrote.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
