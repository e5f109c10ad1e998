-- The seal of the log (projections/src/seal.rs): each stream's head recorded under the chain
-- key, and one keyed row over all of them, so that deleting a stream's last events or a whole
-- stream is seen by `shenfen-replay verify`. And snapshots carry a keyed MAC: one edited in the
-- database is ignored.
CREATE TABLE chain_heads (
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       INTEGER NOT NULL,
    hash           TEXT    NOT NULL,
    mac            TEXT    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
CREATE TABLE chain_seal (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    keyed_from_tx  INTEGER NOT NULL,
    keyed_from_pos INTEGER NOT NULL,
    sealed_tx      INTEGER NOT NULL,
    sealed_pos     INTEGER NOT NULL,
    streams        INTEGER NOT NULL,
    digest         TEXT    NOT NULL,
    mac            TEXT    NOT NULL
);
ALTER TABLE aggregate_snapshots ADD COLUMN mac TEXT;
