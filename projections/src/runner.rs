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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Connection;
use tokio::sync::watch;

use crate::commits::{parse_payload, process_token, Commits, Notice, HEARTBEAT};
use crate::db::{Db, DbTx, OwnConnection};
use crate::log::{self, EventKind, Position, StoredEvent};

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
    /// and the checkpoint row is written at most every [`CHECKPOINT_FLUSH`].
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

/// A projection that stopped at one event: where, since when, why (see [`stuck`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stuck {
    pub projection: String,
    pub since: DateTime<Utc>,
    /// The event it fails on (`exact`), or, when the error names none, the position after
    /// which the batch that fails starts.
    pub tx: i64,
    pub pos: i64,
    pub exact: bool,
    pub error: String,
}

/// The projections that are stuck now.
pub async fn stuck(db: &Db) -> Result<Vec<Stuck>, sqlx::Error> {
    crate::fetch_all!(
        db,
        Stuck,
        "SELECT projection, stuck_since AS since, stuck_tx AS tx, stuck_pos AS pos, stuck_exact AS exact,
                stuck_error AS error
           FROM projection_checkpoints WHERE stuck_since IS NOT NULL ORDER BY projection"
    )
}

/// A failing projection: where it fails, since when, how often, when it was last reported.
struct Trouble {
    at: Position,
    since: Instant,
    failures: u32,
    permanent: bool,
    reported: Option<Instant>,
}

/// How long a projection whose errors may pass (the database unreachable, say) fails at one
/// place before it counts as stuck. An error that cannot pass counts at once.
const STUCK_AFTER: Duration = Duration::from_secs(30);
/// How often a stuck projection is logged again.
const STUCK_REPORT_EVERY: Duration = Duration::from_secs(300);

/// How long a position reached only through unwanted events may stay unwritten.
pub const CHECKPOINT_FLUSH: Duration = Duration::from_secs(1);

/// Where a runner stands: `stored` is the checkpoint row, `read` how far it has read
/// (ahead of `stored` only by events it does not want).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    stored: Position,
    read: Position,
    since: Instant,
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

/// Handle on running projections: their progress, for read-your-writes waits.
#[derive(Clone)]
pub struct Progress {
    db: Db,
    commits: Arc<Commits>,
    local: Arc<HashMap<&'static str, watch::Receiver<Position>>>,
}

impl Progress {
    /// Waits until every projection in `names` has applied `position`, at most `timeout`.
    /// Returns whether they caught up.
    pub async fn wait_for(&self, names: &[&'static str], position: Position, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // The runners here (those that lead) may not want the events at `position`: make them
        // all read that far anyway, at once.
        for name in names {
            self.commits.chase(name, position);
        }
        for name in names {
            if !self.wait_one(name, position, deadline).await {
                metrics::counter!("shenfen_read_your_writes_timeouts_total", "projection" => *name).increment(1);
                return false;
            }
        }
        true
    }

    async fn wait_one(&self, name: &'static str, position: Position, deadline: Instant) -> bool {
        let mut local = self.local.get(name).cloned();
        loop {
            if let Some(rx) = &local {
                if *rx.borrow() >= position {
                    return true;
                }
            }
            // The projection may run in another process: its checkpoint row tells.
            if checkpoint(&self.db, name).await.is_ok_and(|c| c >= position) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let nap = (deadline - now).min(Duration::from_millis(25));
            match &mut local {
                Some(rx) => {
                    if let Ok(Err(_)) = tokio::time::timeout(nap, rx.changed()).await {
                        local = None;
                    }
                }
                None => tokio::time::sleep(nap).await,
            }
        }
    }
}

/// Most events counted by [`lag`]; a projection further behind reports this.
pub const LAG_CAP: i64 = 100_000;

/// How many events a projection has still to read: those readable after its checkpoint, in the
/// order it reads them (up to [`LAG_CAP`]). Zero means caught up with everything committed.
pub async fn lag(db: &Db, name: &str) -> Result<i64, sqlx::Error> {
    log::unread(db, checkpoint(db, name).await?, LAG_CAP).await
}

/// The checkpoint of one projection.
pub async fn checkpoint(db: &Db, name: &str) -> Result<Position, sqlx::Error> {
    let row = crate::fetch_optional!(
        db,
        Position,
        "SELECT transaction_id AS tx, position AS pos FROM projection_checkpoints WHERE projection = $1",
        name
    )?;
    Ok(row.unwrap_or_default())
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
        crate::exec!(
            db,
            "INSERT INTO projection_checkpoints (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING",
            projection.name()
        )?;
    }
    if let Db::Postgres(pool) = db {
        let pool = pool.clone();
        let commits = commits.clone();
        tokio::spawn(async move { listen(pool, commits).await });
    }
    let tail = Arc::new(Tail::new(Some(commits.counter())));
    for projection in projections {
        let start = checkpoint(db, projection.name()).await?;
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
/// Returns the final checkpoint.
pub async fn catch_up(
    db: &Db,
    projection: Arc<dyn Projection>,
    batch_size: i64,
    mut progress: impl FnMut(u64),
) -> Result<Position, ProjectionError> {
    crate::exec!(
        db,
        "INSERT INTO projection_checkpoints (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING",
        projection.name()
    )?;
    let (tx, _) = watch::channel(Position::default());
    let task = Task {
        db: db.clone(),
        projection: projection.clone(),
        progress: tx,
        config: RunnerConfig { batch_size, poll_interval: Duration::from_millis(100) },
        tail: Arc::new(Tail::new(None)),
    };
    let mut applied = 0u64;
    let mut cursor = None;
    loop {
        let n = task.step(&mut cursor, Position::default()).await?;
        if n == 0 {
            task.flush(&mut cursor, true).await?;
            return Ok(checkpoint(db, projection.name()).await?);
        }
        applied += n as u64;
        progress(applied);
    }
}

/// Wakes this process's runners whenever another process commits events (this process's own
/// commits wake them directly), and keeps [`Peers`](crate::commits::Peers) up to date: the
/// listener greets the others when it connects (they answer at once), announces this process
/// every [`HEARTBEAT`], and any NOTIFY from another process shows that one is there.
async fn listen(pool: sqlx::PgPool, commits: Arc<Commits>) {
    let peers = commits.peers().clone();
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if listener.listen("shenfen_events").await.is_ok() {
                    peers.listening(Instant::now());
                    announce(&pool, Notice::Hello).await;
                    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
                    loop {
                        tokio::select! {
                            _ = heartbeat.tick() => announce(&pool, Notice::Here).await,
                            // `try_recv` (not `recv`, which reconnects silently): a lost
                            // connection may have lost notices, so it ends this listener.
                            received = listener.try_recv() => {
                                let Ok(Some(notification)) = received else { break };
                                let (token, notice) = parse_payload(notification.payload());
                                if token == process_token() {
                                    continue;
                                }
                                peers.heard(Instant::now());
                                let kind = match notice {
                                    Some(Notice::Here) => "here",
                                    Some(Notice::Hello) => {
                                        announce(&pool, Notice::Here).await;
                                        "hello"
                                    }
                                    Some(Notice::Committed(at)) => {
                                        commits.foreign(Some(at));
                                        "committed"
                                    }
                                    None => {
                                        commits.foreign(None);
                                        "committed"
                                    }
                                };
                                metrics::counter!("shenfen_peer_notices_total", "notice" => kind).increment(1);
                            }
                        }
                    }
                }
                peers.deaf();
                // Commits announced while the connection was down are lost: catch up now.
                commits.foreign(None);
                tracing::warn!("LISTEN connection lost; reconnecting");
            }
            Err(err) => tracing::warn!(error = %err, "LISTEN connection failed; projections fall back to polling"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Sends `notice` on `shenfen_events`; a failure only costs the others a poll.
async fn announce(pool: &sqlx::PgPool, notice: Notice) {
    if let Err(err) = crate::commits::announce(pool, notice).await {
        tracing::debug!(error = %err, "NOTIFY failed");
    }
}

struct Task {
    db: Db,
    projection: Arc<dyn Projection>,
    progress: watch::Sender<Position>,
    config: RunnerConfig,
    tail: Arc<Tail>,
}

/// The tail of the log as recently read, shared by the runners of one process: a window of
/// consecutive events (in global order) that every runner positioned inside it reads from
/// memory. Runners that keep up move through the same events, so one query per new stretch
/// of the log serves them all, instead of one per runner.
///
/// A runner at the window's end extends it with one query for what follows (so consecutive
/// reads concatenate to the log in order). When no commit was seen since the last extension
/// (the `written` counter) and it is less than [`TAIL_FRESHNESS`] old, the runner is told there
/// is nothing new without a query; the age limit matters because on PostgreSQL events can
/// become readable without a commit of ours, when an older transaction ends and the visibility
/// horizon moves. A runner outside the window (behind it, e.g. after a restart) reads the
/// database directly, and its read becomes the window when it reaches the end of the log.
struct Tail {
    window: tokio::sync::Mutex<Shared>,
    written: Option<watch::Receiver<u64>>,
}

/// What the tail's lock guards: the window, and on PostgreSQL the connection that reads it
/// (its own: see [`OwnConnection`]).
#[derive(Default)]
struct Shared {
    window: Option<Window>,
    conn: Option<OwnConnection>,
}

impl Shared {
    async fn read(&mut self, db: &Db, after: Position, limit: i64) -> Result<Vec<Arc<StoredEvent>>, sqlx::Error> {
        let events = match db {
            Db::Postgres(pool) => {
                let conn = self.conn.get_or_insert_with(|| OwnConnection::new(pool.clone()));
                let read = log::read_for_projections_pg(conn.get().await?, after, limit).await;
                conn.checked(read)?
            }
            Db::Sqlite(_) => log::read_for_projections(db, after, limit).await?,
        };
        Ok(events.into_iter().map(Arc::new).collect())
    }
}

struct Window {
    /// Every event after `start` up to the last of `events` is in `events`.
    start: Position,
    events: std::collections::VecDeque<Arc<StoredEvent>>,
    version: u64,
    read_at: Instant,
}

impl Window {
    fn end(&self) -> Position {
        self.events.back().map_or(self.start, |e| e.position())
    }

    fn covers(&self, at: Position) -> bool {
        self.start <= at && at <= self.end()
    }

    /// Up to `limit` events after `at` (which the window covers).
    fn after(&self, at: Position, limit: usize) -> Vec<Arc<StoredEvent>> {
        let from = self.events.partition_point(|e| e.position() <= at);
        self.events.range(from..).take(limit).cloned().collect()
    }

    fn trim(&mut self) {
        while self.events.len() > TAIL_WINDOW {
            if let Some(dropped) = self.events.pop_front() {
                self.start = dropped.position();
            }
        }
    }
}

/// How long a busy runner waits after a wake before reading, so that events gather.
const COALESCE: Duration = Duration::from_millis(20);
/// How soon a runner behind its target reads again (its events are committed but not readable
/// yet, behind a transaction still running); doubled on each retry up to [`CHASE_RETRY_MAX`].
const CHASE_RETRY: Duration = Duration::from_millis(5);
const CHASE_RETRY_MAX: Duration = Duration::from_millis(160);
/// How long a runner keeps retrying while it does not move; then it reads only when woken or
/// when it polls.
const CHASE_LIMIT: Duration = Duration::from_secs(10);

/// A runner behind its target and not moving: where it stands, since when, how often it tried.
#[derive(Debug, Clone, Copy)]
struct Chase {
    read: Position,
    since: Instant,
    retries: u32,
    gave_up: bool,
}

impl Chase {
    /// After a read that found nothing new: how soon to read again when the runner stands at
    /// `read`, short of its `target`; `None` when it has reached the target, or has not moved
    /// for [`CHASE_LIMIT`] (it then waits for its next wake or poll).
    fn retry(chase: &mut Option<Chase>, read: Option<Position>, target: Position, name: &str) -> Option<Duration> {
        let Some(read) = read.filter(|read| *read < target) else {
            *chase = None;
            return None;
        };
        let c = match chase {
            Some(c) if c.read == read => c,
            _ => chase.insert(Chase { read, since: Instant::now(), retries: 0, gave_up: false }),
        };
        if c.gave_up {
            return None;
        }
        if c.since.elapsed() >= CHASE_LIMIT {
            c.gave_up = true;
            tracing::warn!(
                projection = name,
                ?target,
                ?read,
                "committed events stay unreadable (a transaction is still open); reading on the next wake or poll"
            );
            return None;
        }
        let delay = CHASE_RETRY.saturating_mul(1 << c.retries.min(8)).min(CHASE_RETRY_MAX);
        c.retries += 1;
        Some(delay)
    }
}
/// How long after its last batch a runner counts as busy.
const COALESCE_WHILE_BUSY: Duration = Duration::from_secs(1);

/// How often a runner reports its lag.
const LAG_REPORT_EVERY: Duration = Duration::from_secs(5);

const TAIL_FRESHNESS: Duration = Duration::from_millis(50);
/// Most events kept in the shared window.
const TAIL_WINDOW: usize = 10_000;

impl Tail {
    fn new(written: Option<watch::Receiver<u64>>) -> Self {
        Tail { window: tokio::sync::Mutex::new(Shared::default()), written }
    }

    /// Up to `limit` events after `after`. A runner chasing `target` (a position committed but
    /// maybe not readable yet) is never told "nothing new" from memory while the window ends
    /// before it.
    async fn read_after(
        &self,
        db: &Db,
        after: Position,
        limit: i64,
        target: Position,
    ) -> Result<Vec<Arc<StoredEvent>>, sqlx::Error> {
        let Some(written) = &self.written else {
            return Ok(log::read_for_projections(db, after, limit).await?.into_iter().map(Arc::new).collect());
        };
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        let mut shared = self.window.lock().await;
        let version = *written.borrow();
        if let Some(window) = shared.window.as_ref().filter(|w| w.covers(after)) {
            let found = window.after(after, wanted);
            if !found.is_empty() {
                return Ok(found);
            }
            if window.version == version && window.read_at.elapsed() < TAIL_FRESHNESS && target <= window.end() {
                return Ok(Vec::new());
            }
            let read_at = Instant::now();
            let fresh = shared.read(db, after, limit).await?;
            if let Some(window) = shared.window.as_mut() {
                window.version = version;
                window.read_at = read_at;
                window.events.extend(fresh.iter().cloned());
                window.trim();
            }
            return Ok(fresh);
        }
        let read_at = Instant::now();
        let fresh = shared.read(db, after, limit).await?;
        let at_the_end = fresh.len() < wanted;
        let newer = fresh.last().map_or(after, |e| e.position());
        if at_the_end && shared.window.as_ref().is_none_or(|w| w.end() <= newer) {
            let mut window = Window { start: after, events: fresh.iter().cloned().collect(), version, read_at };
            window.trim();
            shared.window = Some(window);
        }
        Ok(fresh)
    }
}

/// The advisory lock that makes this process the one runner of a projection.
struct Leadership {
    conn: Option<sqlx::PgConnection>,
    held: bool,
    /// When the lock's connection was last seen alive.
    checked: Instant,
}

/// How often a leader checks that its lock's connection is alive.
const LEADERSHIP_CHECK: Duration = Duration::from_secs(5);

impl Task {
    async fn run(self, mut wake: watch::Receiver<Position>) {
        let name = self.projection.name();
        let mut leadership = Leadership { conn: None, held: false, checked: Instant::now() };
        let mut cursor: Option<Cursor> = None;
        let mut lag_reported = Instant::now();
        let mut busy_at: Option<Instant> = None;
        let mut chase: Option<Chase> = None;
        let mut trouble: Option<Trouble> = None;
        loop {
            if !self.lead(&mut leadership).await {
                metrics::gauge!("shenfen_projection_leader", "projection" => name).set(0.0);
                cursor = None;
                self.idle(&mut wake).await;
                continue;
            }
            metrics::gauge!("shenfen_projection_leader", "projection" => name).set(1.0);
            let target = *wake.borrow();
            let stepped = self.step(&mut cursor, target).await;
            if lag_reported.elapsed() >= LAG_REPORT_EVERY {
                self.report_lag(cursor.map(|c| c.read)).await;
                lag_reported = Instant::now();
            }
            match stepped {
                Ok(0) => {
                    if let Err(err) = self.flush(&mut cursor, false).await {
                        tracing::warn!(projection = name, error = %err, "checkpoint flush failed");
                        cursor = None;
                    }
                    let target = *wake.borrow();
                    if let Some(delay) = Chase::retry(&mut chase, cursor.map(|c| c.read), target, name) {
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    self.idle(&mut wake).await;
                    // While events keep coming, let a few milliseconds' worth gather: one batch
                    // for many commands instead of one per command. After a quiet spell the
                    // first event is applied at once.
                    if busy_at.is_some_and(|at| at.elapsed() < COALESCE_WHILE_BUSY) {
                        tokio::time::sleep(COALESCE).await;
                    }
                }
                Ok(_) => busy_at = Some(Instant::now()),
                Err(err) => {
                    metrics::counter!("shenfen_projection_errors_total", "projection" => name).increment(1);
                    let at = err.position().or(cursor.map(|c| c.read)).unwrap_or_default();
                    self.failed(&mut trouble, at, err.position().is_some(), &err).await;
                    leadership.conn = None;
                    leadership.held = false;
                    cursor = None;
                    // Retries slow down while the failure lasts: up to 60 polling intervals for an
                    // error that cannot pass, 4 for one that may (the database coming back).
                    let pause = trouble.as_ref().map_or(1, |t| t.failures.min(if t.permanent { 60 } else { 4 }));
                    tokio::time::sleep(self.config.poll_interval * pause).await;
                    continue;
                }
            }
            if let Some(t) = trouble.take() {
                self.recovered(t).await;
            }
        }
    }

    /// A batch failed at `at`. A failure that cannot pass (an undecodable event), or one that
    /// keeps happening at the same place for [`STUCK_AFTER`], makes the projection stuck: an ERROR line (where and
    /// why, no personal data), the metric `shenfen_projection_stuck`, and its checkpoint row
    /// (which `/readyz` and `shenfen-replay stuck` read). The runner keeps trying; it never
    /// skips the event.
    async fn failed(&self, trouble: &mut Option<Trouble>, at: Position, exact: bool, err: &ProjectionError) {
        let name = self.projection.name();
        let t = match trouble {
            Some(t) if t.at == at => {
                t.failures += 1;
                t.permanent = err.is_permanent();
                t
            }
            _ => trouble.insert(Trouble {
                at,
                since: Instant::now(),
                failures: 1,
                permanent: err.is_permanent(),
                reported: None,
            }),
        };
        let stuck = t.permanent || t.since.elapsed() >= STUCK_AFTER;
        if !stuck {
            tracing::warn!(projection = name, tx = at.tx, pos = at.pos, error = %err.public(), "projection batch failed; retrying");
            return;
        }
        if t.reported.is_some_and(|r| r.elapsed() < STUCK_REPORT_EVERY) {
            return;
        }
        t.reported = Some(Instant::now());
        metrics::gauge!("shenfen_projection_stuck", "projection" => name).set(1.0);
        tracing::error!(
            projection = name,
            tx = at.tx,
            pos = at.pos,
            failures = t.failures,
            error = %err.public(),
            "projection is stuck at this event; it keeps retrying (shenfen-replay stuck shows the event)"
        );
        let recorded = crate::exec!(
            &self.db,
            "UPDATE projection_checkpoints SET stuck_since = COALESCE(stuck_since, $1), stuck_tx = $2, stuck_pos = $3,
                    stuck_exact = $4, stuck_error = $5 WHERE projection = $6",
            Utc::now(),
            at.tx,
            at.pos,
            exact,
            err.public(),
            name
        );
        if let Err(e) = recorded {
            tracing::warn!(projection = name, error = %e, "could not record the stuck projection");
        }
    }

    /// A batch went through after failures: the projection is no longer stuck.
    async fn recovered(&self, trouble: Trouble) {
        let name = self.projection.name();
        if trouble.reported.is_none() {
            return;
        }
        metrics::gauge!("shenfen_projection_stuck", "projection" => name).set(0.0);
        tracing::info!(projection = name, "projection moved past the event it was stuck at");
        let cleared = crate::exec!(
            &self.db,
            "UPDATE projection_checkpoints SET stuck_since = NULL, stuck_tx = NULL, stuck_pos = NULL, stuck_exact = NULL,
                    stuck_error = NULL WHERE projection = $1",
            name
        );
        if let Err(e) = cleared {
            tracing::warn!(projection = name, error = %e, "could not clear the stuck projection");
        }
    }

    async fn idle(&self, wake: &mut watch::Receiver<Position>) {
        let _ = tokio::time::timeout(self.config.poll_interval, wake.changed()).await;
    }

    /// Whether this process leads the projection (always, on SQLite). The lock's connection
    /// is kept between tries, so a follower does not churn connections.
    async fn lead(&self, leadership: &mut Leadership) -> bool {
        let Db::Postgres(pool) = &self.db else { return true };
        if leadership.conn.is_none() {
            match pool.acquire().await {
                Ok(conn) => leadership.conn = Some(conn.detach()),
                Err(_) => return false,
            }
        }
        let Some(conn) = leadership.conn.as_mut() else { return false };
        if leadership.held {
            // The lock lives as long as its connection: check that now and then, not before
            // every batch (the checkpoint's compare-and-set keeps two leaders from both
            // applying a batch anyway).
            if leadership.checked.elapsed() < LEADERSHIP_CHECK || conn.ping().await.is_ok() {
                if leadership.checked.elapsed() >= LEADERSHIP_CHECK {
                    leadership.checked = Instant::now();
                }
                return true;
            }
            leadership.conn = None;
            leadership.held = false;
            return false;
        }
        let key = format!("shenfen projection {}", self.projection.name());
        let got: Result<(bool,), _> =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1))").bind(&key).fetch_one(&mut *conn).await;
        match got {
            Ok((true,)) => {
                tracing::info!(projection = self.projection.name(), "this process now runs the projection");
                leadership.held = true;
                leadership.checked = Instant::now();
                true
            }
            Ok((false,)) => false,
            Err(_) => {
                leadership.conn = None;
                false
            }
        }
    }

    /// Writes a position reached through unwanted events, when it is old enough (or `force`).
    async fn flush(&self, cursor: &mut Option<Cursor>, force: bool) -> Result<(), ProjectionError> {
        let Some(c) = cursor.as_mut() else { return Ok(()) };
        if c.read == c.stored || (!force && c.since.elapsed() < CHECKPOINT_FLUSH) {
            return Ok(());
        }
        let moved = crate::exec!(
            &self.db,
            "UPDATE projection_checkpoints SET transaction_id = $1, position = $2, updated_at = CURRENT_TIMESTAMP
              WHERE projection = $3 AND transaction_id = $4 AND position = $5",
            c.read.tx,
            c.read.pos,
            self.projection.name(),
            c.stored.tx,
            c.stored.pos
        )?;
        if moved == 1 {
            c.stored = c.read;
        } else {
            *cursor = None;
        }
        Ok(())
    }

    /// Reads and applies one batch; returns how many events it read.
    async fn step(&self, cursor: &mut Option<Cursor>, target: Position) -> Result<usize, ProjectionError> {
        let name = self.projection.name();
        let c = match *cursor {
            Some(c) => c,
            None => {
                let at = checkpoint(&self.db, name).await?;
                let c = Cursor { stored: at, read: at, since: Instant::now() };
                *cursor = Some(c);
                self.progress.send_if_modified(|p| std::mem::replace(p, at) != at);
                c
            }
        };
        let events = self.tail.read_after(&self.db, c.read, self.config.batch_size, target).await?;
        let Some(last) = events.last().map(|e| e.position()) else { return Ok(0) };
        let wanted: Vec<&StoredEvent> =
            events.iter().map(|e| e.as_ref()).filter(|e| self.projection.wants(e.kind())).collect();
        if wanted.is_empty() {
            if c.read == c.stored {
                *cursor = Some(Cursor { stored: c.stored, read: last, since: Instant::now() });
            } else if let Some(cur) = cursor.as_mut() {
                cur.read = last;
            }
            self.progress.send_replace(last);
            return Ok(events.len());
        }
        if self.projection.is_process_manager() {
            for event in &wanted {
                self.projection.handle(event).await?;
            }
        }
        let mut tx = self.db.begin().await?;
        // Claim the batch first: on SQLite this takes the write lock before any read-model
        // write, and on both backends a runner that lost a race affects no row.
        let claimed = crate::exec!(tx &mut tx,
            "UPDATE projection_checkpoints SET transaction_id = $1, position = $2, updated_at = CURRENT_TIMESTAMP
              WHERE projection = $3 AND transaction_id = $4 AND position = $5",
            last.tx, last.pos, name, c.stored.tx, c.stored.pos)?;
        if claimed != 1 {
            *cursor = None;
            return Ok(1);
        }
        self.projection.apply_batch(&mut tx, &wanted).await?;
        tx.commit().await?;
        metrics::counter!("shenfen_projection_events_total", "projection" => name).increment(events.len() as u64);
        *cursor = Some(Cursor { stored: last, read: last, since: Instant::now() });
        self.progress.send_replace(last);
        Ok(events.len())
    }

    /// Reports the events readable after where the runner has read (`read`, else its
    /// checkpoint), in the order it reads them.
    async fn report_lag(&self, read: Option<Position>) {
        let unread = match read {
            Some(at) => log::unread(&self.db, at, LAG_CAP).await,
            None => lag(&self.db, self.projection.name()).await,
        };
        if let Ok(lag) = unread {
            metrics::gauge!("shenfen_projection_lag_events", "projection" => self.projection.name()).set(lag as f64);
        }
    }
}
