//! What render emits (DESIGN §5) and its invariants.

mod common;

use asya_render::api::platform::Platform;
use asya_render::{Compositions, applyset_id, to_yaml_stream};
use common::*;
use serde_json::json;

#[test]
fn minimal_actor_renders_workload_trigger_auth_and_scaled_object_in_order() {
    let r = ok(&actor(MINIMAL), &flavors(&[]));
    let kinds: Vec<&str> = r
        .objects
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["Deployment", "TriggerAuthentication", "ScaledObject"]
    );
    assert_eq!(r.queue_name, "asya-demo-echo");
    assert_eq!(r.transport, "rabbitmq");
}

#[test]
fn never_emits_spec_replicas_while_keda_scales() {
    let r = ok(&actor(MINIMAL), &flavors(&[]));
    assert!(object(&r, "Deployment")["spec"].get("replicas").is_none());
    let fixed = MINIMAL.replace(
        "handler: echo.handle}",
        "handler: echo.handle, scaling: {enabled: false}, replicas: 3}",
    );
    let r = ok(&actor(&fixed), &flavors(&[]));
    assert_eq!(object(&r, "Deployment")["spec"]["replicas"], 3);
    assert!(
        r.objects
            .iter()
            .all(|o| o["kind"] != "ScaledObject" && o["kind"] != "TriggerAuthentication")
    );
}

#[test]
fn every_object_carries_the_standard_and_applyset_labels() {
    let doc = MINIMAL.replace(
        "namespace: demo}",
        "namespace: demo, labels: {team: ml, app.kubernetes.io/name: hijack}}",
    );
    let r = ok(&actor(&doc), &flavors(&[]));
    for o in &r.objects {
        let l = &o["metadata"]["labels"];
        assert_eq!(l["app.kubernetes.io/name"], "echo");
        assert_eq!(l["app.kubernetes.io/part-of"], "asya");
        assert_eq!(l["app.kubernetes.io/managed-by"], "asya");
        assert_eq!(l["asya.sh/actor"], "echo");
        assert_eq!(l["team"], "ml");
        assert_eq!(l["applyset.kubernetes.io/part-of"], json!(r.applyset_id));
        assert!(l["app.kubernetes.io/component"].is_string());
        assert_eq!(o["metadata"]["namespace"], "demo");
        assert!(o["metadata"].get("ownerReferences").is_none());
    }
}

#[test]
fn applyset_id_follows_the_kep_format() {
    // sha256("echo.demo.AsyncActor.asya.sh"), base64url without padding.
    assert_eq!(
        applyset_id("echo", "demo"),
        "applyset-IZTwTHeLuVPso0oJNE8115L-SNYFSbEKPfrMnRW20jY-v1"
    );
}

#[test]
fn same_input_gives_the_same_bytes() {
    let a = ok(&actor(MINIMAL), &flavors(&[]));
    let b = ok(&actor(MINIMAL), &flavors(&[]));
    assert_eq!(to_yaml_stream(&a.objects), to_yaml_stream(&b.objects));
}

#[test]
fn injected_containers_run_restricted_and_runtime_probes_need_no_shell() {
    let r = ok(&actor(MINIMAL), &flavors(&[]));
    let w = object(&r, "Deployment");
    for name in ["asya-sidecar", "asya-runtime-installer"] {
        let sc = &container(w, name)["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(sc["readOnlyRootFilesystem"], true);
    }
    let rt = container(w, "asya-runtime");
    assert_eq!(
        rt["readinessProbe"]["exec"]["command"],
        json!(["python3", "/opt/asya/asya_runtime.py", "--probe"])
    );
    assert_eq!(
        rt["command"],
        json!(["python3", "/opt/asya/asya_runtime.py"])
    );
    let installer = container(w, "asya-runtime-installer");
    assert_eq!(
        installer["command"],
        json!(["asya-sidecar", "install-runtime", "--to", "/opt/asya"])
    );
}

#[test]
fn sqs_trigger_counts_in_flight_and_irsa_role_placeholders_are_substituted() {
    let doc = MINIMAL.replace(
        "handler: echo.handle}",
        "handler: echo.handle, transport: sqs}",
    );
    let mut p = Platform::default();
    if let Some(t) = p.transports.get_mut("sqs") {
        t.config.actor_role_arn = Some("arn:aws:iam::1:role/{namespace}-{actor}".into());
        t.config.region = Some("eu-west-1".into());
    }
    let r = try_render(&actor(&doc), &flavors(&[]), &p).expect("render");
    let so = object(&r, "ScaledObject");
    let t = &so["spec"]["triggers"][0];
    assert_eq!(t["type"], "aws-sqs-queue");
    assert_eq!(t["metadata"]["scaleOnInFlight"], "true");
    assert_eq!(t["metadata"]["queueLength"], "5");
    assert_eq!(t["metadata"]["awsRegion"], "eu-west-1");
    let sa = object(&r, "ServiceAccount");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::1:role/demo-echo"
    );
    assert_eq!(
        object(&r, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"],
        "asya-echo"
    );
    assert_eq!(
        object(&r, "TriggerAuthentication")["spec"]["podIdentity"]["provider"],
        "aws"
    );
}

#[test]
fn rabbitmq_trigger_uses_http_queue_length_with_string_values() {
    let r = ok(&actor(MINIMAL), &flavors(&[]));
    let t = &object(&r, "ScaledObject")["spec"]["triggers"][0];
    assert_eq!(
        t["metadata"],
        json!({"mode": "QueueLength", "protocol": "http", "queueName": "asya-demo-echo", "value": "5"})
    );
    let ta = object(&r, "TriggerAuthentication");
    assert_eq!(ta["spec"]["secretTargetRef"][0]["parameter"], "host");
}

#[test]
fn legacy_shape_renders_like_its_flat_equivalent() {
    let legacy = actor(
        "
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: echo, namespace: demo}
spec:
  transport: rabbitmq
  scaling: {enabled: true, minReplicas: 1, maxReplicas: 7}
  workload:
    type: Deployment
    template:
      spec:
        containers:
        - name: asya-runtime
          image: python:3.12-slim
          env: [{name: ASYA_HANDLER, value: echo.handle}, {name: X, value: y}]
",
    );
    let flat = actor(
        "
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: echo, namespace: demo}
spec:
  actor: echo
  transport: rabbitmq
  image: python:3.12-slim
  handler: echo.handle
  env: [{name: X, value: y}]
  # The legacy CRD's KEDA defaults, which the legacy shape keeps (the flat shape's are 30/300).
  scaling: {enabled: true, minReplicaCount: 1, maxReplicaCount: 7, pollingInterval: 10, cooldownPeriod: 60}
",
    );
    let (l, f) = (ok(&legacy, &flavors(&[])), ok(&flat, &flavors(&[])));
    assert_eq!(l.explain.shape, "legacy");
    assert_eq!(to_yaml_stream(&l.objects), to_yaml_stream(&f.objects));
}

#[test]
fn legacy_shape_without_scaling_keeps_fixed_replicas_like_the_operator_did() {
    let legacy = actor(
        "
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: echo}
spec:
  workload:
    template:
      spec:
        containers: [{name: asya-runtime, image: img, env: [{name: ASYA_HANDLER, value: a.b}]}]
",
    );
    let r = ok(&legacy, &flavors(&[]));
    assert!(!r.scaling_enabled);
    assert_eq!(object(&r, "Deployment")["spec"]["replicas"], 1);
    assert_eq!(r.namespace, "default");
}

#[test]
fn all_errors_of_one_actor_are_reported_together() {
    let doc = "
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: x}
spec: {actor: X, image: img, handler: nodot, scaling: {minReplicaCount: 9, maxReplicaCount: 1}, resiliency: {actorTimeout: soon}}
";
    let e = try_render(&actor(doc), &flavors(&[]), &Platform::default()).expect_err("invalid");
    assert_eq!(e.0.len(), 4, "{e}");
    for line in e.to_string().lines() {
        assert!(line.starts_with("actor.yaml: spec."), "{line}");
        assert!(line.contains("expected"), "{line}");
    }
}

#[test]
fn a_typo_in_any_field_fails_with_a_suggestion() {
    let doc = MINIMAL.replace(
        "handler: echo.handle}",
        "handler: echo.handle, scalng: {enabled: true}}",
    );
    let e = try_render(&actor(&doc), &flavors(&[]), &Platform::default()).expect_err("typo");
    assert!(
        e.to_string()
            .contains("spec.scalng: unknown field (did you mean \"scaling\"?)"),
        "{e}"
    );
}

#[test]
fn compositions_can_be_overridden_file_by_file() {
    let custom = "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: {{ names.trigger_auth }}\nspec:\n  secretTargetRef: []\n";
    let c = Compositions::with_overrides([(
        "rabbitmq/triggerauthentication.yaml.j2".to_string(),
        custom.to_string(),
        "custom/ta.j2".to_string(),
    )])
    .expect("compile");
    let r = asya_render::render(&actor(MINIMAL), &flavors(&[]), &Platform::default(), &c)
        .expect("render");
    assert_eq!(
        object(&r, "TriggerAuthentication")["spec"]["secretTargetRef"],
        json!([])
    );
    let broken = Compositions::with_overrides([(
        "sqs/queue.yaml.j2".into(),
        "{% if %}".into(),
        "custom/q.j2".into(),
    )]);
    assert!(
        broken
            .expect_err("syntax error")
            .to_string()
            .starts_with("custom/q.j2")
    );
}

#[test]
fn a_composition_that_sets_replicas_under_keda_is_rejected() {
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n";
    let c = Compositions::with_overrides([(
        "rabbitmq/workload.yaml.j2".into(),
        bad.into(),
        "custom/w.j2".into(),
    )])
    .expect("compile");
    let e = asya_render::render(&actor(MINIMAL), &flavors(&[]), &Platform::default(), &c)
        .expect_err("replicas");
    assert!(
        e.to_string()
            .contains("custom/w.j2: spec.replicas: expected no spec.replicas"),
        "{e}"
    );
}

#[test]
fn the_api_the_controller_shares_across_tasks_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Compositions>();
    assert_send_sync::<asya_render::FlavorLibrary>();
    assert_send_sync::<Platform>();
    assert_send_sync::<asya_render::Rendered>();
    assert_send_sync::<asya_render::Diagnostics>();
}

#[test]
fn an_unknown_or_disabled_transport_is_a_platform_error() {
    let doc = MINIMAL.replace(
        "handler: echo.handle}",
        "handler: echo.handle, transport: kafka}",
    );
    let e = try_render(&actor(&doc), &flavors(&[]), &Platform::default()).expect_err("unknown");
    assert!(
        e.to_string()
            .contains("spec.transport: expected a transport configured in the platform"),
        "{e}"
    );
    let mut p = Platform::default();
    if let Some(t) = p.transports.get_mut("rabbitmq") {
        t.enabled = false;
    }
    let e = try_render(&actor(MINIMAL), &flavors(&[]), &p).expect_err("disabled");
    assert!(e.to_string().contains("disabled"), "{e}");
}

#[test]
fn platform_files_report_the_path_of_a_bad_value() {
    let e = Platform::from_yaml("platform.yaml", "sidecar:\n  imagee: x\n").expect_err("typo");
    assert!(e.to_string().starts_with("platform.yaml: sidecar"), "{e}");
    let p = Platform::from_yaml(
        "p.yaml",
        "transports:\n  rabbitmq-prod:\n    type: rabbitmq\nreplicaCount: 2\n",
    )
    .expect("ok");
    assert_eq!(p.transports["rabbitmq-prod"].kind(), "rabbitmq");
    let e = Platform::from_yaml("p.yaml", "defaultTransprot: sqs\n").expect_err("top-level typo");
    assert!(
        e.to_string()
            .starts_with("p.yaml: defaultTransprot: unknown field"),
        "{e}"
    );
}

#[test]
fn runtime_and_sidecar_share_the_shutdown_grace_of_the_pod_minus_five_seconds() {
    let doc = MINIMAL.replace(
        "handler: echo.handle}",
        "handler: echo.handle, terminationGracePeriodSeconds: 60}",
    );
    let r = ok(&actor(&doc), &flavors(&[]));
    let w = object(&r, "Deployment");
    assert_eq!(
        w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        60
    );
    for name in ["asya-runtime", "asya-sidecar"] {
        assert_eq!(
            env_value(container(w, name), "ASYA_SHUTDOWN_GRACE"),
            Some(&json!("55s")),
            "{name}"
        );
    }
}

#[test]
fn the_runtime_shutdown_grace_cannot_be_set_twice_through_env() {
    let doc = MINIMAL.replace(
        "handler: echo.handle}",
        "handler: echo.handle, env: [{name: ASYA_SHUTDOWN_GRACE, value: 90s}]}",
    );
    let e = try_render(&actor(&doc), &flavors(&[]), &Platform::default()).expect_err("reserved");
    assert!(
        e.to_string().contains(
            "spec.env[0].name: expected a name Asya does not set itself, got ASYA_SHUTDOWN_GRACE"
        ),
        "{e}"
    );
}

#[test]
fn the_charts_default_platform_file_is_the_builtin_default() {
    let shipped = asya_render::Platform::shipped().expect("the chart's platform file parses");
    assert_eq!(shipped, asya_render::Platform::default());
    assert!(
        !asya_render::api::platform::SHIPPED_PLATFORM_YAML.contains("000000000000"),
        "no made-up account id in the shipped platform"
    );
}

#[test]
fn render_writes_no_asya_name_the_sidecar_does_not_read() {
    // Every golden render's sidecar container: each ASYA_* name it gets is one the sidecar
    // reads (asya_contract::env::SIDECAR_READS), so nothing render decides is lost.
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden");
    let mut checked = 0;
    for case in std::fs::read_dir(&golden).expect("golden").flatten() {
        let Ok(text) = std::fs::read_to_string(case.path().join("expected.yaml")) else {
            continue;
        };
        // Names the user wrote (spec.sidecar.env) pass through as written; render warns.
        let inputs: String = std::fs::read_dir(case.path())
            .expect("case")
            .flatten()
            .filter(|f| f.file_name() != "expected.yaml")
            .filter_map(|f| std::fs::read_to_string(f.path()).ok())
            .collect();
        for (_, obj) in asya_render::parse_stream("expected.yaml", &text).expect("parses") {
            let pod = &obj["spec"]["template"]["spec"];
            for list in ["containers", "initContainers"] {
                for c in pod[list].as_array().into_iter().flatten() {
                    if c["name"] != "asya-sidecar" {
                        continue;
                    }
                    for e in c["env"].as_array().into_iter().flatten() {
                        let name = e["name"].as_str().unwrap_or_default();
                        if name.starts_with("ASYA_") && !inputs.contains(name) {
                            checked += 1;
                            assert!(
                                asya_contract::env::SIDECAR_READS.contains(&name),
                                "{}: render writes {name}, which the sidecar does not read",
                                case.path().display()
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 300, "{checked} sidecar env entries checked");
}

#[test]
fn routers_may_be_mounted_next_to_the_runtime_but_not_over_it() {
    // Upstream's flow compiler mounts routers at /opt/asya/routers.py (a ConfigMap subPath).
    let with_mount = |path: &str| {
        actor(&format!(
            "
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {{name: flow, namespace: demo}}
spec:
  actor: flow
  image: python:3.12-slim
  handler: routers.start
  volumes: [{{name: routers, configMap: {{name: flow-routers}}}}]
  volumeMounts: [{{name: routers, mountPath: {path}, subPath: routers.py}}]
"
        ))
    };
    let r = ok(&with_mount("/opt/asya/routers.py"), &flavors(&[]));
    let runtime = container(object(&r, "Deployment"), "asya-runtime");
    assert!(
        runtime["volumeMounts"]
            .to_string()
            .contains("/opt/asya/routers.py")
    );
    for reserved in ["/opt/asya", "/opt/asya/asya_runtime.py", "/var/run/asya/x"] {
        let e = try_render(&with_mount(reserved), &flavors(&[]), &Platform::default())
            .expect_err(reserved);
        assert!(
            e.to_string().contains("spec.volumeMounts[0].mountPath"),
            "{e}"
        );
    }
}
