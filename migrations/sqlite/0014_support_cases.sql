-- Support cases for support agents (projections/src/support_cases.rs): masked document and
-- contacts only; the full case is in its stream.
CREATE TABLE support_cases (
    case_id                TEXT        PRIMARY KEY,
    kind                   TEXT        NOT NULL,
    status                 TEXT        NOT NULL,
    account_id             TEXT        NOT NULL,
    name                   TEXT        NOT NULL,
    document_type          TEXT        NOT NULL,
    document_number_masked TEXT        NOT NULL,
    mobile_masked          TEXT        NOT NULL,
    email_masked           TEXT        NOT NULL,
    description            TEXT        NOT NULL,
    opened_at              TEXT        NOT NULL,
    reply_due_by           TEXT        NOT NULL,
    replied_at             TEXT,
    replies                INTEGER     NOT NULL DEFAULT 0
);
CREATE INDEX support_cases_due ON support_cases (reply_due_by, case_id);
