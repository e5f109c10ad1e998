//! `export --format jsonl [--redact]`: every event in the global order, one JSON object per
//! line, with every column (metadata and its hash chain included, payloads as stored: an
//! export is a copy of the log, with personal data sealed as stored). `--redact` replaces
//! every personal value and every password or secret hash with `[redacted]`, for handing a log
//! to a third party (its chain then no longer verifies: it is a document, not a backup).
//!
//! The log is streamed with [`log::read_after`] (keyset pagination by the global position), so
//! memory stays flat whatever the log's size. On PostgreSQL, events of transactions still
//! running when a page is read are left for a later page or a later export, exactly as a
//! projection would see them.

use std::io::Write;

use chrono::SecondsFormat;
use indicatif::ProgressBar;
use serde_json::json;
use shenfen_projections::db::Db;
use shenfen_projections::log::{self, Position, StoredEvent};

use crate::ReplayError;

/// One event as an export line (without the newline); with `redact`, every personal value
/// (sealed or not) and every password or secret hash in its payload is replaced.
pub fn line(event: &StoredEvent, redact: bool) -> Result<String, serde_json::Error> {
    let mut payload = event.payload.clone();
    if redact {
        shenfen_projections::pii::redact_personal(&mut payload);
        payload = shenfen_projections::audit::redact(&payload);
    }
    serde_json::to_string(&json!({
        "transaction_id": event.tx,
        "global_position": event.pos,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "payload": payload,
        "metadata": event.metadata,
        "recorded_at": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    }))
}

/// Writes every event to `out` as JSON lines; returns how many.
pub async fn jsonl(
    db: &Db,
    out: &mut impl Write,
    batch_size: i64,
    redact: bool,
    bar: &ProgressBar,
) -> Result<u64, ReplayError> {
    let mut after = Position::default();
    let mut written = 0u64;
    loop {
        let events = log::read_after(db, after, batch_size).await?;
        let Some(last) = events.last() else { break };
        after = last.position();
        for event in &events {
            out.write_all(line(event, redact)?.as_bytes())?;
            out.write_all(b"\n")?;
        }
        written += events.len() as u64;
        bar.inc(events.len() as u64);
    }
    out.flush()?;
    Ok(written)
}
