//! The event repository of either backend (postgres-es or sqlite-es), chosen from the URL.

use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use crate::db::Db;

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
        if inner.downcast_ref::<sqlx::Error>().is_some_and(crate::append::is_conflict) {
            return PersistenceError::OptimisticLockError;
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
