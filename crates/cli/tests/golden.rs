//! Golden files: every `golden/<case>/` renders to exactly `expected.yaml`, or fails with
//! exactly `expected-error.txt`. Regenerate with
//! `ASYA_UPDATE_GOLDEN=1 cargo nextest run -p asya-cli --test golden`.
//!
//! Regenerating can pin a wrong render, so every case also has `expect.yaml`: its intent in
//! words plus hand-written facts that are checked against the render apart from the bytes
//! (see `golden/README.md`). Regeneration never touches `expect.yaml`.

use std::path::{Path, PathBuf};

use clap::Parser;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn render_case(root: &Path, case: &Path) -> Outcome {
    let mut args: Vec<String> = vec!["asya".into(), "render".into()];
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(case)
        .expect("case dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".yaml") && !matches!(n, "expected.yaml" | "platform.yaml" | "expect.yaml")
        })
        .collect();
    inputs.sort();
    for i in inputs {
        args.push("-f".into());
        args.push(i.display().to_string());
    }
    args.push("--flavors".into());
    args.push(root.join("flavors").display().to_string());
    if case.join("platform.yaml").exists() {
        args.push("--platform".into());
        args.push(case.join("platform.yaml").display().to_string());
    }
    let cli = asya_cli::Cli::parse_from(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = asya_cli::run(cli, &mut out, &mut err);
    // Paths in diagnostics are shown relative to the repository root.
    let prefix = format!("{}/", root.display());
    let clean = |b: Vec<u8>| String::from_utf8(b).expect("utf8").replace(&prefix, "");
    Outcome {
        code,
        stdout: clean(out),
        stderr: clean(err),
    }
}

/// Every `golden/<case>/` folder, sorted.
fn cases(root: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root.join("golden"))
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_golden_case_renders_byte_for_byte() {
    let root = repo_root();
    let update = std::env::var("ASYA_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let cases = cases(&root);
    assert!(
        cases.len() >= 20,
        "expected at least 20 golden cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let o = render_case(&root, case);
        let (expected_file, actual, other) = if o.code == 0 {
            (
                case.join("expected.yaml"),
                o.stdout.clone(),
                case.join("expected-error.txt"),
            )
        } else {
            assert!(
                o.stdout.is_empty(),
                "{name}: failed render must print nothing on stdout"
            );
            (
                case.join("expected-error.txt"),
                o.stderr.clone(),
                case.join("expected.yaml"),
            )
        };
        if update {
            std::fs::write(&expected_file, &actual).expect("write expected");
            let _ = std::fs::remove_file(&other);
            continue;
        }
        match std::fs::read_to_string(&expected_file) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}: output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
                expected_file.display()
            )),
            Err(_) => failures.push(format!(
                "{name}: {} missing (exit code {}); stderr:\n{}",
                expected_file.display(),
                o.code,
                o.stderr
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn error_cases_name_file_path_and_expectation() {
    let root = repo_root();
    for entry in std::fs::read_dir(root.join("golden")).expect("golden dir") {
        let case = entry.expect("entry").path();
        let Ok(text) = std::fs::read_to_string(case.join("expected-error.txt")) else {
            continue;
        };
        for line in text.lines().filter(|l| l.starts_with("error: ")) {
            let parts: Vec<&str> = line.trim_start_matches("error: ").splitn(3, ": ").collect();
            assert_eq!(
                parts.len(),
                3,
                "{}: not `file: path: message`: {line}",
                case.display()
            );
            assert!(
                parts[0].ends_with(".yaml") || parts[0].contains(".yaml"),
                "no file in {line}"
            );
            assert!(parts[2].contains("expected"), "no expectation in {line}");
        }
    }
}

/// One object of a render, found by `Kind/name` or `Kind`.
fn find<'a>(objects: &'a [serde_json::Value], id: &str) -> Option<&'a serde_json::Value> {
    let (kind, name) = id.split_once('/').unwrap_or((id, ""));
    objects
        .iter()
        .find(|o| o["kind"] == kind && (name.is_empty() || o["metadata"]["name"] == name))
}

fn containers(workload: &serde_json::Value) -> Vec<&serde_json::Value> {
    let spec = &workload["spec"]["template"]["spec"];
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec[k].as_array())
        .flatten()
        .collect()
}

/// The facts of one `expect.yaml` that do not hold for the render (empty = all hold).
fn check_facts(facts: &serde_json::Value, o: &Outcome) -> Vec<String> {
    use serde_json::Value;
    let mut bad = Vec::new();
    if facts["intent"].as_str().is_none_or(|s| s.trim().len() < 20) {
        bad.push("intent: expected a sentence saying what the case is for".into());
    }
    let wants_error = facts.get("errors").is_some();
    if wants_error != (o.code != 0) {
        bad.push(format!(
            "expected {}, exit code was {} (stderr: {})",
            if wants_error {
                "a failed render"
            } else {
                "a successful render"
            },
            o.code,
            o.stderr
        ));
        return bad;
    }
    for e in facts["errors"].as_array().into_iter().flatten() {
        let e = e.as_str().unwrap_or_default();
        if !o.stderr.contains(e) {
            bad.push(format!("errors: {e:?} not in stderr:\n{}", o.stderr));
        }
    }
    if wants_error {
        return bad;
    }
    let objects: Vec<Value> = asya_render::parse_stream("expected.yaml", &o.stdout)
        .expect("render output parses")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    if let Some(kinds) = facts["objects"].as_array() {
        let got: Vec<String> = objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect();
        let want: Vec<String> = kinds
            .iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect();
        if got != want {
            bad.push(format!("objects: expected {want:?}, got {got:?}"));
        }
    }
    let workloads: Vec<&Value> = objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "StatefulSet")))
        .collect();
    if let Some(t) = facts["transport"].as_str() {
        for w in &workloads {
            let sidecar = containers(w)
                .into_iter()
                .find(|c| c["name"] == "asya-sidecar");
            let got = sidecar
                .and_then(|c| c["env"].as_array())
                .and_then(|env| env.iter().find(|e| e["name"] == "ASYA_TRANSPORT"))
                .map(|e| e["value"].clone());
            if got != Some(Value::String(t.into())) {
                bad.push(format!(
                    "transport: expected ASYA_TRANSPORT={t} on {}, got {got:?}",
                    w["metadata"]["name"]
                ));
            }
        }
    }
    if let Some(r) = facts.get("replicas") {
        for w in &workloads {
            let got = w["spec"]
                .get("replicas")
                .cloned()
                .unwrap_or(Value::String("absent".into()));
            if &got != r {
                bad.push(format!(
                    "replicas: expected {r} on {}, got {got}",
                    w["metadata"]["name"]
                ));
            }
        }
    }
    // env: {container: {VAR: value | "absent"}} on the first workload; every var at most once.
    if let Some(env) = facts["env"].as_object() {
        let Some(w) = workloads.first() else {
            bad.push("env: no workload rendered".into());
            return bad;
        };
        for (cname, vars) in env {
            let Some(c) = containers(w).into_iter().find(|c| &c["name"] == cname) else {
                bad.push(format!("env: no container {cname}"));
                continue;
            };
            let list = c["env"].as_array().cloned().unwrap_or_default();
            for (var, want) in vars.as_object().into_iter().flatten() {
                let found: Vec<&Value> = list.iter().filter(|e| &e["name"] == var).collect();
                let got = match found.as_slice() {
                    [] => Value::String("absent".into()),
                    [one] => one
                        .get("value")
                        .cloned()
                        .unwrap_or_else(|| one["valueFrom"].clone()),
                    many => {
                        bad.push(format!("env: {cname} has {var} {} times", many.len()));
                        continue;
                    }
                };
                if &got != want {
                    bad.push(format!("env: {cname} {var}: expected {want}, got {got}"));
                }
            }
        }
    }
    // fields: {"Kind/name /json/pointer": value | "absent"}
    for (key, want) in facts["fields"].as_object().into_iter().flatten() {
        let (id, pointer) = key.split_once(' ').unwrap_or((key, ""));
        let Some(obj) = find(&objects, id) else {
            bad.push(format!("fields: no object {id}"));
            continue;
        };
        let got = obj
            .pointer(pointer)
            .cloned()
            .unwrap_or(Value::String("absent".into()));
        if &got != want {
            bad.push(format!("fields: {key}: expected {want}, got {got}"));
        }
    }
    bad
}

#[test]
fn every_golden_case_keeps_its_stated_intent() {
    let root = repo_root();
    let mut failures = Vec::new();
    let cases = cases(&root);
    for case in &cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let Ok(text) = std::fs::read_to_string(case.join("expect.yaml")) else {
            failures.push(format!(
                "{name}: expect.yaml missing (state the case's intent)"
            ));
            continue;
        };
        let facts: serde_json::Value = match asya_render::parse_stream("expect.yaml", &text) {
            Ok(mut d) if d.len() == 1 => d.remove(0).1,
            other => {
                failures.push(format!(
                    "{name}: expect.yaml is not one YAML mapping: {other:?}"
                ));
                continue;
            }
        };
        let o = render_case(&root, case);
        for b in check_facts(&facts, &o) {
            failures.push(format!("{name}: {b}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fact(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
