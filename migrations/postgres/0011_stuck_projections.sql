-- A projection that cannot apply an event (one it cannot decode, say) stops there; the runner
-- records where and why, so that `/readyz`, the metrics and `shenfen-replay stuck` show it.
ALTER TABLE projection_checkpoints ADD COLUMN stuck_since TIMESTAMPTZ;
ALTER TABLE projection_checkpoints ADD COLUMN stuck_tx BIGINT;
ALTER TABLE projection_checkpoints ADD COLUMN stuck_pos BIGINT;
ALTER TABLE projection_checkpoints ADD COLUMN stuck_error TEXT;
ALTER TABLE projection_checkpoints ADD COLUMN stuck_exact BOOLEAN;
