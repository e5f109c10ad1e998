//! `rebuild [--projection NAME] [--restart]`: replays the log into fresh copies of read-model
//! tables, then swaps them in.
//!
//! # How
//! A read model is rebuilt into fresh tables **with its live SQL unchanged**: the rebuild runs
//! on a second connection pool whose unqualified table names resolve to the fresh copies, while
//! `events` still resolves to the live log.
//!
//! - **PostgreSQL**: a schema `shenfen_rebuild` holds `shenfen_rebuild.<t> (LIKE <live>.<t>
//!   INCLUDING ALL)` for each table the projection owns ([`Projection::tables`]) and a
//!   `shenfen_rebuild.projection_checkpoints` like the live one. The rebuild pool's connections
//!   run `SET search_path TO shenfen_rebuild, <live schema>` (sqlx `after_connect`), so
//!   `account_view` means the copy and `events` the live log. Nothing in the rebuild needs to
//!   survive a crash on its own, only to stay consistent, so it is written cheaply: the
//!   copies and the rebuild's checkpoint table are `UNLOGGED` (no WAL; after a server crash
//!   PostgreSQL empties all of them together, and the rebuild starts over), and the pool runs
//!   `SET synchronous_commit TO off` (a crash loses the last batches, rows and checkpoint
//!   alike, and they are replayed). The swap is one transaction on the live pool:
//!   `ALTER TABLE shenfen_rebuild.<t> SET LOGGED` (the table is written to the WAL once, so it
//!   is durable and replicated from then on), `DROP TABLE <live>.<t>`,
//!   `ALTER TABLE shenfen_rebuild.<t> SET SCHEMA <live>`, the indexes
//!   renamed back to their migration names (`LIKE` names them after their columns), and the
//!   live checkpoint row of the projection set to the rebuild's. A server running meanwhile
//!   keeps going: its next batch's compare-and-set on the old checkpoint fails, it re-reads the
//!   checkpoint and continues from the rebuild's on the new tables. An advisory lock keeps two
//!   rebuilds from running at once.
//! - **SQLite**: a sidecar database next to the live file (`<db>.rebuild`), opened as `main`
//!   with the live file attached as `live` (sqlx `after_connect`), holds the projection's
//!   tables created from the DDL in `live.sqlite_master` and a `projection_checkpoints`;
//!   `events` resolves to `live.events` because `main` has none. The sidecar pool has one
//!   connection (one writer, no two connections fighting for the sidecar) and a busy timeout.
//!   The swap is one `BEGIN IMMEDIATE` transaction on a live connection with the sidecar
//!   attached as `rebuild`: `DELETE FROM main.<t>; INSERT INTO main.<t> SELECT … FROM
//!   rebuild.<t>` and the checkpoint set. The sidecar is deleted once no rebuild is left in it.
//!
//! A projection's SQL must only touch the tables its `tables()` lists: any other unqualified
//! name would resolve to the live table.
//!
//! # Resuming
//! An interrupted rebuild leaves its tables and its checkpoint behind (the schema or the
//! sidecar); the next `rebuild` of that projection continues from that checkpoint. `--restart`
//! ([`Options::restart`]) drops them and starts over.
//!
//! # Speed
//! The log is read **once** for all the projections being rebuilt: one reader hands each
//! batch to one task per projection, each applying it on its own connection, in parallel. As
//! in the runner, a projection skips the events it does not want ([`Projection::wants`]), and
//! a position reached only through those is written with its next write or at the end. Then
//! [`runner::catch_up`] applies whatever was written meanwhile, and the swap follows.
//!
//! - **Reading**: on PostgreSQL the reader streams the log with binary `COPY (SELECT … ORDER
//!   BY transaction_id, global_position LIMIT 50000) TO STDOUT` pages
//!   ([`log::copy_for_projections`]: the same visibility horizon and slim metadata as
//!   [`log::read_for_projections`], no per-row protocol round trip and no text parsing but the
//!   JSON), cut into batches of [`Options::batch_size`] as it goes, on a connection of its own.
//!   SQLite keeps the keyset-paginated [`log::read_for_projections`].
//! - **Writing back** (read models with a [`Projection::bulk`] mode: `account_view`): the
//!   copy tables have one writer, this rebuild, so rows are kept in memory across batches and
//!   the changed ones are written only when the checkpoint moves: when
//!   [`Options::cache_rows`] rows have changes, after [`Options::flush_every`], and at the end
//!   (or at a stop), rows and checkpoint in one transaction with the compare-and-set. A row
//!   touched by ten events is written once, and rows the table does not have yet go in with
//!   one binary `COPY … FROM STDIN` on PostgreSQL. Resuming stays exact: the checkpoint covers
//!   exactly what was written, and a row not in memory is read from the copy table, which then
//!   holds everything up to the checkpoint. Beyond `cache_rows` rows in memory the clean ones
//!   are dropped (and read back when needed), so memory stays bounded whatever the log's size.
//!   Other read models write each batch in its own transaction, as the runner does.
//!
//! `shenfen-replay-bench` measures the rebuild next to the raw `COPY` rate of the same rows: on
//! 1,000,000 account events (100,000 accounts, 2 shared cores, PostgreSQL 15, stock
//! durability) the rebuild of every read model ran at 0.41–0.59 × the raw read rate (about
//! 155,000–255,000 events/s), against 0.125–0.137 × when the reader decoded sqlx pages and
//! `account_view` upserted its rows in every batch (README, "Replay and aggregate load"). With
//! far more rows touched than `cache_rows` (`--cache-rows 10000` there) it falls back to about
//! that old rate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use shenfen_projections::db::Db;
use shenfen_projections::log::{self, Position, StoredEvent};
use shenfen_projections::runner::{self, BulkApply, Projection};
use shenfen_projections::{exec, fetch_optional};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Executor, PgPool, SqlitePool};
use tokio::sync::mpsc;

use crate::progress::Progress;
use crate::ReplayError;

/// The PostgreSQL schema holding rebuilds in progress.
pub const SCHEMA: &str = "shenfen_rebuild";

/// How to rebuild.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events per batch (one transaction per projection and batch).
    pub batch_size: i64,
    /// Drop any rebuild in progress of these projections and start over.
    pub restart: bool,
    /// Stop after reading this many events, before catching up and swapping, leaving the
    /// rebuild to be resumed (for tests, and to spread a long rebuild over several runs).
    pub stop_after: Option<u64>,
    /// Rows a read model with a write-back mode ([`Projection::bulk`]) may hold in memory;
    /// when that many have changes, they are written (with the checkpoint).
    pub cache_rows: usize,
    /// How long changed rows held in memory may stay unwritten: the most work an interrupted
    /// rebuild loses.
    pub flush_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 2000,
            restart: false,
            stop_after: None,
            cache_rows: 200_000,
            flush_every: Duration::from_secs(10),
        }
    }
}

/// What happened to one projection.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub name: &'static str,
    /// Where it started from (the default position for a fresh rebuild).
    pub resumed_from: Position,
    /// Events applied in this run: those it wants in the bulk pass, and every event the
    /// catch-up read.
    pub applied: u64,
    /// Time spent applying batches (in its transactions, including commit).
    pub busy: Duration,
    /// Its checkpoint when swapped in (or when stopped).
    pub checkpoint: Position,
    /// Whether its tables were swapped in.
    pub swapped: bool,
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Events read by the shared reader.
    pub events_read: u64,
    /// Time the reader spent reading and decoding the log (waiting for the appliers to take a
    /// batch excluded).
    pub read_time: Duration,
    /// Wall time of the whole rebuild, swaps included.
    pub elapsed: Duration,
    pub projections: Vec<Rebuilt>,
}

/// The read models to rebuild: all of them, or the one named.
pub fn select(name: Option<&str>) -> Result<Vec<Arc<dyn Projection>>, ReplayError> {
    let all = shenfen_projections::read_models();
    let Some(name) = name else { return Ok(all) };
    let known = all.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
    let chosen: Vec<_> = all.into_iter().filter(|p| p.name() == name).collect();
    if chosen.is_empty() {
        return Err(ReplayError::UnknownProjection { name: name.to_string(), known });
    }
    Ok(chosen)
}

/// Rebuilds `projections` from the log of `live` and swaps them in (unless
/// [`Options::stop_after`] stops it first).
pub async fn rebuild(
    live: &Db,
    projections: Vec<Arc<dyn Projection>>,
    options: &Options,
    progress: &Progress,
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let sidecar = Sidecar::open(live).await?;
    let result = run(live, &sidecar, projections, options, progress, started).await;
    let finished = sidecar.finish(result.is_ok()).await;
    let report = result?;
    finished?;
    Ok(report)
}

async fn run(
    live: &Db,
    sidecar: &Sidecar,
    projections: Vec<Arc<dyn Projection>>,
    options: &Options,
    progress: &Progress,
    started: Instant,
) -> Result<Report, ReplayError> {
    let rebuild_db = sidecar.db();
    let total = crate::event_count(live).await?;
    let mut appliers = Vec::with_capacity(projections.len());
    for projection in projections {
        for table in projection.tables() {
            ident(table)?;
        }
        let at = sidecar.prepare(projection.as_ref(), options.restart).await?;
        let bar = progress.bar(projection.name(), total);
        bar.set_position(events_up_to(live, at).await?);
        appliers.push(Applier {
            db: rebuild_db.clone(),
            bulk: projection.bulk(options.cache_rows),
            cache_rows: options.cache_rows.max(1),
            flush_every: options.flush_every,
            flushed_at: Instant::now(),
            projection,
            resumed_from: at,
            stored: at,
            read: at,
            applied: 0,
            busy: Duration::ZERO,
            bar,
        });
    }

    // The bulk pass: one reader, one task per projection.
    let from = appliers.iter().map(|a| a.read).min().unwrap_or_default();
    let read_bar = progress.bar("log read", total);
    read_bar.set_position(events_up_to(live, from).await?);
    let (events_read, read_time, mut appliers) =
        fan_out(live, from, appliers, options.batch_size, options.stop_after, &read_bar).await?;
    read_bar.finish();
    let stopped = options.stop_after.is_some_and(|n| events_read >= n);

    let mut rebuilt = Vec::with_capacity(appliers.len());
    for applier in &mut appliers {
        if !stopped {
            // Whatever was written since the bulk pass read the log.
            let base = applier.bar.position();
            let bar = applier.bar.clone();
            let t = Instant::now();
            let mut caught = 0;
            runner::catch_up(&rebuild_db, applier.projection.clone(), options.batch_size, |n| {
                caught = n;
                bar.set_position(base + n);
            })
            .await?;
            applier.applied += caught;
            applier.busy += t.elapsed();
            applier.stored = sidecar.swap(applier.projection.as_ref()).await?;
        }
        applier.bar.finish();
        rebuilt.push(Rebuilt {
            name: applier.projection.name(),
            resumed_from: applier.resumed_from,
            applied: applier.applied,
            busy: applier.busy,
            checkpoint: applier.stored,
            swapped: !stopped,
        });
    }
    Ok(Report { events_read, read_time, elapsed: started.elapsed(), projections: rebuilt })
}

/// The number of events at or before `at` in the global order (where a progress bar starts).
async fn events_up_to(db: &Db, at: Position) -> Result<u64, sqlx::Error> {
    if at == Position::default() {
        return Ok(0);
    }
    let row: Option<(i64,)> = match db {
        Db::Postgres(_) => fetch_optional!(
            db,
            (i64,),
            "SELECT count(*) FROM events WHERE (transaction_id, global_position) <= ($1::text::xid8, $2)",
            at.tx.to_string(),
            at.pos
        )?,
        Db::Sqlite(_) => {
            fetch_optional!(db, (i64,), "SELECT count(*) FROM events WHERE global_position <= $1", at.pos)?
        }
    };
    Ok(row.map_or(0, |r| r.0.max(0) as u64))
}

/// One projection being rebuilt by the bulk pass.
struct Applier {
    db: Db,
    projection: Arc<dyn Projection>,
    /// Its write-back mode, if it has one.
    bulk: Option<Box<dyn BulkApply>>,
    cache_rows: usize,
    flush_every: Duration,
    /// When `stored` was last written.
    flushed_at: Instant,
    resumed_from: Position,
    /// Its checkpoint row.
    stored: Position,
    /// How far it has read: ahead of `stored` only by events it does not want, or folded into
    /// rows held in memory (a write-back read model).
    read: Position,
    applied: u64,
    busy: Duration,
    bar: ProgressBar,
}

const MOVE_CHECKPOINT: &str = "UPDATE projection_checkpoints SET transaction_id = $1, position = $2,
        updated_at = CURRENT_TIMESTAMP
  WHERE projection = $3 AND transaction_id = $4 AND position = $5";

impl Applier {
    /// Applies the events of `batch` after this projection's position, like the runner does:
    /// the events it wants, and its checkpoint, in one transaction with a compare-and-set on
    /// the old checkpoint; a batch of events it does not want only moves its position in
    /// memory (written by [`flush`](Self::flush) or with the next batch it wants).
    ///
    /// A read model with a write-back mode folds the batch in memory instead, and its changed
    /// rows and its checkpoint are written together by [`flush`](Self::flush): when
    /// `cache_rows` rows have changes, after `flush_every`, and at the end.
    async fn apply(&mut self, batch: &[StoredEvent]) -> Result<(), ReplayError> {
        let todo = &batch[batch.partition_point(|e| e.position() <= self.read)..];
        let Some(last) = todo.last().map(StoredEvent::position) else { return Ok(()) };
        self.bar.inc(todo.len() as u64);
        let wanted: Vec<&StoredEvent> = todo.iter().filter(|e| self.projection.wants(e.kind())).collect();
        if wanted.is_empty() {
            self.read = last;
            // Changed rows held in memory are written on time even in a long run of events
            // this read model does not want.
            if self.bulk.as_ref().is_some_and(|b| b.dirty() > 0) && self.flushed_at.elapsed() >= self.flush_every {
                self.flush().await?;
            }
            return Ok(());
        }
        if let Some(bulk) = self.bulk.as_mut() {
            let t = Instant::now();
            bulk.apply(&self.db, &wanted).await?;
            let full = bulk.dirty() >= self.cache_rows;
            self.busy += t.elapsed();
            self.read = last;
            self.applied += wanted.len() as u64;
            if full || self.flushed_at.elapsed() >= self.flush_every {
                self.flush().await?;
            }
            return Ok(());
        }
        let name = self.projection.name();
        let t = Instant::now();
        let mut tx = self.db.begin().await?;
        let (from, to) = (self.stored, last);
        let claimed = exec!(tx &mut tx, MOVE_CHECKPOINT, to.tx, to.pos, name, from.tx, from.pos)?;
        if claimed != 1 {
            return Err(ReplayError::ConcurrentRebuild(name.to_string()));
        }
        self.projection.apply_batch(&mut tx, &wanted).await?;
        tx.commit().await?;
        self.busy += t.elapsed();
        self.stored = last;
        self.read = last;
        self.flushed_at = Instant::now();
        self.applied += wanted.len() as u64;
        Ok(())
    }

    /// Writes the position reached (through unwanted events, or folded in memory) and the
    /// rows changed in memory, in one transaction.
    async fn flush(&mut self) -> Result<(), ReplayError> {
        let dirty = self.bulk.as_ref().is_some_and(|b| b.dirty() > 0);
        if self.read == self.stored && !dirty {
            return Ok(());
        }
        let name = self.projection.name();
        let t = Instant::now();
        let (from, to) = (self.stored, self.read);
        let mut tx = self.db.begin().await?;
        if exec!(tx &mut tx, MOVE_CHECKPOINT, to.tx, to.pos, name, from.tx, from.pos)? != 1 {
            return Err(ReplayError::ConcurrentRebuild(name.to_string()));
        }
        if let Some(bulk) = self.bulk.as_mut() {
            bulk.flush(&mut tx).await?;
        }
        tx.commit().await?;
        if let Some(bulk) = self.bulk.as_mut() {
            bulk.flushed();
        }
        self.stored = to;
        self.flushed_at = Instant::now();
        self.busy += t.elapsed();
        Ok(())
    }
}

/// Reads the log once from `from` and feeds every batch to every applier, each on its own
/// task. Returns the events read, the reader's query time, and the appliers.
async fn fan_out(
    live: &Db,
    from: Position,
    appliers: Vec<Applier>,
    batch_size: i64,
    stop_after: Option<u64>,
    bar: &ProgressBar,
) -> Result<(u64, Duration, Vec<Applier>), ReplayError> {
    let mut senders = Vec::with_capacity(appliers.len());
    let mut tasks = Vec::with_capacity(appliers.len());
    for mut applier in appliers {
        let (tx, mut rx) = mpsc::channel::<Arc<Vec<StoredEvent>>>(4);
        senders.push(tx);
        tasks.push(tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                applier.apply(&batch).await?;
            }
            applier.flush().await?;
            Ok::<_, ReplayError>(applier)
        }));
    }
    let mut reader = Reader { senders, bar, read: 0, waited: Duration::ZERO };
    let t = Instant::now();
    let read_error = match live {
        Db::Postgres(pool) => read_copy(pool, from, batch_size, stop_after, &mut reader).await,
        Db::Sqlite(_) => read_pages(live, from, batch_size, stop_after, &mut reader).await,
    }
    .err();
    let read_time = t.elapsed().saturating_sub(reader.waited);
    let read = reader.read;
    // Closing the channels ends the appliers.
    drop(reader);
    let mut done = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(applier)) => done.push(applier),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(ReplayError::Task(e.to_string()));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if let Some(e) = read_error {
        return Err(e.into());
    }
    Ok((read, read_time, done))
}

/// The shared reader's side of [`fan_out`].
struct Reader<'a> {
    senders: Vec<mpsc::Sender<Arc<Vec<StoredEvent>>>>,
    bar: &'a ProgressBar,
    /// Events read.
    read: u64,
    /// Time spent waiting for the appliers to take a batch.
    waited: Duration,
}

impl Reader<'_> {
    /// Hands `events` to every applier; false when one of them has stopped (failed).
    async fn dispatch(&mut self, events: Vec<StoredEvent>) -> bool {
        self.read += events.len() as u64;
        self.bar.inc(events.len() as u64);
        let t = Instant::now();
        let batch = Arc::new(events);
        let mut delivered = true;
        for sender in &self.senders {
            if sender.send(batch.clone()).await.is_err() {
                delivered = false;
                break;
            }
        }
        self.waited += t.elapsed();
        delivered
    }
}

/// Events per COPY statement of the PostgreSQL reader.
const COPY_PAGE: u64 = 50_000;

/// The PostgreSQL reader: pages of [`COPY_PAGE`] events with [`log::copy_for_projections`],
/// streamed into batches of `batch_size`, on a connection of its own (a COPY left unfinished,
/// because an applier failed, closes it rather than handing it back to the pool).
async fn read_copy(
    pool: &PgPool,
    mut after: Position,
    batch_size: i64,
    stop_after: Option<u64>,
    reader: &mut Reader<'_>,
) -> Result<(), sqlx::Error> {
    let batch_size = batch_size.clamp(1, i64::from(i32::MAX)) as usize;
    let mut conn = pool.acquire().await?.detach();
    loop {
        let limit = COPY_PAGE.min(stop_after.map_or(u64::MAX, |n| n.saturating_sub(reader.read)));
        if limit == 0 {
            break;
        }
        let mut page = log::copy_for_projections(&mut conn, after, limit as i64).await?;
        let mut batch = Vec::with_capacity(batch_size);
        let mut got = 0u64;
        while let Some(event) = page.next().await? {
            got += 1;
            after = event.position();
            batch.push(event);
            if batch.len() == batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                if !reader.dispatch(full).await {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() && !reader.dispatch(batch).await {
            return Ok(());
        }
        if got < limit {
            break;
        }
    }
    conn.close().await
}

/// The SQLite reader: keyset pages of `batch_size` with [`log::read_for_projections`].
async fn read_pages(
    live: &Db,
    mut after: Position,
    batch_size: i64,
    stop_after: Option<u64>,
    reader: &mut Reader<'_>,
) -> Result<(), sqlx::Error> {
    while stop_after.is_none_or(|n| reader.read < n) {
        let events = log::read_for_projections(live, after, batch_size).await?;
        let Some(last) = events.last() else { break };
        after = last.position();
        if !reader.dispatch(events).await {
            break;
        }
    }
    Ok(())
}

/// Checks that a table name is a plain identifier (it is spliced into DDL).
fn ident(name: &str) -> Result<&str, ReplayError> {
    let plain = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if plain {
        Ok(name)
    } else {
        Err(ReplayError::Task(format!("table name {name:?} is not a plain identifier")))
    }
}

#[derive(sqlx::FromRow)]
struct Checkpoint {
    tx: i64,
    pos: i64,
}

impl From<Checkpoint> for Position {
    fn from(c: Checkpoint) -> Position {
        Position { tx: c.tx, pos: c.pos }
    }
}

/// Where rebuilds in progress live: the `shenfen_rebuild` schema or the SQLite sidecar.
enum Sidecar {
    Postgres {
        live: PgPool,
        /// The schema the live tables are in (the first of the live search path).
        schema: String,
        rebuild: PgPool,
        /// Holds the advisory lock that makes this the only rebuild.
        lock: sqlx::PgConnection,
    },
    Sqlite {
        live: SqlitePool,
        rebuild: SqlitePool,
        path: PathBuf,
    },
}

const LOCK_KEY: &str = "shenfen-replay rebuild";

impl Sidecar {
    async fn open(live: &Db) -> Result<Sidecar, ReplayError> {
        match live {
            Db::Postgres(pool) => Self::open_postgres(pool).await,
            Db::Sqlite(pool) => Self::open_sqlite(pool).await,
        }
    }

    async fn open_postgres(live: &PgPool) -> Result<Sidecar, ReplayError> {
        let options = (*live.connect_options()).clone();
        let mut lock = sqlx::PgConnection::connect_with(&options).await?;
        let (locked,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1))").bind(LOCK_KEY).fetch_one(&mut lock).await?;
        if !locked {
            return Err(ReplayError::RebuildLocked);
        }
        let (schema,): (String,) = sqlx::query_as("SELECT current_schema()").fetch_one(live).await?;
        ident(&schema)?;
        live.execute(format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}").as_str()).await?;
        live.execute(
            format!(
                "CREATE UNLOGGED TABLE IF NOT EXISTS {SCHEMA}.projection_checkpoints
                   (LIKE {schema}.projection_checkpoints INCLUDING ALL)"
            )
            .as_str(),
        )
        .await?;
        let setup = format!("SET search_path TO {SCHEMA}, {schema}; SET synchronous_commit TO off");
        let rebuild = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(600))
            .after_connect(move |conn, _| {
                let setup = setup.clone();
                Box::pin(async move {
                    conn.execute(setup.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Sidecar::Postgres { live: live.clone(), schema, rebuild, lock })
    }

    async fn open_sqlite(live: &SqlitePool) -> Result<Sidecar, ReplayError> {
        let live_path = live.connect_options().get_filename().to_path_buf();
        let mut path = live_path.clone().into_os_string();
        path.push(".rebuild");
        let path = PathBuf::from(path);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        let attach = live_path.to_string_lossy().into_owned();
        let rebuild = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(600))
            .after_connect(move |conn, _| {
                let attach = attach.clone();
                Box::pin(async move {
                    sqlx::query("ATTACH DATABASE $1 AS live").bind(attach).execute(conn).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let exists: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = 'projection_checkpoints'",
        )
        .fetch_optional(&rebuild)
        .await?;
        if exists.is_none() {
            let (ddl,): (String,) = sqlx::query_as(
                "SELECT sql FROM live.sqlite_master WHERE type = 'table' AND name = 'projection_checkpoints'",
            )
            .fetch_one(&rebuild)
            .await?;
            rebuild.execute(ddl.as_str()).await?;
        }
        Ok(Sidecar::Sqlite { live: live.clone(), rebuild, path })
    }

    /// The rebuild side as a [`Db`], for the projections and the runner.
    fn db(&self) -> Db {
        match self {
            Sidecar::Postgres { rebuild, .. } => Db::Postgres(rebuild.clone()),
            Sidecar::Sqlite { rebuild, .. } => Db::Sqlite(rebuild.clone()),
        }
    }

    /// Makes fresh tables for `projection` unless a rebuild of it is in progress (and not
    /// `restart`); returns the checkpoint to continue from.
    async fn prepare(&self, projection: &dyn Projection, restart: bool) -> Result<Position, ReplayError> {
        let name = projection.name();
        let tables = projection.tables();
        let db = self.db();
        let checkpoint: Option<Checkpoint> = fetch_optional!(
            &db,
            Checkpoint,
            "SELECT transaction_id AS tx, position AS pos FROM projection_checkpoints WHERE projection = $1",
            name
        )?;
        let present: Vec<(String,)> = match self {
            Sidecar::Postgres { live, .. } => {
                let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
                sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2)")
                    .bind(SCHEMA)
                    .bind(names)
                    .fetch_all(live)
                    .await?
            }
            Sidecar::Sqlite { rebuild, .. } => {
                let mut found = Vec::new();
                for &t in tables {
                    found.extend(
                        sqlx::query_as::<_, (String,)>(
                            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = $1",
                        )
                        .bind(t)
                        .fetch_optional(rebuild)
                        .await?,
                    );
                }
                found
            }
        };
        if let Some(at) = checkpoint {
            if !restart && present.len() == tables.len() {
                return Ok(at.into());
            }
        }
        match self {
            Sidecar::Postgres { live, schema, .. } => {
                let mut tx = live.begin().await?;
                sqlx::query(&format!("DELETE FROM {SCHEMA}.projection_checkpoints WHERE projection = $1"))
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                for t in tables {
                    tx.execute(format!("DROP TABLE IF EXISTS {SCHEMA}.{t}").as_str()).await?;
                    tx.execute(
                        format!("CREATE UNLOGGED TABLE {SCHEMA}.{t} (LIKE {schema}.{t} INCLUDING ALL)").as_str(),
                    )
                    .await?;
                }
                sqlx::query(&format!("INSERT INTO {SCHEMA}.projection_checkpoints (projection) VALUES ($1)"))
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Sidecar::Sqlite { rebuild, .. } => {
                let mut tx = rebuild.begin().await?;
                sqlx::query("DELETE FROM main.projection_checkpoints WHERE projection = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                for &t in tables {
                    tx.execute(format!("DROP TABLE IF EXISTS main.{t}").as_str()).await?;
                    // The table first, then its indexes (automatic ones have no SQL).
                    let ddl: Vec<(String,)> = sqlx::query_as(
                        "SELECT sql FROM live.sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL
                          ORDER BY type <> 'table', name",
                    )
                    .bind(t)
                    .fetch_all(&mut *tx)
                    .await?;
                    for (sql,) in ddl {
                        tx.execute(sql.as_str()).await?;
                    }
                }
                sqlx::query("INSERT INTO main.projection_checkpoints (projection) VALUES ($1)")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(Position::default())
    }

    /// Swaps the rebuilt tables of `projection` in, with its checkpoint; returns that
    /// checkpoint.
    async fn swap(&self, projection: &dyn Projection) -> Result<Position, ReplayError> {
        let name = projection.name();
        let at: Position = fetch_optional!(
            &self.db(),
            Checkpoint,
            "SELECT transaction_id AS tx, position AS pos FROM projection_checkpoints WHERE projection = $1",
            name
        )?
        .map(Position::from)
        .unwrap_or_default();
        match self {
            Sidecar::Postgres { live, schema, .. } => swap_postgres(live, schema, projection, at).await?,
            Sidecar::Sqlite { live, rebuild, path } => {
                swap_sqlite(live, path, projection, at).await?;
                let mut tx = rebuild.begin().await?;
                sqlx::query("DELETE FROM main.projection_checkpoints WHERE projection = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                for t in projection.tables() {
                    tx.execute(format!("DROP TABLE IF EXISTS main.{t}").as_str()).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(at)
    }

    /// Closes the rebuild side; removes the schema or the sidecar when no rebuild is left in
    /// it (and `success`: after an error, whatever is there is kept for a resume).
    async fn finish(self, success: bool) -> Result<(), ReplayError> {
        match self {
            Sidecar::Postgres { live, rebuild, mut lock, .. } => {
                rebuild.close().await;
                if success {
                    let left: Vec<(String,)> =
                        sqlx::query_as(&format!("SELECT projection FROM {SCHEMA}.projection_checkpoints"))
                            .fetch_all(&live)
                            .await?;
                    if left.is_empty() {
                        live.execute(format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE").as_str()).await?;
                    }
                }
                // Released before the connection closes: the server ends the session (and
                // would release the lock) only after the close has returned, so the next
                // rebuild could still find it taken.
                sqlx::query("SELECT pg_advisory_unlock(hashtext($1))").bind(LOCK_KEY).execute(&mut lock).await?;
                lock.close().await?;
            }
            Sidecar::Sqlite { rebuild, path, .. } => {
                let left: Vec<(String,)> = if success {
                    sqlx::query_as("SELECT projection FROM main.projection_checkpoints").fetch_all(&rebuild).await?
                } else {
                    vec![(String::new(),)]
                };
                rebuild.close().await;
                if left.is_empty() {
                    for suffix in ["", "-wal", "-shm"] {
                        let mut file = path.clone().into_os_string();
                        file.push(suffix);
                        match std::fs::remove_file(&file) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The part of an index definition that does not name it or its table: whether it is unique,
/// and what follows `USING`.
fn index_shape(definition: &str) -> (bool, &str) {
    let unique = definition.starts_with("CREATE UNIQUE INDEX");
    let rest = definition.split_once(" USING ").map_or(definition, |(_, rest)| rest);
    (unique, rest)
}

async fn swap_postgres(
    live: &PgPool,
    schema: &str,
    projection: &dyn Projection,
    at: Position,
) -> Result<(), ReplayError> {
    let mut tx = live.begin().await?;
    // Waits for a running server's batch on these tables, but not forever.
    tx.execute("SET LOCAL lock_timeout = '60s'").await?;
    for &t in projection.tables() {
        const INDEXES: &str = "SELECT indexname::text, indexdef FROM pg_indexes
                                WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname";
        let old: Vec<(String, String)> = sqlx::query_as(INDEXES).bind(schema).bind(t).fetch_all(&mut *tx).await?;
        let mut new: Vec<(String, String)> = sqlx::query_as(INDEXES).bind(SCHEMA).bind(t).fetch_all(&mut *tx).await?;
        // Written to the WAL now, once, before the live table is locked.
        tx.execute(format!("ALTER TABLE {SCHEMA}.{t} SET LOGGED").as_str()).await?;
        tx.execute(format!("DROP TABLE {schema}.{t}").as_str()).await?;
        tx.execute(format!("ALTER TABLE {SCHEMA}.{t} SET SCHEMA {schema}").as_str()).await?;
        // `LIKE … INCLUDING ALL` names indexes after their columns; give them their migration
        // names back, so that later migrations find them.
        for (old_name, old_def) in &old {
            let Some(i) = new.iter().position(|(_, def)| index_shape(def) == index_shape(old_def)) else { continue };
            let (new_name, _) = new.remove(i);
            if new_name != *old_name {
                tx.execute(format!("ALTER INDEX {schema}.\"{new_name}\" RENAME TO \"{old_name}\"").as_str()).await?;
            }
        }
    }
    sqlx::query(&format!(
        "INSERT INTO {schema}.projection_checkpoints (projection, transaction_id, position, updated_at)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (projection) DO UPDATE SET transaction_id = excluded.transaction_id,
             position = excluded.position, updated_at = excluded.updated_at"
    ))
    .bind(projection.name())
    .bind(at.tx)
    .bind(at.pos)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("DELETE FROM {SCHEMA}.projection_checkpoints WHERE projection = $1"))
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn swap_sqlite(
    live: &SqlitePool,
    sidecar: &std::path::Path,
    projection: &dyn Projection,
    at: Position,
) -> Result<(), ReplayError> {
    let mut conn = live.acquire().await?;
    sqlx::query("ATTACH DATABASE $1 AS rebuild")
        .bind(sidecar.to_string_lossy().into_owned())
        .execute(&mut *conn)
        .await?;
    let swapped = async {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for &t in projection.tables() {
            let columns: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_table_info($1, 'rebuild') ORDER BY cid")
                    .bind(t)
                    .fetch_all(&mut *tx)
                    .await?;
            let columns = columns.into_iter().map(|(c,)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
            tx.execute(format!("DELETE FROM main.{t}").as_str()).await?;
            tx.execute(format!("INSERT INTO main.{t} ({columns}) SELECT {columns} FROM rebuild.{t}").as_str()).await?;
        }
        sqlx::query(
            "INSERT INTO main.projection_checkpoints (projection, transaction_id, position, updated_at)
             VALUES ($1, $2, $3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             ON CONFLICT (projection) DO UPDATE SET transaction_id = excluded.transaction_id,
                 position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(projection.name())
        .bind(at.tx)
        .bind(at.pos)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
    .await;
    // Never hand the connection back to the pool with the sidecar attached.
    let detached = sqlx::query("DETACH DATABASE rebuild").execute(&mut *conn).await;
    if detached.is_err() {
        let _ = conn.close().await;
    }
    swapped?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_shapes_ignore_the_index_and_table_names() {
        let old = "CREATE INDEX review_queue_pending ON public.review_queue USING btree (due_by, submitted_at) WHERE (status = 'pending'::text)";
        let new = "CREATE INDEX review_queue_due_by_submitted_at_idx ON shenfen_rebuild.review_queue USING btree (due_by, submitted_at) WHERE (status = 'pending'::text)";
        assert_eq!(index_shape(old), index_shape(new));
        let unique = "CREATE UNIQUE INDEX x ON public.review_queue USING btree (due_by, submitted_at) WHERE (status = 'pending'::text)";
        assert_ne!(index_shape(old), index_shape(unique));
    }

    #[test]
    fn only_plain_identifiers_are_spliced_into_ddl() {
        assert!(ident("account_view").is_ok());
        assert!(ident("analytics_reviews2").is_ok());
        assert!(ident("x; DROP TABLE events").is_err());
        assert!(ident("").is_err());
        assert!(ident("1abc").is_err());
    }

    #[test]
    fn an_unknown_projection_is_refused_with_the_known_names() {
        let err = select(Some("nope")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("account_view"), "{err}");
        assert_eq!(select(Some("account_view")).map(|p| p.len()).unwrap_or_default(), 1);
    }
}
