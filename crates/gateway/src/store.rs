//! The task store: PostgreSQL when a `postgres://` URL is given, SQLite otherwise (a file,
//! or `sqlite::memory:`). Tables `tasks` and `task_updates`, created by embedded
//! migrations (`migrations/<backend>/`) on connect.
//!
//! Queries are plain query functions, not sqlx's compile-time macros: building needs no
//! database. The two backends differ only in JSON (JSONB with casts vs TEXT) and in the
//! placeholder syntax, so each query is written out once per backend, side by side.

use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, SqlSafeStr};

use crate::task::{NewUpdate, Task, TaskStatus, Update, now_ms};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {url}: expected postgres://... or sqlite:..., got: {reason}")]
    Url { url: String, reason: String },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("task {id}: stored column {column} is not valid: {reason}")]
    Corrupt {
        id: String,
        column: &'static str,
        reason: String,
    },
}

/// What became of an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Stored; the task moved on.
    Applied(Box<Update>),
    /// Not applied: the task is already `current` (finished, or further along).
    Stale(TaskStatus),
    /// No such task.
    NotFound,
}

enum Pool {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

/// The store (cheap to clone: pools are shared).
#[derive(Clone)]
pub struct Store {
    pool: std::sync::Arc<Pool>,
}

/// Runs `$body` with `$p` bound to whichever pool this is; `$q` picks the query text.
macro_rules! on_pool {
    ($self:expr, $p:ident, $q:ident => $body:expr) => {
        match &*$self.pool {
            Pool::Pg($p) => {
                #[allow(unused)]
                let $q = &PG;
                $body
            }
            Pool::Sqlite($p) => {
                #[allow(unused)]
                let $q = &SQLITE;
                $body
            }
        }
    };
}

/// One backend's SQL.
struct Queries {
    insert_task: &'static str,
    insert_first_update: &'static str,
    select_task: &'static str,
    advance: &'static str,
    insert_update: &'static str,
    select_status: &'static str,
    updates_after: &'static str,
    overdue: &'static str,
}

const PG: Queries = Queries {
    insert_task: "INSERT INTO tasks (id, tool, status, route, arguments, progress, timeout_ms, created_at, updated_at) \
                  VALUES ($1, $2, 'pending', $3::jsonb, $4::jsonb, 0, $5, $6, $6)",
    insert_first_update: "INSERT INTO task_updates (task_id, status, progress, message, created_at) \
                          VALUES ($1, 'pending', 0, $2, $3)",
    select_task: "SELECT id, tool, status, route::text AS route, arguments::text AS arguments, \
                  result::text AS result, error::text AS error, progress, actor, message, \
                  timeout_ms, created_at, updated_at FROM tasks WHERE id = $1",
    // Forward only: a finished task is never touched, a running one never goes back to
    // pending, and a progress report behind the task's progress (an earlier actor's report
    // that arrived after a later actor's: sidecars report independently) is stale.
    advance: "UPDATE tasks SET status = $2, progress = GREATEST(progress, $3), \
              actor = COALESCE($4, actor), message = $5, result = COALESCE($6::jsonb, result), \
              error = COALESCE($7::jsonb, error), updated_at = $8 \
              WHERE id = $1 AND status IN ('pending', 'running') \
              AND NOT (status = 'running' AND $2 = 'pending') \
              AND NOT ($2 = 'running' AND $3 < progress)",
    insert_update: "INSERT INTO task_updates (task_id, status, actor, progress, message, result, error, created_at) \
                    VALUES ($1, $2, $3, (SELECT progress FROM tasks WHERE id = $1), $4, $5::jsonb, $6::jsonb, $7) \
                    RETURNING seq, progress",
    select_status: "SELECT status FROM tasks WHERE id = $1",
    updates_after: "SELECT seq, task_id, status, actor, progress, message, result::text AS result, \
                    error::text AS error, created_at FROM task_updates \
                    WHERE task_id = $1 AND seq > $2 ORDER BY seq",
    overdue: "SELECT id FROM tasks WHERE status IN ('pending', 'running') \
              AND created_at + timeout_ms + $1 < $2 ORDER BY created_at LIMIT $3",
};

const SQLITE: Queries = Queries {
    insert_task: "INSERT INTO tasks (id, tool, status, route, arguments, progress, timeout_ms, created_at, updated_at) \
                  VALUES (?1, ?2, 'pending', ?3, ?4, 0, ?5, ?6, ?6)",
    insert_first_update: "INSERT INTO task_updates (task_id, status, progress, message, created_at) \
                          VALUES (?1, 'pending', 0, ?2, ?3)",
    select_task: "SELECT id, tool, status, route, arguments, result, error, progress, actor, message, \
                  timeout_ms, created_at, updated_at FROM tasks WHERE id = ?1",
    advance: "UPDATE tasks SET status = ?2, progress = MAX(progress, ?3), \
              actor = COALESCE(?4, actor), message = ?5, result = COALESCE(?6, result), \
              error = COALESCE(?7, error), updated_at = ?8 \
              WHERE id = ?1 AND status IN ('pending', 'running') \
              AND NOT (status = 'running' AND ?2 = 'pending') \
              AND NOT (?2 = 'running' AND ?3 < progress)",
    insert_update: "INSERT INTO task_updates (task_id, status, actor, progress, message, result, error, created_at) \
                    VALUES (?1, ?2, ?3, (SELECT progress FROM tasks WHERE id = ?1), ?4, ?5, ?6, ?7) \
                    RETURNING seq, progress",
    select_status: "SELECT status FROM tasks WHERE id = ?1",
    updates_after: "SELECT seq, task_id, status, actor, progress, message, result, error, created_at \
                    FROM task_updates WHERE task_id = ?1 AND seq > ?2 ORDER BY seq",
    overdue: "SELECT id FROM tasks WHERE status IN ('pending', 'running') \
              AND created_at + timeout_ms + ?1 < ?2 ORDER BY created_at LIMIT ?3",
};

fn migrator(sql: &'static str) -> Migrator {
    Migrator::with_migrations(vec![Migration::new(
        1,
        "tasks and task_updates".into(),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )])
}

fn json_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

fn corrupt(id: &str, column: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        id: id.to_string(),
        column,
        reason: reason.to_string(),
    }
}

fn parse_json(
    id: &str,
    column: &'static str,
    text: Option<String>,
) -> Result<Option<Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(id, column, e)))
        .transpose()
}

fn parse_status(id: &str, s: &str) -> Result<TaskStatus, StoreError> {
    TaskStatus::parse(s).ok_or_else(|| corrupt(id, "status", format!("unknown status {s:?}")))
}

/// Reads a task row (the same column names on both backends).
macro_rules! task_from_row {
    ($row:expr) => {{
        let row = $row;
        let id: String = row.try_get("id")?;
        let route_text: String = row.try_get("route")?;
        let route: Vec<String> =
            serde_json::from_str(&route_text).map_err(|e| corrupt(&id, "route", e))?;
        let status: String = row.try_get("status")?;
        let arguments: String = row.try_get("arguments")?;
        Task {
            tool: row.try_get("tool")?,
            status: parse_status(&id, &status)?,
            route,
            arguments: parse_json(&id, "arguments", Some(arguments))?.unwrap_or(Value::Null),
            result: parse_json(&id, "result", row.try_get("result")?)?,
            error: parse_json(&id, "error", row.try_get("error")?)?,
            progress: row.try_get("progress")?,
            actor: row.try_get("actor")?,
            message: row.try_get("message")?,
            timeout_ms: row.try_get("timeout_ms")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            id,
        }
    }};
}

macro_rules! update_from_row {
    ($row:expr) => {{
        let row = $row;
        let task_id: String = row.try_get("task_id")?;
        let status: String = row.try_get("status")?;
        Update {
            seq: row.try_get("seq")?,
            status: parse_status(&task_id, &status)?,
            actor: row.try_get("actor")?,
            progress: row.try_get("progress")?,
            message: row.try_get("message")?,
            result: parse_json(&task_id, "task_updates.result", row.try_get("result")?)?,
            error: parse_json(&task_id, "task_updates.error", row.try_get("error")?)?,
            created_at: row.try_get("created_at")?,
            task_id,
        }
    }};
}

impl Store {
    /// Connects to `url` and applies the migrations. `postgres://` / `postgresql://` select
    /// PostgreSQL; `sqlite:` URLs (a file, created if missing, or `sqlite::memory:`) SQLite.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with_password(url, None).await
    }

    /// Like [`Store::connect`], with the PostgreSQL password given apart from the URL (from
    /// a Secret: it may hold characters a URL would need escaped, and stays out of logs).
    pub async fn connect_with_password(
        url: &str,
        password: Option<&str>,
    ) -> Result<Store, StoreError> {
        let bad = |reason: String| StoreError::Url {
            url: url.to_string(),
            reason,
        };
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut opts = PgConnectOptions::from_str(url).map_err(|e| bad(e.to_string()))?;
            if let Some(p) = password {
                opts = opts.password(p);
            }
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            migrator(include_str!("../migrations/postgres/0001_tasks.sql"))
                .run(&pool)
                .await?;
            Pool::Pg(pool)
        } else if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let mut opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| bad(e.to_string()))?
                .create_if_missing(true)
                .foreign_keys(true);
            if !memory {
                // Readers (SSE, GET) do not block the writer (mesh updates).
                opts = opts.journal_mode(SqliteJournalMode::Wal);
            }
            let mut pool_opts =
                SqlitePoolOptions::new().max_connections(if memory { 1 } else { 4 });
            if memory {
                // An in-memory database lives as long as a connection to it: keep one forever.
                pool_opts = pool_opts
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            let pool = pool_opts.connect_with(opts).await?;
            migrator(include_str!("../migrations/sqlite/0001_tasks.sql"))
                .run(&pool)
                .await?;
            Pool::Sqlite(pool)
        } else {
            return Err(bad("an unknown scheme".into()));
        };
        Ok(Store {
            pool: std::sync::Arc::new(pool),
        })
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match &*self.pool {
            Pool::Pg(_) => "postgres",
            Pool::Sqlite(_) => "sqlite",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, p, _q => {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    /// Stores a new `pending` task and its first update.
    pub async fn create(
        &self,
        id: &str,
        tool: &str,
        route: &[String],
        arguments: &Value,
        timeout_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let route = serde_json::to_string(route).unwrap_or_else(|_| "[]".into());
        let args = arguments.to_string();
        on_pool!(self, p, q => {
            let mut tx = p.begin().await?;
            sqlx::query(q.insert_task)
                .bind(id)
                .bind(tool)
                .bind(&route)
                .bind(&args)
                .bind(timeout_ms)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(q.insert_first_update)
                .bind(id)
                .bind("task created")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The task `id`, if any.
    pub async fn get(&self, id: &str) -> Result<Option<Task>, StoreError> {
        on_pool!(self, p, q => {
            let row = sqlx::query(q.select_task).bind(id).fetch_optional(p).await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(task_from_row!(&row))),
            }
        })
    }

    /// Applies `u` to task `id` if it moves the task forward (see [`crate::task`]); the
    /// task row and the update row change in one transaction.
    pub async fn apply(&self, id: &str, u: &NewUpdate) -> Result<Applied, StoreError> {
        let now = now_ms();
        let result = json_text(&u.result);
        let error = json_text(&u.error);
        on_pool!(self, p, q => {
            let mut tx = p.begin().await?;
            let changed = sqlx::query(q.advance)
                .bind(id)
                .bind(u.status.as_str())
                .bind(u.progress)
                .bind(u.actor.as_deref())
                .bind(u.message.as_deref())
                .bind(result.as_deref())
                .bind(error.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                let row = sqlx::query(q.select_status).bind(id).fetch_optional(p).await?;
                return match row {
                    None => Ok(Applied::NotFound),
                    Some(row) => {
                        let s: String = row.try_get("status")?;
                        Ok(Applied::Stale(parse_status(id, &s)?))
                    }
                };
            }
            let row = sqlx::query(q.insert_update)
                .bind(id)
                .bind(u.status.as_str())
                .bind(u.actor.as_deref())
                .bind(u.message.as_deref())
                .bind(result.as_deref())
                .bind(error.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let seq: i64 = row.try_get("seq")?;
            let progress: f64 = row.try_get("progress")?;
            tx.commit().await?;
            Ok(Applied::Applied(Box::new(Update {
                seq,
                task_id: id.to_string(),
                status: u.status,
                actor: u.actor.clone(),
                progress,
                message: u.message.clone(),
                result: u.result.clone(),
                error: u.error.clone(),
                created_at: now,
            })))
        })
    }

    /// Unfinished tasks whose deadline (created + timeout) passed more than `grace_ms`
    /// before `now_ms`, oldest first, at most `limit`.
    pub async fn overdue(
        &self,
        now_ms: i64,
        grace_ms: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        on_pool!(self, p, q => {
            let rows = sqlx::query(q.overdue)
                .bind(grace_ms)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| r.try_get::<String, _>("id").map_err(StoreError::from))
                .collect()
        })
    }

    /// The updates of task `id` after `seq`, in order.
    pub async fn updates_after(&self, id: &str, seq: i64) -> Result<Vec<Update>, StoreError> {
        on_pool!(self, p, q => {
            let rows = sqlx::query(q.updates_after).bind(id).bind(seq).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(update_from_row!(row));
            }
            Ok(out)
        })
    }
}
