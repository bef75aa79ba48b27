//! Structural OpenAPI v3 schemas generated from the Rust types, and a validator that walks
//! a value against them so that every unknown field and wrong type is reported at once.

use std::sync::LazyLock;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::api::spec::ActorSpec;
use crate::api::status::AsyncActorStatus;
use crate::api::type_name;
use crate::error::{Diagnostics, schema};

/// Schema of `T` made structural for Kubernetes (no `$ref`, every node typed, no defaults).
pub fn structural_schema_for<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut v = generator.into_root_schema_for::<T>().to_value();
    make_structural(&mut v);
    v
}

/// Rewrites a schemars schema into a Kubernetes structural schema.
pub fn make_structural(v: &mut Value) {
    if let Value::Bool(true) = v {
        *v = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        return;
    }
    let Value::Object(m) = v else { return };
    for key in [
        "$schema",
        "title",
        "default",
        "examples",
        "example",
        "$defs",
        "definitions",
        "nullable",
        "readOnly",
        "writeOnly",
        "deprecated",
        "$id",
    ] {
        m.remove(key);
    }
    // Option<T> comes out as anyOf/oneOf [T, null]: keep T.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = m.remove(key) {
            let keep: Vec<Value> = branches
                .into_iter()
                .filter(|b| !is_null_schema(b))
                .collect();
            if keep.len() == 1 {
                if let Some(Value::Object(b)) = keep.into_iter().next() {
                    for (k, val) in b {
                        if k != "description" || !m.contains_key("description") {
                            m.insert(k, val);
                        }
                    }
                }
            } else {
                m.insert(key.to_string(), Value::Array(keep));
            }
        }
    }
    if let Some(Value::Array(types)) = m.get("type").cloned() {
        let first = types.into_iter().find(|t| t != "null");
        match first {
            Some(t) => {
                m.insert("type".into(), t);
            }
            None => {
                m.remove("type");
            }
        }
    }
    if let Some(Value::Array(e)) = m.get_mut("enum") {
        e.retain(|x| !x.is_null());
    }
    if let Some(Value::String(f)) = m.get("format")
        && !matches!(
            f.as_str(),
            "int32" | "int64" | "float" | "double" | "date-time"
        )
    {
        m.remove("format");
    }
    // Structural schemas forbid `additionalProperties: false` and properties+additionalProperties.
    if m.get("additionalProperties") == Some(&Value::Bool(false)) || m.contains_key("properties") {
        m.remove("additionalProperties");
    }
    if !m.contains_key("type")
        && !m.contains_key("x-kubernetes-int-or-string")
        && (m.contains_key("properties") || m.contains_key("additionalProperties"))
    {
        m.insert("type".into(), json!("object"));
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for p in props.values_mut() {
            make_structural(p);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(x) = m.get_mut(key) {
            make_structural(x);
        }
    }
    if let Some(Value::Array(bs)) = m.get_mut("anyOf") {
        for b in bs {
            make_structural(b);
        }
    }
}

fn is_null_schema(b: &Value) -> bool {
    b.get("type") == Some(&json!("null"))
        || b.get("enum") == Some(&json!([null]))
        || b.get("const") == Some(&Value::Null)
}

/// The structural schema of an AsyncActor `spec`.
pub fn actor_spec_schema() -> &'static Value {
    static S: LazyLock<Value> = LazyLock::new(structural_schema_for::<ActorSpec>);
    &S
}

/// The structural schema of an AsyncActor `status`.
pub fn actor_status_schema() -> &'static Value {
    static S: LazyLock<Value> = LazyLock::new(structural_schema_for::<AsyncActorStatus>);
    &S
}

/// Reports every unknown field, wrong type and bad enum value of `value`.
pub(crate) fn check(
    value: &Value,
    schema_node: &Value,
    file: &str,
    path: &str,
    errs: &mut Diagnostics,
) {
    if value.is_null() {
        return;
    }
    let Some(s) = schema_node.as_object() else {
        return;
    };
    if s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errs.push(schema(
                file,
                path,
                format!("expected an integer or a string, got {}", type_name(value)),
            ));
        }
        return;
    }
    let ty = s.get("type").and_then(Value::as_str).unwrap_or("");
    if !type_matches(value, schema_node) {
        let expected = match ty {
            "object" => "a mapping",
            "array" => "a list",
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "a boolean (true/false)",
            _ => "another type",
        };
        errs.push(schema(
            file,
            path,
            format!("expected {expected}, got {}", type_name(value)),
        ));
        return;
    }
    if let (Some(Value::Array(allowed)), Some(_)) = (s.get("enum"), value.as_str())
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        errs.push(schema(
            file,
            path,
            format!("expected one of {}, got {value}", list.join(", ")),
        ));
    }
    if let Some(min) = s.get("minimum").and_then(Value::as_f64)
        && let Some(x) = value.as_f64()
        && x < min
    {
        errs.push(schema(
            file,
            path,
            format!("expected a value >= {min}, got {value}"),
        ));
    }
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(m) => check_object(m, s, file, path, errs),
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, v) in a.iter().enumerate() {
                    check(v, items, file, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

fn check_object(
    m: &Map<String, Value>,
    s: &Map<String, Value>,
    file: &str,
    path: &str,
    errs: &mut Diagnostics,
) {
    let props = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in m {
        let child = format!("{path}.{k}");
        match (props.and_then(|p| p.get(k)), additional) {
            (Some(ps), _) => check(v, ps, file, &child, errs),
            (None, Some(a)) => check(v, a, file, &child, errs),
            (None, None) => {
                let known: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let hint = closest(k, &known)
                    .map(|c| format!(" (did you mean {c:?}?)"))
                    .unwrap_or_default();
                errs.push(schema(
                    file,
                    &child,
                    format!("unknown field{hint}; expected one of: {}", known.join(", ")),
                ));
            }
        }
    }
    if let Some(Value::Array(req)) = s.get("required") {
        for r in req.iter().filter_map(Value::as_str) {
            if !m.contains_key(r) {
                errs.push(schema(
                    file,
                    &format!("{path}.{r}"),
                    "expected this field (it is required)",
                ));
            }
        }
    }
}

/// Removes from `value` what [`check`] reports (unknown fields, values of the wrong type),
/// so that the later checks can still run on the rest and report their own errors at once.
pub(crate) fn prune(value: &mut Value, schema_node: &Value) {
    let Some(s) = schema_node.as_object() else {
        return;
    };
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
    {
        return;
    }
    match value {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            m.retain(|k, v| {
                let Some(child) = props.and_then(|p| p.get(k)).or(additional) else {
                    return false;
                };
                if v.is_null() || type_matches(v, child) {
                    prune(v, child);
                    true
                } else {
                    false
                }
            });
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                a.retain_mut(|v| {
                    let ok = v.is_null() || type_matches(v, items);
                    if ok {
                        prune(v, items);
                    }
                    ok
                });
            }
        }
        _ => {}
    }
}

fn type_matches(value: &Value, schema_node: &Value) -> bool {
    if schema_node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return value.is_string() || value.is_i64() || value.is_u64();
    }
    match schema_node
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
    {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

/// The known name nearest to `k` (edit distance <= 3), for "did you mean" hints.
fn closest<'a>(k: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|c| (distance(&k.to_lowercase(), &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, c)| c)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
