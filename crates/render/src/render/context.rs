//! The template context: everything the compositions may read, assembled from one part per
//! concept (labels, service account, pod, scaling, queue, transport), plus what
//! post-processing needs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::labels::{actor_labels, applyset_id};
use super::output::Stamp;
use super::queue::{queue_context, queue_name};
use super::scaling::scaling_context;
use super::serviceaccount::ServiceAccount;
use super::transport::{rabbitmq_context, sqs_context};
use super::workload::{pod_context, workload_context};
use crate::api::ActorDocument;
use crate::api::platform::{Platform, TransportConfig, TransportSettings};
use crate::api::spec::{ActorSpec, Scaling};

/// What every part of the context is built from: the actor, its platform, its transport.
pub(super) struct Inputs<'a> {
    pub spec: &'a ActorSpec,
    pub platform: &'a Platform,
    /// Settings of the actor's transport.
    pub cfg: &'a TransportSettings,
    /// Transport type: `rabbitmq` or `sqs`.
    pub kind: &'a str,
    pub namespace: &'a str,
    /// `spec.actor`, else `metadata.name`.
    pub actor: String,
    pub queue: String,
    pub scaling: Scaling,
    pub scaling_enabled: bool,
    /// In-flight messages per pod (sidecar and runtime must agree).
    pub concurrency: i32,
    /// Pod termination grace period in seconds.
    pub grace: i64,
}

impl Inputs<'_> {
    /// What sidecar and runtime may each spend draining in-flight work after SIGTERM: the
    /// pod's grace period minus 5 s, so both finish before the kubelet kills the pod.
    pub fn shutdown_grace(&self) -> String {
        fmt_secs((self.grace - 5).max(1) as f64)
    }
}

/// Seconds as a Go-style duration (`25s`, `0.5s`).
fn fmt_secs(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}s", secs as i64)
    } else {
        format!("{secs}s")
    }
}

/// The template context plus what post-processing needs.
pub(super) struct Context {
    pub value: Value,
    pub actor: String,
    pub queue_name: String,
    pub min: i32,
    pub max: i32,
    pub workload_kind: String,
    pub stamp: Stamp,
}

impl Context {
    pub fn build(
        doc: &ActorDocument,
        spec: &ActorSpec,
        namespace: &str,
        transport_name: &str,
        transport: &TransportConfig,
        platform: &Platform,
    ) -> Context {
        let actor = spec.actor.clone().unwrap_or_else(|| doc.name.clone());
        let scaling = spec.scaling.clone().unwrap_or_default();
        let inp = Inputs {
            spec,
            platform,
            cfg: &transport.config,
            kind: transport.kind(),
            namespace,
            queue: queue_name(namespace, &actor),
            scaling_enabled: scaling.enabled.unwrap_or(true),
            scaling,
            concurrency: spec.concurrency.unwrap_or(1),
            grace: spec.termination_grace_period_seconds.unwrap_or(30),
            actor,
        };
        let min = inp.scaling.min_replica_count.unwrap_or(0);
        let max = inp.scaling.max_replica_count.unwrap_or(10);
        let labels = actor_labels(doc, platform, &inp.actor);
        let sa = ServiceAccount::build(&inp);
        let (workload_kind, workload) = workload_context(&inp);
        let actor = &inp.actor;
        let value = json!({
            "actor": actor,
            "name": doc.name,
            "namespace": namespace,
            "queue_name": inp.queue,
            "transport": inp.kind,
            "transport_name": transport_name,
            "names": {
                "workload": actor,
                "scaled_object": actor,
                "trigger_auth": format!("{actor}-trigger-auth"),
                "service_account": sa.name,
            },
            "service_account": sa.to_value(),
            "workload": workload,
            "pod": pod_context(&inp, &labels, &sa),
            "scaling": scaling_context(&inp, min, max),
            "queue": queue_context(&inp),
            "rabbitmq": rabbitmq_context(&inp),
            "sqs": sqs_context(&inp),
        });
        Context {
            value,
            actor: inp.actor.clone(),
            queue_name: inp.queue.clone(),
            min,
            max,
            workload_kind,
            stamp: Stamp {
                source: doc.source.clone(),
                namespace: namespace.to_string(),
                labels,
                applyset_id: applyset_id(&doc.name, namespace),
                scaling_enabled: inp.scaling_enabled,
            },
        }
    }
}

/// Converts JSON into a minijinja value (maps sorted, numbers kept as integers).
pub(super) fn to_minijinja(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => minijinja::Value::from(i),
            (_, Some(u), _) => minijinja::Value::from(u),
            (_, _, Some(f)) => minijinja::Value::from(f),
            _ => minijinja::Value::from(()),
        },
        Value::String(s) => minijinja::Value::from(s.clone()),
        Value::Array(a) => minijinja::Value::from(a.iter().map(to_minijinja).collect::<Vec<_>>()),
        Value::Object(m) => minijinja::Value::from_object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_minijinja(v)))
                .collect::<BTreeMap<String, minijinja::Value>>(),
        ),
    }
}
