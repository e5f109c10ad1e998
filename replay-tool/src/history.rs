//! `history TYPE ID` and `state TYPE ID --as-of INSTANT`: one stream as an auditor reads it.
//!
//! Both read the stream through [`audit`], so they agree with the server's audit endpoints.
//! Password, secret, token and code hashes are redacted ([`audit::redact`]) in everything
//! shown; the hash-chain fields of the metadata are shown as stored.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use shenfen_projections::audit;
use shenfen_projections::db::Db;
use shenfen_projections::log::StoredEvent;
use shenfen_projections::pii::Keyring;

use crate::ReplayError;

/// Every event of one stream, in sequence order (empty when the stream has none), with its
/// personal data opened when a keyring is given (`[erased]` where its subject was erased).
pub async fn events(
    db: &Db,
    keyring: Option<&Keyring>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, ReplayError> {
    let mut events = audit::history(db, aggregate_type, aggregate_id).await?;
    if let Some(keyring) = keyring {
        audit::open(keyring, &mut events).await?;
    }
    Ok(events)
}

fn meta<'a>(event: &'a StoredEvent, key: &str) -> Option<&'a str> {
    event.metadata.get(key).and_then(Value::as_str)
}

/// Who caused an event, from its metadata: `anonymous`, `account:ID`, `staff:ID (role)`, …
pub fn actor(event: &StoredEvent) -> String {
    let kind = meta(event, "actor_kind").unwrap_or("unknown");
    match (meta(event, "actor_id"), meta(event, "actor_role")) {
        (Some(id), Some(role)) => format!("{kind}:{id} ({role})"),
        (Some(id), None) => format!("{kind}:{id}"),
        _ => kind.to_string(),
    }
}

/// One event as two readable lines: the facts, then the redacted payload as JSON.
pub fn readable(event: &StoredEvent) -> String {
    format!(
        "#{seq}  {recorded}  {ty} v{version}  at {at}  actor {actor}  request {request}\n    {payload}",
        seq = event.sequence,
        recorded = event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        ty = event.event_type,
        version = event.event_version,
        at = event.at().to_rfc3339_opts(SecondsFormat::Micros, true),
        actor = actor(event),
        request = meta(event, "request_id").unwrap_or("-"),
        payload = audit::redact(&event.payload),
    )
}

/// One event as a JSON object (one line of `history --json`).
pub fn as_json(event: &StoredEvent) -> Value {
    json!({
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "recorded_at": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "at": event.at().to_rfc3339_opts(SecondsFormat::Micros, true),
        "event_type": event.event_type,
        "event_version": event.event_version,
        "actor": actor(event),
        "request_id": meta(event, "request_id"),
        "payload": audit::redact(&event.payload),
        "metadata": event.metadata,
    })
}

/// The state of a stream folded from its events up to `as_of` (all when `None`), redacted,
/// with the sequence of the last event folded (0 when none was before `as_of`).
pub fn state(
    aggregate_type: &str,
    events: &[StoredEvent],
    as_of: Option<DateTime<Utc>>,
) -> Result<(Value, i64), ReplayError> {
    let (state, last) = audit::state_as_of(aggregate_type, events, as_of)?;
    Ok((audit::redact(&state), last))
}
