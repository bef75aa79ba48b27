//! Input streams: YAML (or JSON) documents split, `List`s unwrapped, and each object
//! classified as an AsyncActor, a Flavor or an EnvironmentConfig flavor.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::FLAVOR_LABEL;
use super::actor::ActorDocument;
use super::yaml::{Limits, Positions, SourceMap, load_stream};
use crate::error::{Diagnostics, parse};

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
    Ok(load_located(source, text, &mut SourceMap::default())?
        .into_iter()
        .map(|(src, v, _)| (src, v))
        .collect())
}

/// [`parse_stream`], recording every document's field positions in `sources`.
fn load_located(
    source: &str,
    text: &str,
    sources: &mut SourceMap,
) -> Result<Vec<(String, Value, Arc<Positions>)>, Diagnostics> {
    let docs = load_stream(source, text, Limits::default())?;
    let many = docs.len() > 1;
    Ok(docs
        .into_iter()
        .map(|d| {
            let src = if many {
                format!("{source}#{}", d.number)
            } else {
                source.to_string()
            };
            let positions = Arc::new(d.positions);
            sources.insert(&src, positions.clone());
            (src, d.value, positions)
        })
        .collect())
}

/// Parses a stream and classifies each object; collects every error of every document.
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<Document>, Diagnostics> {
    load_documents(source, text, &mut SourceMap::default())
}

/// [`parse_documents`], recording field positions in `sources` so that errors found later
/// (by render) can be located with [`Diagnostics::locate`]. The errors returned here are
/// already located.
pub fn load_documents(
    source: &str,
    text: &str,
    sources: &mut SourceMap,
) -> Result<Vec<Document>, Diagnostics> {
    let mut out = Vec::new();
    let mut errs = Diagnostics::default();
    for (src, v, positions) in load_located(source, text, sources)? {
        // `kubectl get -o yaml` wraps several objects in a List.
        let items: Vec<(String, &Value)> =
            match (v.get("kind").and_then(Value::as_str), v.get("items")) {
                (Some("List"), Some(Value::Array(items))) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let item_src = format!("{src}#items[{i}]");
                        let sub = positions.subtree(&format!("items[{i}]"));
                        sources.insert(&item_src, Arc::new(sub));
                        (item_src, item)
                    })
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
    errs.locate(sources);
    errs.into_result()?;
    Ok(out)
}
