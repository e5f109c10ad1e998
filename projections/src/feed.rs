//! `identity_changes`: the feed downstream services read (`GET /v1/feeds/identity-changes`) to
//! learn that an account's identity information changed and their applications must be
//! resubmitted (source document 001), and every change of name, validity and verification
//! status.
//!
//! Each item gets the next cursor as the runner applies the log: the runner applies events in
//! the log's gap-safe commit order, one leader at a time, and a batch commits with its
//! checkpoint, so cursors are handed out in commit order and a reader paging with `cursor >
//! after` never skips an item that commits later (no later commit can take a smaller cursor).
//! A rebuild replays the same order and gives the same cursors. Items name the account and
//! what changed, never personal data.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shenfen_domain::account::AccountEvent;

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct IdentityChanges;

/// What an item says changed.
pub mod kind {
    /// Applications made with the earlier identity information must be resubmitted.
    pub const RESUBMISSION_REQUIRED: &str = "resubmission_required";
    /// The name changed (verification, support, re-registration).
    pub const NAME_CHANGED: &str = "name_changed";
    /// The document's validity changed.
    pub const VALIDITY_CHANGED: &str = "validity_changed";
    /// The real-name verification status changed.
    pub const VERIFICATION_STATUS_CHANGED: &str = "verification_status_changed";
    /// Every kind.
    pub const ALL: [&str; 4] = [RESUBMISSION_REQUIRED, NAME_CHANGED, VALIDITY_CHANGED, VERIFICATION_STATUS_CHANGED];
}

/// The account events the feed tells of.
const TOLD: [&str; 6] = [
    "ResubmissionRequired",
    "VerifiedIdentityApplied",
    "RealNameStatusChanged",
    "ProfileEdited",
    "CorrectedBySupport",
    "Reregistered",
];

/// One item of the feed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChangeRow {
    pub cursor: i64,
    pub account_id: String,
    pub kind: String,
    pub at: DateTime<Utc>,
}

impl IdentityChanges {
    /// The projection's name.
    pub const NAME: &'static str = "identity_changes";

    /// At most `limit` items after `after`, in cursor order.
    pub async fn page(db: &Db, after: i64, limit: i64) -> Result<Vec<ChangeRow>, sqlx::Error> {
        crate::fetch_all!(
            db,
            ChangeRow,
            "SELECT cursor, account_id, kind, at FROM identity_changes WHERE cursor > $1 ORDER BY cursor LIMIT $2",
            after,
            limit
        )
    }
}

/// The kinds of change an account event tells of.
fn kinds(event: &AccountEvent) -> Vec<&'static str> {
    match event {
        AccountEvent::ResubmissionRequired { .. } => vec![kind::RESUBMISSION_REQUIRED],
        AccountEvent::RealNameStatusChanged { .. } => vec![kind::VERIFICATION_STATUS_CHANGED],
        AccountEvent::Reregistered { .. } => vec![kind::NAME_CHANGED, kind::VALIDITY_CHANGED],
        AccountEvent::VerifiedIdentityApplied { name, validity, .. } => {
            let mut kinds = Vec::new();
            if name.is_some() {
                kinds.push(kind::NAME_CHANGED);
            }
            if validity.is_some() {
                kinds.push(kind::VALIDITY_CHANGED);
            }
            kinds
        }
        AccountEvent::ProfileEdited { validity: Some(_), .. } => vec![kind::VALIDITY_CHANGED],
        AccountEvent::CorrectedBySupport { name: Some(_), .. } => vec![kind::NAME_CHANGED],
        _ => Vec::new(),
    }
}

#[async_trait]
impl Projection for IdentityChanges {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == "account" && TOLD.contains(&e.event_type)
    }

    fn tables(&self) -> &'static [&'static str] {
        &["identity_changes"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_batch(tx, &[e]).await
    }

    /// One statement for the whole batch on PostgreSQL (a busy feed gains a row for most
    /// profile edits); row by row on SQLite, which has no round trips to save.
    async fn apply_batch(&self, tx: &mut DbTx, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        let mut rows = Vec::new();
        for e in events.iter().filter(|e| self.wants(e.kind())) {
            let event = AccountEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
            rows.extend(
                kinds(&event).into_iter().map(|kind| (e.aggregate_id.clone(), kind, e.recorded_at, e.tx, e.pos)),
            );
        }
        if rows.is_empty() {
            return Ok(());
        }
        // The source position makes a second application of the same event a no-op; cursors
        // follow the feed's last in the order of the log.
        match tx {
            DbTx::Postgres(c) => {
                let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (account_id, kind, at, source_tx, source_pos) in rows {
                    columns.0.push(account_id);
                    columns.1.push(kind.to_string());
                    columns.2.push(at);
                    columns.3.push(source_tx);
                    columns.4.push(source_pos);
                }
                sqlx::query(
                    "INSERT INTO identity_changes (cursor, account_id, kind, at, source_tx, source_pos)
                     SELECT (SELECT COALESCE(MAX(cursor), 0) FROM identity_changes) + r.n, r.a, r.k, r.t, r.x, r.p
                       FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[])
                            WITH ORDINALITY AS r(a, k, t, x, p, n)
                      ORDER BY r.n
                     ON CONFLICT (source_tx, source_pos, kind) DO NOTHING",
                )
                .bind(columns.0)
                .bind(columns.1)
                .bind(columns.2)
                .bind(columns.3)
                .bind(columns.4)
                .execute(&mut **c)
                .await?;
            }
            DbTx::Sqlite(_) => {
                for (account_id, kind, at, source_tx, source_pos) in rows {
                    exec!(tx tx,
                        "INSERT INTO identity_changes (cursor, account_id, kind, at, source_tx, source_pos)
                         SELECT COALESCE(MAX(cursor), 0) + 1, $1, $2, $3, $4, $5 FROM identity_changes WHERE true
                         ON CONFLICT (source_tx, source_pos, kind) DO NOTHING",
                        account_id, kind, at, source_tx, source_pos)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_identity_information_and_status_are_told() {
        let at = Utc::now();
        assert_eq!(kinds(&AccountEvent::WechatUnbound { at }), Vec::<&str>::new());
        assert_eq!(
            kinds(&AccountEvent::ProfileEdited { ethnicity: None, validity: None, email: None, at }),
            Vec::<&str>::new()
        );
        assert_eq!(
            kinds(&AccountEvent::ResubmissionRequired { reason: "profile_edited".into(), at }),
            vec![kind::RESUBMISSION_REQUIRED]
        );
    }
}
