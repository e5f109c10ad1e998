-- Staff are authenticated from their own stream (their sessions, role and status live there),
-- so the staff_sessions read model goes.
DROP TABLE staff_sessions;
DROP TABLE staff_directory;
DELETE FROM projection_checkpoints WHERE projection = 'staff_sessions';

-- Re-registration claims, for their holders (projections/src/claims.rs).
CREATE TABLE reregistration_claims (
    claim_id   TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX reregistration_claims_account ON reregistration_claims (account_id);

-- The review queue holds claimants' proofs beside applications.
ALTER TABLE review_queue ADD COLUMN kind TEXT NOT NULL DEFAULT 'verification';
