//! The tail of the log shared by a process's runners.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::db::{Db, OwnConnection};
use crate::log::{self, Position, StoredEvent};
use crate::pii::{KeyError, Keyring};

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
///
/// Events are handed out with their personal data opened (see [`crate::pii`]).
pub(super) struct Tail {
    window: tokio::sync::Mutex<Shared>,
    keyring: Option<Arc<Keyring>>,
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
    async fn read(
        &mut self,
        db: &Db,
        keyring: Option<&Keyring>,
        after: Position,
        limit: i64,
    ) -> Result<Vec<Arc<StoredEvent>>, sqlx::Error> {
        let mut events = match db {
            Db::Postgres(pool) => {
                let conn = self.conn.get_or_insert_with(|| OwnConnection::new(pool.clone()));
                let read = log::read_for_projections_pg(conn.get().await?, after, limit).await;
                conn.checked(read)?
            }
            Db::Sqlite(_) => log::read_for_projections(db, after, limit).await?,
        };
        open(keyring, &mut events).await?;
        Ok(events.into_iter().map(Arc::new).collect())
    }
}

/// Opens the personal data of `events` (without a keyring they stay as stored).
async fn open(keyring: Option<&Keyring>, events: &mut [StoredEvent]) -> Result<(), sqlx::Error> {
    let Some(keyring) = keyring else { return Ok(()) };
    keyring.open_events(events).await.map_err(|e| match e {
        KeyError::Store(e) => e,
        other @ (KeyError::Unwrap | KeyError::MissingMasters(_)) => sqlx::Error::Protocol(other.to_string()),
    })
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

const TAIL_FRESHNESS: Duration = Duration::from_millis(50);
/// Most events kept in the shared window.
const TAIL_WINDOW: usize = 50_000;

impl Tail {
    pub(super) fn new(written: Option<watch::Receiver<u64>>, keyring: Option<Arc<Keyring>>) -> Self {
        Tail { window: tokio::sync::Mutex::new(Shared::default()), keyring, written }
    }

    /// Up to `limit` events after `after`. A runner chasing `target` (a position committed but
    /// maybe not readable yet) is never told "nothing new" from memory while the window ends
    /// before it.
    pub(super) async fn read_after(
        &self,
        db: &Db,
        after: Position,
        limit: i64,
        target: Position,
    ) -> Result<Vec<Arc<StoredEvent>>, sqlx::Error> {
        let Some(written) = &self.written else {
            let mut events = log::read_for_projections(db, after, limit).await?;
            open(self.keyring.as_deref(), &mut events).await?;
            return Ok(events.into_iter().map(Arc::new).collect());
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
            let fresh = shared.read(db, self.keyring.as_deref(), after, limit).await?;
            if let Some(window) = shared.window.as_mut() {
                window.version = version;
                window.read_at = read_at;
                window.events.extend(fresh.iter().cloned());
                window.trim();
            }
            return Ok(fresh);
        }
        let read_at = Instant::now();
        let fresh = shared.read(db, self.keyring.as_deref(), after, limit).await?;
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
