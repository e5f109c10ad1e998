//! This process's commits to the log, and who hears of them.
//!
//! Every command bus of a process appends through one [`Commits`]: its [`Appender`] writes the
//! events (with group commit on PostgreSQL) and answers where the command's events stand in
//! the global order. After the commit, only the projection runners that want one of the
//! events are woken, each with that position as its target (a runner keeps reading until it
//! has passed its target, see [`runner`](crate::runner)). A command that no read model cares
//! about — a login, say — wakes no runner at all; the others pass its events at their next
//! wake or poll.
//!
//! Other processes sharing the database hear of commits through `NOTIFY shenfen_events`
//! (sent by the appender after committing). A NOTIFY is itself a transaction with its own
//! commit record, so it is only sent while another process is known to be listening:
//! [`Peers`] tracks that from the heartbeats every listening process sends.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use tokio::sync::watch;

use crate::append::Appender;
use crate::chain::ChainKey;
use crate::db::Db;
use crate::log::{EventKind, Position};
use crate::runner::Projection;

/// How often a listening process announces itself to the others (one small transaction).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a process counts as present after its last NOTIFY (five heartbeats).
pub const PEER_GRACE: Duration = Duration::from_secs(10);
/// How long after its listener connects a process notifies regardless: it greets the others
/// when it starts listening and they answer at once, and should a greeting or an answer be
/// lost, every peer still announces itself within a [`HEARTBEAT`].
pub const GREETING_GRACE: Duration = Duration::from_secs(3);

/// Whether other processes listen on the database, as far as this one can tell.
#[derive(Debug, Default)]
pub struct Peers {
    state: Mutex<PeerState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PeerState {
    /// Since when this process's own listener has been connected (`None`: it is not).
    listening_since: Option<Instant>,
    /// When another process was last heard from.
    heard: Option<Instant>,
}

impl Peers {
    /// Whether commits must be announced with a NOTIFY: unless this process has been listening
    /// for [`GREETING_GRACE`] and heard no other process for [`PEER_GRACE`]. Without a
    /// listener of its own it cannot tell, and notifies.
    pub fn notify_needed(&self) -> bool {
        self.needed_at(Instant::now())
    }

    fn needed_at(&self, now: Instant) -> bool {
        let state = self.state.lock().map(|s| *s).unwrap_or_default();
        let recent = |at: Instant| now.saturating_duration_since(at) < PEER_GRACE;
        match state.listening_since {
            None => true,
            Some(since) => now.saturating_duration_since(since) < GREETING_GRACE || state.heard.is_some_and(recent),
        }
    }

    /// This process's listener is connected (from `now`).
    pub fn listening(&self, now: Instant) {
        if let Ok(mut s) = self.state.lock() {
            s.listening_since = Some(now);
        }
    }

    /// This process's listener lost its connection.
    pub fn deaf(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.listening_since = None;
        }
    }

    /// Another process was heard from at `now`.
    pub fn heard(&self, now: Instant) {
        if let Ok(mut s) = self.state.lock() {
            s.heard = Some(now);
        }
    }
}

/// A projection runner of this process, and the target it is woken with.
struct Runner {
    projection: Arc<dyn Projection>,
    target: watch::Sender<Position>,
}

/// The runners of a process and how they are woken: shared by [`Commits`] and the
/// [`Appender`], which wakes them as soon as a command has committed (before answering it, so
/// that a caller that stops waiting cannot leave a commit without its wake).
#[derive(Default)]
pub(crate) struct Wakes {
    /// Bumped on every commit seen, here or (by NOTIFY) in another process.
    counter: watch::Sender<u64>,
    runners: RwLock<Vec<Runner>>,
}

impl Wakes {
    /// The runners that want one of `events` (indexes into `runners`), judged before they are
    /// written.
    pub(crate) fn wanting(&self, events: &[SerializedEvent]) -> Vec<usize> {
        match self.runners.read() {
            Ok(runners) => runners
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.projection.wakes_on_commit() && events.iter().any(|e| r.projection.wants(kind_of(e)))
                })
                .map(|(i, _)| i)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Commands committed here, up to `at`: wakes the runners `wanting` them.
    pub(crate) fn committed<'a>(&self, wanting: impl IntoIterator<Item = &'a usize>, at: Position) {
        self.counter.send_modify(|n| *n = n.wrapping_add(1));
        if let Ok(runners) = self.runners.read() {
            for runner in wanting.into_iter().filter_map(|i| runners.get(*i)) {
                raise(&runner.target, at);
            }
        }
    }
}

/// Appends commands' events for every command bus of a process and wakes the runners that
/// want them.
pub struct Commits {
    appender: Appender,
    wakes: Arc<Wakes>,
    peers: Arc<Peers>,
    key: ChainKey,
}

impl Commits {
    /// The commits of one process to `db`, chained under `key`.
    pub fn new(db: &Db, key: ChainKey) -> Arc<Self> {
        let peers = Arc::new(Peers::default());
        let wakes = Arc::new(Wakes::default());
        Arc::new(Commits { appender: Appender::new(db, peers.clone(), wakes.clone()), wakes, peers, key })
    }

    /// The key the events' hash chain (and snapshots) are written under.
    pub fn key(&self) -> &ChainKey {
        &self.key
    }

    /// Appends one command's events (all of them or none) and returns where the last of them
    /// (or of the transaction that carried them) stands in the global order; the runners that
    /// want one of them are woken with that position. The commit may wait up to `linger` for
    /// other commands to share it (see [`Appender::append`]); `messages` are queued in the
    /// outbox by the same transaction.
    pub async fn append(
        &self,
        events: Vec<SerializedEvent>,
        messages: Vec<crate::outbox::NewMessage>,
        linger: Duration,
    ) -> Result<Position, PersistenceError> {
        self.appender.append(events, messages, linger).await
    }

    /// Another process committed, up to `at` when it said: every runner is woken (what it
    /// wrote is unknown here).
    pub(crate) fn foreign(&self, at: Option<Position>) {
        self.wakes.counter.send_modify(|n| *n = n.wrapping_add(1));
        if let Ok(runners) = self.wakes.runners.read() {
            for runner in runners.iter() {
                match at {
                    Some(at) => raise(&runner.target, at),
                    None => runner.target.send_modify(|_| {}),
                }
            }
        }
    }

    /// Makes the runner of `projection` (if it runs here) read at least up to `at`.
    pub(crate) fn chase(&self, projection: &str, at: Position) {
        if let Ok(runners) = self.wakes.runners.read() {
            for runner in runners.iter().filter(|r| r.projection.name() == projection) {
                raise(&runner.target, at);
            }
        }
    }

    /// Registers a runner; it is woken through the returned receiver, whose value is the
    /// position it should read up to.
    pub(crate) fn register(&self, projection: Arc<dyn Projection>, at: Position) -> watch::Receiver<Position> {
        let (target, receiver) = watch::channel(at);
        if let Ok(mut runners) = self.wakes.runners.write() {
            runners.push(Runner { projection, target });
        }
        receiver
    }

    /// The commit counter (local and foreign commits).
    pub(crate) fn counter(&self) -> watch::Receiver<u64> {
        self.wakes.counter.subscribe()
    }

    /// Who else listens on the database.
    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }
}

/// What a projection judges an event to be written by (see [`Projection::wants`]).
fn kind_of(e: &SerializedEvent) -> EventKind<'_> {
    EventKind { aggregate_type: &e.aggregate_type, event_type: &e.event_type, sequence: e.sequence as i64 }
}

/// Raises `target` to `at`, waking its runner only if that moved it.
fn raise(target: &watch::Sender<Position>, at: Position) {
    target.send_if_modified(|t| {
        let moved = at > *t;
        if moved {
            *t = at;
        }
        moved
    });
}

/// A random name of this process, carried by its NOTIFYs so that it can ignore its own.
pub fn process_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| format!("{:032x}", rand::random::<u128>()))
}

/// Sends `notice` from this process on `shenfen_events`.
pub(crate) async fn announce(pool: &sqlx::PgPool, notice: Notice) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify('shenfen_events', $1)")
        .bind(payload(process_token(), notice))
        .execute(pool)
        .await
        .map(|_| ())
}

/// What a NOTIFY on `shenfen_events` says, after the sender's process token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The sender committed events, up to this position.
    Committed(Position),
    /// The sender has just started listening (others answer with a [`Notice::Here`]).
    Hello,
    /// The sender is there (its heartbeat, or an answer to a hello).
    Here,
}

/// The payload of a NOTIFY: `TOKEN TX POS`, `TOKEN hello` or `TOKEN here`.
pub fn payload(token: &str, notice: Notice) -> String {
    match notice {
        Notice::Committed(at) => format!("{token} {} {}", at.tx, at.pos),
        Notice::Hello => format!("{token} hello"),
        Notice::Here => format!("{token} here"),
    }
}

/// Reads a payload: the sender's token and what it says. Anything else after the token —
/// nothing at all is what processes of earlier versions send after a commit — counts as a
/// commit at an unknown position (`None`).
pub fn parse_payload(payload: &str) -> (&str, Option<Notice>) {
    let mut parts = payload.split_whitespace();
    let token = parts.next().unwrap_or_default();
    let notice = match (parts.next(), parts.next()) {
        (Some("here"), None) => Some(Notice::Here),
        (Some("hello"), None) => Some(Notice::Hello),
        (Some(tx), Some(pos)) => match (tx.parse(), pos.parse()) {
            (Ok(tx), Ok(pos)) => Some(Notice::Committed(Position { tx, pos })),
            _ => None,
        },
        _ => None,
    };
    (token, notice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    use crate::db::DbTx;
    use crate::log::StoredEvent;
    use crate::runner::ProjectionError;

    #[test]
    fn a_lone_process_stops_notifying_after_the_grace_period() {
        let peers = Peers::default();
        let t0 = Instant::now();
        assert!(peers.needed_at(t0), "without a listener it cannot tell");
        peers.listening(t0);
        assert!(peers.needed_at(t0 + Duration::from_secs(1)), "peers answer the greeting");
        assert!(!peers.needed_at(t0 + GREETING_GRACE + Duration::from_secs(1)));
        peers.heard(t0 + Duration::from_secs(40));
        assert!(peers.needed_at(t0 + Duration::from_secs(41)));
        assert!(peers.needed_at(t0 + Duration::from_secs(40) + PEER_GRACE - Duration::from_millis(1)));
        assert!(!peers.needed_at(t0 + Duration::from_secs(40) + PEER_GRACE + Duration::from_secs(1)));
        peers.deaf();
        assert!(peers.needed_at(t0 + Duration::from_secs(200)), "a lost listener means notifying again");
    }

    #[test]
    fn payloads_round_trip() {
        for notice in [Notice::Committed(Position { tx: 781, pos: 12 }), Notice::Hello, Notice::Here] {
            assert_eq!(parse_payload(&payload("abc", notice)), ("abc", Some(notice)));
        }
        assert_eq!(parse_payload("abc 1 x"), ("abc", None));
        assert_eq!(parse_payload("abc what"), ("abc", None));
        assert_eq!(parse_payload("abc"), ("abc", None), "an earlier version's commit notice");
    }

    struct Wants(&'static str, &'static str);

    #[async_trait]
    impl Projection for Wants {
        fn name(&self) -> &'static str {
            self.0
        }
        async fn apply(&self, _: &mut DbTx, _: &StoredEvent) -> Result<(), ProjectionError> {
            Ok(())
        }
        fn wants(&self, e: EventKind<'_>) -> bool {
            e.event_type == self.1
        }
    }

    fn event(id: &str, sequence: usize, event_type: &str) -> SerializedEvent {
        let json = serde_json::json!({});
        SerializedEvent::new(id.into(), sequence, "account".into(), event_type.into(), "1".into(), json.clone(), json)
    }

    #[tokio::test]
    async fn a_commit_wakes_only_the_runners_that_want_one_of_its_events() {
        let db = Db::open("sqlite::memory:", 1).await.expect("in-memory SQLite");
        let commits = Commits::new(&db, ChainKey::derive(&[0u8; 32]));
        let mut edits = commits.register(Arc::new(Wants("edits", "ProfileEdited")), Position::default());
        let mut logins = commits.register(Arc::new(Wants("logins", "SessionStarted")), Position::default());

        let first =
            commits.append(vec![event("a", 1, "ProfileEdited")], Vec::new(), Duration::ZERO).await.expect("append");
        assert!(first > Position::default());
        assert!(edits.has_changed().expect("sender alive"));
        assert!(!logins.has_changed().expect("sender alive"), "nothing it wants was written");
        assert_eq!(*edits.borrow_and_update(), first);

        let second = commits
            .append(vec![event("b", 1, "Registered"), event("b", 2, "SessionStarted")], Vec::new(), Duration::ZERO)
            .await
            .expect("append");
        assert!(second > first);
        assert!(!edits.has_changed().expect("sender alive"));
        assert_eq!(*logins.borrow_and_update(), second, "the target is the command's last event");

        commits.chase("edits", first);
        assert!(!edits.has_changed().expect("sender alive"), "a target it already has wakes nobody");
        commits.chase("edits", second);
        assert_eq!(*edits.borrow_and_update(), second);

        commits.foreign(None);
        assert!(
            edits.has_changed().expect("sender alive") && logins.has_changed().expect("sender alive"),
            "another process's commits wake all"
        );
    }
}
