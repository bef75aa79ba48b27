//! `asya dev` end to end: the real `asya` binary, real Python runtimes over
//! real Unix sockets, the in-memory transport and the real RabbitMQ broker
//! (ASYA_TEST_RABBITMQ_URL, from `tests/servers/up.sh`).
#![cfg(feature = "dev")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn asya(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asya"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run asya")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The envelopes x-sink/x-sump wrote under `results/<kind>/`.
fn results(dir: &Path, kind: &str) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(kind))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .collect()
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}x{}", std::process::id(), nanos % 1_000_000_000)
}

/// A directory with the given actor YAML and `handlers.py`.
fn project(actors: &[(&str, &str)], handlers: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, handler)) in actors.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("{i}-{name}.yaml")),
            format!(
                "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata:\n  name: {name}\nspec:\n  actor: {name}\n  image: python:3.12-slim\n  handler: {handler}\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("handlers.py"), handlers).unwrap();
    dir
}

/// Runs the example pipeline with the given transport flags; returns the
/// final payload and the output.
fn run_example(transport: &[&str], ns: &str) -> (Value, String) {
    let example = root().join("examples/text-pipeline");
    let out_dir = tempfile::tempdir().unwrap();
    let res = out_dir.path().to_str().unwrap().to_string();
    let ex = example.to_str().unwrap().to_string();
    let mut args = vec![
        "dev",
        "-f",
        &ex,
        "--path",
        &ex,
        "-n",
        ns,
        "--results",
        &res,
        "--send",
        r#"{"text": "Hello  World, hello"}"#,
    ];
    args.extend_from_slice(transport);
    let out = asya(&args, &root());
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    let done = results(out_dir.path(), "succeeded");
    assert_eq!(done.len(), 1, "{stdout}");
    assert_eq!(done[0]["status"]["phase"], "succeeded");
    assert_eq!(done[0]["route"]["prev"], json!(["normalize", "tokenize", "count"]));
    (done[0]["payload"].clone(), stdout)
}

#[test]
fn example_pipeline_gives_the_same_result_on_memory_and_on_rabbitmq() {
    let ns = unique("dev");
    let (mem, stdout) = run_example(&[], &ns);
    let expected = json!({"text": "hello world, hello", "words": 3, "counts": {"hello": 2, "world": 1}});
    assert_eq!(mem, expected);
    // Each hop is printed, in route order, then the final envelope.
    let hop = |a: &str| {
        stdout
            .lines()
            .position(|l| l.contains(&format!(" {a} ")) && l.contains("frames out: 1"))
            .unwrap_or_else(|| panic!("no hop line for {a} in\n{stdout}"))
    };
    assert!(hop("normalize") < hop("tokenize") && hop("tokenize") < hop("count"));
    let done = stdout.find("succeeded\n{").expect("final envelope printed");
    assert!(done > hop("count"));

    let Ok(url) = std::env::var("ASYA_TEST_RABBITMQ_URL") else {
        panic!("ASYA_TEST_RABBITMQ_URL unset: run `eval \"$(bash tests/servers/up.sh)\"`");
    };
    let (rabbit, _) = run_example(&["--transport", "rabbitmq", "--rabbitmq-url", &url], &ns);
    assert_eq!(rabbit, mem);
}

#[test]
fn a_generator_handler_fans_out_and_every_child_reaches_x_sink() {
    let dir = project(
        &[("split", "handlers.split"), ("shout", "handlers.shout")],
        "def split(p):\n    for w in p['text'].split():\n        yield {'word': w}\n\n\
         def shout(p):\n    return {'word': p['word'].upper()}\n",
    );
    let d = dir.path().to_str().unwrap();
    let res = dir.path().join("results");
    let out = asya(
        &[
            "dev", "-f", d, "--path", d, "--results", res.to_str().unwrap(),
            "--send", r#"{"text": "a b c"}"#,
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("frames out: 3"), "{stdout}");
    let mut words: Vec<String> = results(&res, "succeeded")
        .iter()
        .map(|e| e["payload"]["word"].as_str().unwrap().to_string())
        .collect();
    words.sort();
    assert_eq!(words, ["A", "B", "C"]);
    assert!(stdout.contains("1 sent, 3 succeeded, 0 failed"), "{stdout}");
}

#[test]
fn a_raising_handler_ends_failed_with_its_traceback_printed() {
    let dir = project(
        &[("ok", "handlers.ok"), ("bad", "handlers.bad")],
        "def ok(p):\n    return p\n\n\
         def bad(p):\n    raise ValueError('no good: ' + p['why'])\n",
    );
    let d = dir.path().to_str().unwrap();
    let res = dir.path().join("results");
    let out = asya(
        &[
            "dev", "-f", d, "--path", d, "--results", res.to_str().unwrap(),
            "--send", r#"{"why": "broken"}"#,
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("failed at bad"), "{stdout}");
    assert!(stdout.contains("ValueError: no good: broken"), "{stdout}");
    assert!(stdout.contains("Traceback (most recent call last)"), "{stdout}");
    assert!(stdout.contains("handlers.py"), "{stdout}");
    let failed = results(&res, "failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["status"]["phase"], "failed");
    assert_eq!(failed[0]["status"]["error"]["type"], "ValueError");
    // x-sink forwards failures to x-sump, which stores them too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while results(&res, "sump").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(results(&res, "sump").len(), 1);
    assert!(results(&res, "succeeded").is_empty());
}

#[test]
fn a_route_naming_an_unknown_actor_fails_before_anything_runs() {
    let dir = project(&[("a", "handlers.a")], "def a(p):\n    return p\n");
    let d = dir.path().to_str().unwrap();
    let res = dir.path().join("results");
    let started = Instant::now();
    let out = asya(
        &[
            "dev", "-f", d, "--path", d, "--results", res.to_str().unwrap(),
            "--route", "a,nope", "--send", "{}",
        ],
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(r#"--route: entry 1 is "nope", expected an actor of the given files (a)"#),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(!res.exists(), "nothing ran, nothing was written");
    assert!(started.elapsed() < Duration::from_secs(10));
}
