-- Webhooks to deliver: written in the transaction that decides a canary, deleted once the receiver took the
-- event (or after the last retry, which is audited). Re-driven at start, so a decision whose process died
-- before the POST is still delivered (at least once; receivers drop repeats by event id).
CREATE TABLE webhook_outbox (
    event_seq  INTEGER PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
