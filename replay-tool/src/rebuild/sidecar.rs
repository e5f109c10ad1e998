//! Where rebuilds in progress live, and how their tables are made, resumed, swapped in and
//! cleaned up.

use std::path::PathBuf;
use std::time::Duration;

use shenfen_projections::checkpoint;
use shenfen_projections::db::Db;
use shenfen_projections::log::Position;
use shenfen_projections::runner::Projection;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Executor, PgPool, SqlitePool};

use crate::ReplayError;

use super::postgres::swap_postgres;
use super::sqlite::swap_sqlite;
use super::SCHEMA;

/// Checks that a table name is a plain identifier (it is spliced into DDL).
pub(super) fn ident(name: &str) -> Result<&str, ReplayError> {
    let plain = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if plain {
        Ok(name)
    } else {
        Err(ReplayError::Task(format!("table name {name:?} is not a plain identifier")))
    }
}

/// Where rebuilds in progress live: the `shenfen_rebuild` schema or the SQLite sidecar.
pub(super) enum Sidecar {
    Postgres {
        live: PgPool,
        /// The schema the live tables are in (the first of the live search path).
        schema: String,
        rebuild: PgPool,
        /// Holds the advisory lock that makes this the only rebuild.
        lock: sqlx::PgConnection,
    },
    Sqlite {
        live: SqlitePool,
        rebuild: SqlitePool,
        path: PathBuf,
    },
}

const LOCK_KEY: &str = "shenfen-replay rebuild";

impl Sidecar {
    pub(super) async fn open(live: &Db) -> Result<Sidecar, ReplayError> {
        match live {
            Db::Postgres(pool) => Self::open_postgres(pool).await,
            Db::Sqlite(pool) => Self::open_sqlite(pool).await,
        }
    }

    async fn open_postgres(live: &PgPool) -> Result<Sidecar, ReplayError> {
        let options = (*live.connect_options()).clone();
        let mut lock = sqlx::PgConnection::connect_with(&options).await?;
        let (locked,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1))").bind(LOCK_KEY).fetch_one(&mut lock).await?;
        if !locked {
            return Err(ReplayError::RebuildLocked);
        }
        let (schema,): (String,) = sqlx::query_as("SELECT current_schema()").fetch_one(live).await?;
        ident(&schema)?;
        live.execute(format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}").as_str()).await?;
        live.execute(
            format!(
                "CREATE UNLOGGED TABLE IF NOT EXISTS {SCHEMA}.projection_checkpoints
                   (LIKE {schema}.projection_checkpoints INCLUDING ALL)"
            )
            .as_str(),
        )
        .await?;
        let setup = format!("SET search_path TO {SCHEMA}, {schema}; SET synchronous_commit TO off");
        let rebuild = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(600))
            .after_connect(move |conn, _| {
                let setup = setup.clone();
                Box::pin(async move {
                    conn.execute(setup.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Sidecar::Postgres { live: live.clone(), schema, rebuild, lock })
    }

    async fn open_sqlite(live: &SqlitePool) -> Result<Sidecar, ReplayError> {
        let live_path = live.connect_options().get_filename().to_path_buf();
        let mut path = live_path.clone().into_os_string();
        path.push(".rebuild");
        let path = PathBuf::from(path);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        let attach = live_path.to_string_lossy().into_owned();
        let rebuild = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(600))
            .after_connect(move |conn, _| {
                let attach = attach.clone();
                Box::pin(async move {
                    sqlx::query("ATTACH DATABASE $1 AS live").bind(attach).execute(conn).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let exists: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = 'projection_checkpoints'",
        )
        .fetch_optional(&rebuild)
        .await?;
        if exists.is_none() {
            let (ddl,): (String,) = sqlx::query_as(
                "SELECT sql FROM live.sqlite_master WHERE type = 'table' AND name = 'projection_checkpoints'",
            )
            .fetch_one(&rebuild)
            .await?;
            rebuild.execute(ddl.as_str()).await?;
        }
        Ok(Sidecar::Sqlite { live: live.clone(), rebuild, path })
    }

    /// The rebuild side as a [`Db`], for the projections and the runner.
    pub(super) fn db(&self) -> Db {
        match self {
            Sidecar::Postgres { rebuild, .. } => Db::Postgres(rebuild.clone()),
            Sidecar::Sqlite { rebuild, .. } => Db::Sqlite(rebuild.clone()),
        }
    }

    /// Makes fresh tables for `projection` unless a rebuild of it is in progress (and not
    /// `restart`); returns the checkpoint to continue from.
    pub(super) async fn prepare(&self, projection: &dyn Projection, restart: bool) -> Result<Position, ReplayError> {
        let name = projection.name();
        let tables = projection.tables();
        let db = self.db();
        let found = checkpoint::find(&db, name).await?;
        let present: Vec<(String,)> = match self {
            Sidecar::Postgres { live, .. } => {
                let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
                sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2)")
                    .bind(SCHEMA)
                    .bind(names)
                    .fetch_all(live)
                    .await?
            }
            Sidecar::Sqlite { rebuild, .. } => {
                let mut found = Vec::new();
                for &t in tables {
                    found.extend(
                        sqlx::query_as::<_, (String,)>(
                            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = $1",
                        )
                        .bind(t)
                        .fetch_optional(rebuild)
                        .await?,
                    );
                }
                found
            }
        };
        if let Some(at) = found {
            if !restart && present.len() == tables.len() {
                return Ok(at);
            }
        }
        match self {
            Sidecar::Postgres { live, schema, .. } => {
                let mut tx = live.begin().await?;
                sqlx::query(&format!("DELETE FROM {SCHEMA}.projection_checkpoints WHERE projection = $1"))
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                for t in tables {
                    tx.execute(format!("DROP TABLE IF EXISTS {SCHEMA}.{t}").as_str()).await?;
                    tx.execute(
                        format!("CREATE UNLOGGED TABLE {SCHEMA}.{t} (LIKE {schema}.{t} INCLUDING ALL)").as_str(),
                    )
                    .await?;
                }
                sqlx::query(&format!("INSERT INTO {SCHEMA}.projection_checkpoints (projection) VALUES ($1)"))
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Sidecar::Sqlite { rebuild, .. } => {
                let mut tx = rebuild.begin().await?;
                sqlx::query("DELETE FROM main.projection_checkpoints WHERE projection = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                for &t in tables {
                    tx.execute(format!("DROP TABLE IF EXISTS main.{t}").as_str()).await?;
                    // The table first, then its indexes (automatic ones have no SQL).
                    let ddl: Vec<(String,)> = sqlx::query_as(
                        "SELECT sql FROM live.sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL
                          ORDER BY type <> 'table', name",
                    )
                    .bind(t)
                    .fetch_all(&mut *tx)
                    .await?;
                    for (sql,) in ddl {
                        tx.execute(sql.as_str()).await?;
                    }
                }
                sqlx::query("INSERT INTO main.projection_checkpoints (projection) VALUES ($1)")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(Position::default())
    }

    /// Swaps the rebuilt tables of `projection` in, with its checkpoint; returns that
    /// checkpoint.
    pub(super) async fn swap(&self, projection: &dyn Projection) -> Result<Position, ReplayError> {
        let name = projection.name();
        let at = checkpoint::read(&self.db(), name).await?;
        match self {
            Sidecar::Postgres { live, schema, .. } => swap_postgres(live, schema, projection, at).await?,
            Sidecar::Sqlite { live, rebuild, path } => {
                swap_sqlite(live, path, projection, at).await?;
                let mut tx = rebuild.begin().await?;
                sqlx::query("DELETE FROM main.projection_checkpoints WHERE projection = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                for t in projection.tables() {
                    tx.execute(format!("DROP TABLE IF EXISTS main.{t}").as_str()).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(at)
    }

    /// Closes the rebuild side; removes the schema or the sidecar when no rebuild is left in
    /// it (and `success`: after an error, whatever is there is kept for a resume).
    pub(super) async fn finish(self, success: bool) -> Result<(), ReplayError> {
        match self {
            Sidecar::Postgres { live, rebuild, mut lock, .. } => {
                rebuild.close().await;
                if success {
                    let left: Vec<(String,)> =
                        sqlx::query_as(&format!("SELECT projection FROM {SCHEMA}.projection_checkpoints"))
                            .fetch_all(&live)
                            .await?;
                    if left.is_empty() {
                        live.execute(format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE").as_str()).await?;
                    }
                }
                // Released before the connection closes: the server ends the session (and
                // would release the lock) only after the close has returned, so the next
                // rebuild could still find it taken.
                sqlx::query("SELECT pg_advisory_unlock(hashtext($1))").bind(LOCK_KEY).execute(&mut lock).await?;
                lock.close().await?;
            }
            Sidecar::Sqlite { rebuild, path, .. } => {
                let left: Vec<(String,)> = if success {
                    sqlx::query_as("SELECT projection FROM main.projection_checkpoints").fetch_all(&rebuild).await?
                } else {
                    vec![(String::new(),)]
                };
                rebuild.close().await;
                if left.is_empty() {
                    for suffix in ["", "-wal", "-shm"] {
                        let mut file = path.clone().into_os_string();
                        file.push(suffix);
                        match std::fs::remove_file(&file) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_spliced_into_ddl() {
        assert!(ident("account_view").is_ok());
        assert!(ident("analytics_reviews2").is_ok());
        assert!(ident("x; DROP TABLE events").is_err());
        assert!(ident("").is_err());
        assert!(ident("1abc").is_err());
    }
}
