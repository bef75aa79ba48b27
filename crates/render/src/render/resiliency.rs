//! `spec.resiliency` as the sidecar reads it: `ASYA_RESILIENCY_*` env values, the policies
//! and rules as canonical JSON.

use std::collections::BTreeMap;

use std::time::Duration;

use asya_contract::duration;
use serde_json::{Map, Value, json};

use super::output::canonicalize;
use super::s;
use crate::api::spec::{Policy, Resiliency, Rule};

/// `spec.resiliency` as the sidecar reads it: the actor timeout, and the policies and rules
/// as canonical JSON (each `None` when the actor sets none).
pub(super) fn resiliency_settings(
    res: Option<&Resiliency>,
) -> (Option<Duration>, Option<String>, Option<String>) {
    let Some(res) = res else {
        return (None, None, None);
    };
    (
        res.actor_timeout
            .as_deref()
            .and_then(|t| duration::parse(t).ok()),
        res.policies.as_ref().map(policies_json),
        res.rules.as_deref().map(rules_json),
    )
}

fn policies_json(policies: &BTreeMap<String, Policy>) -> String {
    let mut out = Map::new();
    for (name, p) in policies {
        let mut m = Map::new();
        if let Some(x) = p.max_attempts {
            m.insert("maxAttempts".into(), json!(x));
        }
        if let Some(b) = p.backoff {
            m.insert("backoff".into(), json!(b));
        }
        for (k, d) in [
            ("initialDelay", &p.initial_delay),
            ("maxInterval", &p.max_interval),
            ("maxDuration", &p.max_duration),
        ] {
            if let Some(d) = d {
                m.insert(k.into(), s(d));
            }
        }
        if let Some(j) = p.jitter {
            m.insert("jitter".into(), json!(j));
        }
        if let Some(r) = &p.on_exhausted {
            m.insert("onExhausted".into(), json!(r));
        }
        out.insert(name.clone(), Value::Object(m));
    }
    let mut v = Value::Object(out);
    canonicalize(&mut v);
    v.to_string()
}

fn rules_json(rules: &[Rule]) -> String {
    let mut v = Value::Array(
        rules
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("errors".into(), json!(r.errors.clone().unwrap_or_default()));
                if let Some(p) = &r.policy {
                    m.insert("policy".into(), s(p));
                }
                // `fail` is the only action there is.
                if r.action.is_some() {
                    m.insert("action".into(), s("fail"));
                }
                Value::Object(m)
            })
            .collect(),
    );
    canonicalize(&mut v);
    v.to_string()
}
