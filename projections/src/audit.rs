//! Reading one aggregate's history for auditors: every event, the state folded up to an
//! instant, and the stream's hash-chain check. Used by the audit endpoints and `shenfen-replay`.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::Value;
use shenfen_domain::account::Account;
use shenfen_domain::code::CodeChannel;
use shenfen_domain::staff::Staff;
use shenfen_domain::student::Student;
use shenfen_domain::support_case::SupportCase;
use shenfen_domain::verification::Verification;

use crate::chain::{BrokenLink, ChainKey, Link, Verifier};
use crate::db::Db;
use crate::log::{Position, StoredEvent};
use crate::seal::{Head, Seal};

/// The aggregate types auditors may read.
pub const TYPES: [&str; 6] = ["account", "verification", "staff", "code_channel", "support_case", "student"];

/// Why an audit read failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "unknown aggregate type {0} (expected account, verification, staff, code_channel, support_case or student)"
    )]
    UnknownType(String),
    #[error("event {sequence} does not decode: {message}")]
    Decode { sequence: i64, message: String },
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// The subject keys do not unwrap under this key file.
    #[error(transparent)]
    Key(crate::pii::KeyError),
}

const PG_STREAM: &str = "
SELECT transaction_id::text::bigint AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence";
const SQLITE_STREAM: &str = "
SELECT 0 AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence";

/// Opens the personal data of `events` (as [`history`] read them, sealed): what was sealed
/// under a destroyed key reads as [`ERASED`](crate::pii::ERASED). Check the hash chain on the
/// events as stored, before opening them.
pub async fn open(keyring: &crate::pii::Keyring, events: &mut [StoredEvent]) -> Result<(), AuditError> {
    keyring.open_events(events).await.map_err(|e| match e {
        crate::pii::KeyError::Store(e) => AuditError::Sqlx(e),
        other @ (crate::pii::KeyError::Unwrap | crate::pii::KeyError::MissingMasters(_)) => AuditError::Key(other),
    })
}

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
        "support_case" => fold::<SupportCase>(events, as_of),
        "student" => fold::<Student>(events, as_of),
        other => Err(AuditError::UnknownType(other.to_string())),
    }
}

/// What streams are checked against: the chain key and the store's seal.
#[derive(Debug, Clone)]
pub struct Integrity {
    pub verifier: Verifier,
    /// The seal, when the store has a genuine one.
    pub seal: Option<Seal>,
}

impl Integrity {
    /// The key and the seal of `db`. A seal that is missing or not made with `key` is left out
    /// (the caller reports it); unkeyed links are then accepted nowhere past the log's start.
    pub async fn load(db: &Db, key: ChainKey) -> Result<(Integrity, Option<Seal>), sqlx::Error> {
        let stored = Seal::read(db).await?;
        let seal = stored.clone().filter(|s| s.is_genuine(&key));
        let keyed_from = seal.as_ref().map(Seal::keyed_from).unwrap_or_default();
        Ok((Integrity { verifier: Verifier { key, keyed_from }, seal }, stored))
    }

    /// Checks one stream — its events in sequence order — against its chain, its recorded head
    /// and the seal; returns the first thing that does not hold.
    pub fn check(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        events: &[StoredEvent],
        head: Option<&Head>,
    ) -> Option<BrokenLink> {
        let links = events.iter().map(Link::from);
        if let Some(broken) = self.verifier.verify_stream(aggregate_type, aggregate_id, links) {
            return Some(broken);
        }
        let last = events.last().map_or(0, |e| e.sequence);
        if let Some(head) = head {
            if !head.is_genuine(&self.verifier.key) {
                return Some(BrokenLink {
                    sequence: head.sequence,
                    problem: "its sealed head record was changed outside the application".into(),
                });
            }
            let Some(at_head) = events.iter().find(|e| e.sequence == head.sequence) else {
                return Some(BrokenLink {
                    sequence: last + 1,
                    problem: format!(
                        "the stream ends at sequence {last} but was sealed at {}: its last events were deleted",
                        head.sequence
                    ),
                });
            };
            if at_head.metadata.get("hash").and_then(Value::as_str) != Some(head.hash.as_str()) {
                return Some(BrokenLink {
                    sequence: head.sequence,
                    problem: "the event at the sealed head is not the one that was sealed".into(),
                });
            }
        }
        if let Some(seal) = &self.seal {
            let sealed: Position = seal.sealed();
            let covered = head.map_or(0, |h| h.sequence);
            if let Some(e) = events.iter().find(|e| e.position() <= sealed && e.sequence > covered) {
                return Some(BrokenLink {
                    sequence: e.sequence,
                    problem: "an event lies behind the seal but its stream's sealed head does not cover it (inserted afterwards)"
                        .into(),
                });
            }
        }
        None
    }
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
