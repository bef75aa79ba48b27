//! Normalisation of the accepted input shapes into the flat model (DESIGN §3).
//!
//! Works on JSON values so that every alias is rewritten before merging: the legacy
//! operator shape (`workload.template` with the handler in `ASYA_HANDLER`, `minReplicas`,
//! `socket`, `timeout`), and the docs' spellings (`match`, `initialInterval`, `secretRefs[].name`).

use serde_json::{Map, Value, json};

use crate::error::{Diagnostics, invalid};

pub(crate) struct Normalized {
    pub spec: Map<String, Value>,
    /// True when operator-era fields were found.
    pub legacy: bool,
    pub warnings: Vec<String>,
}

/// Moves `from` to `to` inside `map`; both set is an error.
fn rename(
    map: &mut Map<String, Value>,
    from: &str,
    to: &str,
    file: &str,
    path: &str,
    errs: &mut Diagnostics,
) -> bool {
    let Some(v) = map.remove(from) else {
        return false;
    };
    if map.contains_key(to) {
        errs.push(invalid(
            file,
            &format!("{path}.{from}"),
            format!("expected either {from} or {to}, not both ({from} is an alias of {to})"),
        ));
        return true;
    }
    map.insert(to.to_string(), v);
    true
}

fn obj_mut<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// `actor_name`: `metadata.name`, used as `spec.actor` by the legacy shape. `None` for flavors.
/// Takes the spec by value: the actor's is a copy already, rewritten in place.
pub(crate) fn normalize(
    file: &str,
    spec: Value,
    actor_name: Option<&str>,
    errs: &mut Diagnostics,
) -> Normalized {
    let mut s = match spec {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut legacy = false;
    let mut warnings = Vec::new();

    if let Some(scaling) = obj_mut(&mut s, "scaling") {
        legacy |= rename(
            scaling,
            "minReplicas",
            "minReplicaCount",
            file,
            "spec.scaling",
            errs,
        );
        legacy |= rename(
            scaling,
            "maxReplicas",
            "maxReplicaCount",
            file,
            "spec.scaling",
            errs,
        );
    }
    if let Some(res) = obj_mut(&mut s, "resiliency") {
        if let Some(rules) = res.get_mut("rules").and_then(Value::as_array_mut) {
            for (i, rule) in rules.iter_mut().enumerate() {
                if let Some(rule) = rule.as_object_mut()
                    && let Some(m) = rule.remove("match")
                {
                    if rule.contains_key("errors") {
                        errs.push(invalid(
                            file,
                            &format!("spec.resiliency.rules[{i}].match"),
                            "expected either match or errors, not both",
                        ));
                    } else {
                        let list = match m {
                            Value::Array(a) => Value::Array(a),
                            other => Value::Array(vec![other]),
                        };
                        rule.insert("errors".into(), list);
                    }
                }
            }
        }
        if let Some(policies) = obj_mut(res, "policies") {
            for (name, p) in policies.iter_mut() {
                if let Some(p) = p.as_object_mut() {
                    rename(
                        p,
                        "initialInterval",
                        "initialDelay",
                        file,
                        &format!("spec.resiliency.policies.{name}"),
                        errs,
                    );
                }
            }
        }
    }
    if let Some(refs) = s.get_mut("secretRefs").and_then(Value::as_array_mut) {
        for (i, r) in refs.iter_mut().enumerate() {
            if let Some(r) = r.as_object_mut() {
                rename(
                    r,
                    "name",
                    "secretName",
                    file,
                    &format!("spec.secretRefs[{i}]"),
                    errs,
                );
            }
        }
    }
    // --- legacy operator shape ---
    if let Some(t) = s.remove("timeout") {
        legacy = true;
        if let Some(p) = t.get("processing").and_then(Value::as_i64) {
            let res = s.entry("resiliency").or_insert_with(|| json!({}));
            if let Some(res) = res.as_object_mut() {
                if res.contains_key("actorTimeout") {
                    errs.push(invalid(
                        file,
                        "spec.timeout.processing",
                        "expected either timeout.processing or resiliency.actorTimeout, not both",
                    ));
                } else {
                    res.insert("actorTimeout".into(), Value::String(format!("{p}s")));
                }
            }
        }
        if let Some(g) = t.get("gracefulShutdown").and_then(Value::as_i64) {
            if s.contains_key("terminationGracePeriodSeconds") {
                errs.push(invalid(file, "spec.timeout.gracefulShutdown", "expected either timeout.gracefulShutdown or terminationGracePeriodSeconds, not both"));
            } else {
                // The sidecar gets the grace period minus 5 s, so add them back.
                s.insert("terminationGracePeriodSeconds".into(), json!(g + 5));
            }
        }
    }
    if let Some(sock) = s.remove("socket") {
        legacy = true;
        if sock.get("path").is_some() {
            warnings.push("spec.socket.path is ignored: the socket lives in the shared volume at /var/run/asya".into());
        }
        if let Some(size) = sock.get("maxSize") {
            let value = match size {
                Value::String(v) => v.clone(),
                other => other.to_string(),
            };
            push_env(
                &mut s,
                json!({"name": "ASYA_MAX_FRAME_BYTES", "value": value}),
            );
        }
    }
    let mut template = None;
    if let Some(w) = obj_mut(&mut s, "workload") {
        legacy |= rename(w, "type", "kind", file, "spec.workload", errs);
        template = w.remove("template");
        let replicas = w.remove("replicas");
        if let Some(r) = replicas {
            legacy = true;
            if s.contains_key("replicas") {
                errs.push(invalid(
                    file,
                    "spec.workload.replicas",
                    "expected either workload.replicas or replicas, not both",
                ));
            } else {
                s.insert("replicas".into(), r);
            }
        }
    }
    if let Some(t) = template {
        legacy = true;
        unpack_template(file, &t, &mut s, &mut warnings, errs);
    }
    if legacy {
        if let Some(name) = actor_name
            && !s.contains_key("actor")
        {
            s.insert("actor".into(), Value::String(name.to_string()));
        }
        // The operator defaulted to fixed replicas; keep migrated actors where they were.
        let scaling = s.entry("scaling").or_insert_with(|| json!({}));
        if let Some(sc) = scaling.as_object_mut()
            && !sc.contains_key("enabled")
        {
            sc.insert("enabled".into(), Value::Bool(false));
        }
    }
    Normalized {
        spec: s,
        legacy,
        warnings,
    }
}

fn push_env(s: &mut Map<String, Value>, item: Value) {
    let env = s.entry("env").or_insert_with(|| json!([]));
    if let Some(a) = env.as_array_mut() {
        a.push(item);
    }
}

fn set_unique(
    s: &mut Map<String, Value>,
    key: &str,
    v: Value,
    file: &str,
    from: &str,
    errs: &mut Diagnostics,
) {
    if s.contains_key(key) {
        errs.push(invalid(
            file,
            from,
            format!("expected either {from} or spec.{key}, not both"),
        ));
    } else {
        s.insert(key.to_string(), v);
    }
}

fn append_list(s: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    let list = s.entry(key).or_insert_with(|| json!([]));
    if let Some(a) = list.as_array_mut() {
        // Legacy items first: they were the only ones in the operator era.
        let rest = std::mem::take(a);
        a.extend(items);
        a.extend(rest);
    }
}

fn unpack_template(
    file: &str,
    t: &Value,
    s: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
    errs: &mut Diagnostics,
) {
    const BASE: &str = "spec.workload.template";
    let mut pod_template = Map::new();
    if let Some(meta) = t.get("metadata").and_then(Value::as_object) {
        let mut m = Map::new();
        for key in ["labels", "annotations"] {
            if let Some(v) = meta.get(key) {
                m.insert(key.into(), v.clone());
            }
        }
        if !m.is_empty() {
            pod_template.insert("metadata".into(), Value::Object(m));
        }
    }
    let mut pod = t
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let containers = match pod.remove("containers") {
        Some(Value::Array(c)) => c,
        _ => Vec::new(),
    };
    let mut runtime_found = false;
    let mut sidecars = Vec::new();
    for (i, c) in containers.into_iter().enumerate() {
        let path = format!("{BASE}.spec.containers[{i}]");
        let Value::Object(mut c) = c else {
            errs.push(invalid(file, &path, "expected a container mapping"));
            continue;
        };
        if c.get("name").and_then(Value::as_str) != Some("asya-runtime") {
            sidecars.push(Value::Object(c));
            continue;
        }
        runtime_found = true;
        c.remove("name");
        if let Some(v) = c.remove("image") {
            set_unique(s, "image", v, file, &format!("{path}.image"), errs);
        }
        if let Some(v) = c.remove("imagePullPolicy") {
            set_unique(
                s,
                "imagePullPolicy",
                v,
                file,
                &format!("{path}.imagePullPolicy"),
                errs,
            );
        }
        let mut env_items = Vec::new();
        if let Some(Value::Array(env)) = c.remove("env") {
            for (j, e) in env.into_iter().enumerate() {
                if e.get("name").and_then(Value::as_str) == Some("ASYA_HANDLER") {
                    match e.get("value") {
                        Some(h @ Value::String(_)) => set_unique(
                            s,
                            "handler",
                            h.clone(),
                            file,
                            &format!("{path}.env[{j}]"),
                            errs,
                        ),
                        _ => errs.push(invalid(
                            file,
                            &format!("{path}.env[{j}].value"),
                            "expected the handler as a string value",
                        )),
                    }
                } else {
                    env_items.push(e);
                }
            }
        }
        if !env_items.is_empty() {
            append_list(s, "env", env_items);
        }
        if let Some(v) = c.remove("resources") {
            set_unique(s, "resources", v, file, &format!("{path}.resources"), errs);
        }
        if let Some(Value::Array(m)) = c.remove("volumeMounts") {
            append_list(s, "volumeMounts", m);
        }
        if let Some(Value::Array(ef)) = c.remove("envFrom") {
            // envFrom secretRef → secretRefs without keys (all keys as env vars).
            let mut refs = Vec::new();
            for e in ef {
                match e.pointer("/secretRef/name") {
                    Some(n) => refs.push(json!({"secretName": n})),
                    None => warnings.push(format!(
                        "{path}.envFrom: only secretRef entries are carried over"
                    )),
                }
            }
            append_list(s, "secretRefs", refs);
        }
        for key in c.keys() {
            warnings.push(format!(
                "{path}.{key} is ignored: Asya sets it for the runtime container"
            ));
        }
    }
    if !runtime_found {
        errs.push(invalid(
            file,
            &format!("{BASE}.spec.containers"),
            "expected a container named asya-runtime (it carries the image and ASYA_HANDLER)",
        ));
    }
    if !sidecars.is_empty() {
        append_list(s, "sidecars", sidecars);
    }
    for key in ["initContainers", "volumes", "tolerations"] {
        if let Some(Value::Array(items)) = pod.remove(key) {
            append_list(s, key, items);
        }
    }
    for key in ["nodeSelector", "affinity", "terminationGracePeriodSeconds"] {
        if let Some(v) = pod.remove(key) {
            set_unique(s, key, v, file, &format!("{BASE}.spec.{key}"), errs);
        }
    }
    if !pod.is_empty() {
        pod_template.insert("spec".into(), Value::Object(pod));
    }
    if !pod_template.is_empty() {
        let w = s.entry("workload").or_insert_with(|| json!({}));
        if let Some(w) = w.as_object_mut() {
            if w.contains_key("podTemplate") {
                errs.push(invalid(
                    file,
                    BASE,
                    "expected either workload.template or workload.podTemplate, not both",
                ));
            } else {
                w.insert("podTemplate".into(), Value::Object(pod_template));
            }
        }
    }
}

/// Fields of upstream's Crossplane-era AsyncActor and what replaced each.
pub(crate) const REPLACED: &[(&str, &str)] = &[
    (
        "region",
        "moved to the platform's transports.sqs.config.region",
    ),
    (
        "providerConfigRef",
        "moved to the platform's queue.providerConfig",
    ),
    ("overlays", "replaced by flavors: list them in spec.flavors"),
    (
        "compositionSelector",
        "not needed: asya render replaces the Crossplane composition; remove it",
    ),
];

/// Upstream spellings whose type differs from ours, rewritten before the schema check (which
/// would otherwise reject them as the wrong type), and fields that were replaced, reported
/// with their replacement.
pub(crate) fn upstream_aliases(file: &str, spec: &mut Value, errs: &mut Diagnostics) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    for (field, replacement) in REPLACED {
        if s.remove(*field).is_some() {
            errs.push(invalid(
                file,
                &format!("spec.{field}"),
                format!("expected no {field} (an upstream Crossplane-era field): {replacement}"),
            ));
        }
    }
    if let Some(sc) = obj_mut(s, "sidecar")
        && let Some(Value::Object(img)) = sc.get("image").cloned()
    {
        // Newer upstream: sidecar.image.{repository, tag, pullPolicy}.
        let repo = img.get("repository").and_then(Value::as_str).unwrap_or("");
        let image = match img.get("tag").and_then(Value::as_str) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        sc.insert("image".into(), Value::String(image));
        if let Some(p) = img.get("pullPolicy")
            && !sc.contains_key("imagePullPolicy")
        {
            sc.insert("imagePullPolicy".into(), p.clone());
        }
    }
    // The legacy shape kept the interpreter under workload.
    if let Some(py) = obj_mut(s, "workload").and_then(|w| w.remove("pythonExecutable")) {
        if s.contains_key("pythonExecutable") {
            errs.push(invalid(
                file,
                "spec.workload.pythonExecutable",
                "expected either workload.pythonExecutable or pythonExecutable, not both",
            ));
        } else {
            s.insert("pythonExecutable".into(), py);
        }
    }
}
