//! Reading one aggregate's history for auditors: every event, the state folded up to an
//! instant, and the stream's hash-chain check. Used by the audit endpoints and `shenfen-replay`.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::Value;
use shenfen_domain::account::Account;
use shenfen_domain::code::CodeChannel;
use shenfen_domain::staff::Staff;
use shenfen_domain::verification::Verification;

use crate::chain::{verify_stream, BrokenLink, Link};
use crate::db::Db;
use crate::log::StoredEvent;

/// The aggregate types auditors may read.
pub const TYPES: [&str; 4] = ["account", "verification", "staff", "code_channel"];

/// Why an audit read failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("unknown aggregate type {0} (expected account, verification, staff or code_channel)")]
    UnknownType(String),
    #[error("event {sequence} does not decode: {message}")]
    Decode { sequence: i64, message: String },
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

const PG_STREAM: &str = "
SELECT transaction_id::text::bigint AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence";
const SQLITE_STREAM: &str = "
SELECT 0 AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence";

/// Every event of one stream, in sequence order.
pub async fn history(db: &Db, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<StoredEvent>, AuditError> {
    if !TYPES.contains(&aggregate_type) {
        return Err(AuditError::UnknownType(aggregate_type.to_string()));
    }
    let events = match db {
        Db::Postgres(p) => {
            sqlx::query_as::<_, StoredEvent>(PG_STREAM).bind(aggregate_type).bind(aggregate_id).fetch_all(p).await?
        }
        Db::Sqlite(p) => {
            sqlx::query_as::<_, StoredEvent>(SQLITE_STREAM).bind(aggregate_type).bind(aggregate_id).fetch_all(p).await?
        }
    };
    Ok(events)
}

fn fold<A: Aggregate>(events: &[StoredEvent], as_of: Option<DateTime<Utc>>) -> Result<(Value, i64), AuditError> {
    let mut state = A::default();
    let mut last = 0;
    for e in events.iter().filter(|e| as_of.is_none_or(|t| e.at() <= t)) {
        let event: A::Event = serde_json::from_value(e.payload.clone())
            .map_err(|err| AuditError::Decode { sequence: e.sequence, message: err.to_string() })?;
        state.apply(event);
        last = e.sequence;
    }
    let value =
        serde_json::to_value(&state).map_err(|err| AuditError::Decode { sequence: last, message: err.to_string() })?;
    Ok((value, last))
}

/// The state of a stream folded from its events up to `as_of` (all of them when `None`),
/// and the sequence of the last event folded.
pub fn state_as_of(
    aggregate_type: &str,
    events: &[StoredEvent],
    as_of: Option<DateTime<Utc>>,
) -> Result<(Value, i64), AuditError> {
    match aggregate_type {
        "account" => fold::<Account>(events, as_of),
        "verification" => fold::<Verification>(events, as_of),
        "staff" => fold::<Staff>(events, as_of),
        "code_channel" => fold::<CodeChannel>(events, as_of),
        other => Err(AuditError::UnknownType(other.to_string())),
    }
}

/// Checks a stream's hash chain; returns the first broken link.
pub fn verify(aggregate_type: &str, aggregate_id: &str, events: &[StoredEvent]) -> Option<BrokenLink> {
    verify_stream(
        aggregate_type,
        aggregate_id,
        events.iter().map(|e| Link {
            sequence: e.sequence,
            event_type: &e.event_type,
            event_version: &e.event_version,
            payload: &e.payload,
            metadata: &e.metadata,
        }),
    )
}

/// Hides secrets in a payload shown to auditors: password hashes and secret hashes are
/// replaced by `"[redacted]"`; everything else is shown as stored.
pub fn redact(payload: &Value) -> Value {
    match payload {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let secret = matches!(k.as_str(), "password_hash" | "secret_hash" | "token_hash" | "code_hash");
                    (k.clone(), if secret { Value::String("[redacted]".into()) } else { redact(v) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}
