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
//! (sent by the appender after committing, see [`notify`](crate::notify)).

use crate::pii::Keyring;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use tokio::sync::{watch, Notify};

use crate::append::Appender;
use crate::chain::ChainKey;
use crate::db::Db;
use crate::log::{EventKind, Position};
use crate::notify::Peers;
use crate::runner::Projection;

/// A projection runner of this process, and the target it is woken with.
struct Runner {
    projection: Arc<dyn Projection>,
    target: watch::Sender<Position>,
    hurry: Arc<Notify>,
}

/// How a registered runner is woken: `target` is the position it should read up to; `hurry`
/// is notified when a caller waits for it (a read-your-writes wait), so that it stops letting
/// events gather and reads at once.
pub(crate) struct Wake {
    pub(crate) target: watch::Receiver<Position>,
    pub(crate) hurry: Arc<Notify>,
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
    keyring: Arc<Keyring>,
}

impl Commits {
    /// The commits of one process to `db`, chained under `key`.
    pub fn new(db: &Db, key: ChainKey) -> Arc<Self> {
        let keyring = Keyring::for_chain(db, &key);
        Self::with_keyring(db, key, keyring, crate::append::DEFAULT_WRITE_TIMEOUT)
    }

    /// [`new`](Self::new) with the subject keys' master keys of `keyring` (a master key file),
    /// and writes cancelled after `write_timeout` (see [`append`](crate::append)).
    pub fn with_keyring(db: &Db, key: ChainKey, keyring: Keyring, write_timeout: Duration) -> Arc<Self> {
        let peers = Arc::new(Peers::default());
        let wakes = Arc::new(Wakes::default());
        let keyring = Arc::new(keyring);
        let appender = Appender::new(db, peers.clone(), wakes.clone(), write_timeout);
        Arc::new(Commits { appender, wakes, peers, key, keyring })
    }

    /// The data subjects' keys, under which personal data is sealed in events and snapshots.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
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

    /// Makes the runner of `projection` (if it runs here) read at least up to `at`, at once: a
    /// caller is waiting for it.
    pub(crate) fn chase(&self, projection: &str, at: Position) {
        if let Ok(runners) = self.wakes.runners.read() {
            for runner in runners.iter().filter(|r| r.projection.name() == projection) {
                raise(&runner.target, at);
                runner.hurry.notify_one();
            }
        }
    }

    /// Whether the projection `name` wants any of `kinds` (see [`Projection::wants`]); `true`
    /// when no runner of that name is registered here (then nobody here can tell).
    pub fn wants_any(&self, name: &str, kinds: &[EventKind<'_>]) -> bool {
        let Ok(runners) = self.wakes.runners.read() else { return true };
        match runners.iter().find(|r| r.projection.name() == name) {
            Some(runner) => kinds.iter().any(|k| runner.projection.wants(*k)),
            None => true,
        }
    }

    /// Registers a runner; it is woken through the returned [`Wake`].
    pub(crate) fn register(&self, projection: Arc<dyn Projection>, at: Position) -> Wake {
        let (target, receiver) = watch::channel(at);
        let hurry = Arc::new(Notify::new());
        if let Ok(mut runners) = self.wakes.runners.write() {
            runners.push(Runner { projection, target, hurry: hurry.clone() });
        }
        Wake { target: receiver, hurry }
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

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    use crate::db::DbTx;
    use crate::log::StoredEvent;
    use crate::runner::ProjectionError;

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
        let edits_wake = commits.register(Arc::new(Wants("edits", "ProfileEdited")), Position::default());
        let (mut edits, edits_hurry) = (edits_wake.target, edits_wake.hurry);
        let mut logins = commits.register(Arc::new(Wants("logins", "SessionStarted")), Position::default()).target;

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

        let hurried = || tokio::time::timeout(Duration::from_millis(20), edits_hurry.notified());
        assert!(hurried().await.is_err(), "a commit does not hurry a runner");
        commits.chase("edits", first);
        assert!(!edits.has_changed().expect("sender alive"), "a target it already has wakes nobody");
        assert!(hurried().await.is_ok(), "a caller waiting hurries it");
        commits.chase("edits", second);
        assert_eq!(*edits.borrow_and_update(), second);

        commits.foreign(None);
        assert!(
            edits.has_changed().expect("sender alive") && logins.has_changed().expect("sender alive"),
            "another process's commits wake all"
        );

        let edit = EventKind { aggregate_type: "account", event_type: "ProfileEdited", sequence: 3 };
        assert!(commits.wants_any("edits", &[edit]));
        assert!(!commits.wants_any("logins", &[edit]), "a read model that wants none of a command's events");
        assert!(commits.wants_any("unknown", &[edit]), "one not registered here may want them");
    }
}
