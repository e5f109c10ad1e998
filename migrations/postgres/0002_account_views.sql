-- Read models of the account stream (see projections/src/account_view.rs, sessions.rs).
CREATE TABLE account_view (
    account_id             text        PRIMARY KEY,
    document_type          text        NOT NULL,
    document_number_masked text        NOT NULL,
    name                   text        NOT NULL,
    profile_complete       boolean     NOT NULL,
    real_name_status       text        NOT NULL,
    legacy                 boolean     NOT NULL,
    email_masked           text,
    mobile_masked          text,
    wechat_bound           boolean     NOT NULL,
    registered_at          timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);

CREATE TABLE sessions (
    token_hash  text        PRIMARY KEY,
    session_id  text        NOT NULL UNIQUE,
    account_id  text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    started_at  timestamptz NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
