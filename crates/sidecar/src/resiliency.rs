//! Resiliency policies and rules for handler errors (upstream §6.4).
//!
//! A handler error `{type, mro}` is matched against the rules in order; a
//! rule names a policy or says `action: fail`. No matching rule falls back
//! to the policy named `default`, and without that the error fails the
//! message at once.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

use crate::config::parse_go_duration;

/// How the delay grows between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    Constant,
    Linear,
    Exponential,
}

/// One named retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Attempts in total, the first one included (at least 1).
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub initial_delay: Duration,
    /// Cap on a single delay (zero = no cap).
    pub max_interval: Duration,
    /// Give up once this long has passed since the first attempt (zero = never).
    pub max_duration: Duration,
    /// Multiply each delay by a uniform factor in [0.5, 1.5).
    pub jitter: bool,
    /// Route to send the envelope to once exhausted (empty = x-sink failed).
    pub on_exhausted: Vec<String>,
}

impl Policy {
    /// The delay before attempt `attempt + 1`, given that `attempt` (1-based)
    /// just failed; without jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let attempt = attempt.max(1);
        let d = match self.backoff {
            Backoff::Constant => self.initial_delay,
            Backoff::Linear => self.initial_delay.saturating_mul(attempt),
            Backoff::Exponential => {
                let factor = 2u32.saturating_pow((attempt - 1).min(31));
                self.initial_delay.saturating_mul(factor)
            }
        };
        if self.max_interval.is_zero() {
            d
        } else {
            d.min(self.max_interval)
        }
    }

    /// True when attempt `attempt` (1-based, just failed) was the last one:
    /// `maxAttempts` reached, or `maxDuration` elapsed since the first attempt.
    pub fn exhausted(&self, attempt: u32, since_first_attempt: Duration) -> bool {
        attempt >= self.max_attempts
            || (!self.max_duration.is_zero() && since_first_attempt >= self.max_duration)
    }

    /// The delay to wait, with jitter when enabled.
    pub fn delay(&self, attempt: u32) -> Duration {
        let d = self.base_delay(attempt);
        if self.jitter && !d.is_zero() {
            d.mul_f64(rand::rng().random_range(0.5..1.5))
        } else {
            d
        }
    }
}

/// What a rule says to do with a matching error.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Apply the named policy.
    Policy(String),
    /// Fail at once, no retry.
    Fail,
}

/// One rule: error patterns and an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub errors: Vec<String>,
    pub action: Action,
}

/// Policies and rules of one actor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resiliency {
    pub policies: BTreeMap<String, Policy>,
    pub rules: Vec<Rule>,
}

/// The decision for one handler error.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    /// Retry under this policy (it may already be exhausted: the caller checks).
    Policy(&'a str, &'a Policy),
    /// No retry (`action: fail`, or no policy applies).
    Fail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    max_attempts: Option<i64>,
    #[serde(default)]
    backoff: Option<String>,
    #[serde(default)]
    initial_delay: Option<Value>,
    #[serde(default)]
    max_interval: Option<Value>,
    #[serde(default)]
    max_duration: Option<Value>,
    #[serde(default)]
    jitter: Option<bool>,
    #[serde(default)]
    on_exhausted: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    errors: Vec<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

fn duration_field(name: &str, field: &str, v: Option<Value>) -> Result<Duration, String> {
    match v {
        None | Some(Value::Null) => Ok(Duration::ZERO),
        Some(Value::String(s)) => {
            parse_go_duration(&s).map_err(|e| format!("policy {name:?} {field}: {e}"))
        }
        // A bare number is seconds (render normalises to strings, but be lenient).
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| *f >= 0.0)
            .and_then(|f| Duration::try_from_secs_f64(f).ok())
            .ok_or_else(|| format!("policy {name:?} {field}: {n} is not a duration")),
        Some(other) => Err(format!(
            "policy {name:?} {field}: {other} is not a duration"
        )),
    }
}

impl Resiliency {
    /// Parses `ASYA_RESILIENCY_POLICIES` and `ASYA_RESILIENCY_RULES`; both
    /// unset means no resiliency.
    pub fn from_json(policies: Option<&str>, rules: Option<&str>) -> Result<Option<Self>, String> {
        if policies.is_none() && rules.is_none() {
            return Ok(None);
        }
        let raw_policies: BTreeMap<String, RawPolicy> = match policies {
            Some(p) => serde_json::from_str(p).map_err(|e| format!("policies: {e}"))?,
            None => BTreeMap::new(),
        };
        let mut out = Resiliency::default();
        for (name, p) in raw_policies {
            let backoff = match p.backoff.as_deref().unwrap_or("constant") {
                "constant" => Backoff::Constant,
                "linear" => Backoff::Linear,
                "exponential" => Backoff::Exponential,
                other => {
                    return Err(format!(
                        "policy {name:?} backoff {other:?} is not constant, linear or exponential"
                    ));
                }
            };
            let max_attempts = p.max_attempts.unwrap_or(1).clamp(1, i64::from(u32::MAX)) as u32;
            let policy = Policy {
                max_attempts,
                backoff,
                initial_delay: duration_field(&name, "initialDelay", p.initial_delay)?,
                max_interval: duration_field(&name, "maxInterval", p.max_interval)?,
                max_duration: duration_field(&name, "maxDuration", p.max_duration)?,
                jitter: p.jitter.unwrap_or(false),
                on_exhausted: p.on_exhausted.unwrap_or_default(),
            };
            out.policies.insert(name, policy);
        }
        let raw_rules: Vec<RawRule> = match rules {
            Some(r) => serde_json::from_str(r).map_err(|e| format!("rules: {e}"))?,
            None => Vec::new(),
        };
        for (i, r) in raw_rules.into_iter().enumerate() {
            let action = match (r.policy, r.action.as_deref()) {
                (Some(p), None) => {
                    if !out.policies.contains_key(&p) {
                        return Err(format!("rule {i} names unknown policy {p:?}"));
                    }
                    Action::Policy(p)
                }
                (None, Some("fail")) => Action::Fail,
                (None, Some(other)) => {
                    return Err(format!("rule {i} action {other:?} is not \"fail\""));
                }
                (Some(_), Some(_)) => {
                    return Err(format!("rule {i} has both policy and action"));
                }
                (None, None) => return Err(format!("rule {i} has neither policy nor action")),
            };
            out.rules.push(Rule {
                errors: r.errors,
                action,
            });
        }
        Ok(Some(out))
    }

    /// Picks what to do with an error of `error_type` whose ancestors are `mro`.
    pub fn decide(&self, error_type: &str, mro: &[String]) -> Decision<'_> {
        let candidates: Vec<&str> = std::iter::once(error_type)
            .chain(mro.iter().map(String::as_str))
            .collect();
        for rule in &self.rules {
            if rule
                .errors
                .iter()
                .any(|pattern| candidates.iter().any(|c| pattern_matches(pattern, c)))
            {
                return match &rule.action {
                    Action::Fail => Decision::Fail,
                    Action::Policy(name) => match self.policies.get_key_value(name) {
                        Some((n, p)) => Decision::Policy(n, p),
                        None => Decision::Fail,
                    },
                };
            }
        }
        match self.policies.get_key_value("default") {
            Some((n, p)) => Decision::Policy(n, p),
            None => Decision::Fail,
        }
    }
}

/// A dotted pattern must equal the candidate (FQN); a short one matches the
/// candidate's last dotted segment.
fn pattern_matches(pattern: &str, candidate: &str) -> bool {
    if pattern.contains('.') {
        pattern == candidate
    } else {
        candidate.rsplit('.').next() == Some(pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res() -> Resiliency {
        Resiliency::from_json(
            Some(
                r#"{"default":{"maxAttempts":3,"backoff":"exponential","initialDelay":"200ms","maxInterval":"1s"},
                    "slow":{"maxAttempts":5,"backoff":"linear","initialDelay":"1s","onExhausted":["fallback"]}}"#,
            ),
            Some(
                r#"[{"errors":["pkg.mod.Fatal"],"action":"fail"},
                    {"errors":["RateLimitError"],"policy":"slow"}]"#,
            ),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn both_variables_unset_means_no_resiliency() {
        assert_eq!(Resiliency::from_json(None, None).unwrap(), None);
    }

    #[test]
    fn fully_qualified_patterns_match_exactly() {
        let r = res();
        assert_eq!(r.decide("pkg.mod.Fatal", &[]), Decision::Fail);
        // Same short name in another module is not the FQN rule: default applies.
        assert!(matches!(
            r.decide("other.Fatal", &[]),
            Decision::Policy("default", _)
        ));
    }

    #[test]
    fn short_patterns_match_the_last_segment_of_type_or_ancestors() {
        let r = res();
        assert!(matches!(
            r.decide("api.RateLimitError", &[]),
            Decision::Policy("slow", _)
        ));
        assert!(matches!(
            r.decide(
                "api.Throttled",
                &["api.RateLimitError".into(), "Exception".into()]
            ),
            Decision::Policy("slow", _)
        ));
    }

    #[test]
    fn no_rule_and_no_default_fails() {
        let r = Resiliency::from_json(Some(r#"{"p":{"maxAttempts":2}}"#), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            r.decide("ValueError", &["Exception".into()]),
            Decision::Fail
        );
    }

    #[test]
    fn exponential_delays_double_and_are_capped() {
        let r = res();
        let p = &r.policies["default"];
        assert_eq!(p.base_delay(1), Duration::from_millis(200));
        assert_eq!(p.base_delay(2), Duration::from_millis(400));
        assert_eq!(p.base_delay(3), Duration::from_millis(800));
        assert_eq!(p.base_delay(4), Duration::from_secs(1));
    }

    #[test]
    fn max_attempts_counts_the_first_attempt_and_max_duration_ends_early() {
        let p = Resiliency::from_json(
            Some(r#"{"p":{"maxAttempts":3,"maxDuration":"10s","initialDelay":"1s"}}"#),
            None,
        )
        .unwrap()
        .unwrap()
        .policies["p"]
            .clone();
        assert!(!p.exhausted(1, Duration::ZERO));
        assert!(!p.exhausted(2, Duration::from_secs(9)));
        assert!(p.exhausted(3, Duration::ZERO));
        assert!(p.exhausted(1, Duration::from_secs(10)));
    }

    #[test]
    fn linear_and_constant_delays() {
        let r = res();
        assert_eq!(r.policies["slow"].base_delay(3), Duration::from_secs(3));
        let c = Resiliency::from_json(Some(r#"{"c":{"initialDelay":"2s"}}"#), None)
            .unwrap()
            .unwrap();
        assert_eq!(c.policies["c"].base_delay(7), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let mut p = res().policies["default"].clone();
        p.jitter = true;
        for _ in 0..200 {
            let d = p.delay(1);
            assert!(
                d >= Duration::from_millis(100) && d < Duration::from_millis(300),
                "{d:?}"
            );
        }
    }

    #[test]
    fn unknown_policy_in_rule_is_rejected() {
        let err = Resiliency::from_json(Some("{}"), Some(r#"[{"errors":["X"],"policy":"nope"}]"#))
            .unwrap_err();
        assert!(err.contains("nope"));
    }
}
