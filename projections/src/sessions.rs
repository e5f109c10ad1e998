//! `sessions`: live sessions by token hash, for authenticating requests. Tokens themselves
//! are never stored, only their SHA-256.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shenfen_domain::account::{Account, AccountEvent};

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::StoredEvent;
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct Sessions;

/// A live session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: String,
    pub account_id: String,
    pub expires_at: DateTime<Utc>,
}

impl Sessions {
    /// The projection's name.
    pub const NAME: &'static str = "sessions";

    /// The unexpired session with this token hash.
    pub async fn find(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>, sqlx::Error> {
        crate::fetch_optional!(
            db,
            SessionRow,
            "SELECT session_id, account_id, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
            token_hash,
            now
        )
    }
}

#[async_trait]
impl Projection for Sessions {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: &StoredEvent) -> bool {
        e.aggregate_type == "account"
            && matches!(e.event_type.as_str(), "SessionStarted" | "SessionEnded" | "SessionsRevoked")
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sessions"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != <Account as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event: AccountEvent =
            serde_json::from_value(e.payload.clone()).map_err(|err| ProjectionError::decode(e, err))?;
        let id = e.aggregate_id.as_str();
        match event {
            AccountEvent::SessionStarted { session_id, token_hash, expires_at, at } => {
                exec!(tx tx, "DELETE FROM sessions WHERE account_id = $1 AND expires_at <= $2", id, at)?;
                exec!(tx tx,
                    "INSERT INTO sessions (token_hash, session_id, account_id, expires_at, started_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash) DO NOTHING",
                    token_hash, session_id, id, expires_at, at)?;
            }
            AccountEvent::SessionEnded { session_id, .. } => {
                exec!(tx tx, "DELETE FROM sessions WHERE session_id = $1", session_id)?;
            }
            AccountEvent::SessionsRevoked { kept, .. } => {
                exec!(tx tx, "DELETE FROM sessions WHERE account_id = $1 AND session_id <> $2",
                    id, kept.unwrap_or_default())?;
            }
            _ => {}
        }
        Ok(())
    }
}
