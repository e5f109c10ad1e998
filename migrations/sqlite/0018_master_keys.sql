-- Master-key rotation (projections/src/master_keys.rs): each subject key names the master it is
-- wrapped under ('secret': the one derived from the secret key file), and `master_keys` lists
-- the masters in use, so that a server lacking one refuses to start.
ALTER TABLE subject_keys ADD COLUMN master TEXT NOT NULL DEFAULT 'secret';
CREATE INDEX subject_keys_master ON subject_keys (master) WHERE wrapped IS NOT NULL;
CREATE TABLE master_keys (
    id            TEXT PRIMARY KEY,
    first_used_at TEXT NOT NULL,
    retired_at    TEXT
);
INSERT INTO master_keys (id, first_used_at) VALUES ('secret', CURRENT_TIMESTAMP);
