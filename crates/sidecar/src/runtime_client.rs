//! Client of the Python runtime over its Unix socket
//! (`docs/runtime-protocol.md`): 4-byte big-endian length + JSON, one
//! persistent connection per concurrency slot.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::envelope::Payload;
use crate::error::SidecarError;

/// One frame a handler produced: the parts of the next envelope. The payload stays the raw
/// JSON the runtime wrote; route, headers and status are checked by the router.
#[derive(Debug, Deserialize)]
pub struct OutFrame {
    /// Kept raw: the router reads it straight into a route (no tree of values first).
    pub route: Option<Box<RawValue>>,
    pub headers: Option<Value>,
    pub status: Option<Value>,
    pub payload: Option<Payload>,
}

/// One response of the runtime (`docs/runtime-protocol.md`), typed in one pass.
#[derive(Deserialize)]
struct Response {
    #[serde(rename = "type")]
    kind: String,
    frame: Option<OutFrame>,
    error: Option<Value>,
    origin: Option<String>,
    payload: Option<Box<RawValue>>,
}

/// Read buffer per runtime connection (larger frames are read straight into their body).
const READ_BUFFER: usize = 16 << 10;

/// Where the runtime listens, and what this sidecar knows about it.
#[derive(Debug, Clone)]
pub struct RuntimeClient {
    socket: PathBuf,
    ready_file: PathBuf,
    max_frame: usize,
    reachable: Arc<AtomicBool>,
    /// Runtime lives (boot ids) that crashed or timed out: no request is sent
    /// to them again, so a message is never blamed for a predecessor's fate.
    retired: Arc<Mutex<HashSet<Arc<str>>>>,
}

/// How one invocation ended.
#[derive(Debug)]
pub enum InvokeOutcome {
    /// The handler finished; these are its frames (possibly none).
    Done(Vec<OutFrame>),
    /// The handler raised: `{type, mro, message, traceback}`.
    HandlerError(Value),
    /// The runtime refused the request (invalid envelope, protocol error).
    RuntimeError(Value),
    /// The request could not be written: the runtime never saw it.
    NotSent(String),
    /// The connection closed or broke after the request was sent: the
    /// runtime died (or is restarting) and the handler may have run.
    Crashed(String),
}

/// One persistent connection to one runtime life.
#[derive(Debug)]
pub struct RuntimeConn {
    /// Buffered: the runtime writes a result's frames and `done` in one go, and
    /// one read then takes them all instead of two per frame.
    stream: BufReader<UnixStream>,
    max_frame: usize,
    boot: Arc<str>,
}

/// The identity of one runtime process start, from the `runtime-ready`
/// file: its `boot` field, or, for a runtime that does not write one yet,
/// its pid and the file's modification time.
pub fn boot_identity(content: &str, modified: Option<SystemTime>) -> String {
    let v: Value = serde_json::from_str(content).unwrap_or(Value::Null);
    if let Some(boot) = v.get("boot").and_then(Value::as_str)
        && !boot.is_empty()
    {
        return boot.to_string();
    }
    let pid = v.get("pid").map(ToString::to_string).unwrap_or_default();
    let mtime = modified
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("pid:{pid}/mtime:{mtime}")
}

/// Builds the whole invoke frame (length prefix included) once per message:
/// `{"op":"invoke","deadline_ms":N,"envelope":<envelope_json>}`.
pub fn invoke_frame(envelope_json: &[u8], deadline: Option<Duration>) -> Vec<u8> {
    let mut frame = Vec::with_capacity(envelope_json.len() + 64);
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(br#"{"op":"invoke","#);
    if let Some(d) = deadline {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        frame.extend_from_slice(format!(r#""deadline_ms":{ms},"#).as_bytes());
    }
    frame.extend_from_slice(br#""envelope":"#);
    frame.extend_from_slice(envelope_json);
    frame.push(b'}');
    let len = u32::try_from(frame.len() - 4).unwrap_or(u32::MAX);
    frame[..4].copy_from_slice(&len.to_be_bytes());
    frame
}

impl RuntimeClient {
    pub fn new(socket_dir: PathBuf, socket_name: &str, max_frame: usize) -> Self {
        Self {
            socket: socket_dir.join(socket_name),
            ready_file: socket_dir.join("runtime-ready"),
            max_frame,
            reachable: Arc::new(AtomicBool::new(false)),
            retired: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// `ASYA_MAX_FRAME_BYTES`.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// True after the last connect succeeded and no connection has broken since.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Marks the runtime as gone (a connection broke).
    pub fn mark_unreachable(&self) {
        self.reachable.store(false, Ordering::Relaxed);
    }

    /// Stops sending to runtime life `boot` (it crashed or timed out);
    /// true the first time this life is retired.
    pub fn retire(&self, boot: &Arc<str>) -> bool {
        self.mark_unreachable();
        self.retired
            .lock()
            .map(|mut r| r.insert(boot.clone()))
            .unwrap_or(false)
    }

    /// True when `boot` was retired.
    pub fn is_retired(&self, boot: &str) -> bool {
        self.retired
            .lock()
            .map(|r| r.contains(boot))
            .unwrap_or(false)
    }

    fn unretire(&self, boot: &str) {
        if let Ok(mut r) = self.retired.lock() {
            r.remove(boot);
        }
    }

    /// The identity of the runtime whose ready file is there now.
    fn current_boot(&self) -> Option<String> {
        let modified = std::fs::metadata(&self.ready_file).ok()?.modified().ok();
        let content = std::fs::read_to_string(&self.ready_file).ok()?;
        Some(boot_identity(&content, modified))
    }

    /// Waits, polling up to `timeout`, for a `runtime-ready` file of a
    /// runtime life that is not retired, and connects to it. When only a
    /// retired life is still there at the end, it is used again (with a
    /// warning): an old runtime that never restarts must not stop the actor.
    pub async fn connect(&self, timeout: Duration) -> Result<RuntimeConn, SidecarError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        let mut logged = false;
        loop {
            let boot = self.current_boot();
            let out_of_time = start.elapsed() >= timeout;
            match boot {
                Some(boot) if out_of_time || !self.is_retired(&boot) => {
                    match UnixStream::connect(&self.socket).await {
                        Ok(stream) => {
                            if self.is_retired(&boot) {
                                tracing::warn!(boot = %boot, waited = ?start.elapsed(),
                                    "the runtime was not replaced within ASYA_RUNTIME_READY_TIMEOUT; sending to it again");
                                self.unretire(&boot);
                            }
                            self.reachable.store(true, Ordering::Relaxed);
                            return Ok(RuntimeConn {
                                stream: BufReader::with_capacity(READ_BUFFER, stream),
                                max_frame: self.max_frame,
                                boot: boot.into(),
                            });
                        }
                        Err(e) if !logged => {
                            tracing::info!(socket = %self.socket.display(), error = %e, "waiting for the runtime socket");
                            logged = true;
                        }
                        Err(_) => {}
                    }
                }
                Some(boot) if !logged => {
                    tracing::info!(boot = %boot, "waiting for the runtime to be replaced (its last life crashed or timed out)");
                    logged = true;
                }
                Some(_) => {}
                None if !logged => {
                    tracing::info!(ready_file = %self.ready_file.display(), "waiting for the runtime to be ready");
                    logged = true;
                }
                None => {}
            }
            if out_of_time {
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
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

impl RuntimeConn {
    /// The runtime life this connection talks to.
    pub fn boot(&self) -> &Arc<str> {
        &self.boot
    }

    /// Sends one request built by [`invoke_frame`] and reads responses until
    /// the terminal one. Frames are buffered and returned only on `done`.
    pub async fn invoke(&mut self, frame: &[u8]) -> InvokeOutcome {
        if let Err(e) = self.stream.write_all(frame).await {
            return InvokeOutcome::NotSent(format!("sending the request: {e}"));
        }
        let mut frames = Vec::new();
        let mut first = true;
        loop {
            let body = match self.read_body().await {
                Ok(Some(b)) => b,
                Ok(None) if first => {
                    return InvokeOutcome::Crashed(
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
            let msg: Response = match serde_json::from_slice(&body) {
                Ok(m) => m,
                Err(e) => {
                    return InvokeOutcome::Crashed(format!(
                        "runtime sent an invalid response: {e}"
                    ));
                }
            };
            match msg.kind.as_str() {
                "frame" => match msg.frame {
                    Some(f) => frames.push(f),
                    None => {
                        return InvokeOutcome::Crashed(
                            "frame response without a frame object".into(),
                        );
                    }
                },
                "upstream" => {
                    let payload = msg.payload.as_deref().map_or("", RawValue::get);
                    tracing::debug!(payload = %payload, "upstream progress");
                }
                "done" => return InvokeOutcome::Done(frames),
                "error" => {
                    let err = msg.error.unwrap_or(Value::Null);
                    return match msg.origin.as_deref() {
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

    /// Reads one frame as JSON; `Ok(None)` on a clean EOF before its first byte.
    async fn read_frame(&mut self) -> Result<Option<Value>, String> {
        match self.read_body().await? {
            None => Ok(None),
            Some(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| format!("runtime sent a frame that is not JSON: {e}")),
        }
    }

    /// Reads one frame's bytes; `Ok(None)` on a clean EOF before its first byte.
    async fn read_body(&mut self) -> Result<Option<Vec<u8>>, String> {
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
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_id_wins_and_a_ready_file_without_one_is_identified_by_pid_and_mtime() {
        let t1 = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let t2 = t1 + Duration::from_millis(1);
        assert_eq!(
            boot_identity(r#"{"pid":7,"handler":"h","boot":"9f2c"}"#, Some(t1)),
            "9f2c"
        );
        let old = boot_identity(r#"{"pid":7,"handler":"h"}"#, Some(t1));
        assert_eq!(old, "pid:7/mtime:1700000000123456789");
        // Same pid (a restarted container), new file: another life.
        assert_ne!(old, boot_identity(r#"{"pid":7,"handler":"h"}"#, Some(t2)));
    }

    #[test]
    fn the_invoke_frame_carries_its_length_and_the_deadline() {
        let f = invoke_frame(br#"{"id":"1"}"#, Some(Duration::from_millis(1500)));
        let len = u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
        assert_eq!(len, f.len() - 4);
        let v: Value = serde_json::from_slice(&f[4..]).unwrap();
        assert_eq!(v["op"], "invoke");
        assert_eq!(v["deadline_ms"], 1500);
        assert_eq!(v["envelope"]["id"], "1");
        let v: Value = serde_json::from_slice(&invoke_frame(b"{}", None)[4..]).unwrap();
        assert!(v.get("deadline_ms").is_none());
    }

    #[tokio::test]
    async fn after_a_retirement_connect_waits_for_a_new_life() {
        let dir = tempfile::tempdir().unwrap();
        let _listener = tokio::net::UnixListener::bind(dir.path().join("s.sock")).unwrap();
        let ready = dir.path().join("runtime-ready");
        std::fs::write(&ready, r#"{"pid":1,"boot":"a"}"#).unwrap();
        let client = RuntimeClient::new(dir.path().to_path_buf(), "s.sock", 1024);
        let conn = client.connect(Duration::from_secs(1)).await.unwrap();
        assert_eq!(&**conn.boot(), "a");
        assert!(client.retire(conn.boot()));
        assert!(!client.retire(conn.boot()), "a life is retired once");
        let replace = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            std::fs::write(&ready, r#"{"pid":1,"boot":"b"}"#).unwrap();
        };
        let started = Instant::now();
        let (conn, ()) = tokio::join!(client.connect(Duration::from_secs(5)), replace);
        assert_eq!(&**conn.unwrap().boot(), "b");
        assert!(started.elapsed() >= Duration::from_millis(300));
        // A retired life that is never replaced is used again after the timeout.
        client.retire(&Arc::from("b"));
        let conn = client.connect(Duration::from_millis(200)).await.unwrap();
        assert_eq!(&**conn.boot(), "b");
        assert!(!client.is_retired("b"));
    }
}
