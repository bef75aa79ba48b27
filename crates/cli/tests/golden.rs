//! Golden files: every `golden/<case>/` renders to exactly `expected.yaml`, or fails with
//! exactly `expected-error.txt`. Regenerate with
//! `ASYA_UPDATE_GOLDEN=1 cargo nextest run -p asya-cli --test golden`.

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
            n.ends_with(".yaml") && n != "expected.yaml" && n != "platform.yaml"
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

#[test]
fn every_golden_case_renders_byte_for_byte() {
    let root = repo_root();
    let update = std::env::var("ASYA_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root.join("golden"))
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
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
