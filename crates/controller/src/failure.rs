//! Turning a failed reconcile into what the user sees: a phase, a condition
//! with a stable reason and a one-line message that says what to do.
//!
//! Every error a reconcile can return maps to one [`Failure`]; the reconcile
//! writes it to the actor's status and publishes it as a Warning Event, then
//! returns the error so backoff continues.

use crate::error::Error;

/// Longest message written to a condition or Event (`kubectl get` and
/// `describe` stay readable; the full error is in the controller's log).
pub const MAX_MESSAGE: usize = 300;

/// Phase of a failure the cluster (not the spec) causes: a missing CRD, a
/// denied or failed API call. The CRD's phase enum (render's `Phase`) has no
/// dedicated value yet, so these show as `Degraded` and the condition says why.
pub const CLUSTER_FAILURE_PHASE: &str = "Degraded";

/// The condition a failure is reported on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    TransportReady,
    WorkloadReady,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::TransportReady => "TransportReady",
            ConditionType::WorkloadReady => "WorkloadReady",
        }
    }
}

/// A failure as shown on the actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `status.phase`.
    pub phase: &'static str,
    /// The condition set to `False`.
    pub condition: ConditionType,
    /// Stable, CamelCase reason (condition reason and Event reason).
    pub reason: &'static str,
    /// One line: what went wrong and what to do.
    pub message: String,
}

impl Failure {
    fn new(
        phase: &'static str,
        condition: ConditionType,
        reason: &'static str,
        message: String,
    ) -> Self {
        Failure {
            phase,
            condition,
            reason,
            message: one_line(&message, MAX_MESSAGE),
        }
    }

    /// The render rejected the spec (validation, flavor conflict, missing flavor).
    pub fn render_invalid(message: &str) -> Self {
        Failure::new(
            "Invalid",
            ConditionType::WorkloadReady,
            "RenderInvalid",
            format!("nothing applied: {}", one_line(message, MAX_MESSAGE)),
        )
    }

    /// The queue could not be ensured or measured.
    pub fn queue_unavailable(queue: &str, transport: &str, error: &str) -> Self {
        Failure::new(
            "TransportError",
            ConditionType::TransportReady,
            "QueueUnavailable",
            format!(
                "cannot ensure queue {queue} on {transport}: {}; check the transport's endpoint and credentials in the platform config",
                reduce_transport_error(error)
            ),
        )
    }

    /// The failure to report for `error`.
    pub fn from_error(error: &Error) -> Self {
        match error {
            Error::RenderInvalid(message) => Failure::render_invalid(message),
            Error::Apply { key, source } => {
                apply_failure(&key.api_version, &key.kind, &key.name, source)
            }
            Error::Prune { kind, source } => api_failure(&format!("prune {kind}s"), source),
            Error::Read { what, source } => api_failure(&format!("read {what}"), source),
            Error::Kube(source) => api_failure("talk to the API server", source),
            Error::MalformedObject(what) => Failure::new(
                "Invalid",
                ConditionType::WorkloadReady,
                "RenderInvalid",
                format!(
                    "the render produced an object without apiVersion, kind or name ({what}); this is a bug in the composition"
                ),
            ),
            Error::QueueNotReady {
                queue,
                transport,
                message,
            } => Failure::queue_unavailable(queue, transport, message),
            Error::Queue { transport, source } => {
                Failure::queue_unavailable("", transport, &source.to_string())
            }
            Error::NoQueueDriver(t) => Failure::new(
                "TransportError",
                ConditionType::TransportReady,
                "NoQueueDriver",
                format!(
                    "the platform config has no transport {t:?}; set spec.transport to one it lists"
                ),
            ),
            other => Failure::new(
                CLUSTER_FAILURE_PHASE,
                ConditionType::WorkloadReady,
                "ReconcileFailed",
                other.to_string(),
            ),
        }
    }
}

fn apply_failure(api_version: &str, kind: &str, name: &str, source: &kube::Error) -> Failure {
    let phase = CLUSTER_FAILURE_PHASE;
    let wl = ConditionType::WorkloadReady;
    match source {
        // An apply never 404s on a missing object (it creates it): the type itself is not served.
        kube::Error::Api(s) if s.code == 404 => {
            let hint = if api_version.starts_with("keda.sh/") {
                "is KEDA installed?".to_owned()
            } else {
                format!("install the CRD that serves {api_version} {kind}")
            };
            Failure::new(
                phase,
                wl,
                "CrdMissing",
                format!("{kind} CRD not found ({api_version} is not served): {hint}"),
            )
        }
        kube::Error::Api(s) if s.code == 403 => Failure::new(
            phase,
            wl,
            "Forbidden",
            format!(
                "the controller may not apply {kind} {name}: grant it in the controller's ClusterRole ({})",
                s.message
            ),
        ),
        // The body comes from the actor's spec (and its flavors): the spec is invalid.
        kube::Error::Api(s) if rejects_the_body(s) => Failure::new(
            "Invalid",
            wl,
            "ApplyRejected",
            format!(
                "the API server rejected {kind} {name}: {}{}; fix the actor's spec",
                // Shortened here so that what to do is never the part cut off.
                one_line(trim_object_prefix(&s.message), 150),
                if s.message.contains("quantities must match") {
                    " (a value under resources is not a quantity such as 500m or 1Gi)"
                } else {
                    ""
                }
            ),
        ),
        other => api_failure(&format!("apply {kind} {name}"), other),
    }
}

/// True when the server refused the object itself, so retrying the same
/// body cannot succeed. 1.20 answers a body it cannot decode into the typed
/// object (an unparsable quantity, a field its schema lacks) with HTTP 500.
fn rejects_the_body(s: &kube::core::Status) -> bool {
    match s.code {
        400 | 422 => true,
        500 => [
            "failed to convert",
            "unable to convert",
            "failed to create typed",
            "field not declared in schema",
        ]
        .iter()
        .any(|m| s.message.contains(m)),
        _ => false,
    }
}

fn api_failure(what: &str, source: &kube::Error) -> Failure {
    let (reason, detail) = match source {
        kube::Error::Api(s) if s.code == 403 => ("Forbidden", s.message.clone()),
        kube::Error::Api(s) => ("ApiError", format!("HTTP {}: {}", s.code, s.message)),
        other => ("ApiUnavailable", other.to_string()),
    };
    Failure::new(
        CLUSTER_FAILURE_PHASE,
        ConditionType::WorkloadReady,
        reason,
        format!("could not {what}: {detail}; retrying with backoff"),
    )
}

/// `Deployment.apps "x" is invalid: spec…: Invalid value…` → `spec…: Invalid value…`
/// (the kind and name are already in the message).
/// and `failed to convert …: unable to convert … Kind=Deployment: quantities…` → `quantities…`.
fn trim_object_prefix(message: &str) -> &str {
    if let Some((_, rest)) = message.split_once(" is invalid: ") {
        return rest;
    }
    if let Some((_, rest)) = message.rsplit_once(", Kind=")
        && let Some((_, detail)) = rest.split_once(": ")
    {
        return detail;
    }
    message
}

/// The error of a queue driver in one short line. An AWS SDK error
/// (`DisplayErrorContext`: the source chain, then the whole error's `Debug`
/// in parentheses) becomes `AWS <code>: <message>` when the service answered,
/// or its source chain when it could not be reached.
pub fn reduce_transport_error(error: &str) -> String {
    if let (Some(code), message) = (
        quoted_after(error, "code: Some(\""),
        quoted_after(error, "message: Some(\""),
    ) {
        return match message {
            Some(m) => format!("AWS {code}: {m}"),
            None => format!("AWS {code}"),
        };
    }
    let mut chain = error;
    for variant in [
        "DispatchFailure(",
        "TimeoutError(",
        "ResponseError(",
        "ServiceError(",
        "ConstructionFailure(",
    ] {
        if let Some(i) = chain.find(&format!(" ({variant}")) {
            chain = &chain[..i];
        }
    }
    one_line(chain, MAX_MESSAGE)
}

fn quoted_after(haystack: &str, marker: &str) -> Option<String> {
    let start = haystack.find(marker)? + marker.len();
    let rest = &haystack[start..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// Collapses whitespace runs (newlines included) and cuts at `max` bytes.
pub fn one_line(s: &str, max: usize) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.len() <= max {
        return joined;
    }
    let mut end = max;
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &joined[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn a_missing_keda_crd_asks_whether_keda_is_installed() {
        let f = apply_failure(
            "keda.sh/v1alpha1",
            "ScaledObject",
            "a",
            &api(404, "404 page not found"),
        );
        assert_eq!((f.reason, f.phase), ("CrdMissing", "Degraded"));
        assert_eq!(
            f.message,
            "ScaledObject CRD not found (keda.sh/v1alpha1 is not served): is KEDA installed?"
        );
    }

    #[test]
    fn a_rejected_apply_names_the_field_once() {
        let f = apply_failure(
            "apps/v1",
            "Deployment",
            "a",
            &api(
                422,
                "Deployment.apps \"a\" is invalid: spec.x: Invalid value: \"lots\"\nmore",
            ),
        );
        assert_eq!((f.reason, f.phase), ("ApplyRejected", "Invalid"));
        assert_eq!(
            f.message,
            "the API server rejected Deployment a: spec.x: Invalid value: \"lots\" more; fix the actor's spec"
        );
    }

    #[test]
    fn a_body_1_20_cannot_decode_is_rejected_with_a_hint() {
        let f = apply_failure(
            "apps/v1",
            "Deployment",
            "a",
            &api(
                500,
                "failed to convert new object to proper version: unable to convert unstructured object to apps/v1, Kind=Deployment: quantities must match the regular expression 'x'",
            ),
        );
        assert_eq!(f.reason, "ApplyRejected");
        assert_eq!(
            f.message,
            "the API server rejected Deployment a: quantities must match the regular expression 'x' \
             (a value under resources is not a quantity such as 500m or 1Gi); fix the actor's spec"
        );
        let other = apply_failure(
            "apps/v1",
            "Deployment",
            "a",
            &api(500, "etcdserver: timeout"),
        );
        assert_eq!(other.reason, "ApiError");
    }

    #[test]
    fn an_aws_service_error_is_its_code_and_message() {
        let raw = "service error: unhandled error (InvalidClientTokenId): Error { code: \"x\" } \
            (ServiceError(ServiceError { source: Unhandled(Unhandled { source: ErrorMetadata { \
            code: Some(\"InvalidClientTokenId\"), message: Some(\"The security token included in the request is invalid.\"), \
            extras: None } }), raw: Response { status: StatusCode(403), headers: Headers { headers: {} }, body: SdkBody { inner: Once(Some(b\"<xml/>\")) } } }))";
        assert_eq!(
            reduce_transport_error(raw),
            "AWS InvalidClientTokenId: The security token included in the request is invalid."
        );
    }

    #[test]
    fn an_unreachable_endpoint_is_its_source_chain() {
        let raw = "queue admin on q failed: dispatch failure: io error: error trying to connect: tcp connect error: \
            Connection refused (os error 111) (DispatchFailure(DispatchFailure { source: ConnectorError { kind: Io, \
            source: hyper_util::client::legacy::Error(Connect, ConnectError(\"tcp connect error\", Os { code: 111 })) } }))";
        assert_eq!(
            reduce_transport_error(raw),
            "queue admin on q failed: dispatch failure: io error: error trying to connect: tcp connect error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn long_messages_are_cut_to_one_line() {
        let s = one_line(&"word\n".repeat(200), 50);
        assert!(!s.contains('\n'));
        assert!(s.len() <= 50 + '…'.len_utf8());
    }
}
