-- Analyst tables (projections/src/analytics.rs). Days are China Standard Time dates.

-- New accounts per day and document type.
CREATE TABLE analytics_registrations (
    day           TEXT  NOT NULL,
    document_type TEXT  NOT NULL,
    registrations INTEGER  NOT NULL DEFAULT 0,
    PRIMARY KEY (day, document_type)
);

-- Real-name attempts per day by outcome (passed, failed, voided) and failure reason ('' unless failed).
CREATE TABLE analytics_verification_attempts (
    day      TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, outcome, reason)
);

-- Accounts that used up a quota, per day: quota is 'daily_attempts' or 'period_applications'.
CREATE TABLE analytics_quota_exhaustion (
    day      TEXT NOT NULL,
    quota    TEXT NOT NULL,
    accounts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, quota)
);

-- Working state of the quota-exhaustion reducer: counted attempts per account and day.
CREATE TABLE analytics_attempt_counts (
    account_id TEXT NOT NULL,
    day        TEXT NOT NULL,
    counted    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
);

-- One row per manual-review application, with its decision and turnaround in working days.
CREATE TABLE analytics_reviews (
    review_id                 TEXT  PRIMARY KEY,
    account_id                TEXT  NOT NULL,
    document_type             TEXT  NOT NULL,
    submitted_at              TEXT NOT NULL,
    submitted_day             TEXT  NOT NULL,
    period_start              TEXT  NOT NULL,
    due_by                    TEXT  NOT NULL,
    decision                  TEXT,
    decided_at                TEXT,
    decided_day               TEXT,
    turnaround_working_days   INTEGER,
    rejection_reason          TEXT
);
CREATE INDEX analytics_reviews_submitted ON analytics_reviews (submitted_day);
