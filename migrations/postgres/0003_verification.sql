-- Read models of verification, review and staff (projections/src/{quotas,review_queue,staff_sessions}.rs).
ALTER TABLE account_view ADD COLUMN gender text;

CREATE TABLE verification_quotas (
    account_id             text    PRIMARY KEY,
    attempts_day           date,
    attempts_on_day        integer NOT NULL DEFAULT 0,
    in_flight_day          date,
    period_start           date,
    applications_in_period integer NOT NULL DEFAULT 0
);

CREATE TABLE review_queue (
    review_id       text        PRIMARY KEY,
    account_id      text        NOT NULL,
    document_type   text        NOT NULL,
    submitted_at    timestamptz NOT NULL,
    due_by          date        NOT NULL,
    status          text        NOT NULL,
    claimed_by      text,
    decision_reason text,
    decided_at      timestamptz
);
CREATE INDEX review_queue_pending ON review_queue (due_by, submitted_at) WHERE status = 'pending';
CREATE INDEX review_queue_account ON review_queue (account_id);

CREATE TABLE staff_sessions (
    token_hash text        PRIMARY KEY,
    staff_id   text        NOT NULL,
    username   text        NOT NULL,
    role       text        NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE staff_directory (
    staff_id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role     TEXT NOT NULL
);
