//! The event store: the event repositories of postgres-es or sqlite-es, chosen at start-up,
//! and a command bus that loads, decides, commits with the hash chain, and retries on
//! optimistic-concurrency conflicts.
//!
//! The bus drives the repository itself instead of cqrs-es's `PersistedEventStore`, because
//! each event needs its own metadata (its link in the hash chain, see [`chain`](crate::chain))
//! and because load time must stay flat: it starts from our own snapshots
//! (`aggregate_snapshots`, written outside the command path by
//! [`snapshots`](crate::snapshots)), never from cqrs-es's unsafe snapshot modes. cqrs-es's
//! inline queries are not used either: read models are fed by the catch-up
//! [`runner`](crate::runner).

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::{EventUpcaster, PersistedEventRepository, PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;
use shenfen_domain::metadata::EventMetadata;
use shenfen_domain::{KeyEpoch, StateVersion};

use crate::chain::{Link, GENESIS};
use crate::commits::Commits;
use crate::db::Db;
use crate::log::Position;
use crate::outbox::NewMessage;

mod repo;
mod snapshots;

pub use repo::Repo;
pub use snapshots::fingerprint;

/// A command refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError<E: std::error::Error> {
    /// The aggregate refused the command.
    #[error(transparent)]
    Domain(E),
    /// The caller's precondition (see [`CommandBus::execute_checked`]) does not hold.
    #[error("the command's precondition does not hold")]
    Precondition,
    /// Conflicts kept happening after every retry.
    #[error("too much contention on one aggregate")]
    Contention,
    /// The store did not take the command's write in time (see
    /// [`WriteTimedOut`](crate::append::WriteTimedOut)): nothing was written.
    #[error("the event store did not take the write in time")]
    Unavailable,
    /// The store failed.
    #[error("event store: {0}")]
    Store(String),
}

/// What a successful command did.
#[derive(Debug)]
pub struct Committed<A: Aggregate> {
    /// The state after the command.
    pub state: A,
    /// The events written (empty when the command changed nothing).
    pub events: Vec<A::Event>,
    /// The stream's last sequence after the command.
    pub sequence: i64,
    /// Where the command's events stand in the global order (`None` when it wrote nothing):
    /// what a caller that reads its own writes waits for read models to reach.
    pub position: Option<Position>,
}

/// An aggregate as loaded: its state, its last sequence and the hash of its last event.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    pub sequence: i64,
    pub last_hash: String,
}

/// An aggregate as a command starts from, and whether it was just checked against the store.
#[derive(Debug, Clone)]
pub struct Current<A> {
    pub loaded: Loaded<A>,
    pub verified: bool,
}

const MAX_ATTEMPTS: u32 = 40;

/// How a command's events are committed.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// How long the commit may wait for other commands to share its transaction (and its WAL
    /// flush), for a caller that does not mind (see
    /// [`Appender::append`](crate::append::Appender::append)).
    pub linger: Duration,
    /// Messages queued in the outbox by the same transaction, if the command writes events.
    pub messages: Vec<NewMessage>,
    /// When set, `messages` are queued only if the command writes an event of this type (a
    /// code's message only with the event that issues the code, not with a failed login the
    /// same command may write instead).
    pub messages_with: Option<&'static str>,
}

/// Messages a command's events call for (security notices, say), from the state before the
/// command, the events, and the command's metadata; queued in the events' own transaction.
pub type Notices<A> =
    Arc<dyn Fn(&str, &A, &[<A as Aggregate>::Event], &EventMetadata) -> Vec<NewMessage> + Send + Sync>;

/// Executes commands on one aggregate type: load (from a snapshot when there is a valid one),
/// decide, commit with the hash chain; retry on conflict.
pub struct CommandBus<A: Aggregate> {
    repo: Repo,
    db: Db,
    services: A::Services,
    commits: Arc<Commits>,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    fingerprint: String,
    cache: std::sync::Mutex<std::collections::HashMap<String, Loaded<A>>>,
    notices: Option<Notices<A>>,
}

/// Streams kept in memory per bus; beyond this the cache is emptied and refilled.
const CACHE_CAPACITY: usize = 10_000;

impl<A> CommandBus<A>
where
    A: Aggregate + StateVersion + KeyEpoch + Clone + 'static,
    A::Command: Clone,
{
    /// A bus over `db`, appending through the process's `commits` (which wake the local
    /// projections).
    pub fn new(db: &Db, services: A::Services, commits: Arc<Commits>) -> Self {
        CommandBus {
            repo: Repo::new(db),
            db: db.clone(),
            services,
            commits,
            upcasters: Vec::new(),
            fingerprint: fingerprint::<A>(),
            cache: Default::default(),
            notices: None,
        }
    }

    /// Adds the messages every command's events call for (see [`Notices`]): whichever command
    /// writes such an event, its message is queued in the same transaction.
    pub fn with_notices(mut self, notices: Notices<A>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// Adds event upcasters, applied on load to events of older versions.
    pub fn with_upcasters(mut self, upcasters: Vec<Box<dyn EventUpcaster>>) -> Self {
        self.upcasters = upcasters;
        self
    }

    fn cached(&self, id: &str) -> Option<Loaded<A>> {
        self.cache.lock().ok().and_then(|c| c.get(id).cloned())
    }

    /// Keeps `loaded` as what this process knows of stream `id`, unless it already knows a
    /// later state: a load that read the store before a commit and finishes after it (a
    /// projection's load racing a command) must not put the older state back.
    fn remember(&self, id: &str, loaded: &Loaded<A>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.get(id).is_some_and(|known| known.sequence > loaded.sequence) {
                return;
            }
            if cache.len() >= CACHE_CAPACITY && !cache.contains_key(id) {
                cache.clear();
            }
            cache.insert(id.to_string(), loaded.clone());
        }
    }

    /// The stream's last sequence in the store (0 when empty): one index probe.
    ///
    /// Written as `ORDER BY … DESC LIMIT 1`, not `max(sequence)`: PostgreSQL's generic plan
    /// for the prepared `max` scanned every index entry of the stream (thousands of buffer
    /// reads for a long stream), while this always reads the last entry only.
    async fn head(&self, id: &str) -> Result<i64, BusError<A::Error>> {
        let head: Option<(i64,)> = crate::fetch_optional!(
            &self.db,
            (i64,),
            "SELECT sequence FROM events WHERE aggregate_type = $1 AND aggregate_id = $2
              ORDER BY sequence DESC LIMIT 1",
            A::TYPE,
            id
        )
        .map_err(|e| BusError::Store(e.to_string()))?;
        Ok(head.map_or(0, |h| h.0))
    }

    /// Whether `loaded` is the stream's latest state in the store.
    async fn is_current(&self, id: &str, loaded: &Loaded<A>) -> Result<bool, BusError<A::Error>> {
        Ok(self.head(id).await? == loaded.sequence)
    }

    /// Loads an aggregate. A stream this process has seen is kept in memory and brought up to
    /// date with the events written since (one indexed query when there are none); otherwise
    /// it starts from the latest valid snapshot and folds the events after it.
    pub async fn load_context(&self, id: &str) -> Result<Loaded<A>, BusError<A::Error>> {
        if let Some(cached) = self.cached(id) {
            let head = self.head(id).await?;
            if head == cached.sequence {
                return Ok(cached);
            }
            if head > cached.sequence {
                let events = self
                    .repo
                    .get_last_events::<A>(id, cached.sequence as usize)
                    .await
                    .map_err(|e| BusError::Store(e.to_string()))?;
                let events = self.open(id, events).await?;
                let loaded = self.fold(cached, events)?;
                self.remember(id, &loaded);
                return Ok(loaded);
            }
        }
        let empty = Loaded { state: A::default(), sequence: 0, last_hash: GENESIS.into() };
        let (snapshot, tail) = self.cold_read(id).await?;
        let trusted = match snapshot {
            Some(snapshot) => self.trust(id, snapshot, tail).await?,
            None => Some((empty.clone(), tail)),
        };
        let (start, events) = match trusted {
            Some(trusted) => trusted,
            None => {
                let events = self.repo.get_events::<A>(id).await.map_err(|e| BusError::Store(e.to_string()))?;
                (empty, events)
            }
        };
        let events = self.open(id, events).await?;
        let loaded = self.fold(start, events)?;
        if loaded.sequence > 0 {
            self.remember(id, &loaded);
        }
        Ok(loaded)
    }

    /// The events with their personal data opened ([`ERASED`](crate::pii::ERASED) where the
    /// subject's key was destroyed).
    async fn open(
        &self,
        id: &str,
        mut events: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, BusError<A::Error>> {
        for event in &mut events {
            self.commits.keyring().open(id, &mut event.payload).await.map_err(|e| BusError::Store(e.to_string()))?;
        }
        Ok(events)
    }

    /// The event in its current shape (upcast from an older version).
    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        self.upcasters
            .iter()
            .fold(event, |e, u| if u.can_upcast(&e.event_type, &e.event_version) { u.upcast(e) } else { e })
    }

    fn fold(&self, mut loaded: Loaded<A>, events: Vec<SerializedEvent>) -> Result<Loaded<A>, BusError<A::Error>> {
        for event in events {
            let event = self.upcast(event);
            loaded.sequence = event.sequence as i64;
            loaded.last_hash = event.metadata.get("hash").and_then(Value::as_str).unwrap_or_default().to_string();
            let payload: A::Event = serde_json::from_value(event.payload)
                .map_err(|e| BusError::Store(format!("undecodable {} event #{}: {e}", A::TYPE, event.sequence)))?;
            loaded.state.apply(payload);
        }
        Ok(loaded)
    }

    /// Loads an aggregate from the store only (snapshot and events), bypassing the cache.
    pub async fn load_uncached(&self, id: &str) -> Result<Loaded<A>, BusError<A::Error>> {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(id);
        }
        self.load_context(id).await
    }

    /// Every event of one aggregate, oldest first, opened and decoded (for readers that show a
    /// history, like a student's progress timeline).
    pub async fn events(&self, id: &str) -> Result<Vec<A::Event>, BusError<A::Error>> {
        let events = self.repo.get_events::<A>(id).await.map_err(|e| BusError::Store(e.to_string()))?;
        let events = self.open(id, events).await?;
        events
            .into_iter()
            .map(|event| {
                let event = self.upcast(event);
                serde_json::from_value(event.payload)
                    .map_err(|e| BusError::Store(format!("undecodable {} event #{}: {e}", A::TYPE, event.sequence)))
            })
            .collect()
    }

    /// The current state of one aggregate.
    pub async fn load(&self, id: &str) -> Result<A, BusError<A::Error>> {
        Ok(self.load_context(id).await?.state)
    }

    /// The current state of one aggregate and its last sequence number (0 when empty).
    pub async fn load_versioned(&self, id: &str) -> Result<(A, i64), BusError<A::Error>> {
        let loaded = self.load_context(id).await?;
        Ok((loaded.state, loaded.sequence))
    }

    /// The aggregate as it stood right after its event at `sequence` (the current state when
    /// `sequence` is the stream's head; otherwise folded from the start up to that event).
    /// For process managers, which must act on each event as it happened, not on the state
    /// the stream has reached since.
    pub async fn load_at(&self, id: &str, sequence: i64) -> Result<Loaded<A>, BusError<A::Error>> {
        let current = self.load_context(id).await?;
        if current.sequence == sequence {
            return Ok(current);
        }
        let events = self.repo.get_events::<A>(id).await.map_err(|e| BusError::Store(e.to_string()))?;
        let upto = events.into_iter().take_while(|e| e.sequence as i64 <= sequence).collect();
        let upto = self.open(id, upto).await?;
        self.fold(Loaded { state: A::default(), sequence: 0, last_hash: GENESIS.into() }, upto)
    }

    /// Decides `command` on `loaded` in memory and returns its events as they would be stored
    /// (sealed under the subject's key, hash-chained after `loaded`), without writing them;
    /// `loaded` moves past them. For tools that write many streams at once by bulk SQL (the
    /// seeding tool): nothing here looks at or writes the log, so the caller owns the order.
    pub async fn decide_unstored(
        &self,
        id: &str,
        loaded: &mut Loaded<A>,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Vec<SerializedEvent>, BusError<A::Error>> {
        let before = loaded.state.clone();
        let sink = cqrs_es::event_sink::EventSink::default();
        loaded.state.handle(command, &self.services, &sink).await.map_err(BusError::Domain)?;
        let events = sink.collect().await;
        let start = Loaded { state: before, sequence: loaded.sequence, last_hash: loaded.last_hash.clone() };
        let serialized = self.serialize(id, &start, &events, metadata).await?;
        loaded.sequence += events.len() as i64;
        if let Some(hash) = serialized.last().and_then(|e| e.metadata.get("hash")).and_then(Value::as_str) {
            loaded.last_hash = hash.to_string();
        }
        Ok(serialized)
    }

    async fn serialize(
        &self,
        id: &str,
        loaded: &Loaded<A>,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<Vec<SerializedEvent>, BusError<A::Error>> {
        let base = metadata.to_map();
        let mut prev = loaded.last_hash.clone();
        let mut out = Vec::with_capacity(events.len());
        let mut payloads = events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BusError::Store(e.to_string()))?;
        // Sealed (one key read for the command) before they are hashed: the chain covers what
        // is stored.
        let epoch = loaded.state.key_epoch();
        let new_stream = loaded.sequence == 0;
        self.commits
            .keyring()
            .seal_all(id, epoch, new_stream, &mut payloads)
            .await
            .map_err(|e| BusError::Store(e.to_string()))?;
        let mut payloads = payloads.into_iter();
        for (i, event) in events.iter().enumerate() {
            let sequence = loaded.sequence + 1 + i as i64;
            let payload = payloads.next().unwrap_or_default();
            let mut meta: serde_json::Map<String, Value> =
                base.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            meta.insert("prev_hash".into(), Value::String(prev.clone()));
            let mut meta = Value::Object(meta);
            let (event_type, event_version) = (event.event_type(), event.event_version());
            let link = Link {
                sequence,
                position: Position::default(),
                event_type: &event_type,
                event_version: &event_version,
                payload: &payload,
                metadata: &meta,
            };
            let hash = self.commits.key().event_hash(&link, A::TYPE, id);
            meta["hash"] = Value::String(hash.clone());
            prev = hash;
            out.push(SerializedEvent::new(
                id.to_string(),
                sequence as usize,
                A::TYPE.to_string(),
                event.event_type(),
                event.event_version(),
                payload,
                meta,
            ));
        }
        Ok(out)
    }

    /// Runs `command` on aggregate `id`, retrying from a fresh load on conflicts.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, BusError<A::Error>> {
        self.execute_from(id, None, command, metadata).await
    }

    /// Like [`execute`](Self::execute), starting from an aggregate the caller has just
    /// loaded (saving a load when nothing changed in between; a conflict reloads).
    pub async fn execute_from(
        &self,
        id: &str,
        first: Option<Loaded<A>>,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, BusError<A::Error>> {
        let first = first.map(|loaded| Current { loaded, verified: true });
        self.execute_checked(id, first, &|_: &A| true, command, metadata).await
    }

    /// The aggregate as this process last saw it, without asking the store (`verified` false),
    /// or loaded from the store when this process has not seen it (`verified` true).
    ///
    /// Good enough to start a command from: a stale state makes the append collide, and the
    /// command is retried on a fresh load (see [`execute_checked`](Self::execute_checked)).
    /// Not for answering reads that must see other processes' writes.
    pub async fn load_optimistic(&self, id: &str) -> Result<Current<A>, BusError<A::Error>> {
        match self.cached(id) {
            Some(loaded) => Ok(Current { loaded, verified: false }),
            None => self.load_current(id).await,
        }
    }

    /// The aggregate as it stands in the store ([`load_context`](Self::load_context)), marked
    /// verified.
    pub async fn load_current(&self, id: &str) -> Result<Current<A>, BusError<A::Error>> {
        Ok(Current { loaded: self.load_context(id).await?, verified: true })
    }

    /// Runs `command` on aggregate `id`, starting from `first` when given, as long as `guard`
    /// holds for the state it runs on (checked on every attempt: a retry after a conflict runs
    /// on newer state); otherwise [`BusError::Precondition`].
    ///
    /// A state not verified against the store is trusted only as far as it is safe: an append
    /// from stale state collides and is retried on a fresh load; a refusal (by the aggregate or
    /// the guard) is only given after checking that the state was current, and otherwise the
    /// command runs again on the fresh state.
    pub async fn execute_checked(
        &self,
        id: &str,
        first: Option<Current<A>>,
        guard: &(dyn Fn(&A) -> bool + Send + Sync),
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, BusError<A::Error>> {
        self.execute_with(id, first, guard, command, metadata, CommitOptions::default()).await
    }

    /// Runs `command` on aggregate `id`; if it writes an event of type `with`, `messages` are
    /// queued in the outbox by the same transaction (a secret is issued if and only if its
    /// message is queued).
    pub async fn execute_sending(
        &self,
        id: &str,
        command: A::Command,
        metadata: &EventMetadata,
        messages: Vec<NewMessage>,
        with: &'static str,
    ) -> Result<Committed<A>, BusError<A::Error>> {
        let options = CommitOptions { messages, messages_with: Some(with), ..CommitOptions::default() };
        self.execute_with(id, None, &|_: &A| true, command, metadata, options).await
    }

    /// Like [`execute_checked`](Self::execute_checked), with the commit's [`CommitOptions`].
    pub async fn execute_with(
        &self,
        id: &str,
        mut first: Option<Current<A>>,
        guard: &(dyn Fn(&A) -> bool + Send + Sync),
        command: A::Command,
        metadata: &EventMetadata,
        options: CommitOptions,
    ) -> Result<Committed<A>, BusError<A::Error>> {
        for attempt in 0..MAX_ATTEMPTS {
            let Current { mut loaded, verified } = match first.take() {
                Some(current) => current,
                None => self.load_current(id).await?,
            };
            if !guard(&loaded.state) {
                if !verified && !self.is_current(id, &loaded).await? {
                    continue;
                }
                return Err(BusError::Precondition);
            }
            let sink = cqrs_es::event_sink::EventSink::default();
            let before = self.notices.as_ref().map(|_| loaded.state.clone());
            if let Err(refusal) = loaded.state.handle(command.clone(), &self.services, &sink).await {
                if !verified && !self.is_current(id, &loaded).await? {
                    continue;
                }
                return Err(BusError::Domain(refusal));
            }
            let events = sink.collect().await;
            if events.is_empty() {
                // Nothing to write is an answer about the stream as it stands: a state from
                // memory that is behind the store (another process wrote since) would call a
                // change already made that is not, and the caller would be told it was done.
                if !verified && !self.is_current(id, &loaded).await? {
                    continue;
                }
                return Ok(Committed { state: loaded.state, events, sequence: loaded.sequence, position: None });
            }
            let serialized = self.serialize(id, &loaded, &events, metadata).await?;
            let last_hash = serialized
                .last()
                .and_then(|e| e.metadata.get("hash"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let wanted = options.messages_with.is_none_or(|with| events.iter().any(|e| e.event_type() == with));
            let mut messages = if wanted { options.messages.clone() } else { Vec::new() };
            if let (Some(notices), Some(before)) = (&self.notices, &before) {
                messages.extend(notices(id, before, &events, metadata));
            }
            match self.commits.append(serialized, messages, options.linger).await {
                Ok(at) => {
                    let sequence = loaded.sequence + events.len() as i64;
                    self.remember(id, &Loaded { state: loaded.state.clone(), sequence, last_hash });
                    return Ok(Committed { state: loaded.state, events, sequence, position: Some(at) });
                }
                Err(PersistenceError::OptimisticLockError) => {
                    metrics::counter!("shenfen_command_conflicts_total", "aggregate" => A::TYPE).increment(1);
                    if verified || attempt > 0 {
                        // Back off a little, with jitter, so that contenders spread out.
                        let ms = u64::from(attempt.min(10)) * 2 + rand::random::<u64>() % 5;
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                }
                Err(PersistenceError::UnknownError(err)) if err.is::<crate::append::WriteTimedOut>() => {
                    return Err(BusError::Unavailable)
                }
                Err(other) => return Err(BusError::Store(other.to_string())),
            }
        }
        Err(BusError::Contention)
    }
}
