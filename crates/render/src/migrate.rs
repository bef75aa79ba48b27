//! `asya migrate`: an AsyncActor written for upstream Asya (the operator-era shape, newer
//! upstream spellings, Crossplane-era fields) rewritten into the flat shape, with a report of
//! what changed and of what a person still has to do.
//!
//! The rewrite is the render pipeline's own normalisation ([`crate::normalize`]), so a
//! migrated file renders to the same objects as the original: the operator-era defaults that
//! render applies only to the legacy shape (fixed replicas, KEDA polling 10 s and cooldown
//! 60 s) are written out explicitly. Crossplane-era fields have no place in an actor; they are
//! removed and reported with where their setting lives now.

use serde_json::{Map, Value};

use crate::api::ActorDocument;
use crate::error::Diagnostics;
use crate::merge::LEGACY_POLLING_COOLDOWN;
use crate::normalize::{REPLACED, normalize, upstream_aliases};

/// One actor, migrated.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// The flat `spec`, keys in the order written (new keys last).
    pub spec: Map<String, Value>,
    /// True when anything changed (a flat actor migrates to itself).
    pub changed: bool,
    /// What the rewrite did, at the highest path that differs (`spec.timeout removed (was
    /// {"processing":600})`, `spec.resiliency.actorTimeout = "600s" added`).
    pub changes: Vec<String>,
    /// What the rewrite could not do: settings that moved out of the actor, behaviour that
    /// differs from upstream and needs a decision.
    pub needs_human: Vec<String>,
}

/// Migrates one actor. Errors are the normalisation's own (a field written in both shapes).
pub fn migrate(doc: &ActorDocument) -> Result<Migration, Diagnostics> {
    let file = doc.source.as_str();
    let mut errs = Diagnostics::default();
    let mut needs_human = Vec::new();
    let mut spec = doc.spec.clone();
    if let Some(s) = spec.as_object_mut() {
        for (field, replacement) in REPLACED {
            if let Some(old) = s.remove(*field) {
                needs_human.push(format!(
                    "spec.{field} ({}) was removed: {replacement}",
                    compact(&old)
                ));
            }
        }
    }
    upstream_aliases(file, &mut spec, &mut errs);
    let n = normalize(file, spec, Some(&doc.name), &mut errs);
    errs.into_result()?;
    let mut out = n.spec;
    if n.legacy {
        legacy_defaults_made_explicit(&mut out);
    }
    needs_human.extend(n.warnings);
    needs_human.extend(upstream_differences(&out));

    let changes = changes(&doc.spec, &Value::Object(out.clone()));
    Ok(Migration {
        changed: !changes.is_empty(),
        spec: out,
        changes,
        needs_human,
    })
}

/// Render gives the legacy shape KEDA polling 10 s / cooldown 60 s (the flat shape's are
/// 30 s / 300 s); a migrated actor keeps them by saying so.
fn legacy_defaults_made_explicit(spec: &mut Map<String, Value>) {
    let Some(scaling) = spec.get_mut("scaling").and_then(Value::as_object_mut) else {
        return;
    };
    if scaling.get("enabled").and_then(Value::as_bool) == Some(false) {
        return;
    }
    let (polling, cooldown) = LEGACY_POLLING_COOLDOWN;
    scaling
        .entry("pollingInterval")
        .or_insert_with(|| Value::from(polling));
    scaling
        .entry("cooldownPeriod")
        .or_insert_with(|| Value::from(cooldown));
}

/// Behaviour that differs from upstream whatever the actor says.
fn upstream_differences(spec: &Map<String, Value>) -> Vec<String> {
    let mut out = vec![
        "queue names: upstream used asya-<actor>, Asya uses asya-<namespace>-<actor>; until the \
         old queues are drained, set the platform's queue.naming: legacy (docs/migrating.md)"
            .to_string(),
    ];
    let transport = spec.get("transport").and_then(Value::as_str);
    if matches!(transport, None | Some("rabbitmq")) {
        out.push(
            "KEDA secret (RabbitMQ): upstream's rabbitmq-keda-secret holds an AMQP URL under the \
             key host; set the platform's transports.rabbitmq.config.kedaProtocol: amqp to keep \
             it, or add the management API URL under the key managementUrl"
                .into(),
        );
    }
    out
}

/// What differs between two specs, at the highest path that differs: a moved subtree is
/// one `removed` and one `added` line, not one per leaf.
fn changes(before: &Value, after: &Value) -> Vec<String> {
    let (b, a) = (nodes(before), nodes(after));
    let find = |set: &[(String, Value)], path: &str| {
        set.iter().find(|(p, _)| p == path).map(|(_, v)| v.clone())
    };
    let parent_in = |set: &[(String, Value)], path: &str| {
        let cut = path.rfind(['.', '[']).unwrap_or(0);
        find(set, &path[..cut]).is_some()
    };
    let mut out = Vec::new();
    for (path, v) in &b {
        match find(&a, path) {
            None if parent_in(&a, path) => out.push(format!("{path} removed (was {})", compact(v))),
            Some(w) if !v.is_object() && !v.is_array() && w != *v => {
                out.push(format!("{path}: {} -> {}", compact(v), compact(&w)))
            }
            _ => {}
        }
    }
    for (path, v) in &a {
        if find(&b, path).is_none() && parent_in(&b, path) {
            out.push(format!("{path} = {} added", compact(v)));
        }
    }
    out
}

/// `(path, value)` of every node under `spec`, containers included, in document order.
fn nodes(v: &Value) -> Vec<(String, Value)> {
    fn walk(path: String, v: &Value, out: &mut Vec<(String, Value)>) {
        out.push((path.clone(), v.clone()));
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(format!("{path}.{k}"), x, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(format!("{path}[{i}]"), x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("spec".into(), v, &mut out);
    out
}

/// A value on one line, cut at 60 characters.
fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> ActorDocument {
        let v: Value = serde_norway::from_str(yaml).unwrap();
        ActorDocument::from_value("a.yaml", &v).unwrap()
    }

    #[test]
    fn a_flat_actor_migrates_to_itself() {
        let d = doc(
            "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a}\n\
                     spec: {actor: a, image: i, handler: m.f, transport: sqs}\n",
        );
        let m = migrate(&d).unwrap();
        assert!(!m.changed, "{:?}", m.changes);
        assert_eq!(Value::Object(m.spec), d.spec);
        // SQS actors need no KEDA secret note; the queue-name note is always there.
        assert_eq!(m.needs_human.len(), 1, "{:?}", m.needs_human);
    }

    #[test]
    fn legacy_fields_become_flat_and_scaling_defaults_stay() {
        let d = doc(
            "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a}\n\
                     spec:\n  timeout: {processing: 600}\n  scaling: {enabled: true, minReplicas: 1}\n\
                     \x20 workload:\n    type: Deployment\n    pythonExecutable: /opt/py\n\
                     \x20   template:\n      spec:\n        containers:\n\
                     \x20       - {name: asya-runtime, image: i, env: [{name: ASYA_HANDLER, value: m.f}]}\n",
        );
        let m = migrate(&d).unwrap();
        let s = Value::Object(m.spec.clone());
        assert_eq!(s["actor"], "a");
        assert_eq!(s["resiliency"]["actorTimeout"], "600s");
        assert_eq!(s["scaling"]["minReplicaCount"], 1);
        assert_eq!(s["scaling"]["pollingInterval"], 10);
        assert_eq!(s["scaling"]["cooldownPeriod"], 60);
        assert_eq!(s["pythonExecutable"], "/opt/py");
        assert!(s.get("timeout").is_none() && s["workload"].get("type").is_none());
        assert!(
            m.changes
                .iter()
                .any(|c| c == "spec.timeout removed (was {\"processing\":600})"),
            "{:?}",
            m.changes
        );
    }

    #[test]
    fn crossplane_fields_are_removed_and_say_where_they_went() {
        let d = doc(
            "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a}\n\
                     spec: {actor: a, image: i, handler: m.f, region: eu-west-1, overlays: [gpu]}\n",
        );
        let m = migrate(&d).unwrap();
        assert!(m.spec.get("region").is_none() && m.spec.get("overlays").is_none());
        let notes = m.needs_human.join("\n");
        assert!(
            notes.contains("spec.region (\"eu-west-1\") was removed: moved to the platform's transports.sqs.config.region"),
            "{notes}"
        );
        assert!(notes.contains("spec.overlays ([\"gpu\"])"), "{notes}");
        assert!(notes.contains("kedaProtocol: amqp"), "{notes}");
    }
}
