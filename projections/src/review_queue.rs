//! `review_queue`: manual reviews for reviewers, oldest due first — holders' applications
//! (`kind` `verification`) and re-registration claimants' proofs (`kind` `reregistration`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use shenfen_domain::claim::{Claim, ClaimEvent};
use shenfen_domain::verification::{Verification, VerificationEvent};

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct ReviewQueue;

/// One application.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRow {
    pub review_id: String,
    pub account_id: String,
    pub document_type: String,
    pub submitted_at: DateTime<Utc>,
    pub due_by: NaiveDate,
    pub status: String,
    pub claimed_by: Option<String>,
    pub decision_reason: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// `verification` or `reregistration`.
    pub kind: String,
}

const COLUMNS: &str =
    "review_id, account_id, document_type, submitted_at, due_by, status, claimed_by, decision_reason, decided_at, kind";

impl ReviewQueue {
    /// The projection's name.
    pub const NAME: &'static str = "review_queue";

    /// `(review_id, account_id)` of the reviews (applications and claimants' proofs) decided or
    /// withdrawn at or before `decided_by` whose photos are still kept (at most `limit`,
    /// earliest first): the retention worker's work.
    pub async fn photos_to_delete(
        db: &Db,
        decided_by: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        crate::fetch_all!(
            db,
            (String, String),
            "SELECT review_id, account_id FROM review_queue
              WHERE status <> 'pending' AND decided_at <= $1 AND photos_deleted_at IS NULL
              ORDER BY decided_at LIMIT $2",
            decided_by,
            limit
        )
    }

    /// Pending applications, oldest due first.
    pub async fn pending(db: &Db, limit: i64) -> Result<Vec<ReviewRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM review_queue WHERE status = 'pending' ORDER BY due_by, submitted_at, review_id LIMIT $1"
        );
        crate::fetch_all!(db, ReviewRow, &sql, limit)
    }
}

#[async_trait]
impl Projection for ReviewQueue {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        (e.aggregate_type == "claim" && e.event_type != "Opened")
            || e.aggregate_type == "verification"
                && matches!(
                    e.event_type,
                    "ApplicationSubmitted"
                        | "ApplicationClaimed"
                        | "ApplicationApproved"
                        | "ApplicationRejected"
                        | "ApplicationWithdrawn"
                        | "ApplicationPhotosDeleted"
                )
    }

    fn tables(&self) -> &'static [&'static str] {
        &["review_queue"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type == <Claim as cqrs_es::Aggregate>::TYPE {
            return apply_claim(tx, e).await;
        }
        if e.aggregate_type != <Verification as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event = VerificationEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        match event {
            VerificationEvent::ApplicationSubmitted { account_id, review_id, document_type, due_by, at, .. } => {
                exec!(tx tx,
                    "INSERT INTO review_queue (review_id, account_id, document_type, submitted_at, due_by, status)
                     VALUES ($1, $2, $3, $4, $5, 'pending') ON CONFLICT (review_id) DO NOTHING",
                    review_id, account_id, document_type.as_str(), at, due_by)?;
            }
            VerificationEvent::ApplicationClaimed { review_id, reviewer, .. } => {
                exec!(tx tx, "UPDATE review_queue SET claimed_by = $1 WHERE review_id = $2", reviewer, review_id)?;
            }
            VerificationEvent::ApplicationApproved { review_id, reason, at, .. } => {
                exec!(tx tx,
                    "UPDATE review_queue SET status = 'approved', decision_reason = $1, decided_at = $2 WHERE review_id = $3",
                    reason, at, review_id)?;
            }
            VerificationEvent::ApplicationRejected { review_id, reason, at, .. } => {
                exec!(tx tx,
                    "UPDATE review_queue SET status = 'rejected', decision_reason = $1, decided_at = $2 WHERE review_id = $3",
                    reason, at, review_id)?;
            }
            VerificationEvent::ApplicationPhotosDeleted { review_id, at } => {
                exec!(tx tx, "UPDATE review_queue SET photos_deleted_at = $1 WHERE review_id = $2", at, review_id)?;
            }
            VerificationEvent::ApplicationWithdrawn { review_id, at, .. } => {
                exec!(tx tx, "UPDATE review_queue SET status = 'withdrawn', decided_at = $1 WHERE review_id = $2", at, review_id)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A claimant's proof and its review.
async fn apply_claim(tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
    let event = ClaimEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
    match event {
        ClaimEvent::ProofSubmitted { account_id, review_id, document_type, due_by, at, .. } => {
            exec!(tx tx,
                "INSERT INTO review_queue (review_id, account_id, document_type, submitted_at, due_by, status, kind)
                 VALUES ($1, $2, $3, $4, $5, 'pending', 'reregistration') ON CONFLICT (review_id) DO NOTHING",
                review_id, account_id, document_type.as_str(), at, due_by)?;
        }
        ClaimEvent::ReviewClaimed { review_id, reviewer, .. } => {
            exec!(tx tx, "UPDATE review_queue SET claimed_by = $1 WHERE review_id = $2", reviewer, review_id)?;
        }
        ClaimEvent::Approved { review_id, reason, at, .. } => {
            exec!(tx tx,
                "UPDATE review_queue SET status = 'approved', decision_reason = $1, decided_at = $2 WHERE review_id = $3",
                reason, at, review_id)?;
        }
        ClaimEvent::Rejected { review_id, reason, at, .. } => {
            exec!(tx tx,
                "UPDATE review_queue SET status = 'rejected', decision_reason = $1, decided_at = $2 WHERE review_id = $3",
                reason, at, review_id)?;
        }
        ClaimEvent::Refused { at } => {
            // The holder refused the claim while its proof waited: it leaves the queue.
            exec!(tx tx,
                "UPDATE review_queue SET status = 'withdrawn', decided_at = $1
                  WHERE review_id = $2 AND status = 'pending'",
                at, claim_review_id(&e.aggregate_id))?;
        }
        ClaimEvent::ProofPhotosDeleted { review_id, at } => {
            exec!(tx tx, "UPDATE review_queue SET photos_deleted_at = $1 WHERE review_id = $2", at, review_id)?;
        }
        ClaimEvent::Forgotten { at, .. } => {
            // The photos go with the claimant.
            exec!(tx tx,
                "UPDATE review_queue SET photos_deleted_at = COALESCE(photos_deleted_at, $1) WHERE review_id = $2",
                at, claim_review_id(&e.aggregate_id))?;
        }
        ClaimEvent::Opened { .. } => {}
    }
    Ok(())
}

/// The review id of a claim's proof: `rvc_` and the claim id's hex part.
pub fn claim_review_id(claim_id: &str) -> String {
    format!("rvc_{}", claim_id.strip_prefix("clm_").unwrap_or(claim_id))
}

/// The claim a claim review id belongs to.
pub fn claim_of_review(review_id: &str) -> Option<String> {
    review_id.strip_prefix("rvc_").map(|rest| format!("clm_{rest}"))
}
