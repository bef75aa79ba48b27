//! Client of the Python runtime over its Unix socket
//! (`docs/runtime-protocol.md`): 4-byte big-endian length + JSON, one
//! persistent connection per concurrency slot.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::SidecarError;

/// Where the runtime listens, and what this sidecar knows about it.
#[derive(Debug, Clone)]
pub struct RuntimeClient {
    socket: PathBuf,
    ready_file: PathBuf,
    max_frame: usize,
    reachable: Arc<AtomicBool>,
}

/// How one invocation ended.
#[derive(Debug)]
pub enum InvokeOutcome {
    /// The handler finished; these are its frames (possibly none).
    Done(Vec<Value>),
    /// The handler raised: `{type, mro, message, traceback}`.
    HandlerError(Value),
    /// The runtime refused the request (invalid envelope, protocol error).
    RuntimeError(Value),
    /// The connection closed before any response: the request was not
    /// processed (runtime shutting down); safe to requeue.
    NotProcessed(String),
    /// The connection broke mid-response or sent garbage: a runtime crash.
    Crashed(String),
}

/// One persistent connection.
#[derive(Debug)]
pub struct RuntimeConn {
    stream: UnixStream,
    max_frame: usize,
}

impl RuntimeClient {
    pub fn new(socket_dir: PathBuf, socket_name: &str, max_frame: usize) -> Self {
        Self {
            socket: socket_dir.join(socket_name),
            ready_file: socket_dir.join("runtime-ready"),
            max_frame,
            reachable: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True after the last connect succeeded and no connection has broken since.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Marks the runtime as gone (a connection broke).
    pub fn mark_unreachable(&self) {
        self.reachable.store(false, Ordering::Relaxed);
    }

    /// Waits for `runtime-ready` and a successful connect, polling, up to `timeout`.
    pub async fn connect(&self, timeout: Duration) -> Result<RuntimeConn, SidecarError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(50);
        let mut logged = false;
        loop {
            if self.ready_file.exists() {
                match UnixStream::connect(&self.socket).await {
                    Ok(stream) => {
                        self.reachable.store(true, Ordering::Relaxed);
                        return Ok(RuntimeConn {
                            stream,
                            max_frame: self.max_frame,
                        });
                    }
                    Err(e) if !logged => {
                        tracing::info!(socket = %self.socket.display(), error = %e, "waiting for the runtime socket");
                        logged = true;
                    }
                    Err(_) => {}
                }
            } else if !logged {
                tracing::info!(ready_file = %self.ready_file.display(), "waiting for the runtime to be ready");
                logged = true;
            }
            if start.elapsed() >= timeout {
                self.mark_unreachable();
                return Err(SidecarError::RuntimeNotReady(
                    timeout,
                    format!(
                        "{} accepting on {}",
                        self.ready_file.display(),
                        self.socket.display()
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

impl RuntimeConn {
    /// Sends one envelope (raw JSON bytes) and reads responses until the
    /// terminal one. Frames are buffered and returned only on `done`.
    pub async fn invoke(&mut self, envelope_json: &[u8]) -> InvokeOutcome {
        let mut request = Vec::with_capacity(envelope_json.len() + 32);
        request.extend_from_slice(br#"{"op":"invoke","envelope":"#);
        request.extend_from_slice(envelope_json);
        request.push(b'}');
        if let Err(e) = self.write_frame(&request).await {
            return InvokeOutcome::NotProcessed(format!("sending the request: {e}"));
        }
        let mut frames = Vec::new();
        let mut first = true;
        loop {
            let msg = match self.read_frame().await {
                Ok(Some(m)) => m,
                Ok(None) if first => {
                    return InvokeOutcome::NotProcessed(
                        "runtime closed the connection before answering".into(),
                    );
                }
                Ok(None) => {
                    return InvokeOutcome::Crashed(
                        "runtime closed the connection mid-response".into(),
                    );
                }
                Err(e) => return InvokeOutcome::Crashed(e),
            };
            first = false;
            let kind = msg.get("type").and_then(Value::as_str).unwrap_or("");
            match kind {
                "frame" => match msg.get("frame") {
                    Some(f) if f.is_object() => frames.push(f.clone()),
                    _ => {
                        return InvokeOutcome::Crashed(
                            "frame response without a frame object".into(),
                        );
                    }
                },
                "upstream" => {
                    let payload = msg
                        .get("payload")
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    tracing::debug!(payload = %payload, "upstream progress");
                }
                "done" => return InvokeOutcome::Done(frames),
                "error" => {
                    let err = msg.get("error").cloned().unwrap_or(Value::Null);
                    return match msg.get("origin").and_then(Value::as_str) {
                        Some("handler") => InvokeOutcome::HandlerError(err),
                        _ => InvokeOutcome::RuntimeError(err),
                    };
                }
                other => {
                    return InvokeOutcome::Crashed(format!("unknown response type {other:?}"));
                }
            }
        }
    }

    /// `ping` → `pong`.
    pub async fn ping(&mut self) -> Result<(), String> {
        self.write_frame(br#"{"op":"ping"}"#)
            .await
            .map_err(|e| e.to_string())?;
        match self.read_frame().await? {
            Some(v) if v.get("type").and_then(Value::as_str) == Some("pong") => Ok(()),
            other => Err(format!("unexpected ping answer {other:?}")),
        }
    }

    async fn write_frame(&mut self, body: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(body.len()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame over 4 GiB")
        })?;
        let mut buf = Vec::with_capacity(body.len() + 4);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(body);
        self.stream.write_all(&buf).await
    }

    /// Reads one frame; `Ok(None)` on a clean EOF before its first byte.
    async fn read_frame(&mut self) -> Result<Option<Value>, String> {
        let mut header = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.stream.read(&mut header[got..]).await {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err("runtime closed the connection inside a frame header".into()),
                Ok(n) => got += n,
                Err(e) => {
                    return if got == 0 && e.kind() == std::io::ErrorKind::ConnectionReset {
                        Ok(None)
                    } else {
                        Err(format!("reading from the runtime: {e}"))
                    };
                }
            }
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > self.max_frame {
            return Err(format!(
                "runtime sent a {len}-byte frame, over ASYA_MAX_FRAME_BYTES={}",
                self.max_frame
            ));
        }
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("reading a frame body from the runtime: {e}"))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| format!("runtime sent a frame that is not JSON: {e}"))
    }
}
