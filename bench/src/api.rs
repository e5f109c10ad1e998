//! The HTTP side: registering one account per client, then the timed phases (profile edits,
//! logins) and the `/healthz` probe that shows whether the server's runtime is blocked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::json;

use bytes::Bytes;
use hyper::Method;

use crate::http1::Conn;
use crate::server::Inbox;
use crate::stats::{Recorder, Summary};

/// The password of every account the load generator registers.
pub const PASSWORD: &str = "Zq7#mountain";
/// The probe's period.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// One registered, logged-in account with a complete profile.
#[derive(Debug, Clone)]
pub struct Account {
    pub document_number: String,
    pub token: String,
}

/// An HTTP client for `clients` concurrent workers, loopback only, no proxy.
pub fn client(clients: usize) -> anyhow::Result<Client> {
    Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(clients + 4)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// Sends `request` and fails unless the answer has status `expected`; returns the body.
async fn expect(request: RequestBuilder, expected: StatusCode, what: &str) -> anyhow::Result<serde_json::Value> {
    let response = request.send().await.with_context(|| format!("{what}: request failed"))?;
    let status = response.status();
    let body = response.text().await.with_context(|| format!("{what}: reading the answer"))?;
    anyhow::ensure!(status == expected, "{what}: expected {expected}, got {status}: {body}");
    if body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: the answer is not JSON: {body}"))
}

#[derive(Deserialize)]
struct Session {
    token: String,
}

/// The body of `POST /v1/accounts` for a resident ID card, with the load generator's password.
pub fn registration_body(document_number: &str, email: &str, mobile: &str, code: &str) -> serde_json::Value {
    json!({
        "agreement_accepted": true,
        "document_type": "resident_id_card",
        "document_number": document_number,
        "name": "张三",
        "validity": {"period": "20y", "start": "2020-01-01"},
        "password": PASSWORD,
        "password_confirmation": PASSWORD,
        "email": email,
        "mobile": mobile,
        "verification": {"channel": "sms", "code": code},
    })
}

/// Registers an account, logs it in and completes its profile.
async fn register_one(http: &Client, base: &str, inbox: &Inbox) -> anyhow::Result<Account> {
    let mut conn = Conn::open(base).await?;
    let mut tries = 0;
    let person = loop {
        let person = crate::phases::Person::random(&mut rand::thread_rng());
        let (created, answer) = crate::phases::register(&mut conn, inbox, &person).await?;
        tries += 1;
        if created {
            break person;
        }
        // A number an earlier run registered in a reused database: draw another.
        anyhow::ensure!(answer.contains("document_already_registered") && tries < 5, "registering: {answer}");
    };
    let document_number = person.document_number;
    let session = expect(
        http.post(format!("{base}/v1/sessions"))
            .json(&json!({"document_number": document_number, "password": PASSWORD})),
        StatusCode::CREATED,
        "logging in",
    )
    .await?;
    let Session { token } = serde_json::from_value(session).context("the login answer has no token")?;
    expect(
        http.put(format!("{base}/v1/me/profile")).bearer_auth(&token).json(&json!({"ethnicity": "01"})),
        StatusCode::OK,
        "completing the profile",
    )
    .await?;
    Ok(Account { document_number, token })
}

/// Registers `clients` accounts concurrently.
pub async fn register_all(
    http: &Client,
    base: &str,
    inbox: &Arc<Inbox>,
    clients: usize,
) -> anyhow::Result<Vec<Account>> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, base, inbox) = (http.clone(), base.to_string(), inbox.clone());
            tokio::spawn(async move { register_one(&http, &base, &inbox).await })
        })
        .collect();
    let mut accounts = Vec::with_capacity(clients);
    for (i, task) in tasks.into_iter().enumerate() {
        accounts.push(task.await.context("a setup task panicked")?.with_context(|| format!("setting up client {i}"))?);
    }
    Ok(accounts)
}

/// Sends one timed request and records it: a success when the status is `expected`.
async fn timed(request: RequestBuilder, expected: StatusCode, recorder: &mut Recorder) {
    let started = Instant::now();
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.bytes().await;
            match body {
                Ok(_) if status == expected => recorder.success(started.elapsed()),
                Ok(body) => recorder.failure(status.as_str(), || String::from_utf8_lossy(&body).into_owned()),
                Err(e) => recorder.failure("transport", || format!("{status}, body unreadable: {e}")),
            }
        }
        Err(e) => {
            recorder.failure("transport", || format!("{e:#}"));
            // A refused connection fails at once: don't spin on it.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One request of a client's cycle: method, path, bearer token, body.
type Request = (Method, &'static str, Option<String>, Bytes);

/// Every client — one per account, client `i` on `bases[i % n]`, each on a keep-alive
/// connection of its own — sends the requests `requests` makes for its account, in turn and
/// over again, until `duration` has passed; an `expected` answer is a success. Returns the
/// merged summary.
async fn repeat<F>(
    bases: &[String],
    accounts: &[Account],
    duration: Duration,
    expected: StatusCode,
    requests: F,
) -> anyhow::Result<Summary>
where
    F: Fn(&Account) -> Vec<Request>,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(i, account)| {
            let (base, requests) = (bases[i % bases.len()].clone(), requests(account));
            tokio::spawn(async move {
                let mut recorder = Recorder::new();
                let mut conn = Conn::open(&base).await.ok();
                for (method, path, token, body) in requests.iter().cycle() {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let request = (method.clone(), *path, token.as_deref(), body);
                    timed_on(&mut conn, &base, request, expected, &mut recorder).await;
                }
                recorder
            })
        })
        .collect();
    let mut total = Recorder::new();
    for task in tasks {
        total.merge(task.await.context("a client task panicked")?);
    }
    Ok(total.summary(accounts.len(), started.elapsed()))
}

/// Sends one timed request on `conn` and records it: a success when the status is `expected`.
/// A failed connection is replaced by a new one.
async fn timed_on(
    conn: &mut Option<Conn>,
    base: &str,
    request: (Method, &str, Option<&str>, &Bytes),
    expected: StatusCode,
    recorder: &mut Recorder,
) {
    let started = Instant::now();
    let (method, path, token, body) = request;
    let outcome = match conn.as_mut() {
        Some(c) => c.send(method, path, token, body.clone()).await,
        None => match Conn::open(base).await {
            Ok(c) => conn.insert(c).send(method, path, token, body.clone()).await,
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok((status, _)) if status.as_u16() == expected.as_u16() => recorder.success(started.elapsed()),
        Ok((status, body)) => {
            recorder.failure(status.as_str(), || String::from_utf8_lossy(&body).into_owned());
        }
        Err(e) => {
            *conn = None;
            recorder.failure("transport", || format!("{e:#}"));
            // A refused connection fails at once: don't spin on it.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Each client edits its profile in a loop, alternating the ethnicity so every edit is a change;
/// client `i` on `bases[i % n]`.
pub async fn profile_edits(
    _http: &Client,
    bases: &[String],
    accounts: &[Account],
    duration: Duration,
) -> anyhow::Result<Summary> {
    // Setup left "01": start with "02" so every edit is a change.
    let bodies = [Bytes::from_static(br#"{"ethnicity":"02"}"#), Bytes::from_static(br#"{"ethnicity":"01"}"#)];
    repeat(bases, accounts, duration, StatusCode::OK, |account| {
        bodies.iter().map(|body| (Method::PUT, "/v1/me/profile", Some(account.token.clone()), body.clone())).collect()
    })
    .await
}

/// Each client GETs `/healthz` in a loop: an HTTP round trip with nothing behind it (no
/// authentication, no database), the floor under every command on this machine.
pub async fn round_trips(bases: &[String], accounts: &[Account], duration: Duration) -> anyhow::Result<Summary> {
    repeat(bases, accounts, duration, StatusCode::OK, |_| vec![(Method::GET, "/healthz", None, Bytes::new())]).await
}

/// Each client logs in to its own account in a loop, while a probe times `/healthz` every
/// 10 ms. Returns the logins and the probe.
pub async fn logins(
    _http: &Client,
    bases: &[String],
    accounts: &[Account],
    duration: Duration,
) -> anyhow::Result<(Summary, Summary)> {
    // Its own connection, so the probe never waits behind a login for a pooled one.
    let probe_http = client(1)?;
    let probe = tokio::spawn(probe(probe_http, format!("{}/healthz", bases[0]), Instant::now() + duration));
    let logins = repeat(bases, accounts, duration, StatusCode::CREATED, |account| {
        let body = json!({"document_number": account.document_number, "password": PASSWORD});
        vec![(Method::POST, "/v1/sessions", None, Bytes::from(body.to_string()))]
    })
    .await?;
    let probe = probe.await.context("the probe panicked")?;
    Ok((logins, probe))
}

/// GETs `url` every 10 ms until `deadline`.
async fn probe(http: Client, url: String, deadline: Instant) -> Summary {
    let started = Instant::now();
    let mut recorder = Recorder::new();
    let mut ticks = tokio::time::interval(PROBE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        ticks.tick().await;
        timed(http.get(&url), StatusCode::OK, &mut recorder).await;
    }
    recorder.summary(1, started.elapsed())
}

/// Waits until every projection reports no lag on `/metrics` (so the next phase does not
/// compete with the previous one's background work); returns how long that took.
pub async fn settle_projections(http: &Client, base: &str, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let text = http.get(format!("{base}/metrics")).send().await?.text().await?;
        let lags: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("shenfen_projection_lag_events"))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
            .collect();
        if !lags.is_empty() && lags.iter().all(|l| *l == 0.0) {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(started.elapsed() < limit, "projections still lag after {limit:?}: {lags:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
