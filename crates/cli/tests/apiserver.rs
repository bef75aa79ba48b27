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

#[test]
fn golden_workloads_and_service_accounts_are_accepted_by_the_api_server() {
    let Some(k) = kubeconfig() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&root).expect("golden") {
        let case = entry.expect("entry").path();
        let Ok(text) = std::fs::read_to_string(case.join("expected.yaml")) else {
            continue;
        };
        for (_, mut v) in asya_render::parse_stream("expected.yaml", &text).expect("golden parses")
        {
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            // Built-in kinds only (KEDA/queue CRDs may be absent); native sidecars need 1.28+.
            let native = text.contains("restartPolicy: Always");
            if matches!(
                kind.as_str(),
                "Deployment" | "StatefulSet" | "ServiceAccount"
            ) && !native
            {
                v["metadata"]["namespace"] = serde_json::json!("default");
                docs.push(v);
            }
        }
    }
    assert!(docs.len() > 20);
    let stream = asya_render::to_yaml_stream(&docs);
    let (ok, text) = kubectl(
        &k,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "--validate=false",
            "-f",
            "-",
        ],
        &stream,
    );
    assert!(ok, "{text}");
}
