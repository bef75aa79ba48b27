//! Lists that Kubernetes merges by key (server-side apply's `listType: map`, strategic merge's
//! `patchMergeKey`) must not hold one key twice: the API server rejects the whole object with
//! `duplicate entries for key`. Checked on every object render emits, whatever produced it
//! (our injected items, the user's, a flavor's or a platform's template).

use serde_json::Value;

use super::fieldpath::{Step, path_of};

/// List field name → the fields that form an item's key. `protocol` defaults to TCP.
const KEYED_LISTS: &[(&str, &[&str])] = &[
    ("containers", &["name"]),
    ("initContainers", &["name"]),
    ("ephemeralContainers", &["name"]),
    ("env", &["name"]),
    ("volumes", &["name"]),
    ("volumeMounts", &["mountPath"]),
    ("volumeDevices", &["devicePath"]),
    ("ports", &["containerPort", "protocol"]),
    ("imagePullSecrets", &["name"]),
    ("hostAliases", &["ip"]),
    // Not a map list for the API server, but two equal tolerations are always a mistake.
    ("tolerations", &["key", "operator", "value", "effect"]),
];

/// One list item whose key an earlier item of the same list already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duplicate {
    /// Dotted path of the repeated item, e.g. `spec.template.spec.containers[0].env[7]`.
    pub path: String,
    /// Index of the first item with that key.
    pub first: usize,
    /// The key, e.g. `name=ASYA_LOG_LEVEL`.
    pub key: String,
}

/// The fields that key the list named `name`, if Kubernetes merges it by key.
pub(crate) fn keyed_list(name: &str) -> Option<&'static [&'static str]> {
    KEYED_LISTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, fields)| *fields)
}

/// Whether two items of `items` have the same key (the error is then built by
/// [`duplicate_keys`], which also finds the path).
pub(crate) fn has_duplicate(items: &[Value], fields: &[&str]) -> bool {
    let flat = keys(items, fields);
    let n = fields.len();
    let key_of = |i: usize| items[i].is_object().then(|| &flat[i * n..(i + 1) * n]);
    (0..items.len()).any(|i| key_of(i).is_some_and(|k| (0..i).any(|j| key_of(j) == Some(k))))
}

/// Every duplicate key in every keyed list of `obj`.
pub(crate) fn duplicate_keys(obj: &Value) -> Vec<Duplicate> {
    let mut out = Vec::new();
    walk(obj, &mut Vec::new(), &mut out);
    out
}

fn walk<'a>(v: &'a Value, steps: &mut Vec<Step<'a>>, out: &mut Vec<Duplicate>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                // Only lists and mappings can hold a keyed list; scalars are most members.
                match child {
                    Value::Array(items) => {
                        steps.push(Step::Field(k));
                        if let Some((_, fields)) = KEYED_LISTS.iter().find(|(name, _)| name == k) {
                            check_list(items, fields, steps, out);
                        }
                        walk(child, steps, out);
                        steps.pop();
                    }
                    Value::Object(_) => {
                        steps.push(Step::Field(k));
                        walk(child, steps, out);
                        steps.pop();
                    }
                    _ => {}
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                if child.is_object() || child.is_array() {
                    steps.push(Step::Index(i));
                    walk(child, steps, out);
                    steps.pop();
                }
            }
        }
        _ => {}
    }
}

fn check_list(items: &[Value], fields: &[&str], steps: &[Step<'_>], out: &mut Vec<Duplicate>) {
    // Each item's key is looked up once (map lookups hash); lists are short (a few
    // containers, a few dozen env vars), so comparing the keys pairwise is cheapest.
    let n = fields.len();
    let flat = keys(items, fields);
    let key_of = |i: usize| items[i].is_object().then(|| &flat[i * n..(i + 1) * n]);
    for i in 0..items.len() {
        let Some(key) = key_of(i) else { continue };
        if let Some(first) = (0..i).position(|j| key_of(j) == Some(key)) {
            let key = fields
                .iter()
                .zip(key)
                .map(|(f, v)| format!("{f}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            out.push(Duplicate {
                path: format!("{}[{i}]", path_of(steps)),
                first,
                key,
            });
        }
    }
}

/// The keys of all items in one buffer, `fields.len()` per item (a vector per item cost an
/// allocation each). Lists of scalars are not keyed: such items get no key.
fn keys<'a>(items: &'a [Value], fields: &[&str]) -> Vec<std::borrow::Cow<'a, str>> {
    let n = fields.len();
    let mut flat = Vec::with_capacity(items.len() * n);
    for item in items {
        if item.is_object() {
            flat.extend(fields.iter().map(|f| field(item, f)));
        } else {
            flat.extend(std::iter::repeat_n(std::borrow::Cow::Borrowed(""), n));
        }
    }
    flat
}

/// One key field of a list item as text; `protocol` defaults to TCP as in Kubernetes.
fn field<'a>(item: &'a Value, f: &str) -> std::borrow::Cow<'a, str> {
    // By comparing keys, not hashing `f`: list items are small mappings.
    match item.as_object().and_then(|m| super::context::member(m, f)) {
        Some(Value::String(s)) => std::borrow::Cow::Borrowed(s),
        Some(Value::Null) | None if f == "protocol" => std::borrow::Cow::Borrowed("TCP"),
        Some(Value::Null) | None => std::borrow::Cow::Borrowed(""),
        Some(other) => std::borrow::Cow::Owned(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_repeated_env_names_and_ports_by_port_and_protocol() {
        let obj = json!({"spec": {"containers": [{
            "name": "a",
            "env": [{"name": "X"}, {"name": "Y"}, {"name": "X", "value": "2"}],
            "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}, {"containerPort": 80, "protocol": "TCP"}],
        }]}});
        let d = duplicate_keys(&obj);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].path, "spec.containers[0].env[2]");
        assert_eq!(d[0].first, 0);
        assert_eq!(d[0].key, "name=X");
        assert_eq!(d[1].path, "spec.containers[0].ports[2]");
    }

    #[test]
    fn mounts_are_keyed_by_path_not_name() {
        let obj = json!({"volumeMounts": [
            {"name": "v", "mountPath": "/a"}, {"name": "v", "mountPath": "/b"}, {"name": "w", "mountPath": "/a"}
        ]});
        let d = duplicate_keys(&obj);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, "mountPath=/a");
    }
}
