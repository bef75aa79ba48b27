//! Reading inputs: files, directories (sorted walk), stdin, flavors, platform, compositions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use asya_render::{
    ActorDocument, Compositions, Diagnostics, Document, Error, ErrorKind, FlavorLibrary, Platform,
    SourceMap, load_documents,
};

use crate::cli::InputArgs;

/// Everything a render needs, read from disk.
pub struct Inputs {
    pub actors: Vec<ActorDocument>,
    /// Field positions of every document read, to locate errors found later.
    pub sources: SourceMap,
    pub flavors: FlavorLibrary,
    pub platform: Platform,
    pub compositions: Compositions,
}

fn io_error(path: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Parse,
        path,
        "",
        format!("expected a readable file: {e}"),
    )
}

fn is_manifest(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Files under `path` (itself if a file), sorted, recursing into directories.
pub fn walk(
    path: &Path,
    filter: &dyn Fn(&Path) -> bool,
    out: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                // Hidden directories (.git, .github, `asya dev`'s .asya/results) hold no actors.
                let hidden = e
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if !hidden {
                    walk(&e, filter, out)?;
                }
            } else if filter(&e) {
                out.push(e);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn read_sources(spec: &str, errs: &mut Diagnostics) -> Vec<(String, String)> {
    if spec == "-" {
        let mut s = String::new();
        return match std::io::stdin().read_to_string(&mut s) {
            Ok(_) => vec![("<stdin>".to_string(), s)],
            Err(e) => {
                errs.push(io_error("<stdin>", e));
                Vec::new()
            }
        };
    }
    let mut files = Vec::new();
    if let Err(e) = walk(Path::new(spec), &is_manifest, &mut files) {
        errs.push(io_error(spec, e));
        return Vec::new();
    }
    let mut out = Vec::new();
    for f in files {
        let name = f.display().to_string();
        match std::fs::read_to_string(&f) {
            Ok(t) => out.push((name, t)),
            Err(e) => errs.push(io_error(&name, e)),
        }
    }
    out
}

/// Reads every input and reports every problem found (not only the first).
pub fn load(args: &InputArgs) -> Result<Inputs, Diagnostics> {
    let (inputs, errs) = load_lenient(args)?;
    errs.into_result()?;
    Ok(inputs)
}

/// Like [`load`], but problems that do not stop the other actors from being checked (a
/// duplicate actor name, an unreadable or invalid file) come back beside the inputs, so
/// that `render`/`validate` report them together with every actor's own errors.
pub fn load_lenient(args: &InputArgs) -> Result<(Inputs, Diagnostics), Diagnostics> {
    let mut errs = Diagnostics::default();
    let mut sources = SourceMap::default();
    let platform_file = args
        .platform
        .clone()
        .or_else(|| std::env::var_os("ASYA_PLATFORM").map(PathBuf::from));
    // A platform file inside a walked directory (`-f .` in an Argo CD source) is not an input,
    // nor is any file the caller names as such.
    let skip: Vec<PathBuf> = platform_file
        .iter()
        .chain(&args.not_inputs)
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let mut actors = Vec::new();
    let mut flavors = FlavorLibrary::new();
    let add_flavor = |flavors: &mut FlavorLibrary,
                      src: &str,
                      name: &str,
                      spec: serde_json::Value,
                      path: &str,
                      errs: &mut Diagnostics| {
        if let Err(e) = flavors.insert_at(name, src, path, spec) {
            errs.push(e);
        }
    };
    for dir in &args.flavors {
        for (src, text) in read_sources(&dir.display().to_string(), &mut errs) {
            match load_documents(&src, &text, &mut sources) {
                Ok(docs) => {
                    for d in docs {
                        match d {
                            Document::Flavor { source, name, spec, path } => add_flavor(&mut flavors, &source, &name, spec, &path, &mut errs),
                            Document::Actor(a) => errs.push(Error::new(
                                ErrorKind::Parse,
                                &a.source,
                                "kind",
                                "expected Flavor or EnvironmentConfig in a flavor library, got AsyncActor",
                            )),
                        }
                    }
                }
                Err(e) => errs.extend(e),
            }
        }
    }
    for f in &args.files {
        for (src, text) in read_sources(f, &mut errs) {
            if !skip.is_empty()
                && Path::new(&src)
                    .canonicalize()
                    .is_ok_and(|c| skip.contains(&c))
            {
                continue;
            }
            match load_documents(&src, &text, &mut sources) {
                Ok(docs) => {
                    for d in docs {
                        match d {
                            Document::Actor(mut a) => {
                                if a.namespace.is_none() {
                                    a.namespace = Some(args.namespace.clone());
                                }
                                actors.push(a);
                            }
                            Document::Flavor {
                                source,
                                name,
                                spec,
                                path,
                            } => add_flavor(&mut flavors, &source, &name, spec, &path, &mut errs),
                        }
                    }
                }
                Err(e) => errs.extend(e),
            }
        }
    }
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    for a in &actors {
        let key = (a.namespace.clone().unwrap_or_default(), a.name.clone());
        if let Some(first) = seen.insert(key.clone(), a.source.clone()) {
            errs.push(Error::new(
                ErrorKind::Invalid,
                &a.source,
                "metadata.name",
                format!(
                    "expected a unique actor per namespace, {}/{} is also defined in {first}",
                    key.0, key.1
                ),
            ));
        }
    }
    let platform = match &platform_file {
        None => Platform::shipped().unwrap_or_else(|e| {
            errs.extend(e);
            Platform::default()
        }),
        Some(p) => {
            let name = p.display().to_string();
            match std::fs::read_to_string(p) {
                Ok(t) => match Platform::from_yaml(&name, &t) {
                    Ok(p) => p,
                    Err(e) => {
                        errs.extend(e);
                        Platform::default()
                    }
                },
                Err(e) => {
                    errs.push(io_error(&name, e));
                    Platform::default()
                }
            }
        }
    };
    let compositions = match load_compositions(args.compositions.as_deref()) {
        Ok(c) => Some(c),
        Err(e) => {
            errs.extend(e);
            None
        }
    };
    if actors.is_empty() && errs.is_empty() {
        errs.push(Error::new(
            ErrorKind::Parse,
            &args.files.join(", "),
            "",
            "expected at least one AsyncActor document",
        ));
    }
    errs.locate(&sources);
    match compositions {
        Some(compositions) => Ok((
            Inputs {
                actors,
                sources,
                flavors,
                platform,
                compositions,
            },
            errs,
        )),
        None => Err(errs),
    }
}

/// Embedded compositions, overridden by the `*.j2` files under `dir` (by relative path).
pub fn load_compositions(dir: Option<&Path>) -> Result<Compositions, Diagnostics> {
    let Some(dir) = dir else {
        return Compositions::embedded();
    };
    let mut files = Vec::new();
    let is_template = |p: &Path| p.extension().and_then(|e| e.to_str()) == Some("j2");
    walk(dir, &is_template, &mut files)
        .map_err(|e| Diagnostics::from(io_error(&dir.display().to_string(), e)))?;
    let mut overrides = Vec::new();
    let mut errs = Diagnostics::default();
    for f in files {
        let origin = f.display().to_string();
        let rel = f
            .strip_prefix(dir)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        match std::fs::read_to_string(&f) {
            Ok(t) => overrides.push((rel, t, origin)),
            Err(e) => errs.push(io_error(&origin, e)),
        }
    }
    errs.into_result()?;
    Compositions::with_overrides(overrides)
}

/// Prints diagnostics, one per line, and returns exit code 1.
pub fn report(errs: &Diagnostics, err: &mut dyn std::io::Write) -> i32 {
    for e in errs.iter() {
        let _ = writeln!(err, "error: {e}");
    }
    let _ = writeln!(err, "{} error(s)", errs.0.len());
    1
}
