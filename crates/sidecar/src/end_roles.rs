//! End roles: `x-sink` (legacy `happy-end`) and `x-sump` (legacy `error-end`).
//!
//! x-sink persists every final envelope as `{prefix}succeeded/{id}.json` or
//! `{prefix}failed/{id}.json` and forwards failed ones to x-sump, so handler
//! failures reach x-sump only through x-sink. x-sump persists what it gets as
//! `{prefix}sump/{id}.json` and logs it at ERROR. Neither calls a runtime.
//!
//! Both report the end of the task to the gateway when the envelope names one
//! ([`crate::progress`]): x-sink `succeeded` with the payload or `failed` with
//! `status.error`, x-sump `failed` (the gateway ignores it when x-sink already reported).
//! Fan-out children (`parent_id` set) are not reported: the task is its first envelope.

use std::sync::Arc;

use asya_storage::EnvelopeStore;

use crate::config::{Config, Role};
use crate::envelope::Envelope;
use crate::metrics::Metrics;
use crate::progress::Reporter;
use crate::router::{Handled, Outgoing, original_id, raw_sump_envelope};

/// Longest message text logged by x-sump.
const MAX_LOGGED_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub struct EndRole {
    pub cfg: Arc<Config>,
    pub store: Option<EnvelopeStore>,
    pub metrics: Metrics,
    pub reporter: Reporter,
}

impl EndRole {
    pub async fn handle(&self, body: &[u8]) -> Handled {
        match self.cfg.role {
            Role::Sump => self.sump(body).await,
            _ => self.sink(body).await,
        }
    }

    async fn sink(&self, body: &[u8]) -> Handled {
        let env = match Envelope::parse(body) {
            Ok(env) => env,
            Err(e) => {
                self.metrics.failed("parse_error");
                let wrapped = raw_sump_envelope(
                    body,
                    "ParseError",
                    &e.to_string(),
                    &self.cfg.actor,
                    &self.cfg.sump,
                );
                tracing::error!(id = %original_id(body), sump_id = %wrapped.id, error = %e,
                    "x-sink got an unparseable message; forwarding it to x-sump wrapped in a new envelope");
                return Handled::Forward {
                    out: vec![Outgoing {
                        actor: self.cfg.sump.clone(),
                        body: wrapped.to_bytes(),
                        delay: std::time::Duration::ZERO,
                        message_type: "sump",
                    }],
                    status: "error",
                };
            }
        };
        let failed = env.status_str("phase") == Some("failed");
        let kind = if failed {
            asya_storage::KIND_FAILED
        } else {
            asya_storage::KIND_SUCCEEDED
        };
        if let Some(store) = &self.store {
            match store.put(kind, &env.id, body).await {
                Ok(key) => tracing::info!(id = %env.id, key = %key, "final envelope stored"),
                Err(e) => return Handled::Requeue(format!("storing {}: {e}", env.id)),
            }
        } else {
            let text = String::from_utf8_lossy(body);
            let shown: String = text.chars().take(MAX_LOGGED_BYTES).collect();
            tracing::info!(id = %env.id, phase = env.status_str("phase").unwrap_or(""), envelope = %shown,
                "final envelope (no ASYA_S3_BUCKET: not stored)");
        }
        self.report_final(&env, failed);
        if failed {
            Handled::Forward {
                out: vec![Outgoing {
                    actor: self.cfg.sump.clone(),
                    body: body.to_vec(),
                    delay: std::time::Duration::ZERO,
                    message_type: "sump",
                }],
                status: "end_consumed",
            }
        } else {
            Handled::Forward {
                out: vec![],
                status: "end_consumed",
            }
        }
    }

    async fn sump(&self, body: &[u8]) -> Handled {
        let (id, stored, parsed) = match Envelope::parse(body) {
            Ok(env) => (env.id.clone(), body.to_vec(), Some(env)),
            Err(e) => {
                let wrapped = raw_sump_envelope(
                    body,
                    "ParseError",
                    &e.to_string(),
                    &self.cfg.actor,
                    &self.cfg.sump,
                );
                tracing::error!(id = %original_id(body), sump_id = %wrapped.id, error = %e,
                    "x-sump got an unparseable message; storing it wrapped in a new envelope");
                (wrapped.id.clone(), wrapped.to_bytes(), None)
            }
        };
        let text = String::from_utf8_lossy(&stored);
        let shown: String = text.chars().take(MAX_LOGGED_BYTES).collect();
        tracing::error!(id = %id, message = %shown, "x-sump received a failed envelope");
        if let Some(store) = &self.store {
            match store.put(asya_storage::KIND_SUMP, &id, &stored).await {
                Ok(key) => tracing::info!(id = %id, key = %key, "sump envelope stored"),
                Err(e) => return Handled::Requeue(format!("storing {id}: {e}")),
            }
        }
        if let Some(env) = &parsed {
            self.report_final(env, true);
        }
        Handled::Forward {
            out: vec![],
            status: "end_consumed",
        }
    }

    /// Reports the task's end to the gateway (stored first: a requeue reports again, and
    /// the gateway answers a repeated final report without applying it).
    fn report_final(&self, env: &Envelope, failed: bool) {
        if env.parent_id.is_some() {
            return;
        }
        if let Some(t) = self.reporter.target(&env.headers, &env.id) {
            self.reporter.final_report(&t, env, failed);
        }
    }
}
