-- The PostgreSQL schema: the same tables, columns and indexes as SQLite's migrations 1 to 7 (partial unique
-- indexes included, so "one active canary per model and gate" and idempotency keys hold across writers),
-- with three differences the backend needs:
-- - events.seq is assigned from the one counter row `event_seq`, taken as the last statement of each group
--   commit, so seq order is commit order with no gaps whoever writes (SQLite's single writer gets the same
--   from AUTOINCREMENT);
-- - jobs and canaries get an identity column, `position`, the insertion order SQLite reads from rowid;
-- - timestamps stay UTC text in SQLite's datetime() form, and a datetime() function answers the kit's SQL.

CREATE FUNCTION datetime(base TEXT, modifier TEXT DEFAULT NULL) RETURNS TEXT
LANGUAGE SQL STABLE AS $$
    SELECT to_char(
        (CASE WHEN base = 'now' THEN now() AT TIME ZONE 'UTC' ELSE base::timestamp END)
            + COALESCE(modifier::interval, interval '0'),
        'YYYY-MM-DD HH24:MI:SS')
$$;

CREATE TABLE jobs (
    job_id          TEXT PRIMARY KEY NOT NULL,
    task_id         TEXT NOT NULL,
    config_id       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'dry_run')),
    progress        DOUBLE PRECISION NOT NULL DEFAULT 0,
    message         TEXT,
    result          TEXT,
    error           TEXT,
    exit_code       INTEGER,
    duration_ms     BIGINT,
    timeout_seconds DOUBLE PRECISION NOT NULL,
    pgid            INTEGER,
    pid_start_time  BIGINT,
    created_at      TEXT NOT NULL DEFAULT datetime('now'),
    started_at      TEXT,
    finished_at     TEXT,
    updated_at      TEXT NOT NULL DEFAULT datetime('now'),
    position        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX jobs_created_at ON jobs (created_at);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE event_seq (id SMALLINT PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL);
INSERT INTO event_seq VALUES (1, 0);

CREATE TABLE events (
    seq        BIGINT PRIMARY KEY,
    topic      TEXT NOT NULL,
    event      TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    data       TEXT NOT NULL,
    narrative  TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT datetime('now')
);
CREATE INDEX events_topic_seq ON events (topic, seq);
CREATE INDEX events_entity ON events (entity_id, seq);

CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    args       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT datetime('now')
);
CREATE INDEX audit_target ON audit (target);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE canaries (
    id                      TEXT PRIMARY KEY NOT NULL,
    model_id                TEXT NOT NULL,
    from_gate               TEXT NOT NULL,
    to_gate                 TEXT NOT NULL,
    slo_policy              TEXT NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('running', 'paused', 'held', 'promoted', 'rolled_back', 'dry_run')),
    dry_run                 BOOLEAN NOT NULL DEFAULT false,
    idempotency_key         TEXT,
    reason_code             TEXT,
    reason                  TEXT,
    checks                  INTEGER NOT NULL DEFAULT 0,
    consecutive_passes      INTEGER NOT NULL DEFAULT 0,
    consecutive_failures    INTEGER NOT NULL DEFAULT 0,
    consecutive_no_decision INTEGER NOT NULL DEFAULT 0,
    next_check_at           TEXT,
    deadline_at             TEXT NOT NULL,
    created_at              TEXT NOT NULL DEFAULT datetime('now'),
    updated_at              TEXT NOT NULL DEFAULT datetime('now'),
    finished_at             TEXT,
    position                BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE UNIQUE INDEX canaries_one_active ON canaries (model_id, to_gate)
    WHERE status IN ('running', 'paused', 'held') AND NOT dry_run;
CREATE UNIQUE INDEX canaries_idempotency_key ON canaries (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX canaries_created_at ON canaries (created_at);
CREATE INDEX canaries_model ON canaries (model_id, created_at);
CREATE INDEX canaries_status_gate ON canaries (status, to_gate);
CREATE INDEX canaries_finished_at ON canaries (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE canary_metrics (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    canary_id            TEXT NOT NULL REFERENCES canaries (id),
    gate                 TEXT NOT NULL,
    latency_p95_ms       DOUBLE PRECISION,
    error_rate           DOUBLE PRECISION,
    requests             DOUBLE PRECISION,
    raw_latency          TEXT,
    raw_error_rate       TEXT,
    raw_requests         TEXT,
    latency_threshold    DOUBLE PRECISION NOT NULL,
    error_rate_threshold DOUBLE PRECISION NOT NULL,
    verdict              TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'no_decision')),
    reason_code          TEXT NOT NULL,
    query                TEXT NOT NULL,
    evaluated_at         TEXT NOT NULL,
    created_at           TEXT NOT NULL DEFAULT datetime('now'),
    errors               DOUBLE PRECISION,
    raw_errors           TEXT,
    error_rate_lower     DOUBLE PRECISION,
    error_rate_upper     DOUBLE PRECISION,
    newest_sample_at     DOUBLE PRECISION,
    raw_newest           TEXT
);
CREATE INDEX canary_metrics_canary ON canary_metrics (canary_id, id);
CREATE INDEX canary_metrics_created_at ON canary_metrics (created_at);

CREATE TABLE model_gates (
    model_id   TEXT PRIMARY KEY NOT NULL,
    gate       TEXT NOT NULL,
    canary_id  TEXT,
    updated_at TEXT NOT NULL DEFAULT datetime('now')
);

CREATE TABLE webhook_outbox (
    event_seq  BIGINT PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL DEFAULT datetime('now')
);
