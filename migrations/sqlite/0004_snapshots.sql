-- Snapshots of aggregate state, written outside the command path by the snapshot writers
-- (projections/src/snapshots.rs) and read by the command bus. A row whose fingerprint is not
-- the current one (another state version or shape) is ignored.
CREATE TABLE aggregate_snapshots (
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    last_sequence  INTEGER NOT NULL,
    fingerprint    TEXT NOT NULL,
    last_hash      TEXT NOT NULL,
    state          TEXT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
