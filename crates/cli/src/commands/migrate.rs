//! `asya migrate`: upstream AsyncActor files rewritten into the flat shape
//! ([`asya_render::migrate`]), with a per-file report on stderr of what changed and what
//! still needs a person.
//!
//! Without `-o`, the migrated stream goes to stdout. With `-o DIR`, each input file is
//! written to `DIR` under its path relative to the `-f` argument it came from (a file given
//! by name keeps its file name); other documents in a file (Flavors, ConfigMaps…) are kept.
//! YAML comments cannot be carried through the YAML crate, except the comment lines at the
//! top of each file, which are kept.

use std::io::Write;
use std::path::{Path, PathBuf};

use asya_render::migrate::migrate;
use asya_render::{
    ActorDocument, Diagnostics, Error, ErrorKind, SourceMap, load_documents, parse_stream,
};
use serde_json::Value;

use crate::inputs::{report, walk};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Upstream actor file or directory (walked in sorted order); repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        required = true,
        value_name = "FILE|DIR"
    )]
    pub files: Vec<PathBuf>,
    /// Write migrated files under DIR (same relative paths) instead of stdout.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// One input file and where its migrated copy goes (relative to `--out-dir`).
struct Input {
    path: PathBuf,
    relative: PathBuf,
}

pub fn run(args: &MigrateArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut errs = Diagnostics::default();
    let inputs = list_inputs(&args.files, &mut errs);
    let mut written = Vec::new();
    for input in &inputs {
        let name = input.path.display().to_string();
        let text = match std::fs::read_to_string(&input.path) {
            Ok(t) => t,
            Err(e) => {
                errs.push(Error::new(
                    ErrorKind::Parse,
                    &name,
                    "",
                    format!("expected a readable file: {e}"),
                ));
                continue;
            }
        };
        match migrate_file(&name, &text, err) {
            Ok(yaml) => written.push((input, yaml)),
            Err(e) => errs.extend(e),
        }
    }
    if !errs.is_empty() {
        return report(&errs, err);
    }
    for (input, yaml) in written {
        match &args.out_dir {
            None => {
                let _ = out.write_all(yaml.as_bytes());
            }
            Some(dir) => {
                let dest = dir.join(&input.relative);
                let res = dest
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&dest, &yaml));
                if let Err(e) = res {
                    let _ = writeln!(err, "error: {}: cannot write: {e}", dest.display());
                    return 1;
                }
                let _ = writeln!(err, "wrote {}", dest.display());
            }
        }
    }
    0
}

fn list_inputs(args: &[PathBuf], errs: &mut Diagnostics) -> Vec<Input> {
    let yaml = |p: &Path| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        )
    };
    let mut out = Vec::new();
    for root in args {
        let mut files = Vec::new();
        if let Err(e) = walk(root, &yaml, &mut files) {
            errs.push(Error::new(
                ErrorKind::Parse,
                &root.display().to_string(),
                "",
                format!("expected a readable file or directory: {e}"),
            ));
            continue;
        }
        for path in files {
            let relative = if root.is_dir() {
                path.strip_prefix(root).unwrap_or(&path).to_path_buf()
            } else {
                PathBuf::from(path.file_name().unwrap_or(path.as_os_str()))
            };
            out.push(Input { path, relative });
        }
    }
    out
}

/// The migrated stream of one file; the report goes to `err`.
fn migrate_file(name: &str, text: &str, err: &mut dyn Write) -> Result<String, Diagnostics> {
    let docs = parse_stream(name, text)?;
    let mut errs = Diagnostics::default();
    let mut out = header_comments(text);
    let _ = writeln!(err, "{name}:");
    for (source, doc) in docs {
        let is_actor = doc.get("kind").and_then(Value::as_str) == Some("AsyncActor");
        let migrated = if is_actor {
            match ActorDocument::from_value(&source, &doc).and_then(|a| migrate(&a)) {
                Ok(m) => {
                    let actor = doc.pointer("/metadata/name").and_then(Value::as_str);
                    let _ = writeln!(
                        err,
                        "  AsyncActor {}: {}",
                        actor.unwrap_or("?"),
                        if m.changed {
                            "migrated"
                        } else {
                            "already flat"
                        }
                    );
                    for c in &m.changes {
                        let _ = writeln!(err, "    changed: {c}");
                    }
                    for h in &m.needs_human {
                        let _ = writeln!(err, "    needs a human: {h}");
                    }
                    let mut doc = doc.clone();
                    if let Some(obj) = doc.as_object_mut() {
                        obj.insert("spec".into(), Value::Object(m.spec));
                    }
                    doc
                }
                Err(e) => {
                    errs.extend(e);
                    continue;
                }
            }
        } else {
            let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
            let _ = writeln!(err, "  {kind}: kept as is");
            doc
        };
        out.push_str("---\n");
        match serde_norway::to_string(&migrated) {
            Ok(s) => out.push_str(&s),
            Err(e) => errs.push(Error::new(
                ErrorKind::Parse,
                &source,
                "",
                format!("cannot serialise the migrated document: {e}"),
            )),
        }
    }
    if !errs.is_empty() {
        // Field positions for the errors found after parsing (the parse above keeps none).
        let mut sources = SourceMap::default();
        let _ = load_documents(name, text, &mut sources);
        errs.locate(&sources);
    }
    errs.into_result()?;
    Ok(out)
}

/// The comment lines a file starts with (its description), kept on the migrated copy.
fn header_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        } else if !line.trim().is_empty() {
            break;
        }
    }
    out
}
