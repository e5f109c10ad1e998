//! `support_cases`: the support cases for support agents, by the instant their reply is due.
//! Only the masked document and contacts are kept here (the name in full, as support lookups
//! show it); the case itself is its stream. Whether a case is overdue is read off the clock,
//! not stored. An account's erasure erases the cases about it here too.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shenfen_domain::shared::mask::{mask_document, mask_email, mask_mobile};
use shenfen_domain::shared::ERASED;
use shenfen_domain::support_case::{CaseStatus, SupportCase, SupportCaseEvent};

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct SupportCases;

const ACCOUNT: &str = <shenfen_domain::account::Account as cqrs_es::Aggregate>::TYPE;

/// The cases about an account (by the id its document has), for its erasure.
pub async fn about(db: &Db, account_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        crate::fetch_all!(db, (String,), "SELECT case_id FROM support_cases WHERE account_id = $1", account_id)?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// One case as support agents see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SupportCaseRow {
    pub case_id: String,
    /// `account_check` or `contact_change`.
    pub kind: String,
    /// `open` or `replied`.
    pub status: String,
    /// The id the document's account has (or would have).
    pub account_id: String,
    pub name: String,
    pub document_type: String,
    pub document_number_masked: String,
    pub mobile_masked: String,
    pub email_masked: String,
    pub description: String,
    pub opened_at: DateTime<Utc>,
    pub reply_due_by: DateTime<Utc>,
    /// The first reply.
    pub replied_at: Option<DateTime<Utc>>,
    pub replies: i32,
}

impl SupportCaseRow {
    /// Whether the reply is late at `now`: still open after its due instant.
    pub fn overdue_at(&self, now: DateTime<Utc>) -> bool {
        self.status == CaseStatus::Open.as_str() && now > self.reply_due_by
    }
}

const COLUMNS: &str = "case_id, kind, status, account_id, name, document_type, document_number_masked, mobile_masked,
    email_masked, description, opened_at, reply_due_by, replied_at, replies";

impl SupportCases {
    /// The projection's name.
    pub const NAME: &'static str = "support_cases";

    /// Up to `limit` cases (of one status, when given), the earliest due first.
    pub async fn by_due_time(
        db: &Db,
        status: Option<CaseStatus>,
        limit: i64,
    ) -> Result<Vec<SupportCaseRow>, sqlx::Error> {
        match status {
            Some(status) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM support_cases WHERE status = $1 ORDER BY reply_due_by, case_id LIMIT $2"
                );
                crate::fetch_all!(db, SupportCaseRow, &sql, status.as_str(), limit)
            }
            None => {
                let sql = format!("SELECT {COLUMNS} FROM support_cases ORDER BY reply_due_by, case_id LIMIT $1");
                crate::fetch_all!(db, SupportCaseRow, &sql, limit)
            }
        }
    }
}

#[async_trait]
impl Projection for SupportCases {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == <SupportCase as cqrs_es::Aggregate>::TYPE
            || (e.aggregate_type == ACCOUNT && e.event_type == "Erased")
    }

    fn tables(&self) -> &'static [&'static str] {
        &["support_cases"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type == ACCOUNT && e.event_type == "Erased" {
            // The cases about an erased account are erased with it (their keys destroyed by the
            // erasure): what a rebuild, opening them, would show.
            exec!(tx tx,
                "UPDATE support_cases SET name = $1, document_number_masked = $1, mobile_masked = $1,
                        email_masked = $1, description = $1
                  WHERE account_id = $2",
                ERASED, &e.aggregate_id)?;
            return Ok(());
        }
        if e.aggregate_type != <SupportCase as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event = SupportCaseEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        let id = e.aggregate_id.as_str();
        match event {
            SupportCaseEvent::Opened { kind, applicant, description, account_id, reply_due_by, at, .. } => {
                exec!(tx tx,
                    "INSERT INTO support_cases (case_id, kind, status, account_id, name, document_type,
                         document_number_masked, mobile_masked, email_masked, description, opened_at, reply_due_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (case_id) DO NOTHING",
                    id,
                    kind.as_str(),
                    CaseStatus::Open.as_str(),
                    account_id,
                    applicant.name.as_str(),
                    applicant.document_type.as_str(),
                    mask_document(applicant.document_number.as_str()),
                    mask_mobile(applicant.mobile.as_str()),
                    mask_email(applicant.email.as_str()),
                    description.as_str(),
                    at,
                    reply_due_by)?;
            }
            SupportCaseEvent::Replied { at, .. } => {
                exec!(tx tx,
                    "UPDATE support_cases SET status = $1, replied_at = COALESCE(replied_at, $2), replies = replies + 1
                      WHERE case_id = $3",
                    CaseStatus::Replied.as_str(), at, id)?;
            }
        }
        Ok(())
    }
}
