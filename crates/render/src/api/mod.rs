//! Input documents: AsyncActor (flat and legacy shapes), Flavor, Crossplane
//! EnvironmentConfig flavors, and the platform configuration.

pub mod platform;
pub mod spec;
pub mod status;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Diagnostics, Error, flavor, parse};

pub const GROUP: &str = "asya.sh";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "asya.sh/v1alpha1";
/// Label that makes a Crossplane EnvironmentConfig a flavor (upstream convention).
pub const FLAVOR_LABEL: &str = "asya.sh/flavor";

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
                format!(
                    "expected AsyncActor, got {}",
                    other.map(|s| format!("{s:?}")).unwrap_or("nothing".into())
                ),
            )),
        }
        match obj.get("apiVersion").and_then(Value::as_str) {
            Some(v) if v.starts_with("asya.sh/") => {}
            other => errs.push(parse(
                source,
                "apiVersion",
                format!(
                    "expected {API_VERSION}, got {}",
                    other.map(|s| format!("{s:?}")).unwrap_or("nothing".into())
                ),
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

pub(crate) fn type_name(v: &Value) -> &'static str {
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

/// A flavor as stored in the library: a partial spec and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FlavorEntry {
    pub source: String,
    pub spec: Value,
    /// Where the partial spec sits in its document (`spec`, or `data` for an EnvironmentConfig),
    /// so diagnostics point at the right YAML path.
    pub path: String,
}

/// All flavors an actor may refer to, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlavorLibrary {
    entries: BTreeMap<String, FlavorEntry>,
}

impl FlavorLibrary {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a flavor; a second definition of the same name is an error naming both files.
    pub fn insert(&mut self, name: &str, source: &str, spec: Value) -> Result<(), Error> {
        self.insert_at(name, source, "spec", spec)
    }

    /// Like [`insert`](Self::insert), with the YAML path of the partial spec in its document.
    pub fn insert_at(
        &mut self,
        name: &str,
        source: &str,
        path: &str,
        spec: Value,
    ) -> Result<(), Error> {
        if let Some(existing) = self.entries.get(name) {
            if existing.spec == spec {
                return Ok(());
            }
            return Err(flavor(
                source,
                "metadata.name",
                format!(
                    "flavor {name:?} is already defined in {}; expected unique flavor names",
                    existing.source
                ),
            ));
        }
        if !spec.is_object() {
            return Err(flavor(
                source,
                path,
                "expected a mapping (a partial AsyncActor spec)",
            ));
        }
        self.entries.insert(
            name.to_string(),
            FlavorEntry {
                source: source.to_string(),
                spec,
                path: path.to_string(),
            },
        );
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&FlavorEntry> {
        self.entries.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a Flavor or a labelled EnvironmentConfig object (as read from a file or the cluster).
    pub fn insert_document(&mut self, source: &str, doc: &Value) -> Result<String, Diagnostics> {
        match classify(source, doc)? {
            Document::Flavor {
                name, spec, path, ..
            } => {
                self.insert_at(&name, source, &path, spec)?;
                Ok(name)
            }
            Document::Actor(_) => Err(parse(
                source,
                "kind",
                "expected Flavor or EnvironmentConfig, got AsyncActor",
            )
            .into()),
        }
    }
}

/// A document of an input stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Actor(ActorDocument),
    Flavor {
        source: String,
        name: String,
        spec: Value,
        /// Where the partial spec sits: `spec` (Flavor) or `data` (EnvironmentConfig).
        path: String,
    },
}

/// Decides what an object is: AsyncActor, Flavor, or an EnvironmentConfig flavor.
pub fn classify(source: &str, doc: &Value) -> Result<Document, Diagnostics> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    match kind {
        "AsyncActor" => Ok(Document::Actor(ActorDocument::from_value(source, doc)?)),
        "Flavor" => {
            let mut errs = Diagnostics::default();
            let name = match doc.pointer("/metadata/name") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => {
                    errs.push(parse(source, "metadata.name", "expected the flavor name"));
                    String::new()
                }
            };
            if let Some(obj) = doc.as_object() {
                for key in obj.keys() {
                    if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "spec") {
                        errs.push(parse(
                            source,
                            key,
                            "unknown field, expected one of apiVersion, kind, metadata, spec",
                        ));
                    }
                }
            }
            let spec = match doc.get("spec") {
                Some(Value::Object(m)) => Value::Object(m.clone()),
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(_) => {
                    errs.push(parse(
                        source,
                        "spec",
                        "expected a mapping (a partial AsyncActor spec)",
                    ));
                    Value::Null
                }
            };
            errs.into_result()?;
            Ok(Document::Flavor {
                source: source.to_string(),
                name,
                spec,
                path: "spec".into(),
            })
        }
        "EnvironmentConfig" => {
            let name = match doc.pointer(&format!(
                "/metadata/labels/{}",
                FLAVOR_LABEL.replace('/', "~1")
            )) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => {
                    return Err(parse(
                        source,
                        "metadata.labels",
                        format!("expected label {FLAVOR_LABEL}: <name> on an EnvironmentConfig used as a flavor"),
                    )
                    .into());
                }
            };
            let spec = match doc.get("data") {
                Some(Value::Object(m)) => Value::Object(m.clone()),
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(_) => {
                    return Err(parse(
                        source,
                        "data",
                        "expected a mapping (a partial AsyncActor spec)",
                    )
                    .into());
                }
            };
            Ok(Document::Flavor {
                source: source.to_string(),
                name,
                spec,
                path: "data".into(),
            })
        }
        "" => Err(parse(
            source,
            "kind",
            "expected kind AsyncActor, Flavor or EnvironmentConfig",
        )
        .into()),
        other => Err(parse(
            source,
            "kind",
            format!("expected AsyncActor, Flavor or EnvironmentConfig, got {other:?}"),
        )
        .into()),
    }
}

/// Splits a YAML (or JSON) stream into objects. Empty documents are skipped. The source of
/// the N-th document is `file#N` when the stream holds more than one document.
pub fn parse_stream(source: &str, text: &str) -> Result<Vec<(String, Value)>, Diagnostics> {
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(de) {
            Ok(Value::Null) => {}
            Ok(v) => docs.push((i + 1, v)),
            Err(e) => {
                let at = e
                    .location()
                    .map(|l| format!("line {} column {}", l.line(), l.column()))
                    .unwrap_or_default();
                let msg = e.to_string();
                return Err(parse(source, &at, format!("expected valid YAML: {msg}")).into());
            }
        }
    }
    let many = docs.len() > 1;
    Ok(docs
        .into_iter()
        .map(|(i, v)| {
            (
                if many {
                    format!("{source}#{i}")
                } else {
                    source.to_string()
                },
                v,
            )
        })
        .collect())
}

/// Parses a stream and classifies each object; collects every error of every document.
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<Document>, Diagnostics> {
    let mut out = Vec::new();
    let mut errs = Diagnostics::default();
    for (src, v) in parse_stream(source, text)? {
        // `kubectl get -o yaml` wraps several objects in a List.
        let items: Vec<(String, &Value)> =
            match (v.get("kind").and_then(Value::as_str), v.get("items")) {
                (Some("List"), Some(Value::Array(items))) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{src}#items[{i}]"), item))
                    .collect(),
                _ => vec![(src.clone(), &v)],
            };
        for (src, v) in items {
            match classify(&src, v) {
                Ok(d) => out.push(d),
                Err(e) => errs.extend(e),
            }
        }
    }
    errs.into_result()?;
    Ok(out)
}
