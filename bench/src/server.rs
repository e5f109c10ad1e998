//! The system under test: the `shenfen` server as a child process, and the webhook that stands
//! in for the SMS gateway so the load generator can read verification codes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// How long the server may take to migrate and start listening.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// One message the server sent through the webhook notifier.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub channel: String,
    pub to: String,
    pub purpose: String,
    pub code: Option<String>,
}

/// The codes received so far, by purpose and destination (the latest wins), and a wake-up for
/// whoever waits for one.
#[derive(Default)]
pub struct Inbox {
    codes: Mutex<std::collections::HashMap<(String, String), String>>,
    arrived: tokio::sync::Notify,
}

impl Inbox {
    fn push(&self, message: Message) {
        if let (true, Some(code)) = (message.channel == "sms", message.code) {
            let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
            codes.insert((message.purpose, message.to), code);
        }
        self.arrived.notify_waiters();
    }

    fn find_code(&self, purpose: &str, to: &str) -> Option<String> {
        let codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.get(&(purpose.to_string(), to.to_string())).cloned()
    }

    /// Waits (at most `timeout`) for a code of `purpose` sent by SMS to `to`.
    pub async fn code_for(&self, purpose: &str, to: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            // Registered before looking, so a code arriving in between is not missed.
            let arrived = self.arrived.notified();
            if let Some(code) = self.find_code(purpose, to) {
                return Ok(code);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, arrived).await.is_err() {
                anyhow::bail!("no {purpose} code reached the webhook within {} s", timeout.as_secs())
            }
        }
    }
}

/// The webhook: its address, its inbox and the task serving it.
pub struct Webhook {
    pub addr: SocketAddr,
    pub inbox: Arc<Inbox>,
    task: JoinHandle<()>,
}

impl Webhook {
    /// Starts listening on a free loopback port.
    pub async fn start() -> anyhow::Result<Webhook> {
        let inbox = Arc::new(Inbox::default());
        let app = Router::new().route("/hook", post(receive)).with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the webhook")?;
        let addr = listener.local_addr().context("the webhook's address")?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("shenfen-load: the webhook stopped: {e}");
            }
        });
        Ok(Webhook { addr, inbox, task })
    }

    /// The notifier setting that points the server here.
    pub fn notifier(&self) -> String {
        format!("webhook:http://{}/hook", self.addr)
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, Json(message): Json<Message>) -> StatusCode {
    inbox.push(message);
    StatusCode::NO_CONTENT
}

/// The running server.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    drain: JoinHandle<()>,
}

impl Server {
    /// Starts `binary serve` against `database_url`, with its key, blobs and log under `dir`,
    /// and waits for its `listening on ADDR` line.
    pub async fn start(binary: &Path, database_url: &str, notifier: &str, dir: &Path) -> anyhow::Result<Server> {
        Server::start_with(binary, database_url, notifier, dir, &[]).await
    }

    /// Like [`start`](Self::start), with more environment variables for the server.
    pub async fn start_with(
        binary: &Path,
        database_url: &str,
        notifier: &str,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        // Each process its own log; the key file and blobs are shared by all on `dir`.
        let mut n = 0;
        let log = loop {
            let log = dir.join(if n == 0 { "server.log".to_string() } else { format!("server-{n}.log") });
            if !log.exists() {
                break log;
            }
            n += 1;
        };
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = shenfen(binary, database_url, dir)
            .arg("serve")
            .env("SHENFEN_LISTEN", "127.0.0.1:0")
            .env("SHENFEN_NOTIFIER", notifier)
            .env("SHENFEN_IP_RATE_LIMIT", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("starting {} (build it with `cargo build --release -p shenfen-api`)", binary.display())
            })?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        let addr = match first {
            Ok(Ok(Some(line))) => parse_listening(&line),
            Ok(Ok(None)) => Err(anyhow::anyhow!("the server exited before listening")),
            Ok(Err(e)) => Err(e).context("reading the server's stdout"),
            Err(_) => Err(anyhow::anyhow!("the server did not listen within {} s", START_TIMEOUT.as_secs())),
        };
        let addr = match addr {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill().await;
                return Err(e.context(format!("server log:\n{}", tail(&log, 40))));
            }
        };
        // Keep reading stdout so the server never blocks on a full pipe.
        let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server { child, addr, log, drain })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The base URL of the API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Fails when the server has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait().context("checking the server process")? {
            None => Ok(()),
            Some(status) => {
                anyhow::bail!("the server exited ({status}); server log:\n{}", tail(&self.log, 40))
            }
        }
    }

    /// Kills the server and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("killing the server")?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("the server did not exit within 10 s of being killed")?
            .context("waiting for the server")?;
        self.drain.abort();
        Ok(())
    }
}

/// The address in `listening on 127.0.0.1:PORT`, which must be a loopback address.
fn parse_listening(line: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line from the server: {line:?}"))?
        .parse()
        .with_context(|| format!("unexpected address in {line:?}"))?;
    anyhow::ensure!(addr.ip().is_loopback(), "the server listens on {addr}, not on a loopback address");
    Ok(addr)
}

/// `binary` (the server's binary, for any of its commands) on the store at `database_url`,
/// with the key files, blobs and working directory in `dir`: every process of a run shares them.
fn shenfen(binary: &Path, database_url: &str, dir: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .env("SHENFEN_DATABASE_URL", database_url)
        .env("SHENFEN_SECRET_KEY_FILE", dir.join("secret.key"))
        .env("SHENFEN_MASTER_KEY_FILE", dir.join("master.keys"))
        .env("SHENFEN_BLOB_DIR", dir.join("blobs"))
        .current_dir(dir);
    command
}

/// Makes a staff member with `binary staff add` on the store at `database_url` with the key
/// files in `dir` (as the servers use them) and returns their password.
pub async fn add_staff(
    binary: &Path,
    database_url: &str,
    dir: &Path,
    username: &str,
    role: &str,
) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt;
    let password = "Staff#Bench2026".to_string();
    let mut child = shenfen(binary, database_url, dir)
        .args(["staff", "add", "--username", username, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running staff add")?;
    let mut stdin = child.stdin.take().context("staff add's stdin")?;
    stdin.write_all(format!("{password}\n").as_bytes()).await?;
    drop(stdin);
    let output =
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.context("staff add hung")??;
    anyhow::ensure!(output.status.success(), "staff add failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(password)
}

/// Polls `{base}/readyz` until it answers 200; returns when it did.
pub async fn wait_ready(base: &str, limit: Duration) -> anyhow::Result<Instant> {
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build()?;
    let started = Instant::now();
    loop {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await {
            if response.status().is_success() {
                return Ok(Instant::now());
            }
        }
        anyhow::ensure!(started.elapsed() < limit, "{base}/readyz did not answer 200 within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(parse_listening("listening on 127.0.0.1:4321\n").ok(), "127.0.0.1:4321".parse().ok());
        assert!(parse_listening("listening on 0.0.0.0:4321").is_err());
        assert!(parse_listening("hello").is_err());
    }
}
