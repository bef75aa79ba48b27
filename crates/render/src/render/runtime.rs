//! The `asya-runtime` container: the user's image running the installed `asya_runtime.py`,
//! which calls the handler for each message the sidecar hands over the socket.

use std::sync::LazyLock;

use asya_contract::duration;
use asya_contract::env::runtime as rt;
use serde_json::Value;

use super::context::Inputs;
use super::workload::quantities_as_strings;
use super::{
    RUNTIME_DIR, SOCKET_DIR, SOCKET_NAME, env, free_forms, secret_env, to_json, upsert_env,
};
use crate::api::spec::PullPolicy;

/// The runtime's own mounts, built once and cloned (a clone copies the maps' hash index).
static MOUNTS: LazyLock<[Value; 2]> = LazyLock::new(|| {
    [
        obj! {"mountPath": SOCKET_DIR, "name": "asya-socket"},
        obj! {"mountPath": RUNTIME_DIR, "name": "asya-runtime", "readOnly": true},
    ]
});

/// A runtime probe with its command, period and failure threshold left to set per actor.
static PROBE: LazyLock<Value> = LazyLock::new(|| {
    obj! {"exec": obj! {"command": Value::Null}, "failureThreshold": 0, "periodSeconds": 0, "timeoutSeconds": 5}
});

pub(super) fn runtime_container(inp: &Inputs<'_>) -> Value {
    let spec = inp.spec;
    let python = spec
        .python_executable
        .clone()
        .unwrap_or_else(|| "python3".into());
    let mut env_vars = vec![
        env(rt::HANDLER, spec.handler.clone().unwrap_or_default()),
        env(rt::SOCKET_DIR, SOCKET_DIR),
        env(rt::SOCKET_NAME, SOCKET_NAME),
        env(rt::RUNTIME_CONCURRENCY, inp.concurrency.to_string()),
        env(rt::LOG_LEVEL, inp.platform.sidecar.log_level.clone()),
        // The runtime drains in-flight calls on SIGTERM within the same budget as the sidecar.
        env(rt::SHUTDOWN_GRACE, duration::format(inp.shutdown_grace())),
    ];
    // The actor's env wins over ours, one entry per name (docs/render.md lists which
    // ASYA_* names a user may set).
    for e in spec.env.iter().flatten() {
        upsert_env(&mut env_vars, to_json(e));
    }
    // secretRefs: listed keys become single variables, no keys means the whole Secret.
    let mut env_from = Vec::new();
    for r in spec.secret_refs.iter().flatten() {
        let name = r.secret_name.clone().unwrap_or_default();
        match &r.keys {
            Some(keys) => {
                for k in keys {
                    let var = k.env_var.clone().unwrap_or_else(|| k.key.clone());
                    upsert_env(&mut env_vars, secret_env(&var, &name, &k.key));
                }
            }
            None => env_from.push(obj! {"secretRef": obj! {"name": name}}),
        }
    }
    // Probes exec the runtime itself: user images need no shell or curl.
    let runtime_py = format!("{RUNTIME_DIR}/asya_runtime.py");
    let cmd = vec![
        Value::from(python.as_str()),
        Value::from(runtime_py.as_str()),
        Value::from("--probe"),
    ];
    // A clone of the built probe, set in place: no key hashed again.
    let probe = |period: i64, failures: i64| {
        let mut p = PROBE.clone();
        if let Value::Object(m) = &mut p {
            for (k, v) in m.iter_mut() {
                match (k.as_str(), v) {
                    ("exec", Value::Object(exec)) => {
                        for c in exec.values_mut() {
                            *c = Value::from(cmd.clone());
                        }
                    }
                    ("periodSeconds", v) => *v = Value::from(period),
                    ("failureThreshold", v) => *v = Value::from(failures),
                    _ => {}
                }
            }
        }
        p
    };
    let mut mounts = MOUNTS.to_vec();
    mounts.extend(free_forms(
        spec.volume_mounts.as_deref().unwrap_or_default(),
    ));
    // Keys in sorted order, as printed: the canonical form then has nothing to reorder.
    obj! {
        "command": vec![Value::from(python.as_str()), Value::from(runtime_py.as_str())],
        "env": env_vars,
        "envFrom": if env_from.is_empty() { Value::Null } else { Value::from(env_from) },
        "image": spec.image.clone().unwrap_or_default(),
        "imagePullPolicy": spec.image_pull_policy.unwrap_or(PullPolicy::IfNotPresent).as_str(),
        "livenessProbe": probe(30, 3),
        "name": "asya-runtime",
        "readinessProbe": probe(10, 3),
        "resources": spec.resources.as_ref().map(|r| quantities_as_strings(Value::Object(r.0.clone()))),
        "startupProbe": probe(2, 150),
        "volumeMounts": mounts,
    }
}
