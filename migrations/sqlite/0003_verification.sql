-- Read models of verification, review and staff (projections/src/{quotas,review_queue,staff_sessions}.rs).
ALTER TABLE account_view ADD COLUMN gender TEXT;

CREATE TABLE verification_quotas (
    account_id             TEXT    PRIMARY KEY,
    attempts_day           TEXT,
    attempts_on_day        INTEGER NOT NULL DEFAULT 0,
    in_flight_day          TEXT,
    period_start           TEXT,
    applications_in_period INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE review_queue (
    review_id       TEXT        PRIMARY KEY,
    account_id      TEXT        NOT NULL,
    document_type   TEXT        NOT NULL,
    submitted_at    TEXT NOT NULL,
    due_by          TEXT        NOT NULL,
    status          TEXT        NOT NULL,
    claimed_by      TEXT,
    decision_reason TEXT,
    decided_at      TEXT
);
CREATE INDEX review_queue_pending ON review_queue (due_by, submitted_at) WHERE status = 'pending';
CREATE INDEX review_queue_account ON review_queue (account_id);

CREATE TABLE staff_sessions (
    token_hash TEXT        PRIMARY KEY,
    staff_id   TEXT        NOT NULL,
    username   TEXT        NOT NULL,
    role       TEXT        NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE staff_directory (
    staff_id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role     TEXT NOT NULL
);
