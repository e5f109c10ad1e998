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
