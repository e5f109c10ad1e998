//! `review_queue`: manual-review applications for reviewers, oldest due first, and the
//! holder's own list.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
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
}

const COLUMNS: &str =
    "review_id, account_id, document_type, submitted_at, due_by, status, claimed_by, decision_reason, decided_at";

impl ReviewQueue {
    /// The projection's name.
    pub const NAME: &'static str = "review_queue";

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
        e.aggregate_type == "verification"
            && matches!(
                e.event_type,
                "ApplicationSubmitted" | "ApplicationClaimed" | "ApplicationApproved" | "ApplicationRejected"
            )
    }

    fn tables(&self) -> &'static [&'static str] {
        &["review_queue"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
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
            _ => {}
        }
        Ok(())
    }
}
