//! `verify`: checks the hash chain of every stream and names the first broken link of each.
//!
//! The log is read in key order, `(aggregate_type, aggregate_id, sequence)` (the primary key's
//! index on both backends), with keyset pagination, so each stream arrives whole and in
//! sequence order and only one stream is held in memory at a time. Each stream is checked by
//! [`audit::verify`], the same check as the server's audit endpoint: a changed payload or
//! metadata breaks the link of that event, a deleted event breaks the next one (its sequence is
//! not the one expected), and two swapped events break the first of them (its `prev_hash`
//! is not the previous event's hash). Deleting a stream's last events cannot be seen from the
//! chain alone.

use indicatif::ProgressBar;
use shenfen_projections::audit;
use shenfen_projections::chain::BrokenLink;
use shenfen_projections::db::Db;
use shenfen_projections::log::StoredEvent;

use crate::ReplayError;

/// A stream whose chain is broken, at its first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub link: BrokenLink,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "broken: {} {} at sequence {}: {}",
            self.aggregate_type, self.aggregate_id, self.link.sequence, self.link.problem
        )
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub streams: u64,
    pub events: u64,
    pub broken: Vec<Broken>,
}

const PG_PAGE: &str = "
SELECT transaction_id::text::bigint AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE (aggregate_type, aggregate_id, sequence) > ($1, $2, $3)
 ORDER BY aggregate_type, aggregate_id, sequence
 LIMIT $4";

const SQLITE_PAGE: &str = "
SELECT 0 AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE (aggregate_type, aggregate_id, sequence) > ($1, $2, $3)
 ORDER BY aggregate_type, aggregate_id, sequence
 LIMIT $4";

async fn page(db: &Db, after: &(String, String, i64), limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let (ty, id, seq) = after;
    match db {
        Db::Postgres(p) => {
            sqlx::query_as::<_, StoredEvent>(PG_PAGE).bind(ty).bind(id).bind(seq).bind(limit).fetch_all(p).await
        }
        Db::Sqlite(p) => {
            sqlx::query_as::<_, StoredEvent>(SQLITE_PAGE).bind(ty).bind(id).bind(seq).bind(limit).fetch_all(p).await
        }
    }
}

fn check(stream: &[StoredEvent], report: &mut Report) {
    let Some(first) = stream.first() else { return };
    report.streams += 1;
    if let Some(link) = audit::verify(&first.aggregate_type, &first.aggregate_id, stream) {
        report.broken.push(Broken {
            aggregate_type: first.aggregate_type.clone(),
            aggregate_id: first.aggregate_id.clone(),
            link,
        });
    }
}

/// Checks every stream; `bar` advances by events read.
pub async fn all(db: &Db, batch_size: i64, bar: &ProgressBar) -> Result<Report, ReplayError> {
    let mut report = Report::default();
    // Below every real key: sequences are >= 0 and the empty string sorts first.
    let mut after = (String::new(), String::new(), -1i64);
    let mut stream: Vec<StoredEvent> = Vec::new();
    loop {
        let events = page(db, &after, batch_size).await?;
        let Some(last) = events.last() else { break };
        after = (last.aggregate_type.clone(), last.aggregate_id.clone(), last.sequence);
        report.events += events.len() as u64;
        bar.inc(events.len() as u64);
        for event in events {
            let same = stream
                .first()
                .is_some_and(|s| s.aggregate_type == event.aggregate_type && s.aggregate_id == event.aggregate_id);
            if !same {
                check(&stream, &mut report);
                stream.clear();
            }
            stream.push(event);
        }
    }
    check(&stream, &mut report);
    Ok(report)
}
