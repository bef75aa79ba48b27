//! Envelope headers that more than one component reads or writes (upstream §5.3, §6.7).

/// Where the pipeline reports a task's progress and final result: the gateway's mesh
/// listener (`http://host:port`). The gateway stamps it into every envelope it publishes;
/// each sidecar then `POST`s to `<url>/mesh/{id}/progress` and x-sink / x-sump to
/// `<url>/mesh/{id}/final`.
pub const GATEWAY_URL: &str = "x-asya-gateway-url";

/// Reporting switch of one envelope: [`MESH_STATUS_OFF`] turns every report about it off
/// (any other value, or none, leaves reporting on when a gateway URL is known).
pub const MESH_STATUS: &str = "x-asya-mesh-status";

/// The [`MESH_STATUS`] value that disables reporting.
pub const MESH_STATUS_OFF: &str = "off";

/// `status.deadline_at` (RFC3339 UTC): the absolute deadline of the whole pipeline. The
/// gateway stamps it from the tool's timeout; no one downstream changes it. A sidecar
/// sends an envelope whose deadline has passed (or is less than a second away) to x-sink
/// as failed (reason `Timeout`) without calling its handler, and bounds a handler call by
/// the time left.
pub const STATUS_DEADLINE_AT: &str = "deadline_at";
