-- Claims end (approved, rejected, refused) and their claimants are forgotten after the
-- retention period (projections/src/claims.rs); the housekeeping round reads the due ones.
ALTER TABLE reregistration_claims ADD COLUMN closed_at TEXT;
ALTER TABLE reregistration_claims ADD COLUMN forgotten_at TEXT;
