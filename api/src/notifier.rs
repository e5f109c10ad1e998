//! The notifier port and its adapters, and the outbox worker that drives them.
//!
//! - `log` / `log:PATH`: development. Each message is appended as a JSON line to a file
//!   (default `./data/messages.log`); the application log only says that a message went out,
//!   never its code or token.
//! - `webhook:URL`: each message is POSTed as JSON to an SMS/WeChat/e-mail gateway.
//!
//! Undelivered messages stay in the outbox table and are retried with back-off, across
//! restarts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};
use shenfen_projections::db::Db;
use shenfen_projections::outbox::{self, OutboxMessage};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::startup::Clock;

/// Where messages go.
#[derive(Clone)]
pub enum Notifier {
    Log { path: PathBuf },
    Webhook { url: String, client: reqwest::Client },
}

impl Notifier {
    /// Parses `log`, `log:PATH` or `webhook:URL`.
    pub fn parse(spec: &str) -> anyhow::Result<Notifier> {
        if spec == "log" {
            return Ok(Notifier::Log { path: PathBuf::from("./data/messages.log") });
        }
        if let Some(path) = spec.strip_prefix("log:") {
            return Ok(Notifier::Log { path: PathBuf::from(path) });
        }
        if let Some(url) = spec.strip_prefix("webhook:") {
            anyhow::ensure!(url.starts_with("http://") || url.starts_with("https://"), "webhook URL must be http(s)");
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().context("HTTP client")?;
            return Ok(Notifier::Webhook { url: url.to_string(), client });
        }
        anyhow::bail!("SHENFEN_NOTIFIER must be `log`, `log:PATH` or `webhook:URL`")
    }

    /// The JSON document of a message: `{channel, to, purpose}` plus its body's members.
    pub fn document(message: &OutboxMessage) -> Value {
        let mut doc = Map::new();
        doc.insert("channel".into(), Value::String(message.channel.clone()));
        doc.insert("to".into(), Value::String(message.destination.clone()));
        doc.insert("purpose".into(), Value::String(message.purpose.clone()));
        if let Some(Value::Object(body)) = message.body.as_deref().and_then(|b| serde_json::from_str(b).ok()) {
            doc.extend(body);
        }
        Value::Object(doc)
    }

    /// Delivers one message.
    pub async fn deliver(&self, message: &OutboxMessage) -> anyhow::Result<()> {
        let doc = Self::document(message);
        match self {
            Notifier::Log { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir).await.context("creating the message log directory")?;
                }
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?;
                let mut line = serde_json::to_vec(&doc)?;
                line.push(b'\n');
                file.write_all(&line).await.context("writing the message log")?;
                file.sync_data().await.context("syncing the message log")?;
                Ok(())
            }
            Notifier::Webhook { url, client } => {
                // The error is stored with the message: never with the gateway's address,
                // which may carry credentials.
                let response = client
                    .post(url)
                    .json(&doc)
                    .send()
                    .await
                    .map_err(|e| anyhow::Error::new(e.without_url()).context("webhook request"))?;
                anyhow::ensure!(response.status().is_success(), "webhook answered {}", response.status());
                Ok(())
            }
        }
    }
}

/// Most messages claimed at once.
const CLAIM: i64 = 50;

/// How often the worker gives up expired messages and reports how many are pending.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// How long messages may gather after a claim before the next one: a burst of codes is
/// claimed and marked a few at a time, not with two statements (two commits) each, at the
/// price of at most this much on a code's way to its SMS. After a quiet spell the first
/// message is claimed at once.
const GATHER: Duration = Duration::from_millis(50);

/// Delivers due outbox messages until the process ends, and gives up those whose secret has
/// expired. `wake` is notified when a message is queued; otherwise the worker polls every
/// second. Expiry and the pending gauge run once a second, not once per message; under a burst
/// of codes one claim and one mark serve every message queued within [`GATHER`].
pub async fn run_outbox(db: Db, notifier: Notifier, clock: Arc<dyn Clock>, wake: Arc<Notify>) {
    let mut housekeeping_at = tokio::time::Instant::now();
    let mut claimed_at: Option<tokio::time::Instant> = None;
    loop {
        if tokio::time::Instant::now() >= housekeeping_at {
            housekeeping(&db, clock.now()).await;
            housekeeping_at = tokio::time::Instant::now() + HOUSEKEEPING_EVERY;
        }
        if let Some(at) = claimed_at {
            tokio::time::sleep_until(at + GATHER).await;
        }
        match outbox::claim(&db, clock.now(), CLAIM).await {
            Ok(batch) if !batch.is_empty() => {
                claimed_at = Some(tokio::time::Instant::now());
                deliver_all(&db, &notifier, clock.as_ref(), &batch).await;
                if batch.len() as i64 >= CLAIM {
                    // More may be waiting: claim them at once.
                    claimed_at = None;
                    continue;
                }
            }
            Ok(_) => claimed_at = None,
            Err(err) => tracing::warn!(error = %err, "outbox poll failed"),
        }
        // A message queued meanwhile has left a permit: this returns at once for it.
        let _ = tokio::time::timeout_at(housekeeping_at, wake.notified()).await;
    }
}

/// Delivers a claimed batch at once, marks the delivered ones with one statement, and
/// schedules the others' retries.
async fn deliver_all(db: &Db, notifier: &Notifier, clock: &dyn Clock, batch: &[OutboxMessage]) {
    let results = futures::future::join_all(batch.iter().map(|m| async move { (m, notifier.deliver(m).await) })).await;
    let now = clock.now();
    let mut delivered = Vec::with_capacity(batch.len());
    for (message, result) in results {
        match result {
            Ok(()) => {
                metrics::counter!("shenfen_messages_delivered_total", "channel" => message.channel.clone())
                    .increment(1);
                tracing::info!(id = message.id, channel = %message.channel, purpose = %message.purpose, "message delivered");
                delivered.push((message.id, outbox::masked_destination(&message.destination)));
            }
            Err(err) => {
                metrics::counter!("shenfen_message_failures_total", "channel" => message.channel.clone()).increment(1);
                tracing::warn!(id = message.id, attempts = message.attempts, error = %err, "delivery failed; will retry");
                let _ = outbox::failed(db, message.id, message.attempts, &format!("{err:#}"), now).await;
            }
        }
    }
    if !delivered.is_empty() {
        if let Err(err) = outbox::delivered(db, &delivered, now).await {
            tracing::error!(error = %err, "could not mark messages delivered");
        }
    }
}

/// Gives up the messages whose secret expired, and sets the pending gauge.
async fn housekeeping(db: &Db, now: chrono::DateTime<chrono::Utc>) {
    match outbox::expire(db, now).await {
        Ok(0) => {}
        Ok(n) => {
            metrics::counter!("shenfen_messages_expired_total").increment(n);
            tracing::warn!(messages = n, "undelivered messages expired with their secret");
        }
        Err(err) => tracing::warn!(error = %err, "outbox expiry failed"),
    }
    if let Ok(n) = outbox::pending(db).await {
        metrics::gauge!("shenfen_outbox_pending").set(n as f64);
    }
}
