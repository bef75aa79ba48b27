//! An AsyncActor object as read from a file or the cluster: metadata checked, `spec` kept
//! exactly as written (either shape) for the pipeline to check and normalise.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{API_VERSION, type_name};
use crate::error::{Diagnostics, parse};

/// One AsyncActor as read from a file or from the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorDocument {
    /// File path (with `#N` for the N-th document of a stream) or `cluster`.
    pub source: String,
    /// `metadata.name`.
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `spec` exactly as written (either shape).
    pub spec: Value,
}

impl ActorDocument {
    /// Reads an AsyncActor object (`apiVersion`, `kind`, `metadata`, `spec`).
    pub fn from_value(source: &str, doc: &Value) -> Result<Self, Diagnostics> {
        let mut errs = Diagnostics::default();
        let Some(obj) = doc.as_object() else {
            return Err(parse(source, "", "expected a YAML mapping (an AsyncActor object)").into());
        };
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "apiVersion" | "kind" | "metadata" | "spec" | "status"
            ) {
                errs.push(parse(
                    source,
                    key,
                    "unknown field, expected one of apiVersion, kind, metadata, spec, status",
                ));
            }
        }
        match obj.get("kind").and_then(Value::as_str) {
            Some("AsyncActor") => {}
            other => errs.push(parse(
                source,
                "kind",
                format!("expected AsyncActor, got {}", quoted_or_nothing(other)),
            )),
        }
        match obj.get("apiVersion").and_then(Value::as_str) {
            Some(v) if v.starts_with("asya.sh/") => {}
            other => errs.push(parse(
                source,
                "apiVersion",
                format!("expected {API_VERSION}, got {}", quoted_or_nothing(other)),
            )),
        }
        let meta = read_metadata(source, obj, &mut errs);
        let spec = match obj.get("spec") {
            Some(Value::Object(m)) => Value::Object(m.clone()),
            Some(_) => {
                errs.push(parse(source, "spec", "expected a mapping"));
                Value::Object(Map::new())
            }
            None => {
                errs.push(parse(
                    source,
                    "spec",
                    "expected a spec (actor, image, handler)",
                ));
                Value::Object(Map::new())
            }
        };
        errs.into_result()?;
        Ok(ActorDocument {
            source: source.to_string(),
            name: meta.name,
            namespace: meta.namespace,
            labels: meta.labels,
            annotations: meta.annotations,
            spec,
        })
    }
}

/// `"value"`, or `nothing` for a missing field.
fn quoted_or_nothing(v: Option<&str>) -> String {
    v.map(|s| format!("{s:?}")).unwrap_or("nothing".into())
}

struct Metadata {
    name: String,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn string_map(
    source: &str,
    path: &str,
    v: Option<&Value>,
    errs: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    other => errs.push(parse(
                        source,
                        &format!("{path}.{k}"),
                        format!("expected a string, got {} (quote it)", type_name(other)),
                    )),
                }
            }
        }
        Some(other) => errs.push(parse(
            source,
            path,
            format!("expected a mapping, got {}", type_name(other)),
        )),
    }
    out
}

fn read_metadata(source: &str, obj: &Map<String, Value>, errs: &mut Diagnostics) -> Metadata {
    let empty = Map::new();
    let meta = match obj.get("metadata") {
        Some(Value::Object(m)) => m,
        _ => {
            errs.push(parse(source, "metadata", "expected a mapping with a name"));
            &empty
        }
    };
    let name = match meta.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ if std::ptr::eq(meta, &empty) => String::new(),
        _ => {
            errs.push(parse(
                source,
                "metadata.name",
                "expected a non-empty string",
            ));
            String::new()
        }
    };
    let namespace = match meta.get("namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errs.push(parse(source, "metadata.namespace", "expected a string"));
            None
        }
    };
    Metadata {
        name,
        namespace,
        labels: string_map(source, "metadata.labels", meta.get("labels"), errs),
        annotations: string_map(
            source,
            "metadata.annotations",
            meta.get("annotations"),
            errs,
        ),
    }
}
