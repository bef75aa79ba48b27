//! From an AsyncActor as written to a valid, typed spec: schema check of the input,
//! normalisation of its shape, flavors merged in listed order, defaults, semantic checks.

use serde::Deserialize;
use serde_json::Value;

use super::explain::Explanation;
use crate::api::platform::Platform;
use crate::api::spec::ActorSpec;
use crate::api::{ActorDocument, FlavorLibrary};
use crate::error::{Diagnostics, flavor, invalid, schema as schema_err};
use crate::merge::{self, FlavorInput};
use crate::normalize::{normalize, upstream_aliases};
use crate::schema::{actor_spec_checker, actor_spec_schema, check, prune};
use crate::validate::{Files, is_dns_label, is_dns_subdomain, validate};

/// A valid actor: its typed spec, its namespace, and how it came to be.
pub(super) struct Resolved {
    pub spec: ActorSpec,
    pub namespace: String,
    pub explanation: Explanation,
}

pub(super) fn resolve(
    doc: &ActorDocument,
    flavors: &FlavorLibrary,
    platform: &Platform,
) -> Result<Resolved, Diagnostics> {
    let mut errs = Diagnostics::default();
    let file = doc.source.as_str();
    let namespace = doc.namespace.clone().unwrap_or_else(|| "default".into());
    // The API server's rules for the AsyncActor's own name and namespace.
    if !is_dns_subdomain(&doc.name) {
        errs.push(invalid(
            file,
            "metadata.name",
            format!(
                "expected a lowercase DNS subdomain (a-z, 0-9, '-', '.', at most 253), got {:?}",
                doc.name
            ),
        ));
    }
    if !is_dns_label(&namespace) {
        errs.push(invalid(
            file,
            "metadata.namespace",
            format!("expected a lowercase DNS label, got {namespace:?}"),
        ));
    }

    // 1. the input as written: unknown fields and types, in the user's own paths. What is
    // wrong is reported and left out, and the rest is still checked, so that one run
    // reports a typo, a bad handler and a bad name together.
    let mut written = doc.spec.clone();
    upstream_aliases(file, &mut written, &mut errs);
    check(&written, actor_spec_checker(), file, "spec", &mut errs);
    if !errs.is_empty() {
        prune(&mut written, actor_spec_schema());
    }
    let actor = normalize(file, written, Some(&doc.name), &mut errs);

    // 2. flavors, in listed order.
    let names: Vec<String> = match actor.spec.get("flavors") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    // Errors so far are the actor's own; flavors are checked before anything is merged.
    let own_errors = errs.0.len();
    let mut flavor_specs = Vec::new();
    let mut warnings = actor.warnings.clone();
    for (i, name) in names.iter().enumerate() {
        let Some(entry) = flavors.get(name) else {
            let known = flavors.known_names();
            let known = if known.is_empty() {
                "none loaded (the asya CLI reads them with --flavors DIR; the controller from Flavor objects)".to_string()
            } else {
                known.join(", ")
            };
            errs.push(flavor(
                file,
                &format!("spec.flavors[{i}]"),
                format!("expected a known flavor, {name:?} not found; known: {known}"),
            ));
            continue;
        };
        let before = errs.0.len();
        check(
            &entry.spec,
            actor_spec_checker(),
            &entry.source,
            &entry.path,
            &mut errs,
        );
        for forbidden in ["actor", "flavors", "transport"] {
            if entry.spec.get(forbidden).is_some() {
                errs.push(flavor(
                    &entry.source,
                    &format!("{}.{forbidden}", entry.path),
                    format!("expected no {forbidden} in a flavor (only the actor may set it)"),
                ));
            }
        }
        if errs.0.len() > before {
            continue;
        }
        let n = normalize(&entry.source, entry.spec.clone(), None, &mut errs);
        warnings.extend(
            n.warnings
                .into_iter()
                .map(|w| format!("flavor {name}: {w}")),
        );
        flavor_specs.push((name.clone(), n.spec));
    }
    if errs.0.len() > own_errors {
        return Err(errs);
    }
    let inputs: Vec<FlavorInput<'_>> = flavor_specs
        .iter()
        .map(|(n, s)| FlavorInput { name: n, spec: s })
        .collect();
    let mut merged = merge::merge(&inputs, &actor.spec, file, &mut errs);
    if errs.0.len() > own_errors {
        return Err(errs);
    }
    drop(inputs);
    // Set by a flavor or the actor (merging skips nulls), before defaults fill it in.
    let replicas_set = merged.contains_key("replicas");
    let prov = merge::apply_defaults(
        &mut merged,
        &platform.default_transport,
        actor.legacy,
        flavor_specs,
        actor.spec,
    );

    // 3. typed view of the merged spec.
    let merged_value = Value::Object(merged);
    // Plain serde first; the path-tracking deserializer only to name a failure's field.
    let typed = ActorSpec::deserialize(&merged_value)
        .or_else(|_| serde_path_to_error::deserialize::<_, ActorSpec>(&merged_value));
    let spec: ActorSpec = match typed {
        Ok(s) => s,
        Err(e) => {
            let path = format!("spec.{}", e.path());
            errs.push(schema_err(
                file,
                &path,
                format!("expected a valid value: {}", e.inner()),
            ));
            errs.dedup();
            return Err(errs);
        }
    };
    if spec
        .scaling
        .as_ref()
        .and_then(|s| s.enabled)
        .unwrap_or(true)
        && replicas_set
    {
        warnings.push(
            "spec.replicas is ignored while scaling is enabled (KEDA owns the replica count)"
                .into(),
        );
    }
    // A sidecar variable the sidecar never reads is a setting silently lost.
    let sidecar_env = spec.sidecar.as_ref().and_then(|s| s.env.as_ref());
    for e in sidecar_env.into_iter().flatten() {
        if e.name.starts_with("ASYA_")
            && !asya_contract::env::SIDECAR_READS.contains(&e.name.as_str())
        {
            let hint = match e.name.as_str() {
                "ASYA_RUNTIME_TIMEOUT" => {
                    " (upstream's runtime timeout is spec.resiliency.actorTimeout here)"
                }
                _ => "",
            };
            warnings.push(format!(
                "spec.sidecar.env: the sidecar does not read {}{hint}; it has no effect",
                e.name
            ));
        }
    }
    let flavor_file = |n: &str| flavors.get(n).map(|e| e.source.clone());
    let files = Files {
        actor: file,
        prov: &prov,
        flavor_files: &flavor_file,
    };
    validate(&spec, &namespace, &files, &mut errs);
    errs.dedup();
    errs.into_result()?;
    Ok(Resolved {
        spec,
        namespace,
        explanation: Explanation {
            source: doc.source.clone(),
            shape: if actor.legacy { "legacy" } else { "flat" }.into(),
            flavors: names,
            spec: merged_value,
            provenance: prov,
            warnings,
        },
    })
}
