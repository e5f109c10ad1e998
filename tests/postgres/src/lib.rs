//! Throw-away PostgreSQL servers for the tests, from the Debian binaries in
//! `/usr/lib/postgresql/*/bin` (through `sudo -u postgres` when the tests run as root, as
//! pgtemp does). A test that needs PostgreSQL fails when it cannot start one: never skipped.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The directory of the PostgreSQL binaries (`/usr/lib/postgresql/<newest>/bin`), also put
/// first on `PATH` once, for pgtemp's helpers (sudo resets `PATH`, hence the full path too).
pub fn postgres_bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                        let bin = e.path().join("bin");
                        bin.join("initdb").exists().then_some((version, bin))
                    })
                    .collect()
            })
            .unwrap_or_default();
        candidates.sort();
        let dir = candidates.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
            panic!("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
        });
        let path = std::env::var("PATH").unwrap_or_default();
        // Set once, before any PostgreSQL test runs a command that reads it.
        std::env::set_var("PATH", format!("{}:{path}", dir.display()));
        dir
    })
    .clone()
}

/// Starts a throw-away PostgreSQL server and waits until it accepts connections. Panics (never
/// skips) when PostgreSQL cannot be started. Shared with the replay tool's tests.
pub async fn start_postgres() -> (pgtemp::PgTempDB, String) {
    // A server that never accepts connections (its port taken by another one starting at the
    // same moment, say) is dropped and another started; the third failure is the test's.
    for attempt in 1..=3 {
        let db = start_one().await;
        let uri = db.connection_uri().replacen("postgresql://", "postgres://", 1);
        match accepting(&uri, Duration::from_secs(30)).await {
            Ok(()) => return (db, uri),
            Err(e) if attempt == 3 => panic!("PostgreSQL did not start accepting connections: {e}"),
            Err(_) => drop(db),
        }
    }
    unreachable!("the loop returns or panics")
}

async fn start_one() -> pgtemp::PgTempDB {
    let bin = postgres_bin_dir();
    pgtemp::PgTempDB::builder()
        .with_bin_path(&bin)
        .with_initdb_arg("encoding", "UTF8")
        .with_initdb_arg("locale", "C")
        // pgtemp pipes the server's stderr and never reads it: once the pipe is full (errors
        // are logged with their statements), every backend that logs blocks. The logging
        // collector writes the server's log to files in its data directory instead.
        .with_config_param("logging_collector", "on")
        // pgtemp turns synchronous commit off (a commit acknowledged before its WAL is written
        // could be lost when the server is killed); the crash tests need it on. Without fsync,
        // which stays off, it costs a write to the page cache per commit.
        .with_config_param("synchronous_commit", "on")
        .start_async()
        .await
}

/// Waits until the server at `uri` accepts a connection, for at most `within`.
async fn accepting(uri: &str, within: Duration) -> Result<(), sqlx::Error> {
    let deadline = Instant::now() + within;
    loop {
        use sqlx::Connection;
        match sqlx::PgConnection::connect(uri).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs `pg_ctl ARGS -D DATA_DIR` as the user that owns the data directory (`postgres` when
/// we are root, as pgtemp does).
pub fn pg_ctl(data_dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = postgres_bin_dir().join("pg_ctl");
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("sudo");
        c.args(["-u", "postgres"]).arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    };
    cmd.args(args).arg("-D").arg(data_dir);
    cmd.output().expect("run pg_ctl")
}

pub fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
