//! Where queries that tolerate lag are sent: a PostgreSQL streaming standby when
//! `SHENFEN_READ_DATABASE_URL` names one, the primary otherwise.
//!
//! Analyst tables, audit reads, staff queues and lists, and the change feed go to the standby;
//! whatever must see the caller's own writes (`/v1/me`, the checks before a command) and every
//! write stay on the primary. A watcher asks the standby every second whether it answers and
//! how far its replay is behind; while it does not answer, or is further behind than
//! `SHENFEN_READ_MAX_LAG_SECONDS`, lag-tolerant reads go to the primary, so a standby that
//! falls over or behind costs the primary some load, never an error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shenfen_projections::db::Db;

/// How often the watcher asks the standby.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The primary, and the standby with the watcher's verdict.
#[derive(Debug)]
pub struct ReadSide {
    primary: Db,
    standby: Option<Standby>,
}

#[derive(Debug)]
struct Standby {
    db: Db,
    usable: Arc<AtomicBool>,
}

impl ReadSide {
    /// Only the primary.
    pub fn primary_only(primary: &Db) -> ReadSide {
        ReadSide { primary: primary.clone(), standby: None }
    }

    /// The primary and the standby at `url` (PostgreSQL only, never migrated: its schema is the
    /// primary's, replicated), with the watcher started.
    pub async fn with_standby(
        primary: &Db,
        url: &str,
        connections: u32,
        max_lag: Duration,
    ) -> anyhow::Result<ReadSide> {
        anyhow::ensure!(
            matches!(primary, Db::Postgres(_)),
            "SHENFEN_READ_DATABASE_URL needs PostgreSQL as SHENFEN_DATABASE_URL (a SQLite store has no standby)"
        );
        let db = Db::connect_replica(url, connections).await.context("connecting to SHENFEN_READ_DATABASE_URL")?;
        let lag = replay_lag(&db).await.context("asking the read database how far it is behind")?;
        if lag.is_none() {
            tracing::warn!(
                "SHENFEN_READ_DATABASE_URL is not in recovery (not a streaming standby); reads go there anyway"
            );
        }
        let usable = Arc::new(AtomicBool::new(lag.is_none_or(|l| l <= max_lag)));
        tokio::spawn(watch(db.clone(), usable.clone(), max_lag));
        Ok(ReadSide { primary: primary.clone(), standby: Some(Standby { db, usable }) })
    }

    /// Where a lag-tolerant read goes now.
    pub fn db(&self) -> &Db {
        match &self.standby {
            Some(standby) if standby.usable.load(Ordering::Relaxed) => &standby.db,
            _ => &self.primary,
        }
    }

    /// `None` without a standby; otherwise whether reads go there now.
    pub fn standby_in_use(&self) -> Option<bool> {
        self.standby.as_ref().map(|s| s.usable.load(Ordering::Relaxed))
    }
}

/// How far the standby's replay is behind what it has received from the primary, as the age
/// of the last transaction replayed (zero when it has replayed all it received); `None` when
/// the database is not a standby.
async fn replay_lag(db: &Db) -> Result<Option<Duration>, sqlx::Error> {
    let Db::Postgres(pool) = db else { return Ok(None) };
    let (in_recovery, seconds): (bool, Option<f64>) = sqlx::query_as(
        "SELECT pg_is_in_recovery(),
                CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                     ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 END",
    )
    .fetch_one(pool)
    .await?;
    Ok(in_recovery.then(|| Duration::from_secs_f64(seconds.unwrap_or(0.0).max(0.0))))
}

/// Every [`WATCH_EVERY`]: the standby is usable while it answers and is at most `max_lag`
/// behind. Changes are logged and the lag is a metric (`shenfen_read_standby_lag_seconds`).
async fn watch(db: Db, usable: Arc<AtomicBool>, max_lag: Duration) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let verdict = match tokio::time::timeout(WATCH_EVERY, replay_lag(&db)).await {
            Ok(Ok(lag)) => {
                let lag = lag.unwrap_or_default();
                metrics::gauge!("shenfen_read_standby_lag_seconds").set(lag.as_secs_f64());
                lag <= max_lag
            }
            Ok(Err(_)) | Err(_) => false,
        };
        metrics::gauge!("shenfen_read_standby_in_use").set(if verdict { 1.0 } else { 0.0 });
        if usable.swap(verdict, Ordering::Relaxed) != verdict {
            if verdict {
                tracing::info!("the read standby answers and is caught up: lag-tolerant reads go there again");
            } else {
                tracing::warn!(
                    "the read standby does not answer or is too far behind: lag-tolerant reads go to the primary"
                );
            }
        }
    }
}
