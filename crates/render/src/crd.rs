//! CustomResourceDefinitions for AsyncActor and Flavor, generated from the Rust types.
//!
//! Targets `apiextensions.k8s.io/v1` as served by Kubernetes 1.20: structural schemas,
//! no CEL (`x-kubernetes-validations` arrived later), no defaults (a materialised default
//! would count as "set by the actor" and beat flavors — upstream §4.3).

use serde_json::{Value, json};

use crate::api::{GROUP, VERSION};
use crate::schema::{actor_spec_schema, actor_status_schema};

fn column(name: &str, ty: &str, path: &str, description: &str, priority: u8) -> Value {
    let mut c = json!({"name": name, "type": ty, "jsonPath": path, "description": description});
    if priority > 0 {
        c["priority"] = json!(priority);
    }
    c
}

/// Printer columns of DESIGN §3 (`kubectl get asyas`, `-o wide` adds priority 1).
pub fn printer_columns() -> Vec<Value> {
    vec![
        column(
            "Status",
            "string",
            ".status.phase",
            "Overall actor state",
            0,
        ),
        column(
            "Running",
            "integer",
            ".status.replicas.running",
            "Pods ready and running",
            0,
        ),
        column(
            "Pending",
            "integer",
            ".status.replicas.pending",
            "Pods created but not ready yet",
            0,
        ),
        column(
            "Failing",
            "integer",
            ".status.replicas.failing",
            "Pods in a retrying error state",
            0,
        ),
        column("Min", "integer", ".status.min", "Minimum replicas", 0),
        column("Max", "integer", ".status.max", "Maximum replicas", 0),
        column(
            "Last-Scale",
            "date",
            ".status.lastScale.time",
            "Time of the last scaling event",
            0,
        ),
        column("Age", "date", ".metadata.creationTimestamp", "Age", 0),
        column(
            "Desired",
            "integer",
            ".status.replicas.desired",
            "Target replicas from the HPA",
            1,
        ),
        column(
            "Workload",
            "string",
            ".status.workloadKind",
            "Deployment or StatefulSet",
            1,
        ),
        column(
            "Transport",
            "string",
            ".status.transport",
            "Transport of the actor's queue",
            1,
        ),
        column("Scaling", "string", ".status.scaling", "KEDA or Manual", 1),
        column(
            "Queued",
            "integer",
            ".status.queue.queued",
            "Messages waiting in the queue",
            1,
        ),
        column(
            "Processing",
            "integer",
            ".status.queue.processing",
            "Messages being processed",
            1,
        ),
    ]
}

fn root_schema(spec: Value, status: Option<Value>) -> Value {
    let mut props = json!({
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec,
    });
    if let Some(st) = status {
        props["status"] = st;
    }
    json!({"type": "object", "properties": props})
}

fn describe(mut schema: Value, text: &str) -> Value {
    schema["description"] = json!(text);
    schema
}

/// The AsyncActor CRD (namespaced, status subresource, short names `asya`/`asyas`).
pub fn async_actor_crd() -> Value {
    let spec = describe(
        actor_spec_schema().clone(),
        "An async actor: a queue, a workload running the handler next to the Asya sidecar, and a KEDA autoscaler. \
         Flat shape (actor, image, handler…) or the legacy operator shape (workload.template…).",
    );
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("asyncactors.{GROUP}"), "labels": {"app.kubernetes.io/part-of": "asya"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": "AsyncActor",
                "listKind": "AsyncActorList",
                "plural": "asyncactors",
                "singular": "asyncactor",
                "shortNames": ["asya", "asyas"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": printer_columns(),
                "schema": {"openAPIV3Schema": root_schema(spec, Some(actor_status_schema().clone()))},
            }],
        },
    })
}

/// The Flavor CRD (cluster-scoped): a partial AsyncActor spec without actor/flavors/transport.
pub fn flavor_crd() -> Value {
    let mut spec = actor_spec_schema().clone();
    if let Some(props) = spec.get_mut("properties").and_then(Value::as_object_mut) {
        for k in ["actor", "flavors", "transport"] {
            props.remove(k);
        }
    }
    let spec = describe(
        spec,
        "A reusable partial AsyncActor spec merged into the actors that list it in spec.flavors.",
    );
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("flavors.{GROUP}"), "labels": {"app.kubernetes.io/part-of": "asya"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": "Flavor",
                "listKind": "FlavorList",
                "plural": "flavors",
                "singular": "flavor",
            },
            "scope": "Cluster",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "additionalPrinterColumns": [column("Age", "date", ".metadata.creationTimestamp", "Age", 0)],
                "schema": {"openAPIV3Schema": root_schema(spec, None)},
            }],
        },
    })
}

/// Both CRDs, AsyncActor first.
pub fn crds() -> Vec<Value> {
    vec![async_actor_crd(), flavor_crd()]
}

/// Problems that would make the API server reject a schema as non-structural.
pub fn structural_problems(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
    let Some(m) = v.as_object() else {
        out.push(format!("{path}: schema is not an object"));
        return;
    };
    for bad in [
        "$ref",
        "definitions",
        "$defs",
        "default",
        "x-kubernetes-validations",
        "nullable",
    ] {
        if m.contains_key(bad) {
            out.push(format!("{path}: has {bad}"));
        }
    }
    let typed =
        m.contains_key("type") || m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if !typed {
        out.push(format!("{path}: no type"));
    }
    if m.get("additionalProperties") == Some(&Value::Bool(false)) {
        out.push(format!("{path}: additionalProperties false"));
    }
    if m.contains_key("properties") && m.contains_key("additionalProperties") {
        out.push(format!("{path}: properties and additionalProperties"));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(bs)) = m.get(key) {
            for b in bs {
                if b.get("type").is_some()
                    || b.get("items").is_some()
                    || b.get("additionalProperties").is_some()
                {
                    out.push(format!("{path}: {key} branch declares a type"));
                }
            }
        }
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (k, p) in props {
            walk(p, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = m.get("items") {
        walk(items, &format!("{path}[]"), out);
    }
    if let Some(a @ Value::Object(_)) = m.get("additionalProperties") {
        walk(a, &format!("{path}.*"), out);
    }
}
