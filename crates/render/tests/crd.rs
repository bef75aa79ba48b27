//! The CRDs are structural (an API server 1.20 accepts them) and show DESIGN §3's columns.

use asya_render::crd::{async_actor_crd, flavor_crd, structural_problems};

#[test]
fn both_crds_have_structural_schemas_without_refs_defaults_or_cel() {
    for crd in [async_actor_crd(), flavor_crd()] {
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let problems = structural_problems(schema);
        assert!(
            problems.is_empty(),
            "{}: {problems:#?}",
            crd["metadata"]["name"]
        );
        let text = serde_json::to_string(&crd).unwrap();
        for bad in [
            "$ref",
            "\"default\"",
            "x-kubernetes-validations",
            "\"nullable\"",
            "\"anyOf\"",
            "\"oneOf\"",
        ] {
            assert!(
                !text.contains(bad),
                "{} contains {bad}",
                crd["metadata"]["name"]
            );
        }
    }
}

#[test]
fn async_actor_crd_has_short_names_status_and_the_design_columns() {
    let crd = async_actor_crd();
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["asya", "asyas"])
    );
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let v = &crd["spec"]["versions"][0];
    assert!(v["subresources"]["status"].is_object());
    let cols: Vec<(String, i64)> = v["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_uppercase(),
                c["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let default: Vec<&str> = cols
        .iter()
        .filter(|c| c.1 == 0)
        .map(|c| c.0.as_str())
        .collect();
    let wide: Vec<&str> = cols
        .iter()
        .filter(|c| c.1 == 1)
        .map(|c| c.0.as_str())
        .collect();
    assert_eq!(
        default,
        [
            "STATUS",
            "RUNNING",
            "PENDING",
            "FAILING",
            "MIN",
            "MAX",
            "LAST-SCALE",
            "AGE"
        ]
    );
    assert_eq!(
        wide,
        [
            "DESIRED",
            "WORKLOAD",
            "TRANSPORT",
            "SCALING",
            "QUEUED",
            "PROCESSING"
        ]
    );
    let status = &v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    for f in [
        "phase",
        "conditions",
        "replicas",
        "queue",
        "lastScale",
        "observedGeneration",
        "workloadRef",
        "min",
        "max",
    ] {
        assert!(status.get(f).is_some(), "status.{f} missing");
    }
}

#[test]
fn last_scale_column_is_a_date_kubectl_shows_as_an_age_and_the_direction_is_in_the_schema() {
    // A "5m (up)" text would need a clock in the status writer; a date column lets kubectl
    // show the age, and `-o yaml` has the direction next to it.
    let crd = async_actor_crd();
    let v = &crd["spec"]["versions"][0];
    let col = v["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Last-Scale")
        .expect("Last-Scale column");
    assert_eq!(col["type"], "date");
    assert_eq!(col["jsonPath"], ".status.lastScale.time");
    let last = &v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["lastScale"];
    for f in ["time", "direction"] {
        assert_eq!(
            last["properties"][f]["type"], "string",
            "lastScale.{f}: {last}"
        );
    }
}

#[test]
fn flavor_crd_is_cluster_scoped_and_omits_actor_only_fields() {
    let crd = flavor_crd();
    assert_eq!(crd["spec"]["scope"], "Cluster");
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for f in ["actor", "flavors", "transport"] {
        assert!(props.get(f).is_none(), "{f} in Flavor schema");
    }
    assert!(props.get("resources").is_some());
}
