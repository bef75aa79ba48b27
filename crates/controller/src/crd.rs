//! `AsyncActor` and `Flavor` as kube custom resources.
//!
//! One source of truth for the CRDs: the render crate (`asya_render::crd`,
//! what `asya crd` prints and the chart ships) owns the schema, generated
//! from its Rust types. The kube derive below declares names, scope, short
//! names, labels, printer columns and the status subresource; its CRD takes
//! the schema from the render crate ([`async_actor_crd`], [`flavor_crd`]),
//! and a test asserts the result equals the render crate's CRD field for
//! field, so the derive's attributes cannot drift from what `asya crd` prints. The types live here, not in the
//! render crate, because the derive's code needs `kube` (the render crate
//! stays free of the kube client).
//!
//! The spec stays JSON: the render validates it with file, field path,
//! expected and found, and the result reaches the actor's status. A typed
//! spec would fail in the watcher instead, where nobody sees it, and stop the
//! watch for every actor.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceValidation,
};
use kube::CustomResource;
use kube::core::crd::v1::CustomResourceExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use asya_render::api::status::AsyncActorStatus;

/// The spec of an AsyncActor, as stored (the render reads and validates it).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
#[kube(
    group = "asya.sh",
    version = "v1alpha1",
    kind = "AsyncActor",
    namespaced,
    status = "AsyncActorStatus",
    shortname = "asya",
    shortname = "asyas",
    schema = "disabled",
    label("app.kubernetes.io/part-of", "asya"),
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.phase", "description": "Overall actor state"}"#,
    printcolumn = r#"{"name": "Running", "type": "integer", "jsonPath": ".status.replicas.running", "description": "Pods ready and running"}"#,
    printcolumn = r#"{"name": "Pending", "type": "integer", "jsonPath": ".status.replicas.pending", "description": "Pods created but not ready yet"}"#,
    printcolumn = r#"{"name": "Failing", "type": "integer", "jsonPath": ".status.replicas.failing", "description": "Pods in a retrying error state"}"#,
    printcolumn = r#"{"name": "Min", "type": "integer", "jsonPath": ".status.min", "description": "Minimum replicas"}"#,
    printcolumn = r#"{"name": "Max", "type": "integer", "jsonPath": ".status.max", "description": "Maximum replicas"}"#,
    printcolumn = r#"{"name": "Last-Scale", "type": "date", "jsonPath": ".status.lastScale.time", "description": "Time of the last scaling event"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "Age"}"#,
    printcolumn = r#"{"name": "Desired", "type": "integer", "jsonPath": ".status.replicas.desired", "description": "Target replicas from the HPA", "priority": 1}"#,
    printcolumn = r#"{"name": "Workload", "type": "string", "jsonPath": ".status.workloadKind", "description": "Deployment or StatefulSet", "priority": 1}"#,
    printcolumn = r#"{"name": "Transport", "type": "string", "jsonPath": ".status.transport", "description": "Transport of the actor's queue", "priority": 1}"#,
    printcolumn = r#"{"name": "Scaling", "type": "string", "jsonPath": ".status.scaling", "description": "KEDA or Manual", "priority": 1}"#,
    printcolumn = r#"{"name": "Queued", "type": "integer", "jsonPath": ".status.queue.queued", "description": "Messages waiting in the queue", "priority": 1}"#,
    printcolumn = r#"{"name": "Processing", "type": "integer", "jsonPath": ".status.queue.processing", "description": "Messages being processed", "priority": 1}"#
)]
pub struct AsyncActorSpec(pub Map<String, Value>);

/// The spec of a Flavor: a partial AsyncActor spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
#[kube(
    group = "asya.sh",
    version = "v1alpha1",
    kind = "Flavor",
    schema = "disabled",
    label("app.kubernetes.io/part-of", "asya"),
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "Age"}"#
)]
pub struct FlavorSpec(pub Map<String, Value>);

/// The derive's CRD completed with what it leaves to its user: the schema
/// (`schema = "disabled"`: kube's pattern for a schema written elsewhere),
/// taken as is from the render crate's CRD, and `names.listKind` (the API
/// server would default it to the same value).
fn finish(mut crd: CustomResourceDefinition, render: &Value) -> CustomResourceDefinition {
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    let schema = render
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok());
    for v in &mut crd.spec.versions {
        v.schema = Some(CustomResourceValidation {
            open_api_v3_schema: schema.clone(),
        });
    }
    crd
}

/// The AsyncActor CRD, from the derive.
pub fn async_actor_crd() -> CustomResourceDefinition {
    finish(AsyncActor::crd(), &asya_render::crd::async_actor_crd())
}

/// The Flavor CRD, from the derive.
pub fn flavor_crd() -> CustomResourceDefinition {
    finish(Flavor::crd(), &asya_render::crd::flavor_crd())
}

/// The flavor names an actor lists, in its order.
pub fn listed_flavors(actor: &AsyncActor) -> Vec<&str> {
    actor
        .spec
        .0
        .get("flavors")
        .and_then(Value::as_array)
        .map(|fs| fs.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(crd: &CustomResourceDefinition) -> Value {
        serde_json::to_value(crd).expect("CRD serialises")
    }

    /// Field-by-field difference, so a failure names the path that differs.
    fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    let null = Value::Null;
                    diff(
                        &format!("{path}.{k}"),
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    diff(&format!("{path}[{i}]"), p, q, out);
                }
            }
            _ if a != b => out.push(format!("{path}: derive {a} != render {b}")),
            _ => {}
        }
    }

    fn assert_same(derived: &CustomResourceDefinition, render: &Value) {
        let mut out = Vec::new();
        diff("", &json(derived), render, &mut out);
        assert!(out.is_empty(), "{}", out.join("\n"));
    }

    #[test]
    fn the_derived_async_actor_crd_is_the_one_asya_crd_prints() {
        assert_same(&async_actor_crd(), &asya_render::crd::async_actor_crd());
    }

    #[test]
    fn the_derived_flavor_crd_is_the_one_asya_crd_prints() {
        assert_same(&flavor_crd(), &asya_render::crd::flavor_crd());
    }

    #[test]
    fn an_actor_round_trips_with_its_status() {
        let stored = serde_json::json!({
            "apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor",
            "metadata": {"name": "a", "namespace": "n", "uid": "u"},
            "spec": {"actor": "a", "flavors": ["gpu", "small"]},
            "status": {"phase": "Running", "conditions": [{"type": "WorkloadReady", "status": "True", "reason": "Available", "message": "m"}]},
        });
        let actor: AsyncActor = serde_json::from_value(stored.clone()).expect("typed");
        assert_eq!(listed_flavors(&actor), vec!["gpu", "small"]);
        assert_eq!(serde_json::to_value(&actor).expect("serialise"), stored);
        let owner = kube::Resource::controller_owner_ref(&actor, &()).expect("uid set");
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.uid.as_str()
            ),
            ("asya.sh/v1alpha1", "AsyncActor", "u")
        );
    }
}
