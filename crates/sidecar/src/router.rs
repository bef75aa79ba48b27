//! The router: what one received message becomes (upstream §5.5, §6.4).
//!
//! [`Router::handle`] turns a delivery into a list of [`Outgoing`] envelopes;
//! the caller publishes them all (waiting for every confirm) and only then
//! acks. Anything that cannot be decided now (runtime gone, store down) is
//! [`Handled::Requeue`]: the message goes back, nothing is lost.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::envelope::{
    Envelope, FIRST_ATTEMPT_HEADER, Route, now_rfc3339, parse_rfc3339, sidecar_error,
};
use crate::metrics::Metrics;
use crate::resiliency::Decision;
use crate::runtime_client::{InvokeOutcome, RuntimeClient, RuntimeConn};
use crate::shutdown::Shutdown;

/// Attempts of one message against a runtime that keeps dying under it,
/// before it is declared a runtime crash and sent to x-sump.
const MAX_RUNTIME_CRASHES: u32 = 3;

/// One envelope to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Destination actor (its queue is derived by the transport).
    pub actor: String,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// For `messages_sent_total{message_type}`: routing, sink, sump, retry, on_exhausted.
    pub message_type: &'static str,
}

/// The decision for one delivery.
#[derive(Debug)]
pub enum Handled {
    /// Publish these, then ack. `status` labels `messages_processed_total`.
    Forward {
        out: Vec<Outgoing>,
        status: &'static str,
    },
    /// Give the message back to the queue.
    Requeue(String),
}

/// One concurrency slot's runtime connection.
#[derive(Debug, Default)]
pub struct Slot {
    conn: Option<RuntimeConn>,
}

/// Routing logic of a regular actor.
#[derive(Clone)]
pub struct Router {
    pub cfg: std::sync::Arc<Config>,
    pub runtime: RuntimeClient,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
}

impl Router {
    /// Decides what `body` becomes.
    pub async fn handle(&self, slot: &mut Slot, body: &[u8]) -> Handled {
        let mut env = match Envelope::parse(body) {
            Ok(env) => env,
            Err(e) => {
                tracing::error!(error = %e, bytes = body.len(), "unparseable message; sending it to x-sump");
                self.metrics.failed("parse_error");
                return Handled::Forward {
                    out: vec![self.to_sump_raw(body, "ParseError", &e.to_string())],
                    status: "error",
                };
            }
        };
        if env.route.curr != self.cfg.actor {
            let msg = format!(
                "route.curr is {:?} but this actor is {:?}",
                env.route.curr, self.cfg.actor
            );
            tracing::error!(id = %env.id, "{msg}; sending it to x-sump");
            self.metrics.failed("route_mismatch");
            return Handled::Forward {
                out: vec![self.to_sump(env, "RouteMismatch", sidecar_error("RouteMismatch", msg))],
                status: "error",
            };
        }
        self.begin_attempt(&mut env);
        let request = env.to_bytes();

        let mut crashes = 0;
        loop {
            if slot.conn.is_none() {
                let connect = self.runtime.connect(self.cfg.runtime_ready_timeout);
                let conn = tokio::select! {
                    c = connect => c,
                    _ = self.shutdown.wait() => return Handled::Requeue("shutting down while the runtime is away".into()),
                };
                match conn {
                    Ok(c) => slot.conn = Some(c),
                    Err(e) => return Handled::Requeue(e.to_string()),
                }
            }
            let Some(conn) = slot.conn.as_mut() else {
                continue;
            };
            let started = Instant::now();
            let outcome = tokio::time::timeout(self.cfg.actor_timeout, conn.invoke(&request)).await;
            let outcome = match outcome {
                Ok(o) => o,
                Err(_) => {
                    // Abandon the call; the connection is in an unknown state.
                    slot.conn = None;
                    let msg = format!(
                        "runtime timeout exceeded after {:?} (ASYA_RESILIENCY_ACTOR_TIMEOUT)",
                        started.elapsed()
                    );
                    tracing::error!(id = %env.id, "{msg}; sending it to x-sump");
                    self.metrics.failed("timeout");
                    self.metrics.runtime_error("Timeout");
                    return Handled::Forward {
                        out: vec![self.to_sump(env, "Timeout", sidecar_error("Timeout", msg))],
                        status: "error",
                    };
                }
            };
            match outcome {
                InvokeOutcome::Done(frames) => return self.route_frames(env, frames),
                InvokeOutcome::HandlerError(err) => return self.handler_error(env, err),
                InvokeOutcome::RuntimeError(err) => {
                    let ty = err_type(&err);
                    tracing::error!(id = %env.id, error_type = %ty, message = %err_message(&err), "runtime refused the envelope; sending it to x-sump");
                    self.metrics.runtime_error(&ty);
                    self.metrics.failed("runtime_error");
                    return Handled::Forward {
                        out: vec![self.to_sump(env, "RuntimeError", err)],
                        status: "error",
                    };
                }
                InvokeOutcome::NotProcessed(why) | InvokeOutcome::Crashed(why) => {
                    slot.conn = None;
                    self.runtime.mark_unreachable();
                    crashes += 1;
                    self.metrics.runtime_error("RuntimeCrash");
                    tracing::warn!(id = %env.id, crashes, reason = %why, "runtime connection lost during a call");
                    if crashes >= MAX_RUNTIME_CRASHES {
                        let msg = format!("runtime crashed {crashes} times on this message: {why}");
                        tracing::error!(id = %env.id, "{msg}; sending it to x-sump");
                        self.metrics.failed("runtime_error");
                        return Handled::Forward {
                            out: vec![self.to_sump(
                                env,
                                "RuntimeError",
                                sidecar_error("RuntimeCrash", msg),
                            )],
                            status: "error",
                        };
                    }
                    // Retry in place once the runtime is back.
                }
            }
        }
    }

    /// Status for this attempt; the attempt counter restarts when the
    /// envelope arrives from another actor.
    fn begin_attempt(&self, env: &mut Envelope) {
        let from_elsewhere = env.status_str("actor") != Some(self.cfg.actor.as_str());
        if from_elsewhere {
            env.status_mut().insert("attempt".into(), 1.into());
            env.headers
                .insert(FIRST_ATTEMPT_HEADER.into(), now_rfc3339().into());
        } else {
            env.headers
                .entry(FIRST_ATTEMPT_HEADER)
                .or_insert_with(|| now_rfc3339().into());
            let attempt = env.attempt();
            env.status_mut().insert("attempt".into(), attempt.into());
        }
        env.status_mut().remove("error");
        env.stamp("processing", None, &self.cfg.actor.clone());
    }

    fn route_frames(&self, env: Envelope, frames: Vec<Value>) -> Handled {
        if frames.is_empty() {
            let mut done = env;
            done.stamp("succeeded", Some("Completed"), &self.cfg.actor);
            return Handled::Forward {
                out: vec![self.outgoing(&self.cfg.sink, &done, "sink")],
                status: "empty_response",
            };
        }
        let mut out = Vec::with_capacity(frames.len());
        for (i, frame) in frames.into_iter().enumerate() {
            let route: Route = match frame.get("route").cloned().map(serde_json::from_value) {
                Some(Ok(r)) => r,
                _ => {
                    let msg = format!("frame {i} has no valid route");
                    tracing::error!(id = %env.id, "{msg}; sending it to x-sump");
                    self.metrics.failed("runtime_error");
                    return Handled::Forward {
                        out: vec![self.to_sump(
                            env,
                            "RuntimeError",
                            sidecar_error("asya.ProtocolError", msg),
                        )],
                        status: "error",
                    };
                }
            };
            let headers = match frame.get("headers") {
                Some(Value::Object(h)) => h.clone(),
                _ => env.headers.clone(),
            };
            let status = match frame.get("status") {
                Some(Value::Object(s)) => Some(s.clone()),
                _ => env.status.clone(),
            };
            let (id, parent_id) = if i == 0 {
                (env.id.clone(), env.parent_id.clone())
            } else {
                (uuid::Uuid::new_v4().to_string(), Some(env.id.clone()))
            };
            let mut child = Envelope {
                id,
                parent_id,
                route,
                headers,
                status,
                payload: frame.get("payload").cloned().unwrap_or(Value::Null),
                extra: env.extra.clone(),
            };
            if let Some(s) = child.status.as_mut() {
                s.remove("error");
            }
            if child.route.curr.is_empty() {
                child.stamp("succeeded", Some("Completed"), &self.cfg.actor);
                out.push(self.outgoing(&self.cfg.sink, &child, "sink"));
            } else {
                let next = child.route.curr.clone();
                child.stamp("pending", None, &next);
                child.status_mut().insert("attempt".into(), 1.into());
                out.push(self.outgoing(&next, &child, "routing"));
            }
        }
        Handled::Forward {
            out,
            status: "success",
        }
    }

    fn handler_error(&self, mut env: Envelope, err: Value) -> Handled {
        let ty = err_type(&err);
        let mro: Vec<String> = err
            .get("mro")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let attempt = env.attempt();
        // Upstream did not log the error content (§10.2): we do.
        let traceback = err
            .get("traceback")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_string();
        tracing::warn!(
            id = %env.id, attempt, error_type = %ty, message = %err_message(&err),
            traceback = %traceback,
            "handler raised"
        );
        self.metrics.runtime_error(&ty);
        let Some(res) = &self.cfg.resiliency else {
            return self.fail_to_sink(env, err, "RuntimeError", "error");
        };
        let (name, policy) = match res.decide(&ty, &mro) {
            Decision::Fail => return self.fail_to_sink(env, err, "RuntimeError", "error"),
            Decision::Policy(name, policy) => (name, policy),
        };
        env.status_mut()
            .insert("max_attempts".into(), policy.max_attempts.into());
        let elapsed = env
            .headers
            .get(FIRST_ATTEMPT_HEADER)
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        let out_of_time = !policy.max_duration.is_zero() && elapsed >= policy.max_duration;
        let exhausted = policy.exhausted(attempt, elapsed);
        if !exhausted {
            let delay = policy.delay(attempt);
            tracing::info!(id = %env.id, policy = name, attempt, next_attempt = attempt + 1, delay_ms = delay.as_millis() as u64, "retrying");
            env.stamp("retrying", None, &self.cfg.actor);
            env.status_mut()
                .insert("attempt".into(), (attempt + 1).into());
            env.set_error(err);
            let mut o = self.outgoing(&self.cfg.actor, &env, "retry");
            o.delay = delay;
            return Handled::Forward {
                out: vec![o],
                status: "retried",
            };
        }
        self.metrics.failed("policy_exhausted");
        if !policy.on_exhausted.is_empty() {
            let target = policy.on_exhausted[0].clone();
            tracing::warn!(id = %env.id, policy = name, attempt, to = %target, "retries exhausted; routing to onExhausted");
            env.route = env.route.shift_to(&policy.on_exhausted);
            env.stamp("failed", Some("PolicyRouted"), &self.cfg.actor);
            env.set_error(err);
            return Handled::Forward {
                out: vec![self.outgoing(&target, &env, "on_exhausted")],
                status: "policy_routed",
            };
        }
        tracing::warn!(id = %env.id, policy = name, attempt, out_of_time, "retries exhausted; sending to x-sink as failed");
        self.fail_to_sink(env, err, "PolicyExhausted", "error")
    }

    /// Handler failures reach x-sump only through x-sink (upstream §10.1).
    fn fail_to_sink(
        &self,
        mut env: Envelope,
        err: Value,
        reason: &str,
        status: &'static str,
    ) -> Handled {
        if reason == "RuntimeError" {
            self.metrics.failed("runtime_error");
        }
        env.stamp("failed", Some(reason), &self.cfg.actor);
        let original = std::mem::take(&mut env.payload);
        env.payload = json!({
            "error": err_message(&err),
            "details": err.clone(),
            "original_payload": original,
        });
        env.set_error(err);
        Handled::Forward {
            out: vec![self.outgoing(&self.cfg.sink, &env, "sink")],
            status,
        }
    }

    fn to_sump(&self, mut env: Envelope, reason: &str, err: Value) -> Outgoing {
        env.stamp("failed", Some(reason), &self.cfg.actor);
        env.set_error(err);
        self.outgoing(&self.cfg.sump, &env, "sump")
    }

    /// An envelope for a body that is not one; the raw body is kept.
    pub fn to_sump_raw(&self, body: &[u8], reason: &str, message: &str) -> Outgoing {
        let env = raw_sump_envelope(body, reason, message, &self.cfg.actor, &self.cfg.sump);
        self.outgoing(&self.cfg.sump, &env, "sump")
    }

    fn outgoing(&self, actor: &str, env: &Envelope, message_type: &'static str) -> Outgoing {
        Outgoing {
            actor: actor.to_string(),
            body: env.to_bytes(),
            delay: Duration::ZERO,
            message_type,
        }
    }
}

/// Wraps an unparseable body into an envelope for x-sump.
pub fn raw_sump_envelope(
    body: &[u8],
    reason: &str,
    message: &str,
    actor: &str,
    sump: &str,
) -> Envelope {
    let raw = match std::str::from_utf8(body) {
        Ok(s) => json!({ "raw": s }),
        Err(_) => json!({ "raw_hex": body.iter().map(|b| format!("{b:02x}")).collect::<String>() }),
    };
    let mut env = Envelope {
        id: uuid::Uuid::new_v4().to_string(),
        parent_id: None,
        route: Route {
            prev: vec![actor.to_string()],
            curr: sump.to_string(),
            next: vec![],
        },
        headers: Map::new(),
        status: None,
        payload: raw,
        extra: Map::new(),
    };
    env.stamp("failed", Some(reason), actor);
    env.set_error(sidecar_error(reason, message));
    env
}

fn err_type(err: &Value) -> String {
    err.get("type")
        .and_then(Value::as_str)
        .unwrap_or("UnknownError")
        .to_string()
}

fn err_message(err: &Value) -> String {
    err.get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}
