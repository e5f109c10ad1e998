//! The outbox: messages (codes, reset links) waiting for the notifier.
//!
//! A message is written after the event that issued its secret has committed and before the
//! request is answered, so an acknowledged request always has its message here. Workers claim
//! due messages by pushing their next attempt into the future (on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so several processes share the work), deliver them, and on
//! failure retry with exponential back-off. A delivered message's body (the secret) is erased.

use chrono::{DateTime, Duration, Utc};

use crate::db::Db;

/// A message to deliver.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    pub channel: String,
    pub destination: String,
    pub purpose: String,
    pub body: Option<String>,
    pub attempts: i32,
}

/// How long a claimed message is hidden from other workers.
const CLAIM_LEASE_SECONDS: i64 = 60;

/// Queues a message.
pub async fn enqueue(
    db: &Db,
    channel: &str,
    destination: &str,
    purpose: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    crate::exec!(
        db,
        "INSERT INTO outbox (channel, destination, purpose, body, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6)",
        channel,
        destination,
        purpose,
        body,
        now,
        now
    )?;
    Ok(())
}

/// Claims up to `limit` due messages.
pub async fn claim(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxMessage>, sqlx::Error> {
    let lease = now + Duration::seconds(CLAIM_LEASE_SECONDS);
    match db {
        Db::Postgres(p) => {
            sqlx::query_as::<_, OutboxMessage>(
                "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1
                  WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= $2
                                ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                  RETURNING id, channel, destination, purpose, body, attempts",
            )
            .bind(lease)
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await
        }
        Db::Sqlite(p) => {
            sqlx::query_as::<_, OutboxMessage>(
                "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1
                  WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= $2
                                ORDER BY next_attempt_at LIMIT $3)
                  RETURNING id, channel, destination, purpose, body, attempts",
            )
            .bind(lease)
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await
        }
    }
}

/// Marks a message delivered and erases its secret.
pub async fn delivered(db: &Db, id: i64, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    crate::exec!(db, "UPDATE outbox SET delivered_at = $1, body = NULL, last_error = NULL WHERE id = $2", now, id)?;
    Ok(())
}

/// Schedules another attempt after a failure: 2, 4, 8 … seconds, at most 10 minutes.
pub async fn failed(db: &Db, id: i64, attempts: i32, error: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let backoff = Duration::seconds(2i64.saturating_pow(attempts.clamp(1, 10) as u32).min(600));
    crate::exec!(
        db,
        "UPDATE outbox SET next_attempt_at = $1, last_error = $2 WHERE id = $3",
        now + backoff,
        error,
        id
    )?;
    Ok(())
}

/// Messages not yet delivered (a metric).
pub async fn pending(db: &Db) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> =
        crate::fetch_optional!(db, (i64,), "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")?;
    Ok(row.map(|r| r.0).unwrap_or(0))
}
