//! The seal of the log: what makes a truncation visible.
//!
//! The keyed hash chain ([`chain`](crate::chain)) shows any change to an event and any event
//! removed from the middle of a stream, but deleting a stream's last events, or a whole
//! stream, leaves a shorter chain that is still intact. So the [`ChainSeal`] projection records
//! each stream's head — its last sequence and hash — under the chain key (`chain_heads`), and
//! one row over all of them (`chain_seal`): how many streams there are, a digest (the XOR of
//! every head's keyed record), how far the log has been sealed and where keying began, with a
//! MAC over the whole row. None of it can be recomputed without the key, which is not in the
//! database. `shenfen-replay verify` then finds, besides broken chains:
//! - a stream shorter than its recorded head (its last events were deleted), or gone entirely
//!   (named, with the sequence its head had);
//! - a head record deleted as well: the heads no longer add up to the sealed digest and count;
//! - an event inserted behind the seal (at a position already sealed, past its stream's head).
//!
//! What it cannot see: events committed after the last seal (the seal follows the log within
//! about a second), and a whole database restored to an earlier consistent state, seal
//! included — keep the seal's digest elsewhere too (the server logs it) to see that.
//!
//! The projection runs only in the server, never in a rebuild (the seal must not be recomputed
//! from a log that may have been cut). It is not woken by commits: it polls, so a busy server
//! pays one small transaction per poll for it. Each update checks the seal's MAC first, so a
//! seal changed in the database is never re-signed (the projection stops and is reported).

use async_trait::async_trait;

use crate::chain::ChainKey;
use crate::db::{Db, DbTx};
use crate::log::{Position, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct ChainSeal {
    key: ChainKey,
    /// When the seal was last written to the log (a witness outside the database).
    logged: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often the seal is written to the application log.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The seal row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Seal {
    pub keyed_from_tx: i64,
    pub keyed_from_pos: i64,
    pub sealed_tx: i64,
    pub sealed_pos: i64,
    pub streams: i64,
    pub digest: String,
    pub mac: String,
}

/// One stream's recorded head.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Head {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub hash: String,
    pub mac: String,
}

impl Head {
    /// The recorded head of one stream, if any.
    pub async fn read(db: &Db, aggregate_type: &str, aggregate_id: &str) -> Result<Option<Head>, sqlx::Error> {
        crate::fetch_optional!(
            db,
            Head,
            "SELECT aggregate_type, aggregate_id, sequence, hash, mac FROM chain_heads
              WHERE aggregate_type = $1 AND aggregate_id = $2",
            aggregate_type,
            aggregate_id
        )
    }

    /// Whether the record was made with `key`.
    pub fn is_genuine(&self, key: &ChainKey) -> bool {
        key.head_mac(&self.aggregate_type, &self.aggregate_id, self.sequence, &self.hash) == self.mac
    }
}

/// The digest of no heads.
pub const EMPTY_DIGEST: &str = crate::chain::GENESIS;

/// `a` XOR `b`, both 64 hex digits (a malformed operand counts as zeros).
pub fn xor(a: &str, b: &str) -> String {
    let bytes = |h: &str| hex::decode(h).ok().filter(|v| v.len() == 32).unwrap_or_else(|| vec![0; 32]);
    let (a, b) = (bytes(a), bytes(b));
    hex::encode(a.iter().zip(b.iter()).map(|(x, y)| x ^ y).collect::<Vec<u8>>())
}

impl Seal {
    /// Where keying began: events after this position must carry keyed hashes.
    pub fn keyed_from(&self) -> Position {
        Position { tx: self.keyed_from_tx, pos: self.keyed_from_pos }
    }

    /// How far the log is sealed: every stream with an event at or before this position has a
    /// head at least that far.
    pub fn sealed(&self) -> Position {
        Position { tx: self.sealed_tx, pos: self.sealed_pos }
    }

    fn expected_mac(&self, key: &ChainKey) -> String {
        key.mac(&[
            b"seal",
            format!("{} {}", self.keyed_from_tx, self.keyed_from_pos).as_bytes(),
            format!("{} {}", self.sealed_tx, self.sealed_pos).as_bytes(),
            self.streams.to_string().as_bytes(),
            self.digest.as_bytes(),
        ])
    }

    /// Whether the row was written with `key`.
    pub fn is_genuine(&self, key: &ChainKey) -> bool {
        self.expected_mac(key) == self.mac
    }

    /// Signs the row again under `key`, after a change made by its holder.
    pub(crate) fn resign(&mut self, key: &ChainKey) {
        self.mac = self.expected_mac(key);
    }

    /// The seal row of this store, if any.
    pub async fn read(db: &Db) -> Result<Option<Seal>, sqlx::Error> {
        crate::fetch_optional!(db, Seal, &format!("{SEAL_SELECT} FROM chain_seal WHERE id = 1"))
    }
}

const SEAL_SELECT: &str = "SELECT keyed_from_tx, keyed_from_pos, sealed_tx, sealed_pos, streams, digest, mac";

impl ChainSeal {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "chain_seal";

    /// The seal of `db` under `key`. On a store without a seal (new, or written by a version
    /// without one) it records where keying begins: the end of the log now.
    pub async fn open(db: &Db, key: ChainKey) -> Result<ChainSeal, sqlx::Error> {
        if Seal::read(db).await?.is_none() {
            let head: Option<(i64, i64)> = match db {
                Db::Postgres(_) => crate::fetch_optional!(
                    db,
                    (i64, i64),
                    // Ordered by the table's columns (`events.`): a bare `transaction_id` names
                    // the output column, the bigint cast, which no index is in the order of —
                    // PostgreSQL sorted the whole log (2 s at 11.6 M events) before the first
                    // start over a seeded store.
                    "SELECT transaction_id::text::bigint, global_position FROM events
                      WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                      ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
                )?,
                Db::Sqlite(_) => crate::fetch_optional!(
                    db,
                    (i64, i64),
                    "SELECT 0, global_position FROM events ORDER BY global_position DESC LIMIT 1"
                )?,
            };
            let (tx, pos) = head.unwrap_or((0, 0));
            let mut seal = Seal {
                keyed_from_tx: tx,
                keyed_from_pos: pos,
                sealed_tx: 0,
                sealed_pos: 0,
                streams: 0,
                digest: EMPTY_DIGEST.into(),
                mac: String::new(),
            };
            seal.mac = seal.expected_mac(&key);
            let inserted = crate::exec!(
                db,
                "INSERT INTO chain_seal (id, keyed_from_tx, keyed_from_pos, sealed_tx, sealed_pos, streams, digest, mac)
                 VALUES (1, $1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                seal.keyed_from_tx,
                seal.keyed_from_pos,
                seal.sealed_tx,
                seal.sealed_pos,
                seal.streams,
                &seal.digest,
                &seal.mac
            )?;
            if inserted == 1 {
                tracing::info!(keyed_from_tx = tx, keyed_from_pos = pos, "the log is sealed from now on");
            }
        }
        Ok(ChainSeal { key, logged: std::sync::Mutex::new(None) })
    }
}

fn tampered(what: impl Into<String>) -> ProjectionError {
    ProjectionError::Tampered(what.into())
}

#[async_trait]
impl Projection for ChainSeal {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wakes_on_commit(&self) -> bool {
        false
    }

    async fn apply(&self, tx: &mut DbTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_batch(tx, &[event]).await
    }

    async fn apply_batch(&self, tx: &mut DbTx, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last() else { return Ok(()) };
        let sql = format!("{SEAL_SELECT} FROM chain_seal WHERE id = 1");
        let mut seal = crate::fetch_optional!(tx tx, Seal, &sql)?.ok_or_else(|| tampered("the seal row is missing"))?;
        if !seal.is_genuine(&self.key) {
            return Err(tampered("the seal row was changed outside the application"));
        }
        // The last event of each stream in this batch, in the order first seen.
        let mut heads: Vec<(&str, &str, i64, &str)> = Vec::new();
        for e in events {
            let hash = e.metadata.get("hash").and_then(|h| h.as_str()).unwrap_or_default();
            match heads.iter_mut().find(|h| h.0 == e.aggregate_type && h.1 == e.aggregate_id) {
                Some(h) if e.sequence > h.2 => *h = (&e.aggregate_type, &e.aggregate_id, e.sequence, hash),
                Some(_) => {}
                None => heads.push((&e.aggregate_type, &e.aggregate_id, e.sequence, hash)),
            }
        }
        let mut olds = read_heads(tx, &heads).await?;
        let mut written = Vec::with_capacity(heads.len());
        for (ty, id, sequence, hash) in heads {
            let old = olds.remove(&(ty.to_string(), id.to_string()));
            if let Some(old) = &old {
                if sequence <= old.sequence {
                    continue;
                }
                if !old.is_genuine(&self.key) {
                    return Err(tampered(format!("the head of {ty} {id} was changed outside the application")));
                }
            }
            let mac = self.key.head_mac(ty, id, sequence, hash);
            seal.digest = xor(&seal.digest, &mac);
            match &old {
                Some(old) => seal.digest = xor(&seal.digest, &old.mac),
                None => seal.streams += 1,
            }
            written.push(Head {
                aggregate_type: ty.to_string(),
                aggregate_id: id.to_string(),
                sequence,
                hash: hash.to_string(),
                mac,
            });
        }
        write_heads(tx, written).await?;
        let at = last.position();
        if at > seal.sealed() {
            seal.sealed_tx = at.tx;
            seal.sealed_pos = at.pos;
        }
        seal.mac = seal.expected_mac(&self.key);
        crate::exec!(tx tx,
            "UPDATE chain_seal SET sealed_tx = $1, sealed_pos = $2, streams = $3, digest = $4, mac = $5 WHERE id = 1",
            seal.sealed_tx, seal.sealed_pos, seal.streams, &seal.digest, &seal.mac)?;
        if let Ok(mut logged) = self.logged.lock() {
            if logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                *logged = Some(std::time::Instant::now());
                tracing::info!(
                    sealed_tx = seal.sealed_tx,
                    sealed_pos = seal.sealed_pos,
                    streams = seal.streams,
                    digest = %seal.digest,
                    "the log is sealed up to here"
                );
            }
        }
        Ok(())
    }
}

/// The recorded heads of `streams` (type, id, …), by stream: one query on PostgreSQL.
async fn read_heads(
    tx: &mut DbTx,
    streams: &[(&str, &str, i64, &str)],
) -> Result<std::collections::HashMap<(String, String), Head>, sqlx::Error> {
    let heads: Vec<Head> = match tx {
        DbTx::Postgres(c) => {
            let (types, ids): (Vec<&str>, Vec<&str>) = streams.iter().map(|h| (h.0, h.1)).unzip();
            sqlx::query_as(
                "SELECT aggregate_type, aggregate_id, sequence, hash, mac FROM chain_heads
                  WHERE (aggregate_type, aggregate_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))",
            )
            .bind(types)
            .bind(ids)
            .fetch_all(&mut **c)
            .await?
        }
        DbTx::Sqlite(_) => {
            let mut heads = Vec::with_capacity(streams.len());
            for (ty, id, _, _) in streams {
                let head = crate::fetch_optional!(tx tx, Head,
                    "SELECT aggregate_type, aggregate_id, sequence, hash, mac FROM chain_heads
                      WHERE aggregate_type = $1 AND aggregate_id = $2", *ty, *id)?;
                heads.extend(head);
            }
            heads
        }
    };
    Ok(heads.into_iter().map(|h| ((h.aggregate_type.clone(), h.aggregate_id.clone()), h)).collect())
}

/// Records `heads`: one statement on PostgreSQL.
async fn write_heads(tx: &mut DbTx, heads: Vec<Head>) -> Result<(), sqlx::Error> {
    if heads.is_empty() {
        return Ok(());
    }
    match tx {
        DbTx::Postgres(c) => {
            let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for h in heads {
                columns.0.push(h.aggregate_type);
                columns.1.push(h.aggregate_id);
                columns.2.push(h.sequence);
                columns.3.push(h.hash);
                columns.4.push(h.mac);
            }
            sqlx::query(
                "INSERT INTO chain_heads (aggregate_type, aggregate_id, sequence, hash, mac)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
                 ON CONFLICT (aggregate_type, aggregate_id)
                 DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, mac = excluded.mac",
            )
            .bind(columns.0)
            .bind(columns.1)
            .bind(columns.2)
            .bind(columns.3)
            .bind(columns.4)
            .execute(&mut **c)
            .await?;
        }
        DbTx::Sqlite(_) => {
            for h in heads {
                crate::exec!(tx tx,
                    "INSERT INTO chain_heads (aggregate_type, aggregate_id, sequence, hash, mac) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (aggregate_type, aggregate_id)
                     DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, mac = excluded.mac",
                    &h.aggregate_type, &h.aggregate_id, h.sequence, &h.hash, &h.mac)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_is_its_own_inverse_and_order_free() {
        let (a, b) = ("11".repeat(32), "f0".repeat(32));
        let ab = xor(&xor(EMPTY_DIGEST, &a), &b);
        assert_eq!(ab, xor(&xor(EMPTY_DIGEST, &b), &a));
        assert_eq!(xor(&ab, &b), a);
        assert_eq!(ab, "e1".repeat(32));
    }

    #[test]
    fn a_seal_changed_without_the_key_is_not_genuine() {
        let key = ChainKey::derive(&[1u8; 32]);
        let mut seal = Seal {
            keyed_from_tx: 0,
            keyed_from_pos: 5,
            sealed_tx: 0,
            sealed_pos: 9,
            streams: 2,
            digest: "ab".repeat(32),
            mac: String::new(),
        };
        seal.mac = seal.expected_mac(&key);
        assert!(seal.is_genuine(&key));
        let mut fewer = seal.clone();
        fewer.streams = 1;
        assert!(!fewer.is_genuine(&key));
        assert!(!seal.is_genuine(&ChainKey::derive(&[2u8; 32])));
    }
}
