//! The Secrets a rendered KEDA `TriggerAuthentication` reads: do they exist,
//! with the keys it names?
//!
//! KEDA reads `spec.secretTargetRef[]` (`{parameter, name, key}`) from the
//! actor's namespace. A missing Secret or key only shows in KEDA's own logs,
//! so an actor would silently never scale. The check is generic over what the
//! render emits (any TriggerAuthentication, any trigger type); only the hint
//! of what the value should be depends on the trigger the ScaledObject names.
//!
//! Only key names (and whether a value is empty) are kept, never values.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use serde_json::Value;

/// How long a Secret read is reused. Many actors of one namespace share one
/// Secret: within a burst of reconciles it is read once. Short, because a
/// user who creates the Secret expects the actor to notice soon.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// When an actor with a missing Secret is looked at again (there is no watch
/// on Secrets: watching every Secret of the cluster would cost memory and
/// needs `list` on Secrets).
pub const RECHECK: Duration = Duration::from_secs(15);

/// One `secretTargetRef` entry of a rendered TriggerAuthentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The TriggerAuthentication that reads it.
    pub trigger_auth: String,
    /// KEDA's trigger parameter it fills (`host`, `awsAccessKeyID`…).
    pub parameter: String,
    pub secret: String,
    pub key: String,
    /// `type` of the ScaledObject trigger that uses the TriggerAuthentication.
    pub trigger_type: Option<String>,
    /// That trigger's `metadata.protocol` (RabbitMQ: `http` or `amqp`).
    pub protocol: Option<String>,
}

/// What is wrong with one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NoSecret,
    /// The Secret exists without the key; the keys it has, sorted.
    NoKey(Vec<String>),
    EmptyKey,
}

/// A reference KEDA cannot resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSecret {
    pub reference: SecretRef,
    pub problem: Problem,
}

impl MissingSecret {
    /// One line: what is missing, who reads it and what to do.
    pub fn message(&self) -> String {
        let r = &self.reference;
        let what = match &self.problem {
            Problem::NoSecret => format!("secret {} not found", r.secret),
            Problem::NoKey(keys) if keys.is_empty() => {
                format!("secret {} has no key {} (it has no keys)", r.secret, r.key)
            }
            Problem::NoKey(keys) => format!(
                "secret {} has no key {} (it has: {})",
                r.secret,
                r.key,
                keys.join(", ")
            ),
            Problem::EmptyKey => format!("secret {} has an empty key {}", r.secret, r.key),
        };
        let verb = match self.problem {
            Problem::NoSecret => "create",
            _ => "fill",
        };
        let trigger = r.trigger_type.as_deref().unwrap_or("scaler");
        format!(
            "{what}: KEDA's {trigger} trigger cannot read {} (TriggerAuthentication {}); {verb} secret {} with key {} ({}){}",
            r.parameter,
            r.trigger_auth,
            r.secret,
            r.key,
            value_hint(r),
            alternative(r)
        )
    }
}

/// What the value should be, for the triggers Asya renders.
fn value_hint(r: &SecretRef) -> String {
    match (
        r.trigger_type.as_deref(),
        r.parameter.as_str(),
        r.protocol.as_deref(),
    ) {
        (Some("rabbitmq"), "host", Some("http")) => {
            "an HTTP management URL such as http://user:password@rabbitmq:15672/vhost".into()
        }
        (Some("rabbitmq"), "host", _) => {
            "an AMQP URL such as amqp://user:password@rabbitmq:5672/vhost".into()
        }
        (Some("aws-sqs-queue"), "awsAccessKeyID", _) => "an AWS access key id".into(),
        (Some("aws-sqs-queue"), "awsSecretAccessKey", _) => "an AWS secret access key".into(),
        (_, parameter, _) => format!("the value of KEDA's {parameter} parameter"),
    }
}

/// For RabbitMQ the platform decides which protocol (and so which key) KEDA
/// uses; a user holding the other kind of URL can switch instead.
fn alternative(r: &SecretRef) -> &'static str {
    match (r.trigger_type.as_deref(), r.protocol.as_deref()) {
        (Some("rabbitmq"), Some("http")) => {
            ", or set kedaProtocol: amqp in the platform's RabbitMQ transport config to read an AMQP URL"
        }
        (Some("rabbitmq"), _) => {
            ", or set kedaProtocol: http in the platform's RabbitMQ transport config to read a management URL"
        }
        _ => "",
    }
}

/// Every `secretTargetRef` of the rendered TriggerAuthentications, in render order.
pub fn referenced(objects: &[Value]) -> Vec<SecretRef> {
    let str_at = |v: &Value, ptr: &str| v.pointer(ptr).and_then(Value::as_str).map(str::to_owned);
    let triggers: Vec<&Value> = objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("ScaledObject"))
        .filter_map(|o| o.pointer("/spec/triggers").and_then(Value::as_array))
        .flatten()
        .collect();
    let mut out = Vec::new();
    for ta in objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("TriggerAuthentication"))
    {
        let Some(ta_name) = str_at(ta, "/metadata/name") else {
            continue;
        };
        let trigger = triggers
            .iter()
            .find(|t| str_at(t, "/authenticationRef/name").as_deref() == Some(ta_name.as_str()));
        let refs = ta
            .pointer("/spec/secretTargetRef")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for r in refs {
            let (Some(secret), Some(key)) = (str_at(r, "/name"), str_at(r, "/key")) else {
                continue;
            };
            out.push(SecretRef {
                trigger_auth: ta_name.clone(),
                parameter: str_at(r, "/parameter").unwrap_or_default(),
                secret,
                key,
                trigger_type: trigger.and_then(|t| str_at(t, "/type")),
                protocol: trigger.and_then(|t| str_at(t, "/metadata/protocol")),
            });
        }
    }
    out
}

/// Key names of a Secret, each with "its value is non-empty"; `None` = no such Secret.
type Keys = Option<BTreeMap<String, bool>>;

/// Recent Secret reads, per (namespace, name). See [`CACHE_TTL`].
#[derive(Default)]
pub struct SecretCache {
    entries: Mutex<HashMap<(String, String), (Instant, Keys)>>,
}

impl SecretCache {
    fn get(&self, key: &(String, String)) -> Option<Keys> {
        let entries = self.entries.lock().ok()?;
        let (at, keys) = entries.get(key)?;
        (at.elapsed() < CACHE_TTL).then(|| keys.clone())
    }

    fn put(&self, key: (String, String), keys: Keys) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            entries.insert(key, (Instant::now(), keys));
        }
    }
}

/// The references whose Secret or key is missing. A Secret that cannot be
/// read (no RBAC, API error) counts as fine: this check only adds a hint, it
/// never fails a reconcile.
pub async fn check(
    client: &Client,
    cache: &SecretCache,
    namespace: &str,
    refs: &[SecretRef],
) -> Vec<MissingSecret> {
    let mut missing = Vec::new();
    for r in refs {
        let cache_key = (namespace.to_owned(), r.secret.clone());
        let keys = match cache.get(&cache_key) {
            Some(keys) => keys,
            None => {
                let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
                match api.get_opt(&r.secret).await {
                    Ok(found) => {
                        let keys = found.map(|s| {
                            s.data
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(k, v)| (k, !v.0.is_empty()))
                                .collect::<BTreeMap<_, _>>()
                        });
                        cache.put(cache_key, keys.clone());
                        keys
                    }
                    Err(e) => {
                        tracing::debug!(secret = %r.secret, %namespace, error = %e, "cannot read the secret KEDA uses; not checked");
                        continue;
                    }
                }
            }
        };
        let problem = match keys {
            None => Some(Problem::NoSecret),
            Some(keys) => match keys.get(&r.key) {
                None => Some(Problem::NoKey(keys.keys().cloned().collect())),
                Some(false) => Some(Problem::EmptyKey),
                Some(true) => None,
            },
        };
        if let Some(problem) = problem {
            missing.push(MissingSecret {
                reference: r.clone(),
                problem,
            });
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rendered(protocol: &str, key: &str) -> Vec<Value> {
        vec![
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
                   "metadata": {"name": "a-auth"},
                   "spec": {"secretTargetRef": [{"parameter": "host", "name": "rabbitmq-keda-secret", "key": key}]}}),
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a"},
                   "spec": {"triggers": [{"type": "rabbitmq", "metadata": {"protocol": protocol},
                                          "authenticationRef": {"name": "a-auth"}}]}}),
        ]
    }

    #[test]
    fn references_carry_the_trigger_that_reads_them() {
        let refs = referenced(&rendered("http", "managementUrl"));
        assert_eq!(
            refs,
            vec![SecretRef {
                trigger_auth: "a-auth".into(),
                parameter: "host".into(),
                secret: "rabbitmq-keda-secret".into(),
                key: "managementUrl".into(),
                trigger_type: Some("rabbitmq".into()),
                protocol: Some("http".into()),
            }]
        );
        assert!(referenced(&[json!({"kind": "Deployment"})]).is_empty());
    }

    #[test]
    fn messages_name_secret_key_and_what_to_do() {
        let r = referenced(&rendered("http", "managementUrl")).remove(0);
        let m = MissingSecret {
            reference: r.clone(),
            problem: Problem::NoSecret,
        }
        .message();
        assert_eq!(
            m,
            "secret rabbitmq-keda-secret not found: KEDA's rabbitmq trigger cannot read host \
             (TriggerAuthentication a-auth); create secret rabbitmq-keda-secret with key managementUrl \
             (an HTTP management URL such as http://user:password@rabbitmq:15672/vhost), or set \
             kedaProtocol: amqp in the platform's RabbitMQ transport config to read an AMQP URL"
        );
        let m = MissingSecret {
            reference: r,
            problem: Problem::NoKey(vec!["host".into()]),
        }
        .message();
        assert!(
            m.starts_with("secret rabbitmq-keda-secret has no key managementUrl (it has: host): ")
                && m.contains("fill secret rabbitmq-keda-secret with key managementUrl"),
            "{m}"
        );
        let amqp = referenced(&rendered("amqp", "host")).remove(0);
        let m = MissingSecret {
            reference: amqp,
            problem: Problem::EmptyKey,
        }
        .message();
        assert!(m.contains("an AMQP URL such as amqp://"), "{m}");
        assert!(m.ends_with("to read a management URL"), "{m}");
    }
}
