-- Messages are queued in the transaction that commits the event issuing their secret, and
-- expire with that secret: an expired message is never sent, and its body is erased.
ALTER TABLE outbox ADD COLUMN expires_at TEXT;
ALTER TABLE outbox ADD COLUMN expired_at TEXT;
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND expired_at IS NULL;
CREATE INDEX outbox_expiring ON outbox (expires_at) WHERE delivered_at IS NULL AND expired_at IS NULL;
