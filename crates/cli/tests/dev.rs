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
    assert_eq!(
        done[0]["route"]["prev"],
        json!(["normalize", "tokenize", "count"])
    );
    (done[0]["payload"].clone(), stdout)
}

#[test]
fn example_pipeline_gives_the_same_result_on_memory_rabbitmq_and_sqs() {
    let ns = unique("dev");
    let (mem, stdout) = run_example(&[], &ns);
    let expected =
        json!({"text": "hello world, hello", "words": 3, "counts": {"hello": 2, "world": 1}});
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

    let sqs = std::env::var("ASYA_TEST_AWS_ENDPOINT").expect("ASYA_TEST_AWS_ENDPOINT (moto)");
    let (on_sqs, _) = run_example(&["--transport", "sqs", "--sqs-endpoint", &sqs], &ns);
    assert_eq!(on_sqs, mem);
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
            "dev",
            "-f",
            d,
            "--path",
            d,
            "--results",
            res.to_str().unwrap(),
            "--send",
            r#"{"text": "a b c"}"#,
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
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
            "dev",
            "-f",
            d,
            "--path",
            d,
            "--results",
            res.to_str().unwrap(),
            "--send",
            r#"{"why": "broken"}"#,
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("failed at bad"), "{stdout}");
    assert!(stdout.contains("ValueError: no good: broken"), "{stdout}");
    assert!(
        stdout.contains("Traceback (most recent call last)"),
        "{stdout}"
    );
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
            "dev",
            "-f",
            d,
            "--path",
            d,
            "--results",
            res.to_str().unwrap(),
            "--route",
            "a,nope",
            "--send",
            "{}",
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

#[test]
fn a_pipeline_file_beside_the_actors_gives_the_route() {
    // File order is a, b; the pipeline file says b then a.
    let dir = project(
        &[("a", "handlers.a"), ("b", "handlers.b")],
        "def a(p):\n    return {'seen': p['seen'] + ['a']}\n\n\
         def b(p):\n    return {'seen': p['seen'] + ['b']}\n",
    );
    let d = dir.path().to_str().unwrap();
    let pipeline = dir.path().join("pipeline.yaml");
    // Results outside the walked directory: a results file there would be read as an input.
    let elsewhere = tempfile::tempdir().unwrap();
    let res = elsewhere.path().join("results");
    let dev = |pipeline_text: &str, send: &str| {
        std::fs::write(&pipeline, pipeline_text).unwrap();
        let (p, r) = (pipeline.to_str().unwrap(), res.to_str().unwrap());
        let args = [
            "dev",
            "-f",
            d,
            "--pipeline",
            p,
            "--path",
            d,
            "--results",
            r,
            "--send",
            send,
        ];
        let out = asya(&args, dir.path());
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    let (code, stdout, stderr) = dev(
        "# the order payloads travel\nroute:\n  - b\n  - a\n",
        r#"{"seen": []}"#,
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let done = results(&res, "succeeded");
    assert_eq!(done.len(), 1, "{stdout}");
    assert_eq!(done[0]["payload"]["seen"], json!(["b", "a"]));
    assert_eq!(done[0]["route"]["prev"], json!(["b", "a"]));
    std::fs::remove_dir_all(&res).unwrap();

    // A bad pipeline file exits 2 naming file:line:col and the field, before anything runs.
    let rejected = |pipeline_text: &str, want: &str| {
        let (code, _, stderr) = dev(pipeline_text, "{}");
        assert_eq!(code, Some(2), "{stderr}");
        let want = format!("{}:{want}", pipeline.display());
        assert!(stderr.contains(&want), "{stderr}");
        assert!(!res.exists(), "nothing ran");
    };
    // A name that is not an actor of the files.
    rejected(
        "route:\n  - b\n  - nope\n",
        "3:5: route[1]: expected an actor of the given files (a, b), found \"nope\"",
    );
    // A typo in the file's own fields.
    rejected(
        "rout: [a]\n",
        "1:1: rout: unknown field, expected only `route`",
    );
}

#[test]
fn retry_delays_of_a_resiliency_policy_are_kept_locally_on_memory_and_rabbitmq() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flaky.yaml"),
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata:\n  name: flaky\nspec:\n  actor: flaky\n  image: python:3.12-slim\n  handler: handlers.flaky\n  resiliency:\n    policies:\n      default:\n        maxAttempts: 3\n        backoff: constant\n        initialDelay: 400ms\n",
    )
    .unwrap();
    // Fails twice, then succeeds; every call's time goes to calls.log.
    std::fs::write(
        dir.path().join("handlers.py"),
        "import time\n\ndef flaky(p):\n    with open('calls.log', 'a') as f:\n        f.write(f'{time.monotonic()}\\n')\n    with open('calls.log') as f:\n        n = len(f.read().split())\n    if n % 3:\n        raise RuntimeError(f'attempt {n % 3} fails')\n    return {'ok': True}\n",
    )
    .unwrap();
    let url = std::env::var("ASYA_TEST_RABBITMQ_URL").expect("ASYA_TEST_RABBITMQ_URL");
    let ns = unique("retry");
    for transport in [
        vec![],
        vec!["--transport", "rabbitmq", "--rabbitmq-url", &url],
    ] {
        let _ = std::fs::remove_file(dir.path().join("calls.log"));
        let d = dir.path().to_str().unwrap();
        // Under the actors' directory: `-f` does not walk hidden directories.
        let res = dir.path().join(format!(".asya/results{}", transport.len()));
        let mut args = vec![
            "dev",
            "-f",
            d,
            "--path",
            d,
            "-n",
            &ns,
            "--results",
            res.to_str().unwrap(),
            "--send",
            "{}",
        ];
        args.extend_from_slice(&transport);
        let out = asya(&args, dir.path());
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{transport:?}\n{stdout}\n{}",
            text(&out.stderr)
        );
        assert!(stdout.contains("retries: 2"), "{stdout}");
        assert_eq!(stdout.matches("flaky (retry)").count(), 2, "{stdout}");
        let calls: Vec<f64> = std::fs::read_to_string(dir.path().join("calls.log"))
            .unwrap()
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(calls.len(), 3, "{transport:?}");
        for w in calls.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                (0.4..3.0).contains(&gap),
                "{transport:?}: {gap:.3}s between attempts, policy says 400ms"
            );
        }
        assert_eq!(results(&res, "succeeded").len(), 1);
    }
}

#[test]
fn watch_restarts_a_changed_handler_without_losing_queued_messages() {
    use std::io::{BufRead, BufReader, Write};
    let dir = project(
        &[("slow", "handlers.slow")],
        "import time\n\ndef slow(p):\n    time.sleep(0.3)\n    return {'n': p['n'], 'v': 1}\n",
    );
    let d = dir.path().to_str().unwrap().to_string();
    let res = dir.path().join("results");
    let mut child = Command::new(env!("CARGO_BIN_EXE_asya"))
        .args([
            "dev",
            "-f",
            &d,
            "--path",
            &d,
            "--watch",
            "--results",
            res.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let stdout = child.stdout.take().unwrap();
    let collected = std::thread::spawn(move || {
        let mut s = String::new();
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    });
    let mut stdin = child.stdin.take().unwrap();
    for n in 0..8 {
        writeln!(stdin, "{{\"n\": {n}}}").unwrap();
    }
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while results(&res, "succeeded").is_empty() {
        assert!(Instant::now() < deadline, "no result within a minute");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Messages are still queued behind the slow handler: change it now.
    std::fs::write(
        dir.path().join("handlers.py"),
        "import time\n\ndef slow(p):\n    time.sleep(0.05)\n    return {'n': p['n'], 'v': 'two'}\n",
    )
    .unwrap();
    let mut restarted = false;
    while !restarted {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no runtime restart reported");
        restarted = line.contains("handler changed; runtime restarted");
    }
    drop(stdin);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "asya dev did not exit after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = collected.join().unwrap();
    assert!(status.success(), "{out}");
    let done = results(&res, "succeeded");
    let mut ns: Vec<u64> = done
        .iter()
        .map(|e| e["payload"]["n"].as_u64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(
        ns,
        (0..8).collect::<Vec<_>>(),
        "every queued message made it: {out}"
    );
    let versions: Vec<&Value> = done.iter().map(|e| &e["payload"]["v"]).collect();
    assert!(versions.contains(&&json!(1)), "{versions:?}");
    assert!(versions.contains(&&json!("two")), "{versions:?}");
    assert!(out.contains("8 sent, 8 succeeded, 0 failed"), "{out}");
}

#[test]
fn ctrl_c_stops_the_input_and_finishes_the_messages_in_flight() {
    use std::io::Write;
    let dir = project(
        &[("slow", "handlers.slow")],
        "import time\n\ndef slow(p):\n    open(f\"started-{p['n']}\", 'w').close()\n    time.sleep(0.8)\n    return p\n",
    );
    let d = dir.path().to_str().unwrap().to_string();
    let res = dir.path().join(".asya/results");
    let mut child = Command::new(env!("CARGO_BIN_EXE_asya"))
        .args([
            "dev",
            "-f",
            &d,
            "--path",
            &d,
            "--results",
            res.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{{\"n\": 1}}\n{{\"n\": 2}}").unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("started-1").exists() {
        assert!(Instant::now() < deadline, "the handler never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    // stdin stays open: only Ctrl-C ends the run.
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("asya dev did not exit after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("Ctrl-C: finishing the"),
        "{}",
        text(&out.stderr)
    );
    let mut done: Vec<u64> = results(&res, "succeeded")
        .iter()
        .map(|e| e["payload"]["n"].as_u64().unwrap())
        .collect();
    done.sort();
    assert_eq!(done, [1, 2], "both messages in flight finished: {stdout}");
}
