//! The Deployment/StatefulSet and its pod: labels and annotations, the injected containers
//! around the user's, volumes, scheduling fields, `podTemplate` extras.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::context::Inputs;
use super::runtime::runtime_container;
use super::serviceaccount::ServiceAccount;
use super::sidecar::{installer_container, sidecar_container};
use super::{free_forms, s, sorted, string_map};
use crate::api::spec::WorkloadKind;

/// The workload kind name and the `workload` section of the template context.
pub(super) fn workload_context(inp: &Inputs<'_>) -> (String, Value) {
    let spec = inp.spec;
    let kind = spec
        .workload
        .as_ref()
        .and_then(|w| w.kind)
        .unwrap_or(WorkloadKind::Deployment);
    let actor = &inp.actor;
    let value = obj! {
        "kind": kind.as_str(),
        "name": actor.as_str(),
        // KEDA owns the replica count while it scales.
        "replicas": if inp.scaling_enabled { Value::Null } else { Value::from(spec.replicas.unwrap_or(1)) },
        "selector": obj! {"app.kubernetes.io/name": actor.as_str(), "asya.sh/actor": actor.as_str()},
        "volume_claim_templates": spec.workload.as_ref().and_then(|w| w.volume_claim_templates.as_deref()).map(free_forms),
    };
    (kind.as_str().to_string(), value)
}

/// The `pod` section of the template context.
pub(super) fn pod_context(
    inp: &Inputs<'_>,
    labels: &BTreeMap<String, String>,
    sa: &ServiceAccount,
) -> Value {
    let spec = inp.spec;
    let mut pod_labels = string_map(labels);
    pod_labels.insert("app.kubernetes.io/component".into(), s("actor"));
    let pod_template = spec
        .workload
        .as_ref()
        .and_then(|w| w.pod_template.clone())
        .unwrap_or_default()
        .0;
    let mut pod_annotations = Map::new();
    if let Some(meta) = pod_template.get("metadata") {
        // The pod template's own labels are more specific than the actor's propagated ones
        // and win over them, but never over ours (selectors and ApplySet depend on them).
        if let Some(Value::Object(l)) = meta.get("labels") {
            for (k, v) in l {
                if !is_asya_label(k) {
                    pod_labels.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(Value::Object(a)) = meta.get("annotations") {
            pod_annotations.extend(a.clone());
        }
    }
    let pod_extra = pod_template
        .get("spec")
        .cloned()
        .unwrap_or_else(|| json!({}));

    let mut volumes = VOLUMES.to_vec();
    volumes.extend(free_forms(spec.volumes.as_deref().unwrap_or_default()));
    let mut init_containers = vec![installer_container(inp)];
    init_containers.extend(
        spec.init_containers
            .iter()
            .flatten()
            .map(|c| user_container(&c.0)),
    );
    let mut containers = vec![runtime_container(inp)];
    // A native sidecar is an init container with `restartPolicy: Always`.
    if inp.platform.sidecar.native {
        init_containers.push(sidecar_container(inp));
    } else {
        containers.push(sidecar_container(inp));
    }
    containers.extend(spec.sidecars.iter().flatten().map(|c| user_container(&c.0)));
    obj! {
        "labels": pod_labels,
        "annotations": pod_annotations,
        "service_account_name": sa.pod_field(),
        "termination_grace_period_seconds": inp.grace,
        "node_selector": super::to_json(&spec.node_selector),
        "tolerations": spec.tolerations.as_deref().map(free_forms),
        "affinity": spec.affinity.as_ref().map(|a| Value::Object(a.0.clone())),
        "volumes": volumes,
        "init_containers": init_containers,
        "containers": containers,
        "extra": pod_extra,
    }
}

/// Labels Asya sets itself on every object.
fn is_asya_label(k: &str) -> bool {
    k.starts_with("app.kubernetes.io/")
        || k.starts_with("asya.sh/")
        || k.starts_with("applyset.kubernetes.io/")
}

/// The pod security settings of every injected container (`restricted` Pod Security Standard).
/// Built once: a clone copies the map's hash index, building it anew hashes every key.
pub(super) fn restricted_security_context() -> Value {
    RESTRICTED.clone()
}

static RESTRICTED: LazyLock<Value> = LazyLock::new(|| {
    sorted(obj! {
        "allowPrivilegeEscalation": false,
        "capabilities": obj! {"drop": vec![Value::from("ALL")]},
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": obj! {"type": "RuntimeDefault"},
    })
});

/// The pod volumes every actor has (built once, cloned: see `restricted_security_context`).
static VOLUMES: LazyLock<[Value; 3]> = LazyLock::new(|| {
    [
        obj! {"emptyDir": obj! {}, "name": "asya-socket"},
        obj! {"emptyDir": obj! {}, "name": "asya-runtime"},
        obj! {"emptyDir": obj! {}, "name": "tmp"},
    ]
});

/// Resource quantities written as YAML numbers (`nvidia.com/gpu: 1`) become strings: server-side
/// apply's typed schema rejects numbers where Kubernetes expects a Quantity.
pub(super) fn quantities_as_strings(mut resources: Value) -> Value {
    for key in ["requests", "limits"] {
        if let Some(Value::Object(m)) = resources.get_mut(key) {
            for v in m.values_mut() {
                if let Value::Number(n) = v {
                    *v = Value::String(n.to_string());
                }
            }
        }
    }
    resources
}

fn user_container(c: &Map<String, Value>) -> Value {
    let mut c = c.clone();
    if let Some(r) = c.remove("resources") {
        c.insert("resources".into(), quantities_as_strings(r));
    }
    Value::Object(c)
}
