//! PostgreSQL: the throwaway server (pgtemp) when no URL is given, and the raw INSERT baseline:
//! single-row autocommit INSERT transactions into a table shaped like the event log, one
//! connection per client.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use pgtemp::{PgTempDB, PgTempDBBuilder};
use serde::Serialize;
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use crate::stats::{Recorder, Summary};

/// The table the baseline writes to; created before and dropped after.
const TABLE_DDL: &str = "CREATE TABLE bench_events (
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
)";
const INDEX_DDL: &str = "CREATE INDEX bench_events_global_order ON bench_events (transaction_id, global_position)";
const INSERT: &str = "INSERT INTO bench_events \
    (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The directory holding `initdb` and `postgres` of the newest PostgreSQL under
/// `/usr/lib/postgresql`, if any.
pub fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A throwaway PostgreSQL server and its URL; stopped and deleted on drop.
pub struct Throwaway {
    db: PgTempDB,
    pub url: String,
}

impl Throwaway {
    /// Stops the server and deletes its directory. Blocking: call it off the async runtime.
    pub fn stop(self) {
        drop(self.db);
    }
}

/// Starts a throwaway server. Unless `non_durable`, PostgreSQL's stock durability settings
/// (`fsync`, `synchronous_commit`, `full_page_writes` on) replace pgtemp's test settings, so the
/// figures are those of a real deployment on this disk.
pub async fn start_throwaway(bin_dir: &Path, max_connections: usize, non_durable: bool) -> anyhow::Result<Throwaway> {
    let mut builder = PgTempDBBuilder::new()
        .with_bin_path(bin_dir)
        .with_config_param("max_connections", &max_connections.to_string())
        .with_config_param("listen_addresses", "127.0.0.1")
        // pgtemp pipes the server's stderr without reading it; a full pipe would block every
        // backend that logs. The logging collector writes the log to files instead.
        .with_config_param("logging_collector", "on");
    if !non_durable {
        for key in ["fsync", "synchronous_commit", "full_page_writes", "autovacuum"] {
            builder = builder.with_config_param(key, "on");
        }
    }
    let db = tokio::task::spawn_blocking(move || builder.start()).await.map_err(|e| {
        anyhow::anyhow!("starting PostgreSQL with pgtemp failed (is PostgreSQL installed, and sudo when root?): {e}")
    })?;
    let url = format!("postgres://{}:{}@127.0.0.1:{}/{}", db.db_user(), db.db_pass(), db.db_port(), db.db_name());
    let throwaway = Throwaway { db, url };
    wait_until_up(&throwaway.url).await?;
    Ok(throwaway)
}

/// Waits (at most 30 s) until the server accepts connections.
async fn wait_until_up(url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::connect(url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(e).context("the throwaway PostgreSQL did not accept connections within 30 s")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The server's version and the settings that decide what a commit costs.
#[derive(Debug, Clone, Serialize)]
pub struct ServerFacts {
    pub version: String,
    pub fsync: String,
    pub synchronous_commit: String,
    pub full_page_writes: String,
    pub max_connections: String,
}

/// Reads [`ServerFacts`].
pub async fn facts(url: &str) -> anyhow::Result<ServerFacts> {
    let mut conn = PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
    let facts = ServerFacts {
        version: show(&mut conn, "server_version").await?,
        fsync: show(&mut conn, "fsync").await?,
        synchronous_commit: show(&mut conn, "synchronous_commit").await?,
        full_page_writes: show(&mut conn, "full_page_writes").await?,
        max_connections: show(&mut conn, "max_connections").await?,
    };
    let _ = conn.close().await;
    Ok(facts)
}

/// The value of one setting.
async fn show(conn: &mut PgConnection, name: &str) -> anyhow::Result<String> {
    sqlx::query_scalar(&format!("SHOW {name}")).fetch_one(conn).await.with_context(|| format!("SHOW {name}"))
}

/// Runs `clients` connections, each looping single-row INSERT transactions for `duration`.
pub async fn raw_inserts(url: &str, clients: usize, duration: Duration) -> anyhow::Result<Summary> {
    let mut admin = PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
    admin.execute("DROP TABLE IF EXISTS bench_events").await.context("dropping an old bench_events")?;
    admin.execute(TABLE_DDL).await.context("creating bench_events")?;
    admin.execute(INDEX_DDL).await.context("indexing bench_events")?;

    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(PgConnection::connect(url).await.context("opening a baseline connection")?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> =
        connections.into_iter().enumerate().map(|(i, conn)| tokio::spawn(insert_loop(conn, i, deadline))).collect();
    let mut total = Recorder::new();
    for task in tasks {
        total.merge(task.await.context("an INSERT task panicked")?);
    }
    let elapsed = started.elapsed();

    admin.execute("DROP TABLE bench_events").await.context("dropping bench_events")?;
    let _ = admin.close().await;
    Ok(total.summary(clients, elapsed))
}

/// One connection's loop: one aggregate per connection, its sequence counting up.
async fn insert_loop(mut conn: PgConnection, index: usize, deadline: Instant) -> Recorder {
    let mut recorder = Recorder::new();
    let aggregate_id = format!("bench-{index:04}-{:016x}", rand::random::<u64>());
    // About 300 bytes of JSON, like a profile or session event.
    let payload = json!({
        "ProfileUpdated": {
            "profile": {"ethnicity": "01", "gender": null, "birth_date": "1985-06-15",
                        "local_id_number": null, "permit_number": null},
            "validity": {"period": "20y", "start": "2020-01-01", "end": "2040-01-01"},
            "email": "123456789@example.com",
            "at": "2026-05-01T08:00:00.000000Z",
            "note": "load-generator baseline row of about three hundred bytes"
        }
    });
    let metadata = json!({"actor": "account", "request_id": "00000000-0000-4000-8000-000000000000",
                          "user_agent": "shenfen-load"});
    let mut sequence: i64 = 0;
    while Instant::now() < deadline {
        sequence += 1;
        let started = Instant::now();
        let result = sqlx::query(INSERT)
            .bind("account")
            .bind(&aggregate_id)
            .bind(sequence)
            .bind("ProfileUpdated")
            .bind("1")
            .bind(&payload)
            .bind(&metadata)
            .execute(&mut conn)
            .await;
        match result {
            Ok(_) => recorder.success(started.elapsed()),
            Err(e) => {
                recorder.failure("database", || e.to_string());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let _ = conn.close().await;
    recorder
}

/// Lets PostgreSQL finish the background work the previous phase left (dirty buffers, the
/// vacuum and statistics of the rows it wrote), so that it does not run during the next phase:
/// `CHECKPOINT` then `VACUUM (ANALYZE)` of the database. Each timed phase starts from the same
/// quiet state.
pub async fn quiesce(url: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut conn = PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
    conn.execute("CHECKPOINT").await.context("CHECKPOINT (the benchmark's role must be allowed to run it)")?;
    conn.execute("VACUUM (ANALYZE)").await.context("VACUUM (ANALYZE)")?;
    conn.execute("CHECKPOINT").await.context("CHECKPOINT")?;
    let _ = conn.close().await;
    Ok(started.elapsed())
}
