//! Tasks and their updates: the status model and the JSON the API returns.
//!
//! Status only moves forward: `pending` → `running` → `succeeded` | `failed`. An update that
//! would move it back (a late `processing` report after x-sink's final one) or touch a
//! finished task is not applied; the store says so instead of overwriting.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => TaskStatus::Pending,
            "running" => TaskStatus::Running,
            "succeeded" => TaskStatus::Succeeded,
            "failed" => TaskStatus::Failed,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Failed)
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Also the envelope id.
    pub id: String,
    pub tool: String,
    pub status: TaskStatus,
    pub route: Vec<String>,
    /// The envelope's payload.
    pub arguments: Value,
    pub result: Option<Value>,
    pub error: Option<Value>,
    /// 0..=100, never decreasing.
    pub progress: f64,
    pub actor: Option<String>,
    pub message: Option<String>,
    pub timeout_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One stored update of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Store-wide sequence number: the order in which updates were applied.
    pub seq: i64,
    pub task_id: String,
    pub status: TaskStatus,
    pub actor: Option<String>,
    /// The task's progress after this update.
    pub progress: f64,
    pub message: Option<String>,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub created_at: i64,
}

/// An update to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUpdate {
    pub status: TaskStatus,
    pub actor: Option<String>,
    pub progress: f64,
    pub message: Option<String>,
    pub result: Option<Value>,
    pub error: Option<Value>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// RFC3339 UTC in whole seconds (the envelope's `status` timestamps, upstream §5.2).
pub fn rfc3339_s(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Progress of an actor-level report along the route, in percent. Upstream's weights: an
/// actor that has `received` the envelope counts 0.1, one `processing` it 0.5, one that
/// `completed` 1; the route's length is `prev + curr + next` as the envelope carries it
/// (a handler may change `next`).
pub fn route_progress(prev: usize, next: usize, step: ActorStep) -> f64 {
    let total = (prev + 1 + next) as f64;
    let weight = match step {
        ActorStep::Received => 0.1,
        ActorStep::Processing => 0.5,
        ActorStep::Completed => 1.0,
    };
    ((prev as f64 + weight) * 100.0 / total).clamp(0.0, 100.0)
}

/// What an actor's sidecar reports about one envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorStep {
    Received,
    Processing,
    Completed,
}

impl ActorStep {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => ActorStep::Received,
            "processing" => ActorStep::Processing,
            "completed" => ActorStep::Completed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActorStep::Received => "received",
            ActorStep::Processing => "processing",
            ActorStep::Completed => "completed",
        }
    }
}

fn put_opt(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.into(), v);
    }
}

impl Task {
    /// The API's view of the task, with the links to follow it.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("tool".into(), self.tool.clone().into());
        m.insert("status".into(), self.status.as_str().into());
        m.insert("progress".into(), json!(self.progress));
        put_opt(&mut m, "actor", self.actor.clone().map(Value::from));
        put_opt(&mut m, "message", self.message.clone().map(Value::from));
        m.insert("route".into(), json!(self.route));
        m.insert("arguments".into(), self.arguments.clone());
        put_opt(&mut m, "result", self.result.clone());
        put_opt(&mut m, "error", self.error.clone());
        m.insert("timeout_ms".into(), self.timeout_ms.into());
        m.insert("created_at".into(), rfc3339_ms(self.created_at).into());
        m.insert("updated_at".into(), rfc3339_ms(self.updated_at).into());
        m.insert(
            "links".into(),
            json!({
                "self": format!("/tasks/{}", self.id),
                "stream": format!("/tasks/{}/stream", self.id),
            }),
        );
        Value::Object(m)
    }
}

impl Update {
    /// The JSON of one SSE event.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("seq".into(), self.seq.into());
        m.insert("task_id".into(), self.task_id.clone().into());
        m.insert("status".into(), self.status.as_str().into());
        m.insert("progress".into(), json!(self.progress));
        put_opt(&mut m, "actor", self.actor.clone().map(Value::from));
        put_opt(&mut m, "message", self.message.clone().map(Value::from));
        put_opt(&mut m, "result", self.result.clone());
        put_opt(&mut m, "error", self.error.clone());
        m.insert("at".into(), rfc3339_ms(self.created_at).into());
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_follows_the_route() {
        assert_eq!(route_progress(0, 2, ActorStep::Completed), 100.0 / 3.0);
        assert_eq!(route_progress(2, 0, ActorStep::Completed), 100.0);
        assert!((route_progress(1, 1, ActorStep::Received) - 110.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_s(1_700_000_000_923), "2023-11-14T22:13:20Z");
    }
}
