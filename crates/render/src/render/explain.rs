//! `asya render --explain`: the merged, defaulted spec with the origin of every leaf.

use serde::Serialize;
use serde_json::Value;

use super::resolve::resolve;
use crate::api::platform::Platform;
use crate::api::{ActorDocument, FlavorLibrary};
use crate::error::Diagnostics;
use crate::merge::Provenance;

/// The merged spec and where each leaf came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub source: String,
    /// `flat` or `legacy`.
    pub shape: String,
    pub flavors: Vec<String>,
    /// The merged, defaulted spec in the flat shape.
    pub spec: Value,
    pub provenance: Provenance,
    /// Things accepted but ignored (legacy fields with no effect).
    pub warnings: Vec<String>,
}

impl Explanation {
    /// One line per leaf: `spec.path: value  # origin`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("# {} ({} shape", self.source, self.shape));
        if !self.flavors.is_empty() {
            out.push_str(&format!(", flavors: {}", self.flavors.join(", ")));
        }
        out.push_str(")\n");
        let mut leaves = Vec::new();
        collect_leaves(&self.spec, "spec", &mut leaves);
        let width = leaves
            .iter()
            .map(|(p, v)| p.len() + v.len() + 2)
            .max()
            .unwrap_or(0);
        for (path, v) in leaves {
            let origin = self
                .provenance
                .origin_of(&path)
                .map(ToString::to_string)
                .unwrap_or_else(|| "actor".into());
            let line = format!("{path}: {v}");
            out.push_str(&format!("{line:width$}  # {origin}\n"));
        }
        for w in &self.warnings {
            out.push_str(&format!("# warning: {w}\n"));
        }
        out
    }
}

fn collect_leaves(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                collect_leaves(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                collect_leaves(v, &format!("{path}[{i}]"), out);
            }
        }
        other => out.push((path.to_string(), other.to_string())),
    }
}

/// Merges, validates and explains an actor without rendering objects.
pub fn explain(
    actor: &ActorDocument,
    flavors: &FlavorLibrary,
    platform: &Platform,
) -> Result<Explanation, Diagnostics> {
    resolve(actor, flavors, platform).map(|r| r.explanation)
}
