//! The AsyncActor spec as users write it: the flat shape plus the legacy operator-era
//! fields (accepted on input, normalised away by [`super::normalize`]).
//!
//! Every field is optional here because the same type describes a Flavor (a partial
//! spec) and an actor before defaults. `deny_unknown_fields` everywhere: a typo must
//! fail, and the CRD schema generated from these types prunes nothing the user meant.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A free-form Kubernetes sub-object (resources, affinity, a volume, a container…).
/// Kept as JSON: Kubernetes validates it when the rendered object is applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FreeForm(pub serde_json::Map<String, serde_json::Value>);

impl JsonSchema for FreeForm {
    fn schema_name() -> Cow<'static, str> {
        "FreeForm".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
    }
}

/// An integer or a string (Kubernetes `int-or-string`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntOrString(pub serde_json::Value);

impl JsonSchema for IntOrString {
    fn schema_name() -> Cow<'static, str> {
        "IntOrString".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"x-kubernetes-int-or-string": true})
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    Constant,
    Linear,
    Exponential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MetricType {
    AverageValue,
    Value,
    Utilization,
}

/// `spec` of an AsyncActor (and of a Flavor, which must not set `actor`, `flavors`, `transport`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActorSpec {
    /// Logical actor name: a DNS label (<= 63); drives the queue name `asya-<ns>-<actor>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Image of the `asya-runtime` container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `module.function` or `module.Class.method`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Transport name from the platform configuration (default: the platform's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Flavors applied in order (at most 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flavors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_executable: Option<String>,
    /// Fixed replica count, used only when scaling is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// In-flight messages per pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i32>,
    /// Pod grace period; the sidecar gets this minus 5 s to finish in-flight work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resiliency: Option<Resiliency>,
    /// Runtime container env.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_refs: Option<Vec<SecretRef>>,
    /// Runtime container resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<FreeForm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<FreeForm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<FreeForm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<FreeForm>>,
    /// Mounts for the runtime container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<FreeForm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<FreeForm>>,
    /// Extra containers next to the runtime and the sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<Vec<FreeForm>>,
    /// Overrides for the injected `asya-sidecar` container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<SidecarSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// Legacy (operator era): `socket.maxSize` becomes `ASYA_MAX_FRAME_BYTES`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<LegacySocket>,
    /// Legacy (operator era): `timeout.processing` (s) and `timeout.gracefulShutdown` (s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<LegacyTimeout>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scaling {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_replica_count: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replica_count: Option<i32>,
    /// Target messages per replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_length: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_period: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advanced: Option<ScalingAdvanced>,
    /// KEDA triggers appended after the generated `queue` trigger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_triggers: Option<Vec<FreeForm>>,
    /// Legacy alias of `minReplicaCount`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Legacy alias of `maxReplicaCount`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingAdvanced {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_to_original_replica_count: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricType>,
    /// Replaces the default HPA behavior (scale down 1 pod/min, up 10 pods or 100 %/min).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behavior: Option<FreeForm>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resiliency {
    /// Go-style duration, e.g. `5m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<BTreeMap<String, Policy>>,
    /// Ordered; the first rule whose errors match wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Attempts including the first one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// Legacy/docs alias of `initialDelay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<bool>,
    /// Route used instead of x-sink when attempts are exhausted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_exhausted: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Error type names (`RateLimitError`, `pkg.mod.Error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    /// Docs alias: a single error name, normalised into `errors`.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<RuleAction>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<FreeForm>,
}

/// Secret keys injected into the runtime: `keys` → one env var per key; no `keys` → all keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Alias of `secretName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Must be the actor's namespace when given (Secrets are namespaced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<SecretKey>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKey {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<FreeForm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<WorkloadKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_claim_templates: Option<Vec<FreeForm>>,
    /// Extra pod template fields: `metadata.{labels,annotations}` and pod `spec` fields
    /// that Asya does not generate (priorityClassName, imagePullSecrets, securityContext…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<FreeForm>,
    /// Legacy alias of `kind`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<WorkloadKind>,
    /// Legacy: becomes `spec.replicas`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Legacy: the whole pod template with an `asya-runtime` container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<FreeForm>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tracing {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacySocket {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<IntOrString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacyTimeout {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graceful_shutdown: Option<i64>,
}
