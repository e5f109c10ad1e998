//! The outbox: messages (codes, reset links) waiting for the notifier.
//!
//! A message is written by the appender in the transaction that commits the event issuing its
//! secret ([`NewMessage`], see [`append`](crate::append)): a secret is counted against the
//! holder's limits if and only if its message is queued. Workers claim due messages by pushing
//! their next attempt into the future (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so several
//! processes share the work), deliver them, and on failure retry with exponential back-off
//! until the secret expires ([`expire`]): an undeliverable message is then given up and its
//! body erased. A delivered message's body (the secret) is erased too.

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

/// A message to queue with a command's events (in the same transaction).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub channel: String,
    pub destination: String,
    pub purpose: String,
    /// JSON members added to the delivered document (the code, or the link and token).
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// When its secret expires: the message is not delivered after that.
    pub expires_at: DateTime<Utc>,
}

/// Claims up to `limit` due messages.
pub async fn claim(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxMessage>, sqlx::Error> {
    let lease = now + Duration::seconds(CLAIM_LEASE_SECONDS);
    match db {
        Db::Postgres(p) => {
            sqlx::query_as::<_, OutboxMessage>(
                "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1
                  WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL AND expired_at IS NULL AND next_attempt_at <= $2
                                  AND (expires_at IS NULL OR expires_at > $2)
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
                  WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL AND expired_at IS NULL AND next_attempt_at <= $2
                                  AND (expires_at IS NULL OR expires_at > $2)
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

/// Marks messages delivered (id and masked destination each), erases their secrets, and keeps
/// their destinations only masked (the outbox is no place to keep contacts once a message is
/// out): one statement for the lot on PostgreSQL.
pub async fn delivered(db: &Db, messages: &[(i64, String)], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    match db {
        Db::Postgres(p) => {
            let (ids, masked): (Vec<i64>, Vec<String>) = messages.iter().cloned().unzip();
            sqlx::query(
                "UPDATE outbox SET delivered_at = $1, body = NULL, last_error = NULL, destination = d.masked
                   FROM UNNEST($2::bigint[], $3::text[]) AS d(id, masked) WHERE outbox.id = d.id",
            )
            .bind(now)
            .bind(ids)
            .bind(masked)
            .execute(p)
            .await?;
        }
        Db::Sqlite(_) => {
            for (id, masked) in messages {
                crate::exec!(
                    db,
                    "UPDATE outbox SET delivered_at = $1, body = NULL, last_error = NULL, destination = $3 WHERE id = $2",
                    now,
                    id,
                    masked
                )?;
            }
        }
    }
    Ok(())
}

/// A destination as kept once its message is delivered: an e-mail address or a mobile
/// masked, anything else (an openid) reduced to its first characters.
pub fn masked_destination(destination: &str) -> String {
    use shenfen_domain::shared::{mask_email, mask_mobile};
    if destination.contains('@') {
        mask_email(destination)
    } else if destination.len() == 11 && destination.bytes().all(|b| b.is_ascii_digit()) {
        mask_mobile(destination)
    } else {
        destination.chars().take(4).chain("…".chars()).collect()
    }
}

/// Schedules another attempt after a failure: 2, 4, 8 … seconds, at most 10 minutes. `error`
/// is stored as given: it must not name the gateway's address or the message's content.
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

/// Gives up the undelivered messages whose secret has expired: they are never sent, their
/// body is erased and their destination kept only masked, as a delivered one's. Returns how
/// many.
pub async fn expire(db: &Db, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let due: Vec<(i64, String)> = crate::fetch_all!(
        db,
        (i64, String),
        "SELECT id, destination FROM outbox
          WHERE delivered_at IS NULL AND expired_at IS NULL AND expires_at <= $1",
        now
    )?;
    let mut expired = 0;
    for (id, destination) in due {
        // Unless it was delivered meanwhile (then it is masked already).
        expired += crate::exec!(
            db,
            "UPDATE outbox SET expired_at = $1, body = NULL, destination = $3
              WHERE id = $2 AND delivered_at IS NULL AND expired_at IS NULL",
            now,
            id,
            masked_destination(&destination)
        )?;
    }
    Ok(expired)
}

/// Messages waiting for delivery (a metric).
pub async fn pending(db: &Db) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> = crate::fetch_optional!(
        db,
        (i64,),
        "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND expired_at IS NULL"
    )?;
    Ok(row.map(|r| r.0).unwrap_or(0))
}
