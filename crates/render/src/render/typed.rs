//! Every object a template produced, checked against the API it will be sent to, before it
//! is printed: built-in kinds through their k8s-openapi types, KEDA's kinds against KEDA's
//! own CRD schemas (`tests/k8s/crds/keda`, the files the API-server tests install).
//!
//! k8s-openapi's types ignore fields they do not know, so a typed value alone would let a
//! template typo (`imagePulPolicy`) through and the API server would drop or reject it. The
//! object is therefore deserialised through `serde_ignored`, which reports every field the
//! type skipped: such a field is unknown to the type, a deserialisation error is a wrong
//! type. (Serialising the typed value again and comparing, as before, found the same
//! fields at twice the cost.)
//!
//! Which fields a type skips depends only on the object's shape (its keys, list lengths
//! and kinds of values), not on the values themselves: every object is deserialised into
//! its type (wrong values are errors), and `serde_ignored`, which copies every key into a
//! string, runs once per shape; the shapes found clean are remembered.

use std::collections::BTreeSet;
use std::sync::{LazyLock, Mutex};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ServiceAccount;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::yaml::{Limits, load_stream};
use crate::error::{Diagnostics, Error, template};
use crate::schema::{Checker, check_without};

/// KEDA's CRD files; the `v1alpha1` schema of each kind is what the API server enforces.
const KEDA_CRDS: &[&str] = &[
    include_str!("../../../../tests/k8s/crds/keda/keda.sh_scaledobjects.yaml"),
    include_str!("../../../../tests/k8s/crds/keda/keda.sh_triggerauthentications.yaml"),
];

/// `(kind, openAPIV3Schema)` of every KEDA kind we emit.
static KEDA_SCHEMAS: LazyLock<Vec<(String, Checker)>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for text in KEDA_CRDS {
        let Ok(docs) = load_stream("keda crd", text, Limits::default()) else {
            continue;
        };
        for d in docs {
            let kind = d.value.pointer("/spec/names/kind").and_then(Value::as_str);
            let schema = d
                .value
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .and_then(|vs| {
                    vs.iter()
                        .find(|v| v["name"] == "v1alpha1")
                        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
                });
            if let (Some(k), Some(s)) = (kind, schema) {
                out.push((k.to_string(), Checker::new(s)));
            }
        }
    }
    out
});

/// Checks one canonical object; errors name the template that produced it.
pub(super) fn check_typed(obj: &Value, origin: &str) -> Result<(), Diagnostics> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "Deployment" => round_trip::<Deployment>(obj, kind, origin),
        "StatefulSet" => round_trip::<StatefulSet>(obj, kind, origin),
        "ServiceAccount" => round_trip::<ServiceAccount>(obj, kind, origin),
        "ScaledObject" | "TriggerAuthentication" => against_crd(obj, kind, origin),
        // Queue objects of optional operators (ACK, messaging-topology-operator): their CRDs
        // are not ours to ship; the controller's apply reports what their API server says.
        _ => Ok(()),
    }
}

fn round_trip<T: DeserializeOwned>(
    obj: &Value,
    kind: &str,
    origin: &str,
) -> Result<(), Diagnostics> {
    // Plain serde first; the path-tracking deserializer only to name a failure's field.
    if T::deserialize(obj).is_err() {
        let e = serde_path_to_error::deserialize::<_, T>(obj)
            .err()
            .map(|e| (e.path().to_string(), e.inner().to_string()))
            .unwrap_or_default();
        return Err(template(
            origin,
            &e.0,
            format!("expected a valid {kind} field: {}", e.1),
        )
        .into());
    }
    let mut key = Vec::with_capacity(4096);
    key.extend_from_slice(kind.as_bytes());
    shape(obj, &mut key);
    // A poisoned lock only means another render panicked; the set itself is whole.
    let clean = || CLEAN_SHAPES.lock().unwrap_or_else(|e| e.into_inner());
    if clean().contains(&key) {
        return Ok(());
    }
    // serde_ignored reports each field the type skipped.
    let mut unknown: Option<String> = None;
    let typed: Result<T, _> = serde_ignored::deserialize(obj, |p| {
        unknown.get_or_insert_with(|| dotted(&p));
    });
    if let Some(path) = unknown {
        return Err(template(
            origin,
            &path,
            format!("expected a field of {kind} (the API server does not know this one)"),
        )
        .into());
    }
    let mut set = clean();
    if typed.is_ok() && set.len() < SHAPES {
        set.insert(key);
    }
    Ok(())
}

/// Kind and shape of the objects in which `serde_ignored` found no unknown field (see the
/// module doc); at most [`SHAPES`]. Ordered, not hashed: a lookup compares a few buffers.
static CLEAN_SHAPES: LazyLock<Mutex<BTreeSet<Vec<u8>>>> =
    LazyLock::new(|| Mutex::new(BTreeSet::new()));

/// Bound of [`CLEAN_SHAPES`]: past it, new shapes are checked without being kept.
const SHAPES: usize = 256;

/// What decides which fields a type skips, written out: keys (length first, so that no two
/// shapes write the same bytes), nesting, list lengths, the kind of each scalar.
fn shape(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Array(a) => {
            out.push(b'[');
            for x in a {
                shape_of_member(x, out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (k, x) in m {
                // Keys are short: one byte of length, or 255 and the whole length.
                match u8::try_from(k.len()) {
                    Ok(n) if n < u8::MAX => out.push(n),
                    _ => {
                        out.push(u8::MAX);
                        out.extend_from_slice(&k.len().to_le_bytes());
                    }
                }
                out.extend_from_slice(k.as_bytes());
                shape_of_member(x, out);
            }
            out.push(b'}');
        }
        _ => shape_of_member(v, out),
    }
}

/// A scalar's kind without a call per scalar (most members are scalars).
fn shape_of_member(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(b'0'),
        Value::Bool(_) => out.push(b'b'),
        Value::Number(_) => out.push(b'n'),
        Value::String(_) => out.push(b's'),
        Value::Array(_) | Value::Object(_) => shape(v, out),
    }
}

/// serde_ignored's path as ours: `spec.template.spec.containers[0].imagePulPolicy`.
fn dotted(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", dotted(parent)),
        Path::Map { parent, key } => {
            let head = dotted(parent);
            if head.is_empty() {
                key.clone()
            } else {
                format!("{head}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => dotted(parent),
    }
}

fn against_crd(obj: &Value, kind: &str, origin: &str) -> Result<(), Diagnostics> {
    let Some((_, schema)) = KEDA_SCHEMAS.iter().find(|(k, _)| k == kind) else {
        return Err(template(
            origin,
            "kind",
            format!("expected KEDA's CRD schema for {kind}"),
        )
        .into());
    };
    let mut errs = Diagnostics::default();
    // The API server checks metadata itself (names, labels): the schema leaves it open.
    check_without(obj, schema, origin, "metadata", &mut errs);
    for e in &mut errs.0 {
        let path = e.path.trim_start_matches('.').to_string();
        *e = Error::new(
            e.kind,
            &e.file,
            &path,
            format!("{} (KEDA's {kind} schema)", e.message),
        );
    }
    errs.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_misspelt_field_of_a_built_in_kind_is_an_error() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagePulPolicy": "Always"}]}}}});
        super::super::canonicalize(&mut d);
        let e = check_typed(&d, "t.j2").expect_err("typo");
        assert_eq!(
            e.0[0].path, "spec.template.spec.containers[0].imagePulPolicy",
            "{e}"
        );
    }

    /// A shape found clean is remembered: a misspelt key makes another shape, checked anew,
    /// and a wrong value in a remembered shape is still an error.
    #[test]
    fn a_remembered_shape_hides_neither_typos_nor_wrong_values() {
        let d = |field: &str, time: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "a", "creationTimestamp": time},
                "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", field: "Always"}]}}}})
        };
        let time = "2026-11-30T00:00:00Z";
        for _ in 0..2 {
            check_typed(&d("imagePullPolicy", time), "t.j2").expect("clean");
        }
        let e = check_typed(&d("imagePulPolicy", time), "t.j2").expect_err("typo");
        assert_eq!(
            e.0[0].path, "spec.template.spec.containers[0].imagePulPolicy",
            "{e}"
        );
        let e = check_typed(&d("imagePullPolicy", "yesterday"), "t.j2").expect_err("not a time");
        assert_eq!(e.0[0].path, "metadata.creationTimestamp", "{e}");
    }

    #[test]
    fn keda_objects_are_checked_against_the_crd() {
        assert_eq!(KEDA_SCHEMAS.len(), 2);
        let so = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a"},
            "spec": {"scaleTargetRef": {"name": "a"}, "triggers": [{"type": "rabbitmq", "metadata": {}}], "minReplicas": 0}});
        let e = check_typed(&so, "t.j2").expect_err("unknown field");
        assert!(e.to_string().contains("spec.minReplicas"), "{e}");
    }
}
