//! The template context: everything the compositions may read, assembled from one part per
//! concept (labels, service account, pod, scaling, queue, transport), plus what
//! post-processing needs.

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};

use serde_json::Value;

use super::labels::{actor_labels, applyset_id};
use super::output::Stamp;
use super::queue::queue_context;
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
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::try_from((self.grace - 5).max(1)).unwrap_or(1))
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
            queue: platform.queue.naming.queue(namespace, &actor),
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
        let value = obj! {
            "actor": actor.as_str(),
            "name": doc.name.as_str(),
            "namespace": namespace,
            "queue_name": inp.queue.as_str(),
            "transport": inp.kind,
            "transport_name": transport_name,
            "names": obj! {
                "workload": actor.as_str(),
                "scaled_object": actor.as_str(),
                "trigger_auth": format!("{actor}-trigger-auth"),
                "service_account": sa.name.as_str(),
            },
            "service_account": sa.to_value(),
            "workload": workload,
            "pod": pod_context(&inp, &labels, &sa),
            "scaling": scaling_context(&inp, min, max),
            "queue": queue_context(&inp),
            "rabbitmq": rabbitmq_context(&inp),
            "sqs": sqs_context(&inp),
        };
        Context {
            value,
            actor: inp.actor.clone(),
            queue_name: inp.queue.clone(),
            min,
            max,
            workload_kind,
            stamp: Stamp::new(
                doc.source.clone(),
                namespace.to_string(),
                labels,
                applyset_id(&doc.name, namespace),
                inp.scaling_enabled,
            ),
        }
    }
}

/// The template context as templates see it: the JSON tree itself, not a copy. Each node
/// a template touches is a handle: the root, or its parent's handle and one step (no path
/// copied per node); a mapping or list a template prints is printed as its path, and moved
/// from the tree into the output once every template has been rendered (see
/// `compositions.rs`).
#[derive(Debug)]
pub(crate) enum JsonNode {
    Root(Arc<Value>),
    Child(Arc<JsonNode>, Step),
}

/// One step from the context's root to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    /// The `n`-th member of a small mapping (see [`member`]): a template's lookup then
    /// copies no key into the path. The tree does not change while templates read it, and
    /// a node is taken out in place (`mem::take`), so positions stay valid.
    Member(usize),
    Index(usize),
}

/// The node at `path` under `root` (`Null` when there is none).
pub(crate) fn at<'a>(root: &'a Value, path: &[Step]) -> &'a Value {
    let mut v = root;
    for s in path {
        v = match (s, v) {
            (Step::Key(k), Value::Object(m)) => member(m, k).unwrap_or(&Value::Null),
            (Step::Member(i), Value::Object(m)) => m.values().nth(*i).unwrap_or(&Value::Null),
            (Step::Index(i), Value::Array(a)) => a.get(*i).unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
    }
    v
}

/// `m[k]`. A context mapping has a handful of members: comparing keys in order is cheaper
/// than hashing `k` (serde_json's maps hash with SipHash), so only larger maps use the index.
pub(crate) fn member<'a>(m: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a Value> {
    if m.len() <= SMALL {
        m.iter().find(|(mk, _)| mk.as_str() == k).map(|(_, v)| v)
    } else {
        m.get(k)
    }
}

/// Members up to which a mapping is searched in order rather than through its hash index
/// (also the spec schema's properties, `schema.rs`).
pub(crate) const SMALL: usize = 16;

/// The node at `path` under `root`, to move it out.
pub(crate) fn at_mut<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut v = root;
    for s in path {
        v = match (s, v) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Step::Member(i), Value::Object(m)) => m.values_mut().nth(*i)?,
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

impl JsonNode {
    /// The whole context; the caller keeps the `Arc` to take the tree back afterwards.
    pub fn root(v: &Arc<Value>) -> minijinja::Value {
        minijinja::Value::from_object(JsonNode::Root(v.clone()))
    }

    /// The JSON value this handle stands for.
    pub fn json(&self) -> &Value {
        match self {
            JsonNode::Root(v) => v,
            JsonNode::Child(parent, step) => at(parent.json(), std::slice::from_ref(step)),
        }
    }

    /// Where this handle points in the context.
    pub fn path(&self) -> Vec<Step> {
        let mut path = Vec::new();
        let mut node = self;
        while let JsonNode::Child(parent, step) = node {
            path.push(step.clone());
            node = parent;
        }
        path.reverse();
        path
    }
}

/// `v` (found at `step` under `parent`) as a minijinja value: a scalar as itself, a mapping
/// or list as a handle. The step is only built for a handle: most lookups end at a scalar.
fn value_of(parent: &Arc<JsonNode>, v: &Value, step: impl FnOnce() -> Step) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => minijinja::Value::from(i),
            (_, Some(u), _) => minijinja::Value::from(u),
            (_, _, Some(f)) => minijinja::Value::from(f),
            _ => minijinja::Value::from(()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(_) | Value::Object(_) => {
            minijinja::Value::from_object(JsonNode::Child(parent.clone(), step()))
        }
    }
}

impl Object for JsonNode {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.json() {
            Value::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        match self.json() {
            Value::Object(m) if m.len() <= SMALL => {
                let k = key.as_str()?;
                let (i, (_, v)) = m.iter().enumerate().find(|(_, (mk, _))| mk.as_str() == k)?;
                Some(value_of(self, v, || Step::Member(i)))
            }
            Value::Object(m) => {
                let k = key.as_str()?;
                let v = m.get(k)?;
                Some(value_of(self, v, || Step::Key(k.to_string())))
            }
            Value::Array(a) => {
                let i = key.as_usize()?;
                let v = a.get(i)?;
                Some(value_of(self, v, || Step::Index(i)))
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.json() {
            Value::Array(a) => Enumerator::Seq(a.len()),
            Value::Object(m) => Enumerator::Values(
                m.keys()
                    .map(|k| minijinja::Value::from(k.as_str()))
                    .collect(),
            ),
            _ => Enumerator::Empty,
        }
    }
}
