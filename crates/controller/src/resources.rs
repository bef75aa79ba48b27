//! Where each kind lives in the API: group, version, plural.
//!
//! Rendered objects arrive as JSON with `apiVersion`/`kind`; server-side apply
//! needs the plural for the URL. Kinds with a Rust type take it from the type
//! (k8s-openapi, the kube derive of [`crate::crd`]); KEDA's kinds from their
//! CRDs' names; any other kind a custom composition emits is asked of the
//! API server's discovery once and remembered. Nothing is pluralised by hand.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::Client;
use kube::core::{ApiResource, GroupVersionKind};

/// The API group of Asya's own kinds.
pub const GROUP: &str = asya_render::api::GROUP;
/// The version of Asya's own kinds.
pub const VERSION: &str = asya_render::api::VERSION;

/// `AsyncActor`, from its kube derive.
pub fn async_actor() -> ApiResource {
    ApiResource::erase::<crate::crd::AsyncActor>(&())
}

/// `Flavor`, from its kube derive.
pub fn flavor() -> ApiResource {
    ApiResource::erase::<crate::crd::Flavor>(&())
}

/// KEDA's `ScaledObject` (its CRD's names).
pub fn scaled_object() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    )
}

/// KEDA's `TriggerAuthentication` (its CRD's names).
pub fn trigger_authentication() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "TriggerAuthentication"),
        "triggerauthentications",
    )
}

/// The HPA that KEDA creates for a ScaledObject, in `version` (`v2`, or
/// `v2beta2`: the newest a 1.20 server serves).
pub fn hpa(version: &str) -> ApiResource {
    let mut ar = ApiResource::erase::<HorizontalPodAutoscaler>(&());
    ar.version = version.to_owned();
    ar.api_version = format!("{}/{version}", ar.group);
    ar
}

/// The kinds whose objects a render may emit into an actor's namespace. The
/// pruner lists exactly these (plus any other kind the current render holds),
/// so an object of a kind the render stopped emitting is still found.
pub fn prunable() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        scaled_object(),
        trigger_authentication(),
    ]
}

fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    GroupVersionKind::gvk(group, version, kind)
}

/// The API resource of a kind render emits by default, without asking the
/// server; `None` for other kinds (see [`Kinds::resolve`]).
pub fn known(api_version: &str, kind: &str) -> Option<ApiResource> {
    let gvk = gvk(api_version, kind);
    prunable()
        .into_iter()
        .find(|r| r.group == gvk.group && r.kind == gvk.kind)
        .map(|known| ApiResource::from_gvk_with_plural(&gvk, &known.plural))
}

/// Resolves `apiVersion` + `kind` to an API resource: [`known`] kinds
/// directly, others by discovery, once per kind for the process's life
/// (a kind's plural never changes while its CRD exists).
#[derive(Default)]
pub struct Kinds {
    discovered: Mutex<HashMap<GroupVersionKind, ApiResource>>,
}

impl Kinds {
    pub async fn resolve(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, kube::Error> {
        if let Some(ar) = known(api_version, kind) {
            return Ok(ar);
        }
        let gvk = gvk(api_version, kind);
        if let Some(ar) = self
            .discovered
            .lock()
            .ok()
            .and_then(|m| m.get(&gvk).cloned())
        {
            return Ok(ar);
        }
        let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await?;
        if let Ok(mut m) = self.discovered.lock() {
            m.insert(gvk, ar.clone());
        }
        Ok(ar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_resolve_to_their_types_plural() {
        let d = known("apps/v1", "Deployment").expect("known");
        assert_eq!(
            (d.group.as_str(), d.plural.as_str()),
            ("apps", "deployments")
        );
        let sa = known("v1", "ServiceAccount").expect("known");
        assert_eq!(
            (sa.group.as_str(), sa.plural.as_str()),
            ("", "serviceaccounts")
        );
        assert_eq!(
            known("keda.sh/v1alpha1", "ScaledObject").map(|r| r.plural),
            Some("scaledobjects".into())
        );
        // Another version of a known kind keeps the plural and the version asked for.
        let old = known("keda.sh/v1alpha0", "ScaledObject").expect("known");
        assert_eq!(old.api_version, "keda.sh/v1alpha0");
        assert_eq!(hpa("v2beta2").api_version, "autoscaling/v2beta2");
        assert_eq!(hpa("v2").plural, "horizontalpodautoscalers");
    }

    #[test]
    fn other_kinds_are_left_to_discovery() {
        assert!(known("rabbitmq.com/v1beta1", "Queue").is_none());
        assert!(known("x.io/v1", "Deployment").is_none());
    }
}
