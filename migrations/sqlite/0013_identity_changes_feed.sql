-- The identity-changes feed for downstream services (projection `identity_changes`): one row
-- per change an account event tells of, numbered in the order the runner applies the log.
CREATE TABLE identity_changes (
    cursor     INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    at         TEXT NOT NULL,
    source_tx  INTEGER NOT NULL,
    source_pos INTEGER NOT NULL,
    UNIQUE (source_tx, source_pos, kind)
);
