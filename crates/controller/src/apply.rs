//! Server-side apply of a render, and pruning of what the render dropped.
//!
//! Every object goes through one code path: add the owner reference, then
//! `PATCH` with `application/apply-patch+yaml`, field manager
//! [`FIELD_MANAGER`], `force`. No kind gets hand-written create/update logic.
//! Pruning lists the objects labelled with the actor's ApplySet id and deletes
//! those the render no longer contains and that this actor owns.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::cache::Caches;
use crate::error::{Error, Result};
use crate::resources::{self, Kinds};

/// The one field manager the controller applies with.
pub const FIELD_MANAGER: &str = "asya-controller";
/// The ApplySet membership label that render puts on every object.
pub const APPLYSET_LABEL: &str = "applyset.kubernetes.io/part-of";

/// Identity of one applied object within a namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// What the API server returned for one applied object.
#[derive(Debug, Clone)]
pub struct Applied {
    pub key: ObjectKey,
    pub object: DynamicObject,
}

/// Reads `apiVersion`, `kind` and `metadata.name` of a rendered object.
pub fn object_key(object: &Value) -> Result<ObjectKey> {
    let field = |ptr: &str| {
        object
            .pointer(ptr)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/name"),
    ) {
        (Some(api_version), Some(kind), Some(name)) => Ok(ObjectKey {
            api_version,
            kind,
            name,
        }),
        _ => Err(Error::MalformedObject(
            object
                .pointer("/metadata/name")
                .map(|n| n.to_string())
                .unwrap_or_else(|| "<unnamed>".into()),
        )),
    }
}

/// The body that is actually sent: the rendered object with this namespace
/// and the owner reference set. When `keda_scaled` names workloads a
/// ScaledObject targets, their `spec.replicas` is dropped: KEDA's HPA owns it,
/// and a value in our apply would fight the HPA on every reconcile.
pub fn apply_body(
    object: &Value,
    namespace: &str,
    owner: &OwnerReference,
    keda_scaled: &BTreeSet<String>,
) -> Result<Value> {
    let key = object_key(object)?;
    let mut body = object.clone();
    let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(Error::MalformedObject(key.name));
    };
    metadata.insert("namespace".into(), Value::String(namespace.to_owned()));
    let owner = serde_json::to_value(owner).map_err(|e| Error::MalformedObject(e.to_string()))?;
    metadata.insert("ownerReferences".into(), Value::Array(vec![owner]));
    if matches!(key.kind.as_str(), "Deployment" | "StatefulSet")
        && keda_scaled.contains(&key.name)
        && let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("replicas");
    }
    Ok(body)
}

/// Names of the workloads that a ScaledObject in `objects` scales.
pub fn keda_scaled_workloads(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("ScaledObject"))
        .filter_map(|o| {
            o.pointer("/spec/scaleTargetRef/name")
                .and_then(Value::as_str)
        })
        .map(str::to_owned)
        .collect()
}

/// Server-side applies every object, in render order (the ServiceAccount
/// before the workload that uses it).
pub async fn apply_all(
    client: &Client,
    kinds: &Kinds,
    namespace: &str,
    objects: &[Value],
    owner: &OwnerReference,
    dry_run: bool,
) -> Result<Vec<Applied>> {
    let keda_scaled = keda_scaled_workloads(objects);
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let mut applied = Vec::with_capacity(objects.len());
    for object in objects {
        let key = object_key(object)?;
        let body = apply_body(object, namespace, owner, &keda_scaled)?;
        let ar = kinds
            .resolve(client, &key.api_version, &key.kind)
            .await
            .map_err(|source| Error::Apply {
                key: Box::new(key.clone()),
                source,
            })?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        let object = api
            .patch(&key.name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::Apply {
                key: Box::new(key.clone()),
                source,
            })?;
        applied.push(Applied { key, object });
    }
    Ok(applied)
}

/// Deletes the objects of ApplySet `applyset_id` in `namespace` that are owned
/// by `owner_uid` and not in `keep`. Returns what was deleted.
pub async fn prune(
    client: &Client,
    kinds_of: &Kinds,
    cached: Option<&Caches>,
    namespace: &str,
    applyset_id: &str,
    owner_uid: &str,
    keep: &[ObjectKey],
) -> Result<Vec<ObjectKey>> {
    let mut kinds: Vec<ApiResource> = resources::prunable();
    for key in keep {
        let ar = kinds_of
            .resolve(client, &key.api_version, &key.kind)
            .await
            .map_err(|source| Error::Prune {
                kind: key.kind.clone(),
                source,
            })?;
        if !kinds
            .iter()
            .any(|k| k.group == ar.group && k.kind == ar.kind)
        {
            kinds.push(ar);
        }
    }
    let selector = format!("{APPLYSET_LABEL}={applyset_id}");
    let mut deleted = Vec::new();
    for ar in kinds {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        // The watch cache when it has the kind (no LIST per pass), else a LIST.
        let from_cache =
            cached.and_then(|c| c.in_applyset(&ar.api_version, &ar.kind, namespace, applyset_id));
        let items: Vec<(String, Vec<String>, bool)> = match from_cache {
            Some(objects) => objects
                .iter()
                .map(|o| {
                    (
                        o.name_any(),
                        o.owner_references().iter().map(|r| r.uid.clone()).collect(),
                        o.metadata.deletion_timestamp.is_some(),
                    )
                })
                .collect(),
            None => match api
                .list_metadata(&ListParams::default().labels(&selector))
                .await
            {
                Ok(list) => list
                    .items
                    .iter()
                    .map(|o| {
                        (
                            o.name_any(),
                            o.owner_references().iter().map(|r| r.uid.clone()).collect(),
                            o.metadata.deletion_timestamp.is_some(),
                        )
                    })
                    .collect(),
                // A kind whose CRD is not installed (e.g. KEDA absent) has nothing to prune.
                Err(kube::Error::Api(status)) if status.code == 404 => continue,
                Err(source) => {
                    return Err(Error::Prune {
                        kind: ar.kind.clone(),
                        source,
                    });
                }
            },
        };
        for (name, owner_uids, deleting) in items {
            let wanted = keep.iter().any(|k| {
                k.kind == ar.kind && group_of(&k.api_version) == ar.group && k.name == name
            });
            let ours = owner_uids.iter().any(|uid| uid == owner_uid);
            if wanted || !ours || deleting {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(Error::Prune {
                        kind: ar.kind.clone(),
                        source,
                    });
                }
            }
            deleted.push(ObjectKey {
                api_version: ar.api_version.clone(),
                kind: ar.kind.clone(),
                name,
            });
        }
    }
    Ok(deleted)
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map(|(g, _)| g).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "asya.sh/v1alpha1".into(),
            kind: "AsyncActor".into(),
            name: "a".into(),
            uid: "u-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn apply_body_sets_namespace_and_owner_reference() {
        let obj = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}});
        let body = apply_body(&obj, "ns1", &owner(), &BTreeSet::new()).unwrap();
        assert_eq!(body["metadata"]["namespace"], "ns1");
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(body["metadata"]["ownerReferences"][0]["controller"], true);
    }

    #[test]
    fn workload_scaled_by_keda_never_carries_replicas() {
        let objects = vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": 3}}),
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a"},
                   "spec": {"scaleTargetRef": {"name": "a"}}}),
        ];
        let scaled = keda_scaled_workloads(&objects);
        let body = apply_body(&objects[0], "ns", &owner(), &scaled).unwrap();
        assert!(body["spec"].get("replicas").is_none());
        let unscaled = apply_body(&objects[0], "ns", &owner(), &BTreeSet::new()).unwrap();
        assert_eq!(unscaled["spec"]["replicas"], 3);
    }

    #[test]
    fn object_without_kind_is_a_clear_error() {
        let err = object_key(&json!({"apiVersion": "v1", "metadata": {"name": "x"}})).unwrap_err();
        assert!(err.to_string().contains("\"x\""), "{err}");
    }
}
