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
//!   It decodes the payload and metadata only of the event kinds some projection being rebuilt
//!   wants ([`log::CopyPage::decoding_only`]); the others keep their position and kind, which
//!   is all a projection that skips them needs.
//!   SQLite keeps the keyset-paginated [`log::read_for_projections`].
//! - **Opening** personal data is a stage of its own between the reader and the appliers, so
//!   that it runs beside the decoding of the next batch: the subject keys a batch needs are
//!   read with one query ([`Keyring::prefetch`]), then its sealed members are opened.
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
//! `shenfen-replay-bench` measures the rebuild against the raw `COPY` rate of the same rows;
//! its figures are in the README ("Replay and aggregate load").

use shenfen_projections::pii::Keyring;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use shenfen_projections::checkpoint;
use shenfen_projections::db::Db;
use shenfen_projections::fetch_optional;
use shenfen_projections::log::{self, Position, StoredEvent};
use shenfen_projections::runner::{self, BulkApply, Projection};
use tokio::sync::mpsc;

use crate::progress::Progress;
use crate::ReplayError;

mod postgres;
mod sidecar;
mod sqlite;

use postgres::read_copy;
use sidecar::{ident, Sidecar};
use sqlite::read_pages;

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
    /// Opens personal data for the read models (from the server's key file); without it the
    /// read models get the sealed text.
    pub keyring: Option<Arc<Keyring>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            // 5,000 rather than 2,000: on the seeded log 10 % faster (fewer round trips per
            // event), at about 60 MiB more at peak.
            batch_size: 5000,
            restart: false,
            stop_after: None,
            cache_rows: 200_000,
            flush_every: Duration::from_secs(10),
            keyring: None,
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
    let (events_read, read_time, mut appliers) = fan_out(live, from, appliers, options, &read_bar).await?;
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
            runner::catch_up(
                &rebuild_db,
                options.keyring.clone(),
                applier.projection.clone(),
                options.batch_size,
                |n| {
                    caught = n;
                    bar.set_position(base + n);
                },
            )
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
pub(super) struct Applier {
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
        let t = Instant::now();
        // The runner's batch step: the events and the checkpoint in one transaction.
        if !checkpoint::apply_batch(&self.db, self.projection.as_ref(), self.stored, last, &wanted).await? {
            return Err(ReplayError::ConcurrentRebuild(self.projection.name().to_string()));
        }
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
        if !checkpoint::advance_in(&mut tx, name, from, to).await? {
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
    options: &Options,
    bar: &ProgressBar,
) -> Result<(u64, Duration, Vec<Applier>), ReplayError> {
    let (batch_size, stop_after) = (options.batch_size, options.stop_after);
    // An event no projection here wants is only counted past: its JSON is not decoded.
    let projections: Vec<Arc<dyn Projection>> = appliers.iter().map(|a| a.projection.clone()).collect();
    let decode: log::Decode = Arc::new(move |kind| projections.iter().any(|p| p.wants(kind)));
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
    // Opening personal data is a stage of its own, so that it runs beside the reading and
    // decoding of the next batch (on another core).
    let (opened, to_open) = mpsc::channel::<Vec<StoredEvent>>(2);
    let opener = tokio::spawn(open_and_hand_out(to_open, senders, options.keyring.clone()));
    let mut reader = Reader { opener: opened, bar, read: 0, waited: Duration::ZERO };
    let t = Instant::now();
    let read_error = match live {
        Db::Postgres(pool) => read_copy(pool, from, batch_size, stop_after, decode, &mut reader).await,
        Db::Sqlite(_) => read_pages(live, from, batch_size, stop_after, &mut reader).await,
    }
    .err();
    let read_time = t.elapsed().saturating_sub(reader.waited);
    let read = reader.read;
    // Closing the channels ends the opener, and then the appliers.
    drop(reader);
    let mut first_error = match opener.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(e) => Some(ReplayError::Task(e.to_string())),
    };
    let mut done = Vec::with_capacity(tasks.len());
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

/// The stage between the reader and the appliers: opens each batch's personal data (the keys
/// of a batch read with one query) and hands the batch to every applier. Ends when the reader
/// closes its channel, or an applier has stopped.
async fn open_and_hand_out(
    mut batches: mpsc::Receiver<Vec<StoredEvent>>,
    appliers: Vec<mpsc::Sender<Arc<Vec<StoredEvent>>>>,
    keyring: Option<Arc<Keyring>>,
) -> Result<(), ReplayError> {
    while let Some(mut events) = batches.recv().await {
        if let Some(keyring) = &keyring {
            keyring.open_events(&mut events).await.map_err(|e| ReplayError::Keys(e.to_string()))?;
        }
        let batch = Arc::new(events);
        for applier in &appliers {
            if applier.send(batch.clone()).await.is_err() {
                // The applier failed; its error is reported by its task.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The shared reader's side of [`fan_out`].
pub(super) struct Reader<'a> {
    opener: mpsc::Sender<Vec<StoredEvent>>,
    bar: &'a ProgressBar,
    /// Events read.
    read: u64,
    /// Time spent waiting for the next stages to take a batch.
    waited: Duration,
}

impl Reader<'_> {
    /// Hands `events` on (to be opened, then applied); false when a later stage has stopped.
    async fn dispatch(&mut self, events: Vec<StoredEvent>) -> bool {
        self.read += events.len() as u64;
        self.bar.inc(events.len() as u64);
        let t = Instant::now();
        let delivered = self.opener.send(events).await.is_ok();
        self.waited += t.elapsed();
        delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_projection_is_refused_with_the_known_names() {
        let err = select(Some("nope")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("account_view"), "{err}");
        assert_eq!(select(Some("account_view")).map(|p| p.len()).unwrap_or_default(), 1);
    }
}
