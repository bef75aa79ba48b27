//! Observation: what status needs, read from the apply responses, the watch
//! caches or (without caches, or for the HPA KEDA creates) the API server.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use crate::apply::ObjectKey;
use crate::error::{Error, Result};
use crate::reconcile::Context;
use crate::render::RenderedActor;
use crate::resources;
use crate::status::Observed;

pub(crate) fn read_error(key: &ObjectKey, source: kube::Error) -> Error {
    Error::Read {
        what: format!("{} {}", key.kind, key.name),
        source,
    }
}

/// Reads what status needs. Objects just applied come from the apply
/// responses (SSA returns the live object, status included); the rest is read.
pub async fn observe(
    namespace: &str,
    r: &RenderedActor,
    keys: &[ObjectKey],
    mut live: HashMap<String, Value>,
    queue: Option<std::result::Result<asya_transport::QueueDepth, String>>,
    ctx: &Context,
) -> Result<Observed> {
    let get = |kind: &str| -> Option<ObjectKey> { keys.iter().find(|k| k.kind == kind).cloned() };
    let workload_key = get(&r.workload_kind);
    let so_key = get("ScaledObject");
    let mut fetch = async |key: &Option<ObjectKey>| -> Result<Option<Value>> {
        let Some(key) = key else { return Ok(None) };
        if let Some(v) = live.remove(&key.kind) {
            return Ok(Some(v));
        }
        if let Some(cached) = ctx
            .caches
            .as_ref()
            .and_then(|c| c.get(&key.api_version, &key.kind, namespace, &key.name))
        {
            return Ok(cached.and_then(|o| serde_json::to_value(o.as_ref()).ok()));
        }
        let ar = ctx
            .kinds
            .resolve(&ctx.client, &key.api_version, &key.kind)
            .await
            .map_err(|e| read_error(key, e))?;
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &ar);
        Ok(api
            .get_opt(&key.name)
            .await
            .map_err(|e| read_error(key, e))?
            .and_then(|o| serde_json::to_value(o).ok()))
    };
    let workload = fetch(&workload_key).await?;
    let scaled_object = fetch(&so_key).await?;
    // A workload that neither wants nor has pods (scaled to zero) has none
    // to count: pods being deleted are not counted anyway.
    let count = |ptr: &str| {
        workload
            .as_ref()
            .and_then(|w| w.pointer(ptr))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let has_pods = count("/spec/replicas") > 0
        || count("/status/replicas") > 0
        || workload
            .as_ref()
            .is_some_and(|w| w.pointer("/spec/replicas").is_none());
    let pods = match workload
        .as_ref()
        .and_then(|w| w.pointer("/spec/selector/matchLabels"))
        .and_then(Value::as_object)
    {
        Some(labels) if !labels.is_empty() && has_pods && ctx.caches.is_some() => {
            let selector = labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            ctx.caches
                .as_ref()
                .map(|c| c.pods(namespace, &selector))
                .unwrap_or_default()
        }
        Some(labels) if !labels.is_empty() && has_pods => {
            let mut selector: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            selector.sort();
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
            api.list(&ListParams::default().labels(&selector.join(",")))
                .await
                .map_err(|source| Error::Read {
                    what: "pods".into(),
                    source,
                })?
                .items
        }
        _ => Vec::new(),
    };
    let hpa = match &so_key {
        Some(so) => read_hpa(namespace, &format!("keda-hpa-{}", so.name), ctx).await?,
        None => None,
    };
    Ok(Observed {
        workload,
        pods,
        scaled_object,
        hpa,
        queue,
        missing_secrets: Vec::new(),
    })
}

/// KEDA names its HPA `keda-hpa-<ScaledObject>`. `autoscaling/v2` where
/// served (1.23+), else `v2beta2` (1.20).
async fn read_hpa(namespace: &str, name: &str, ctx: &Context) -> Result<Option<Value>> {
    let known = ctx.hpa_version.lock().ok().and_then(|v| *v);
    let versions: &[&'static str] = match known {
        Some("v2") => &["v2"],
        Some(_) => &["v2beta2"],
        None => &["v2", "v2beta2"],
    };
    for &version in versions {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), namespace, &resources::hpa(version));
        match api.get_opt(name).await {
            Ok(found) => {
                if let Ok(mut v) = ctx.hpa_version.lock() {
                    *v = Some(version);
                }
                return Ok(found.and_then(|o| serde_json::to_value(o).ok()));
            }
            // The version is not served: try the next one.
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(source) => {
                return Err(Error::Read {
                    what: format!("HorizontalPodAutoscaler {name}"),
                    source,
                });
            }
        }
    }
    Ok(None)
}
