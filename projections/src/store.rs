//! The event store: cqrs-es in plain event-sourced mode over postgres-es or sqlite-es,
//! chosen at start-up, and a command bus that retries on optimistic-concurrency conflicts.
//!
//! Snapshot and aggregate-store modes of cqrs-es are never used (see
//! `shared/spec/event-store.md`), and neither are its inline queries: read models are fed
//! by the catch-up [`runner`](crate::runner).

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use shenfen_domain::metadata::EventMetadata;
use sqlite_es::SqliteEventRepository;
use tokio::sync::watch;

use crate::db::Db;
use crate::log::{position_of, Position};

/// The event repository of either backend.
pub enum Repo {
    Postgres(PostgresEventRepository),
    Sqlite(SqliteEventRepository),
}

impl Repo {
    /// The repository over `db`.
    pub fn new(db: &Db) -> Repo {
        match db {
            Db::Postgres(p) => Repo::Postgres(PostgresEventRepository::new(p.clone())),
            Db::Sqlite(p) => Repo::Sqlite(SqliteEventRepository::new(p.clone())),
        }
    }
}

/// sqlite-es reports a busy database or a UNIQUE violation as an unknown error; both mean
/// another writer got there first, which callers must see as a conflict.
fn sqlite_conflict(err: PersistenceError) -> PersistenceError {
    if let PersistenceError::UnknownError(inner) = &err {
        if let Some(sqlx::Error::Database(db)) = inner.downcast_ref::<sqlx::Error>() {
            if matches!(db.code().as_deref(), Some("5" | "517" | "1555" | "2067")) {
                return PersistenceError::OptimisticLockError;
            }
        }
    }
    err
}

impl PersistedEventRepository for Repo {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Repo::Postgres(r) => r.get_events::<A>(aggregate_id).await,
            Repo::Sqlite(r) => r.get_events::<A>(aggregate_id).await.map_err(sqlite_conflict),
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Repo::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            Repo::Sqlite(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await.map_err(sqlite_conflict),
        }
    }

    async fn get_snapshot<A: Aggregate>(&self, _: &str) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        // Snapshots of cqrs-es are unsafe and never written.
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError("snapshot updates are not supported".into()));
        }
        match self {
            Repo::Postgres(r) => r.persist::<A>(events, None).await,
            Repo::Sqlite(r) => r.persist::<A>(events, None).await.map_err(sqlite_conflict),
        }
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        match self {
            Repo::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
            Repo::Sqlite(r) => r.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        Err(PersistenceError::UnknownError("read the log through shenfen_projections::log instead".into()))
    }
}

/// A command refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError<E: std::error::Error> {
    /// The aggregate refused the command.
    #[error(transparent)]
    Domain(E),
    /// Conflicts kept happening after every retry.
    #[error("too much contention on one aggregate")]
    Contention,
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
    /// Where the last event written stands in the global order.
    pub position: Option<Position>,
}

const MAX_ATTEMPTS: u32 = 40;

/// Executes commands on one aggregate type: load, decide, commit; retry on conflict.
pub struct CommandBus<A: Aggregate> {
    store: PersistedEventStore<Repo, A>,
    db: Db,
    services: A::Services,
    written: Arc<watch::Sender<u64>>,
}

impl<A> CommandBus<A>
where
    A: Aggregate + Clone + 'static,
    A::Command: Clone,
{
    /// A bus over `db`; `written` is bumped after every commit to wake local projections.
    pub fn new(db: &Db, services: A::Services, written: Arc<watch::Sender<u64>>) -> Self {
        CommandBus { store: PersistedEventStore::new_event_store(Repo::new(db)), db: db.clone(), services, written }
    }

    /// The current state of one aggregate.
    pub async fn load(&self, id: &str) -> Result<A, BusError<A::Error>> {
        let mut ctx = self.store.load_aggregate(id).await.map_err(store_error)?;
        Ok(ctx.aggregate().clone())
    }

    /// The current state of one aggregate and its last sequence number (0 when empty).
    pub async fn load_versioned(&self, id: &str) -> Result<(A, i64), BusError<A::Error>> {
        let ctx = self.store.load_aggregate(id).await.map_err(store_error)?;
        Ok((ctx.aggregate, ctx.current_sequence as i64))
    }

    /// Runs `command` on aggregate `id`, retrying from a fresh load on conflicts.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, BusError<A::Error>> {
        for attempt in 0..MAX_ATTEMPTS {
            let mut ctx = self.store.load_aggregate(id).await.map_err(store_error)?;
            let sink = cqrs_es::event_sink::EventSink::default();
            ctx.aggregate().handle(command.clone(), &self.services, &sink).await.map_err(BusError::Domain)?;
            let events = sink.collect().await;
            let state = ctx.aggregate().clone();
            if events.is_empty() {
                return Ok(Committed { state, events, position: None });
            }
            match self.store.commit(events.clone(), ctx, metadata.to_map()).await {
                Ok(envelopes) => {
                    self.written.send_modify(|n| *n = n.wrapping_add(1));
                    let last = envelopes.last().map(|e| e.sequence as i64).unwrap_or_default();
                    let position = position_of(&self.db, A::TYPE, id, last).await.ok().flatten();
                    return Ok(Committed { state, events, position });
                }
                Err(AggregateError::AggregateConflict) => {
                    metrics::counter!("shenfen_command_conflicts_total", "aggregate" => A::TYPE).increment(1);
                    // Back off a little, with jitter, so that contenders spread out.
                    let ms = u64::from(attempt.min(10)) * 2 + rand::random::<u64>() % 5;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(other) => return Err(store_error(other)),
            }
        }
        Err(BusError::Contention)
    }
}

fn store_error<E: std::error::Error>(err: AggregateError<E>) -> BusError<E> {
    match err {
        AggregateError::UserError(e) => BusError::Domain(e),
        AggregateError::AggregateConflict => BusError::Contention,
        other => BusError::Store(other.to_string()),
    }
}
