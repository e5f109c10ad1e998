//! Rewriting streams of the log in place, with their hash chains re-anchored under the key
//! and the re-anchoring recorded: how a store written before personal data was sealed gets it
//! sealed (`shenfen-replay encrypt`).
//!
//! The log is otherwise never rewritten. Here each stream holding a personal value in plain
//! text is rewritten in one transaction of its own: its payloads sealed under the stream's
//! subject key ([`Keyring`]), every link of its chain recomputed under the [`ChainKey`] (the
//! events' positions, types and metadata other than the hashes stay), its recorded head and
//! the seal's digest brought along, its snapshots dropped (they hold the old plain state), and
//! one row in `chain_reanchors` saying when, why, how many events, and the stream's head hash
//! before and after, with a MAC under the key. A stream is done or untouched: an interrupted
//! run leaves a log that verifies, and the next run carries on with the streams still plain.
//!
//! Only the holder of the key can do this, so it cannot hide tampering from someone without
//! the key; and a re-anchored stream says so: `shenfen-replay verify` checks and counts the
//! records. Run it with the server stopped: a running server links new events to the hashes
//! it read before the rewrite.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::chain::{ChainKey, Link, GENESIS};
use crate::db::{Db, DbTx};
use crate::log::StoredEvent;
use crate::pii::{KeyError, Keyring};
use crate::seal::{xor, Head, Seal};

/// Why a rewrite stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReanchorError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the seal of the log was not made with this key file")]
    ForeignSeal,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Streams looked at.
    pub streams_seen: u64,
    /// Streams rewritten (the others held no plain personal value).
    pub streams_rewritten: u64,
    pub events_rewritten: u64,
}

/// One recorded re-anchoring of a stream.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Reanchor {
    pub run_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub events: i64,
    pub head_before: String,
    pub head_after: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    pub mac: String,
}

impl Reanchor {
    fn expected_mac(&self, key: &ChainKey) -> String {
        key.mac(&[
            b"reanchor",
            self.run_id.as_bytes(),
            self.aggregate_type.as_bytes(),
            self.aggregate_id.as_bytes(),
            self.events.to_string().as_bytes(),
            self.head_before.as_bytes(),
            self.head_after.as_bytes(),
            self.reason.as_bytes(),
            self.at.to_rfc3339().as_bytes(),
        ])
    }

    /// Whether the record was made with `key`.
    pub fn is_genuine(&self, key: &ChainKey) -> bool {
        self.expected_mac(key) == self.mac
    }

    /// Every record, oldest first.
    pub async fn all(db: &Db) -> Result<Vec<Reanchor>, sqlx::Error> {
        crate::fetch_all!(
            db,
            Reanchor,
            "SELECT run_id, aggregate_type, aggregate_id, events, head_before, head_after, reason, at, mac
               FROM chain_reanchors ORDER BY at, aggregate_type, aggregate_id"
        )
    }
}

/// The reason recorded by [`seal_plain_streams`].
pub const SEALING: &str = "personal data sealed in place";

/// How many streams are read per page while looking for plain ones.
const PAGE: i64 = 500;

/// Seals every plain personal value of the log in place, stream by stream (see the module
/// docs). `limit` stops after that many streams were rewritten (to resume later).
pub async fn seal_plain_streams(
    db: &Db,
    key: &ChainKey,
    keyring: &Keyring,
    run_id: &str,
    limit: Option<u64>,
) -> Result<Summary, ReanchorError> {
    if Seal::read(db).await?.is_some_and(|seal| !seal.is_genuine(key)) {
        return Err(ReanchorError::ForeignSeal);
    }
    let mut summary = Summary::default();
    let mut after = (String::new(), String::new());
    loop {
        let page: Vec<(String, String)> = crate::fetch_all!(
            db,
            (String, String),
            "SELECT DISTINCT aggregate_type, aggregate_id FROM events
              WHERE aggregate_type > $1 OR (aggregate_type = $1 AND aggregate_id > $2)
              ORDER BY aggregate_type, aggregate_id LIMIT $3",
            &after.0,
            &after.1,
            PAGE
        )?;
        let Some(last) = page.last() else { return Ok(summary) };
        after = last.clone();
        for (aggregate_type, aggregate_id) in page {
            if limit.is_some_and(|limit| summary.streams_rewritten >= limit) {
                return Ok(summary);
            }
            summary.streams_seen += 1;
            let stream = Stream { aggregate_type: &aggregate_type, aggregate_id: &aggregate_id };
            if !stream.holds_plain(db).await? {
                continue;
            }
            // Its key is made (if need be) before the rewrite's transaction: the keyring writes
            // on a connection of its own.
            let sealer = keyring.sealer(&aggregate_id).await?;
            let seal = |events: &mut [StoredEvent]| {
                if !events.iter().any(|e| crate::pii::has_plain_personal(&e.payload)) {
                    return false;
                }
                events.iter_mut().for_each(|e| sealer.seal(&mut e.payload));
                true
            };
            if let Some(events) = stream.rewrite(db, key, run_id, SEALING, seal).await? {
                summary.streams_rewritten += 1;
                summary.events_rewritten += events;
            }
        }
    }
}

/// Rewrites one stream with `change` (which says whether it changed anything), re-anchored
/// and recorded with `reason` under `run_id`, as [`seal_plain_streams`] does: for tests that
/// need a store as an earlier version wrote it, and for migrations to come.
pub async fn rewrite_stream(
    db: &Db,
    key: &ChainKey,
    (aggregate_type, aggregate_id): (&str, &str),
    (run_id, reason): (&str, &str),
    change: impl FnOnce(&mut [StoredEvent]) -> bool,
) -> Result<Option<u64>, ReanchorError> {
    Stream { aggregate_type, aggregate_id }.rewrite(db, key, run_id, reason, change).await
}

struct Stream<'a> {
    aggregate_type: &'a str,
    aggregate_id: &'a str,
}

const PG_STREAM: &str = "
SELECT transaction_id::text::bigint AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence FOR UPDATE";
const SQLITE_STREAM: &str = "
SELECT 0 AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence";

impl Stream<'_> {
    async fn events(&self, tx: &mut DbTx) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let (ty, id) = (self.aggregate_type, self.aggregate_id);
        match tx {
            DbTx::Postgres(c) => sqlx::query_as(PG_STREAM).bind(ty).bind(id).fetch_all(&mut **c).await,
            DbTx::Sqlite(c) => sqlx::query_as(SQLITE_STREAM).bind(ty).bind(id).fetch_all(&mut **c).await,
        }
    }

    /// Whether a payload of the stream holds a personal value in plain text.
    async fn holds_plain(&self, db: &Db) -> Result<bool, sqlx::Error> {
        let mut tx = db.begin().await?;
        let events = self.events(&mut tx).await?;
        drop(tx);
        Ok(events.iter().any(|e| crate::pii::has_plain_personal(&e.payload)))
    }

    /// Changes the stream's payloads with `change` (which says whether it changed anything)
    /// and re-anchors its chain, in one transaction; the number of events rewritten, `None`
    /// when nothing changed.
    async fn rewrite(
        &self,
        db: &Db,
        key: &ChainKey,
        run_id: &str,
        reason: &str,
        change: impl FnOnce(&mut [StoredEvent]) -> bool,
    ) -> Result<Option<u64>, ReanchorError> {
        let mut tx = db.begin().await?;
        let mut events = self.events(&mut tx).await?;
        let head_before = events.last().and_then(|e| e.metadata.get("hash")).and_then(Value::as_str);
        let head_before = head_before.unwrap_or_default().to_string();
        if !change(&mut events) {
            return Ok(None);
        }
        self.rechain(key, &mut events);
        for e in &events {
            crate::exec!(tx &mut tx,
                "UPDATE events SET payload = $1, metadata = $2
                  WHERE aggregate_type = $3 AND aggregate_id = $4 AND sequence = $5",
                Json(&e.payload), Json(&e.metadata), self.aggregate_type, self.aggregate_id, e.sequence)?;
        }
        self.move_head(&mut tx, key, &events).await?;
        crate::exec!(tx &mut tx,
            "DELETE FROM aggregate_snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
            self.aggregate_type, self.aggregate_id)?;
        let head_after = events.last().and_then(|e| e.metadata.get("hash")).and_then(Value::as_str);
        let mut record = Reanchor {
            run_id: run_id.to_string(),
            aggregate_type: self.aggregate_type.to_string(),
            aggregate_id: self.aggregate_id.to_string(),
            events: events.len() as i64,
            head_before,
            head_after: head_after.unwrap_or_default().to_string(),
            reason: reason.to_string(),
            // Whole seconds: the record's MAC covers the instant as text.
            at: DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default(),
            mac: String::new(),
        };
        record.mac = record.expected_mac(key);
        crate::exec!(tx &mut tx,
            "INSERT INTO chain_reanchors (run_id, aggregate_type, aggregate_id, events, head_before, head_after, reason, at, mac)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &record.run_id, &record.aggregate_type, &record.aggregate_id, record.events,
            &record.head_before, &record.head_after, &record.reason, record.at, &record.mac)?;
        tx.commit().await?;
        Ok(Some(events.len() as u64))
    }

    /// Recomputes every link under `key`.
    fn rechain(&self, key: &ChainKey, events: &mut [StoredEvent]) {
        let mut prev = GENESIS.to_string();
        for e in events {
            if let Value::Object(meta) = &mut e.metadata {
                meta.insert("prev_hash".into(), Value::String(prev.clone()));
                meta.remove("hash");
            }
            let hash = key.event_hash(&Link::from(&*e), self.aggregate_type, self.aggregate_id);
            if let Value::Object(meta) = &mut e.metadata {
                meta.insert("hash".into(), Value::String(hash.clone()));
            }
            prev = hash;
        }
    }

    /// Moves the stream's recorded head to the rewritten chain, and the seal's digest with it.
    async fn move_head(&self, tx: &mut DbTx, key: &ChainKey, events: &[StoredEvent]) -> Result<(), ReanchorError> {
        let head: Option<Head> = crate::fetch_optional!(tx tx, Head,
            "SELECT aggregate_type, aggregate_id, sequence, hash, mac FROM chain_heads
              WHERE aggregate_type = $1 AND aggregate_id = $2",
            self.aggregate_type, self.aggregate_id)?;
        let Some(head) = head else { return Ok(()) };
        let hash = events
            .iter()
            .find(|e| e.sequence == head.sequence)
            .and_then(|e| e.metadata.get("hash"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mac = key.head_mac(self.aggregate_type, self.aggregate_id, head.sequence, hash);
        crate::exec!(tx tx,
            "UPDATE chain_heads SET hash = $1, mac = $2 WHERE aggregate_type = $3 AND aggregate_id = $4",
            hash, &mac, self.aggregate_type, self.aggregate_id)?;
        let seal: Option<Seal> = crate::fetch_optional!(tx tx, Seal,
            "SELECT keyed_from_tx, keyed_from_pos, sealed_tx, sealed_pos, streams, digest, mac FROM chain_seal WHERE id = 1")?;
        if let Some(mut seal) = seal {
            if !seal.is_genuine(key) {
                return Err(ReanchorError::ForeignSeal);
            }
            seal.digest = xor(&xor(&seal.digest, &head.mac), &mac);
            seal.resign(key);
            crate::exec!(tx tx, "UPDATE chain_seal SET digest = $1, mac = $2 WHERE id = 1", &seal.digest, &seal.mac)?;
        }
        Ok(())
    }
}
