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

/// What a projection may judge an event by without decoding it (see
/// [`Projection::wants`](crate::runner::Projection::wants)): known before the event is
/// written, so that a commit wakes only the runners that want one of its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind<'a> {
    pub aggregate_type: &'a str,
    pub event_type: &'a str,
    pub sequence: i64,
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

    /// Its type, for [`Projection::wants`](crate::runner::Projection::wants).
    pub fn kind(&self) -> EventKind<'_> {
        EventKind { aggregate_type: &self.aggregate_type, event_type: &self.event_type, sequence: self.sequence }
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
       jsonb_build_object('at', metadata->'at', 'request_id', metadata->'request_id', 'hash', metadata->'hash') AS metadata,
       recorded_at
  FROM events
 WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY transaction_id, global_position
 LIMIT $3";

const SQLITE_READ_FOR_PROJECTIONS: &str = "
SELECT 0 AS tx, global_position AS pos, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
       json_object('at', json_extract(metadata, '$.at'), 'request_id', json_extract(metadata, '$.request_id'),
                   'hash', json_extract(metadata, '$.hash')) AS metadata,
       recorded_at
  FROM events
 WHERE global_position > $1
 ORDER BY global_position
 LIMIT $2";

/// [`read_for_projections`] on a PostgreSQL connection of the caller's.
pub async fn read_for_projections_pg(
    conn: &mut sqlx::PgConnection,
    after: Position,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as::<_, StoredEvent>(PG_READ_FOR_PROJECTIONS)
        .bind(after.tx.to_string())
        .bind(after.pos)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// Like [`read_after`], for projections: the metadata carries only `at`, `request_id` and
/// `hash` (what read models, process managers and the seal use), not the actor and the rest
/// of the chain, which saves reading and decoding a good part of every row.
pub async fn read_for_projections(db: &Db, after: Position, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    match db {
        Db::Postgres(p) => read_for_projections_pg(&mut *p.acquire().await?, after, limit).await,
        Db::Sqlite(p) => {
            sqlx::query_as::<_, StoredEvent>(SQLITE_READ_FOR_PROJECTIONS).bind(after.pos).bind(limit).fetch_all(p).await
        }
    }
}

/// Like [`read_for_projections`] on PostgreSQL, as one `COPY (SELECT …) TO STDOUT (FORMAT
/// binary)` streamed row by row, for reading a long stretch of the log fast (the replay tool's
/// rebuild): up to `limit` events after `after`, below the same visibility horizon, with the
/// same slim metadata. Start it with [`copy_for_projections`] and take the events with
/// [`CopyPage::next`]; the connection is busy until the last one is taken (a page dropped
/// before that leaves the connection unusable: close it).
///
/// The binary format needs no unescaping and no date parsing; every column is cast to the
/// type decoded here.
pub struct CopyPage<S> {
    stream: S,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    at: usize,
    header: bool,
    done: bool,
    /// Which events will be read past their kind (see [`CopyPage::decoding_only`]).
    decode: Option<Decode>,
}

/// Whether an event of this kind will be read past its kind.
pub type Decode = std::sync::Arc<dyn Fn(EventKind<'_>) -> bool + Send + Sync>;

/// Starts a [`CopyPage`] of up to `limit` events after `after` on `conn`.
pub async fn copy_for_projections(
    conn: &mut sqlx::PgConnection,
    after: Position,
    limit: i64,
) -> Result<CopyPage<impl futures::Stream<Item = Result<impl AsRef<[u8]>, sqlx::Error>> + Unpin + '_>, sqlx::Error> {
    // COPY takes no parameters: the position is spliced in as two integers. The casts are
    // named, or `ORDER BY transaction_id` would sort by the cast (a column named after its
    // argument) and not by the index.
    let sql = format!(
        "COPY (SELECT transaction_id::text::int8 AS tx, global_position::int8 AS pos, aggregate_type::text, aggregate_id::text,
                      sequence::int8, event_type::text, event_version::text, payload::text,
                      (metadata->'at')::text, (metadata->'request_id')::text, (metadata->'hash')::text,
                      recorded_at::timestamptz
                 FROM events
                WHERE (transaction_id, global_position) > ('{}'::text::xid8, {})
                  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY transaction_id, global_position
                LIMIT {}) TO STDOUT (FORMAT binary)",
        after.tx,
        after.pos,
        limit.max(0)
    );
    let stream = conn.copy_out_raw(&sql).await?;
    Ok(CopyPage { stream, buf: Vec::new(), at: 0, header: false, done: false, decode: None })
}

/// PostgreSQL's epoch (2000-01-01) in Unix microseconds.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn copy_error(what: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Protocol(format!("COPY of the log: {what}"))
}

fn required(v: Option<&[u8]>) -> Result<&[u8], sqlx::Error> {
    v.ok_or_else(|| copy_error("a NULL in a NOT NULL column"))
}

fn int8(v: Option<&[u8]>) -> Result<i64, sqlx::Error> {
    let bytes: [u8; 8] = required(v)?.try_into().map_err(|_| copy_error("an int8 that is not 8 bytes"))?;
    Ok(i64::from_be_bytes(bytes))
}

fn text(v: Option<&[u8]>) -> Result<String, sqlx::Error> {
    String::from_utf8(required(v)?.to_vec()).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A JSON value (JSON null for SQL NULL, as `jsonb_build_object` makes it).
fn json(v: Option<&[u8]>) -> Result<Value, sqlx::Error> {
    v.map_or(Ok(Value::Null), |b| serde_json::from_slice(b).map_err(|e| sqlx::Error::Decode(Box::new(e))))
}

/// Reads binary COPY fields from one tuple.
struct Fields<'a> {
    data: &'a [u8],
    at: usize,
}

/// The data ended inside a row.
struct Incomplete;

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }

    fn int<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }

    /// One field (`None` for NULL); `Err` when the data ends first (the row continues in the
    /// next chunk).
    fn field(&mut self) -> Result<Option<&'a [u8]>, Incomplete> {
        let len = i32::from_be_bytes(self.int().ok_or(Incomplete)?);
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some).ok_or(Incomplete)
    }
}

impl<S> CopyPage<S> {
    /// Decodes the payload and metadata only of the events of a kind `decode` answers true
    /// for; the others keep their place in the order, with a null payload and null metadata.
    /// For a reader whose consumers skip most kinds of event unread (a rebuild of a few read
    /// models): most of the reading is the JSON.
    pub fn decoding_only(mut self, decode: Decode) -> Self {
        self.decode = Some(decode);
        self
    }
}

impl<S, B> CopyPage<S>
where
    S: futures::Stream<Item = Result<B, sqlx::Error>> + Unpin,
    B: AsRef<[u8]>,
{
    /// The next event, or `None` at the end of the page.
    pub async fn next(&mut self) -> Result<Option<StoredEvent>, sqlx::Error> {
        use futures::StreamExt;
        loop {
            if !self.done {
                if let Some((event, used)) = self.parse()? {
                    self.at += used;
                    if let Some(event) = event {
                        return Ok(Some(event));
                    }
                    continue;
                }
            }
            match self.stream.next().await {
                Some(chunk) => {
                    if self.at > 0 {
                        self.buf.drain(..self.at);
                        self.at = 0;
                    }
                    self.buf.extend_from_slice(chunk?.as_ref());
                }
                None if self.done || self.buf.len() == self.at => return Ok(None),
                None => return Err(copy_error("the data ended inside a row")),
            }
        }
    }

    /// Parses the header or one tuple at `at`: `None` when more data is needed, else what it
    /// holds (an event, or nothing for the header and the trailer) and its length.
    fn parse(&mut self) -> Result<Option<(Option<StoredEvent>, usize)>, sqlx::Error> {
        let data = &self.buf[self.at..];
        if !self.header {
            const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
            let mut f = Fields { data, at: 0 };
            let Some(signature) = f.take(SIGNATURE.len()) else { return Ok(None) };
            if signature != SIGNATURE {
                return Err(copy_error("not binary COPY data"));
            }
            let Some(_flags) = f.int::<4>() else { return Ok(None) };
            let Some(extension) = f.int::<4>() else { return Ok(None) };
            if f.take(u32::from_be_bytes(extension) as usize).is_none() {
                return Ok(None);
            }
            self.header = true;
            return Ok(Some((None, f.at)));
        }
        let mut f = Fields { data, at: 0 };
        let Some(count) = f.int::<2>().map(i16::from_be_bytes) else { return Ok(None) };
        if count == -1 {
            self.done = true;
            return Ok(Some((None, f.at)));
        }
        if count != 12 {
            return Err(copy_error(format!("{count} columns, expected 12")));
        }
        let mut fields = [None; 12];
        for field in &mut fields {
            let Ok(value) = f.field() else { return Ok(None) };
            *field = value;
        }
        let [tx, pos, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, at, request_id, hash, recorded_at] =
            fields;
        let micros = int8(recorded_at)?;
        let recorded_at = micros
            .checked_add(PG_EPOCH_MICROS)
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(|| copy_error("recorded_at out of range"))?;
        let mut event = StoredEvent {
            tx: int8(tx)?,
            pos: int8(pos)?,
            aggregate_type: text(aggregate_type)?,
            aggregate_id: text(aggregate_id)?,
            sequence: int8(sequence)?,
            event_type: text(event_type)?,
            event_version: text(event_version)?,
            payload: Value::Null,
            metadata: Value::Null,
            recorded_at,
        };
        if self.decode.as_ref().is_none_or(|decode| decode(event.kind())) {
            let mut metadata = serde_json::Map::new();
            metadata.insert("at".into(), json(at)?);
            metadata.insert("request_id".into(), json(request_id)?);
            metadata.insert("hash".into(), json(hash)?);
            event.payload = json(Some(required(payload)?))?;
            event.metadata = Value::Object(metadata);
        }
        Ok(Some((Some(event), f.at)))
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

/// How many events a reader at `after` has still to read: the events readable after it, in
/// the order readers read (on PostgreSQL by `(transaction_id, global_position)` and below the
/// visibility horizon — the highest position need not be the last event in that order).
/// Counted up to `cap` (an index range scan; a far-behind reader is reported as `cap`).
pub async fn unread(db: &Db, after: Position, cap: i64) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> = match db {
        Db::Postgres(_) => crate::fetch_optional!(
            db,
            (i64,),
            "SELECT count(*) FROM (SELECT 1 FROM events
                                    WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
                                      AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                                    LIMIT $3) AS unread",
            after.tx.to_string(),
            after.pos,
            cap
        )?,
        Db::Sqlite(_) => crate::fetch_optional!(
            db,
            (i64,),
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE global_position > $1 LIMIT $2)",
            after.pos,
            cap
        )?,
    };
    Ok(row.map_or(0, |r| r.0))
}

/// Where the last event of one stream stands in the global order (`None` for no stream).
pub async fn stream_head_position(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<Position>, sqlx::Error> {
    match db {
        Db::Postgres(_) => crate::fetch_optional!(
            db,
            Position,
            "SELECT transaction_id::text::bigint AS tx, global_position AS pos FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
            aggregate_type,
            aggregate_id
        ),
        Db::Sqlite(_) => crate::fetch_optional!(
            db,
            Position,
            "SELECT 0 AS tx, global_position AS pos FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
            aggregate_type,
            aggregate_id
        ),
    }
}
