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
    let mut cmd = as_postgres("pg_ctl");
    cmd.args(args).arg("-D").arg(data_dir);
    cmd.output().expect("run pg_ctl")
}

pub fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `tool` from the PostgreSQL binaries, run as the user that owns the data directories
/// (`postgres` through sudo when we are root, as pgtemp does).
fn as_postgres(tool: &str) -> std::process::Command {
    let bin = postgres_bin_dir().join(tool);
    if is_root() {
        let mut c = std::process::Command::new("sudo");
        c.args(["-u", "postgres"]).arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    }
}

/// A throw-away streaming standby of a running throw-away server: a base backup taken with
/// `pg_basebackup -R -X stream`, started in hot-standby mode on a port of its own. Stopped
/// (immediately) and deleted when dropped.
pub struct Standby {
    /// `postgres://…` of the standby: the primary's URL with the standby's port.
    pub uri: String,
    root: PathBuf,
}

impl Standby {
    /// A standby of the server at `primary_uri` (`postgres://USER:PASSWORD@HOST:PORT/DB`),
    /// accepting read-only connections when this returns. Panics when it cannot be made.
    pub async fn start(primary_uri: &str) -> Standby {
        let (before_port, rest) = primary_uri.rsplit_once(':').expect("a port in the primary's URL");
        let (primary_port, database) = rest.split_once('/').expect("a database in the primary's URL");
        let user = before_port
            .split_once("://")
            .and_then(|(_, r)| r.split(['@', ':']).next())
            .expect("a user in the primary's URL")
            .to_string();
        let root = std::env::temp_dir().join(format!(
            "shenfen-standby-{}-{}",
            std::process::id(),
            STANDBYS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&root).expect("create the standby's directory");
        if is_root() {
            let out = std::process::Command::new("chown").arg("postgres").arg(&root).output().expect("run chown");
            assert!(out.status.success(), "chown: {}", String::from_utf8_lossy(&out.stderr));
        }
        let data = root.join("data");
        let out = as_postgres("pg_basebackup")
            .args(["-h", "127.0.0.1", "-p", primary_port, "-U", &user, "-D"])
            .arg(&data)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-password"])
            .output()
            .expect("run pg_basebackup");
        assert!(out.status.success(), "pg_basebackup: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let options = format!("-c port={port} -c unix_socket_directories={} -c hot_standby=on", data.display());
        let log = root.join("standby.log");
        let out = pg_ctl(&data, &["start", "-w", "-o", &options, "-l", &log.display().to_string()]);
        assert!(out.status.success(), "pg_ctl start (standby): {}", String::from_utf8_lossy(&out.stderr));
        let standby = Standby { uri: format!("{before_port}:{port}/{database}"), root };
        if let Err(e) = accepting(&standby.uri, Duration::from_secs(30)).await {
            panic!("the standby did not accept connections: {e}; its log:\n{}", standby.log());
        }
        standby
    }

    /// The standby's server log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("standby.log")).unwrap_or_default()
    }

    /// Stops replaying the WAL it receives (`pg_wal_replay_pause`): from now on it shows the
    /// primary as it was, until [`resume_replay`](Self::resume_replay).
    pub async fn pause_replay(&self) {
        self.execute("SELECT pg_wal_replay_pause()").await;
        // Pausing takes effect at the next record; wait until it has.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.scalar_text("SELECT pg_get_wal_replay_pause_state()").await != "paused" {
            assert!(Instant::now() < deadline, "the standby did not pause its replay");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Replays again what it received meanwhile and keeps up.
    pub async fn resume_replay(&self) {
        self.execute("SELECT pg_wal_replay_resume()").await;
    }

    /// Stops the standby at once (`pg_ctl stop -m immediate`).
    pub fn crash(&self) {
        let out = pg_ctl(&self.root.join("data"), &["stop", "-m", "immediate", "-w"]);
        assert!(out.status.success(), "pg_ctl stop (standby): {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Whether the standby is in recovery (a standby, not a primary).
    pub async fn in_recovery(&self) -> bool {
        self.scalar_text("SELECT pg_is_in_recovery()::text").await == "true"
    }

    async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.uri).await.expect("connect to the standby");
        sqlx::query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql} on the standby: {e}"));
        let _ = conn.close().await;
    }

    async fn scalar_text(&self, sql: &str) -> String {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.uri).await.expect("connect to the standby");
        let (value,): (String,) =
            sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap_or_else(|e| panic!("{sql} on the standby: {e}"));
        let _ = conn.close().await;
        value
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = pg_ctl(&self.root.join("data"), &["stop", "-m", "immediate", "-w"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

static STANDBYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A TCP port nobody listens on at the moment.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("the free port").port()
}
