//! `pending_deletions`: the accounts whose deletion (注销) was asked for and is neither carried
//! out nor withdrawn yet, with when it falls due; the server's erasure worker reads the due ones.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shenfen_domain::account::AccountEvent;

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct PendingDeletions;

impl PendingDeletions {
    /// The projection's name.
    pub const NAME: &'static str = "pending_deletions";

    /// The accounts whose deletion is due at `now`, earliest first (at most `limit`).
    pub async fn due(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = crate::fetch_all!(
            db,
            (String,),
            "SELECT account_id FROM pending_deletions WHERE effective_at <= $1 ORDER BY effective_at LIMIT $2",
            now,
            limit
        )?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

#[async_trait]
impl Projection for PendingDeletions {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == "account" && matches!(e.event_type, "DeletionRequested" | "DeletionCancelled" | "Erased")
    }

    fn tables(&self) -> &'static [&'static str] {
        &["pending_deletions"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if !self.wants(e.kind()) {
            return Ok(());
        }
        let event = AccountEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        let id = e.aggregate_id.as_str();
        match event {
            AccountEvent::DeletionRequested { effective_at, .. } => {
                exec!(tx tx,
                    "INSERT INTO pending_deletions (account_id, effective_at) VALUES ($1, $2)
                     ON CONFLICT (account_id) DO UPDATE SET effective_at = excluded.effective_at",
                    id, effective_at)?;
            }
            AccountEvent::DeletionCancelled { .. } | AccountEvent::Erased { .. } => {
                exec!(tx tx, "DELETE FROM pending_deletions WHERE account_id = $1", id)?;
            }
            _ => {}
        }
        Ok(())
    }
}
