//! The Python runtime processes of `asya dev`: one `asya_runtime.py` per
//! actor, supervised like a pod's container (restarted when it exits after
//! having run a while, e.g. after a handler it could not stop), restarted on
//! request (`--watch`), stopped with SIGTERM so in-flight calls finish.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A runtime that exits sooner than this after its start did not start.
const STARTUP_WINDOW: Duration = Duration::from_secs(3);
/// Pause before restarting a runtime that exited.
const RESTART_PAUSE: Duration = Duration::from_millis(500);

/// How to start one actor's runtime.
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    pub actor: String,
    pub python: String,
    pub script: PathBuf,
    /// The handler's module is found from here (`--path`, else the current directory).
    pub cwd: PathBuf,
    /// The rendered runtime container's env, socket dir already local.
    pub env: Vec<(String, String)>,
    /// SIGTERM → exit budget (the runtime drains in-flight calls within it).
    pub grace: Duration,
}

/// What a supervisor is asked to do.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    Restart,
    Stop,
}

/// A runtime that could not start: the run cannot go on.
#[derive(Debug)]
pub struct Fatal(pub String);

impl RuntimeSpec {
    fn spawn(&self) -> Result<Child, String> {
        let mut cmd = Command::new(&self.python);
        // As in its container, the runtime sees only the rendered ASYA_*
        // variables, not the ones of the shell `asya dev` runs in.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ASYA_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg(&self.script)
            .current_dir(&self.cwd)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "actor {}: starting the runtime with {:?} failed: {e} (set --python or the actor's pythonExecutable)",
                self.actor, self.python
            )
        })?;
        // The runtime's logs and the handler's prints, one prefixed line each.
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(BufReader::new(out), self.actor.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(BufReader::new(err), self.actor.clone()));
        }
        Ok(child)
    }
}

async fn forward<R: tokio::io::AsyncRead + Unpin>(r: BufReader<R>, actor: String) {
    let mut lines = r.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[{actor}] {line}");
    }
}

/// Sends SIGTERM, waits up to `grace`, then kills.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        // std has no signal API and this crate forbids `unsafe` (libc::kill).
        let _ = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// Runs and supervises one runtime until told to stop. With `watch`, a
/// runtime that fails at startup waits for a restart request (a fixed
/// handler file) instead of ending the run through `fatal`.
pub async fn supervise(
    spec: RuntimeSpec,
    mut commands: mpsc::UnboundedReceiver<Control>,
    fatal: mpsc::UnboundedSender<Fatal>,
    watch: bool,
) {
    'life: loop {
        let mut child = match spec.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = fatal.send(Fatal(e));
                return;
            }
        };
        let started = Instant::now();
        tokio::select! {
            status = child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                if started.elapsed() < STARTUP_WINDOW {
                    let msg = format!("actor {}: the runtime exited at startup ({status}); its output is above, prefixed [{}]", spec.actor, spec.actor);
                    if !watch {
                        let _ = fatal.send(Fatal(msg));
                        return;
                    }
                    eprintln!("asya dev: {msg}; waiting for a handler change");
                    match commands.recv().await {
                        Some(Control::Restart) => continue 'life,
                        Some(Control::Stop) | None => return,
                    }
                }
                eprintln!("asya dev: actor {}: the runtime exited ({status}); restarting it", spec.actor);
                tokio::time::sleep(RESTART_PAUSE).await;
            }
            cmd = commands.recv() => {
                terminate(&mut child, spec.grace).await;
                match cmd {
                    Some(Control::Restart) => {
                        eprintln!("asya dev: actor {}: handler changed; runtime restarted", spec.actor);
                    }
                    Some(Control::Stop) | None => return,
                }
            }
        }
    }
}
