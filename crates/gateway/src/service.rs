//! The gateway's one path for starting and following tasks, shared by REST and MCP.
//!
//! Starting a task: check the arguments against the tool, store the task (`pending`),
//! then publish the envelope to the route's first actor. The task is stored first so that
//! a report from a fast pipeline always finds it; a failed publish marks it `failed` with
//! the broker's reason instead of leaving a task that can never finish.
//!
//! Following a task: the store is the truth. Subscribers are woken by an in-process
//! broadcast when this process applies an update, and poll the store once a second besides,
//! so updates applied by another replica (same PostgreSQL) still arrive.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use asya_contract::headers::GATEWAY_URL;

use crate::config::ToolsConfig;
use crate::publish::Publisher;
use crate::store::{Applied, Store, StoreError};
use crate::task::{NewUpdate, Task, TaskStatus, Update, now_ms, rfc3339_s};
use crate::tool::ArgumentError;

/// How often followers look at the store without being woken.
const POLL: Duration = Duration::from_secs(1);

/// Why a task could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("unknown tool {name:?}; configured tools: {known}")]
    UnknownTool { name: String, known: String },
    #[error(transparent)]
    Arguments(#[from] ArgumentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task exists and is `failed`: the broker did not take the envelope.
    #[error("task {}: publishing to {actor} failed: {reason}", task.id)]
    Publish {
        task: Box<Task>,
        actor: String,
        reason: String,
    },
}

/// The gateway: tools, store, broker.
pub struct Gateway {
    /// Swapped whole when the tools file changes (see [`crate::reload`]).
    tools: std::sync::RwLock<Arc<ToolsConfig>>,
    pub metrics: crate::metrics::Metrics,
    pub store: Store,
    publisher: Publisher,
    /// Ids of tasks that just got an update in this process.
    wake: broadcast::Sender<String>,
    /// Stamped into every envelope as header [`GATEWAY_URL`] when set.
    mesh_url: Option<String>,
}

impl Gateway {
    pub fn new(
        tools: ToolsConfig,
        store: Store,
        publisher: Publisher,
        mesh_url: Option<String>,
    ) -> Arc<Self> {
        let (wake, _) = broadcast::channel(1024);
        let metrics = crate::metrics::Metrics::new();
        metrics.set_tools(tools.tools.len());
        Arc::new(Gateway {
            tools: std::sync::RwLock::new(Arc::new(tools)),
            metrics,
            store,
            publisher,
            wake,
            mesh_url: mesh_url.map(|u| u.trim_end_matches('/').to_string()),
        })
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// The tools in use now (a task started with them keeps them).
    pub fn tools(&self) -> Arc<ToolsConfig> {
        self.tools.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the tools; tasks already started are not affected.
    pub fn set_tools(&self, tools: ToolsConfig) {
        *self.tools.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tools);
    }

    /// Starts `tool` with `arguments` (a JSON object or nothing).
    pub async fn start(&self, tool: &str, arguments: Option<&Value>) -> Result<Task, StartError> {
        let tools = self.tools();
        let Some(def) = tools.tool(tool) else {
            return Err(StartError::UnknownTool {
                name: tool.to_string(),
                known: tools
                    .tools
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let args = Value::Object(def.check_arguments(arguments)?);
        let id = uuid::Uuid::new_v4().to_string();
        let timeout_ms = i64::try_from(def.timeout.as_millis()).unwrap_or(i64::MAX);
        self.store
            .create(&id, &def.name, &def.route, &args, timeout_ms)
            .await?;
        let body = self.envelope(&id, &def.route, args, timeout_ms);
        let first = &def.route[0];
        if let Err(e) = self.publisher.publish(first, Bytes::from(body)).await {
            let reason = e.to_string();
            self.report(
                &id,
                NewUpdate {
                    status: TaskStatus::Failed,
                    actor: None,
                    progress: 0.0,
                    message: Some("the envelope was not published".into()),
                    result: None,
                    error: Some(json!({"type": "PublishError", "message": reason})),
                },
            )
            .await?;
            let task = self
                .store
                .get(&id)
                .await?
                .ok_or_else(|| StoreError::Corrupt {
                    id: id.clone(),
                    column: "id",
                    reason: "task vanished after it was created".into(),
                })?;
            return Err(StartError::Publish {
                task: Box::new(task),
                actor: first.clone(),
                reason,
            });
        }
        tracing::info!(task = %id, tool = %def.name, actor = %first, "task started");
        self.store.get(&id).await?.ok_or_else(|| {
            StartError::Store(StoreError::Corrupt {
                id,
                column: "id",
                reason: "task vanished after it was created".into(),
            })
        })
    }

    /// The envelope of a new task: id = task id, route = the tool's actors, payload = the
    /// checked arguments, `status.deadline_at` = now + the tool's timeout (the sidecars
    /// stop the pipeline there: docs/sidecar.md, "Deadline").
    fn envelope(&self, id: &str, route: &[String], payload: Value, timeout_ms: i64) -> Vec<u8> {
        let now_ms = now_ms();
        let now = rfc3339_s(now_ms);
        // Rounded up to the whole second the format carries: never earlier than the timeout.
        let deadline_at =
            rfc3339_s(now_ms.saturating_add(timeout_ms).saturating_add(999) / 1000 * 1000);
        let mut headers = Map::new();
        if let Some(url) = &self.mesh_url {
            headers.insert(GATEWAY_URL.into(), url.clone().into());
        }
        let env = json!({
            "id": id,
            "route": {"prev": [], "curr": route[0], "next": route[1..]},
            "headers": headers,
            "status": {
                "phase": "pending",
                "actor": route[0],
                "attempt": 1,
                "created_at": now,
                "updated_at": now,
                (asya_contract::headers::STATUS_DEADLINE_AT): deadline_at,
            },
            "payload": payload,
        });
        env.to_string().into_bytes()
    }

    /// Fails every unfinished task whose deadline passed more than `grace` ago without a
    /// final report (the report was lost while this gateway was down, or the pipeline
    /// stalled): `DeadlineExceeded`, and its followers are woken. Safe on several replicas:
    /// a task finishes once, so a second replica's attempt is not applied. Returns how many
    /// this call failed.
    pub async fn fail_overdue(&self, grace: Duration) -> Result<usize, StoreError> {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let mut failed = 0;
        for id in self.store.overdue(now_ms(), grace_ms, 100).await? {
            let message = format!(
                "no final report within {grace:?} after the task's deadline: the pipeline may still be running, or its report was lost"
            );
            let update = NewUpdate {
                status: TaskStatus::Failed,
                actor: None,
                progress: 0.0,
                message: Some("deadline passed".into()),
                result: None,
                error: Some(json!({"type": "DeadlineExceeded", "message": message})),
            };
            if matches!(self.report(&id, update).await?, Applied::Applied(_)) {
                tracing::warn!(task = %id, "task failed: deadline passed without a final report");
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Applies an update (from the mesh endpoints) and wakes this process's followers.
    pub async fn report(&self, id: &str, u: NewUpdate) -> Result<Applied, StoreError> {
        let applied = self.store.apply(id, &u).await?;
        if matches!(applied, Applied::Applied(_)) {
            // No receiver is fine: nobody is following.
            let _ = self.wake.send(id.to_string());
        }
        Ok(applied)
    }

    /// Every update of task `id` in order, from the first, then live ones as they are
    /// applied; ends after the terminal one. The task must exist.
    pub fn follow(
        self: &Arc<Self>,
        id: &str,
    ) -> impl Stream<Item = Result<Update, StoreError>> + Send + 'static {
        let state = Follow {
            gw: self.clone(),
            id: id.to_string(),
            wake: self.wake.subscribe(),
            last: 0,
            pending: VecDeque::new(),
            done: false,
            fresh: true,
        };
        futures::stream::unfold(state, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        })
    }
}

/// State of one follower.
struct Follow {
    gw: Arc<Gateway>,
    id: String,
    wake: broadcast::Receiver<String>,
    /// Highest `seq` handed out.
    last: i64,
    pending: VecDeque<Update>,
    done: bool,
    /// The history has not been read yet.
    fresh: bool,
}

impl Follow {
    async fn refill(&mut self) -> Result<(), StoreError> {
        let ups = self.gw.store.updates_after(&self.id, self.last).await?;
        if let Some(u) = ups.last() {
            self.last = u.seq;
        }
        self.pending.extend(ups);
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<Update, StoreError>> {
        loop {
            if let Some(u) = self.pending.pop_front() {
                if u.status.is_terminal() {
                    self.done = true;
                    self.pending.clear();
                }
                return Some(Ok(u));
            }
            if self.done {
                return None;
            }
            if !self.fresh {
                // Wait for a wake-up about this task, or poll.
                let woke = tokio::time::timeout(POLL, async {
                    loop {
                        match self.wake.recv().await {
                            Ok(id) if id == self.id => return,
                            Ok(_) => {}
                            // Missed some: the store has them.
                            Err(broadcast::error::RecvError::Lagged(_)) => return,
                            Err(broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await
                            }
                        }
                    }
                })
                .await;
                let _ = woke;
            }
            self.fresh = false;
            if let Err(e) = self.refill().await {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}
