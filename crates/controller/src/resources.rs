//! Where each kind lives in the API: group, version, plural.
//!
//! Rendered objects arrive as JSON with `apiVersion`/`kind`; server-side apply
//! needs the plural for the URL. The kinds a render can emit are few and
//! known, so a table avoids a discovery round trip per reconcile.

use kube::core::{ApiResource, GroupVersionKind};

/// The API group of Asya's own kinds.
pub const GROUP: &str = "asya.sh";
/// The version of Asya's own kinds.
pub const VERSION: &str = "v1alpha1";

/// `AsyncActor` (namespaced).
pub fn async_actor() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, VERSION, "AsyncActor"),
        "asyncactors",
    )
}

/// `Flavor` (cluster-scoped).
pub fn flavor() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, "Flavor"), "flavors")
}

/// KEDA's `ScaledObject`.
pub fn scaled_object() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    )
}

/// KEDA's `TriggerAuthentication`.
pub fn trigger_authentication() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "TriggerAuthentication"),
        "triggerauthentications",
    )
}

/// The HPA that KEDA creates for a ScaledObject (`autoscaling/v2beta2` is the
/// newest version a 1.20 server serves, and every later server still reads it
/// up to 1.25; `v2` is tried first).
pub fn hpa(version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("autoscaling", version, "HorizontalPodAutoscaler"),
        "horizontalpodautoscalers",
    )
}

/// The kinds whose objects a render may emit into an actor's namespace. The
/// pruner lists exactly these (plus any other kind the current render holds),
/// so an object of a kind the render stopped emitting is still found.
pub fn prunable() -> Vec<ApiResource> {
    vec![
        core("apps", "v1", "Deployment", "deployments"),
        core("apps", "v1", "StatefulSet", "statefulsets"),
        core("", "v1", "ServiceAccount", "serviceaccounts"),
        core("", "v1", "ConfigMap", "configmaps"),
        scaled_object(),
        trigger_authentication(),
    ]
}

fn core(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The API resource for an `apiVersion` + `kind` as written in a manifest.
pub fn for_api_version_kind(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    if let Some(known) = prunable()
        .into_iter()
        .find(|r| r.group == group && r.kind == kind)
    {
        return ApiResource::from_gvk_with_plural(&gvk, &known.plural);
    }
    // Kubernetes' own pluralisation for the regular cases (ServiceAccount -> serviceaccounts,
    // Policy -> policies, Ingress -> ingresses).
    let lower = kind.to_ascii_lowercase();
    let vowel_y = ["ay", "ey", "oy", "uy"].iter().any(|v| lower.ends_with(v));
    let plural = if lower.ends_with('y') && !vowel_y {
        format!("{}ies", &lower[..lower.len() - 1])
    } else if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    };
    ApiResource::from_gvk_with_plural(&gvk, &plural)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_resolve_to_their_plural() {
        assert_eq!(
            for_api_version_kind("apps/v1", "Deployment").plural,
            "deployments"
        );
        assert_eq!(
            for_api_version_kind("v1", "ServiceAccount").plural,
            "serviceaccounts"
        );
        assert_eq!(for_api_version_kind("v1", "ServiceAccount").group, "");
        assert_eq!(
            for_api_version_kind("keda.sh/v1alpha1", "ScaledObject").plural,
            "scaledobjects"
        );
    }

    #[test]
    fn unknown_kinds_get_the_regular_plural() {
        assert_eq!(for_api_version_kind("x.io/v1", "Policy").plural, "policies");
        assert_eq!(
            for_api_version_kind("x.io/v1", "Ingress").plural,
            "ingresses"
        );
        assert_eq!(
            for_api_version_kind("x.io/v1", "Gateway").plural,
            "gateways"
        );
    }
}
