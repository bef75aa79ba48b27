//! Reports to the gateway (upstream §6.7, §6.9): a regular actor says `received`,
//! `processing` and `completed` about each envelope at `POST <url>/mesh/{id}/progress`;
//! x-sink reports the final result and x-sump the failure at `POST <url>/mesh/{id}/final`.
//!
//! `<url>` is the envelope's `x-asya-gateway-url` header, else `ASYA_GATEWAY_URL`; header
//! `x-asya-mesh-status: off` turns reports about that envelope off. The header comes from
//! whoever published the envelope, so it is checked before anything is sent to it: only
//! `http://` with a host and no credentials (a sidecar must not become a way to reach
//! arbitrary schemes or leak credentials).
//!
//! Reporting never holds up a message: reports go through a bounded queue (`try_send`) to
//! one background task that posts them in order, with a short timeout and a few tries.
//! A report that finds the queue full, or whose tries all fail, is dropped and counted in
//! `asya_actor_gateway_reports_dropped_total{reason}`. An envelope without a gateway URL
//! costs one header lookup and no allocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asya_contract::headers;
use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::envelope::{Envelope, Route};
use crate::metrics::Metrics;

/// Reports waiting to be posted; beyond this they are dropped (the gateway is slow or gone).
pub const QUEUE_CAPACITY: usize = 1024;
/// One HTTP call, connect included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
/// Connecting alone: a gateway that is down refuses at once, one that is unreachable
/// should not hold the queue for the whole HTTP timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Tries per report (connection errors and 5xx are tried again; 4xx are final).
pub const TRIES: u32 = 3;
/// Pause between two tries of one report.
pub const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What a regular actor reports about one envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Parsed and addressed to this actor.
    Received,
    /// About to be handed to the runtime.
    Processing,
    /// The handler's results are handed to routing.
    Completed,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Received => "received",
            Step::Processing => "processing",
            Step::Completed => "completed",
        }
    }
}

/// Where the reports about one envelope go.
#[derive(Debug, Clone)]
pub struct Target {
    base: reqwest::Url,
    id: String,
}

impl Target {
    /// `<base>/mesh/{id}/{what}`, the id percent-encoded as one path segment.
    fn url(&self, what: &str) -> Option<reqwest::Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .extend(["mesh", self.id.as_str(), what]);
        Some(url)
    }
}

/// Checks a gateway URL (from a header or `ASYA_GATEWAY_URL`): `http://host[:port][/prefix]`,
/// no credentials, no query. A trailing slash is dropped (upstream's double-slash bug).
pub fn checked_base(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{raw:?}: {e}"))?;
    match url.scheme() {
        "http" => {}
        // The mesh listener is plain HTTP inside the cluster; this build has no TLS client.
        "https" => {
            return Err(format!(
                "{raw:?}: https is not supported (the sidecar's report client has no TLS; \
                 the gateway's mesh listener is plain HTTP inside the cluster)"
            ));
        }
        other => return Err(format!("{raw:?}: scheme {other:?} is not http")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?}: no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?}: credentials are not allowed in the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?}: a query or fragment is not allowed"));
    }
    Ok(url)
}

struct Report {
    url: reqwest::Url,
    body: Bytes,
}

/// Sends reports in the background; cheap to clone.
#[derive(Clone)]
pub struct Reporter {
    tx: Option<mpsc::Sender<Report>>,
    fallback: Option<reqwest::Url>,
    metrics: Option<Metrics>,
    /// Reports queued or being posted (for [`Reporter::drain`]).
    pending: Arc<AtomicUsize>,
    /// A bad header URL is logged once per process, then only counted.
    warned: Arc<AtomicBool>,
}

impl Reporter {
    /// A reporter that reports nothing (tests, benchmarks).
    pub fn disabled() -> Self {
        Reporter {
            tx: None,
            fallback: None,
            metrics: None,
            pending: Arc::default(),
            warned: Arc::default(),
        }
    }

    /// Starts the background poster. `fallback`: `ASYA_GATEWAY_URL`, already checked by
    /// the config. Must run inside a tokio runtime.
    pub fn start(fallback: Option<&str>, metrics: &Metrics) -> Self {
        let fallback = fallback.and_then(|f| checked_base(f).ok());
        let client = match reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client: no reports to the gateway");
                return Reporter::disabled();
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(post_all(client, rx, metrics.clone(), pending.clone()));
        Reporter {
            tx: Some(tx),
            fallback,
            metrics: Some(metrics.clone()),
            pending,
            warned: Arc::default(),
        }
    }

    /// Where reports about the envelope with `headers` and `id` go, or `None` when it is
    /// not reported (no URL, `x-asya-mesh-status: off`, or a URL the guard refuses).
    pub fn target(&self, hdrs: &Map<String, Value>, id: &str) -> Option<Target> {
        self.tx.as_ref()?;
        let url = hdrs.get(headers::GATEWAY_URL).and_then(Value::as_str);
        if url.is_none() && self.fallback.is_none() {
            return None;
        }
        if hdrs.get(headers::MESH_STATUS).and_then(Value::as_str) == Some(headers::MESH_STATUS_OFF)
        {
            return None;
        }
        let base = match url {
            None => self.fallback.clone()?,
            Some(raw) => match checked_base(raw) {
                Ok(u) => u,
                Err(why) => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(id, reason = %why,
                            "refusing the envelope's gateway URL: no reports for it (logged once; counted as reason bad_url)");
                    }
                    self.dropped("bad_url");
                    return None;
                }
            },
        };
        Some(Target {
            base,
            id: id.to_string(),
        })
    }

    /// Reports `step` of a regular actor.
    pub fn progress(&self, t: &Target, route: &Route, step: Step, took: Option<Duration>) {
        #[derive(Serialize)]
        struct Body<'a> {
            prev: &'a [String],
            curr: &'a str,
            next: &'a [String],
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            duration_ms: Option<u64>,
        }
        let body = Body {
            prev: &route.prev,
            curr: &route.curr,
            next: &route.next,
            status: step.as_str(),
            duration_ms: took.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        // Serialising strings cannot fail.
        let body = serde_json::to_vec(&body).unwrap_or_default();
        self.enqueue(t.url("progress"), body);
    }

    /// Reports the end of the task `env` belongs to: `succeeded` with its payload as the
    /// result, or `failed` with `status.error`.
    pub fn final_report(&self, t: &Target, env: &Envelope, failed: bool) {
        self.enqueue(t.url("final"), final_body(env, failed));
    }

    fn enqueue(&self, url: Option<reqwest::Url>, body: Vec<u8>) {
        let (Some(tx), Some(url)) = (&self.tx, url) else {
            return;
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        let report = Report {
            url,
            body: Bytes::from(body),
        };
        if tx.try_send(report).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.dropped("queue_full");
        }
    }

    fn dropped(&self, reason: &'static str) {
        if let Some(m) = &self.metrics {
            m.report_dropped(reason);
        }
    }

    /// Waits until every queued report was posted or dropped, at most `limit` (shutdown:
    /// x-sink's last final reports should still go out).
    pub async fn drain(&self, limit: Duration) {
        let start = Instant::now();
        while self.pending.load(Ordering::SeqCst) > 0 && start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The body of `POST /mesh/{id}/final` for `env`.
pub fn final_body(env: &Envelope, failed: bool) -> Vec<u8> {
    let actor = env.status_str("actor");
    if !failed {
        #[derive(Serialize)]
        struct Succeeded<'a> {
            status: &'static str,
            result: &'a RawValue,
            #[serde(skip_serializing_if = "Option::is_none")]
            actor: Option<&'a str>,
        }
        return serde_json::to_vec(&Succeeded {
            status: "succeeded",
            result: &env.payload,
            actor,
        })
        .unwrap_or_default();
    }
    let status = env.status.as_ref();
    let reason = env.status_str("reason");
    let error = match status.and_then(|s| s.get("error")) {
        Some(e @ Value::Object(_)) => e.clone(),
        Some(Value::String(m)) => json!({"type": reason.unwrap_or("Failed"), "message": m}),
        _ => json!({
            "type": reason.unwrap_or("Failed"),
            "message": format!("failed at {}", actor.unwrap_or("an unknown actor")),
        }),
    };
    let mut body = Map::new();
    body.insert("status".into(), "failed".into());
    body.insert("error".into(), error);
    if let Some(a) = actor {
        body.insert("actor".into(), a.into());
    }
    if let Some(r) = reason {
        body.insert(
            "message".into(),
            format!("{r} at {}", actor.unwrap_or("?")).into(),
        );
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// The background poster: one report at a time, in the order they were queued.
async fn post_all(
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Report>,
    metrics: Metrics,
    pending: Arc<AtomicUsize>,
) {
    let mut warned_unreachable = false;
    while let Some(r) = rx.recv().await {
        match post(&client, &r).await {
            Ok(()) => warned_unreachable = false,
            Err(Failure::Rejected(code)) => {
                tracing::debug!(url = %r.url, code, "the gateway refused a report");
                metrics.report_dropped("rejected");
            }
            Err(Failure::Unreachable(why)) => {
                // Once per outage, not once per report.
                if !warned_unreachable {
                    tracing::warn!(url = %r.url, error = %why, tries = TRIES,
                        "gateway unreachable: dropping reports until it answers again");
                    warned_unreachable = true;
                }
                metrics.report_dropped("retries_exhausted");
            }
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Failure {
    /// 4xx: the gateway will never take this report (unknown task, bad body).
    Rejected(u16),
    Unreachable(String),
}

async fn post(client: &reqwest::Client, r: &Report) -> Result<(), Failure> {
    let mut last = String::new();
    for attempt in 1..=TRIES {
        let sent = client
            .post(r.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(r.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) if resp.status().is_client_error() => {
                return Err(Failure::Rejected(resp.status().as_u16()));
            }
            Ok(resp) => last = format!("HTTP {}", resp.status()),
            Err(e) => last = e.to_string(),
        }
        if attempt < TRIES {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
    Err(Failure::Unreachable(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_takes_plain_http_with_a_host_only() {
        let ok = checked_base("http://asya-gateway-mesh.asya:8081/").unwrap();
        assert_eq!(ok.host_str(), Some("asya-gateway-mesh.asya"));
        let prefixed = checked_base("http://gw/prefix/").unwrap();
        let t = Target {
            base: prefixed,
            id: "a/../b c".into(),
        };
        // The id is one encoded segment: it cannot climb out of /mesh/.
        assert_eq!(
            t.url("progress").unwrap().as_str(),
            "http://gw/prefix/mesh/a%2F..%2Fb%20c/progress"
        );
        let t = Target {
            base: ok,
            id: "x".into(),
        };
        assert_eq!(
            t.url("final").unwrap().as_str(),
            "http://asya-gateway-mesh.asya:8081/mesh/x/final"
        );
        for bad in [
            "file:///etc/passwd",
            "gopher://gw/",
            "https://gw/",
            "http://user:pw@gw/",
            "http://gw/?a=1",
            "http://",
            "gw:8081",
            "",
        ] {
            assert!(checked_base(bad).is_err(), "{bad} accepted");
        }
    }

    fn env(headers: Value) -> Envelope {
        let body = json!({"id": "t1", "route": {"prev": [], "curr": "a", "next": []},
            "headers": headers, "payload": {"x": 1}});
        Envelope::parse(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn targets_follow_the_header_the_switch_and_the_fallback() {
        let m = Metrics::new("q", "rabbitmq");
        let r = Reporter::start(None, &m);
        assert!(r.target(&env(json!({})).headers, "t1").is_none());
        let e = env(json!({"x-asya-gateway-url": "http://gw:1"}));
        assert!(r.target(&e.headers, "t1").is_some());
        let off = env(json!({"x-asya-gateway-url": "http://gw:1", "x-asya-mesh-status": "off"}));
        assert!(r.target(&off.headers, "t1").is_none());
        let bad = env(json!({"x-asya-gateway-url": "file:///etc/passwd"}));
        assert!(r.target(&bad.headers, "t1").is_none());
        assert!(
            m.encode().contains(
                "asya_actor_gateway_reports_dropped_total{queue=\"q\",reason=\"bad_url\"} 1"
            ),
            "{}",
            m.encode()
        );
        let with_fallback = Reporter::start(Some("http://fallback:2"), &m);
        let t = with_fallback.target(&env(json!({})).headers, "t1").unwrap();
        assert_eq!(t.base.host_str(), Some("fallback"));
        assert!(Reporter::disabled().target(&e.headers, "t1").is_none());
    }

    #[test]
    fn final_bodies_carry_the_result_or_the_error() {
        let mut e = env(json!({}));
        e.stamp("succeeded", Some("Completed"), "c");
        let v: Value = serde_json::from_slice(&final_body(&e, false)).unwrap();
        assert_eq!(
            v,
            json!({"status": "succeeded", "result": {"x": 1}, "actor": "c"})
        );
        e.stamp("failed", Some("RuntimeError"), "b");
        e.set_error(json!({"type": "ValueError", "message": "bad", "mro": []}));
        let v: Value = serde_json::from_slice(&final_body(&e, true)).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"]["type"], "ValueError");
        assert_eq!(v["error"]["message"], "bad");
        assert_eq!(v["actor"], "b");
    }

    #[tokio::test]
    async fn a_dead_gateway_costs_nothing_but_dropped_reports() {
        // A port nothing listens on: every try is refused at once.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let m = Metrics::new("q", "rabbitmq");
        let r = Reporter::start(None, &m);
        let e = env(json!({"x-asya-gateway-url": format!("http://127.0.0.1:{port}")}));
        let t = r.target(&e.headers, "t1").unwrap();
        let start = Instant::now();
        for _ in 0..(QUEUE_CAPACITY + 500) {
            r.progress(&t, &e.route, Step::Received, None);
        }
        // Queuing never waits on the network.
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        let text = m.encode();
        assert!(
            text.contains("reason=\"queue_full\"}"),
            "some reports must have found the queue full:\n{text}"
        );
        r.drain(Duration::from_secs(3)).await;
        assert!(
            m.encode().contains("reason=\"retries_exhausted\"}"),
            "{}",
            m.encode()
        );
    }
}
