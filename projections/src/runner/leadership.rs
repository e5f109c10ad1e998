//! Leadership: on PostgreSQL one process runs a projection at a time, the one that holds a
//! session advisory lock named after it, on a connection of its own. When that process dies
//! its connection closes, the lock is released, and another process takes over. On SQLite
//! (one process) this process always leads.

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::db::Db;

/// The advisory lock that makes this process the one runner of a projection.
pub(super) struct Leadership {
    conn: Option<sqlx::PgConnection>,
    held: bool,
    /// When the lock's connection was last seen alive.
    checked: Instant,
}

/// How often a leader checks that its lock's connection is alive.
const LEADERSHIP_CHECK: Duration = Duration::from_secs(5);

impl Leadership {
    pub(super) fn new() -> Self {
        Leadership { conn: None, held: false, checked: Instant::now() }
    }

    /// Gives the lock up (its connection is dropped): after an error, try again from scratch.
    pub(super) fn release(&mut self) {
        self.conn = None;
        self.held = false;
    }

    /// Whether this process leads the projection (always, on SQLite). The lock's connection
    /// is kept between tries, so a follower does not churn connections.
    pub(super) async fn lead(&mut self, db: &Db, name: &str) -> bool {
        let Db::Postgres(pool) = db else { return true };
        let leadership = self;
        if leadership.conn.is_none() {
            match pool.acquire().await {
                Ok(conn) => leadership.conn = Some(conn.detach()),
                Err(_) => return false,
            }
        }
        let Some(conn) = leadership.conn.as_mut() else { return false };
        if leadership.held {
            // The lock lives as long as its connection: check that now and then, not before
            // every batch (the checkpoint's compare-and-set keeps two leaders from both
            // applying a batch anyway).
            if leadership.checked.elapsed() < LEADERSHIP_CHECK || conn.ping().await.is_ok() {
                if leadership.checked.elapsed() >= LEADERSHIP_CHECK {
                    leadership.checked = Instant::now();
                }
                return true;
            }
            leadership.conn = None;
            leadership.held = false;
            return false;
        }
        let key = format!("shenfen projection {name}");
        let got: Result<(bool,), _> =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1))").bind(&key).fetch_one(&mut *conn).await;
        match got {
            Ok((true,)) => {
                tracing::info!(projection = name, "this process now runs the projection");
                leadership.held = true;
                leadership.checked = Instant::now();
                true
            }
            Ok((false,)) => false,
            Err(_) => {
                leadership.conn = None;
                false
            }
        }
    }
}
