//! `reregistration_claims`: the re-registration claims on each account, for its holder
//! (`GET /v1/me/reregistration-claims`), and when each ended and its claimant was forgotten,
//! for the retention worker. Expiry is read off the clock, not stored.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shenfen_domain::claim::{Claim, ClaimEvent, ClaimStatus};

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct Claims;

/// One claim as its holder sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimRow {
    pub claim_id: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl ClaimRow {
    /// The status at `now` (a claim still waiting for proof after its expiry has expired).
    pub fn status_at(&self, now: DateTime<Utc>) -> &str {
        if self.status == ClaimStatus::ProofRequired.as_str() && now >= self.expires_at {
            ClaimStatus::Expired.as_str()
        } else {
            &self.status
        }
    }
}

impl Claims {
    /// The projection's name.
    pub const NAME: &'static str = "reregistration_claims";

    /// The claims that ended (approved, rejected or refused, or expired without proof) at or
    /// before `ended_by` and whose claimant is not forgotten yet (at most `limit`): the
    /// retention worker's work.
    pub async fn to_forget(db: &Db, ended_by: DateTime<Utc>, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = crate::fetch_all!(
            db,
            (String,),
            "SELECT claim_id FROM reregistration_claims
              WHERE forgotten_at IS NULL
                AND (closed_at <= $1 OR (status = 'proof_required' AND expires_at <= $1))
              ORDER BY claim_id LIMIT $2",
            ended_by,
            limit
        )?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The claims on an account, newest first.
    pub async fn of_account(db: &Db, account_id: &str) -> Result<Vec<ClaimRow>, sqlx::Error> {
        crate::fetch_all!(
            db,
            ClaimRow,
            "SELECT claim_id, status, created_at, expires_at FROM reregistration_claims
              WHERE account_id = $1 ORDER BY created_at DESC, claim_id",
            account_id
        )
    }
}

#[async_trait]
impl Projection for Claims {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == "claim" && !matches!(e.event_type, "ReviewClaimed" | "ProofPhotosDeleted")
    }

    fn tables(&self) -> &'static [&'static str] {
        &["reregistration_claims"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != <Claim as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event = ClaimEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        let id = e.aggregate_id.as_str();
        let status = match event {
            ClaimEvent::Opened { account_id, expires_at, at, .. } => {
                exec!(tx tx,
                    "INSERT INTO reregistration_claims (claim_id, account_id, status, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (claim_id) DO NOTHING",
                    id, account_id, ClaimStatus::ProofRequired.as_str(), at, expires_at)?;
                return Ok(());
            }
            ClaimEvent::ProofSubmitted { .. } => ClaimStatus::UnderReview,
            ClaimEvent::ReviewClaimed { .. } | ClaimEvent::ProofPhotosDeleted { .. } => return Ok(()),
            ClaimEvent::Approved { at, .. } | ClaimEvent::Rejected { at, .. } | ClaimEvent::Refused { at } => {
                let status = match event {
                    ClaimEvent::Approved { .. } => ClaimStatus::Approved,
                    ClaimEvent::Rejected { .. } => ClaimStatus::Rejected,
                    _ => ClaimStatus::Refused,
                };
                exec!(tx tx, "UPDATE reregistration_claims SET status = $1, closed_at = $2 WHERE claim_id = $3",
                    status.as_str(), at, id)?;
                return Ok(());
            }
            ClaimEvent::Forgotten { at, .. } => {
                exec!(tx tx, "UPDATE reregistration_claims SET forgotten_at = $1 WHERE claim_id = $2", at, id)?;
                return Ok(());
            }
        };
        exec!(tx tx, "UPDATE reregistration_claims SET status = $1 WHERE claim_id = $2", status.as_str(), id)?;
        Ok(())
    }
}
