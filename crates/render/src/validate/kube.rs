//! Values the API server validates in the objects we emit, checked here so that `asya
//! validate` fails where the cluster would (instead of an apply retried forever): resource
//! quantities and requests <= limits, env var names, tolerations.

use serde_json::{Map, Value};

use super::formats::is_env_name;
use crate::api::spec::{ActorSpec, FreeForm};

pub(super) fn check_kube(spec: &ActorSpec, err: &mut dyn FnMut(&str, String)) {
    if let Some(r) = &spec.resources {
        check_resources(&r.0, "spec.resources", err);
    }
    if let Some(r) = spec.sidecar.as_ref().and_then(|s| s.resources.as_ref()) {
        check_resources(&r.0, "spec.sidecar.resources", err);
    }
    for (field, list) in [
        ("initContainers", &spec.init_containers),
        ("sidecars", &spec.sidecars),
    ] {
        for (i, c) in list.iter().flatten().enumerate() {
            let base = format!("spec.{field}[{i}]");
            if let Some(Value::Object(r)) = c.0.get("resources") {
                check_resources(r, &format!("{base}.resources"), err);
            }
            if let Some(Value::Array(env)) = c.0.get("env") {
                for (j, e) in env.iter().enumerate() {
                    if let Some(n) = e.get("name").and_then(Value::as_str) {
                        check_env_name(n, &format!("{base}.env[{j}].name"), err);
                    }
                }
            }
        }
    }
    for (i, e) in spec.env.iter().flatten().enumerate() {
        check_env_name(&e.name, &format!("spec.env[{i}].name"), err);
    }
    let sidecar_env = spec.sidecar.as_ref().and_then(|s| s.env.as_ref());
    for (i, e) in sidecar_env.into_iter().flatten().enumerate() {
        check_env_name(&e.name, &format!("spec.sidecar.env[{i}].name"), err);
    }
    for (i, r) in spec.secret_refs.iter().flatten().enumerate() {
        for (j, k) in r.keys.iter().flatten().enumerate() {
            let var = k.env_var.as_deref().unwrap_or(&k.key);
            let field = if k.env_var.is_some() { "envVar" } else { "key" };
            check_env_name(var, &format!("spec.secretRefs[{i}].keys[{j}].{field}"), err);
        }
    }
    for (i, t) in spec.tolerations.iter().flatten().enumerate() {
        check_toleration(t, &format!("spec.tolerations[{i}]"), err);
    }
}

fn check_env_name(name: &str, path: &str, err: &mut dyn FnMut(&str, String)) {
    if !name.is_empty() && !is_env_name(name) {
        err(
            path,
            format!(
                "expected an environment variable name (letters, digits, '_', '-', '.', not starting with a digit), got {name:?}"
            ),
        );
    }
}

/// `requests` and `limits`: every value a quantity >= 0, every request <= its limit.
fn check_resources(r: &Map<String, Value>, path: &str, err: &mut dyn FnMut(&str, String)) {
    let mut parsed: [Vec<(String, f64)>; 2] = [Vec::new(), Vec::new()];
    for (slot, key) in ["requests", "limits"].into_iter().enumerate() {
        let Some(Value::Object(m)) = r.get(key) else {
            continue;
        };
        for (name, v) in m {
            let p = format!("{path}.{key}.{name}");
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => {
                    err(
                        &p,
                        format!("expected a quantity such as 500m or 2Gi, got {other}"),
                    );
                    continue;
                }
            };
            match parse_quantity(&text) {
                Some(q) if q < 0.0 => err(&p, format!("expected a quantity >= 0, got {text:?}")),
                Some(q) => parsed[slot].push((name.clone(), q)),
                None => err(
                    &p,
                    format!(
                        "expected a quantity (a number with an optional suffix: m, k, M, G, Ki, Mi, Gi, ...), got {text:?}"
                    ),
                ),
            }
        }
    }
    let [requests, limits] = &parsed;
    for (name, req) in requests {
        if let Some((_, lim)) = limits.iter().find(|(n, _)| n == name)
            && req > lim
        {
            let show = |k: &str| {
                r.get(k)
                    .and_then(|m| m.get(name))
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            err(
                &format!("{path}.requests.{name}"),
                format!(
                    "expected a request <= its limit ({}), got {}",
                    show("limits"),
                    show("requests")
                ),
            );
        }
    }
}

/// A Kubernetes quantity (`500m`, `2Gi`, `1e3`, `1.5`) as a number, or `None` if malformed.
pub(crate) fn parse_quantity(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let digits = num.strip_prefix(['+', '-']).unwrap_or(num);
    // One optional dot, digits on at least one side, no signs inside.
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => {
            let exp = &e[1..];
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(exp.parse().ok()?)
        }
        _ => return None,
    };
    Some(n * factor)
}

fn check_toleration(t: &FreeForm, path: &str, err: &mut dyn FnMut(&str, String)) {
    let get = |k: &str| t.0.get(k).and_then(Value::as_str);
    let op = get("operator").unwrap_or("Equal");
    if !matches!(op, "Equal" | "Exists") {
        err(
            &format!("{path}.operator"),
            format!("expected Equal or Exists, got {op:?}"),
        );
    }
    if op == "Exists" && get("value").is_some_and(|v| !v.is_empty()) {
        err(
            &format!("{path}.value"),
            "expected no value with operator Exists".into(),
        );
    }
    if let Some(e) = get("effect")
        && !matches!(e, "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute")
    {
        err(
            &format!("{path}.effect"),
            format!("expected NoSchedule, PreferNoSchedule or NoExecute, got {e:?}"),
        );
    }
    if get("key").is_none_or(str::is_empty) && op != "Exists" {
        err(
            &format!("{path}.operator"),
            "expected operator Exists when the key is empty (it matches every taint)".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_quantity;

    #[test]
    fn quantities_like_the_api_server() {
        for (s, v) in [
            ("2Gi", 2.0 * 1024f64.powi(3)),
            ("500m", 0.5),
            ("1", 1.0),
            ("1.5", 1.5),
            (".5", 0.5),
            ("1e3", 1000.0),
            ("-1Gi", -(1024f64.powi(3))),
        ] {
            assert_eq!(parse_quantity(s), Some(v), "{s}");
        }
        for bad in ["2GG", "", "Gi", "1.2.3", "1 Gi", "abc", "1e", "--1", "1gi"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
