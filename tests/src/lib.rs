//! The end-to-end test harness: starts the real server binary (`shenfen-server`, the same code
//! as `shenfen`) as a child process against a fresh SQLite file or a throw-away PostgreSQL
//! server, records what the webhook notifier sends, and offers typed request helpers.
//!
//! A test builds a [`TestApp`] with [`TestApp::spawn_sqlite`] or [`TestApp::spawn_postgres`]
//! (or [`TestApp::spawn`] with [`Settings`]), talks to it over HTTP, and reads verification
//! codes and reset links with [`TestApp::wait_for_message`]. Every value that must be unique
//! (document numbers, mobiles, e-mail addresses) comes from the generators below, so tests never
//! collide even when they share a database.
//!
//! For real-name verification the server's identity authority is the reference registry,
//! written from [`Settings::identities`] into the test directory before the server starts, or a
//! [`FakeAuthority`] on loopback for the `http:URL` adapter ([`Settings::http_authority`]).
//! Staff members are made with the real `staff add` command ([`TestApp::staff_member`]) or
//! through the API ([`TestApp::create_staff`]); manual-review applications are multipart forms
//! built by hand ([`ReviewApplication`], [`MultipartForm`]) with real JPEGs made from
//! [`TINY_JPEG`]. Calendar rules are checked against [`is_working_day`], which reads the spec's
//! holiday calendar (`data/cn-calendar.csv`), not the server's copy.
//!
//! Analytics read models are updated asynchronously: [`TestApp::poll_as`] asks again until the
//! expected figures appear, and [`parse_csv`] reads their `Accept: text/csv` answers. Audit
//! scenarios tag requests with [`TestApp::send_with_request_id`], read streams with
//! [`TestApp::audit_events`] and [`TestApp::audit_state`], and alter the log behind the server's
//! back with [`TestApp::execute_sql`].
#![allow(clippy::unwrap_used)]
#![allow(clippy::missing_panics_doc)]

pub mod faults;

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use axum::{extract::State, http::StatusCode as AxumStatus, routing::post, Json, Router};
use rand::Rng;
use reqwest::{header::HeaderMap, Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// How long a test waits for a notifier message before it fails.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The reference identity registry's file name in the test directory.
const IDENTITY_REGISTRY: &str = "identity-registry.csv";
/// How long the server may take from spawn to its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The server binary
// ---------------------------------------------------------------------------------------------

static SERVER_BINARY: OnceLock<PathBuf> = OnceLock::new();

/// Tells the harness where the server binary is. Integration tests call this with
/// `env!("CARGO_BIN_EXE_shenfen-server")`, which cargo only gives to them, not to this library.
pub fn use_server_binary(path: impl Into<PathBuf>) {
    let _ = SERVER_BINARY.set(path.into());
}

/// The server binary: the one set by [`use_server_binary`], else `SHENFEN_SERVER_BIN`, else
/// `shenfen-server` beside the directory of the running test executable (`target/debug/`).
pub fn server_binary() -> PathBuf {
    if let Some(path) = SERVER_BINARY.get() {
        return path.clone();
    }
    if let Ok(path) = std::env::var("SHENFEN_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("test executable has a directory");
    let dir = if dir.ends_with("deps") { dir.parent().expect("target dir") } else { dir };
    dir.join("shenfen-server")
}

/// Runs a scenario once on SQLite and once on PostgreSQL: `both_stores!(scenario)` defines two
/// tests, `scenario::on_sqlite` and `scenario::on_postgres`, each calling
/// `scenario(&mut TestApp)` on a fresh server. A second argument gives the [`Settings`]; it is
/// evaluated inside each test, so it may make fresh test data (such as [`Identity`] rows) for
/// each. Use it from an integration test of this package (it needs the server binary's path
/// from cargo).
#[macro_export]
macro_rules! both_stores {
    ($scenario:ident) => {
        $crate::both_stores!($scenario, $crate::Settings::defaults());
    };
    ($scenario:ident, $settings:expr) => {
        mod $scenario {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                $crate::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
                let mut app = $crate::TestApp::spawn($crate::Store::Sqlite, $settings).await;
                super::$scenario(&mut app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                $crate::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
                let mut app = $crate::TestApp::spawn($crate::Store::Postgres, $settings).await;
                super::$scenario(&mut app).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Unique test data
// ---------------------------------------------------------------------------------------------

/// A process-wide counter with a random start, so values are unique within one test run and
/// unlikely to repeat between runs.
fn next_unique() -> u64 {
    static COUNTER: OnceLock<AtomicU64> = OnceLock::new();
    COUNTER.get_or_init(|| AtomicU64::new(rand::thread_rng().gen_range(0..1_000_000))).fetch_add(1, Ordering::Relaxed)
}

const GB11643_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The GB 11643 (ISO 7064 mod 11-2) check character of 17 digits.
pub fn gb11643_check_char(first17: &str) -> char {
    assert_eq!(first17.len(), 17, "need 17 digits");
    let sum: u32 = first17.chars().zip(GB11643_WEIGHTS).map(|(c, w)| c.to_digit(10).expect("a digit") * w).sum();
    b"10X98765432"[(sum % 11) as usize] as char
}

/// A birth date `YYYYMMDD` between 1976-01-01 and about 2000, and a three-digit sequence,
/// both derived from `n` so that different `n` give different pairs.
fn birth_and_sequence(n: u64) -> (String, String) {
    let base = chrono::NaiveDate::from_ymd_opt(1976, 1, 1).unwrap();
    let birth = base + chrono::Duration::days((n % 9000) as i64);
    let sequence = (n / 9000) % 1000;
    (birth.format("%Y%m%d").to_string(), format!("{sequence:03}"))
}

/// A fresh valid resident ID card number (`resident_id_card`): a province code, a birth date
/// between 1976 and 2000, a sequence and the GB 11643 check character. Unique in this process.
pub fn resident_id_number() -> String {
    let n = next_unique();
    let areas = ["110101", "440305", "310104", "320102", "330106"];
    let area = areas[rand::thread_rng().gen_range(0..areas.len())];
    let (birth, sequence) = birth_and_sequence(n);
    let first17 = format!("{area}{birth}{sequence}");
    format!("{first17}{}", gb11643_check_char(&first17))
}

/// A fresh valid resident ID card number of someone born on `birth` (`YYYYMMDD`).
pub fn resident_id_number_born(birth: &str) -> String {
    let first17 = format!("110101{birth}{:03}", next_unique() % 1000);
    format!("{first17}{}", gb11643_check_char(&first17))
}

/// A fresh Hong Kong/Macau permit number (`hk_macau_permit`): `H` and 8 digits.
pub fn hk_macau_permit_number() -> String {
    format!("H{:08}", next_unique() % 100_000_000)
}

/// A fresh Hong Kong residence permit number (`hmt_residence_permit`): prefix 810000, a birth
/// date, a sequence and the GB 11643 check character.
pub fn hmt_residence_permit_number() -> String {
    let (birth, sequence) = birth_and_sequence(next_unique());
    let first17 = format!("810000{birth}{sequence}");
    format!("{first17}{}", gb11643_check_char(&first17))
}

/// A fresh mainland mobile number: `1`, one of `3`–`9`, and 9 digits.
pub fn mobile_number() -> String {
    let second = rand::thread_rng().gen_range(3..=9);
    format!("1{second}{:09}", next_unique() % 1_000_000_000)
}

/// A fresh e-mail address.
pub fn email_address() -> String {
    format!("holder{}@example.com", next_unique())
}

/// A fresh password that satisfies the rules (a letter, a digit, a special character, not
/// common, not containing a document number).
pub fn password() -> String {
    format!("Zq7#mountain{:04}", next_unique() % 10_000)
}

/// A fresh WeChat openid.
pub fn openid() -> String {
    format!("oTest{:012}", next_unique())
}

/// A fresh staff username (3–32 of `a-z0-9._-`).
pub fn staff_username() -> String {
    format!("staff.{}", next_unique())
}

/// `11**************1X`: the first two and last two characters, the rest starred.
pub fn masked(document_number: &str) -> String {
    let chars: Vec<char> = document_number.chars().collect();
    let n = chars.len();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        out.push(if i < 2 || i + 2 >= n { *c } else { '*' });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Notifier webhook
// ---------------------------------------------------------------------------------------------

/// One message the server's webhook notifier delivered.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub channel: String,
    pub to: String,
    pub purpose: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

impl Message {
    /// The verification code, which this message must carry.
    pub fn code(&self) -> String {
        self.code.clone().unwrap_or_else(|| panic!("message has no code: {self:?}"))
    }
}

/// The webhook endpoint the server's notifier posts to: records every message.
#[derive(Debug)]
pub struct Hooks {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    messages: Mutex<VecDeque<Message>>,
    raw: Mutex<Vec<Value>>,
}

impl Hooks {
    async fn start() -> Arc<Hooks> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind webhook listener");
        let addr = listener.local_addr().unwrap();
        let hooks = Arc::new(Hooks {
            url: format!("http://{addr}/hook"),
            messages: Mutex::new(VecDeque::new()),
            raw: Mutex::new(Vec::new()),
        });
        let app = Router::new().route("/hook", post(receive)).with_state(hooks.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        hooks
    }

    /// Waits (up to [`MESSAGE_TIMEOUT`]) for a message to `to` for `purpose`, and takes it, so
    /// that the next call waits for a newer one.
    pub async fn wait_for_message(&self, to: &str, purpose: &str) -> Message {
        let deadline = Instant::now() + MESSAGE_TIMEOUT;
        loop {
            {
                let mut messages = self.messages.lock().unwrap();
                if let Some(i) = messages.iter().position(|m| m.to == to && m.purpose == purpose) {
                    return messages.remove(i).unwrap();
                }
            }
            if Instant::now() > deadline {
                let seen = self.raw.lock().unwrap().clone();
                panic!("no {purpose} message to {to} within {MESSAGE_TIMEOUT:?}; the webhook received: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every message body received so far, in order.
    pub fn received(&self) -> Vec<Value> {
        self.raw.lock().unwrap().clone()
    }
}

async fn receive(State(hooks): State<Arc<Hooks>>, Json(body): Json<Value>) -> AxumStatus {
    hooks.raw.lock().unwrap().push(body.clone());
    match serde_json::from_value::<Message>(body) {
        Ok(message) => {
            hooks.messages.lock().unwrap().push_back(message);
            AxumStatus::NO_CONTENT
        }
        // Still 2xx, so a malformed message is seen in `received` rather than retried forever.
        Err(_) => AxumStatus::ACCEPTED,
    }
}

// ---------------------------------------------------------------------------------------------
// WeChat
// ---------------------------------------------------------------------------------------------

/// A fake WeChat open platform for the server's `http:URL` WeChat port: the OAuth code
/// `wx:OPENID` (see [`wechat_code_for`]) is exchanged for `OPENID`; any other code is refused
/// with 400, as an unknown or used code is.
pub struct FakeWechat {
    /// `http://127.0.0.1:PORT/oauth`
    pub url: String,
}

impl FakeWechat {
    async fn start() -> FakeWechat {
        async fn exchange(Json(body): Json<Value>) -> (AxumStatus, Json<Value>) {
            match body["oauth_code"].as_str().and_then(|c| c.strip_prefix("wx:")) {
                Some(openid) if !openid.is_empty() => (AxumStatus::OK, Json(json!({ "openid": openid }))),
                _ => (AxumStatus::BAD_REQUEST, Json(json!({ "errcode": 40029 }))),
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake WeChat");
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/oauth", post(exchange));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeWechat { url: format!("http://{addr}/oauth") }
    }
}

/// The OAuth code the fake WeChat exchanges for `openid`.
pub fn wechat_code_for(openid: &str) -> String {
    format!("wx:{openid}")
}

// ---------------------------------------------------------------------------------------------
// Stores and settings
// ---------------------------------------------------------------------------------------------

/// Which event store the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Server settings a test may change (environment variables of the server).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `SHENFEN_LOCKOUT_SECONDS`
    pub lockout_seconds: Option<u64>,
    /// `SHENFEN_LOCKOUT_THRESHOLD`
    pub lockout_threshold: Option<u32>,
    /// The people the identity authority knows. With the reference adapter (the default) they
    /// are written to `identity-registry.csv` in the test directory before the server starts
    /// (`SHENFEN_IDENTITY_AUTHORITY=reference:<that file>`); nobody listed means every check
    /// fails with `identity_not_found`. With [`Settings::http_authority`] they seed the fake.
    pub identities: Vec<Identity>,
    /// Run a [`FakeAuthority`] on loopback and start the server with
    /// `SHENFEN_IDENTITY_AUTHORITY=http:<its URL>` instead of the reference registry.
    pub http_authority: bool,
    /// More environment variables for the server and its commands, set last (they win).
    pub env: Vec<(String, String)>,
    /// PostgreSQL only: the server reaches the database through a [`faults::PgProxy`]
    /// ([`TestApp::proxy`]) that can lose answers.
    pub proxied: bool,
}

impl Settings {
    /// The server defaults.
    pub fn defaults() -> Settings {
        Settings::default()
    }

    /// A lock that lasts only `seconds`.
    pub fn lockout_seconds(seconds: u64) -> Settings {
        Settings { lockout_seconds: Some(seconds), ..Settings::default() }
    }

    /// A reference identity registry listing `identities`.
    pub fn with_identities(identities: Vec<Identity>) -> Settings {
        Settings { identities, ..Settings::default() }
    }

    /// A fake HTTP identity authority that knows `identities` (more can be added while it runs).
    pub fn with_http_authority(identities: Vec<Identity>) -> Settings {
        Settings { identities, http_authority: true, ..Settings::default() }
    }

    /// The server reaches PostgreSQL through a [`faults::PgProxy`].
    pub fn proxied(mut self) -> Settings {
        self.proxied = true;
        self
    }

    /// These settings and one more environment variable for the server.
    pub fn env(mut self, name: &str, value: &str) -> Settings {
        self.env.push((name.to_string(), value.to_string()));
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The identity authority
// ---------------------------------------------------------------------------------------------

/// The name of a registry row that makes the authority answer "unavailable".
pub const UNAVAILABLE: &str = "!unavailable";

/// One person as the identity authority knows them: a row of the reference registry
/// (`document_type,document_number,name,validity_start,validity_end`).
#[derive(Debug, Clone)]
pub struct Identity {
    pub document_type: String,
    pub document_number: String,
    /// The name on record; [`UNAVAILABLE`] makes the authority unavailable for this document.
    pub name: String,
    /// Checked only when not empty.
    pub validity_start: String,
    /// Checked only when not empty.
    pub validity_end: String,
}

impl Identity {
    /// A fresh resident ID card holder on record as `name` (validity not checked).
    pub fn resident(name: &str) -> Identity {
        Identity {
            document_type: "resident_id_card".into(),
            document_number: resident_id_number(),
            name: name.into(),
            validity_start: String::new(),
            validity_end: String::new(),
        }
    }

    /// A fresh resident ID card for which the authority is unavailable.
    pub fn unavailable() -> Identity {
        Identity::resident(UNAVAILABLE)
    }

    /// A registration of this resident ID card under `name`, which may differ from the name on
    /// record (the authority then answers `name_mismatch`).
    pub fn registration(&self, name: &str) -> Registration {
        Registration {
            document_type: self.document_type.clone(),
            document_number: self.document_number.clone(),
            name: name.into(),
            ..Registration::resident()
        }
    }

    fn csv_line(&self) -> String {
        [&self.document_type, &self.document_number, &self.name, &self.validity_start, &self.validity_end]
            .iter()
            .map(|field| {
                if field.contains([',', '"', '\n']) {
                    format!("\"{}\"", field.replace('"', "\"\""))
                } else {
                    field.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The reference registry CSV listing `identities`.
pub fn identity_registry_csv(identities: &[Identity]) -> String {
    let mut csv = String::from("document_type,document_number,name,validity_start,validity_end\n");
    for identity in identities {
        csv.push_str(&identity.csv_line());
        csv.push('\n');
    }
    csv
}

/// A fake identity authority for the `http:URL` adapter, on loopback: answers
/// `{"result": "passed"}` when type, number and name match a known person, `failed` with
/// `name_mismatch` or `identity_not_found` otherwise, and `unavailable` for [`UNAVAILABLE`];
/// records every query.
#[derive(Debug)]
pub struct FakeAuthority {
    /// `http://127.0.0.1:PORT/check`
    pub url: String,
    people: Mutex<Vec<Identity>>,
    queries: Mutex<Vec<Value>>,
    delay: Mutex<Duration>,
}

impl FakeAuthority {
    async fn start(people: Vec<Identity>) -> Arc<FakeAuthority> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake authority");
        let addr = listener.local_addr().unwrap();
        let authority = Arc::new(FakeAuthority {
            url: format!("http://{addr}/check"),
            people: Mutex::new(people),
            queries: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
        });
        let app = Router::new().route("/check", post(check_identity)).with_state(authority.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        authority
    }

    /// Adds a person (takes effect at once).
    pub fn add(&self, identity: Identity) {
        self.people.lock().unwrap().push(identity);
    }

    /// Every query received so far, in order.
    pub fn queries(&self) -> Vec<Value> {
        self.queries.lock().unwrap().clone()
    }

    /// Makes every later answer take `delay` (a slow authority).
    pub fn answer_after(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    fn answer(&self, query: &Value) -> Value {
        let field = |name: &str| query[name].as_str().unwrap_or("").trim().to_string();
        let people = self.people.lock().unwrap();
        let found = people.iter().find(|p| {
            p.document_type == field("document_type")
                && p.document_number.eq_ignore_ascii_case(&field("document_number"))
        });
        match found {
            None => json!({"result": "failed", "reason": "identity_not_found"}),
            Some(p) if p.name == UNAVAILABLE => json!({"result": "unavailable"}),
            Some(p) if p.name != field("name") => json!({"result": "failed", "reason": "name_mismatch"}),
            Some(_) => json!({"result": "passed"}),
        }
    }
}

async fn check_identity(State(authority): State<Arc<FakeAuthority>>, Json(query): Json<Value>) -> Json<Value> {
    let delay = *authority.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let answer = authority.answer(&query);
    authority.queries.lock().unwrap().push(query);
    Json(answer)
}

/// A directory under the system temp dir, removed on drop (kept when `SHENFEN_TESTS_KEEP` is set).
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "shenfen-tests-{}-{}-{:08x}",
            std::process::id(),
            next_unique(),
            rand::thread_rng().gen::<u32>()
        ));
        std::fs::create_dir_all(&path).expect("create test directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SHENFEN_TESTS_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

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
    let bin = postgres_bin_dir();
    let db = pgtemp::PgTempDB::builder()
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
        .await;
    let uri = db.connection_uri().replacen("postgresql://", "postgres://", 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        use sqlx::Connection;
        match sqlx::PgConnection::connect(&uri).await {
            Ok(conn) => {
                let _ = conn.close().await;
                break;
            }
            Err(e) if Instant::now() > deadline => panic!("PostgreSQL did not start accepting connections: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    (db, uri)
}

/// What several server processes of one test share: the directory (key file, blobs, SQLite
/// file, logs), the PostgreSQL server and the webhook.
struct Shared {
    // Field order is drop order: the PostgreSQL server goes before its directory.
    // Only held: dropping it stops PostgreSQL.
    _pg: Option<pgtemp::PgTempDB>,
    dir: TempDir,
    /// Whether the test started PostgreSQL again itself (see [`TestApp::start_postgres_again`]):
    /// then pgtemp no longer knows the server process, and it is stopped here.
    pg_restarted: std::sync::atomic::AtomicBool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.pg_restarted.load(Ordering::SeqCst) {
            if let Some(pg) = &self._pg {
                let _ = pg_ctl(&pg.data_dir(), &["stop", "-m", "immediate", "-w"]);
            }
        }
    }
}

/// Runs `pg_ctl ARGS -D DATA_DIR` as the user that owns the data directory (`postgres` when
/// we are root, as pgtemp does).
fn pg_ctl(data_dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = postgres_bin_dir().join("pg_ctl");
    let mut cmd = if nix_is_root() {
        let mut c = std::process::Command::new("sudo");
        c.args(["-u", "postgres"]).arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    };
    cmd.args(args).arg("-D").arg(data_dir);
    cmd.output().expect("run pg_ctl")
}

fn nix_is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

// ---------------------------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------------------------

/// One running server process and everything to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT` of the running process.
    pub base_url: String,
    /// An HTTP client without proxies.
    pub client: reqwest::Client,
    /// The webhook that records notifier messages.
    pub hooks: Arc<Hooks>,
    /// The database URL the server was given.
    pub db_url: String,
    /// The store the server runs on.
    pub store: Store,
    /// The settings the server was started with.
    pub settings: Settings,
    /// The fake identity authority, when [`Settings::http_authority`] is set.
    pub authority: Option<Arc<FakeAuthority>>,
    /// The proxy between the server and PostgreSQL, when [`Settings::proxied`] is set.
    pub proxy: Option<Arc<faults::PgProxy>>,
    /// The fake WeChat the server's WeChat port asks.
    pub wechat: Arc<FakeWechat>,
    /// The database URL without the proxy (what [`TestApp::execute_sql`] uses).
    pub direct_db_url: String,
    shared: Arc<Shared>,
    child: Option<Child>,
    log_path: PathBuf,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("base_url", &self.base_url).field("store", &self.store).finish()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "---- server log ({}) tail ----\n{}\n---- end of server log ----",
                self.log_path.display(),
                tail.join("\n")
            );
        }
    }
}

impl TestApp {
    /// A server on a fresh SQLite database with default settings.
    pub async fn spawn_sqlite() -> TestApp {
        TestApp::spawn(Store::Sqlite, Settings::default()).await
    }

    /// A server on a fresh PostgreSQL server with default settings.
    pub async fn spawn_postgres() -> TestApp {
        TestApp::spawn(Store::Postgres, Settings::default()).await
    }

    /// A server on a fresh database of the given store.
    pub async fn spawn(store: Store, settings: Settings) -> TestApp {
        let dir = TempDir::new();
        let (pg, direct_db_url) = match store {
            Store::Sqlite => (None, format!("sqlite://{}", dir.0.join("shenfen.db").display())),
            Store::Postgres => {
                let (pg, uri) = start_postgres().await;
                (Some(pg), uri)
            }
        };
        let (proxy, db_url) = match (&pg, settings.proxied) {
            (Some(pg), true) => {
                let port = pg.db_port();
                let proxy = faults::PgProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
                let url = direct_db_url.replacen("@localhost:", "@127.0.0.1:", 1).replacen(
                    &format!(":{port}/"),
                    &format!(":{}/", proxy.port),
                    1,
                );
                (Some(proxy), url)
            }
            _ => (None, direct_db_url.clone()),
        };
        let hooks = Hooks::start().await;
        let wechat = Arc::new(FakeWechat::start().await);
        let authority = if settings.http_authority {
            Some(FakeAuthority::start(settings.identities.clone()).await)
        } else {
            std::fs::write(dir.0.join(IDENTITY_REGISTRY), identity_registry_csv(&settings.identities))
                .expect("write the identity registry");
            None
        };
        let client =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("build HTTP client");
        let log_path = dir.0.join(format!("server-{}.log", next_unique()));
        let mut app = TestApp {
            base_url: String::new(),
            client,
            hooks,
            db_url,
            store,
            settings,
            authority,
            proxy,
            wechat,
            direct_db_url,
            shared: Arc::new(Shared { _pg: pg, dir, pg_restarted: std::sync::atomic::AtomicBool::new(false) }),
            child: None,
            log_path,
        };
        app.start().await;
        app
    }

    /// Another server process on the same database, key file and webhook.
    pub async fn spawn_sibling(&self) -> TestApp {
        let mut app = TestApp {
            base_url: String::new(),
            client: self.client.clone(),
            hooks: self.hooks.clone(),
            db_url: self.db_url.clone(),
            store: self.store,
            settings: self.settings.clone(),
            authority: self.authority.clone(),
            proxy: self.proxy.clone(),
            wechat: self.wechat.clone(),
            direct_db_url: self.direct_db_url.clone(),
            shared: self.shared.clone(),
            child: None,
            log_path: self.shared.dir.0.join(format!("server-{}.log", next_unique())),
        };
        app.start().await;
        app
    }

    /// PostgreSQL only: kills the database server at once, as a crash would
    /// (`pg_ctl stop -m immediate`: no checkpoint, no goodbye to the clients).
    pub fn crash_postgres(&self) {
        let pg = self.shared._pg.as_ref().expect("a PostgreSQL store");
        let out = pg_ctl(&pg.data_dir(), &["stop", "-m", "immediate", "-w"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// PostgreSQL only: starts the database server again on its data and port (after
    /// [`TestApp::crash_postgres`]); it recovers from its WAL. Returns once it accepts
    /// connections.
    pub async fn start_postgres_again(&self) {
        let pg = self.shared._pg.as_ref().expect("a PostgreSQL store");
        let data = pg.data_dir();
        let options = format!(
            "-c port={} -c unix_socket_directories={} -c logging_collector=on -c synchronous_commit=on -c fsync=off",
            pg.db_port(),
            data.display()
        );
        let log = data.join("restarted.log");
        let out = pg_ctl(&data, &["start", "-w", "-o", &options, "-l", &log.display().to_string()]);
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        self.shared.pg_restarted.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            use sqlx::Connection;
            match sqlx::PgConnection::connect(&self.direct_db_url).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!("PostgreSQL did not come back: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// What this server process has logged so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The test's directory (key file, blobs, SQLite file, server logs).
    pub fn dir(&self) -> &Path {
        &self.shared.dir.0
    }

    fn command(&self) -> Command {
        let dir = self.dir();
        let mut cmd = Command::new(server_binary());
        cmd.current_dir(dir)
            .env("SHENFEN_DATABASE_URL", &self.db_url)
            .env("SHENFEN_LISTEN", "127.0.0.1:0")
            .env("SHENFEN_NOTIFIER", format!("webhook:{}", self.hooks.url))
            .env("SHENFEN_SECRET_KEY_FILE", dir.join("secret.key"))
            .env("SHENFEN_BLOB_DIR", dir.join("blobs"))
            .env("SHENFEN_IP_RATE_LIMIT", "0")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("NO_COLOR", "1")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("all_proxy");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        if let Some(seconds) = self.settings.lockout_seconds {
            cmd.env("SHENFEN_LOCKOUT_SECONDS", seconds.to_string());
        }
        if let Some(threshold) = self.settings.lockout_threshold {
            cmd.env("SHENFEN_LOCKOUT_THRESHOLD", threshold.to_string());
        }
        let authority = match &self.authority {
            Some(fake) => format!("http:{}", fake.url),
            None => format!("reference:{}", dir.join(IDENTITY_REGISTRY).display()),
        };
        cmd.env("SHENFEN_IDENTITY_AUTHORITY", authority);
        cmd.env("SHENFEN_WECHAT", format!("http:{}", self.wechat.url));
        for (name, value) in &self.settings.env {
            cmd.env(name, value);
        }
        cmd
    }

    /// Rewrites the reference identity registry; the server reads it when it starts, so this
    /// takes effect at the next [`TestApp::restart`].
    pub fn write_identity_registry(&self, identities: &[Identity]) {
        std::fs::write(self.dir().join(IDENTITY_REGISTRY), identity_registry_csv(identities))
            .expect("write the identity registry");
    }

    /// The people of [`Settings::identities`], in order.
    pub fn identities(&self) -> &[Identity] {
        &self.settings.identities
    }

    /// Runs `shenfen-server staff add --username USERNAME --role ROLE` with the server's
    /// environment, the password on standard input, and returns its output.
    pub async fn run_staff_add(&self, username: &str, role: &str, password: &str) -> std::process::Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = self.command();
        cmd.args(["staff", "add", "--username", username, "--role", role])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", server_binary().display()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(format!("{password}\n").as_bytes()).await.expect("write the password");
        drop(stdin);
        tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("staff add finished within 30 s")
            .expect("run staff add")
    }

    /// `staff add` a fresh staff member with this role (asserting exit 0), signs them in and
    /// returns them with their token.
    pub async fn staff_member(&self, role: &str) -> StaffMember {
        let username = staff_username();
        let password = password();
        let output = self.run_staff_add(&username, role, &password).await;
        assert!(
            output.status.success(),
            "staff add --role {role} failed with {}:\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let token = self.staff_token(&username, &password).await;
        StaffMember { username, password, role: role.to_string(), token }
    }

    /// `POST /v1/staff/sessions`
    pub async fn staff_login(&self, username: &str, password: &str) -> ApiResponse {
        self.post_json("/v1/staff/sessions", &json!({"username": username, "password": password})).await
    }

    /// Signs a staff member in, asserts 201 and returns the token.
    pub async fn staff_token(&self, username: &str, password: &str) -> String {
        let response = self.staff_login(username, password).await;
        response.assert_status(201);
        response.str("token")
    }

    /// `POST /v1/staff/accounts` as `admin_token` for a fresh username with this role and,
    /// when given, the staff member's own applicant document.
    pub async fn create_staff(&self, admin_token: &str, role: &str, own_document: Option<(&str, &str)>) -> NewStaff {
        let username = staff_username();
        let password = password();
        let mut body = json!({"username": username, "role": role, "password": password});
        if let Some((document_type, document_number)) = own_document {
            body["own_document_type"] = json!(document_type);
            body["own_document_number"] = json!(document_number);
        }
        let response = self.post_json_as(admin_token, "/v1/staff/accounts", &body).await;
        NewStaff { username, password, role: role.to_string(), response }
    }

    /// Starts the server process (after [`TestApp::stop`]) and learns its port from the first
    /// line on stdout, `listening on 127.0.0.1:PORT`.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open server log");
        let mut cmd = self.command();
        cmd.arg("serve").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log)).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", server_binary().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        let line = match first {
            Ok(Ok(Some(line))) => line,
            other => {
                let _ = child.start_kill();
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                panic!("the server did not print `listening on ADDR` ({other:?}); its log:\n{log}");
            }
        };
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line on stdout: {line:?}"))
            .trim()
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.base_url = format!("http://{addr}");
        self.child = Some(child);
    }

    /// Kills the server process with SIGKILL and waits for it to end.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGKILL, then start again on the same database and key file (the port changes).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    /// Runs `shenfen-server import-legacy FILE` with the server's environment on `csv` (header
    /// `document_type,document_number,name,registered_at`), and asserts it exits 0.
    pub async fn import_legacy(&self, csv: &str) {
        let file = self.dir().join(format!("legacy-{}.csv", next_unique()));
        std::fs::write(&file, csv).expect("write legacy CSV");
        let mut cmd = self.command();
        cmd.arg("import-legacy").arg(&file).stdin(Stdio::null());
        let output = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .expect("import-legacy finished within 30 s")
            .expect("run import-legacy");
        assert!(
            output.status.success(),
            "import-legacy failed with {}:\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// See [`Hooks::wait_for_message`].
    pub async fn wait_for_message(&self, to: &str, purpose: &str) -> Message {
        self.hooks.wait_for_message(to, purpose).await
    }

    // -- raw HTTP -----------------------------------------------------------------------------

    /// A request to `path` on the running server.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base_url))
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, what: impl Into<String>, request: RequestBuilder) -> ApiResponse {
        let what = what.into();
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
        ApiResponse::read(what, response).await
    }

    /// `GET path`
    pub async fn get(&self, path: &str) -> ApiResponse {
        self.send(format!("GET {path}"), self.request(Method::GET, path)).await
    }

    /// `GET path` with a bearer token.
    pub async fn get_as(&self, token: &str, path: &str) -> ApiResponse {
        self.send(format!("GET {path}"), self.request(Method::GET, path).bearer_auth(token)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> ApiResponse {
        self.send(format!("POST {path} {body}"), self.request(Method::POST, path).json(body)).await
    }

    /// `POST path` with a JSON body and a bearer token.
    pub async fn post_json_as(&self, token: &str, path: &str, body: &Value) -> ApiResponse {
        self.send(format!("POST {path} {body}"), self.request(Method::POST, path).bearer_auth(token).json(body)).await
    }

    /// `PUT path` with a JSON body and a bearer token.
    pub async fn put_json_as(&self, token: &str, path: &str, body: &Value) -> ApiResponse {
        self.send(format!("PUT {path} {body}"), self.request(Method::PUT, path).bearer_auth(token).json(body)).await
    }

    /// `DELETE path` with a bearer token.
    pub async fn delete_as(&self, token: &str, path: &str) -> ApiResponse {
        self.send(format!("DELETE {path}"), self.request(Method::DELETE, path).bearer_auth(token)).await
    }

    // -- the account flows ---------------------------------------------------------------------

    /// `POST /v1/verification-codes` for `purpose` over SMS to `mobile`.
    pub async fn send_code(&self, purpose: &str, mobile: &str) -> ApiResponse {
        self.post_json("/v1/verification-codes", &json!({"purpose": purpose, "channel": "sms", "mobile": mobile})).await
    }

    /// Asks for a `register` code for `mobile` (202) and returns the code that arrives.
    pub async fn register_code(&self, mobile: &str) -> String {
        self.send_code("register", mobile).await.assert_status(202);
        self.wait_for_message(mobile, "register").await.code()
    }

    /// Fresh registration data for a resident ID card holder.
    pub fn new_registration(&self) -> Registration {
        Registration::resident()
    }

    /// Gets a code for the registration's mobile and posts `POST /v1/accounts`.
    pub async fn register(&self, registration: &Registration) -> ApiResponse {
        let code = self.register_code(&registration.mobile).await;
        self.post_json("/v1/accounts", &registration.body(&code)).await
    }

    /// Registers a fresh resident ID card holder and asserts 201.
    pub async fn register_account(&self) -> Registered {
        self.register_account_with(self.new_registration()).await
    }

    /// Registers `registration` and asserts 201.
    pub async fn register_account_with(&self, registration: Registration) -> Registered {
        let response = self.register(&registration).await;
        response.assert_status(201);
        let account_id = response.str("account_id");
        Registered {
            document_type: registration.document_type,
            document_number: registration.document_number,
            name: registration.name,
            password: registration.password,
            mobile: registration.mobile,
            email: registration.email,
            account_id,
        }
    }

    /// `POST /v1/sessions` with a document number and password (no type).
    pub async fn login(&self, document_number: &str, password: &str) -> ApiResponse {
        self.post_json("/v1/sessions", &json!({"document_number": document_number, "password": password})).await
    }

    /// Logs the account in with its current password, asserts 201 and returns the token.
    pub async fn login_ok(&self, account: &Registered) -> String {
        let response = self
            .post_json(
                "/v1/sessions",
                &json!({
                    "document_number": account.document_number,
                    "password": account.password,
                    "document_type": account.document_type,
                }),
            )
            .await;
        response.assert_status(201);
        response.str("token")
    }

    /// `PUT /v1/me/wechat` with the OAuth code of `openid` and the current password.
    pub async fn bind_wechat(&self, token: &str, password: &str, openid: &str) -> ApiResponse {
        let body = json!({"oauth_code": wechat_code_for(openid), "current_password": password});
        self.put_json_as(token, "/v1/me/wechat", &body).await
    }

    /// `GET /v1/me`
    pub async fn me(&self, token: &str) -> ApiResponse {
        self.get_as(token, "/v1/me").await
    }

    /// `POST /v1/password-resets` for the account.
    pub async fn start_password_reset(&self, account: &Registered) -> ApiResponse {
        self.post_json(
            "/v1/password-resets",
            &json!({
                "document_type": account.document_type,
                "document_number": account.document_number,
                "name": account.name,
            }),
        )
        .await
    }

    /// `POST /v1/password-resets/{id}/deliveries`
    pub async fn deliver_reset(&self, reset_id: &str, method: &str) -> ApiResponse {
        self.post_json(&format!("/v1/password-resets/{reset_id}/deliveries"), &json!({"method": method})).await
    }

    /// `POST /v1/password-resets/{id}/completion`
    pub async fn complete_reset(&self, reset_id: &str, secret: &str, new_password: &str) -> ApiResponse {
        self.post_json(
            &format!("/v1/password-resets/{reset_id}/completion"),
            &json!({"secret": secret, "new_password": new_password, "new_password_confirmation": new_password}),
        )
        .await
    }
}

impl TestApp {
    // -- real-name verification and manual review ----------------------------------------------

    /// `PUT /v1/me/profile` with what an account of `document_type` needs to complete its
    /// profile (the ethnicity; for permits also gender, birth date and local identity number,
    /// and for residence permits the travel-permit number); asserts 200.
    pub async fn complete_profile(&self, token: &str, document_type: &str) {
        let body = match document_type {
            "resident_id_card" => json!({"ethnicity": "01"}),
            "hmt_residence_permit" => {
                panic!("complete_profile: give a residence permit's birth date by hand (it is in the number)")
            }
            _ => {
                json!({"ethnicity": "01", "gender": "male", "birth_date": "1990-05-20", "local_id_number": "A1234563"})
            }
        };
        self.put_json_as(token, "/v1/me/profile", &body).await.assert_status(200);
    }

    /// Registers `registration`, signs in and completes the profile: an applicant ready for
    /// real-name verification. Returns the account and a session token.
    pub async fn ready_applicant(&self, registration: Registration) -> (Registered, String) {
        let document_type = registration.document_type.clone();
        let account = self.register_account_with(registration).await;
        let token = self.login_ok(&account).await;
        self.complete_profile(&token, &document_type).await;
        (account, token)
    }

    /// `POST /v1/me/real-name-verifications` without a body (verify the registered data).
    pub async fn verify(&self, token: &str) -> ApiResponse {
        let path = "/v1/me/real-name-verifications";
        self.send(format!("POST {path} (no body)"), self.request(Method::POST, path).bearer_auth(token)).await
    }

    /// `POST /v1/me/real-name-verifications` with `{name?, validity?}`.
    pub async fn verify_with(&self, token: &str, body: &Value) -> ApiResponse {
        self.post_json_as(token, "/v1/me/real-name-verifications", body).await
    }

    /// `POST path` with a multipart form and a bearer token.
    pub async fn post_multipart_as(&self, token: &str, path: &str, form: MultipartForm) -> ApiResponse {
        let what = format!("POST {path} multipart {}", form.describe());
        let content_type = form.content_type();
        let request = self
            .request(Method::POST, path)
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(form.finish());
        self.send(what, request).await
    }

    /// `POST /v1/me/manual-reviews` with the application.
    pub async fn apply_for_review(&self, token: &str, application: &ReviewApplication) -> ApiResponse {
        self.post_multipart_as(token, "/v1/me/manual-reviews", application.form()).await
    }

    /// `GET /v1/me/manual-reviews`
    pub async fn my_reviews(&self, token: &str) -> ApiResponse {
        self.get_as(token, "/v1/me/manual-reviews").await
    }

    /// `GET /v1/me/business-eligibility`
    pub async fn eligibility(&self, token: &str) -> ApiResponse {
        self.get_as(token, "/v1/me/business-eligibility").await
    }

    /// `GET /v1/review-queue`
    pub async fn review_queue(&self, token: &str) -> ApiResponse {
        self.get_as(token, "/v1/review-queue").await
    }

    /// `POST /v1/manual-reviews/{id}/claim`
    pub async fn claim_review(&self, token: &str, review_id: &str) -> ApiResponse {
        let path = format!("/v1/manual-reviews/{review_id}/claim");
        self.send(format!("POST {path}"), self.request(Method::POST, &path).bearer_auth(token)).await
    }

    /// `POST /v1/manual-reviews/{id}/decision` with `decision` (`approve` or `reject`) and a
    /// reason when given.
    pub async fn decide_review(
        &self,
        token: &str,
        review_id: &str,
        decision: &str,
        reason: Option<&str>,
    ) -> ApiResponse {
        let mut body = json!({"decision": decision});
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        self.post_json_as(token, &format!("/v1/manual-reviews/{review_id}/decision"), &body).await
    }

    /// `GET /v1/manual-reviews/{id}/photos/{which}` (`front`, `back` or `handheld`).
    pub async fn review_photo(&self, token: &str, review_id: &str, which: &str) -> ApiResponse {
        self.get_as(token, &format!("/v1/manual-reviews/{review_id}/photos/{which}")).await
    }
}

/// A signed-in staff member.
#[derive(Debug, Clone)]
pub struct StaffMember {
    pub username: String,
    pub password: String,
    pub role: String,
    pub token: String,
}

/// A staff account asked for through `POST /v1/staff/accounts`, and the answer.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub username: String,
    pub password: String,
    pub role: String,
    pub response: ApiResponse,
}

// ---------------------------------------------------------------------------------------------
// Manual-review applications: multipart forms and photos
// ---------------------------------------------------------------------------------------------

/// A `multipart/form-data` body, built by hand (the workspace's `reqwest` has no multipart
/// feature, and a hand-built form can also carry what a browser never would).
#[derive(Debug, Clone)]
pub struct MultipartForm {
    boundary: String,
    body: Vec<u8>,
    parts: Vec<String>,
}

impl Default for MultipartForm {
    fn default() -> Self {
        MultipartForm::new()
    }
}

impl MultipartForm {
    /// An empty form with a random boundary.
    pub fn new() -> MultipartForm {
        MultipartForm {
            boundary: format!("shenfen-test-{:016x}", rand::thread_rng().gen::<u64>()),
            body: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: &str) -> MultipartForm {
        self.body.extend_from_slice(
            format!("--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n", self.boundary).as_bytes(),
        );
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self.parts.push(format!("{name}={value}"));
        self
    }

    /// Adds a file part.
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> MultipartForm {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self.parts.push(format!("{name}=<{} bytes>", bytes.len()));
        self
    }

    /// The `content-type` header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The parts, for messages.
    pub fn describe(&self) -> String {
        self.parts.join(", ")
    }

    /// The body, closed.
    pub fn finish(mut self) -> Vec<u8> {
        self.body.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        self.body
    }
}

/// A real 1×1 baseline JPEG (the one `api/src/blobs.rs` tests with).
pub const TINY_JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0xFF, 0xDB, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07, 0x07, 0x09, 0x09, 0x08,
    0x0A, 0x0C, 0x14, 0x0D, 0x0C, 0x0B, 0x0B, 0x0C, 0x19, 0x12, 0x13, 0x0F, 0x14, 0x1D, 0x1A, 0x1F, 0x1E, 0x1D, 0x1A,
    0x1C, 0x1C, 0x20, 0x24, 0x2E, 0x27, 0x20, 0x22, 0x2C, 0x23, 0x1C, 0x1C, 0x28, 0x37, 0x29, 0x2C, 0x30, 0x31, 0x34,
    0x34, 0x34, 0x1F, 0x27, 0x39, 0x3D, 0x38, 0x32, 0x3C, 0x2E, 0x33, 0x34, 0x32, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xC4, 0x00, 0x1F, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0A, 0x0B, 0xFF, 0xC4, 0x00, 0xB5, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04,
    0x00, 0x00, 0x01, 0x7D, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
    0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33,
    0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36,
    0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
    0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84,
    0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
    0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6,
    0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6,
    0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFF, 0xDA, 0x00, 0x08, 0x01,
    0x01, 0x00, 0x00, 0x3F, 0x00, 0xD2, 0xCF, 0x20, 0xFF, 0xD9,
];

/// The first bytes of a PNG file: a picture, but not a JPEG.
pub const PNG_HEADER: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

/// [`TINY_JPEG`] with comment (COM) segments of `comment` inserted after the start-of-image
/// marker: still a real JPEG, with different bytes for each comment.
pub fn jpeg_with_comment(comment: &[u8]) -> Vec<u8> {
    let mut jpeg = TINY_JPEG[..2].to_vec();
    for chunk in comment.chunks(65_533) {
        jpeg.extend_from_slice(&[0xFF, 0xFE]);
        jpeg.extend_from_slice(&u16::try_from(chunk.len() + 2).unwrap().to_be_bytes());
        jpeg.extend_from_slice(chunk);
    }
    jpeg.extend_from_slice(&TINY_JPEG[2..]);
    jpeg
}

/// A small real JPEG whose bytes name `label`, so that photos can be told apart.
pub fn labelled_jpeg(label: &str) -> Vec<u8> {
    jpeg_with_comment(format!("shenfen test photo {label} {}", next_unique()).as_bytes())
}

/// A real JPEG of exactly `size` bytes (at least [`TINY_JPEG`] and one comment segment),
/// padded with comment segments.
pub fn jpeg_of_size(size: usize) -> Vec<u8> {
    let padding = size.checked_sub(TINY_JPEG.len()).unwrap_or_else(|| panic!("no JPEG of {size} bytes"));
    // Each comment segment costs 4 bytes (marker and length) besides its at most 65 533 bytes.
    let segments = (1..=padding / 4)
        .find(|k| (padding - 4 * k).div_ceil(65_533) == *k)
        .unwrap_or_else(|| panic!("no JPEG of {size} bytes"));
    let jpeg = jpeg_with_comment(&vec![b'x'; padding - 4 * segments]);
    assert_eq!(jpeg.len(), size);
    jpeg
}

/// The three photo parts of an application.
pub const PHOTO_PARTS: [&str; 3] = ["photo_front", "photo_back", "photo_handheld"];

/// A manual-review application; [`ReviewApplication::form`] makes the multipart form. Change
/// fields freely.
#[derive(Debug, Clone)]
pub struct ReviewApplication {
    pub document_type: String,
    pub name: String,
    pub validity_period: String,
    pub validity_start: String,
    /// `(part name, bytes)`, sent in this order; a part left out is not sent.
    pub photos: Vec<(String, Vec<u8>)>,
}

impl ReviewApplication {
    /// An application for the document and validity of `registration`, under `name`, with three
    /// different small JPEGs.
    pub fn for_registration(registration: &Registration, name: &str) -> ReviewApplication {
        ReviewApplication {
            document_type: registration.document_type.clone(),
            name: name.to_string(),
            validity_period: registration.period.clone(),
            validity_start: registration.start.clone(),
            photos: PHOTO_PARTS.iter().map(|part| (part.to_string(), labelled_jpeg(part))).collect(),
        }
    }

    /// The bytes sent as `part`.
    pub fn photo(&self, part: &str) -> &[u8] {
        self.photos.iter().find(|(p, _)| p == part).map(|(_, b)| b.as_slice()).unwrap_or_else(|| panic!("no {part}"))
    }

    /// This application with `part` replaced by `bytes`.
    pub fn with_photo(mut self, part: &str, bytes: Vec<u8>) -> ReviewApplication {
        self.photos.retain(|(p, _)| p != part);
        self.photos.push((part.to_string(), bytes));
        self
    }

    /// This application without `part`.
    pub fn without_photo(mut self, part: &str) -> ReviewApplication {
        self.photos.retain(|(p, _)| p != part);
        self
    }

    /// The multipart form.
    pub fn form(&self) -> MultipartForm {
        let mut form = MultipartForm::new()
            .text("document_type", &self.document_type)
            .text("name", &self.name)
            .text("validity_period", &self.validity_period)
            .text("validity_start", &self.validity_start);
        for (part, bytes) in &self.photos {
            let filename = format!("{}.jpg", part.trim_start_matches("photo_"));
            form = form.file(part, &filename, "image/jpeg", bytes);
        }
        form
    }
}

// ---------------------------------------------------------------------------------------------
// China time and the working-day calendar
// ---------------------------------------------------------------------------------------------

/// The State Council holiday calendar (copied from the spec): `date,kind,holiday`, kind
/// `holiday` or `working_day`.
const CN_CALENDAR: &str = include_str!("../data/cn-calendar.csv");

/// Today in China Standard Time (UTC+8).
pub fn china_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// The next midnight in China Standard Time, as an instant.
pub fn next_china_midnight() -> chrono::DateTime<chrono::Utc> {
    let tomorrow = china_today().succ_opt().unwrap();
    tomorrow.and_hms_opt(0, 0, 0).unwrap().and_utc() - chrono::Duration::hours(8)
}

/// Whether `date` is a working day: listed days as the calendar says, the rest Monday–Friday
/// (also for years the calendar does not cover).
pub fn is_working_day(date: chrono::NaiveDate) -> bool {
    use chrono::Datelike;
    let key = date.format("%Y-%m-%d").to_string();
    for line in CN_CALENDAR.lines().skip(1) {
        let mut fields = line.split(',');
        if fields.next() == Some(key.as_str()) {
            return fields.next() == Some("working_day");
        }
    }
    !matches!(date.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun)
}

/// Working days after `from` up to and including `to`.
pub fn working_days_between(from: chrono::NaiveDate, to: chrono::NaiveDate) -> u32 {
    from.iter_days().skip(1).take_while(|d| *d <= to).filter(|d| is_working_day(*d)).count() as u32
}

/// The manual-review period holding `date`: 1 Jan – 31 Aug or 1 Sep – 31 Dec.
pub fn review_period(date: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
    use chrono::Datelike;
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(date.year(), m, d).unwrap();
    if date.month() <= 8 {
        (day(1, 1), day(8, 31))
    } else {
        (day(9, 1), day(12, 31))
    }
}

/// What a registration sends; [`Registration::body`] makes the JSON. Change fields freely.
#[derive(Debug, Clone)]
pub struct Registration {
    pub document_type: String,
    pub document_number: String,
    pub name: String,
    pub period: String,
    pub start: String,
    pub password: String,
    pub email: String,
    pub mobile: String,
}

impl Registration {
    /// A fresh resident ID card holder, validity 20 years from 2021-03-15.
    pub fn resident() -> Registration {
        Registration {
            document_type: "resident_id_card".into(),
            document_number: resident_id_number(),
            name: "王小明".into(),
            period: "20y".into(),
            start: "2021-03-15".into(),
            password: password(),
            email: email_address(),
            mobile: mobile_number(),
        }
    }

    /// A fresh Hong Kong/Macau permit holder, validity 10 years from 2022-06-01.
    pub fn hk_macau_permit() -> Registration {
        Registration {
            document_type: "hk_macau_permit".into(),
            document_number: hk_macau_permit_number(),
            name: "陈大文".into(),
            period: "10y".into(),
            start: "2022-06-01".into(),
            ..Registration::resident()
        }
    }

    /// A fresh Hong Kong residence permit holder, validity 5 years from 2023-01-10.
    pub fn hmt_residence_permit() -> Registration {
        Registration {
            document_type: "hmt_residence_permit".into(),
            document_number: hmt_residence_permit_number(),
            name: "黄志明".into(),
            period: "5y".into(),
            start: "2023-01-10".into(),
            ..Registration::resident()
        }
    }

    /// The `POST /v1/accounts` body with this verification code.
    pub fn body(&self, code: &str) -> Value {
        json!({
            "agreement_accepted": true,
            "document_type": self.document_type,
            "document_number": self.document_number,
            "name": self.name,
            "validity": {"period": self.period, "start": self.start},
            "password": self.password,
            "password_confirmation": self.password,
            "email": self.email,
            "mobile": self.mobile,
            "verification": {"channel": "sms", "code": code},
        })
    }
}

/// A registered account and its credentials.
#[derive(Debug, Clone)]
pub struct Registered {
    pub document_type: String,
    pub document_number: String,
    pub name: String,
    pub password: String,
    pub mobile: String,
    pub email: String,
    pub account_id: String,
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A whole HTTP answer, with what was asked, for helpful assertion messages.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The request, e.g. `POST /v1/accounts {..}`.
    pub what: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as sent (for binary answers such as photos).
    pub bytes: Vec<u8>,
}

impl ApiResponse {
    async fn read(what: String, response: reqwest::Response) -> ApiResponse {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("{what}: reading the body failed: {e}")).to_vec();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        ApiResponse { what, status, headers, text, body, bytes }
    }

    /// The request and the answer, for assertion messages.
    pub fn describe(&self) -> String {
        let what: String = self.what.chars().take(600).collect();
        format!("request: {what}\nanswer: {} {}", self.status, self.text.chars().take(2000).collect::<String>())
    }

    /// Asserts the status code.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(self.status.as_u16(), expected, "unexpected status\n{}", self.describe());
        self
    }

    /// The `content-type` header, or "".
    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// A header, or `None`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "content-type is {:?}, not application/problem+json\n{}",
            self.content_type(),
            self.describe()
        );
        assert_eq!(self.body["code"].as_str(), Some(code), "unexpected problem code\n{}", self.describe());
        assert_eq!(
            self.body["status"].as_u64(),
            Some(u64::from(status)),
            "problem `status` field\n{}",
            self.describe()
        );
        self
    }

    /// A string field of the JSON body (dotted paths such as `validity.end`).
    #[track_caller]
    pub fn str(&self, path: &str) -> String {
        let mut value = &self.body;
        for part in path.split('.') {
            value = &value[part];
        }
        value.as_str().unwrap_or_else(|| panic!("no string at `{path}`\n{}", self.describe())).to_string()
    }

    /// `errors: [{field, code}]` of a 422, as pairs.
    #[track_caller]
    pub fn field_errors(&self) -> Vec<(String, String)> {
        let errors = self.body["errors"].as_array().unwrap_or_else(|| panic!("no `errors` array\n{}", self.describe()));
        errors
            .iter()
            .map(|e| (e["field"].as_str().unwrap_or("").to_string(), e["code"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// Asserts a 422 that lists `field` with `code` (among possibly others).
    #[track_caller]
    pub fn assert_field_error(&self, field: &str, code: &str) -> &Self {
        self.assert_status(422);
        let errors = self.field_errors();
        assert!(
            errors.iter().any(|(f, c)| f == field && c == code),
            "expected {field}: {code} among the errors {errors:?}\n{}",
            self.describe()
        );
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Analysts, auditors and the database behind the server's back
// ---------------------------------------------------------------------------------------------

/// How long a test waits for an asynchronous projection (the analytics tables) to show a change.
pub const PROJECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh `x-request-id` value, unique in this process.
pub fn request_id() -> String {
    format!("test-request-{}-{:08x}", next_unique(), rand::thread_rng().gen::<u32>())
}

/// Parses CSV text (RFC 4180: fields in double quotes may hold commas, line breaks and doubled
/// quotes; lines end in LF or CRLF) into rows of fields. A trailing line break ends the last
/// row; it does not start an empty one.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

impl TestApp {
    /// `GET path` as `token` with `Accept: text/csv`.
    pub async fn get_csv_as(&self, token: &str, path: &str) -> ApiResponse {
        let request = self.request(Method::GET, path).bearer_auth(token).header("accept", "text/csv");
        self.send(format!("GET {path} (Accept: text/csv)"), request).await
    }

    /// `GET path` as `token` every 50 ms until `done` accepts the answer or
    /// [`PROJECTION_TIMEOUT`] passes, for read models that are updated asynchronously. Returns
    /// the last answer either way, so that the caller's assertions show what was there.
    pub async fn poll_as(&self, token: &str, path: &str, done: impl Fn(&ApiResponse) -> bool) -> ApiResponse {
        let deadline = Instant::now() + PROJECTION_TIMEOUT;
        loop {
            let response = self.get_as(token, path).await;
            if done(&response) || Instant::now() > deadline {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `METHOD path` with `x-request-id: request_id`, and a bearer token and a JSON body when
    /// given.
    pub async fn send_with_request_id(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        request_id: &str,
    ) -> ApiResponse {
        let mut what = format!("{method} {path} (x-request-id: {request_id})");
        let mut request = self.request(method, path).header("x-request-id", request_id);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            what.push_str(&format!(" {body}"));
            request = request.json(body);
        }
        self.send(what, request).await
    }

    /// `GET /v1/audit/aggregates/{aggregate_type}/{id}/events` as `token`.
    pub async fn audit_events(&self, token: &str, aggregate_type: &str, id: &str) -> ApiResponse {
        self.get_as(token, &format!("/v1/audit/aggregates/{aggregate_type}/{id}/events")).await
    }

    /// `GET /v1/audit/aggregates/{aggregate_type}/{id}/state`, with `as_of` (sent as RFC 3339
    /// in UTC with microseconds) when given.
    pub async fn audit_state(
        &self,
        token: &str,
        aggregate_type: &str,
        id: &str,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> ApiResponse {
        let mut path = format!("/v1/audit/aggregates/{aggregate_type}/{id}/state");
        if let Some(as_of) = as_of {
            path.push_str(&format!("?as_of={}", as_of.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
        }
        self.get_as(token, &path).await
    }

    /// Runs one SQL statement on the server's database behind the server's back (as an
    /// intruder with database access would), binding `args` as text to `$1`, `$2`, …; returns
    /// the number of rows it changed.
    pub async fn execute_sql(&self, sql: &str, args: &[&str]) -> u64 {
        use sqlx::Connection;
        match self.store {
            Store::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.direct_db_url).await.expect("connect to PostgreSQL");
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                let done = query.execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
                done.rows_affected()
            }
            Store::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db_url).await.expect("open the SQLite file");
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                let done = query.execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
                done.rows_affected()
            }
        }
    }
}

impl TestApp {
    /// Runs one query on the server's database behind its back and returns the first column of
    /// the first row as a number (`0` when there is no row). `args` are bound as text.
    pub async fn query_i64(&self, sql: &str, args: &[&str]) -> i64 {
        self.query_texts(&format!("SELECT CAST(({sql}) AS TEXT)"), args)
            .await
            .first()
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Runs one query on the server's database behind its back and returns the first column
    /// of every row, as text (cast it in the query). `args` are bound as text.
    pub async fn query_texts(&self, sql: &str, args: &[&str]) -> Vec<Option<String>> {
        use sqlx::Connection;
        match self.store {
            Store::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.direct_db_url).await.expect("connect to PostgreSQL");
                let mut query = sqlx::query_scalar::<_, Option<String>>(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                let rows = query.fetch_all(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
                rows
            }
            Store::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db_url).await.expect("open the SQLite file");
                let mut query = sqlx::query_scalar::<_, Option<String>>(sql);
                for arg in args {
                    query = query.bind(*arg);
                }
                let rows = query.fetch_all(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
                rows
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_character_of_the_standard_example_is_x() {
        assert_eq!(gb11643_check_char("11010519491231002"), 'X');
    }

    #[test]
    fn generated_resident_numbers_are_valid_and_unique() {
        let numbers: Vec<String> = (0..2000).map(|_| resident_id_number()).collect();
        for n in &numbers {
            assert_eq!(n.len(), 18);
            assert_eq!(gb11643_check_char(&n[..17]), n.chars().last().unwrap());
            assert!(chrono::NaiveDate::parse_from_str(&n[6..14], "%Y%m%d").is_ok(), "{n}");
        }
        let unique: std::collections::HashSet<&String> = numbers.iter().collect();
        assert_eq!(unique.len(), numbers.len());
    }

    #[test]
    fn padded_jpegs_have_the_size_asked_for_and_keep_the_jpeg_markers() {
        for size in [400, 65_000, 190 * 1024 - 1, 190 * 1024, 1024 * 1024 + 1] {
            let jpeg = jpeg_of_size(size);
            assert_eq!(jpeg.len(), size);
            assert_eq!(&jpeg[..4], &[0xFF, 0xD8, 0xFF, 0xFE]);
            assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
        }
        assert_ne!(labelled_jpeg("front"), labelled_jpeg("front"));
    }

    #[test]
    fn the_calendar_knows_holidays_and_adjusted_working_weekends() {
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(!is_working_day(day("2026-10-01")), "National Day");
        assert!(is_working_day(day("2026-10-10")), "an adjusted working Saturday");
        assert!(!is_working_day(day("2026-11-21")), "an ordinary Saturday");
        assert!(is_working_day(day("2027-03-01")), "a Monday of a year without data");
        // 2026-09-30 (Wed) + 7 working days: 10-08, 09, 10 (Sat, working), 12, 13, 14, 15.
        assert_eq!(working_days_between(day("2026-09-30"), day("2026-10-15")), 7);
        assert_eq!(working_days_between(day("2026-09-30"), day("2026-10-14")), 6);
        assert_eq!(review_period(day("2026-11-23")), (day("2026-09-01"), day("2026-12-31")));
        assert_eq!(review_period(day("2027-08-31")), (day("2027-01-01"), day("2027-08-31")));
    }

    #[test]
    fn masking_keeps_the_first_two_and_last_two_characters() {
        assert_eq!(masked("11010519491231002X"), "11**************2X");
    }

    #[test]
    fn csv_parsing_handles_quotes_commas_and_line_ends() {
        let rows = parse_csv("day,reason\r\n2026-01-05,\"a, \"\"b\"\"\"\n2026-01-06,\n");
        assert_eq!(rows, vec![vec!["day", "reason"], vec!["2026-01-05", "a, \"b\""], vec!["2026-01-06", ""]]);
        assert!(parse_csv("").is_empty());
    }
}
