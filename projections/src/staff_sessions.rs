//! `staff_sessions`: live staff sessions by token hash, with the role.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shenfen_domain::staff::{Staff, StaffEvent};

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct StaffSessions;

/// A live staff session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffSessionRow {
    pub staff_id: String,
    pub username: String,
    pub role: String,
}

impl StaffSessions {
    /// The projection's name.
    pub const NAME: &'static str = "staff_sessions";

    /// The unexpired session with this token hash.
    pub async fn find(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<Option<StaffSessionRow>, sqlx::Error> {
        crate::fetch_optional!(
            db,
            StaffSessionRow,
            "SELECT staff_id, username, role FROM staff_sessions WHERE token_hash = $1 AND expires_at > $2",
            token_hash,
            now
        )
    }
}

#[async_trait]
impl Projection for StaffSessions {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == "staff" && matches!(e.event_type, "Created" | "SessionStarted")
    }

    fn tables(&self) -> &'static [&'static str] {
        &["staff_sessions", "staff_directory"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != <Staff as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event = StaffEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        let id = e.aggregate_id.as_str();
        match event {
            StaffEvent::Created { .. } => {}
            StaffEvent::SessionStarted { token_hash, expires_at, at, .. } => {
                exec!(tx tx, "DELETE FROM staff_sessions WHERE staff_id = $1 AND expires_at <= $2", id, at)?;
                // The username and role come from the stream's first event.
                exec!(tx tx,
                    "INSERT INTO staff_sessions (token_hash, staff_id, username, role, expires_at)
                     SELECT $1, $2, username, role, $3 FROM staff_directory WHERE staff_id = $4
                     ON CONFLICT (token_hash) DO NOTHING",
                    token_hash, id, expires_at, id)?;
            }
            StaffEvent::LoginFailed { .. } | StaffEvent::Locked { .. } => {}
        }
        if let Ok(StaffEvent::Created { username, role, .. }) = StaffEvent::deserialize(&e.payload) {
            exec!(tx tx,
                "INSERT INTO staff_directory (staff_id, username, role) VALUES ($1, $2, $3) ON CONFLICT (staff_id) DO NOTHING",
                id, username, role.as_str())?;
        }
        Ok(())
    }
}
