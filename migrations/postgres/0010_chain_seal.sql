-- The seal of the log (projections/src/seal.rs): each stream's head recorded under the chain
-- key, and one keyed row over all of them, so that deleting a stream's last events or a whole
-- stream is seen by `shenfen-replay verify`. And snapshots carry a keyed MAC: one edited in the
-- database is ignored.
CREATE TABLE chain_heads (
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    hash           text   NOT NULL,
    mac            text   NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
CREATE TABLE chain_seal (
    id             integer PRIMARY KEY CHECK (id = 1),
    keyed_from_tx  bigint  NOT NULL,
    keyed_from_pos bigint  NOT NULL,
    sealed_tx      bigint  NOT NULL,
    sealed_pos     bigint  NOT NULL,
    streams        bigint  NOT NULL,
    digest         text    NOT NULL,
    mac            text    NOT NULL
);
ALTER TABLE aggregate_snapshots ADD COLUMN mac text;
