-- Analyst tables (projections/src/analytics.rs). Days are China Standard Time dates.

-- New accounts per day and document type.
CREATE TABLE analytics_registrations (
    day           date  NOT NULL,
    document_type text  NOT NULL,
    registrations integer  NOT NULL DEFAULT 0,
    PRIMARY KEY (day, document_type)
);

-- Real-name attempts per day by outcome (passed, failed, voided) and failure reason ('' unless failed).
CREATE TABLE analytics_verification_attempts (
    day      date NOT NULL,
    outcome  text NOT NULL,
    reason   text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    PRIMARY KEY (day, outcome, reason)
);

-- Accounts that used up a quota, per day: quota is 'daily_attempts' or 'period_applications'.
CREATE TABLE analytics_quota_exhaustion (
    day      date NOT NULL,
    quota    text NOT NULL,
    accounts integer NOT NULL DEFAULT 0,
    PRIMARY KEY (day, quota)
);

-- Working state of the quota-exhaustion reducer: counted attempts per account and day.
CREATE TABLE analytics_attempt_counts (
    account_id text NOT NULL,
    day        date NOT NULL,
    counted    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
);

-- One row per manual-review application, with its decision and turnaround in working days.
CREATE TABLE analytics_reviews (
    review_id                 text  PRIMARY KEY,
    account_id                text  NOT NULL,
    document_type             text  NOT NULL,
    submitted_at              timestamptz NOT NULL,
    submitted_day             date  NOT NULL,
    period_start              date  NOT NULL,
    due_by                    date  NOT NULL,
    decision                  text,
    decided_at                timestamptz,
    decided_day               date,
    turnaround_working_days   integer,
    rejection_reason          text
);
CREATE INDEX analytics_reviews_submitted ON analytics_reviews (submitted_day);
