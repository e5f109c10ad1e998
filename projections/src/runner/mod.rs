//! The catch-up projection runner: the one mechanism that feeds every read model.
//!
//! Each projection reads the log in global order from its own checkpoint, applies a batch and
//! moves its checkpoint in the same transaction, with a compare-and-set on the old checkpoint,
//! so a batch is applied exactly once even if two runners raced. On PostgreSQL a runner holds
//! a session advisory lock per projection on a dedicated connection: exactly one process runs
//! a projection at a time, and when that process dies its connection closes, the lock is
//! released, and another process takes over. A runner wakes on commits in this process of
//! events it wants ([`Commits`]), on `NOTIFY shenfen_events` from other processes, and
//! otherwise polls; it is woken with a target position and keeps reading until it has passed
//! it (on PostgreSQL an event becomes readable only once every older transaction has ended,
//! which can be a moment after its own commit).

mod leadership;
mod progress;
mod tail;
mod task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

pub use progress::Progress;
use tail::Tail;
use task::Task;

use crate::checkpoint;
use crate::commits::Commits;
use crate::db::{Db, DbTx};
use crate::log::{EventKind, Position, StoredEvent};

/// A read model fed from the log.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Its stable name (the checkpoint key).
    fn name(&self) -> &'static str;
    /// Applies one event inside the batch transaction.
    async fn apply(&self, tx: &mut DbTx, event: &StoredEvent) -> Result<(), ProjectionError>;

    /// Applies a batch of wanted events, in order, inside the batch transaction. The default
    /// applies them one by one; a read model may apply them set-wise (same resulting rows).
    async fn apply_batch(&self, tx: &mut DbTx, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(tx, event).await?;
        }
        Ok(())
    }

    /// Whether this projection does anything with an event of this kind (judged without
    /// decoding, before the event is even written: a commit wakes only the runners that want
    /// one of its events). Events it does not want only move its position forward, in memory,
    /// and the checkpoint row is written at most every [`CHECKPOINT_FLUSH`](task::CHECKPOINT_FLUSH).
    fn wants(&self, _event: EventKind<'_>) -> bool {
        true
    }

    /// Whether a commit of an event it wants wakes it at once (the default), or it only polls
    /// (a projection for which a second's delay costs nothing and a wake per commit would).
    fn wakes_on_commit(&self) -> bool {
        true
    }

    /// The tables this read model owns (rebuilt into fresh copies by the replay tool).
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether this is a process manager: its effects are commands on aggregates, made by
    /// [`handle`](Self::handle) outside the batch transaction. They must be idempotent,
    /// since a crash between a command and the checkpoint replays the event.
    fn is_process_manager(&self) -> bool {
        false
    }

    /// Reacts to one event (process managers only).
    async fn handle(&self, _event: &StoredEvent) -> Result<(), ProjectionError> {
        Ok(())
    }

    /// A write-back applier for a rebuild into tables that nobody else writes (the replay
    /// tool's fresh copies), holding about `max_rows` rows in memory; `None` (the default):
    /// the rebuild applies batches with [`apply_batch`](Self::apply_batch). The live runner
    /// never calls this.
    fn bulk(&self, _max_rows: usize) -> Option<Box<dyn BulkApply>> {
        None
    }
}

/// A read model's rebuild mode ([`Projection::bulk`]): it folds batches into rows kept in
/// memory across batches and writes the changed ones only when asked, in the transaction that
/// moves the checkpoint, so a row touched by many events is written once per flush.
///
/// The caller guarantees that it is the only writer of the tables: a row that is not in memory
/// is read from its table, which then holds exactly what the last flush wrote. Once a flush's
/// transaction has committed, the caller calls [`flushed`](Self::flushed); if it fails, the
/// caller drops this applier (its rows are then ahead of the tables).
#[async_trait]
pub trait BulkApply: Send {
    /// Folds a batch of wanted events, in order, into the rows in memory, reading the rows it
    /// does not hold through `db`.
    async fn apply(&mut self, db: &Db, events: &[&StoredEvent]) -> Result<(), ProjectionError>;

    /// How many rows in memory have changes not yet written.
    fn dirty(&self) -> usize;

    /// Writes every changed row inside `tx` (the transaction that moves the checkpoint).
    async fn flush(&mut self, tx: &mut DbTx) -> Result<(), ProjectionError>;

    /// The flush's transaction committed: the rows written are clean now (and may be evicted).
    fn flushed(&mut self);
}

/// A projection failed to apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("command failed: {0}")]
    Command(String),
    #[error("undecodable event {aggregate_type}/{aggregate_id}#{sequence}: {message}")]
    Decode { aggregate_type: String, aggregate_id: String, sequence: i64, position: Position, message: String },
    /// A record protected by the chain key does not hold (see [`seal`](crate::seal)).
    #[error("integrity: {0}")]
    Tampered(String),
}

impl ProjectionError {
    /// A decoding error for `event`.
    pub fn decode(event: &StoredEvent, err: impl std::fmt::Display) -> Self {
        ProjectionError::Decode {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            position: event.position(),
            message: err.to_string(),
        }
    }

    /// The event it failed on, when known.
    pub fn position(&self) -> Option<Position> {
        match self {
            ProjectionError::Decode { position, .. } => Some(*position),
            _ => None,
        }
    }

    /// Whether trying again cannot help (the same event will fail the same way).
    pub fn is_permanent(&self) -> bool {
        matches!(self, ProjectionError::Decode { .. } | ProjectionError::Tampered(_))
    }

    /// The error as logs and operators may see it: every double-quoted value (which may come
    /// from a payload and hold personal data) replaced by `"…"`.
    pub fn public(&self) -> String {
        redact_quoted(&self.to_string())
    }
}

/// `text` with the content of every double-quoted span replaced by `…`.
pub fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '"' {
            if inside {
                out.push('…');
            }
            out.push(c);
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    if inside {
        out.push('…');
    }
    out
}

/// Tuning of the runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub batch_size: i64,
    pub poll_interval: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig { batch_size: 500, poll_interval: Duration::from_millis(500) }
    }
}

/// Starts one task per projection (and, on PostgreSQL, a LISTEN task) and returns their
/// progress handle. The tasks are woken through `commits`, which the process's command buses
/// append through.
pub async fn start(
    db: &Db,
    projections: Vec<Arc<dyn Projection>>,
    commits: &Arc<Commits>,
    config: RunnerConfig,
) -> Result<Progress, sqlx::Error> {
    let mut local = HashMap::new();
    for projection in &projections {
        checkpoint::ensure(db, projection.name()).await?;
    }
    if let Db::Postgres(pool) = db {
        let pool = pool.clone();
        let commits = commits.clone();
        tokio::spawn(async move { crate::notify::listen(pool, commits).await });
    }
    let tail = Arc::new(Tail::new(Some(commits.counter()), Some(commits.keyring().clone())));
    for projection in projections {
        let start = checkpoint::read(db, projection.name()).await?;
        let (progress_tx, progress_rx) = watch::channel(start);
        local.insert(projection.name(), progress_rx);
        let wake = commits.register(projection.clone(), start);
        let task =
            Task { db: db.clone(), projection, progress: progress_tx, config: config.clone(), tail: tail.clone() };
        tokio::spawn(async move { task.run(wake).await });
    }
    Ok(Progress { db: db.clone(), commits: commits.clone(), local: Arc::new(local) })
}

/// Runs one projection on `db` until it has applied every event visible now, without
/// leadership (the caller makes sure it is the only runner, e.g. the replay tool on its own
/// rebuild tables). `progress` is called after each batch with the events applied so far.
/// Returns the final checkpoint. With `keyring`, projections read personal data opened;
/// without, as stored (sealed).
pub async fn catch_up(
    db: &Db,
    keyring: Option<Arc<crate::pii::Keyring>>,
    projection: Arc<dyn Projection>,
    batch_size: i64,
    mut progress: impl FnMut(u64),
) -> Result<Position, ProjectionError> {
    checkpoint::ensure(db, projection.name()).await?;
    let (tx, _) = watch::channel(Position::default());
    let task = Task {
        db: db.clone(),
        projection: projection.clone(),
        progress: tx,
        config: RunnerConfig { batch_size, poll_interval: Duration::from_millis(100) },
        tail: Arc::new(Tail::new(None, keyring)),
    };
    let mut applied = 0u64;
    let mut cursor = None;
    loop {
        let n = task.step(&mut cursor, Position::default()).await?;
        if n == 0 {
            task.flush(&mut cursor, true).await?;
            return Ok(checkpoint::read(db, projection.name()).await?);
        }
        applied += n as u64;
        progress(applied);
    }
}
