-- Tasks started through the gateway and every update reported for them.
-- Times are Unix milliseconds (BIGINT) so that PostgreSQL and SQLite share one code path.
CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,          -- = the envelope id
    tool        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    route       JSONB NOT NULL,            -- the tool's actors, in order
    arguments   JSONB NOT NULL,            -- the envelope payload (defaults applied)
    result      JSONB,
    error       JSONB,
    progress    DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    actor       TEXT,                      -- the actor of the last update
    message     TEXT,
    timeout_ms  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX tasks_status_updated ON tasks (status, updated_at);

CREATE TABLE task_updates (
    seq         BIGSERIAL PRIMARY KEY,     -- global order; per task it is the order of updates
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    actor       TEXT,
    progress    DOUBLE PRECISION NOT NULL,
    message     TEXT,
    result      JSONB,
    error       JSONB,
    created_at  BIGINT NOT NULL
);
CREATE INDEX task_updates_task_seq ON task_updates (task_id, seq);
