//! The router: what one received message becomes (upstream §5.5, §6.4).
//!
//! [`Router::handle`] turns a delivery into a list of [`Outgoing`] envelopes;
//! the caller publishes them all (waiting for every confirm) and only then
//! acks. Anything that cannot be decided now (runtime gone, store down) is
//! [`Handled::Requeue`]: the message goes back, nothing is lost.

use std::time::{Duration, Instant, SystemTime};

use asya_contract::headers::STATUS_DEADLINE_AT;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::envelope::{
    Envelope, FIRST_ATTEMPT_HEADER, Route, now_rfc3339, parse_rfc3339, payload_of, set,
    sidecar_error,
};
use crate::metrics::Metrics;
use crate::progress::{Reporter, Step, Target};
use crate::resiliency::Decision;
use crate::runtime_client::{InvokeOutcome, OutFrame, RuntimeClient, RuntimeConn, invoke_frame};
use crate::shutdown::Shutdown;
use serde_json::value::RawValue;

/// Attempts of one message against a runtime that keeps dying under it,
/// before it is declared a runtime crash and sent to x-sump.
const MAX_RUNTIME_CRASHES: u32 = 3;
/// Calls of one message in total (crashes plus connections lost before the
/// request went out) before it is given back to the queue.
const MAX_CALL_ATTEMPTS: u32 = 10;
/// Least time left before the pipeline's deadline for a handler call to start.
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// The error type a runtime answers when a handler ran past `deadline_ms`.
pub const RUNTIME_TIMEOUT_TYPE: &str = "asya.Timeout";

/// The sidecar's own timer: a little longer than the deadline the runtime
/// enforces, so the runtime's `asya.Timeout` normally arrives first.
pub fn backstop_timeout(deadline: Duration) -> Duration {
    deadline + (deadline / 10).clamp(Duration::from_millis(500), Duration::from_secs(10))
}

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
    pub reporter: Reporter,
}

impl Router {
    /// Decides what `body` becomes, reporting `received`, `processing` and `completed` to
    /// the gateway when the envelope names one (see [`crate::progress`]).
    pub async fn handle(&self, slot: &mut Slot, body: &[u8]) -> Handled {
        let env = match self.parse(body) {
            Ok(env) => env,
            Err(handled) => return handled,
        };
        // Fan-out children have ids the gateway does not know (it would answer 404).
        let target = match env.parent_id {
            None => self.reporter.target(&env.headers, &env.id),
            Some(_) => None,
        };
        let Some(target) = target else {
            return self.process(slot, env, None).await;
        };
        // Reporting is on: the route as received addresses all three reports.
        let started = Instant::now();
        let route = env.route.clone();
        self.reporter
            .progress(&target, &route, Step::Received, None);
        let handled = self.process(slot, env, Some((&target, &route))).await;
        if let Handled::Forward {
            status: "success" | "empty_response",
            ..
        } = &handled
        {
            self.reporter
                .progress(&target, &route, Step::Completed, Some(started.elapsed()));
        }
        handled
    }

    /// Parses `body` and checks it is addressed to this actor; what to do otherwise.
    fn parse(&self, body: &[u8]) -> Result<Envelope, Handled> {
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
                tracing::error!(id = %original_id(body), sump_id = %wrapped.id, error = %e, bytes = body.len(),
                    "unparseable message; sending it to x-sump wrapped in a new envelope");
                return Err(Handled::Forward {
                    out: vec![self.outgoing(&self.cfg.sump, &wrapped, "sump")],
                    status: "error",
                });
            }
        };
        if env.route.curr != self.cfg.actor {
            let msg = format!(
                "route.curr is {:?} but this actor is {:?}",
                env.route.curr, self.cfg.actor
            );
            self.metrics.failed("route_mismatch");
            return Err(self.sump_logged(
                env,
                "RouteMismatch",
                sidecar_error("RouteMismatch", msg),
            ));
        }
        Ok(env)
    }

    /// Calls the runtime with `env` and decides where its results go. `report`: where to
    /// say `processing`, when the envelope is reported.
    async fn process(
        &self,
        slot: &mut Slot,
        mut env: Envelope,
        report: Option<(&Target, &Route)>,
    ) -> Handled {
        self.begin_attempt(&mut env);
        // The pipeline's deadline (status.deadline_at, from the gateway) bounds the call;
        // past it, or too close to start, the handler is not called at all.
        let sla_left = env.deadline_at().map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        if let Some(left) = sla_left
            && left < DEADLINE_MARGIN
        {
            let at = env.status_str(STATUS_DEADLINE_AT).unwrap_or("").to_string();
            let msg = format!(
                "the pipeline's deadline (status.deadline_at = {at}) has passed or is less than {DEADLINE_MARGIN:?} away; the handler was not called"
            );
            return self.deadline_passed(env, sidecar_error("DeadlineExceeded", msg));
        }
        let sla_bound = sla_left.is_some_and(|left| left < self.cfg.actor_timeout);
        let deadline = sla_left.map_or(self.cfg.actor_timeout, |left| {
            left.min(self.cfg.actor_timeout)
        });
        let request = invoke_frame(&env.to_bytes(), Some(deadline));
        let frame_len = request.len() - 4;
        if frame_len > self.runtime.max_frame() {
            // The runtime would refuse it and drop the connection; say why here.
            let msg = format!(
                "payload of {frame_len} bytes exceeds ASYA_MAX_FRAME_BYTES = {}",
                self.runtime.max_frame()
            );
            self.metrics.failed("payload_too_large");
            return self.sump_logged(
                env,
                "RuntimeError",
                sidecar_error("asya.PayloadTooLarge", msg),
            );
        }
        let backstop = backstop_timeout(deadline);
        if let Some((target, route)) = report {
            self.reporter
                .progress(target, route, Step::Processing, None);
        }

        // Runtime lives that died under this message: one crash each.
        let mut crashed_in: Vec<std::sync::Arc<str>> = Vec::new();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            if let Some(c) = &slot.conn
                && self.runtime.is_retired(c.boot())
            {
                slot.conn = None;
            }
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
            let boot = conn.boot().clone();
            let started = Instant::now();
            let outcome = match tokio::time::timeout(backstop, conn.invoke(&request)).await {
                Ok(o) => o,
                Err(_) => {
                    // Abandon the call; this runtime life may still be running
                    // the handler, so nothing more is sent to it.
                    slot.conn = None;
                    self.runtime.retire(&boot);
                    let msg = format!(
                        "runtime timeout exceeded after {:?} (ASYA_RESILIENCY_ACTOR_TIMEOUT = {:?}, time left before the pipeline's deadline: {sla_left:?})",
                        started.elapsed(),
                        self.cfg.actor_timeout
                    );
                    let err = sidecar_error("Timeout", msg);
                    if sla_bound {
                        self.metrics.handler_invocation("timeout");
                        return self.deadline_passed(env, err);
                    }
                    return self.timed_out(env, err);
                }
            };
            match outcome {
                InvokeOutcome::HandlerError(err) | InvokeOutcome::RuntimeError(err)
                    if err_type(&err) == RUNTIME_TIMEOUT_TYPE =>
                {
                    // The runtime could not stop the handler and exits.
                    slot.conn = None;
                    self.runtime.retire(&boot);
                    if sla_bound {
                        self.metrics.handler_invocation("timeout");
                        return self.deadline_passed(env, err);
                    }
                    return self.timed_out(env, err);
                }
                InvokeOutcome::Done(frames) => {
                    self.metrics.handler_invocation("success");
                    return self.route_frames(env, frames);
                }
                InvokeOutcome::HandlerError(err) => {
                    self.metrics.handler_invocation("error");
                    return self.handler_error(env, err);
                }
                InvokeOutcome::RuntimeError(err) => {
                    let ty = err_type(&err);
                    tracing::error!(id = %env.id, sump_id = %env.id, error_type = %ty, message = %err_message(&err), "runtime refused the envelope; sending it to x-sump");
                    self.metrics.runtime_error(&ty);
                    self.metrics.failed("runtime_error");
                    return Handled::Forward {
                        out: vec![self.to_sump(env, "RuntimeError", err)],
                        status: "error",
                    };
                }
                InvokeOutcome::NotSent(why) => {
                    // The runtime never saw the request: not the message's fault.
                    slot.conn = None;
                    self.runtime.retire(&boot);
                    tracing::warn!(id = %env.id, boot = %boot, reason = %why, "runtime connection lost before the call; waiting for a new runtime");
                    if attempts >= MAX_CALL_ATTEMPTS {
                        return Handled::Requeue(format!("runtime unreachable: {why}"));
                    }
                }
                InvokeOutcome::Crashed(why) => {
                    slot.conn = None;
                    self.metrics.handler_invocation("crashed");
                    if self.runtime.retire(&boot) {
                        self.metrics.runtime_error("RuntimeCrash");
                    }
                    if !crashed_in.contains(&boot) {
                        crashed_in.push(boot.clone());
                    }
                    let crashes = crashed_in.len() as u32;
                    tracing::warn!(id = %env.id, boot = %boot, crashes, reason = %why, "runtime lost during a call; retrying on its next life");
                    if crashes >= MAX_RUNTIME_CRASHES || attempts >= MAX_CALL_ATTEMPTS {
                        let msg = format!("runtime crashed {crashes} times on this message: {why}");
                        self.metrics.failed("runtime_error");
                        return self.sump_logged(
                            env,
                            "RuntimeError",
                            sidecar_error("RuntimeCrash", msg),
                        );
                    }
                }
            }
        }
    }

    /// The pipeline's deadline passed (before or during the call): x-sink as failed,
    /// reason `Timeout`, so the caller (the gateway's task) learns of it; not x-sump,
    /// since the handler kept to its own timeout.
    fn deadline_passed(&self, env: Envelope, err: Value) -> Handled {
        self.metrics.failed("deadline_exceeded");
        tracing::warn!(id = %env.id, message = %err_message(&err), "pipeline deadline passed; sending to x-sink as failed");
        self.fail_to_sink(env, err, "Timeout", "deadline_exceeded")
    }

    /// A call past the actor timeout (the sidecar's own timer or the
    /// runtime's `asya.Timeout`): x-sump, reason `Timeout`.
    fn timed_out(&self, env: Envelope, err: Value) -> Handled {
        self.metrics.handler_invocation("timeout");
        self.metrics.failed("timeout");
        self.metrics.runtime_error("Timeout");
        self.sump_logged(env, "Timeout", err)
    }

    /// Sends `env` to x-sump and says so, with the id it keeps there.
    fn sump_logged(&self, env: Envelope, reason: &str, err: Value) -> Handled {
        tracing::error!(id = %env.id, sump_id = %env.id, reason, error_type = %err_type(&err),
            message = %err_message(&err), "sending the envelope to x-sump");
        Handled::Forward {
            out: vec![self.to_sump(env, reason, err)],
            status: "error",
        }
    }

    /// Status for this attempt; the attempt counter restarts when the
    /// envelope arrives from another actor.
    fn begin_attempt(&self, env: &mut Envelope) {
        let from_elsewhere = env.status_str("actor") != Some(self.cfg.actor.as_str());
        if from_elsewhere {
            set(env.status_mut(), "attempt", 1.into());
            set(&mut env.headers, FIRST_ATTEMPT_HEADER, now_rfc3339().into());
        } else {
            if !env.headers.contains_key(FIRST_ATTEMPT_HEADER) {
                set(&mut env.headers, FIRST_ATTEMPT_HEADER, now_rfc3339().into());
            }
            let attempt = env.attempt();
            set(env.status_mut(), "attempt", attempt.into());
        }
        env.status_mut().remove("error");
        env.stamp("processing", None, &self.cfg.actor);
    }

    fn route_frames(&self, env: Envelope, frames: Vec<OutFrame>) -> Handled {
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
            // Fields are moved out of the frame: no per-message body copies.
            let OutFrame {
                route: route_value,
                headers: headers_value,
                status: status_value,
                payload,
            } = frame;
            let payload = payload.unwrap_or_else(|| RawValue::NULL.to_owned());
            let route: Route = match route_value.map(|r| serde_json::from_str(r.get())) {
                Some(Ok(r)) => r,
                _ => {
                    let msg = format!("frame {i} has no valid route");
                    self.metrics.failed("runtime_error");
                    return self.sump_logged(
                        env,
                        "RuntimeError",
                        sidecar_error("asya.ProtocolError", msg),
                    );
                }
            };
            let headers = match headers_value {
                Some(Value::Object(h)) => h,
                _ => env.headers.clone(),
            };
            let status = match status_value {
                Some(Value::Object(s)) => Some(s),
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
                payload,
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
                set(child.status_mut(), "attempt", 1.into());
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
        #[derive(serde::Serialize)]
        struct Failed<'a> {
            error: String,
            details: &'a Value,
            original_payload: &'a RawValue,
        }
        env.payload = payload_of(&Failed {
            error: err_message(&err),
            details: &err,
            original_payload: &env.payload,
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

    fn outgoing(&self, actor: &str, env: &Envelope, message_type: &'static str) -> Outgoing {
        Outgoing {
            actor: actor.to_string(),
            body: env.to_bytes(),
            delay: Duration::ZERO,
            message_type,
        }
    }
}

/// The `id` of a body that is not a valid envelope, when it has one (for logs).
pub fn original_id(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    match serde_json::from_slice::<IdOnly>(body) {
        Ok(IdOnly {
            id: Some(Value::String(s)),
        }) => s,
        Ok(IdOnly { id: Some(other) }) => other.to_string(),
        _ => "-".to_string(),
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
        payload: payload_of(&raw),
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
