//! Re-reading the tools file (and the auth token file) when they change, without a
//! restart: a Helm upgrade that edits `routes.tools` updates the mounted ConfigMap, and
//! the gateway picks it up.
//!
//! The files are polled: their content is compared with what was last read (a mounted
//! ConfigMap changes by a symlink swap, and two writes in the same second keep the same
//! mtime, so neither inotify on the path nor mtime alone is reliable). A new tools file is
//! checked whole before it replaces the old tools; a bad one is logged with its file,
//! line, column and field, and the old tools stay in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::BearerAuth;
use crate::config::ToolsConfig;
use crate::service::Gateway;

/// What the watcher last saw of one file.
struct Seen {
    path: PathBuf,
    /// The content last read (None: not readable then).
    bytes: Option<Vec<u8>>,
}

impl Seen {
    fn new(path: &Path) -> Self {
        Seen {
            path: path.to_path_buf(),
            bytes: std::fs::read(path).ok(),
        }
    }

    /// The new content when the file changed since the last look.
    fn changed(&mut self) -> Option<Vec<u8>> {
        let now = std::fs::read(&self.path).ok();
        if now == self.bytes {
            return None;
        }
        self.bytes = now.clone();
        // A file that disappeared (mid-swap) is not a change to act on: the next look
        // sees the new one.
        now
    }
}

/// Polls `tools` (and the token file of `auth`) every `every` until the task is dropped.
pub async fn watch(gw: Arc<Gateway>, tools: PathBuf, auth: Option<BearerAuth>, every: Duration) {
    let mut seen_tools = Seen::new(&tools);
    let mut seen_token = auth.as_ref().and_then(|a| a.file()).map(Seen::new);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Some(bytes) = seen_tools.changed() {
            reload_tools(&gw, &tools, &bytes);
        }
        if let (Some(seen), Some(auth)) = (seen_token.as_mut(), auth.as_ref())
            && seen.changed().is_some()
        {
            match auth.reload() {
                Ok(true) => tracing::info!(file = %seen.path.display(), "auth token reloaded"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "auth token file changed but cannot be used; the old token stays")
                }
            }
        }
    }
}

fn reload_tools(gw: &Gateway, path: &Path, bytes: &[u8]) {
    let file = path.display().to_string();
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => ToolsConfig::parse(&file, text).map_err(|e| e.to_string()),
        Err(e) => Err(format!("{file}: expected UTF-8 text, got: {e}")),
    };
    match parsed {
        Ok(new) => {
            let names: Vec<String> = new.tools.iter().map(|t| t.name.clone()).collect();
            gw.set_tools(new);
            gw.metrics.tools_reloaded(true, names.len());
            tracing::info!(file = %file, tools = ?names, "tools reloaded");
        }
        Err(e) => {
            let kept = gw.tools().tools.len();
            gw.metrics.tools_reloaded(false, kept);
            tracing::error!(error = %e, kept, "tools file changed but is not valid; the old tools stay in use");
        }
    }
}
