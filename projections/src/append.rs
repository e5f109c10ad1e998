//! Appending commands' events to the log, with group commit on PostgreSQL.
//!
//! Each command's events go in atomically or not at all, and a duplicate
//! `(aggregate_type, aggregate_id, sequence)` — another writer got there first — is reported
//! as a conflict, exactly as if each command had its own INSERT.
//!
//! On **PostgreSQL** concurrent commands share transactions: a few workers each take whatever
//! commands are waiting (up to [`MAX_BATCH`]) and write them with one
//! `INSERT … SELECT FROM UNNEST(…)`, a statement that is atomic on its own. If it fails for
//! any reason — a collision with another writer, a value the database refuses — nothing of it
//! was written, and every command of the batch is then written on its own, so that each gets
//! its own outcome and one bad command never takes the others down. Two commands on the same
//! stream never share a batch: the later one goes in the next. Under load this turns one
//! transaction per command into one per batch; alone, a command is one statement as before.
//! While one batch is being written, the next worker lets commands gather until it is done (at
//! most [`HOLD`], 2 ms) rather than writing the first few at once: under load the batches grow
//! and the transactions, each with its commit, become fewer (an edit cost a fifth less CPU,
//! measured), while a batch that hangs — a slow disk, a connection that stopped answering —
//! holds the others up by no more than the hold.
//! Collisions are rare (another process wrote the stream since this one last saw it), so the
//! retry costs little.
//!
//! Every append answers where the command's events stand in the global order (the position
//! of the last event its transaction wrote), from the INSERT's `RETURNING`: runners are woken
//! with it, and commands that wait for read models wait for it.
//!
//! A command may carry messages for the [`outbox`](crate::outbox) (a code, a reset link): they
//! are written by the same statement (PostgreSQL) or transaction (SQLite) as its events, so a
//! secret is issued if and only if its message is queued.
//!
//! **Ambiguous commits.** A write whose connection fails after the commit but before the
//! answer, or a retry that collides, may find the command's own events already stored. Before
//! reporting a failure or a conflict the appender looks: when the stored events at the
//! command's sequences carry the very hashes of its own (the hash covers the request id, the
//! instant and the whole payload), the command did commit, and it is answered as committed —
//! never decided a second time against its own events.
//!
//! After each commit, a NOTIFY on `shenfen_events` wakes the projection runners of other
//! processes (its payload names this process, whose own runners ignore it, and the position
//! reached). It is sent by a separate task, coalesced and outside the appending transactions:
//! PostgreSQL serialises the commits of transactions that NOTIFY (they hold a database-wide
//! lock until their commit record is flushed), which would defeat group commit. It is sent
//! only while another process listens ([`Peers`]): a NOTIFY is a transaction of its own. A
//! process that dies between a commit and its NOTIFY costs the others one polling interval.
//!
//! **A write that hangs.** The workers' connections carry a `statement_timeout` (the write
//! timeout, `SHENFEN_WRITE_TIMEOUT_MS`, 10 s by default): a write still running then — the
//! events table locked by someone, a stalled disk — is cancelled by PostgreSQL, and a cancelled
//! statement, being its own transaction, is rolled back whole. Its commands are answered
//! [`WriteTimedOut`] (nothing written, try again) instead of waiting as long as the database
//! does, and no late commit can follow that answer. A batch cancelled so is not retried one
//! command at a time: whatever held it up would hold each of them up as long.
//!
//! A connection that stops answering altogether (a network path gone silent while the
//! database runs on) is given up [`ANSWER_GRACE`] after the statement timeout. That one, and
//! any connection lost in the middle of a write, has its session ended from another connection,
//! and the appender waits until it is gone: a session whose client has left can still commit
//! (PostgreSQL notices the client only when it next answers), so only then has the INSERT it
//! carried committed or rolled back for good. Then the log is looked at (above), and the command
//! tried once more if it is not there. If the session's end cannot be confirmed, the command is
//! answered with an unknown outcome (500), never "not written".
//!
//! **SQLite** has one writer at a time; each command is one multi-row INSERT. A command whose
//! INSERT waited for another writer longer than the busy timeout (the same write timeout, see
//! [`Db::open_with`](crate::db::Db::open_with)) is answered [`WriteTimedOut`] too: SQLite wrote
//! nothing of it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use sqlx::{PgConnection, PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch, Mutex, Notify};

use crate::commits::Wakes;
use crate::db::{Db, OwnConnection};
use crate::log::Position;
use crate::notify::{Notice, Peers};
use crate::outbox::NewMessage;

/// Most commands written in one transaction.
pub const MAX_BATCH: usize = 128;
/// Concurrent batch writers per appender.
const WORKERS: usize = 3;
/// While one batch is being written, a worker holding commands lets more gather for up to
/// this long before writing them alongside it; it writes at once when that batch is done.
const HOLD: Duration = Duration::from_millis(2);

/// How long a command's write may take before it is given up, unless configured otherwise.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A command's write the database did not take within the write timeout (PostgreSQL cancelled
/// it, or SQLite's busy timeout ran out): nothing of it was written, and nothing of it can be
/// written later.
#[derive(Debug, thiserror::Error)]
#[error("the event store did not take the write in time; nothing was written")]
pub struct WriteTimedOut;

/// SQLSTATEs (PostgreSQL, SQLite) that mean another writer got there first.
pub(crate) fn is_conflict(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("23505" | "5" | "517" | "1555" | "2067")))
}

/// Whether PostgreSQL cancelled the statement (SQLSTATE 57014: the statement timeout).
fn timed_out(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
}

fn classify(err: sqlx::Error) -> PersistenceError {
    if is_conflict(&err) {
        PersistenceError::OptimisticLockError
    } else if timed_out(&err) {
        tracing::warn!("a command's write was cancelled after the write timeout; it was not written");
        write_timed_out()
    } else {
        PersistenceError::UnknownError(Box::new(err))
    }
}

/// The outcome of a command whose write was cancelled after the write timeout (counted in
/// `shenfen_append_timeouts_total`).
fn write_timed_out() -> PersistenceError {
    metrics::counter!("shenfen_append_timeouts_total").increment(1);
    PersistenceError::UnknownError(Box::new(WriteTimedOut))
}

type Outcome = Result<Position, PersistenceError>;

struct Request {
    events: Vec<SerializedEvent>,
    /// Messages queued in the same transaction.
    messages: Vec<NewMessage>,
    /// The runners to wake once the events are committed.
    wake: Vec<usize>,
    /// Until when the command can wait for others to share its transaction.
    until: Instant,
    reply: oneshot::Sender<Outcome>,
}

/// Writes commands' events to the log of one database.
pub struct Appender {
    db: Db,
    peers: Arc<Peers>,
    wakes: Arc<Wakes>,
    write_timeout: Duration,
    queue: OnceLock<mpsc::UnboundedSender<Request>>,
}

impl Appender {
    /// An appender over `db`, waking the local runners through `wakes` and announcing commits
    /// while `peers` listen; its workers start with the first append. On PostgreSQL a write
    /// still running after `write_timeout` is cancelled (see the module's text).
    pub(crate) fn new(db: &Db, peers: Arc<Peers>, wakes: Arc<Wakes>, write_timeout: Duration) -> Self {
        Appender { db: db.clone(), peers, wakes, write_timeout, queue: OnceLock::new() }
    }

    /// Appends one command's events (all of them or none); returns the position of the last
    /// event of the transaction that wrote them.
    ///
    /// On PostgreSQL a command whose caller does not mind waiting (`linger` above zero: a
    /// login, which has just spent far longer on its password hash) lets the transaction wait
    /// up to `linger` for other commands to join it, so that they share one commit and its
    /// WAL flush. The wait ends early when a command that cannot wait arrives or the batch is
    /// full. Commands that keep coming have no need of it: they gather while the previous
    /// transaction commits.
    ///
    /// `messages` go to the outbox in the same transaction as the events.
    pub async fn append(&self, events: Vec<SerializedEvent>, messages: Vec<NewMessage>, linger: Duration) -> Outcome {
        let wake = self.wakes.wanting(&events);
        match &self.db {
            Db::Sqlite(pool) => {
                // In a task of its own, so that a caller that stops waiting cannot leave the
                // commit without its wake.
                let (pool, wakes) = (pool.clone(), self.wakes.clone());
                let task = tokio::spawn(async move {
                    let at = match insert_sqlite(&pool, &events, &messages).await {
                        Ok(at) => at,
                        Err(err) => match stored_sqlite(&pool, &events).await {
                            Ok(Some(at)) => at,
                            _ => return Err(err),
                        },
                    };
                    wakes.committed(&wake, at);
                    Ok(at)
                });
                task.await.unwrap_or_else(|err| Err(PersistenceError::UnknownError(Box::new(err))))
            }
            Db::Postgres(pool) => {
                let queue =
                    self.queue.get_or_init(|| start_workers(pool, self.peers.clone(), &self.wakes, self.write_timeout));
                let (reply, answer) = oneshot::channel();
                let request = Request { events, messages, wake, until: Instant::now() + linger, reply };
                if queue.send(request).is_err() {
                    return Err(PersistenceError::UnknownError("the appender has stopped".into()));
                }
                answer.await.unwrap_or_else(|_| Err(PersistenceError::UnknownError("the appender has stopped".into())))
            }
        }
    }
}

fn start_workers(
    pool: &PgPool,
    peers: Arc<Peers>,
    wakes: &Arc<Wakes>,
    write_timeout: Duration,
) -> mpsc::UnboundedSender<Request> {
    let (queue, receiver) = mpsc::unbounded_channel();
    let receiver = Arc::new(Mutex::new(receiver));
    let (committed, _) = watch::channel(Position::default());
    let committed = Arc::new(committed);
    tokio::spawn(notify_loop(pool.clone(), committed.subscribe(), peers));
    let writing = Arc::new(Writing::default());
    for _ in 0..WORKERS {
        let conn = OwnConnection::with_statement_timeout(pool.clone(), write_timeout);
        tokio::spawn(worker(conn, receiver.clone(), writing.clone(), committed.clone(), wakes.clone()));
    }
    queue
}

/// Sends a NOTIFY after commits while other processes listen: at once after a quiet spell,
/// then at most one per [`NOTIFY_EVERY`] while commits keep coming (each wakes every runner of
/// every other process).
async fn notify_loop(pool: PgPool, mut committed: watch::Receiver<Position>, peers: Arc<Peers>) {
    while committed.changed().await.is_ok() {
        if !peers.notify_needed() {
            continue;
        }
        let at = *committed.borrow_and_update();
        match crate::notify::send(&pool, Notice::Committed(at)).await {
            Ok(_) => metrics::counter!("shenfen_commit_notices_sent_total").increment(1),
            Err(err) => tracing::warn!(error = %err, "NOTIFY failed; other processes' projections will poll"),
        }
        tokio::time::sleep(NOTIFY_EVERY).await;
    }
}

/// The shortest time between two NOTIFYs of one appender.
const NOTIFY_EVERY: Duration = Duration::from_millis(20);

/// The batches being written, and a signal when one is done.
#[derive(Default)]
struct Writing {
    batches: AtomicUsize,
    done: Notify,
}

/// Counts a batch as being written until dropped.
struct Written<'a>(&'a Writing);

impl<'a> Written<'a> {
    fn start(writing: &'a Writing) -> Self {
        writing.batches.fetch_add(1, Ordering::SeqCst);
        Written(writing)
    }
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        self.0.batches.fetch_sub(1, Ordering::SeqCst);
        self.0.done.notify_waiters();
    }
}

async fn worker(
    mut conn: OwnConnection,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Request>>>,
    writing: Arc<Writing>,
    committed: Arc<watch::Sender<Position>>,
    wakes: Arc<Wakes>,
) {
    loop {
        let mut batch: Vec<Request> = Vec::new();
        let written = {
            let mut receiver = receiver.lock().await;
            match receiver.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
            // Take what is waiting; then wait for more while every command taken can wait, or
            // (briefly) while another batch is being written: commands that arrive meanwhile
            // share this batch's transaction instead of starting small ones of their own.
            let held_until = Instant::now() + HOLD;
            loop {
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let Some(lingered) = batch.iter().map(|r| r.until).min() else { break };
                // Registered before the count is read, so that a batch ending in between wakes it.
                let done = writing.done.notified();
                let busy = writing.batches.load(Ordering::SeqCst) > 0;
                let until = if busy { lingered.max(held_until) } else { lingered };
                if batch.len() >= MAX_BATCH || Instant::now() >= until {
                    break;
                }
                tokio::select! {
                    next = tokio::time::timeout_at(until.into(), receiver.recv()) => match next {
                        Ok(Some(next)) => batch.push(next),
                        Ok(None) | Err(_) => break,
                    },
                    () = done, if busy => {}
                }
            }
            // Counted before the queue is let go, so the next worker sees it.
            Written::start(&writing)
        };
        for round in rounds(batch) {
            if let Some(at) = write_round(&mut conn, round, &wakes).await {
                committed.send_modify(|p| *p = (*p).max(at));
            }
        }
        drop(written);
    }
}

/// Splits a batch so that no round holds two commands on the same stream (keeping their order).
fn rounds(batch: Vec<Request>) -> Vec<Vec<Request>> {
    type Stream = (String, String);
    let mut rounds: Vec<(HashSet<Stream>, Vec<Request>)> = Vec::new();
    for request in batch {
        let key =
            request.events.first().map(|e| (e.aggregate_type.clone(), e.aggregate_id.clone())).unwrap_or_default();
        // The first round after the last one holding this stream.
        let last = rounds.iter().rposition(|(streams, _)| streams.contains(&key));
        let at = last.map_or(0, |i| i + 1);
        if at == rounds.len() {
            rounds.push((HashSet::new(), Vec::new()));
        }
        rounds[at].0.insert(key);
        rounds[at].1.push(request);
    }
    rounds.into_iter().map(|(_, requests)| requests).collect()
}

/// Writes one round, wakes the runners that want what was committed, and answers its
/// commands; returns the furthest position committed.
async fn write_round(conn: &mut OwnConnection, round: Vec<Request>, wakes: &Wakes) -> Option<Position> {
    if round.len() > 1 {
        let events: Vec<&SerializedEvent> = round.iter().flat_map(|r| r.events.iter()).collect();
        let messages: Vec<&NewMessage> = round.iter().flat_map(|r| r.messages.iter()).collect();
        match insert(conn, &events, &messages).await {
            Ok(at) => {
                // One transaction for all: each command's events are visible with the last.
                wakes.committed(round.iter().flat_map(|r| r.wake.iter()), at);
                for request in round {
                    let _ = request.reply.send(Ok(at));
                }
                return Some(at);
            }
            Err(Failure::Unresolved) => {
                for request in round {
                    let _ = request.reply.send(Err(unresolved()));
                }
                return None;
            }
            Err(Failure::Sql(err)) if timed_out(&err) => {
                // Rolled back whole; one at a time, each would wait as long again.
                tracing::warn!(
                    commands = round.len(),
                    "a batch's write was cancelled after the write timeout; none of it was written"
                );
                for request in round {
                    let _ = request.reply.send(Err(write_timed_out()));
                }
                return None;
            }
            Err(Failure::Sql(err)) => {
                tracing::debug!(error = %err, commands = round.len(), "batch append fell back to one command at a time");
                metrics::counter!("shenfen_append_batch_fallbacks_total").increment(1);
            }
        }
    }
    let mut furthest = None;
    for request in round {
        let outcome = write_one(conn, &request).await;
        if let Ok(at) = &outcome {
            furthest = furthest.max(Some(*at));
            wakes.committed(&request.wake, *at);
        }
        let _ = request.reply.send(outcome);
    }
    furthest
}

/// Writes one command on its own. A failure — a collision, or a connection lost with the
/// outcome unknown — is first checked against the store: if the command's own events are
/// there, it committed (an earlier try whose answer was lost). A lost connection whose command
/// did not commit is tried once more on a fresh one.
async fn write_one(conn: &mut OwnConnection, request: &Request) -> Outcome {
    let events: Vec<&SerializedEvent> = request.events.iter().collect();
    let messages: Vec<&NewMessage> = request.messages.iter().collect();
    let mut tries = 0;
    loop {
        tries += 1;
        let err = match insert(conn, &events, &messages).await {
            Ok(at) => return Ok(at),
            Err(Failure::Sql(err)) => err,
            Err(Failure::Unresolved) => return Err(unresolved()),
        };
        match stored(conn, &request.events).await {
            Ok(Some(at)) => {
                metrics::counter!("shenfen_append_recovered_commits_total").increment(1);
                tracing::warn!("a commit whose answer was lost was found in the log and answered as committed");
                return Ok(at);
            }
            // A failure that left nothing stored and may pass (not a constraint): try once more.
            Ok(None) if tries < 2 && !matches!(err, sqlx::Error::Database(_)) => {}
            _ => return Err(classify(err)),
        }
    }
}

/// Where the last of `events` is stored, if the stored events at their sequences are these
/// very events (the same hashes); `None` when any of them is missing or different.
async fn stored(conn: &mut OwnConnection, events: &[SerializedEvent]) -> Result<Option<Position>, sqlx::Error> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(None) };
    let rows: Vec<(i64, i64, Option<String>)> = {
        let result = sqlx::query_as(
            "SELECT transaction_id::text::bigint, global_position, metadata->>'hash' FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence BETWEEN $3 AND $4 ORDER BY sequence",
        )
        .bind(&first.aggregate_type)
        .bind(&first.aggregate_id)
        .bind(first.sequence as i64)
        .bind(last.sequence as i64)
        .fetch_all(conn.get().await?)
        .await;
        conn.checked(result)?
    };
    Ok(same_events(events, rows.iter().map(|(tx, pos, hash)| (Position { tx: *tx, pos: *pos }, hash.as_deref()))))
}

/// [`stored`] on SQLite.
async fn stored_sqlite(pool: &SqlitePool, events: &[SerializedEvent]) -> Result<Option<Position>, sqlx::Error> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(None) };
    let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT global_position, json_extract(metadata, '$.hash') FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence BETWEEN $3 AND $4 ORDER BY sequence",
    )
    .bind(&first.aggregate_type)
    .bind(&first.aggregate_id)
    .bind(first.sequence as i64)
    .bind(last.sequence as i64)
    .fetch_all(pool)
    .await?;
    Ok(same_events(events, rows.iter().map(|(pos, hash)| (Position { tx: 0, pos: *pos }, hash.as_deref()))))
}

/// Whether the stored rows (position and hash, in sequence order) are exactly `events`; the
/// position of the last one if so.
fn same_events<'a>(
    events: &[SerializedEvent],
    rows: impl ExactSizeIterator<Item = (Position, Option<&'a str>)>,
) -> Option<Position> {
    if rows.len() != events.len() {
        return None;
    }
    let mut last = None;
    for (event, (at, hash)) in events.iter().zip(rows) {
        let ours = event.metadata.get("hash").and_then(serde_json::Value::as_str);
        if ours.is_none() || ours != hash {
            return None;
        }
        last = Some(at);
    }
    last
}

const INSERT_PG: &str = "
WITH written AS (
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
    RETURNING transaction_id::text::bigint AS tx, global_position AS pos)
SELECT min(tx) AS tx, max(pos) AS pos FROM written";

/// [`INSERT_PG`] with messages queued by the same statement: a data-modifying `WITH` runs to
/// completion whether or not the main query reads it, and fails the statement if it fails.
const INSERT_PG_WITH_MESSAGES: &str = "
WITH written AS (
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
    RETURNING transaction_id::text::bigint AS tx, global_position AS pos),
queued AS (
    INSERT INTO outbox (channel, destination, purpose, body, created_at, next_attempt_at, expires_at)
    SELECT c, d, p, b, t, t, e
      FROM UNNEST($8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[])
           AS m(c, d, p, b, t, e)
    RETURNING 1)
SELECT min(tx) AS tx, max(pos) AS pos FROM written";

/// Why an INSERT did not answer a position.
enum Failure {
    /// An error: from the database, or the connection lost (then the statement may or may not
    /// have committed, and nothing of it is still running).
    Sql(sqlx::Error),
    /// The connection was lost or stopped answering, and its session could not be ended: the
    /// statement may still commit.
    Unresolved,
}

/// How long past the statement timeout an INSERT may go unanswered before its connection is
/// taken for one that stopped answering (PostgreSQL answers a cancelled statement at once).
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// [`insert_pg`] on the worker's own connection. A connection lost in the middle, or one that
/// does not answer within the statement timeout and [`ANSWER_GRACE`] — a network path gone
/// silent, while the database may well run the statement on — is abandoned: its session is
/// ended from another connection, and the write counts as a lost connection (see
/// [`write_one`]), or as unresolved when the session's end cannot be confirmed. (A session
/// whose client is gone can still commit: PostgreSQL notices only when it next answers.)
async fn insert(
    conn: &mut OwnConnection,
    events: &[&SerializedEvent],
    messages: &[&NewMessage],
) -> Result<Position, Failure> {
    let limit = conn.statement_timeout().unwrap_or(DEFAULT_WRITE_TIMEOUT) + ANSWER_GRACE;
    let answered = tokio::time::timeout(limit, async {
        let result = insert_pg(conn.get().await?, events, messages).await;
        conn.checked(result)
    })
    .await;
    let err = match answered {
        Ok(Ok(at)) => return Ok(at),
        Ok(Err(err @ sqlx::Error::Database(_))) => return Err(Failure::Sql(err)),
        Ok(Err(lost)) => lost,
        Err(_) => sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "PostgreSQL did not answer the INSERT; its session was ended",
        )),
    };
    if conn.abandon().await {
        Err(Failure::Sql(err))
    } else {
        Err(Failure::Unresolved)
    }
}

/// The outcome of a command whose INSERT went unanswered and may still commit.
fn unresolved() -> PersistenceError {
    metrics::counter!("shenfen_append_unresolved_total").increment(1);
    PersistenceError::UnknownError("the database stopped answering; whether the command was written is unknown".into())
}

/// One INSERT of `events` (and `messages`), atomic on its own: a collision fails it whole.
/// Returns the position of the last event written.
async fn insert_pg(
    conn: &mut PgConnection,
    events: &[&SerializedEvent],
    messages: &[&NewMessage],
) -> Result<Position, sqlx::Error> {
    let aggregate_types: Vec<&str> = events.iter().map(|e| e.aggregate_type.as_str()).collect();
    let aggregate_ids: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
    let event_types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let event_versions: Vec<&str> = events.iter().map(|e| e.event_version.as_str()).collect();
    let payloads: Vec<&serde_json::Value> = events.iter().map(|e| &e.payload).collect();
    let metadata: Vec<&serde_json::Value> = events.iter().map(|e| &e.metadata).collect();
    let sql = if messages.is_empty() { INSERT_PG } else { INSERT_PG_WITH_MESSAGES };
    let mut query = sqlx::query_as(sql)
        .bind(aggregate_types)
        .bind(aggregate_ids)
        .bind(sequences)
        .bind(event_types)
        .bind(event_versions)
        .bind(payloads)
        .bind(metadata);
    if !messages.is_empty() {
        query = query
            .bind(messages.iter().map(|m| m.channel.as_str()).collect::<Vec<_>>())
            .bind(messages.iter().map(|m| m.destination.as_str()).collect::<Vec<_>>())
            .bind(messages.iter().map(|m| m.purpose.as_str()).collect::<Vec<_>>())
            .bind(messages.iter().map(|m| m.body.as_str()).collect::<Vec<_>>())
            .bind(messages.iter().map(|m| m.created_at).collect::<Vec<_>>())
            .bind(messages.iter().map(|m| m.expires_at).collect::<Vec<_>>());
    }
    let written: Vec<(Option<i64>, Option<i64>)> = query.fetch_all(conn).await?;
    match written.first() {
        Some((Some(tx), Some(pos))) => Ok(Position { tx: *tx, pos: *pos }),
        _ => Err(sqlx::Error::Protocol("the INSERT wrote no event".into())),
    }
}

/// [`classify`] for an append on SQLite, where SQLITE_BUSY means the busy timeout ran out
/// waiting for another writer (the INSERT starts its own write, reading nothing before: a
/// stale snapshot, SQLITE_BUSY_SNAPSHOT, cannot arise).
fn classify_sqlite(err: sqlx::Error) -> PersistenceError {
    if matches!(&err, sqlx::Error::Database(db) if db.code().as_deref() == Some("5")) {
        tracing::warn!("a command's write waited longer than the busy timeout; it was not written");
        write_timed_out()
    } else {
        classify(err)
    }
}

/// One multi-row INSERT (atomic on its own), with the messages in the same transaction when
/// there are any; returns the position of its last event.
async fn insert_sqlite(pool: &SqlitePool, events: &[SerializedEvent], messages: &[NewMessage]) -> Outcome {
    let rows: Vec<String> = (0..events.len())
        .map(|r| {
            let cells: Vec<String> = (1..=7).map(|c| format!("${}", r * 7 + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {} \
         RETURNING global_position",
        rows.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for e in events {
        query = query
            .bind(&e.aggregate_type)
            .bind(&e.aggregate_id)
            .bind(e.sequence as i64)
            .bind(&e.event_type)
            .bind(&e.event_version)
            .bind(&e.payload)
            .bind(&e.metadata);
    }
    let written: Vec<(i64,)> = if messages.is_empty() {
        query.fetch_all(pool).await.map_err(classify_sqlite)?
    } else {
        let mut tx = pool.begin().await.map_err(classify_sqlite)?;
        let written = query.fetch_all(&mut *tx).await.map_err(classify_sqlite)?;
        for m in messages {
            sqlx::query(
                "INSERT INTO outbox (channel, destination, purpose, body, created_at, next_attempt_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $5, $6)",
            )
            .bind(&m.channel)
            .bind(&m.destination)
            .bind(&m.purpose)
            .bind(&m.body)
            .bind(m.created_at)
            .bind(m.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(classify_sqlite)?;
        }
        tx.commit().await.map_err(classify_sqlite)?;
        written
    };
    match written.iter().map(|(pos,)| *pos).max() {
        Some(pos) => Ok(Position { tx: 0, pos }),
        None => Err(PersistenceError::UnknownError("the INSERT wrote no event".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str) -> Request {
        let (reply, _) = oneshot::channel();
        let event = SerializedEvent::new(
            id.into(),
            1,
            "account".into(),
            "E".into(),
            "1".into(),
            serde_json::Value::Null,
            serde_json::Value::Null,
        );
        Request { events: vec![event], messages: Vec::new(), wake: Vec::new(), until: Instant::now(), reply }
    }

    fn ids(rounds: &[Vec<Request>]) -> Vec<Vec<&str>> {
        rounds.iter().map(|r| r.iter().map(|q| q.events[0].aggregate_id.as_str()).collect()).collect()
    }

    #[test]
    fn commands_on_one_stream_go_in_successive_rounds_in_order() {
        let batch = ["a", "b", "a", "c", "a", "b"].into_iter().map(request).collect();
        assert_eq!(ids(&rounds(batch)), vec![vec!["a", "b", "c"], vec!["a", "b"], vec!["a"]]);
    }

    #[test]
    fn distinct_streams_share_one_round() {
        let batch = ["a", "b", "c"].into_iter().map(request).collect();
        assert_eq!(ids(&rounds(batch)), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn conflicts_are_recognised_by_sqlstate_only() {
        assert!(!is_conflict(&sqlx::Error::RowNotFound));
    }
}
