-- The data subjects' keys (crypto-shredding, see projections/src/pii.rs): one per subject and
-- version, wrapped by the master key; `wrapped` is NULL once the subject was erased.
CREATE TABLE subject_keys (
    subject    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    wrapped    BLOB,
    created_at TEXT NOT NULL,
    erased_at  TEXT,
    PRIMARY KEY (subject, version)
);
