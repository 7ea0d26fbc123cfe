-- The canary engine: canaries with their counters and schedule, every SLO check with the evidence behind
-- its verdict, and the gate each model is at. Times with milliseconds (`next_check_at`, `deadline_at`,
-- `evaluated_at`) are `YYYY-MM-DD HH:MM:SS.SSS`, which still compares with datetime() text.

CREATE TABLE canaries (
    id                      TEXT PRIMARY KEY NOT NULL,
    model_id                TEXT NOT NULL,
    from_gate               TEXT NOT NULL,
    to_gate                 TEXT NOT NULL,
    slo_policy              TEXT NOT NULL,   -- JSON of the effective (merged) policy
    status                  TEXT NOT NULL CHECK (status IN ('running', 'paused', 'held', 'promoted', 'rolled_back', 'dry_run')),
    dry_run                 BOOLEAN NOT NULL DEFAULT 0,
    idempotency_key         TEXT,
    reason_code             TEXT,            -- why it ended (slo_met, consecutive_failures, critical, deadline, manual)
    reason                  TEXT,
    checks                  INTEGER NOT NULL DEFAULT 0,
    consecutive_passes      INTEGER NOT NULL DEFAULT 0,
    consecutive_failures    INTEGER NOT NULL DEFAULT 0,
    consecutive_no_decision INTEGER NOT NULL DEFAULT 0,
    next_check_at           TEXT,
    deadline_at             TEXT NOT NULL,
    created_at              TEXT NOT NULL DEFAULT (datetime('now')),
    updated_at              TEXT NOT NULL DEFAULT (datetime('now')),
    finished_at             TEXT
);
-- One active (non-dry-run) canary per model and target gate.
CREATE UNIQUE INDEX canaries_one_active ON canaries (model_id, to_gate)
    WHERE status IN ('running', 'paused', 'held') AND dry_run = 0;
CREATE UNIQUE INDEX canaries_idempotency_key ON canaries (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX canaries_created_at ON canaries (created_at);
CREATE INDEX canaries_model ON canaries (model_id, created_at);

CREATE TABLE canary_metrics (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    canary_id            TEXT NOT NULL REFERENCES canaries (id),
    gate                 TEXT NOT NULL,
    latency_p95_ms       DOUBLE,            -- finite values only; NULL when there was none
    error_rate           DOUBLE,
    requests             DOUBLE,
    raw_latency          TEXT,              -- what the source said, e.g. "NaN", or the reason there was no value
    raw_error_rate       TEXT,
    raw_requests         TEXT,
    latency_threshold    DOUBLE NOT NULL,
    error_rate_threshold DOUBLE NOT NULL,
    verdict              TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'no_decision')),
    reason_code          TEXT NOT NULL,
    query                TEXT NOT NULL,     -- the rendered queries (JSON)
    evaluated_at         TEXT NOT NULL,     -- the due time the values were asked for
    created_at           TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX canary_metrics_canary ON canary_metrics (canary_id, id);
CREATE INDEX canary_metrics_created_at ON canary_metrics (created_at);

CREATE TABLE model_gates (
    model_id   TEXT PRIMARY KEY NOT NULL,
    gate       TEXT NOT NULL,
    canary_id  TEXT,                        -- the canary that promoted it; NULL for promote_model
    updated_at TEXT NOT NULL DEFAULT (datetime('now'))
);
