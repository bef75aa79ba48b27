//! The `asya` command line end to end (in-process): exit codes, formats, subcommands.

use std::path::Path;

use clap::Parser;

fn root() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .display()
        .to_string()
}

fn asya(args: &[&str]) -> (i32, String, String) {
    let cli = asya_cli::Cli::try_parse_from(std::iter::once("asya").chain(args.iter().copied()))
        .expect("args");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = asya_cli::run(cli, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("utf8"),
        String::from_utf8(err).expect("utf8"),
    )
}

#[test]
fn render_examples_prints_a_yaml_stream_of_valid_objects() {
    let (code, out, err) = asya(&["render", "-f", &format!("{}/examples", root())]);
    assert_eq!(code, 0, "{err}");
    let docs = asya_render::parse_stream("out", &out).expect("valid YAML");
    assert!(docs.len() >= 10);
    for (_, d) in docs {
        assert!(
            d["apiVersion"].is_string()
                && d["kind"].is_string()
                && d["metadata"]["name"].is_string()
        );
    }
}

#[test]
fn render_json_output_is_a_kubernetes_list() {
    let (code, out, _) = asya(&[
        "render",
        "-f",
        &format!("{}/examples/echo.yaml", root()),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(3));
    // byte for byte serde_json's pretty form (the output is written without serde_json)
    assert_eq!(out, serde_json::to_string_pretty(&v).expect("json") + "\n");
}

#[test]
fn validate_exits_non_zero_and_prints_nothing_on_stdout_for_invalid_input() {
    let bad = format!("{}/golden/many-errors-at-once/actor.yaml", root());
    let (code, out, err) = asya(&["validate", "-f", &bad]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("6 error(s)"), "{err}");
    let (code, out, _) = asya(&["validate", "-f", &format!("{}/examples", root())]);
    assert_eq!(code, 0);
    assert!(out.starts_with("valid:"));
}

#[test]
fn missing_input_file_is_a_diagnostic_not_a_panic() {
    let (code, _, err) = asya(&["render", "-f", "/nonexistent/actor.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/actor.yaml"), "{err}");
}

#[test]
fn explain_shows_flavor_provenance() {
    let r = root();
    let (code, out, err) = asya(&[
        "explain",
        "-f",
        &format!("{r}/golden/two-flavors-merge/actor.yaml"),
        "--flavors",
        &format!("{r}/flavors"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("# flavor gpu-a100")
            && out.contains("# flavor llm-resilient")
            && out.contains("# default")
    );
}

#[test]
fn crd_and_completions_print_something_usable() {
    let (code, out, _) = asya(&["crd", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["items"][0]["metadata"]["name"], "asyncactors.asya.sh");
    assert_eq!(v["items"][1]["metadata"]["name"], "flavors.asya.sh");
    let (code, out, _) = asya(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(out.contains("asya") && out.contains("render"));
}

#[test]
fn duplicate_actors_across_files_are_an_error() {
    let r = root();
    let f = format!("{r}/examples/echo.yaml");
    let (code, _, err) = asya(&["render", "-f", &f, "-f", &f]);
    assert_eq!(code, 1);
    assert!(
        err.contains("expected a unique actor per namespace"),
        "{err}"
    );
}
