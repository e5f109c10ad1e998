-- The data subjects' keys (crypto-shredding, see projections/src/pii.rs): one per subject and
-- version, wrapped by the master key; `wrapped` is NULL once the subject was erased.
CREATE TABLE subject_keys (
    subject    TEXT NOT NULL,
    version    BIGINT NOT NULL,
    wrapped    BYTEA,
    created_at timestamptz NOT NULL,
    erased_at  timestamptz,
    PRIMARY KEY (subject, version)
);

-- Accounts whose deletion was asked for and not yet carried out or withdrawn (projection
-- `pending_deletions`); the erasure worker reads the due ones.
CREATE TABLE pending_deletions (
    account_id   TEXT PRIMARY KEY,
    effective_at timestamptz NOT NULL
);
CREATE INDEX pending_deletions_due ON pending_deletions (effective_at);
