//! The pod around the runtime: user containers, volumes and mounts (clear of the injected
//! ones), StatefulSet claims, and `podTemplate` fields that belong elsewhere.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::api::spec::{ActorSpec, FreeForm, WorkloadKind};

const RESERVED_VOLUMES: &[&str] = &["asya-socket", "asya-runtime", "tmp"];
/// The socket directory is ours entirely. Under the runtime directory, only the runtime
/// file itself and the directory are ours: upstream's flow compiler mounts routers next to
/// the runtime (`/opt/asya/routers.py`), which the runtime imports from its own directory.
const RESERVED_MOUNTS: &[&str] = &["/var/run/asya"];
const RESERVED_EXACT: &[&str] = &["/opt/asya", "/opt/asya/", "/opt/asya/asya_runtime.py"];

fn name_of(item: &FreeForm) -> Option<&str> {
    item.0.get("name").and_then(Value::as_str)
}

pub(super) fn check_pod(spec: &ActorSpec, err: &mut dyn FnMut(&str, String)) {
    let mut containers = BTreeSet::new();
    for (field, list) in [
        ("initContainers", &spec.init_containers),
        ("sidecars", &spec.sidecars),
    ] {
        for (i, c) in list.iter().flatten().enumerate() {
            let path = format!("spec.{field}[{i}].name");
            match name_of(c) {
                None => err(&path, "expected a container name".into()),
                Some(n) if n.starts_with("asya-") => err(
                    &path,
                    format!(
                        "expected a name not starting with \"asya-\" (reserved for injected containers), got {n:?}"
                    ),
                ),
                Some(n) if !containers.insert(n.to_string()) => err(
                    &path,
                    format!("expected unique container names, {n:?} is used twice"),
                ),
                _ => {}
            }
            if !c.0.get("image").is_some_and(Value::is_string) {
                err(
                    &format!("spec.{field}[{i}].image"),
                    "expected an image".into(),
                );
            }
        }
    }
    let mut volume_names: BTreeSet<String> = BTreeSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let path = format!("spec.volumes[{i}].name");
        match name_of(v) {
            None => err(&path, "expected a volume name".into()),
            Some(n) if RESERVED_VOLUMES.contains(&n) || n.starts_with("asya-") => err(
                &path,
                format!("expected a name other than {n:?} (reserved for injected volumes)"),
            ),
            Some(n) => {
                volume_names.insert(n.to_string());
            }
        }
    }
    let workload = spec.workload.clone().unwrap_or_default();
    for vct in workload.volume_claim_templates.iter().flatten() {
        if let Some(n) = vct
            .0
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
        {
            volume_names.insert(n.to_string());
        }
    }
    for (i, m) in spec.volume_mounts.iter().flatten().enumerate() {
        let base = format!("spec.volumeMounts[{i}]");
        match name_of(m) {
            None => err(
                &format!("{base}.name"),
                "expected the name of a volume".into(),
            ),
            Some(n) if !volume_names.contains(n) => err(
                &format!("{base}.name"),
                format!(
                    "expected the name of a volume in spec.volumes or workload.volumeClaimTemplates, got {n:?}"
                ),
            ),
            _ => {}
        }
        match m.0.get("mountPath").and_then(Value::as_str) {
            None => err(
                &format!("{base}.mountPath"),
                "expected an absolute mountPath".into(),
            ),
            Some(p)
                if RESERVED_EXACT.contains(&p)
                    || RESERVED_MOUNTS
                        .iter()
                        .any(|r| p == *r || p.starts_with(&format!("{r}/"))) =>
            {
                err(
                    &format!("{base}.mountPath"),
                    format!(
                        "expected a path outside /var/run/asya, and not /opt/asya or /opt/asya/asya_runtime.py (files below /opt/asya are fine), got {p:?}"
                    ),
                )
            }
            _ => {}
        }
    }
    let kind = workload.kind.unwrap_or(WorkloadKind::Deployment);
    if workload
        .volume_claim_templates
        .as_ref()
        .is_some_and(|v| !v.is_empty())
        && kind != WorkloadKind::StatefulSet
    {
        err(
            "spec.workload.volumeClaimTemplates",
            "expected workload.kind: StatefulSet (only StatefulSets have volumeClaimTemplates)"
                .into(),
        );
    }
    if let Some(pt) = &workload.pod_template {
        for (k, v) in &pt.0 {
            match k.as_str() {
                "metadata" => {
                    for mk in v
                        .as_object()
                        .map(|m| m.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        if mk != "labels" && mk != "annotations" {
                            err(
                                &format!("spec.workload.podTemplate.metadata.{mk}"),
                                "expected only labels and annotations".into(),
                            );
                        }
                    }
                }
                "spec" => {
                    for sk in v
                        .as_object()
                        .map(|m| m.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        let flat = match sk.as_str() {
                            "containers" => Some("spec.sidecars"),
                            "initContainers" => Some("spec.initContainers"),
                            "volumes" => Some("spec.volumes"),
                            "nodeSelector" => Some("spec.nodeSelector"),
                            "tolerations" => Some("spec.tolerations"),
                            "affinity" => Some("spec.affinity"),
                            "serviceAccountName" | "terminationGracePeriodSeconds" => {
                                Some("the actor's own fields")
                            }
                            _ => None,
                        };
                        if let Some(flat) = flat {
                            err(
                                &format!("spec.workload.podTemplate.spec.{sk}"),
                                format!("expected this in {flat}, not in podTemplate"),
                            );
                        }
                    }
                }
                other => err(
                    &format!("spec.workload.podTemplate.{other}"),
                    "expected only metadata and spec".into(),
                ),
            }
        }
    }
}
