//! `photo_refs`: the digests of the photos the log references (the three photos of every
//! manual-review application and of every re-registration claim's proof, the handheld photo of
//! every support case, every student's identity material). The blob sweeper
//! deletes stored photos that are not listed here after a grace period, so uploads whose
//! command was refused cannot fill the disk.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shenfen_domain::claim::{Claim, ClaimEvent};
use shenfen_domain::student::{Student, StudentEvent};
use shenfen_domain::support_case::{SupportCase, SupportCaseEvent};
use shenfen_domain::verification::{Photos, Verification, VerificationEvent};

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct PhotoRefs;

impl PhotoRefs {
    /// The projection's name.
    pub const NAME: &'static str = "photo_refs";

    /// Whether every application and support case committed so far has been read (so
    /// [`is_referenced`](Self::is_referenced) knows all their photos): none is readable after
    /// the checkpoint.
    pub async fn caught_up(db: &Db) -> Result<bool, sqlx::Error> {
        let at = crate::checkpoint::read(db, Self::NAME).await?;
        let row: Option<(i64,)> = match db {
            Db::Postgres(_) => crate::fetch_optional!(
                db,
                (i64,),
                "SELECT CAST(1 AS BIGINT) FROM events
                  WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
                    AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                    AND ((aggregate_type = 'verification' AND event_type = 'ApplicationSubmitted')
                      OR (aggregate_type = 'claim' AND event_type = 'ProofSubmitted')
                      OR (aggregate_type = 'support_case' AND event_type = 'Opened')
                      OR (aggregate_type = 'student' AND event_type = 'MaterialAttached'))
                  LIMIT 1",
                at.tx.to_string(),
                at.pos
            )?,
            Db::Sqlite(_) => crate::fetch_optional!(
                db,
                (i64,),
                "SELECT CAST(1 AS BIGINT) FROM events
                  WHERE global_position > $1
                    AND ((aggregate_type = 'verification' AND event_type = 'ApplicationSubmitted')
                      OR (aggregate_type = 'claim' AND event_type = 'ProofSubmitted')
                      OR (aggregate_type = 'support_case' AND event_type = 'Opened')
                      OR (aggregate_type = 'student' AND event_type = 'MaterialAttached'))
                  LIMIT 1",
                at.pos
            )?,
        };
        Ok(row.is_none())
    }

    /// Whether an event references the photo with this digest.
    pub async fn is_referenced(db: &Db, digest: &str) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> =
            crate::fetch_optional!(db, (i64,), "SELECT CAST(1 AS BIGINT) FROM photo_refs WHERE digest = $1", digest)?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl Projection for PhotoRefs {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        (e.aggregate_type == "verification" && e.event_type == "ApplicationSubmitted")
            || (e.aggregate_type == "claim" && e.event_type == "ProofSubmitted")
            || (e.aggregate_type == "support_case" && e.event_type == "Opened")
            || (e.aggregate_type == "student" && e.event_type == "MaterialAttached")
    }

    fn tables(&self) -> &'static [&'static str] {
        &["photo_refs"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_batch(tx, &[e]).await
    }

    /// The batch's references, written with one statement on PostgreSQL (row by row on
    /// SQLite). The first reference of a digest is kept, as event by event.
    async fn apply_batch(&self, tx: &mut DbTx, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        let mut digests = Vec::new();
        let mut ats = Vec::new();
        for e in events {
            for (digest, at) in references(e)? {
                digests.push(digest);
                ats.push(at);
            }
        }
        if digests.is_empty() {
            return Ok(());
        }
        match tx {
            DbTx::Postgres(conn) => {
                sqlx::query(
                    "INSERT INTO photo_refs (digest, referenced_at)
                     SELECT * FROM UNNEST($1::text[], $2::timestamptz[]) ON CONFLICT (digest) DO NOTHING",
                )
                .bind(digests)
                .bind(ats)
                .execute(&mut **conn)
                .await?;
            }
            DbTx::Sqlite(_) => {
                for (digest, at) in digests.iter().zip(ats) {
                    exec!(tx tx,
                        "INSERT INTO photo_refs (digest, referenced_at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
                        digest, at)?;
                }
            }
        }
        Ok(())
    }
}

/// The photo digests an event references, and when.
fn references(e: &StoredEvent) -> Result<Vec<(String, DateTime<Utc>)>, ProjectionError> {
    let decode = |err| ProjectionError::decode(e, err);
    Ok(match e.aggregate_type.as_str() {
        t if t == <Student as cqrs_es::Aggregate>::TYPE => {
            match StudentEvent::deserialize(&e.payload).map_err(decode)? {
                StudentEvent::MaterialAttached { digest, at, .. } => vec![(digest, at)],
                _ => Vec::new(),
            }
        }
        t if t == <SupportCase as cqrs_es::Aggregate>::TYPE => {
            if let SupportCaseEvent::Opened { photo_handheld, at, .. } =
                SupportCaseEvent::deserialize(&e.payload).map_err(decode)?
            {
                vec![(photo_handheld, at)]
            } else {
                Vec::new()
            }
        }
        t if t == <Verification as cqrs_es::Aggregate>::TYPE => {
            match VerificationEvent::deserialize(&e.payload).map_err(decode)? {
                VerificationEvent::ApplicationSubmitted { photos, at, .. } => all_three(photos, at),
                _ => Vec::new(),
            }
        }
        // A claimant's proof: the reviewer must still see it after the grace period.
        t if t == <Claim as cqrs_es::Aggregate>::TYPE => match ClaimEvent::deserialize(&e.payload).map_err(decode)? {
            ClaimEvent::ProofSubmitted { photos, at, .. } => all_three(photos, at),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    })
}

/// An application's (or a proof's) three photos, referenced at `at`.
fn all_three(photos: Photos, at: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
    vec![(photos.front, at), (photos.back, at), (photos.handheld, at)]
}
