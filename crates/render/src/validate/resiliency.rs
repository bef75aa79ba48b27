//! `spec.resiliency`: durations, retry policies, and rules that name existing policies.

use super::formats::{is_dns_label, parse_duration};
use crate::api::spec::ActorSpec;

pub(super) fn check_resiliency(spec: &ActorSpec, err: &mut dyn FnMut(&str, String)) {
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
}
