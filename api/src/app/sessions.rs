//! Logging in.
//!
//! The password is checked off the runtime against the hash the account had when loaded;
//! the outcome goes to the aggregate, which counts failures and locks. A lock is checked
//! before spending a hash verification. An unknown document costs one dummy verification, and
//! every failed login — known document or not — is answered no sooner than a recent failed
//! login of a known document took (its commit included), picked at random, plus a margin
//! ([`FailedLoginTimes`]): both kinds then take the same time, so timing does not tell which
//! documents are registered.

use std::time::Instant;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use shenfen_domain::account::{Account, AccountCommand, AccountError, AccountEvent, LogIn, NewSession};
use shenfen_domain::metadata::Actor;
use shenfen_projections::store::{BusError, CommitOptions, Current};

use crate::error::{ApiError, ApiResult};
use crate::extract::Ctx;
use crate::startup::AppState;

/// How long a login's commit may wait for other logins' to share a transaction (and a WAL
/// flush) with, when other logins are under way. Small beside the password hash a login has
/// just spent (about 15 ms of a core, and more while logins queue for the cores).
const COMMIT_LINGER: std::time::Duration = std::time::Duration::from_millis(25);

/// How long recent failed logins of known documents took, from the request's start to the
/// answer (their commit included): a login for an unknown document lasts as long as one of
/// them, picked at random, so its answer comes as late.
#[derive(Default)]
pub struct FailedLoginTimes {
    recent: std::sync::Mutex<std::collections::VecDeque<std::time::Duration>>,
}

/// Failed-login times kept.
const KEPT_COMMIT_TIMES: usize = 256;
/// Added to the sampled time, so that the answer almost never comes sooner than it, whichever
/// path a failed login took (an unknown document's lookup reads a little more).
const FAILED_LOGIN_MARGIN: std::time::Duration = std::time::Duration::from_millis(5);

impl FailedLoginTimes {
    pub(crate) fn record(&self, took: std::time::Duration) {
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= KEPT_COMMIT_TIMES {
                recent.pop_front();
            }
            recent.push_back(took);
        }
    }

    /// Waits until the request begun at `begun` has taken as long as a recent failed login
    /// (picked at random) plus [`FAILED_LOGIN_MARGIN`].
    pub(crate) async fn answer_after(&self, begun: std::time::Instant) {
        let target = self.sample() + FAILED_LOGIN_MARGIN;
        tokio::time::sleep(target.saturating_sub(begun.elapsed())).await;
    }

    fn sample(&self) -> std::time::Duration {
        use rand::Rng;
        let recent = self.recent.lock().map(|r| r.clone()).unwrap_or_default();
        if recent.is_empty() {
            return std::time::Duration::ZERO;
        }
        recent[rand::thread_rng().gen_range(0..recent.len())]
    }
}

/// 401 `login_failed`: wrong document number or password (never which).
pub fn login_failed() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "login_failed",
        "The document number or password is wrong.",
        "证件号码或密码错误。",
    )
}

/// A started session.
pub struct LoggedIn {
    pub account_id: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// The account as the login left it.
    pub account: Account,
}

/// Logs in with a document number (its type inferred when `None`) and password; `begun` is
/// when the request started (a failed login is answered no sooner than a known one takes).
pub async fn log_in(
    state: &AppState,
    ctx: &Ctx,
    begun: Instant,
    number: &str,
    doc_type: Option<&str>,
    password: String,
) -> ApiResult<LoggedIn> {
    let found = crate::routes::accounts::find_for_command(state, number, doc_type, ctx).await?;
    let Some((account_id, first)) = found else {
        state.hashing.verify_dummy(password).await.map_err(ApiError::internal)?;
        state.failed_logins.answer_after(begun).await;
        return Err(login_failed());
    };
    let mut next = Some(first);
    // A stale state (a password changed meanwhile) is loaded again, a few times at most.
    for _ in 0..4 {
        let current = match next.take() {
            Some(current) => current,
            None => state.accounts.load_current(&account_id).await?,
        };
        if let Some(refusal) = refusal(&current.loaded.state, ctx.now) {
            // Refuse only on the stream as it stands in the store.
            if current.verified {
                return Err(refusal);
            }
            continue;
        }
        if let Some(logged_in) = try_password(state, ctx, begun, &account_id, current, &password).await? {
            return Ok(logged_in);
        }
    }
    Err(ApiError::from(AccountError::StaleCredentials))
}

/// Why `account` cannot log in now, before any password is checked.
fn refusal(account: &Account, now: DateTime<Utc>) -> Option<ApiError> {
    if account.legacy {
        Some(ApiError::from(AccountError::LegacyMustReregister))
    } else if let Some(until) = account.locked_at(now) {
        Some(ApiError::from(AccountError::Locked { until }))
    } else if account.password_hash.is_none() {
        Some(login_failed())
    } else {
        None
    }
}

/// Checks the password and records the login on `current`; `None` when the credentials went
/// stale meanwhile (try again on a fresh load).
async fn try_password(
    state: &AppState,
    ctx: &Ctx,
    begun: Instant,
    account_id: &str,
    current: Current<Account>,
    password: &str,
) -> ApiResult<Option<LoggedIn>> {
    let Some(hash) = current.loaded.state.password_hash.clone() else { return Err(login_failed()) };
    let token = crate::crypto::session_token(account_id);
    let session = NewSession {
        session_id: uuid::Uuid::new_v4().to_string(),
        token_hash: shenfen_domain::ids::token_hash(&token),
        expires_at: ctx.now + Duration::seconds(state.settings.session_ttl_seconds),
    };
    let password = super::password::check(state, password.to_string(), hash, || async { Ok(session) }).await?;
    let command = AccountCommand::LogIn(LogIn { password, now: ctx.now });
    // While other logins are hashing, this one's commit may wait a little to share theirs.
    let linger = if state.hashing.pending() > 0 { COMMIT_LINGER } else { std::time::Duration::ZERO };
    let options = CommitOptions { linger, ..CommitOptions::default() };
    let meta = ctx.meta(Actor::Anonymous);
    let committed =
        match state.accounts.execute_with(account_id, Some(current), &|_| true, command, &meta, options).await {
            Err(BusError::Domain(AccountError::StaleCredentials)) => return Ok(None),
            other => other?,
        };
    let started = committed.events.iter().find_map(|e| match e {
        AccountEvent::SessionStarted { expires_at, .. } => Some(*expires_at),
        _ => None,
    });
    let Some(expires_at) = started else {
        state.failed_logins.record(begun.elapsed());
        state.failed_logins.answer_after(begun).await;
        let locked = committed.events.iter().any(|e| matches!(e, AccountEvent::Locked { .. }));
        tracing::info!(account_id = %account_id, locked, "login failed");
        return Err(login_failed());
    };
    // Recorded in the stream (`SessionStarted`); the log line is for debugging only.
    tracing::debug!(account_id = %account_id, "logged in");
    Ok(Some(LoggedIn { account_id: account_id.to_string(), token, expires_at, account: committed.state }))
}
