-- Snapshots of aggregate state, written outside the command path by the snapshot writers
-- (projections/src/snapshots.rs) and read by the command bus. A row whose fingerprint is not
-- the current one (another state version or shape) is ignored.
CREATE TABLE aggregate_snapshots (
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    last_sequence  bigint NOT NULL,
    fingerprint    text NOT NULL,
    last_hash      text NOT NULL,
    state          jsonb NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
