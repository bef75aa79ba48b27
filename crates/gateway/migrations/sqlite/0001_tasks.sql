-- Tasks started through the gateway and every update reported for them.
-- Same shape as the PostgreSQL schema; JSON is stored as TEXT.
CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    tool        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    route       TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    result      TEXT,
    error       TEXT,
    progress    REAL NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    actor       TEXT,
    message     TEXT,
    timeout_ms  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX tasks_status_updated ON tasks (status, updated_at);

CREATE TABLE task_updates (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    actor       TEXT,
    progress    REAL NOT NULL,
    message     TEXT,
    result      TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX task_updates_task_seq ON task_updates (task_id, seq);
