//! Prometheus metrics (`asya_gateway_*`, text format at `GET /metrics` on the API
//! listener), with prometheus-client as in the sidecar.
//!
//! Label values are bounded: a tool label is a configured tool's name or `(unknown)` for a
//! name no tool has (a client could otherwise create a series per typo).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::service::StartError;
use crate::task::Task;

/// The tool label of a name no configured tool has.
pub const UNKNOWN_TOOL: &str = "(unknown)";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Report {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolStatus {
    tool: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct McpCall {
    method: String,
    tool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadResult {
    result: String,
}

fn duration_histogram() -> Histogram {
    // Pipelines run from sub-second echoes to model calls of many minutes.
    Histogram::new([
        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ])
}

/// All gateway metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    tasks_created: Family<ToolOutcome, Counter>,
    mesh_reports: Family<Report, Counter>,
    task_duration: Family<ToolStatus, Histogram, fn() -> Histogram>,
    mcp_calls: Family<McpCall, Counter>,
    tools_reloads: Family<ReloadResult, Counter>,
    tools: Gauge,
    unauthorized: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("asya_gateway");
        let tasks_created = Family::<ToolOutcome, Counter>::default();
        let mesh_reports = Family::<Report, Counter>::default();
        let task_duration: Family<ToolStatus, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let mcp_calls = Family::<McpCall, Counter>::default();
        let tools_reloads = Family::<ReloadResult, Counter>::default();
        let tools = Gauge::default();
        let unauthorized = Counter::default();
        registry.register(
            "tasks_created",
            "Task starts (REST and MCP), by tool and outcome: created, invalid_arguments, unknown_tool, publish_error, store_error",
            tasks_created.clone(),
        );
        registry.register(
            "mesh_reports",
            "Reports on the mesh listener, by kind (progress, final) and result: applied, ignored (late or repeated), not_found, bad_request, store_error",
            mesh_reports.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "From a task's creation to its final report, by tool and status",
            task_duration.clone(),
        );
        registry.register(
            "mcp_calls",
            "MCP requests, by method (tools/list, tools/call), tool and outcome: ok, succeeded, failed, timeout, invalid_params, error",
            mcp_calls.clone(),
        );
        registry.register(
            "tools_reloads",
            "Re-reads of a changed tools file, by result (ok, error: the old tools stay)",
            tools_reloads.clone(),
        );
        registry.register("tools", "Tools configured now", tools.clone());
        registry.register(
            "unauthorized_requests",
            "Requests to /mcp or /tasks refused for a missing or wrong bearer token",
            unauthorized.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            tasks_created,
            mesh_reports,
            task_duration,
            mcp_calls,
            tools_reloads,
            tools,
            unauthorized,
        }
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// One task start and how it ended.
    pub fn task_started(&self, tool: &str, r: &Result<Task, StartError>) {
        let (tool, outcome) = match r {
            Ok(_) => (tool, "created"),
            Err(StartError::UnknownTool { .. }) => (UNKNOWN_TOOL, "unknown_tool"),
            Err(StartError::Arguments(_)) => (tool, "invalid_arguments"),
            Err(StartError::Publish { .. }) => (tool, "publish_error"),
            Err(StartError::Store(_)) => (tool, "store_error"),
        };
        self.tasks_created
            .get_or_create(&ToolOutcome {
                tool: tool.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// A mesh report: `kind` progress or final; `result` applied, ignored, ...
    pub fn mesh_report(&self, kind: &str, result: &str) {
        self.mesh_reports
            .get_or_create(&Report {
                kind: kind.into(),
                result: result.into(),
            })
            .inc();
    }

    /// A task that just finished.
    pub fn task_finished(&self, task: &Task) {
        let secs = (task.updated_at - task.created_at).max(0) as f64 / 1000.0;
        self.task_duration
            .get_or_create(&ToolStatus {
                tool: task.tool.clone(),
                status: task.status.as_str().into(),
            })
            .observe(secs);
    }

    /// An MCP request (`tool` empty for tools/list).
    pub fn mcp_call(&self, method: &str, tool: &str, outcome: &str) {
        self.mcp_calls
            .get_or_create(&McpCall {
                method: method.into(),
                tool: tool.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// A re-read of the tools file; `tools` is the number in use afterwards.
    pub fn tools_reloaded(&self, ok: bool, tools: usize) {
        self.tools_reloads
            .get_or_create(&ReloadResult {
                result: if ok { "ok" } else { "error" }.into(),
            })
            .inc();
        self.set_tools(tools);
    }

    pub fn set_tools(&self, tools: usize) {
        self.tools.set(i64::try_from(tools).unwrap_or(i64::MAX));
    }

    pub fn unauthorized(&self) {
        self.unauthorized.inc();
    }
}
