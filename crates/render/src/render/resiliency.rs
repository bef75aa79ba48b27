//! `spec.resiliency` as the sidecar reads it: `ASYA_RESILIENCY_*` env values, the policies
//! and rules as canonical JSON.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::output::canonicalize;
use super::{env, s};
use crate::api::spec::{Policy, Resiliency, Rule};

/// `ASYA_RESILIENCY_ACTOR_TIMEOUT`, then `_POLICIES` and `_RULES` when set.
pub(super) fn resiliency_env(res: Option<&Resiliency>) -> Vec<Value> {
    let res = res.cloned().unwrap_or_default();
    let actor_timeout = res.actor_timeout.clone().unwrap_or_else(|| "5m".into());
    let mut out = vec![env("ASYA_RESILIENCY_ACTOR_TIMEOUT", actor_timeout)];
    if let Some(ps) = &res.policies {
        out.push(env("ASYA_RESILIENCY_POLICIES", policies_json(ps)));
    }
    if let Some(rs) = &res.rules {
        out.push(env("ASYA_RESILIENCY_RULES", rules_json(rs)));
    }
    out
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
