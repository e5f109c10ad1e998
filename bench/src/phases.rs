//! The phases of an exam registration opening: new people registering (a code by SMS, then
//! the registration, hashed with Argon2id on the server), and the mixed traffic of the day —
//! registrations, logins, `GET /v1/me`, profile edits and real-name verifications — spread
//! over one or more server processes. Each phase counts what the server acknowledged, and
//! [`Outcome`] checks the log afterwards: every acknowledged write is there, exactly once, and
//! no account was charged more than three real-name attempts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::api::Account;
use crate::http1::Conn;
use crate::identity;
use crate::server::Inbox;
use crate::stats::{Recorder, Summary};

use crate::api::PASSWORD;
/// How long a registration waits for its code.
const CODE_TIMEOUT: Duration = Duration::from_secs(30);

/// The mixed phase's proportions, in percent: what a portal sees when exam registration opens
/// (most requests read the holder's own account; many log in; some register, edit their
/// profile or prove who they are).
pub const MIX: [(Op, u32); 5] = [(Op::Me, 40), (Op::Login, 25), (Op::Edit, 15), (Op::Register, 10), (Op::Verify, 10)];

/// One kind of request in the mixed phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Me,
    Login,
    Edit,
    Register,
    Verify,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Me => "GET /v1/me",
            Op::Login => "login",
            Op::Edit => "profile edit",
            Op::Register => "registration (code + register)",
            Op::Verify => "real-name verification",
        }
    }

    fn pick(rng: &mut StdRng) -> Op {
        let mut roll = rng.gen_range(0..100);
        for (op, share) in MIX {
            if roll < share {
                return op;
            }
            roll -= share;
        }
        Op::Me
    }
}

/// What the server acknowledged in a phase.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Acks {
    pub registrations: u64,
    pub logins: u64,
    pub edits: u64,
    /// Attempts answered 200 (charged to the daily quota).
    pub verifications: u64,
    /// Requests whose answer was lost (transport errors): their write may or may not be there.
    pub unknown: u64,
}

impl Acks {
    fn merge(&mut self, o: Acks) {
        self.registrations += o.registrations;
        self.logins += o.logins;
        self.edits += o.edits;
        self.verifications += o.verifications;
        self.unknown += o.unknown;
    }
}

/// One client's tally.
struct Tally {
    by_op: BTreeMap<Op, Recorder>,
    acks: Acks,
}

/// A phase's result: each kind of request, all of them together, and what was acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub by_op: BTreeMap<&'static str, Summary>,
    pub total: Summary,
    pub acks: Acks,
}

/// Someone about to register: a fresh mobile, resident ID number and e-mail address.
#[derive(Debug, Clone)]
pub struct Person {
    pub mobile: String,
    pub document_number: String,
    pub email: String,
}

impl Person {
    pub fn random(rng: &mut impl Rng) -> Person {
        Person {
            mobile: identity::mobile(rng),
            document_number: identity::resident_id(rng),
            email: identity::email(rng),
        }
    }
}

/// Registers `person` on `conn`: a code, then the registration. `Ok(true)` when acknowledged
/// (201), `Ok(false)` when refused, `Err` when the answer was lost.
pub async fn register(conn: &mut Conn, inbox: &Inbox, person: &Person) -> anyhow::Result<(bool, String)> {
    let Person { mobile, document_number, email } = person;
    let body = json!({"purpose": "register", "channel": "sms", "mobile": mobile}).to_string();
    let (status, answer) = conn.send(Method::POST, "/v1/verification-codes", None, Bytes::from(body)).await?;
    if status != StatusCode::ACCEPTED {
        return Ok((false, format!("code: {status} {}", String::from_utf8_lossy(&answer))));
    }
    let code = inbox.code_for("register", mobile, CODE_TIMEOUT).await?;
    let body = crate::api::registration_body(document_number, email, mobile, &code);
    let (status, answer) = conn.send(Method::POST, "/v1/accounts", None, Bytes::from(body.to_string())).await?;
    Ok((status == StatusCode::CREATED, format!("{status} {}", String::from_utf8_lossy(&answer))))
}

/// The session token in a login's answer.
fn token_in(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["token"].as_str().map(str::to_string)
}

/// Records one timed operation; a lost answer drops the connection (reopened next time).
fn record(
    conn: &mut Option<Conn>,
    recorder: &mut Recorder,
    acks: &mut Acks,
    started: Instant,
    outcome: anyhow::Result<(bool, String)>,
) -> bool {
    match outcome {
        Ok((true, _)) => {
            recorder.success(started.elapsed());
            true
        }
        Ok((false, detail)) => {
            let kind = detail.split_whitespace().next().unwrap_or("refused").to_string();
            recorder.failure(&kind, || detail);
            false
        }
        Err(e) => {
            *conn = None;
            acks.unknown += 1;
            recorder.failure("transport", || format!("{e:#}"));
            false
        }
    }
}

async fn connected<'a>(conn: &'a mut Option<Conn>, base: &str) -> anyhow::Result<&'a mut Conn> {
    match conn {
        Some(c) => Ok(c),
        None => Ok(conn.insert(Conn::open(base).await?)),
    }
}

/// `clients` clients register new people for `duration`, client `i` on `bases[i % n]`.
pub async fn registrations(
    bases: &[String],
    inbox: &Arc<Inbox>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<PhaseResult> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (base, inbox) = (bases[i % bases.len()].clone(), inbox.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::from_entropy();
                let mut tally = Tally { by_op: BTreeMap::new(), acks: Acks::default() };
                let mut conn = None;
                while Instant::now() < deadline {
                    let at = Instant::now();
                    let outcome = match connected(&mut conn, &base).await {
                        Ok(c) => register(c, &inbox, &Person::random(&mut rng)).await,
                        Err(e) => Err(e),
                    };
                    let recorder = tally.by_op.entry(Op::Register).or_default();
                    if record(&mut conn, recorder, &mut tally.acks, at, outcome) {
                        tally.acks.registrations += 1;
                    }
                }
                tally
            })
        })
        .collect();
    collect(tasks, clients, started).await
}

/// Each account's client sends the day's mix for `duration`, client `i` on `bases[i % n]`.
pub async fn mixed(
    bases: &[String],
    inbox: &Arc<Inbox>,
    accounts: &[Account],
    duration: Duration,
) -> anyhow::Result<PhaseResult> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(i, account)| {
            let (base, inbox, account) = (bases[i % bases.len()].clone(), inbox.clone(), account.clone());
            tokio::spawn(async move { mixed_client(base, inbox, account, deadline).await })
        })
        .collect();
    collect(tasks, accounts.len(), started).await
}

async fn mixed_client(base: String, inbox: Arc<Inbox>, account: Account, deadline: Instant) -> Tally {
    let mut rng = StdRng::from_entropy();
    let mut tally = Tally { by_op: BTreeMap::new(), acks: Acks::default() };
    let mut conn: Option<Conn> = None;
    let login = Bytes::from(json!({"document_number": account.document_number, "password": PASSWORD}).to_string());
    // A fresh session first (untimed): the earlier phases' many logins may have ended the
    // setup's session (an account keeps only its newest sessions).
    let mut token = account.token.clone();
    if let Ok(c) = connected(&mut conn, &base).await {
        match c.send(Method::POST, "/v1/sessions", None, login.clone()).await {
            Ok((StatusCode::CREATED, body)) => {
                tally.acks.logins += 1;
                token = token_in(&body).unwrap_or(token);
            }
            Ok(_) => {}
            Err(_) => tally.acks.unknown += 1,
        }
    }
    // Three codes in turn, none the one the earlier phases left: every edit is a change.
    let edits = ["03", "04", "05"].map(|e| Bytes::from(json!({"ethnicity": e}).to_string()));
    let mut next_edit = 0usize;
    let mut attempts_left = true;
    while Instant::now() < deadline {
        let mut op = Op::pick(&mut rng);
        if op == Op::Verify && !attempts_left {
            // Past the quota a real client stops asking; keep the mix's share of writes.
            op = Op::Edit;
        }
        let at = Instant::now();
        let outcome: anyhow::Result<(bool, String)> = async {
            let c = connected(&mut conn, &base).await?;
            match op {
                Op::Me => {
                    let (status, body) = c.send(Method::GET, "/v1/me", Some(&token), Bytes::new()).await?;
                    Ok((status == StatusCode::OK, format!("{status} {}", String::from_utf8_lossy(&body))))
                }
                Op::Login => {
                    let (status, body) = c.send(Method::POST, "/v1/sessions", None, login.clone()).await?;
                    if let Some(t) = token_in(&body).filter(|_| status == StatusCode::CREATED) {
                        token = t;
                    }
                    Ok((status == StatusCode::CREATED, format!("{status} {}", String::from_utf8_lossy(&body))))
                }
                Op::Edit => {
                    let body = edits[next_edit % 3].clone();
                    let (status, answer) = c.send(Method::PUT, "/v1/me/profile", Some(&token), body).await?;
                    if status == StatusCode::OK {
                        next_edit += 1;
                    }
                    Ok((status == StatusCode::OK, format!("{status} {}", String::from_utf8_lossy(&answer))))
                }
                Op::Register => register(c, &inbox, &Person::random(&mut rng)).await,
                Op::Verify => {
                    let (status, body) =
                        c.send(Method::POST, "/v1/me/real-name-verifications", Some(&token), Bytes::from("{}")).await?;
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        attempts_left = false;
                        // The quota answering is the expected outcome, not an error.
                        return Ok((true, String::new()));
                    }
                    Ok((status == StatusCode::OK, format!("{status} {}", String::from_utf8_lossy(&body))))
                }
            }
        }
        .await;
        let charged = op == Op::Verify && attempts_left;
        let recorder = tally.by_op.entry(op).or_default();
        if record(&mut conn, recorder, &mut tally.acks, at, outcome) {
            match op {
                Op::Register => tally.acks.registrations += 1,
                Op::Login => tally.acks.logins += 1,
                Op::Edit => tally.acks.edits += 1,
                Op::Verify if charged => tally.acks.verifications += 1,
                Op::Verify | Op::Me => {}
            }
        }
    }
    tally
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
    clients: usize,
    started: Instant,
) -> anyhow::Result<PhaseResult> {
    let mut by_op: BTreeMap<Op, Recorder> = BTreeMap::new();
    let mut acks = Acks::default();
    let mut total = Recorder::new();
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await.context("a client task panicked")?);
    }
    let elapsed = started.elapsed();
    for tally in tallies {
        acks.merge(tally.acks);
        for (op, recorder) in tally.by_op {
            total.merge(recorder.clone());
            by_op.entry(op).or_default().merge(recorder);
        }
    }
    Ok(PhaseResult {
        by_op: by_op.into_iter().map(|(op, r)| (op.name(), r.summary(clients, elapsed))).collect(),
        total: total.summary(clients, elapsed),
        acks,
    })
}

/// Where the log ends (its largest global position): what a phase writes lies past it.
pub async fn log_end(url: &str) -> anyhow::Result<i64> {
    let mut conn = PgConnection::connect(url).await.context("connecting to count")?;
    let (end,): (Option<i64>,) = sqlx::query_as("SELECT max(global_position) FROM events").fetch_one(&mut conn).await?;
    Ok(end.unwrap_or(0))
}

/// What the log holds of a phase, checked against what the server acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub registered: i64,
    pub sessions: i64,
    pub edits: i64,
    pub attempts: i64,
    /// The most real-name attempts any account was charged during the phase.
    pub most_attempts_per_account: i64,
    /// Every acknowledged write is in the log exactly once (to within the lost answers), and no
    /// account went past three attempts.
    pub exact: bool,
}

impl Outcome {
    /// Counts the phase's events (past `since`) and compares them with `acks`.
    pub async fn check(url: &str, since: i64, acks: &Acks) -> anyhow::Result<Outcome> {
        let mut conn = PgConnection::connect(url).await.context("connecting to check")?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event_type, count(*) FROM events
              WHERE global_position > $1
                AND event_type IN ('Registered', 'SessionStarted', 'ProfileEdited', 'AttemptFailed', 'AttemptPassed')
              GROUP BY event_type",
        )
        .bind(since)
        .fetch_all(&mut conn)
        .await?;
        let count = |types: &[&str]| rows.iter().filter(|(t, _)| types.contains(&t.as_str())).map(|(_, n)| n).sum();
        let (most,): (Option<i64>,) = sqlx::query_as(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM events
              WHERE global_position > $1 AND event_type = 'AttemptStarted' GROUP BY aggregate_id) per_account",
        )
        .bind(since)
        .fetch_one(&mut conn)
        .await?;
        let (registered, sessions, edits, attempts) = (
            count(&["Registered"]),
            count(&["SessionStarted"]),
            count(&["ProfileEdited"]),
            count(&["AttemptFailed", "AttemptPassed"]),
        );
        let most = most.unwrap_or(0);
        let within = |stored: i64, acked: u64| {
            let acked = acked as i64;
            stored >= acked && stored <= acked + acks.unknown as i64
        };
        let exact = within(registered, acks.registrations)
            && within(sessions, acks.logins)
            && within(edits, acks.edits)
            && within(attempts, acks.verifications)
            && most <= 3;
        Ok(Outcome { registered, sessions, edits, attempts, most_attempts_per_account: most, exact })
    }
}

/// The largest resident memory each of `pids` reached, in MiB: the kernel's high-water mark
/// (`VmHWM` in `/proc/PID/status`); 0 when it cannot be read.
pub fn peak_rss_mib(pids: &[u32]) -> Vec<f64> {
    pids.iter().map(|pid| status_kib(*pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0).collect()
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// The analyst endpoints, each asked for a year of data.
pub const ANALYTICS: [&str; 8] = [
    "/v1/analytics/registrations",
    "/v1/analytics/verification-attempts",
    "/v1/analytics/verification-failures",
    "/v1/analytics/quota-exhaustion",
    "/v1/analytics/manual-reviews",
    "/v1/analytics/manual-reviews/daily",
    "/v1/analytics/manual-reviews/overdue",
    "/v1/analytics/student-verifications",
];

/// An analyst (signed in with `token`) asks each analyst endpoint for the year to today,
/// `rounds` times in turn, JSON and CSV alternately: one summary over all of them.
pub async fn analyst_reads(base: &str, token: &str, rounds: usize) -> anyhow::Result<Summary> {
    let today = shenfen_domain::time::cst_date(chrono::Utc::now());
    let from = today - chrono::Duration::days(365);
    let mut conn = Conn::open(base).await?;
    let mut recorder = Recorder::new();
    let started = Instant::now();
    for round in 0..rounds {
        for path in ANALYTICS {
            let path = format!("{path}?from={from}&to={today}");
            let at = Instant::now();
            let answer = if round % 2 == 0 {
                conn.send(Method::GET, &path, Some(token), Bytes::new()).await
            } else {
                conn.send_accepting(Method::GET, &path, Some(token), "text/csv").await
            };
            match answer {
                Ok((StatusCode::OK, _)) => recorder.success(at.elapsed()),
                Ok((status, body)) => {
                    recorder.failure(status.as_str(), || format!("{path}: {}", String::from_utf8_lossy(&body)))
                }
                Err(e) => {
                    recorder.failure("transport", || format!("{e:#}"));
                    conn = Conn::open(base).await?;
                }
            }
        }
    }
    Ok(recorder.summary(1, started.elapsed()))
}
