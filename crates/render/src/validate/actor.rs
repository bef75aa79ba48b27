//! The actor's identity and counts: name, image, handler, flavors, replicas, concurrency,
//! grace period.

use std::collections::BTreeSet;

use super::formats::{is_dns_label, is_handler};
use crate::api::spec::ActorSpec;

pub(super) fn check_actor(spec: &ActorSpec, err: &mut dyn FnMut(&str, String)) {
    match spec.actor.as_deref() {
        None => err(
            "spec.actor",
            "is missing: expected the actor name (a DNS label, usually metadata.name)".into(),
        ),
        Some(a) if !is_dns_label(a) => err(
            "spec.actor",
            format!(
                "expected a DNS label (lowercase letters, digits, '-', at most 63, no leading/trailing '-'), got {a:?}"
            ),
        ),
        _ => {}
    }
    match spec.image.as_deref() {
        None => err(
            "spec.image",
            "is missing: expected the runtime image".into(),
        ),
        Some("") => err(
            "spec.image",
            "expected the runtime image, got an empty string".into(),
        ),
        _ => {}
    }
    match spec.handler.as_deref() {
        None => err(
            "spec.handler",
            "is missing: expected a handler, module.function or module.Class.method".into(),
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
}
