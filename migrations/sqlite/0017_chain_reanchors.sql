-- Streams of the log rewritten in place by the key's holder (projections/src/reanchor.rs:
-- personal data sealed in a store written before sealing): when, why, how many events, the
-- stream's head hash before and after, with a MAC under the chain key. `shenfen-replay
-- verify` checks them.
CREATE TABLE chain_reanchors (
    run_id         TEXT        NOT NULL,
    aggregate_type TEXT        NOT NULL,
    aggregate_id   TEXT        NOT NULL,
    events         INTEGER     NOT NULL,
    head_before    TEXT        NOT NULL,
    head_after     TEXT        NOT NULL,
    reason         TEXT        NOT NULL,
    at             TEXT        NOT NULL,
    mac            TEXT        NOT NULL,
    PRIMARY KEY (run_id, aggregate_type, aggregate_id)
);
