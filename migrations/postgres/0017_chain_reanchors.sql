-- Streams of the log rewritten in place by the key's holder (projections/src/reanchor.rs:
-- personal data sealed in a store written before sealing): when, why, how many events, the
-- stream's head hash before and after, with a MAC under the chain key. `shenfen-replay
-- verify` checks them.
CREATE TABLE chain_reanchors (
    run_id         text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    events         bigint      NOT NULL,
    head_before    text        NOT NULL,
    head_after     text        NOT NULL,
    reason         text        NOT NULL,
    at             timestamptz NOT NULL,
    mac            text        NOT NULL,
    PRIMARY KEY (run_id, aggregate_type, aggregate_id)
);
