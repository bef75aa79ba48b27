//! Arbitrary YAML/JSON fed into the parse + render path never panics.

use asya_render::{ActorDocument, Compositions, FlavorLibrary, Platform, parse_documents, render};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|i| json!(i)),
        "[a-zA-Z0-9_.:/ -]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("asya-x"),
            Just("m.f"),
            Just("sqs"),
            Just("StatefulSet"),
            Just("5m"),
            Just("gpu-t4")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z]{1,8}",
                    Just("scaling".to_string()),
                    Just("workload".to_string()),
                    Just("template".to_string()),
                    Just("env".to_string()),
                    Just("flavors".to_string()),
                    Just("resiliency".to_string()),
                    Just("rules".to_string()),
                    Just("match".to_string()),
                    Just("containers".to_string()),
                    Just("name".to_string()),
                    Just("spec".to_string()),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_specs_never_panic(spec in arb_json(), flavor in arb_json()) {
        let doc = json!({"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor",
            "metadata": {"name": "p", "namespace": "n"}, "spec": spec});
        let mut lib = FlavorLibrary::new();
        let _ = lib.insert("gpu-t4", "f.yaml", flavor);
        if let Ok(a) = ActorDocument::from_value("p.yaml", &doc) {
            let c = Compositions::embedded().expect("embedded");
            if let Ok(first) = render(&a, &lib, &Platform::default(), &c) {
                let again = render(&a, &lib, &Platform::default(), &c).expect("second render");
                prop_assert_eq!(first, again);
            }
        }
    }

    #[test]
    fn a_valid_actor_with_arbitrary_fields_never_panics_and_renders_deterministically(
        key in prop_oneof![
            Just("scaling"), Just("resiliency"), Just("env"), Just("workload"), Just("sidecar"),
            Just("secretRefs"), Just("volumes"), Just("volumeMounts"), Just("sidecars"),
            Just("initContainers"), Just("resources"), Just("replicas"), Just("timeout"), Just("socket"),
        ],
        value in arb_json(),
        flavor in arb_json(),
    ) {
        let mut spec = json!({"actor": "p", "image": "img", "handler": "m.f", "flavors": ["gpu-t4"]});
        spec[key] = value;
        let doc = json!({"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor",
            "metadata": {"name": "p", "namespace": "n"}, "spec": spec});
        let mut lib = FlavorLibrary::new();
        let _ = lib.insert("gpu-t4", "f.yaml", json!({key: flavor}));
        let a = ActorDocument::from_value("p.yaml", &doc).expect("document");
        let c = Compositions::embedded().expect("embedded");
        if let Ok(first) = render(&a, &lib, &Platform::default(), &c) {
            let again = render(&a, &lib, &Platform::default(), &c).expect("second render");
            prop_assert_eq!(first, again);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(\\PC|\n|---|: |- |\\{|\\[){0,200}") {
        let _ = parse_documents("t.yaml", &text);
        let _ = Platform::from_yaml("p.yaml", &text);
    }
}
