//! One revision of the repository as a directory: either a directory given as is, or a git
//! ref whose files are written into a temporary directory with the git binary
//! (`git ls-tree` + `git cat-file --batch`, read-only: no worktree, index or ref changes).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A checked-out revision: its root, and the temporary directory that holds it if any.
pub struct Revision {
    /// What the user named (`main`, `../old-checkout`), for messages.
    pub label: String,
    /// Directory playing the role of the current directory for that revision.
    pub root: PathBuf,
    /// Kept alive until the comparison ends; removed on drop.
    _tmp: Option<TempDir>,
}

impl Revision {
    /// The working tree: the current directory as it is.
    pub fn working_tree() -> Revision {
        Revision {
            label: "working tree".into(),
            root: PathBuf::from("."),
            _tmp: None,
        }
    }

    /// `spec` is a directory (used as is) or a git ref of the repository holding the current
    /// directory (its files written into a temporary directory).
    pub fn open(spec: &str) -> Result<Revision, String> {
        if Path::new(spec).is_dir() {
            return Ok(Revision {
                label: spec.to_string(),
                root: PathBuf::from(spec),
                _tmp: None,
            });
        }
        let commit = git(&["rev-parse", "--verify", "--quiet", &format!("{spec}^{{commit}}")])
            .map_err(|e| {
                format!("--base {spec}: expected an existing directory or a git ref of the repository in the current directory; {e}")
            })?;
        let commit = commit.trim().to_string();
        // The current directory's place in the repository, so relative paths mean the same
        // thing in both revisions.
        let prefix = git(&["rev-parse", "--show-prefix"])
            .map_err(|e| format!("--base {spec}: {e}"))?
            .trim()
            .to_string();
        let tmp = TempDir::new()
            .map_err(|e| format!("--base {spec}: expected a writable temporary directory: {e}"))?;
        export(&commit, &tmp.0).map_err(|e| format!("--base {spec}: {e}"))?;
        Ok(Revision {
            label: spec.to_string(),
            root: tmp.0.join(prefix),
            _tmp: Some(tmp),
        })
    }

    /// `path` as seen in this revision: relative paths under [`Revision::root`], absolute
    /// paths unchanged (the same file for both revisions).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() || self.root == Path::new(".") {
            path.to_path_buf()
        } else {
            self.root.join(path)
        }
    }

    /// A path this revision printed (in a diagnostic or a source) shown as the user typed it.
    pub fn display(&self, text: &str) -> String {
        if self.root == Path::new(".") {
            return text.to_string();
        }
        let root = format!("{}/", self.root.display().to_string().trim_end_matches('/'));
        text.replace(&root, "")
    }
}

/// A directory under the system's temporary directory, removed with everything in it on
/// drop. (Not the `tempfile` crate: the render-only build stays without it.)
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let base = std::env::temp_dir();
        let mut attempt = 0u32;
        loop {
            let path = base.join(format!("asya-diff-base-{}-{attempt}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs git in the current directory; stdout on success, else stderr as the error.
fn git(args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .output()
        .map_err(|e| format!("expected the git binary on PATH: {e}"))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(if msg.is_empty() {
            format!("git {} failed", args.join(" "))
        } else {
            msg
        });
    }
    String::from_utf8(out.stdout).map_err(|e| format!("git {}: not UTF-8: {e}", args.join(" ")))
}

/// Writes every regular file of `commit` under `dir` (whole repository, paths from its top).
fn export(commit: &str, dir: &Path) -> Result<(), String> {
    let listing = git(&["ls-tree", "-r", "-z", "--full-tree", commit])?;
    // `<mode> blob <sha>\t<path>`; symlinks (120000) and submodules (commit) are skipped.
    let mut files = Vec::new();
    for entry in listing.split('\0').filter(|e| !e.is_empty()) {
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut parts = meta.split(' ');
        let (mode, kind, sha) = (parts.next(), parts.next(), parts.next());
        if kind == Some("blob")
            && mode.is_some_and(|m| m.starts_with("100"))
            && let Some(sha) = sha
        {
            files.push((sha.to_string(), path.to_string()));
        }
    }
    let mut child = Command::new("git")
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("expected the git binary on PATH: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("git cat-file: no stdin")?;
    let names: String = files.iter().map(|(sha, _)| format!("{sha}\n")).collect();
    // Feed the names from another thread: git writes contents while we still write names.
    let feeder = std::thread::spawn(move || stdin.write_all(names.as_bytes()));
    let stdout = child.stdout.take().ok_or("git cat-file: no stdout")?;
    let mut reader = BufReader::new(stdout);
    for (sha, path) in &files {
        let mut header = String::new();
        reader
            .read_line(&mut header)
            .map_err(|e| format!("git cat-file: {e}"))?;
        // `<sha> blob <size>`
        let size: usize = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("git cat-file {sha}: unexpected header {header:?}"))?;
        let mut body = vec![0u8; size + 1];
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("git cat-file {sha}: {e}"))?;
        body.pop(); // the newline after each object
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("{}: expected a writable directory: {e}", parent.display()))?;
        }
        std::fs::write(&target, &body)
            .map_err(|e| format!("{}: expected a writable file: {e}", target.display()))?;
    }
    let _ = feeder.join();
    let status = child.wait().map_err(|e| format!("git cat-file: {e}"))?;
    if !status.success() {
        return Err(format!("git cat-file --batch exited with {status}"));
    }
    Ok(())
}
