//! Opening the database behind the event store and the read models, for either backend.
//!
//! Both backends are reached through the same SQL where possible (`$1` placeholders work on
//! both); the [`exec!`](crate::exec), [`fetch_optional!`](crate::fetch_optional) and
//! [`fetch_all!`](crate::fetch_all) macros run one statement on whichever backend a
//! connection belongs to.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPoolOptions, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Sqlite, SqlitePool, Transaction};

/// Errors opening or migrating the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL (expected sqlite://PATH or postgres://…)")]
    UnsupportedUrl,
    #[error("could not create the database directory {0}: {1}")]
    Directory(String, std::io::Error),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Which backend a database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A connection pool to either backend.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A transaction on either backend.
pub enum DbTx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// A PostgreSQL connection taken out of the pool and kept by one worker: a pooled connection
/// costs a round trip each time it goes back (sqlx checks it on release), which a worker that
/// runs statements back to back should not pay. Opened on first use; after an error other than
/// a database error (the connection may be broken) it is dropped, and the next use opens
/// another.
pub struct OwnConnection {
    pool: PgPool,
    conn: Option<sqlx::PgConnection>,
    statement_timeout: Option<Duration>,
    /// The open connection's session on the server (process id, start), when it has a
    /// statement timeout: what [`abandon`](Self::abandon) ends.
    session: Option<(i32, chrono::DateTime<chrono::Utc>)>,
}

/// How long [`OwnConnection::abandon`] waits for the session it ended to be gone.
const ABANDON_WAIT: Duration = Duration::from_secs(5);

impl OwnConnection {
    /// A connection from `pool`, opened when first used.
    pub fn new(pool: PgPool) -> Self {
        OwnConnection { pool, conn: None, statement_timeout: None, session: None }
    }

    /// A connection from `pool` on which PostgreSQL cancels any statement still running after
    /// `timeout` (its `statement_timeout`, set when the connection is opened): the statement
    /// fails with SQLSTATE 57014 and, being its own transaction, leaves nothing written.
    pub fn with_statement_timeout(pool: PgPool, timeout: Duration) -> Self {
        OwnConnection { pool, conn: None, statement_timeout: Some(timeout), session: None }
    }

    /// The statement timeout, if it has one.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// The connection, opened if needed. Pass what was done with it to [`checked`](Self::checked).
    pub async fn get(&mut self) -> Result<&mut sqlx::PgConnection, sqlx::Error> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                self.session = None;
                let mut conn = self.pool.acquire().await?.detach();
                if let Some(timeout) = self.statement_timeout {
                    // One round trip: the timeout, and which session this is.
                    let session: (i32, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
                        "SELECT pid, backend_start FROM pg_stat_activity, set_config('statement_timeout', $1, false)
                          WHERE pid = pg_backend_pid()",
                    )
                    .bind(timeout.as_millis().max(1).to_string())
                    .fetch_one(&mut conn)
                    .await?;
                    self.session = Some(session);
                }
                conn
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// Returns `result`, dropping the connection first when it failed other than with a
    /// database error.
    pub fn checked<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if matches!(&result, Err(e) if !matches!(e, sqlx::Error::Database(_))) {
            self.conn = None;
        }
        result
    }

    /// Gives up a connection that was lost or stopped answering: drops it, then, from another
    /// connection, ends its session on the server and waits until it is gone — so that whatever
    /// it was running is over, committed or rolled back, and cannot commit later (a session
    /// whose client has left runs on until it next answers). True when that is confirmed (or no
    /// session was open); false when the server could not be asked in time (then the outcome of
    /// what the connection was running stays unknown).
    pub async fn abandon(&mut self) -> bool {
        self.conn = None;
        let Some((pid, started)) = self.session.take() else { return true };
        let ended = async {
            let mut other = self.pool.acquire().await?;
            // The start time too: a process id alone may have been reused by another session.
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2")
                .bind(pid)
                .bind(started)
                .execute(&mut *other)
                .await?;
            loop {
                let alive: Option<i32> =
                    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2")
                        .bind(pid)
                        .bind(started)
                        .fetch_optional(&mut *other)
                        .await?;
                if alive.is_none() {
                    return Ok::<(), sqlx::Error>(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        match tokio::time::timeout(ABANDON_WAIT, ended).await {
            Ok(Ok(())) => {
                tracing::warn!(pid, "a connection was lost or stopped answering; its session is over");
                true
            }
            Ok(Err(err)) => {
                tracing::error!(pid, error = %err, "a connection was lost or stopped answering, and its session could not be ended");
                false
            }
            Err(_) => {
                tracing::error!(pid, "a connection was lost or stopped answering, and its session did not end in time");
                false
            }
        }
    }
}

/// How long a pooled PostgreSQL connection may sit idle before it is checked on acquire.
const CHECK_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

impl Db {
    /// Opens `url` (`sqlite://PATH` or `postgres://…`) and applies the migrations, with the
    /// default write timeout.
    pub async fn open(url: &str, max_connections: u32) -> Result<Db, DbError> {
        Db::open_with(url, max_connections, crate::append::DEFAULT_WRITE_TIMEOUT).await
    }

    /// [`open`](Self::open) with how long a write may wait for the database: on SQLite the
    /// busy timeout (how long a writer waits for another to finish), after which a command's
    /// append is refused as [`WriteTimedOut`](crate::append::WriteTimedOut); PostgreSQL's
    /// counterpart is the appender's own (see [`Commits::with_keyring`](crate::commits::Commits::with_keyring)).
    ///
    /// SQLite is opened with WAL, `synchronous=FULL` (an acknowledged write survives a power
    /// failure) and that busy timeout, unlike sqlite-es's default pool.
    pub async fn open_with(url: &str, max_connections: u32, write_timeout: Duration) -> Result<Db, DbError> {
        let db = Db::connect(url, max_connections, write_timeout).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects to a PostgreSQL read replica at `url` without migrating it (its schema is the
    /// primary's, replicated; a standby refuses writes anyway).
    pub async fn connect_replica(url: &str, max_connections: u32) -> Result<Db, DbError> {
        match Db::connect(url, max_connections, crate::append::DEFAULT_WRITE_TIMEOUT).await? {
            db @ Db::Postgres(_) => Ok(db),
            Db::Sqlite(_) => Err(DbError::UnsupportedUrl),
        }
    }

    async fn connect(url: &str, max_connections: u32, write_timeout: Duration) -> Result<Db, DbError> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // A connection is checked with a round trip before use only when it has been idle
            // for a while (sqlx's default checks every time, doubling the round trips of a
            // busy server); a connection that broke while in steady use fails its statement.
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= CHECK_WHEN_IDLE_FOR {
                            use sqlx::Connection;
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect(url)
                .await?;
            Db::Postgres(pool)
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| DbError::Directory(dir.display().to_string(), e))?;
            }
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(write_timeout)
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.min(8))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Db::Sqlite(pool)
        } else {
            return Err(DbError::UnsupportedUrl);
        };
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Postgres(_) => Backend::Postgres,
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<DbTx, sqlx::Error> {
        Ok(match self {
            Db::Postgres(pool) => DbTx::Postgres(pool.begin().await?),
            Db::Sqlite(pool) => DbTx::Sqlite(pool.begin().await?),
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        match self {
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            Db::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match self {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite(pool) => pool.close().await,
        }
    }
}

impl DbTx {
    /// Lets this transaction's commit return before its WAL record is flushed (PostgreSQL's
    /// `synchronous_commit = off` for this transaction only; nothing on SQLite). For writes
    /// that can be made again from the log — a read model's batch with its checkpoint: a
    /// database crash loses both together, and the batch is applied again. Never for events,
    /// or anything else a caller is told is done.
    pub async fn commit_asynchronously(&mut self) -> Result<(), sqlx::Error> {
        if let DbTx::Postgres(tx) = self {
            sqlx::query("SET LOCAL synchronous_commit TO off").execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            DbTx::Postgres(tx) => tx.commit().await,
            DbTx::Sqlite(tx) => tx.commit().await,
        }
    }
}

/// Runs a statement on a [`Db`] or `&mut` [`DbTx`]; evaluates to `Result<u64, sqlx::Error>`
/// (rows affected).
#[macro_export]
macro_rules! exec {
    (tx $conn:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::DbTx::Postgres(c) => sqlx::query($sql)$(.bind($arg))*.execute(&mut **c).await.map(|r| r.rows_affected()),
            $crate::db::DbTx::Sqlite(c) => sqlx::query($sql)$(.bind($arg))*.execute(&mut **c).await.map(|r| r.rows_affected()),
        }
    };
    ($db:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $db {
            $crate::db::Db::Postgres(p) => sqlx::query($sql)$(.bind($arg))*.execute(p).await.map(|r| r.rows_affected()),
            $crate::db::Db::Sqlite(p) => sqlx::query($sql)$(.bind($arg))*.execute(p).await.map(|r| r.rows_affected()),
        }
    };
}

/// Fetches at most one row as `$t` (a `sqlx::FromRow` type) on a [`Db`] or `&mut` [`DbTx`].
#[macro_export]
macro_rules! fetch_optional {
    (tx $conn:expr, $t:ty, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::DbTx::Postgres(c) => sqlx::query_as::<_, $t>($sql)$(.bind($arg))*.fetch_optional(&mut **c).await,
            $crate::db::DbTx::Sqlite(c) => sqlx::query_as::<_, $t>($sql)$(.bind($arg))*.fetch_optional(&mut **c).await,
        }
    };
    ($db:expr, $t:ty, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $db {
            $crate::db::Db::Postgres(p) => sqlx::query_as::<_, $t>($sql)$(.bind($arg))*.fetch_optional(p).await,
            $crate::db::Db::Sqlite(p) => sqlx::query_as::<_, $t>($sql)$(.bind($arg))*.fetch_optional(p).await,
        }
    };
}

/// Fetches all rows as `$t` (a `sqlx::FromRow` type) on a [`Db`] or `&mut` [`DbTx`].
#[macro_export]
macro_rules! fetch_all {
    (tx $conn:expr, $t:ty, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::DbTx::Postgres(c) => sqlx::query_as::<_, $t>($sql)$(.bind($arg))*.fetch_all(&mut **c).await,
            $crate::db::DbTx::Sqlite(c) => sqlx::query_as::<_, $t>($sql)$(.bind($arg))*.fetch_all(&mut **c).await,
        }
    };
    ($db:expr, $t:ty, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $db {
            $crate::db::Db::Postgres(p) => sqlx::query_as::<_, $t>($sql)$(.bind($arg))*.fetch_all(p).await,
            $crate::db::Db::Sqlite(p) => sqlx::query_as::<_, $t>($sql)$(.bind($arg))*.fetch_all(p).await,
        }
    };
}
