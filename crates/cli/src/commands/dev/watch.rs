//! `--watch`: polls the handler directory's Python files and names the actors
//! whose runtime must restart. Polling (twice a second) instead of inotify:
//! no extra dependency, and the same on every OS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often files are checked.
pub const PERIOD: Duration = Duration::from_millis(500);
/// Directories never looked into (caches, VCS, virtualenvs, our own results).
const SKIP_DIRS: &[&str] = &[
    "__pycache__",
    ".git",
    ".asya",
    ".venv",
    "venv",
    "node_modules",
    "target",
];
/// Deeper trees are not walked (a handler directory, not a whole disk).
const MAX_DEPTH: usize = 6;

/// Modification time and size of every `.py` file under `root`.
pub type Snapshot = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

pub fn snapshot(root: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    walk(root, 0, &mut out);
    out
}

fn walk(dir: &Path, depth: usize, out: &mut Snapshot) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with('.') {
                walk(&path, depth + 1, out);
            }
        } else if name.ends_with(".py")
            && let Ok(m) = e.metadata()
        {
            out.insert(path, (m.modified().ok(), m.len()));
        }
    }
}

/// Files added, removed or changed between two snapshots.
pub fn changed(before: &Snapshot, after: &Snapshot) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(before.keys().filter(|p| !after.contains_key(*p)).cloned());
    out.sort();
    out.dedup();
    out
}

/// The actors (by index) a change of `files` concerns: those whose handler's
/// top-level module is one of the files (or a package containing one); a
/// file no handler names directly (a shared helper) concerns every actor.
pub fn affected(root: &Path, files: &[PathBuf], handlers: &[String]) -> Vec<usize> {
    let mut hit = vec![false; handlers.len()];
    for f in files {
        let rel = f.strip_prefix(root).unwrap_or(f);
        let top = rel
            .components()
            .next()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".py")
                    .to_string()
            })
            .unwrap_or_default();
        let owners: Vec<usize> = handlers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.split('.').next() == Some(top.as_str()))
            .map(|(i, _)| i)
            .collect();
        if owners.is_empty() {
            hit.iter_mut().for_each(|h| *h = true);
        } else {
            owners.into_iter().for_each(|i| hit[i] = true);
        }
    }
    hit.iter()
        .enumerate()
        .filter(|(_, h)| **h)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_restarts_the_actors_of_that_module_only() {
        let root = Path::new("/h");
        let handlers = vec!["steps.a".to_string(), "other.b".to_string()];
        assert_eq!(
            affected(root, &[PathBuf::from("/h/steps.py")], &handlers),
            vec![0]
        );
        assert_eq!(
            affected(root, &[PathBuf::from("/h/other/sub.py")], &handlers),
            vec![1]
        );
        assert_eq!(
            affected(root, &[PathBuf::from("/h/util.py")], &handlers),
            vec![0, 1]
        );
    }

    #[test]
    fn edits_additions_and_removals_are_changes() {
        let mut a = Snapshot::new();
        a.insert(PathBuf::from("x.py"), (None, 1));
        a.insert(PathBuf::from("y.py"), (None, 1));
        let mut b = a.clone();
        b.insert(PathBuf::from("x.py"), (None, 2));
        b.remove(Path::new("y.py"));
        b.insert(PathBuf::from("z.py"), (None, 1));
        assert_eq!(
            changed(&a, &b),
            vec![
                PathBuf::from("x.py"),
                PathBuf::from("y.py"),
                PathBuf::from("z.py")
            ]
        );
    }
}
