//! The CRDs and every golden manifest are accepted by a real Kubernetes 1.20 API server
//! (server-side dry run, nothing is persisted). Needs `ASYA_TEST_KUBECONFIG` (set by
//! `tests/run.sh`) and `kubectl`; skips with a message otherwise.

use std::path::Path;

mod common;
use common::kubectl;

use clap::Parser;

fn kubeconfig() -> Option<String> {
    let k = std::env::var("ASYA_TEST_KUBECONFIG")
        .ok()
        .filter(|k| Path::new(k).exists());
    if k.is_none() {
        eprintln!("skipped: ASYA_TEST_KUBECONFIG is not set (run via tests/run.sh)");
    }
    k
}

fn asya(args: &[&str]) -> String {
    let cli = asya_cli::Cli::parse_from(std::iter::once("asya").chain(args.iter().copied()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = asya_cli::run(cli, &mut out, &mut err);
    assert_eq!(
        code,
        0,
        "asya {args:?} failed: {}",
        String::from_utf8_lossy(&err)
    );
    String::from_utf8(out).expect("utf8")
}

#[test]
fn crds_are_accepted_by_a_1_20_api_server() {
    let Some(k) = kubeconfig() else { return };
    let crds = asya(&["crd"]);
    let (ok, text) = kubectl(
        &k,
        &["create", "--dry-run=server", "--validate=false", "-f", "-"],
        &crds,
    );
    // AlreadyExists means another test installed them: the server accepted them then.
    assert!(ok || text.contains("AlreadyExists"), "{text}");
}

/// Installs KEDA's real CRDs (the files the render checks against) and waits until served.
/// Their 1.25+ `x-kubernetes-validations` are removed first: a 1.20 server has no such field.
fn install_keda_crds(k: &str) {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("x-kubernetes-validations");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/k8s/crds/keda");
    let mut crds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("keda crds") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read crd");
        for (_, mut v) in
            asya_render::parse_stream(&path.display().to_string(), &text).expect("crd")
        {
            strip(&mut v);
            crds.push(v);
        }
    }
    let (ok, text) = kubectl(
        k,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=asya-cli-tests",
            "-f",
            "-",
        ],
        &asya_render::to_yaml_stream(&crds),
    );
    assert!(ok, "{text}");
    let (ok, text) = kubectl(
        k,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/scaledobjects.keda.sh",
            "crd/triggerauthentications.keda.sh",
        ],
        "",
    );
    assert!(ok, "{text}");
}

#[test]
fn every_golden_object_is_accepted_by_the_api_server() {
    let Some(k) = kubeconfig() else { return };
    install_keda_crds(&k);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden");
    let mut docs = Vec::new();
    let mut skipped = Vec::new();
    let mut cases = 0;
    for entry in std::fs::read_dir(&root).expect("golden") {
        let case = entry.expect("entry").path();
        let Ok(text) = std::fs::read_to_string(case.join("expected.yaml")) else {
            continue;
        };
        cases += 1;
        // Native sidecars (`restartPolicy` on an init container) need Kubernetes 1.28+.
        let native = text.contains("restartPolicy: Always");
        for (_, mut v) in asya_render::parse_stream("expected.yaml", &text).expect("golden parses")
        {
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            // Queue objects belong to operators whose CRDs we do not ship (ACK, RabbitMQ's).
            let workload = matches!(kind.as_str(), "Deployment" | "StatefulSet");
            if kind == "Queue" || (native && workload) {
                skipped.push(format!("{}: {kind}", case.display()));
                continue;
            }
            // Each case in its own namespace-free slot: names may repeat across cases.
            let name = format!(
                "{}-{}",
                v["metadata"]["name"].as_str().unwrap_or_default(),
                docs.len()
            );
            v["metadata"]["name"] = serde_json::json!(name);
            v["metadata"]["namespace"] = serde_json::json!("default");
            docs.push(v);
        }
    }
    assert!(cases >= 20, "{cases} golden cases");
    assert!(
        docs.iter().any(|d| d["kind"] == "ScaledObject")
            && docs.iter().any(|d| d["kind"] == "TriggerAuthentication"),
        "KEDA objects are part of the dry run"
    );
    eprintln!("dry run: {} objects; skipped: {skipped:?}", docs.len());
    let stream = asya_render::to_yaml_stream(&docs);
    let (ok, text) = kubectl(
        &k,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "-f",
            "-",
        ],
        &stream,
    );
    assert!(ok, "{text}");
}
