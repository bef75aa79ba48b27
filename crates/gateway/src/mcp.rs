//! MCP (rmcp, streamable HTTP at `/mcp`): `tools/list` from the configured tools,
//! `tools/call` through the same path as `POST /tasks`, then waiting for the result up to
//! the tool's timeout.
//!
//! - Bad arguments or an unknown tool: a JSON-RPC `invalid_params` error naming the
//!   parameter, what was expected and what was found (data: the same as fields); nothing
//!   is published.
//! - While waiting, each update becomes a progress notification (0..100) when the client
//!   sent a progress token.
//! - Succeeded: the result as text and, as `structuredContent`, the result itself when it is
//!   an object, else `{"result": ...}` (MCP requires an object there).
//! - Failed: a tool error (`isError`) with the error's type and message.
//! - Timeout: not an error: the task id, its status and the links to follow it.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig, Tool as McpTool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::service::{Gateway, StartError};
use futures::StreamExt;

use crate::task::{Task, TaskStatus};

/// One MCP server per session (cheap: the gateway is shared).
#[derive(Clone)]
pub struct McpServer {
    gw: Arc<Gateway>,
}

impl McpServer {
    pub fn new(gw: Arc<Gateway>) -> Self {
        McpServer { gw }
    }
}

fn text(v: &Value) -> ContentBlock {
    ContentBlock::text(match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// What a finished (or still running) task answers to the call.
pub fn call_result(task: &Task) -> CallToolResult {
    match task.status {
        TaskStatus::Succeeded => {
            let result = task.result.clone().unwrap_or(Value::Null);
            let structured = match &result {
                Value::Object(_) => result.clone(),
                other => json!({ "result": other }),
            };
            let mut r = CallToolResult::success(vec![text(&result)]);
            r.structured_content = Some(structured);
            r
        }
        TaskStatus::Failed => {
            let error = task.error.clone().unwrap_or(Value::Null);
            let kind = error.get("type").and_then(Value::as_str).unwrap_or("Error");
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| error.to_string());
            let mut r = CallToolResult::error(vec![ContentBlock::text(format!(
                "task {} failed: {kind}: {message}",
                task.id
            ))]);
            r.structured_content =
                Some(json!({"task_id": task.id, "status": "failed", "error": error}));
            r
        }
        TaskStatus::Pending | TaskStatus::Running => {
            let links = json!({
                "self": format!("/tasks/{}", task.id),
                "stream": format!("/tasks/{}/stream", task.id),
            });
            let mut r = CallToolResult::success(vec![ContentBlock::text(format!(
                "task {} is still {} after {} s; follow it at /tasks/{}/stream",
                task.id,
                task.status.as_str(),
                task.timeout_ms / 1000,
                task.id
            ))]);
            r.structured_content = Some(json!({
                "task_id": task.id,
                "status": task.status.as_str(),
                "progress": task.progress,
                "links": links,
            }));
            r
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "asya-gateway",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Each tool starts an Asya actor pipeline and returns its result; a call that \
                 outlasts the tool's timeout returns the task id and a link to follow it.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let configured = self.gw.tools();
        let tools = configured
            .tools
            .iter()
            .map(|t| {
                McpTool::new(
                    t.name.clone(),
                    t.description.clone(),
                    Arc::new(t.input_schema()),
                )
            })
            .collect();
        self.gw.metrics.mcp_call("tools/list", "", "ok");
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.map(Value::Object);
        let started = self.gw.start(&request.name, args.as_ref()).await;
        self.gw.metrics.task_started(&request.name, &started);
        let tool = match &started {
            Err(StartError::UnknownTool { .. }) => crate::metrics::UNKNOWN_TOOL,
            _ => request.name.as_ref(),
        };
        let count = |outcome: &str| self.gw.metrics.mcp_call("tools/call", tool, outcome);
        let task = match started {
            Ok(t) => t,
            Err(StartError::Arguments(a)) => {
                count("invalid_params");
                return Err(ErrorData::invalid_params(
                    a.to_string(),
                    Some(
                        json!({"parameter": a.parameter, "expected": a.expected, "found": a.found}),
                    ),
                ));
            }
            Err(e @ StartError::UnknownTool { .. }) => {
                count("invalid_params");
                return Err(ErrorData::invalid_params(e.to_string(), None));
            }
            Err(StartError::Publish { task, .. }) => {
                count("failed");
                return Ok(call_result(&task).into());
            }
            Err(StartError::Store(e)) => {
                count("error");
                return Err(ErrorData::internal_error(e.to_string(), None));
            }
        };
        let timeout = std::time::Duration::from_millis(u64::try_from(task.timeout_ms).unwrap_or(0));
        let token = context.meta.get_progress_token();
        // MCP wants progress to increase with each notification: equal values are skipped.
        let mut last: Option<f64> = None;
        let updates = self.gw.follow(&task.id);
        let mut updates = std::pin::pin!(updates);
        let deadline = tokio::time::Instant::now() + timeout;
        while let Ok(Some(u)) = tokio::time::timeout_at(deadline, updates.next()).await {
            let u = u.map_err(|e| {
                count("error");
                ErrorData::internal_error(e.to_string(), None)
            })?;
            if last.is_some_and(|l| u.progress <= l) {
                continue;
            }
            last = Some(u.progress);
            if let Some(token) = &token {
                let mut p =
                    ProgressNotificationParam::new(token.clone(), u.progress).with_total(100.0);
                if let Some(m) = &u.message {
                    p = p.with_message(m.clone());
                }
                // A client that went away does not stop the task.
                if let Err(e) = context.peer.notify_progress(p).await {
                    tracing::debug!(error = %e, "progress notification not delivered");
                }
            }
        }
        let done = self
            .gw
            .store
            .get(&task.id)
            .await
            .map_err(|e| {
                count("error");
                ErrorData::internal_error(e.to_string(), None)
            })?
            .unwrap_or(task);
        count(match done.status {
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Pending | TaskStatus::Running => "timeout",
        });
        Ok(call_result(&done).into())
    }
}
