//! Structural OpenAPI v3 schemas generated from the Rust types, and a validator that walks
//! a value against them so that every unknown field and wrong type is reported at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::api::spec::ActorSpec;
use crate::api::status::AsyncActorStatus;
use crate::api::type_name;
use crate::error::{Diagnostics, schema};
use crate::render::{SMALL_MAP, member};

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

/// The structural schema of an AsyncActor `spec`, ready for [`check`].
pub(crate) fn actor_spec_checker() -> &'static Checker {
    static S: LazyLock<Checker> = LazyLock::new(|| Checker::new(actor_spec_schema()));
    &S
}

/// A schema node with what [`check`] reads taken out of the JSON once: checking a value
/// looked each keyword up by name (a hash per lookup, about eight per node) and built the
/// path of every node as a string; it now reads fields and writes the path into one buffer.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// The schema is not a mapping (e.g. `true`): anything goes.
    open: bool,
    int_or_string: bool,
    preserve_unknown: bool,
    /// `type`; `None` (absent or unknown) matches every value.
    ty: Option<&'static str>,
    /// String values of `enum` (only strings are checked against it).
    enum_values: Option<Vec<Value>>,
    minimum: Option<f64>,
    /// `properties` in schema order (the order error messages list them in), and an index.
    properties: Option<Vec<(String, Checker)>>,
    by_name: BTreeMap<String, usize>,
    additional: Option<Box<Checker>>,
    items: Option<Box<Checker>>,
    required: Vec<String>,
}

impl Checker {
    pub(crate) fn new(schema_node: &Value) -> Checker {
        let Some(s) = schema_node.as_object() else {
            return Checker {
                open: true,
                ..Checker::default()
            };
        };
        let ty = match s.get("type").and_then(Value::as_str).unwrap_or("") {
            "object" => Some("object"),
            "array" => Some("array"),
            "string" => Some("string"),
            "integer" => Some("integer"),
            "number" => Some("number"),
            "boolean" => Some("boolean"),
            _ => None,
        };
        let properties: Option<Vec<(String, Checker)>> =
            s.get("properties").and_then(Value::as_object).map(|p| {
                p.iter()
                    .map(|(k, v)| (k.clone(), Checker::new(v)))
                    .collect()
            });
        let by_name = properties
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        Checker {
            open: false,
            int_or_string: s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)),
            preserve_unknown: s.get("x-kubernetes-preserve-unknown-fields")
                == Some(&Value::Bool(true)),
            ty,
            enum_values: s.get("enum").and_then(Value::as_array).cloned(),
            minimum: s.get("minimum").and_then(Value::as_f64),
            properties,
            by_name,
            additional: s
                .get("additionalProperties")
                .filter(|a| a.is_object())
                .map(|a| Box::new(Checker::new(a))),
            items: s.get("items").map(|i| Box::new(Checker::new(i))),
            required: s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn property(&self, k: &str) -> Option<&Checker> {
        let props = self.properties.as_ref()?;
        // A few properties: comparing lengths first and bytes only on a tie beats the
        // ordered index, whose every comparison reads the bytes.
        if props.len() <= SMALL_MAP {
            return props.iter().find(|(name, _)| name == k).map(|(_, c)| c);
        }
        let i = *self.by_name.get(k)?;
        props.get(i).map(|(_, c)| c)
    }

    fn matches(&self, value: &Value) -> bool {
        if self.int_or_string {
            return value.is_string() || value.is_i64() || value.is_u64();
        }
        match self.ty {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => true,
        }
    }
}

/// Reports every unknown field, wrong type and bad enum value of `value`.
pub(crate) fn check(
    value: &Value,
    schema_node: &Checker,
    file: &str,
    path: &str,
    errs: &mut Diagnostics,
) {
    check_at(value, schema_node, file, At::Root(path), None, errs);
}

/// [`check`] of an object whose top-level field `skip` is left out, as if absent (KEDA's
/// CRD schemas leave `metadata` open; the API server checks it itself).
pub(crate) fn check_without(
    value: &Value,
    schema_node: &Checker,
    file: &str,
    skip: &str,
    errs: &mut Diagnostics,
) {
    check_at(value, schema_node, file, At::Root(""), Some(skip), errs);
}

fn check_at(
    value: &Value,
    s: &Checker,
    file: &str,
    at: At<'_>,
    skip: Option<&str>,
    errs: &mut Diagnostics,
) {
    if value.is_null() || s.open {
        return;
    }
    if s.int_or_string {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errs.push(schema(
                file,
                &at.path(),
                format!("expected an integer or a string, got {}", type_name(value)),
            ));
        }
        return;
    }
    if !s.matches(value) {
        let expected = match s.ty {
            Some("object") => "a mapping",
            Some("array") => "a list",
            Some("string") => "a string",
            Some("integer") => "an integer",
            Some("number") => "a number",
            Some("boolean") => "a boolean (true/false)",
            _ => "another type",
        };
        errs.push(schema(
            file,
            &at.path(),
            format!("expected {expected}, got {}", type_name(value)),
        ));
        return;
    }
    if let (Some(allowed), Some(_)) = (&s.enum_values, value.as_str())
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        errs.push(schema(
            file,
            &at.path(),
            format!("expected one of {}, got {value}", list.join(", ")),
        ));
    }
    if let Some(min) = s.minimum
        && let Some(x) = value.as_f64()
        && x < min
    {
        errs.push(schema(
            file,
            &at.path(),
            format!("expected a value >= {min}, got {value}"),
        ));
    }
    if s.preserve_unknown {
        return;
    }
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                if skip == Some(k.as_str()) {
                    continue;
                }
                let here = At::Key(&at, k);
                match (s.property(k), &s.additional) {
                    (Some(ps), _) => check_at(v, ps, file, here, None, errs),
                    (None, Some(a)) => check_at(v, a, file, here, None, errs),
                    (None, None) => {
                        let path = here.path();
                        let known: Vec<&str> = s
                            .properties
                            .iter()
                            .flatten()
                            .map(|(k, _)| k.as_str())
                            .collect();
                        let hint = closest(k, &known)
                            .map(|c| format!(" (did you mean {c:?}?)"))
                            .unwrap_or_default();
                        errs.push(schema(
                            file,
                            &path,
                            format!("unknown field{hint}; expected one of: {}", known.join(", ")),
                        ));
                    }
                }
            }
            for r in &s.required {
                // `member`: keys compared in order, not hashed, in the small mappings checked.
                if member(m, r).is_none() || skip == Some(r.as_str()) {
                    errs.push(schema(
                        file,
                        &At::Key(&at, r).path(),
                        "expected this field (it is required)",
                    ));
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = &s.items {
                for (i, v) in a.iter().enumerate() {
                    check_at(v, items, file, At::Index(&at, i), None, errs);
                }
            }
        }
        _ => {}
    }
}

/// Where [`check_at`] is: written out only for an error, since most values have none.
#[derive(Clone, Copy)]
enum At<'a> {
    Root(&'a str),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn path(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            At::Root(p) => out.push_str(p),
            At::Key(parent, k) => {
                parent.write(out);
                out.push('.');
                out.push_str(k);
            }
            At::Index(parent, i) => {
                parent.write(out);
                let _ = write!(out, "[{i}]");
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
