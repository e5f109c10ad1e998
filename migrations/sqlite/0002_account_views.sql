-- Read models of the account stream (see projections/src/account_view.rs, sessions.rs).
CREATE TABLE account_view (
    account_id             TEXT        PRIMARY KEY,
    document_type          TEXT        NOT NULL,
    document_number_masked TEXT        NOT NULL,
    name                   TEXT        NOT NULL,
    profile_complete       INTEGER     NOT NULL,
    real_name_status       TEXT        NOT NULL,
    legacy                 INTEGER     NOT NULL,
    email_masked           TEXT,
    mobile_masked          TEXT,
    wechat_bound           INTEGER     NOT NULL,
    registered_at          TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash  TEXT        PRIMARY KEY,
    session_id  TEXT        NOT NULL UNIQUE,
    account_id  TEXT        NOT NULL,
    expires_at  TEXT NOT NULL,
    started_at  TEXT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
