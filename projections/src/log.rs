//! Reading the event log in its global order, with keyset pagination (never cqrs-es's
//! `stream_all_events`, which can end early without an error).
//!
//! PostgreSQL: positions are `(transaction_id, global_position)` pairs, and only events of
//! transactions older than the oldest one still running are read, so a reader never skips an
//! event that commits later with a smaller number. SQLite: one writer at a time, so
//! `global_position` alone is commit order (`transaction_id` is 0).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::db::{Db, DbTx};

/// A place in the global order. Ordered by `(tx, pos)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, sqlx::FromRow)]
pub struct Position {
    pub tx: i64,
    pub pos: i64,
}

/// One event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub tx: i64,
    pub pos: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// Where this event stands in the global order.
    pub fn position(&self) -> Position {
        Position { tx: self.tx, pos: self.pos }
    }

    /// The application instant from metadata (falls back to the database clock).
    pub fn at(&self) -> DateTime<Utc> {
        self.metadata
            .get("at")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(self.recorded_at)
    }
}

const PG_READ: &str = "
SELECT transaction_id::text::bigint AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY transaction_id, global_position
 LIMIT $3";

const SQLITE_READ: &str = "
SELECT 0 AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE global_position > $1
 ORDER BY global_position
 LIMIT $2";

const PG_READ_FOR_PROJECTIONS: &str = "
SELECT transaction_id::text::bigint AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload,
       jsonb_build_object('at', metadata->'at', 'request_id', metadata->'request_id') AS metadata, recorded_at
  FROM events
 WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY transaction_id, global_position
 LIMIT $3";

const SQLITE_READ_FOR_PROJECTIONS: &str = "
SELECT 0 AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
       json_object('at', json_extract(metadata, '$.at'), 'request_id', json_extract(metadata, '$.request_id')) AS metadata,
       recorded_at
  FROM events
 WHERE global_position > $1
 ORDER BY global_position
 LIMIT $2";

/// Like [`read_after`], for projections: the metadata carries only `at` and `request_id`
/// (what read models and process managers use), not the actor and the hash chain, which
/// saves reading and decoding about a third of every row.
pub async fn read_for_projections(db: &Db, after: Position, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    match db {
        Db::Postgres(p) => {
            sqlx::query_as::<_, StoredEvent>(PG_READ_FOR_PROJECTIONS)
                .bind(after.tx.to_string())
                .bind(after.pos)
                .bind(limit)
                .fetch_all(p)
                .await
        }
        Db::Sqlite(p) => {
            sqlx::query_as::<_, StoredEvent>(SQLITE_READ_FOR_PROJECTIONS).bind(after.pos).bind(limit).fetch_all(p).await
        }
    }
}

/// Up to `limit` events after `after`, in global order.
pub async fn read_after(db: &Db, after: Position, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    match db {
        Db::Postgres(p) => {
            sqlx::query_as::<_, StoredEvent>(PG_READ)
                .bind(after.tx.to_string())
                .bind(after.pos)
                .bind(limit)
                .fetch_all(p)
                .await
        }
        Db::Sqlite(p) => sqlx::query_as::<_, StoredEvent>(SQLITE_READ).bind(after.pos).bind(limit).fetch_all(p).await,
    }
}

/// Up to `limit` events after `after`, inside a transaction.
pub async fn read_after_in(tx: &mut DbTx, after: Position, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    match tx {
        DbTx::Postgres(c) => {
            sqlx::query_as::<_, StoredEvent>(PG_READ)
                .bind(after.tx.to_string())
                .bind(after.pos)
                .bind(limit)
                .fetch_all(&mut **c)
                .await
        }
        DbTx::Sqlite(c) => {
            sqlx::query_as::<_, StoredEvent>(SQLITE_READ).bind(after.pos).bind(limit).fetch_all(&mut **c).await
        }
    }
}

/// The position of one stored event.
pub async fn position_of(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<Option<Position>, sqlx::Error> {
    const PG: &str = "SELECT transaction_id::text::bigint AS tx, global_position AS pos FROM events
                       WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";
    const LITE: &str = "SELECT 0 AS tx, global_position AS pos FROM events
                         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";
    match db {
        Db::Postgres(p) => {
            sqlx::query_as::<_, Position>(PG)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .fetch_optional(p)
                .await
        }
        Db::Sqlite(p) => {
            sqlx::query_as::<_, Position>(LITE)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .fetch_optional(p)
                .await
        }
    }
}

/// The highest global position written so far (for the lag metric).
pub async fn head(db: &Db) -> Result<i64, sqlx::Error> {
    let row: Option<(Option<i64>,)> =
        crate::fetch_optional!(db, (Option<i64>,), "SELECT max(global_position) FROM events")?;
    Ok(row.and_then(|r| r.0).unwrap_or(0))
}
