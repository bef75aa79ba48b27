//! The docs cannot rot: every fenced block opened with ```` ```bash runnable ```` in
//! `docs/*.md` and `README.md`, and every example line of `asya --help` and of each
//! subcommand's `--help`, runs with the real `asya` binary first on PATH, under
//! `bash -e -o pipefail`, in a scratch copy of the repository's inputs (examples/,
//! flavors/, docs/, charts/asya/files/) committed as branch `main` of a fresh git
//! repository. Any non-zero exit fails the test with the block, its file and its output.
//! A plain fenced block right after a runnable one is the output the doc shows for it: each
//! of its lines must be a line of what the block printed (`…` ends a line early or stands
//! for lines left out).
//!
//! Blocks of one document run in order in one copy (a later block may read what an
//! earlier one wrote); each document gets its own copy. A command that is meant to exit
//! non-zero is written `cmd || echo "exit $?"` in the doc, so the reader sees the status.
//! Blocks opened with ```` ```bash cluster ```` need an API server and are walked by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("spawn");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A scratch directory laid out like the repository root, with `main` committed.
fn scratch() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = repo_root();
    for dir in ["examples", "flavors", "docs", "charts/asya/files"] {
        let target = tmp.path().join(dir);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        let (ok, out) = run(Command::new("cp")
            .arg("-R")
            .arg(root.join(dir))
            .arg(&target));
        assert!(ok, "cp {dir}: {out}");
    }
    std::fs::create_dir_all(tmp.path().join("home")).expect("home");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=docs",
            "-c",
            "user.email=docs@example.com",
            "commit",
            "-q",
            "-m",
            "docs",
        ],
    ] {
        let (ok, out) = run(Command::new("git").args(args).current_dir(tmp.path()));
        assert!(ok, "git {args:?}: {out}");
    }
    tmp
}

/// Runs `script` with bash in `dir`, the `asya` under test first on PATH.
fn bash(dir: &Path, script: &str) -> (bool, String) {
    let bin = Path::new(env!("CARGO_BIN_EXE_asya"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir.join("home"))
        .env("GIT_AUTHOR_NAME", "docs")
        .env("GIT_AUTHOR_EMAIL", "docs@example.com")
        .env("GIT_COMMITTER_NAME", "docs")
        .env("GIT_COMMITTER_EMAIL", "docs@example.com")
        .env_remove("ASYA_PLATFORM")
        .env_remove("KUBECONFIG"))
}

/// A fenced block: its first line, info string and body, and whether only blank lines
/// separate it from the previous block (an output block right after a command block).
struct Fence {
    line: usize,
    info: Vec<String>,
    body: String,
    adjacent: bool,
}

fn fences(text: &str) -> Vec<Fence> {
    let mut out: Vec<Fence> = Vec::new();
    let mut current: Option<Fence> = None;
    let mut adjacent = false;
    for (i, line) in text.lines().enumerate() {
        if let Some(f) = &mut current {
            if line.trim_start().starts_with("```") {
                out.extend(current.take());
                adjacent = true;
            } else {
                f.body.push_str(line);
                f.body.push('\n');
            }
            continue;
        }
        match line.trim_start().strip_prefix("```") {
            Some(info) => {
                current = Some(Fence {
                    line: i + 1,
                    info: info.split_whitespace().map(String::from).collect(),
                    body: String::new(),
                    adjacent,
                });
            }
            None if line.trim().is_empty() => {}
            None => adjacent = false,
        }
    }
    out
}

/// The blocks tagged `bash <tag>`, each with the plain block that follows it, if any (the
/// output the doc shows for it).
fn blocks(text: &str, tag: &str) -> Vec<(usize, String, Option<String>)> {
    let fences = fences(text);
    let mut out = Vec::new();
    for (i, f) in fences.iter().enumerate() {
        if f.info.first().map(String::as_str) == Some("bash") && f.info.iter().any(|t| t == tag) {
            let shown = fences
                .get(i + 1)
                .filter(|n| n.adjacent && n.info.is_empty())
                .map(|n| n.body.clone());
            out.push((f.line, f.body.clone(), shown));
        }
    }
    out
}

/// Lines of `shown` missing from `actual`. A line with `…` stands for any line starting with
/// what precedes the `…`; a line that is only `…` stands for lines left out.
fn missing_lines(shown: &str, actual: &str) -> Vec<String> {
    let actual: Vec<&str> = actual.lines().map(str::trim_end).collect();
    shown
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && *l != "…")
        .filter(|l| match l.split_once('…') {
            Some((head, _)) => !actual.iter().any(|a| a.starts_with(head)),
            None => !actual.contains(l),
        })
        .map(String::from)
        .collect()
}

fn docs() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.push(root.join("README.md"));
    files.sort();
    files
}

#[test]
fn every_runnable_block_of_the_docs_exits_zero_and_prints_what_the_doc_shows() {
    let mut ran = 0;
    let mut failures = Vec::new();
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).expect("read doc");
        let runnable = blocks(&text, "runnable");
        if runnable.is_empty() {
            continue;
        }
        let dir = scratch();
        for (line, script, shown) in runnable {
            ran += 1;
            let (ok, out) = bash(dir.path(), &script);
            if !ok {
                failures.push(format!(
                    "{}:{line}: block failed\n{script}--- output ---\n{out}",
                    doc.display()
                ));
                continue;
            }
            let missing = shown.map(|s| missing_lines(&s, &out)).unwrap_or_default();
            if !missing.is_empty() {
                failures.push(format!(
                    "{}:{line}: the output shown after the block is not what it prints; missing lines:\n{}\n--- output ---\n{out}",
                    doc.display(),
                    missing.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The guides hold this many; fewer means a block lost its `runnable` tag.
    assert!(
        ran >= 12,
        "expected at least 12 runnable blocks, found {ran}"
    );
}

/// `asya --help` and each subcommand's `--help`: the indented lines after `Example`.
fn help_examples() -> Vec<(String, String)> {
    let asya = env!("CARGO_BIN_EXE_asya");
    let mut out = Vec::new();
    let mut subcommands = vec![
        "",
        "render",
        "validate",
        "explain",
        "crd",
        "completions",
        "krm",
        "diff",
    ];
    // Only in builds with the controller feature (the default); the render-only
    // build (`--no-default-features`) has no such subcommand.
    if cfg!(feature = "controller") {
        subcommands.push("controller");
    }
    for sub in subcommands {
        let mut cmd = Command::new(asya);
        if !sub.is_empty() {
            cmd.arg(sub);
        }
        let (ok, text) = run(cmd.arg("--help"));
        assert!(ok, "asya {sub} --help: {text}");
        let mut in_examples = false;
        for line in text.lines() {
            if line.starts_with("Example") {
                in_examples = true;
                continue;
            }
            if in_examples && line.starts_with("  ") {
                out.push((sub.to_string(), line.trim().to_string()));
            } else if !line.trim().is_empty() {
                in_examples = false;
            }
        }
    }
    out
}

#[test]
fn every_help_example_runs() {
    let examples = help_examples();
    assert!(
        examples.len() >= 15,
        "expected at least 15 help examples, found {examples:?}"
    );
    let dir = scratch();
    let mut ran = 0;
    let mut failures = Vec::new();
    for (sub, line) in &examples {
        // These need a cluster (or, for `asya controller`, run until stopped); the
        // controller and API-server tests cover them.
        if line.contains("kubectl apply")
            || line.contains("kubectl kustomize")
            || line.contains("--kubeconfig")
        {
            continue;
        }
        ran += 1;
        let (ok, out) = bash(dir.path(), line);
        if !ok {
            failures.push(format!("asya {sub} --help: `{line}` failed:\n{out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        ran >= 12,
        "expected at least 12 runnable help examples, ran {ran}"
    );
}

#[test]
fn blocks_finds_only_tagged_bash_blocks_and_their_output() {
    let text = "a\n```bash runnable\nasya crd\nasya render -f x\n```\n\n```\nout 1\n```\n```bash\nnot me\n```\n```bash cluster\nkubectl get asyas\n```\ntext\n```\nnot its output\n```\n";
    assert_eq!(
        blocks(text, "runnable"),
        vec![(
            2,
            "asya crd\nasya render -f x\n".to_string(),
            Some("out 1\n".to_string())
        )]
    );
    assert_eq!(
        blocks(text, "cluster"),
        vec![(13, "kubectl get asyas\n".to_string(), None)]
    );
}

#[test]
fn shown_output_must_appear_in_the_actual_output() {
    let actual = "a: 1\nlong line here\nb: 2\n";
    assert!(missing_lines("a: 1\n…\nlong li…\nb: 2\n", actual).is_empty());
    assert_eq!(missing_lines("a: 1\nc: 3\n", actual), ["c: 3"]);
    assert_eq!(missing_lines("other…\n", actual), ["other…"]);
}

/// Metric names registered in `file` (`Registry::with_prefix("p")` + `register("name", …)`).
fn registered(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(file)).expect("metrics source");
    let quoted_after = |s: &str, at: usize| -> Option<String> {
        let rest = &s[at..];
        let start = rest.find('"')? + 1;
        let end = rest[start..].find('"')?;
        Some(rest[start..start + end].to_string())
    };
    let mut names = Vec::new();
    let mut prefix = String::new();
    let mut i = 0;
    while i < text.len() {
        let next_prefix = text[i..].find("with_prefix(").map(|p| p + i);
        let next_reg = text[i..].find("registry.register(").map(|p| p + i);
        match (next_prefix, next_reg) {
            (Some(p), r) if r.is_none_or(|r| p < r) => {
                prefix = quoted_after(&text, p).expect("prefix literal");
                i = p + 1;
            }
            (_, Some(r)) => {
                let name = quoted_after(&text, r).expect("metric name literal");
                names.push(format!("{prefix}_{name}"));
                i = r + 1;
            }
            _ => break,
        }
    }
    names
}

#[test]
fn metrics_reference_lists_exactly_the_registered_metrics() {
    let doc = std::fs::read_to_string(repo_root().join("docs/metrics.md")).expect("metrics.md");
    let mut names = registered("crates/sidecar/src/metrics.rs");
    names.extend(registered("crates/controller/src/metrics.rs"));
    names.extend(registered("crates/gateway/src/metrics.rs"));
    assert!(
        names.len() >= 20,
        "expected the sidecar's, controller's and gateway's metrics, found {names:?}"
    );
    let missing: Vec<&String> = names.iter().filter(|n| !doc.contains(n.as_str())).collect();
    assert!(
        missing.is_empty(),
        "docs/metrics.md does not mention {missing:?}"
    );
    // Every asya_ metric the doc names is registered (suffixes of counters and histograms aside).
    let mut unknown = Vec::new();
    for word in doc.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if !(word.starts_with("asya_actor_")
            || word.starts_with("asya_controller_")
            || word.starts_with("asya_gateway_"))
            || word.ends_with('_')
        {
            continue;
        }
        let base = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| word.strip_suffix(s))
            .unwrap_or(word);
        if !names.iter().any(|n| n == base || n == word) {
            unknown.push(word.to_string());
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/metrics.md names unregistered metrics {unknown:?}"
    );
}

#[test]
fn status_guide_names_every_phase_and_reason_the_controller_sets() {
    let doc = std::fs::read_to_string(repo_root().join("docs/status.md")).expect("status.md");
    let mut words = Vec::new();
    for file in [
        "crates/controller/src/failure.rs",
        "crates/controller/src/status.rs",
    ] {
        let text = std::fs::read_to_string(repo_root().join(file)).expect("controller source");
        // Phases, condition types and reasons are CamelCase string literals; tests excluded.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for lit in string_literals(code) {
            let lit = lit.as_str();
            let camel = lit.len() > 1
                && lit.starts_with(|c: char| c.is_ascii_uppercase())
                && lit.chars().all(|c| c.is_ascii_alphabetic());
            if camel && !words.contains(&lit.to_string()) {
                words.push(lit.to_string());
            }
        }
    }
    assert!(
        words.len() >= 30,
        "expected the phases and reasons, found {words:?}"
    );
    let missing: Vec<&String> = words
        .iter()
        .filter(|w| !doc.contains(&format!("`{w}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/status.md does not name {missing:?}"
    );
}

/// The string literals of Rust source: escapes and the char literal `'"'` handled; enough
/// for the controller's status code (no raw strings there).
fn string_literals(code: &str) -> Vec<String> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            '\'' if b.get(i + 1) == Some(&'"') && b.get(i + 2) == Some(&'\'') => i += 3,
            '\'' if b.get(i + 1) == Some(&'\\') && b.get(i + 2) == Some(&'"') => i += 4,
            '/' if b.get(i + 1) == Some(&'/') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    if let Some(c) = b.get(i) {
                        s.push(*c);
                    }
                    i += 1;
                }
                out.push(s);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn string_literals_skips_escapes_comments_and_char_quotes() {
    let code = "let a = \"One\"; // \"Not\"\nlet q = '\"'; f(\"x \\\"y\\\" z\", \"Two\");";
    assert_eq!(string_literals(code), ["One", "x \"y\" z", "Two"]);
}
