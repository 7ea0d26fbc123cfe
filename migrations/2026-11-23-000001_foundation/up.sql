-- Foundation: jobs, the event log (narrative audit trail and SSE replay source), the audit of mutating
-- calls, and installation metadata. Timestamps are UTC text in SQLite's datetime() form.

CREATE TABLE jobs (
    job_id          TEXT PRIMARY KEY NOT NULL,
    task_id         TEXT NOT NULL,
    config_id       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'dry_run')),
    progress        DOUBLE NOT NULL DEFAULT 0,
    message         TEXT,
    result          TEXT,            -- JSON text of the process's final {"result": …}
    error           TEXT,
    exit_code       INTEGER,
    duration_ms     BIGINT,          -- measured run time, set when the job ends
    timeout_seconds DOUBLE NOT NULL,
    pgid            INTEGER,         -- process group of the running eval, to end it after a crash
    pid_start_time  BIGINT,          -- /proc start time of that process, so a reused pid is never signalled
    created_at      TEXT NOT NULL DEFAULT (datetime('now')),
    started_at      TEXT,
    finished_at     TEXT,
    updated_at      TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX jobs_created_at ON jobs (created_at);
CREATE INDEX jobs_status ON jobs (status);

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- SSE `id:`; AUTOINCREMENT so a sweep never causes reuse
    topic      TEXT NOT NULL,                      -- concrete topic, e.g. job/job_x
    event      TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    data       TEXT NOT NULL,                      -- the SSE data line, exactly as sent
    narrative  TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX events_topic_seq ON events (topic, seq);
CREATE INDEX events_entity ON events (entity_id, seq);

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    actor      TEXT NOT NULL,   -- keyed fingerprint of the API key, never the key
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    args       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX audit_target ON audit (target);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
