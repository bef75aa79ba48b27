//! What happens to every object a template produced: checks of the invariants Asya
//! guarantees, namespace and labels stamped on, and the canonical form (sorted keys, no
//! nulls) that makes the output bytes depend only on content.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::context::member;
use super::labels::{APPLYSET_PART_OF, component_of};
use super::listmaps::{duplicate_keys, has_duplicate, keyed_list};
use super::s;
use crate::error::{Error, invalid, template};

/// What every rendered object gets stamped with.
pub(super) struct Stamp {
    /// The actor's file, named by errors about what the actor's lists produced.
    pub source: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub applyset_id: String,
    /// While KEDA scales, a workload must not carry `spec.replicas` (apply would fight KEDA).
    pub scaling_enabled: bool,
    /// The labels of an object whose template sets none, keys sorted, built once per actor
    /// with the component left empty: each object clones it (a clone copies the hash
    /// index) instead of inserting every label into a new, growing mapping and sorting it.
    object_labels: Map<String, Value>,
}

impl Stamp {
    pub fn new(
        source: String,
        namespace: String,
        labels: BTreeMap<String, String>,
        applyset_id: String,
        scaling_enabled: bool,
    ) -> Stamp {
        // What `finish` sets on a template's own labels, in the same order (later wins).
        let mut all: BTreeMap<&str, &str> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.insert(COMPONENT, "");
        all.insert(APPLYSET_PART_OF, &applyset_id);
        let object_labels = all
            .into_iter()
            .map(|(k, v)| (k.to_string(), s(v)))
            .collect();
        Stamp {
            source,
            namespace,
            labels,
            applyset_id,
            scaling_enabled,
            object_labels,
        }
    }

    /// Sets namespace and labels, enforces the invariants, canonicalises.
    pub fn finish(&self, obj: &mut Value, origin: &str) -> Result<(), Error> {
        let Some(m) = obj.as_object_mut() else {
            return Err(template(
                origin,
                "",
                "expected a Kubernetes object (a mapping)",
            ));
        };
        // Members found by comparing keys (`member`), not by hashing them: objects have few.
        let kind = member(m, "kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if kind.is_empty() || member(m, "apiVersion").and_then(Value::as_str).is_none() {
            return Err(template(origin, "", "expected apiVersion and kind"));
        }
        if self.scaling_enabled
            && matches!(kind.as_str(), "Deployment" | "StatefulSet")
            && member(m, "spec")
                .and_then(Value::as_object)
                .and_then(|s| member(s, "replicas"))
                .is_some()
        {
            return Err(template(
                origin,
                "spec.replicas",
                "expected no spec.replicas while KEDA owns scaling",
            ));
        }
        let Some(component) = component_of(&kind) else {
            return Err(template(
                origin,
                "kind",
                format!("expected a known object kind, got {kind:?}"),
            ));
        };
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            return Err(template(origin, "metadata", "expected a mapping"));
        };
        if member(meta, "name").and_then(Value::as_str).is_none() {
            return Err(template(origin, "metadata.name", "expected a name"));
        }
        set(meta, "namespace", &self.namespace);
        if member(meta, "labels").is_none() {
            let mut l = self.object_labels.clone();
            if let Some(c) = l
                .iter_mut()
                .find_map(|(k, v)| (k == COMPONENT).then_some(v))
            {
                *c = s(component);
            }
            meta.insert("labels".into(), Value::Object(l));
        } else if let Some(l) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            for (k, v) in &self.labels {
                set(l, k, v);
            }
            set(l, COMPONENT, component);
            set(l, APPLYSET_PART_OF, &self.applyset_id);
        }
        // Duplicate keys looked for in the same walk; their path is found only when there
        // are some.
        if !canonicalize_finding_duplicates(obj) {
            return Ok(());
        }
        let name = obj
            .as_object()
            .and_then(|m| member(m, "metadata"))
            .and_then(Value::as_object)
            .and_then(|m| member(m, "name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(d) = duplicate_keys(obj).into_iter().next() {
            return Err(invalid(
                &self.source,
                &format!("{kind}/{name} {}", d.path),
                format!(
                    "expected one item per key in this list (Kubernetes merges it by key and would \
                     reject the {kind}), got {} twice: item {} has it too; rename or remove one \
                     (template {origin})",
                    d.key, d.first
                ),
            ));
        }
        Ok(())
    }
}

const COMPONENT: &str = "app.kubernetes.io/component";

/// `m[k] = v`, unless it is so already (a template that prints labels mostly prints the
/// actor's): inserting copies the key and hashes it.
fn set(m: &mut Map<String, Value>, k: &str, v: &str) {
    if member(m, k).and_then(Value::as_str) != Some(v) {
        m.insert(k.to_string(), s(v));
    }
}

/// Recursively sorts keys, nothing else: for values built once (constant context parts)
/// whose copies are canonicalised per actor.
pub(crate) fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if !m.keys().is_sorted() {
                m.sort_keys();
            }
            m.values_mut().for_each(sort_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// [`canonicalize`]'s walk, returning whether a list Kubernetes merges by key holds one key
/// twice (see `listmaps`). Scalars are not visited.
fn canonicalize_finding_duplicates(v: &mut Value) -> bool {
    let mut found = false;
    match v {
        Value::Object(m) => {
            tidy(m);
            for (k, x) in m.iter_mut() {
                if let Value::Array(items) = x
                    && !found
                    && let Some(fields) = keyed_list(k)
                {
                    found = has_duplicate(items, fields);
                }
                if x.is_object() || x.is_array() {
                    found |= canonicalize_finding_duplicates(x);
                }
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut().filter(|x| x.is_object() || x.is_array()) {
                found |= canonicalize_finding_duplicates(x);
            }
        }
        _ => {}
    }
    found
}

/// Drops a map's `null` members and sorts its keys. Both rebuild the map's hash index: only
/// when there is something to do (the skeletons and most context maps come sorted already).
fn tidy(m: &mut Map<String, Value>) {
    if m.values().any(Value::is_null) {
        m.retain(|_, v| !v.is_null());
    }
    if !m.keys().is_sorted() {
        m.sort_keys();
    }
}

/// Recursively sorts keys and drops `null` members, so output bytes depend only on content.
/// In place: `sort_keys` reorders the map's entries without rebuilding it.
pub fn canonicalize(v: &mut Value) {
    // One walk for both: whether a keyed list holds a key twice is not asked here.
    canonicalize_finding_duplicates(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The duplicate found while canonicalising is reported with its path.
    #[test]
    fn a_key_twice_in_a_merged_list_is_an_error_naming_the_item() {
        let stamp = Stamp::new(
            "a.yaml".into(),
            "ns".into(),
            BTreeMap::new(),
            "applyset-x-v1".into(),
            false,
        );
        let obj = |second: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
                "spec": {"template": {"spec": {"containers": [{"name": "c",
                    "env": [{"name": "X", "value": null}, {"name": second}]}]}}}})
        };
        let mut ok = obj("Y");
        stamp.finish(&mut ok, "t.j2").expect("no duplicate");
        assert_eq!(
            ok["spec"]["template"]["spec"]["containers"][0]["env"][0],
            json!({"name": "X"})
        );
        let e = stamp.finish(&mut obj("X"), "t.j2").expect_err("duplicate");
        assert_eq!(
            e.path,
            "Deployment/a spec.template.spec.containers[0].env[1]"
        );
    }
}
