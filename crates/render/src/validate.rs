//! Semantic validation of the merged spec (after flavors and defaults), before rendering.
//! Every check reports into one list so a run shows all problems at once; each error names
//! the file the offending value came from (the actor's or a flavor's) via provenance.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::api::spec::{ActorSpec, FreeForm, WorkloadKind};
use crate::error::{Diagnostics, invalid};
use crate::merge::{Origin, Provenance};

/// Maps a spec path to the file its value came from.
pub(crate) struct Files<'a> {
    pub actor: &'a str,
    pub prov: &'a Provenance,
    pub flavor_files: &'a dyn Fn(&str) -> Option<String>,
}

impl Files<'_> {
    pub fn of(&self, path: &str) -> String {
        match self.prov.origin_of(path) {
            Some(Origin::Flavor(name)) => (self.flavor_files)(name)
                .map(|f| format!("{f} (flavor {name})"))
                .unwrap_or_else(|| self.actor.to_string()),
            _ => self.actor.to_string(),
        }
    }
}

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// `module.function` or `module.Class.method` (modules may be dotted packages).
pub fn is_handler(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            let mut c = p.chars();
            matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic())
                && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
        })
}

/// Parses a Go-style duration (`300ms`, `1.5s`, `2m`, `1h30m`) into seconds.
pub fn parse_duration(s: &str) -> Option<f64> {
    if s == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * factor;
        rest = &rest[unit_len..];
    }
    Some(total)
}

const RESERVED_ENV: &[&str] = &[
    "ASYA_HANDLER",
    "ASYA_SOCKET_DIR",
    "ASYA_SOCKET_NAME",
    "ASYA_RUNTIME_CONCURRENCY",
];
const RESERVED_VOLUMES: &[&str] = &["asya-socket", "asya-runtime", "tmp"];
const RESERVED_MOUNTS: &[&str] = &["/var/run/asya", "/opt/asya"];

fn name_of(item: &FreeForm) -> Option<&str> {
    item.0.get("name").and_then(Value::as_str)
}

pub(crate) fn validate(
    spec: &ActorSpec,
    namespace: &str,
    files: &Files<'_>,
    errs: &mut Diagnostics,
) {
    let mut err = |path: &str, msg: String| errs.push(invalid(&files.of(path), path, msg));

    match spec.actor.as_deref() {
        None => err("spec.actor", "expected the actor name (a DNS label)".into()),
        Some(a) if !is_dns_label(a) => err(
            "spec.actor",
            format!(
                "expected a DNS label (lowercase letters, digits, '-', at most 63, no leading/trailing '-'), got {a:?}"
            ),
        ),
        _ => {}
    }
    match spec.image.as_deref() {
        None | Some("") => err(
            "spec.image",
            "expected the runtime image (non-empty)".into(),
        ),
        _ => {}
    }
    match spec.handler.as_deref() {
        None => err(
            "spec.handler",
            "expected a handler: module.function or module.Class.method".into(),
        ),
        Some(h) if !is_handler(h) => err(
            "spec.handler",
            format!("expected module.function or module.Class.method, got {h:?}"),
        ),
        _ => {}
    }
    if let Some(fl) = &spec.flavors {
        if fl.len() > 8 {
            err(
                "spec.flavors",
                format!("expected at most 8 flavors, got {}", fl.len()),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, f) in fl.iter().enumerate() {
            if !seen.insert(f) {
                err(
                    &format!("spec.flavors[{i}]"),
                    format!("expected each flavor once, {f:?} is listed twice"),
                );
            }
        }
    }
    if let Some(r) = spec.replicas
        && r < 0
    {
        err("spec.replicas", format!("expected >= 0, got {r}"));
    }
    if let Some(c) = spec.concurrency
        && c < 1
    {
        err("spec.concurrency", format!("expected >= 1, got {c}"));
    }
    if let Some(g) = spec.termination_grace_period_seconds
        && g < 6
    {
        err(
            "spec.terminationGracePeriodSeconds",
            format!(
                "expected >= 6 (the sidecar gets the grace period minus 5 s to drain), got {g}"
            ),
        );
    }
    if let Some(s) = &spec.scaling {
        let min = s.min_replica_count.unwrap_or(0);
        let max = s.max_replica_count.unwrap_or(10);
        if min < 0 {
            err(
                "spec.scaling.minReplicaCount",
                format!("expected >= 0, got {min}"),
            );
        }
        if max < 1 {
            err(
                "spec.scaling.maxReplicaCount",
                format!("expected >= 1, got {max}"),
            );
        }
        if min > max {
            err(
                "spec.scaling.minReplicaCount",
                format!("expected minReplicaCount <= maxReplicaCount ({max}), got {min}"),
            );
        }
        for (name, v, lo) in [
            ("queueLength", s.queue_length, 1),
            ("pollingInterval", s.polling_interval, 1),
            ("cooldownPeriod", s.cooldown_period, 0),
        ] {
            if let Some(v) = v
                && v < lo
            {
                err(
                    &format!("spec.scaling.{name}"),
                    format!("expected >= {lo}, got {v}"),
                );
            }
        }
        if let Some(a) = &s.advanced
            && a.formula.is_some()
            && a.target.is_none()
        {
            err(
                "spec.scaling.advanced.target",
                "expected a target when advanced.formula is set".into(),
            );
        }
        if let Some(t) = &s.additional_triggers {
            for (i, tr) in t.iter().enumerate() {
                if !tr.0.get("type").is_some_and(Value::is_string) {
                    err(
                        &format!("spec.scaling.additionalTriggers[{i}].type"),
                        "expected a KEDA trigger type".into(),
                    );
                }
                if tr.0.get("name").and_then(Value::as_str) == Some("queue") {
                    err(
                        &format!("spec.scaling.additionalTriggers[{i}].name"),
                        "expected a name other than \"queue\" (reserved for the generated trigger)"
                            .into(),
                    );
                }
            }
        }
    }
    if let Some(r) = &spec.resiliency {
        let mut dur = |path: &str, v: &Option<String>| {
            if let Some(d) = v
                && parse_duration(d).is_none()
            {
                err(
                    path,
                    format!("expected a duration like 30s, 5m, 1h30m, got {d:?}"),
                );
            }
        };
        dur("spec.resiliency.actorTimeout", &r.actor_timeout);
        if let Some(ps) = &r.policies {
            for (name, p) in ps {
                let base = format!("spec.resiliency.policies.{name}");
                dur(&format!("{base}.initialDelay"), &p.initial_delay);
                dur(&format!("{base}.maxInterval"), &p.max_interval);
                dur(&format!("{base}.maxDuration"), &p.max_duration);
            }
        }
        if let Some(ps) = &r.policies {
            for (name, p) in ps {
                if let Some(m) = p.max_attempts
                    && m < 1
                {
                    err(
                        &format!("spec.resiliency.policies.{name}.maxAttempts"),
                        format!("expected >= 1, got {m}"),
                    );
                }
                if let Some(route) = &p.on_exhausted {
                    for (i, a) in route.iter().enumerate() {
                        if !is_dns_label(a) {
                            err(
                                &format!("spec.resiliency.policies.{name}.onExhausted[{i}]"),
                                format!("expected an actor name (DNS label), got {a:?}"),
                            );
                        }
                    }
                }
            }
        }
        if let Some(rules) = &r.rules {
            for (i, rule) in rules.iter().enumerate() {
                let base = format!("spec.resiliency.rules[{i}]");
                if rule.errors.as_ref().is_none_or(Vec::is_empty) {
                    err(
                        &format!("{base}.errors"),
                        "expected at least one error type name".into(),
                    );
                }
                match (&rule.policy, &rule.action) {
                    (Some(_), Some(_)) => {
                        err(&base, "expected either policy or action, not both".into())
                    }
                    (None, None) => err(&base, "expected a policy name or action: fail".into()),
                    (Some(p), None)
                        if !r.policies.as_ref().is_some_and(|ps| ps.contains_key(p)) =>
                    {
                        err(
                            &format!("{base}.policy"),
                            format!(
                                "expected the name of a policy in spec.resiliency.policies, got {p:?}"
                            ),
                        )
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(env) = &spec.env {
        for (i, e) in env.iter().enumerate() {
            let base = format!("spec.env[{i}]");
            if e.name.is_empty() {
                err(&format!("{base}.name"), "expected a non-empty name".into());
            }
            if RESERVED_ENV.contains(&e.name.as_str()) {
                err(
                    &format!("{base}.name"),
                    format!("expected a name Asya does not set itself, got {}", e.name),
                );
            }
            if e.value.is_some() && e.value_from.is_some() {
                err(&base, "expected either value or valueFrom, not both".into());
            }
        }
    }
    if let Some(refs) = &spec.secret_refs {
        for (i, r) in refs.iter().enumerate() {
            let base = format!("spec.secretRefs[{i}]");
            match r.secret_name.as_deref() {
                Some(n) if is_dns_subdomain(n) => {}
                Some(n) => err(
                    &format!("{base}.secretName"),
                    format!("expected a Secret name (DNS subdomain), got {n:?}"),
                ),
                None => err(
                    &format!("{base}.secretName"),
                    "expected the Secret's name".into(),
                ),
            }
            if let Some(ns) = &r.namespace
                && ns != namespace
            {
                err(
                    &format!("{base}.namespace"),
                    format!(
                        "expected the actor's namespace {namespace:?} (pods read Secrets of their own namespace), got {ns:?}"
                    ),
                );
            }
            if let Some(keys) = &r.keys
                && keys.is_empty()
            {
                err(
                    &format!("{base}.keys"),
                    "expected at least one key (or omit keys to inject all)".into(),
                );
            }
        }
    }
    let mut containers = BTreeSet::new();
    for (field, list) in [
        ("initContainers", &spec.init_containers),
        ("sidecars", &spec.sidecars),
    ] {
        for (i, c) in list.iter().flatten().enumerate() {
            let path = format!("spec.{field}[{i}].name");
            match name_of(c) {
                None => err(&path, "expected a container name".into()),
                Some(n) if n.starts_with("asya-") => err(
                    &path,
                    format!(
                        "expected a name not starting with \"asya-\" (reserved for injected containers), got {n:?}"
                    ),
                ),
                Some(n) if !containers.insert(n.to_string()) => err(
                    &path,
                    format!("expected unique container names, {n:?} is used twice"),
                ),
                _ => {}
            }
            if !c.0.get("image").is_some_and(Value::is_string) {
                err(
                    &format!("spec.{field}[{i}].image"),
                    "expected an image".into(),
                );
            }
        }
    }
    let mut volume_names: BTreeSet<String> = BTreeSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let path = format!("spec.volumes[{i}].name");
        match name_of(v) {
            None => err(&path, "expected a volume name".into()),
            Some(n) if RESERVED_VOLUMES.contains(&n) || n.starts_with("asya-") => err(
                &path,
                format!("expected a name other than {n:?} (reserved for injected volumes)"),
            ),
            Some(n) => {
                volume_names.insert(n.to_string());
            }
        }
    }
    let workload = spec.workload.clone().unwrap_or_default();
    for vct in workload.volume_claim_templates.iter().flatten() {
        if let Some(n) = vct
            .0
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
        {
            volume_names.insert(n.to_string());
        }
    }
    for (i, m) in spec.volume_mounts.iter().flatten().enumerate() {
        let base = format!("spec.volumeMounts[{i}]");
        match name_of(m) {
            None => err(
                &format!("{base}.name"),
                "expected the name of a volume".into(),
            ),
            Some(n) if !volume_names.contains(n) => err(
                &format!("{base}.name"),
                format!(
                    "expected the name of a volume in spec.volumes or workload.volumeClaimTemplates, got {n:?}"
                ),
            ),
            _ => {}
        }
        match m.0.get("mountPath").and_then(Value::as_str) {
            None => err(
                &format!("{base}.mountPath"),
                "expected an absolute mountPath".into(),
            ),
            Some(p)
                if RESERVED_MOUNTS
                    .iter()
                    .any(|r| p == *r || p.starts_with(&format!("{r}/"))) =>
            {
                err(
                    &format!("{base}.mountPath"),
                    format!(
                        "expected a path outside {}, got {p:?}",
                        RESERVED_MOUNTS.join(" and ")
                    ),
                )
            }
            _ => {}
        }
    }
    let kind = workload.kind.unwrap_or(WorkloadKind::Deployment);
    if workload
        .volume_claim_templates
        .as_ref()
        .is_some_and(|v| !v.is_empty())
        && kind != WorkloadKind::StatefulSet
    {
        err(
            "spec.workload.volumeClaimTemplates",
            "expected workload.kind: StatefulSet (only StatefulSets have volumeClaimTemplates)"
                .into(),
        );
    }
    if let Some(pt) = &workload.pod_template {
        for (k, v) in &pt.0 {
            match k.as_str() {
                "metadata" => {
                    for mk in v
                        .as_object()
                        .map(|m| m.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        if mk != "labels" && mk != "annotations" {
                            err(
                                &format!("spec.workload.podTemplate.metadata.{mk}"),
                                "expected only labels and annotations".into(),
                            );
                        }
                    }
                }
                "spec" => {
                    for sk in v
                        .as_object()
                        .map(|m| m.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        let flat = match sk.as_str() {
                            "containers" => Some("spec.sidecars"),
                            "initContainers" => Some("spec.initContainers"),
                            "volumes" => Some("spec.volumes"),
                            "nodeSelector" => Some("spec.nodeSelector"),
                            "tolerations" => Some("spec.tolerations"),
                            "affinity" => Some("spec.affinity"),
                            "serviceAccountName" | "terminationGracePeriodSeconds" => {
                                Some("the actor's own fields")
                            }
                            _ => None,
                        };
                        if let Some(flat) = flat {
                            err(
                                &format!("spec.workload.podTemplate.spec.{sk}"),
                                format!("expected this in {flat}, not in podTemplate"),
                            );
                        }
                    }
                }
                other => err(
                    &format!("spec.workload.podTemplate.{other}"),
                    "expected only metadata and spec".into(),
                ),
            }
        }
    }
}
