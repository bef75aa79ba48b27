//! `spec.env` and `spec.secretRefs`: what the runtime container's environment is made of.

use super::formats::is_dns_subdomain;
use crate::api::spec::ActorSpec;

/// Set by Asya on the runtime container: a second entry of the same name would make
/// server-side apply reject the pod (env is a list keyed by name).
const RESERVED_ENV: &[&str] = &[
    "ASYA_HANDLER",
    "ASYA_SOCKET_DIR",
    "ASYA_SOCKET_NAME",
    "ASYA_RUNTIME_CONCURRENCY",
    "ASYA_SHUTDOWN_GRACE",
];

pub(super) fn check_env(spec: &ActorSpec, namespace: &str, err: &mut dyn FnMut(&str, String)) {
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
}
