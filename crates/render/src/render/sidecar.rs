//! The injected `asya-sidecar` container, and the installer init container (same image)
//! that copies the Python runtime into the pod.

use std::sync::LazyLock;

use serde_json::Value;

use super::context::Inputs;
use super::sidecar_env::sidecar_env;
use super::workload::{quantities_as_strings, restricted_security_context};
use super::{RUNTIME_DIR, SOCKET_DIR, s, sorted};

/// Image and pull policy: the actor's `sidecar` overrides, else the platform's.
fn image(inp: &Inputs<'_>) -> (String, String) {
    let sc = &inp.platform.sidecar;
    let user = inp.spec.sidecar.clone().unwrap_or_default();
    let image = user.image.clone().unwrap_or_else(|| sc.image.clone());
    let pull = user
        .image_pull_policy
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| sc.image_pull_policy.clone());
    (image, pull)
}

pub(super) fn sidecar_container(inp: &Inputs<'_>) -> Value {
    let sc = &inp.platform.sidecar;
    let (image, pull) = image(inp);
    let mut resources = Value::Object(sc.default_resources.0.clone());
    if let Some(r) = inp.spec.sidecar.as_ref().and_then(|s| s.resources.as_ref()) {
        merge_over(&mut resources, &Value::Object(r.0.clone()));
    }
    // Keys in sorted order, as printed: the canonical form then has nothing to reorder.
    obj! {
        "env": sidecar_env(inp),
        "image": image,
        "imagePullPolicy": pull,
        "livenessProbe": CONSTANT.liveness.clone(),
        "name": "asya-sidecar",
        "ports": vec![obj! {"containerPort": sc.metrics_port, "name": "metrics", "protocol": "TCP"}],
        "readinessProbe": CONSTANT.readiness.clone(),
        "resources": quantities_as_strings(resources),
        "restartPolicy": if sc.native { s("Always") } else { Value::Null },
        "securityContext": restricted_security_context(),
        "volumeMounts": CONSTANT.mounts.clone(),
    }
}

/// Writes `asya_runtime.py` into the shared volume before the runtime starts.
pub(super) fn installer_container(inp: &Inputs<'_>) -> Value {
    let (image, pull) = image(inp);
    let mut c = CONSTANT.installer.clone();
    // Set in place (no lookup by key, which would hash it).
    if let Value::Object(m) = &mut c {
        for (k, v) in m.iter_mut() {
            match k.as_str() {
                "image" => *v = Value::from(image.as_str()),
                "imagePullPolicy" => *v = Value::from(pull.as_str()),
                _ => {}
            }
        }
    }
    c
}

/// What the injected containers have in common across actors, built once and cloned: a
/// clone copies a map's hash index, building the map anew hashes every key again.
struct Constant {
    liveness: Value,
    readiness: Value,
    mounts: Value,
    /// With `image` and `imagePullPolicy` left empty, set per actor.
    installer: Value,
}

static CONSTANT: LazyLock<Constant> = LazyLock::new(|| Constant {
    liveness: sorted(
        obj! {"httpGet": obj! {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3},
    ),
    readiness: sorted(
        obj! {"httpGet": obj! {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
    ),
    mounts: sorted(Value::from(vec![
        obj! {"name": "asya-socket", "mountPath": SOCKET_DIR},
        obj! {"name": "tmp", "mountPath": "/tmp"},
    ])),
    installer: sorted(obj! {
        "name": "asya-runtime-installer",
        "image": "",
        "imagePullPolicy": "",
        "command": ["asya-sidecar", "install-runtime", "--to", RUNTIME_DIR].map(Value::from).to_vec(),
        "resources": obj! {"requests": obj! {"cpu": "10m", "memory": "16Mi"}, "limits": obj! {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": restricted_security_context(),
        "volumeMounts": vec![obj! {"name": "asya-runtime", "mountPath": RUNTIME_DIR}],
    }),
});

/// Deep merge of maps (`over` wins on scalars); used for sidecar resources over defaults.
fn merge_over(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => merge_over(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}
