//! `verify`: checks every stream's keyed hash chain and the seal of the log, and names the
//! first broken link of each broken stream.
//!
//! Everything is read in one snapshot of the database (a repeatable-read transaction on
//! PostgreSQL, one read transaction on SQLite), so a server writing meanwhile cannot make the
//! log and its seal disagree. The log is read in key order, `(aggregate_type, aggregate_id,
//! sequence)` (the primary key's index on both backends), with keyset pagination, so each
//! stream arrives whole and in sequence order and only one stream is held in memory at a time;
//! the recorded stream heads are read alongside, page by page, for the same range of keys.
//! Each stream is checked by [`Integrity::check`], the same check as the server's audit
//! endpoint: a changed payload or metadata breaks the link of that event (its hash cannot be
//! recomputed without the key), a deleted event breaks the next one, two swapped events break
//! the first of them, a stream shorter than its sealed head lost its last events, and an event
//! behind the seal that its head does not cover was inserted afterwards. A head with no stream
//! left names a deleted stream; heads that do not add up to the sealed digest show that head
//! records were deleted too.

use std::collections::HashMap;

use indicatif::ProgressBar;
use shenfen_projections::audit::Integrity;
use shenfen_projections::chain::{BrokenLink, ChainKey, Verifier};
use shenfen_projections::db::{Db, DbTx};
use shenfen_projections::log::{Position, StoredEvent};
use shenfen_projections::seal::{xor, Head, Seal, EMPTY_DIGEST};

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
    /// What does not hold about the seal itself.
    pub seal: Vec<String>,
    /// Streams rewritten in place by the key's holder, as recorded (see
    /// [`reanchor`](shenfen_projections::reanchor)).
    pub reanchored: u64,
}

impl Report {
    /// Whether everything holds.
    pub fn intact(&self) -> bool {
        self.broken.is_empty() && self.seal.is_empty()
    }
}

const EVENTS_PAGE: &str = "
SELECT {TX} AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE (aggregate_type, aggregate_id, sequence) > ($1, $2, $3)
 ORDER BY aggregate_type, aggregate_id, sequence
 LIMIT $4";

const HEADS: &str = "SELECT aggregate_type, aggregate_id, sequence, hash, mac FROM chain_heads";

/// A key of the log's order: (aggregate type, aggregate id).
type Key = (String, String);

/// The reads of one verification, all in one snapshot.
struct Snapshot {
    tx: DbTx,
    events_page: String,
}

impl Snapshot {
    async fn begin(db: &Db) -> Result<Snapshot, sqlx::Error> {
        let mut tx = db.begin().await?;
        let tx_column = match db {
            Db::Postgres(_) => {
                shenfen_projections::exec!(tx &mut tx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
                "transaction_id::text::bigint"
            }
            Db::Sqlite(_) => "0",
        };
        Ok(Snapshot { tx, events_page: EVENTS_PAGE.replace("{TX}", tx_column) })
    }

    async fn seal(&mut self) -> Result<Option<Seal>, sqlx::Error> {
        shenfen_projections::fetch_optional!(tx &mut self.tx, Seal,
            "SELECT keyed_from_tx, keyed_from_pos, sealed_tx, sealed_pos, streams, digest, mac FROM chain_seal WHERE id = 1")
    }

    async fn events(&mut self, after: &(String, String, i64), limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let (ty, id, seq) = after;
        shenfen_projections::fetch_all!(tx &mut self.tx, StoredEvent, &self.events_page, ty, id, seq, limit)
    }

    /// The heads whose keys lie after `after` and up to `upto` (to the end when `None`).
    async fn heads(&mut self, after: &Key, upto: Option<&Key>) -> Result<Vec<Head>, sqlx::Error> {
        match upto {
            Some((ty, id)) => shenfen_projections::fetch_all!(tx &mut self.tx, Head,
                &format!("{HEADS} WHERE (aggregate_type, aggregate_id) > ($1, $2)
                                    AND (aggregate_type, aggregate_id) <= ($3, $4)"),
                &after.0, &after.1, ty, id),
            None => shenfen_projections::fetch_all!(tx &mut self.tx, Head,
                &format!("{HEADS} WHERE (aggregate_type, aggregate_id) > ($1, $2)"), &after.0, &after.1),
        }
    }
}

/// The walk over the log and its heads.
struct Walk {
    integrity: Integrity,
    report: Report,
    /// Heads read and not yet matched with their stream.
    heads: HashMap<Key, Head>,
    /// The XOR of every head's record, and how many heads.
    digest: String,
    head_count: i64,
}

impl Walk {
    fn add_heads(&mut self, heads: Vec<Head>) {
        for head in heads {
            self.digest = xor(&self.digest, &head.mac);
            self.head_count += 1;
            self.heads.insert((head.aggregate_type.clone(), head.aggregate_id.clone()), head);
        }
    }

    fn check(&mut self, stream: &[StoredEvent]) {
        let Some(first) = stream.first() else { return };
        self.report.streams += 1;
        let key = (first.aggregate_type.clone(), first.aggregate_id.clone());
        let head = self.heads.remove(&key);
        if let Some(link) = self.integrity.check(&key.0, &key.1, stream, head.as_ref()) {
            self.report.broken.push(Broken { aggregate_type: key.0, aggregate_id: key.1, link });
        }
    }

    /// Heads whose stream has no event left (except the stream still being read).
    fn deleted_streams(&mut self, except: Option<&Key>) {
        let gone: Vec<Key> = self.heads.keys().filter(|k| Some(*k) != except).cloned().collect();
        for key in gone {
            if let Some(head) = self.heads.remove(&key) {
                let link = self
                    .integrity
                    .check(&key.0, &key.1, &[], Some(&head))
                    .unwrap_or(BrokenLink { sequence: 1, problem: "the stream has no events".into() });
                let link = BrokenLink {
                    sequence: link.sequence,
                    problem: format!(
                        "the stream was sealed at sequence {} and has no events left: it was deleted",
                        head.sequence
                    ),
                };
                self.report.broken.push(Broken { aggregate_type: key.0, aggregate_id: key.1, link });
            }
        }
    }
}

/// Checks every stream and the seal under `key`; `bar` advances by events read.
pub async fn all(db: &Db, key: ChainKey, batch_size: i64, bar: &ProgressBar) -> Result<Report, ReplayError> {
    let mut snapshot = Snapshot::begin(db).await?;
    let stored = snapshot.seal().await?;
    let seal = stored.clone().filter(|s| s.is_genuine(&key));
    let mut problems = Vec::new();
    let keyed_from = match &stored {
        None => {
            problems.push(
                "the log has no seal: it was deleted, or no server of this version has run on this store yet".into(),
            );
            Position { tx: i64::MAX, pos: i64::MAX }
        }
        Some(s) => {
            if seal.is_none() {
                problems.push("the seal was changed outside the application (or another key is in use)".into());
            }
            s.keyed_from()
        }
    };
    let mut walk = Walk {
        integrity: Integrity { verifier: Verifier { key, keyed_from }, seal: seal.clone() },
        report: Report::default(),
        heads: HashMap::new(),
        digest: EMPTY_DIGEST.into(),
        head_count: 0,
    };
    // Below every real key: sequences are >= 0 and the empty string sorts first.
    let mut after = (String::new(), String::new(), -1i64);
    let mut heads_after: Key = (String::new(), String::new());
    let mut stream: Vec<StoredEvent> = Vec::new();
    loop {
        let events = snapshot.events(&after, batch_size).await?;
        let Some(last) = events.last() else { break };
        after = (last.aggregate_type.clone(), last.aggregate_id.clone(), last.sequence);
        let upto: Key = (after.0.clone(), after.1.clone());
        if upto != heads_after {
            let heads = snapshot.heads(&heads_after, Some(&upto)).await?;
            walk.add_heads(heads);
            heads_after = upto.clone();
        }
        walk.report.events += events.len() as u64;
        bar.inc(events.len() as u64);
        for event in events {
            let same = stream
                .first()
                .is_some_and(|s| s.aggregate_type == event.aggregate_type && s.aggregate_id == event.aggregate_id);
            if !same {
                walk.check(&stream);
                stream.clear();
            }
            stream.push(event);
        }
        walk.deleted_streams(Some(&upto));
    }
    walk.check(&stream);
    let rest = snapshot.heads(&heads_after, None).await?;
    walk.add_heads(rest);
    walk.deleted_streams(None);
    if let Some(seal) = &seal {
        if walk.digest != seal.digest || walk.head_count != seal.streams {
            problems.push(format!(
                "the stream heads do not add up to the seal ({} streams sealed, {} heads found): \
                 head records were deleted or replaced, and with them perhaps whole streams",
                seal.streams, walk.head_count
            ));
        }
    }
    let mut report = walk.report;
    for record in shenfen_projections::reanchor::Reanchor::all(db).await? {
        if record.is_genuine(&walk.integrity.verifier.key) {
            report.reanchored += 1;
        } else {
            problems.push(format!(
                "the record of the re-anchoring of {} {} (run {}) was changed outside the application",
                record.aggregate_type, record.aggregate_id, record.run_id
            ));
        }
    }
    report.seal = problems;
    Ok(report)
}
