//! Flavor merge semantics (DESIGN §4).

mod common;

use asya_render::{Origin, Platform, explain};
use common::*;

fn with_flavors(list: &str, extra: &str) -> asya_render::ActorDocument {
    actor(&format!(
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {{name: a, namespace: n}}\nspec:\n  actor: a\n  image: img\n  handler: m.f\n  flavors: [{list}]\n{extra}"
    ))
}

#[test]
fn actor_overrides_one_leaf_of_a_flavor_map_and_keeps_its_siblings() {
    let lib = flavors(&[(
        "fast",
        "{scaling: {pollingInterval: 5, cooldownPeriod: 60}}",
    )]);
    let r = ok(
        &with_flavors("fast", "  scaling: {cooldownPeriod: 900}\n"),
        &lib,
    );
    let so = object(&r, "ScaledObject");
    assert_eq!(so["spec"]["pollingInterval"], 5);
    assert_eq!(so["spec"]["cooldownPeriod"], 900);
    let p = &r.explain.provenance;
    assert_eq!(
        p.origin_of("spec.scaling.pollingInterval"),
        Some(&Origin::Flavor("fast".into()))
    );
    assert_eq!(
        p.origin_of("spec.scaling.cooldownPeriod"),
        Some(&Origin::Actor)
    );
    assert_eq!(
        p.origin_of("spec.scaling.maxReplicaCount"),
        Some(&Origin::Default)
    );
}

#[test]
fn same_scalar_from_two_flavors_is_an_error_naming_both_and_the_path() {
    let lib = flavors(&[("a1", "{concurrency: 2}"), ("b2", "{concurrency: 2}")]);
    let e =
        try_render(&with_flavors("a1, b2", ""), &lib, &Platform::default()).expect_err("conflict");
    let text = e.to_string();
    assert!(text.contains("spec.concurrency"), "{text}");
    assert!(text.contains("\"a1\"") && text.contains("\"b2\""), "{text}");
}

#[test]
fn disjoint_leaves_of_one_map_from_two_flavors_merge() {
    let lib = flavors(&[
        ("cpu", "{resources: {limits: {cpu: '2'}}}"),
        ("mem", "{resources: {limits: {memory: 4Gi}}}"),
    ]);
    let r = ok(&with_flavors("cpu, mem", ""), &lib);
    let rt = container(object(&r, "Deployment"), "asya-runtime");
    assert_eq!(rt["resources"]["limits"]["cpu"], "2");
    assert_eq!(rt["resources"]["limits"]["memory"], "4Gi");
}

#[test]
fn identity_lists_merge_by_name_and_the_actor_item_replaces_the_flavor_item() {
    let lib = flavors(&[(
        "envs",
        "{env: [{name: A, value: from-flavor}, {name: B, value: b}]}",
    )]);
    let r = ok(
        &with_flavors(
            "envs",
            "  env: [{name: A, value: from-actor}, {name: C, value: c}]\n",
        ),
        &lib,
    );
    let rt = container(object(&r, "Deployment"), "asya-runtime");
    assert_eq!(env_value(rt, "A"), Some(&serde_json::json!("from-actor")));
    let names: Vec<&str> = rt["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    let user: Vec<&str> = names
        .into_iter()
        .filter(|n| !n.starts_with("ASYA_"))
        .collect();
    assert_eq!(user, ["A", "B", "C"]);
}

#[test]
fn equal_identity_items_from_two_flavors_are_not_a_conflict_but_different_ones_are() {
    let tol = "{tolerations: [{key: gpu, operator: Exists}]}";
    let lib = flavors(&[
        ("t1", tol),
        ("t2", tol),
        (
            "t3",
            "{tolerations: [{key: gpu, operator: Equal, value: x}]}",
        ),
    ]);
    let r = ok(&with_flavors("t1, t2", ""), &lib);
    let pod = &object(&r, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["tolerations"].as_array().unwrap().len(), 1);
    let e =
        try_render(&with_flavors("t1, t3", ""), &lib, &Platform::default()).expect_err("conflict");
    assert!(e.to_string().contains("spec.tolerations[0]"), "{e}");
}

#[test]
fn resiliency_rules_keep_order_flavors_first_then_the_actor() {
    let lib = flavors(&[(
        "retry",
        "{resiliency: {policies: {p: {maxAttempts: 2}}, rules: [{errors: [A], policy: p}]}}",
    )]);
    let r = ok(
        &with_flavors(
            "retry",
            "  resiliency: {rules: [{errors: [B], action: fail}]}\n",
        ),
        &lib,
    );
    let sc = container(object(&r, "Deployment"), "asya-sidecar");
    let rules = env_value(sc, "ASYA_RESILIENCY_RULES")
        .and_then(|v| v.as_str())
        .unwrap();
    assert_eq!(
        rules,
        r#"[{"errors":["A"],"policy":"p"},{"action":"fail","errors":["B"]}]"#
    );
}

#[test]
fn defaults_never_beat_a_flavor() {
    let lib = flavors(&[(
        "zero",
        "{scaling: {maxReplicaCount: 3}, imagePullPolicy: Always}",
    )]);
    let r = ok(&with_flavors("zero", ""), &lib);
    assert_eq!(object(&r, "ScaledObject")["spec"]["maxReplicaCount"], 3);
    assert_eq!(
        container(object(&r, "Deployment"), "asya-runtime")["imagePullPolicy"],
        "Always"
    );
}

#[test]
fn a_flavor_cannot_set_actor_flavors_or_transport() {
    for field in ["actor: x", "flavors: [y]", "transport: sqs"] {
        let lib = flavors(&[("bad", &format!("{{{field}}}"))]);
        let e = try_render(&with_flavors("bad", ""), &lib, &Platform::default()).expect_err(field);
        assert!(e.to_string().contains("flavors/bad.yaml"), "{e}");
    }
}

#[test]
fn a_missing_flavor_is_an_error_at_its_list_position() {
    let e = try_render(
        &with_flavors("nope", ""),
        &flavors(&[]),
        &Platform::default(),
    )
    .expect_err("missing");
    assert!(
        e.to_string()
            .contains("actor.yaml: spec.flavors[0]: expected a known flavor"),
        "{e}"
    );
}

#[test]
fn explain_reports_the_origin_of_every_leaf() {
    let lib = flavors(&[("fast", "{scaling: {pollingInterval: 5}}")]);
    let x = explain(&with_flavors("fast", ""), &lib, &Platform::default()).expect("explain");
    let text = x.to_text();
    assert!(
        text.contains("spec.scaling.pollingInterval: 5") && text.contains("# flavor fast"),
        "{text}"
    );
    assert!(text.contains("# default"), "{text}");
}

#[test]
fn more_than_eight_flavors_is_an_error() {
    let names: Vec<String> = (0..9).map(|i| format!("flv{i}")).collect();
    let defs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "{}")).collect();
    let lib = flavors(&defs);
    let e = try_render(
        &with_flavors(&names.join(", "), ""),
        &lib,
        &Platform::default(),
    )
    .expect_err("too many");
    assert!(
        e.to_string()
            .contains("spec.flavors: expected at most 8 flavors, got 9"),
        "{e}"
    );
}
