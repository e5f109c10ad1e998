-- The event log. The first seven columns are the ones postgres-es reads and writes; the rest
-- have defaults, so its INSERT (which names its columns) fills them in.
--   transaction_id + global_position: the gap-safe global order for catch-up projections
--     (read only below the oldest running transaction, resume by the pair).
--   recorded_at: when the row was written (the database clock), beside the application
--     instant carried in metadata.
CREATE TABLE events (
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence >= 0),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX events_global_order ON events (transaction_id, global_position);

-- Wake projection runners in every process when events commit.
CREATE FUNCTION notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shenfen_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION notify_events();

-- One row per projection: how far it has read the log.
CREATE TABLE projection_checkpoints (
    projection     text        PRIMARY KEY,
    transaction_id bigint      NOT NULL DEFAULT 0,
    position       bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Outgoing messages (codes, reset links) waiting for the notifier. Not events: they hold the
-- plain secret until it is delivered, then `body` is cleared.
CREATE TABLE outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel         text        NOT NULL,
    destination     text        NOT NULL,
    purpose         text        NOT NULL,
    body            text,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    delivered_at    timestamptz,
    last_error      text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
CREATE UNIQUE INDEX events_global_position ON events (global_position);
