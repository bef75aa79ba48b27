//! Installing CRDs (Asya's and KEDA's) into a cluster, for tests, the
//! benchmark and `asya controller --install-crds`-style tooling.
//!
//! Server-side applied, so re-running is a no-op. `x-kubernetes-validations`
//! (CEL) is removed first: servers before 1.25 reject it under SSA, and KEDA's
//! ScaledObject CRD carries one.

use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::error::{Error, Result};

fn crd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    )
}

/// Removes every `key` at any depth.
pub fn strip_key(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            m.remove(key);
            for (_, c) in m.iter_mut() {
                strip_key(c, key);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| strip_key(c, key)),
        _ => {}
    }
}

/// Applies the CRDs and waits (up to `timeout`) until each is Established.
pub async fn install_crds(
    client: &Client,
    crds: &[Value],
    manager: &str,
    timeout: Duration,
) -> Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &crd_resource());
    let mut names = Vec::new();
    for crd in crds {
        let mut crd = crd.clone();
        strip_key(&mut crd, "x-kubernetes-validations");
        if let Some(o) = crd.as_object_mut() {
            o.remove("status");
        }
        if let Some(meta) = crd.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("creationTimestamp");
        }
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::MalformedObject("CRD without metadata.name".into()))?
            .to_owned();
        api.patch(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&crd),
        )
        .await?;
        names.push(name);
    }
    let start = Instant::now();
    for name in names {
        loop {
            let c = api.get(&name).await?;
            let established = c
                .data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                });
            if established {
                break;
            }
            if start.elapsed() > timeout {
                return Err(Error::MalformedObject(format!(
                    "CRD {name} not Established after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// KEDA's CRDs from a directory of YAML files (e.g. `tests/k8s/crds/keda`).
pub fn read_crd_dir(dir: &std::path::Path) -> Result<Vec<Value>> {
    let read_err = |e: String| Error::Platform {
        path: dir.display().to_string(),
        message: e,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| read_err(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"))
    {
        let text = std::fs::read_to_string(&f).map_err(|e| read_err(e.to_string()))?;
        let v: Value =
            serde_norway::from_str(&text).map_err(|e| read_err(format!("{}: {e}", f.display())))?;
        out.push(v);
    }
    Ok(out)
}
