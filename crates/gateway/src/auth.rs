//! Optional bearer-token auth on `/mcp` and `/tasks` (the API a client or an agent
//! calls). The mesh listener, `/healthz`, `/readyz` and `/metrics` stay open: sidecars,
//! probes and Prometheus carry no token, and the mesh listener is never exposed outside
//! the cluster.
//!
//! The token comes from a file (`--auth-token-file`, e.g. a mounted Secret; re-read when
//! it changes, so a rotated Secret takes effect without a restart) or from the
//! environment (`ASYA_GATEWAY_AUTH_TOKEN`). A refused request gets `401` with
//! `WWW-Authenticate: Bearer` (RFC 6750) and a JSON error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::metrics::Metrics;

/// The realm named in `WWW-Authenticate`.
const REALM: &str = "asya-gateway";

/// Why a token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: expected a readable token file, got: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{source_}: expected a token, got an empty value")]
    Empty { source_: String },
}

/// The expected token; shared by the middleware and the file watcher.
#[derive(Clone)]
pub struct BearerAuth {
    token: Arc<RwLock<String>>,
    file: Option<PathBuf>,
}

/// Reads a token file: surrounding whitespace (a trailing newline) is not part of it.
pub fn read_token_file(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|e| TokenError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(TokenError::Empty {
            source_: path.display().to_string(),
        });
    }
    Ok(token)
}

impl BearerAuth {
    /// A fixed token (from the environment).
    pub fn new(token: &str, what: &str) -> Result<Self, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Empty {
                source_: what.to_string(),
            });
        }
        Ok(BearerAuth {
            token: Arc::new(RwLock::new(token.to_string())),
            file: None,
        })
    }

    /// The token of `path`, re-read by [`BearerAuth::reload`].
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        Ok(BearerAuth {
            token: Arc::new(RwLock::new(read_token_file(path)?)),
            file: Some(path.to_path_buf()),
        })
    }

    /// The file the token comes from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Re-reads the token file; on an error the old token stays. `Ok(true)` when it changed.
    pub fn reload(&self) -> Result<bool, TokenError> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let new = read_token_file(path)?;
        let mut cur = self.token.write().unwrap_or_else(|p| p.into_inner());
        if *cur == new {
            return Ok(false);
        }
        *cur = new;
        Ok(true)
    }

    fn accepts(&self, presented: &str) -> bool {
        let cur = self.token.read().unwrap_or_else(|p| p.into_inner());
        constant_time_eq(cur.as_bytes(), presented.as_bytes())
    }
}

/// Compares without stopping at the first differing byte (subtle's `ConstantTimeEq`), so
/// the time taken does not tell an attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized(presented: bool) -> Response {
    // RFC 6750 §3: no error code when no credentials were sent.
    let challenge = if presented {
        format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")
    } else {
        format!("Bearer realm=\"{REALM}\"")
    };
    let message = if presented {
        "the bearer token is not valid"
    } else {
        "expected an Authorization: Bearer <token> header, got none"
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        axum::Json(json!({"error": {"type": "Unauthorized", "message": message}})),
    )
        .into_response()
}

/// The middleware: passes requests with the right token, answers 401 to the others.
pub async fn require_bearer(
    State((auth, metrics)): State<(BearerAuth, Metrics)>,
    req: Request,
    next: Next,
) -> Response {
    match bearer(&req) {
        Some(t) if auth.accepts(t) => next.run(req).await,
        presented => {
            metrics.unauthorized();
            unauthorized(presented.is_some())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_equal() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn token_file_is_trimmed_and_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret\n").unwrap();
        let a = BearerAuth::from_file(&f).unwrap();
        assert!(a.accepts("s3cret"));
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(a.reload(), Err(TokenError::Empty { .. })));
        assert!(a.accepts("s3cret"), "a bad new file keeps the old token");
        std::fs::write(&f, "n3w").unwrap();
        assert!(a.reload().unwrap());
        assert!(a.accepts("n3w") && !a.accepts("s3cret"));
    }
}
