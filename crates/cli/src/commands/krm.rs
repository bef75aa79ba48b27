//! `asya krm`: `asya render` as a KRM function (kustomize, kpt). Reads a `ResourceList` on
//! stdin, writes one on stdout: the items it does not own pass through unchanged, the
//! AsyncActors are replaced by what they render to (Flavors and flavor EnvironmentConfigs
//! are consumed), and every problem becomes an entry of `results` with severity, message,
//! field path and file. Exits 1 when a result is an error, as the KRM function spec asks.
//!
//! `functionConfig` (any kind, e.g. a ConfigMap) may set, under `data`: `namespace` (for
//! actors without one) and `platform` (the platform configuration as a YAML string).

use std::io::{Read, Write};

use asya_render::{
    ActorDocument, Compositions, Diagnostics, Document, FlavorLibrary, Platform, classify, render,
};
use serde_json::{Value, json};

/// Where kustomize/kpt say an item came from (`config.kubernetes.io/path` and its
/// `internal.` twin), else its index in the list.
fn source_of(item: &Value, i: usize) -> String {
    let ann = &item["metadata"]["annotations"];
    [
        "internal.config.kubernetes.io/path",
        "config.kubernetes.io/path",
    ]
    .iter()
    .find_map(|k| ann[*k].as_str())
    .map(String::from)
    .unwrap_or_else(|| format!("items[{i}]"))
}

fn result(severity: &str, e: &asya_render::Error) -> Value {
    let mut r = json!({"severity": severity, "message": e.message()});
    if !e.path().is_empty() {
        r["field"] = json!({"path": e.path()});
    }
    r["file"] = json!({"path": e.file()});
    r
}

/// The function on parsed input: (the output ResourceList, whether an error was reported).
pub fn process(list: &Value) -> (Value, bool) {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let config = &list["functionConfig"]["data"];
    let mut results = Vec::new();
    let mut errs = Diagnostics::default();
    let platform = match config["platform"].as_str() {
        Some(text) => {
            Platform::from_yaml("functionConfig.data.platform", text).unwrap_or_else(|e| {
                errs.extend(e);
                Platform::default()
            })
        }
        None => Platform::shipped().unwrap_or_default(),
    };
    let namespace = config["namespace"].as_str().map(String::from);
    let mut out_items = Vec::new();
    let mut actors: Vec<ActorDocument> = Vec::new();
    let mut flavors = FlavorLibrary::new();
    for (i, item) in items.iter().enumerate() {
        let kind = item["kind"].as_str().unwrap_or_default();
        let ours = matches!(kind, "AsyncActor" | "Flavor")
            || (kind == "EnvironmentConfig"
                && item["metadata"]["labels"]["asya.sh/flavor"].is_string());
        if !ours {
            out_items.push(item.clone());
            continue;
        }
        match classify(&source_of(item, i), item) {
            Ok(Document::Actor(mut a)) => {
                if a.namespace.is_none() {
                    a.namespace.clone_from(&namespace);
                }
                actors.push(a);
            }
            Ok(Document::Flavor {
                source,
                name,
                spec,
                path,
            }) => {
                if let Err(e) = flavors.insert_at(&name, &source, &path, spec) {
                    errs.push(e);
                }
            }
            Err(e) => errs.extend(e),
        }
    }
    match Compositions::embedded() {
        Ok(compositions) => {
            for a in &actors {
                match render(a, &flavors, &platform, &compositions) {
                    Ok(r) => {
                        for w in &r.explain.warnings {
                            results.push(json!({"severity": "warning", "message": w, "file": {"path": a.source}}));
                        }
                        out_items.extend(r.objects);
                    }
                    Err(e) => errs.extend(e),
                }
            }
        }
        Err(e) => errs.extend(e),
    }
    let failed = !errs.is_empty();
    results.extend(errs.iter().map(|e| result("error", e)));
    let mut out = json!({
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": out_items,
    });
    if !results.is_empty() {
        out["results"] = Value::Array(results);
    }
    (out, failed)
}

pub fn run(out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        let _ = writeln!(err, "error: <stdin>: expected a ResourceList: {e}");
        return 1;
    }
    let list = match asya_render::parse_stream("<stdin>", &text) {
        Ok(mut docs) if docs.len() == 1 && docs[0].1["kind"] == "ResourceList" => docs.remove(0).1,
        Ok(_) => {
            let _ = writeln!(err, "error: <stdin>: expected one ResourceList document");
            return 1;
        }
        Err(e) => {
            for d in e.iter() {
                let _ = writeln!(err, "error: {d}");
            }
            return 1;
        }
    };
    let (output, failed) = process(&list);
    let _ = out.write_all(asya_render::to_yaml_stream(std::slice::from_ref(&output)).as_bytes());
    i32::from(failed)
}
