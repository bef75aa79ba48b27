//! Rendered manifests kept in a repository, for users' CI: `asya render --out-dir DIR`
//! writes one file per object at a stable path, `asya render --check DIR` tells whether the
//! committed files still match the render, with a unified diff per object and the actor and
//! flavors behind each change.
//!
//! Layout: `DIR/<namespace>/<actor>/<kind>-<name>.yaml` (kind in lower case), one YAML
//! document per file, the same bytes `asya render` prints for that object. A file is ours
//! when it sits at such a path; other files under DIR are left alone.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use asya_render::{Rendered, to_yaml_stream};
use similar::TextDiff;

/// Relative path → (file content, the render it came from).
fn expected(renders: &[Rendered]) -> BTreeMap<PathBuf, (String, &Rendered)> {
    let mut out = BTreeMap::new();
    for r in renders {
        for o in &r.objects {
            let kind = o["kind"].as_str().unwrap_or("object").to_lowercase();
            let name = o["metadata"]["name"].as_str().unwrap_or("unnamed");
            let path = PathBuf::from(&r.namespace)
                .join(&r.name)
                .join(format!("{kind}-{name}.yaml"));
            out.insert(path, (to_yaml_stream(std::slice::from_ref(o)), r));
        }
    }
    out
}

/// Files under `dir` at our layout's depth (`<ns>/<actor>/<file>.yaml`), relative paths.
fn existing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let subdirs = |p: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for ns in subdirs(dir).into_iter().filter(|p| p.is_dir()) {
        for actor in subdirs(&ns).into_iter().filter(|p| p.is_dir()) {
            for f in subdirs(&actor) {
                if f.extension().is_some_and(|e| e == "yaml")
                    && let Ok(rel) = f.strip_prefix(dir)
                {
                    out.push(rel.to_path_buf());
                }
            }
        }
    }
    out
}

/// `asya render --out-dir`: writes every object; removes our files no longer rendered.
pub fn write(renders: &[Rendered], dir: &Path, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let want = expected(renders);
    let mut written = 0;
    for (rel, (text, _)) in &want {
        let path = dir.join(rel);
        let same = std::fs::read_to_string(&path).is_ok_and(|t| &t == text);
        if same {
            continue;
        }
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        if let Err(e) = result {
            let _ = writeln!(
                err,
                "error: {}: expected a writable file: {e}",
                path.display()
            );
            return 1;
        }
        written += 1;
    }
    let mut removed = 0;
    for rel in existing(dir) {
        if !want.contains_key(&rel) && std::fs::remove_file(dir.join(&rel)).is_ok() {
            removed += 1;
        }
    }
    let _ = writeln!(
        out,
        "{} objects in {}: {written} written, {removed} removed, {} unchanged",
        want.len(),
        dir.display(),
        want.len() - written
    );
    0
}

/// `asya render --check`: exit 0 when the files match the render, else 1 with a diff per
/// object on stdout and, for each, the actor file and flavors that render it.
pub fn check(renders: &[Rendered], dir: &Path, out: &mut dyn Write, _err: &mut dyn Write) -> i32 {
    let want = expected(renders);
    let mut changed = 0;
    for (rel, (text, r)) in &want {
        let old = std::fs::read_to_string(dir.join(rel)).unwrap_or_default();
        if &old == text {
            continue;
        }
        changed += 1;
        let name = rel.display().to_string();
        let diff = TextDiff::from_lines(old.as_str(), text.as_str());
        let _ = write!(
            out,
            "{}",
            diff.unified_diff()
                .header(&format!("a/{name}"), &format!("b/{name}"))
        );
        let flavors = if r.explain.flavors.is_empty() {
            "no flavors".to_string()
        } else {
            format!("flavors {}", r.explain.flavors.join(", "))
        };
        let _ = writeln!(
            out,
            "# {name}: rendered from {} ({flavors})",
            r.explain.source
        );
    }
    for rel in existing(dir) {
        if !want.contains_key(&rel) {
            changed += 1;
            let _ = writeln!(
                out,
                "# {}: no longer rendered (its actor was removed or renamed)",
                rel.display()
            );
        }
    }
    if changed == 0 {
        let _ = writeln!(
            out,
            "{} objects up to date in {}",
            want.len(),
            dir.display()
        );
        0
    } else {
        let _ = writeln!(
            out,
            "{changed} of {} objects differ from {}: run `asya render --out-dir {}` and commit",
            want.len(),
            dir.display(),
            dir.display()
        );
        1
    }
}
