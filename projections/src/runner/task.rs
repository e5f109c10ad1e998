//! One projection's task: leads (or waits), reads batches after its checkpoint, applies them,
//! and reports its lag and any event it is stuck at.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::leadership::Leadership;
use super::tail::Tail;
use super::{Projection, ProjectionError, RunnerConfig};
use crate::checkpoint;
use crate::commits::Wake;
use crate::db::Db;
use crate::log::{self, Position, StoredEvent};

pub(super) struct Task {
    pub(super) db: Db,
    pub(super) projection: Arc<dyn Projection>,
    pub(super) progress: watch::Sender<Position>,
    pub(super) config: RunnerConfig,
    pub(super) tail: Arc<Tail>,
}

/// Where a runner stands: `stored` is the checkpoint row, `read` how far it has read
/// (ahead of `stored` only by events it does not want).
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor {
    stored: Position,
    read: Position,
    since: Instant,
}

/// How long a position reached only through unwanted events may stay unwritten.
pub const CHECKPOINT_FLUSH: Duration = Duration::from_secs(1);

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

/// How long a busy runner waits after a wake before reading, so that events gather (cut short
/// when a caller waits for it: read-your-writes never pays for it).
const COALESCE: Duration = Duration::from_millis(100);
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

impl Task {
    /// Runs until the process ends, woken through `wake` (see [`Wake`]).
    pub(super) async fn run(self, wake: Wake) {
        let Wake { target: mut wake, hurry } = wake;
        let name = self.projection.name();
        let mut leadership = Leadership::new();
        let mut cursor: Option<Cursor> = None;
        let mut lag_reported = Instant::now();
        let mut busy_at: Option<Instant> = None;
        let mut chase: Option<Chase> = None;
        let mut trouble: Option<Trouble> = None;
        loop {
            if !leadership.lead(&self.db, name).await {
                metrics::gauge!("shenfen_projection_leader", "projection" => name).set(0.0);
                cursor = None;
                // A follower tries again after a polling interval, not at every wake: commits
                // keep coming while another process leads, and each try is a round trip.
                tokio::time::sleep(self.config.poll_interval).await;
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
                    // While events keep coming, let some gather: one batch for many commands
                    // instead of one per command, unless a caller waits for this runner (a
                    // read-your-writes wait hurries it). After a quiet spell the first event is
                    // applied at once.
                    if busy_at.is_some_and(|at| at.elapsed() < COALESCE_WHILE_BUSY) {
                        let _ = tokio::time::timeout(COALESCE, hurry.notified()).await;
                    }
                }
                Ok(_) => busy_at = Some(Instant::now()),
                Err(err) => {
                    metrics::counter!("shenfen_projection_errors_total", "projection" => name).increment(1);
                    let at = err.position().or(cursor.map(|c| c.read)).unwrap_or_default();
                    self.failed(&mut trouble, at, err.position().is_some(), &err).await;
                    leadership.release();
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
        let recorded = checkpoint::mark_stuck(&self.db, name, at, exact, &err.public()).await;
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
        let cleared = checkpoint::clear_stuck(&self.db, name).await;
        if let Err(e) = cleared {
            tracing::warn!(projection = name, error = %e, "could not clear the stuck projection");
        }
    }

    async fn idle(&self, wake: &mut watch::Receiver<Position>) {
        let _ = tokio::time::timeout(self.config.poll_interval, wake.changed()).await;
    }

    /// Writes a position reached through unwanted events, when it is old enough (or `force`).
    pub(super) async fn flush(&self, cursor: &mut Option<Cursor>, force: bool) -> Result<(), ProjectionError> {
        let Some(c) = cursor.as_mut() else { return Ok(()) };
        if c.read == c.stored || (!force && c.since.elapsed() < CHECKPOINT_FLUSH) {
            return Ok(());
        }
        if checkpoint::advance(&self.db, self.projection.name(), c.stored, c.read).await? {
            c.stored = c.read;
        } else {
            *cursor = None;
        }
        Ok(())
    }

    /// Reads and applies one batch; returns how many events it read.
    pub(super) async fn step(&self, cursor: &mut Option<Cursor>, target: Position) -> Result<usize, ProjectionError> {
        let name = self.projection.name();
        let c = match *cursor {
            Some(c) => c,
            None => {
                let at = checkpoint::read(&self.db, name).await?;
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
        if !checkpoint::apply_batch(&self.db, self.projection.as_ref(), c.stored, last, &wanted).await? {
            *cursor = None;
            return Ok(1);
        }
        metrics::counter!("shenfen_projection_events_total", "projection" => name).increment(events.len() as u64);
        *cursor = Some(Cursor { stored: last, read: last, since: Instant::now() });
        self.progress.send_replace(last);
        Ok(events.len())
    }

    /// Reports the events readable after where the runner has read (`read`, else its
    /// checkpoint), in the order it reads them.
    async fn report_lag(&self, read: Option<Position>) {
        let unread = match read {
            Some(at) => log::unread(&self.db, at, checkpoint::LAG_CAP).await,
            None => checkpoint::lag(&self.db, self.projection.name()).await,
        };
        if let Ok(lag) = unread {
            metrics::gauge!("shenfen_projection_lag_events", "projection" => self.projection.name()).set(lag as f64);
        }
    }
}
