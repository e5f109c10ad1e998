//! The application under test: a server process (or several sharing a store), started,
//! stopped, killed and restarted.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use rand::Rng;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::*;

mod analysts;
mod requests;

pub use analysts::{parse_csv, request_id};
pub use requests::{NewStaff, StaffMember};

/// How long a test waits for a notifier message before it fails.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The reference identity registry's file name in the test directory.
pub(crate) const IDENTITY_REGISTRY: &str = "identity-registry.csv";
/// How long the server may take from spawn to its `listening on` line.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory under the system temp dir, removed on drop (kept when `SHENFEN_TESTS_KEEP` is set).
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
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

/// What several server processes of one test share: the directory (key file, blobs, SQLite
/// file, logs), the PostgreSQL server and the webhook.
pub(crate) struct Shared {
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

    pub(crate) fn command(&self) -> Command {
        let dir = self.dir();
        let mut cmd = Command::new(server_binary());
        cmd.current_dir(dir)
            .env("SHENFEN_DATABASE_URL", &self.db_url)
            .env("SHENFEN_LISTEN", "127.0.0.1:0")
            .env("SHENFEN_NOTIFIER", format!("webhook:{}", self.hooks.url))
            .env("SHENFEN_SECRET_KEY_FILE", dir.join("secret.key"))
            .env("SHENFEN_MASTER_KEY_FILE", dir.join("master.keys"))
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
        self.run_staff_add_with(username, role, password, &[]).await
    }

    /// Like [`TestApp::run_staff_add`], with more arguments (a school staff member's
    /// `--school`, `--grade`, `--class`).
    pub async fn run_staff_add_with(
        &self,
        username: &str,
        role: &str,
        password: &str,
        more: &[&str],
    ) -> std::process::Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = self.command();
        cmd.args(["staff", "add", "--username", username, "--role", role])
            .args(more)
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

    /// `staff add` a head teacher of one class (`--school --grade --class`) or, with
    /// `grade_class` `None`, a school admin of the school; signs them in.
    pub async fn school_staff(&self, school: &str, grade_class: Option<(u8, &str)>) -> StaffMember {
        let username = staff_username();
        let password = password();
        let grade;
        let mut args = vec!["--school", school];
        let role = match grade_class {
            Some((g, class)) => {
                grade = g.to_string();
                args.extend(["--grade", grade.as_str(), "--class", class]);
                "head_teacher"
            }
            None => "school_admin",
        };
        let output = self.run_staff_add_with(&username, role, &password, &args).await;
        assert!(
            output.status.success(),
            "staff add --role {role} {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let token = self.staff_token(&username, &password).await;
        StaffMember { username, password, role: role.to_string(), token }
    }

    /// The SQLite store's files (database, WAL, shared memory) and where their backup goes.
    fn sqlite_files(&self) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
        let db = self.db_url.trim_start_matches("sqlite://").to_string();
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| {
                (std::path::PathBuf::from(format!("{db}{suffix}")), self.dir().join(format!("backup{suffix}")))
            })
            .collect()
    }

    /// Takes a backup of the SQLite store: the server stopped, its files copied, started again.
    pub async fn backup_sqlite(&mut self) {
        self.stop().await;
        for (file, backup) in self.sqlite_files() {
            if file.exists() {
                std::fs::copy(&file, &backup).expect("copy the store");
            }
        }
        self.start().await;
    }

    /// Restores the backup of [`TestApp::backup_sqlite`]: the server stopped, the files replaced,
    /// started again (the start-up work, such as the erasure journal's replay, runs).
    pub async fn restore_sqlite(&mut self) {
        self.stop().await;
        for (file, backup) in self.sqlite_files() {
            let _ = std::fs::remove_file(&file);
            if backup.exists() {
                std::fs::copy(&backup, &file).expect("restore the store");
            }
        }
        self.start().await;
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

    /// Runs `shenfen-server serve` with the server's environment (the server stopped), expecting
    /// it to refuse to start: its standard error and log, after it exited unsuccessfully.
    pub async fn serve_refused(&self) -> String {
        assert!(self.child.is_none(), "stop the server first");
        let mut cmd = self.command();
        cmd.arg("serve").stdin(Stdio::null()).kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .expect("the server was expected to exit within 30 s, refusing to start")
            .expect("run serve");
        assert!(!output.status.success(), "the server started: {}", String::from_utf8_lossy(&output.stdout));
        format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout))
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
        let request = request.build().unwrap_or_else(|e| panic!("{what}: cannot build the request: {e}"));
        let (method, path) = (request.method().to_string(), request.url().path().to_string());
        let response = self.client.execute(request).await.unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
        let answer = ApiResponse::read(what, response).await;
        crate::contract::check(
            &answer.what,
            &method,
            &path,
            answer.status.as_u16(),
            answer.content_type(),
            &answer.body,
        );
        answer
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
