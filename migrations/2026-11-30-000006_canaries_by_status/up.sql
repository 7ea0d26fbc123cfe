-- Active canaries found by status: `start_canary` counts them (canary.max_active) and looks for one moving into
-- the same gate inside its transaction, and the registry resumes them at start. Without this index each of
-- those read every canary ever started: a full scan inside the single writer's transaction, growing with
-- the history (seen in the soak as p99 creeping up). A plain index rather than a partial one: the statuses
-- are bound parameters, which a partial index's WHERE cannot be matched against.
CREATE INDEX canaries_status_gate ON canaries (status, to_gate);
