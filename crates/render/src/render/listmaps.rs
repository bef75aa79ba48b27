//! Lists that Kubernetes merges by key (server-side apply's `listType: map`, strategic merge's
//! `patchMergeKey`) must not hold one key twice: the API server rejects the whole object with
//! `duplicate entries for key`. Checked on every object render emits, whatever produced it
//! (our injected items, the user's, a flavor's or a platform's template).

use std::collections::HashMap;

use serde_json::Value;

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

/// Every duplicate key in every keyed list of `obj`.
pub(crate) fn duplicate_keys(obj: &Value) -> Vec<Duplicate> {
    let mut out = Vec::new();
    walk(obj, "", &mut out);
    out
}

fn walk(v: &Value, path: &str, out: &mut Vec<Duplicate>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let (Value::Array(items), Some((_, fields))) =
                    (child, KEYED_LISTS.iter().find(|(name, _)| name == k))
                {
                    check_list(items, fields, &p, out);
                }
                walk(child, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                walk(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn check_list(items: &[Value], fields: &[&str], path: &str, out: &mut Vec<Duplicate>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        // Lists of scalars (e.g. `ports` of a Service spec written differently) are not keyed.
        if !item.is_object() {
            continue;
        }
        let key = fields
            .iter()
            .map(|f| {
                let value = match item.get(*f) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None if *f == "protocol" => "TCP".into(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                format!("{f}={value}")
            })
            .collect::<Vec<_>>()
            .join(",");
        if let Some(first) = seen.insert(key.clone(), i) {
            seen.insert(key.clone(), first);
            out.push(Duplicate {
                path: format!("{path}[{i}]"),
                first,
                key,
            });
        }
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
