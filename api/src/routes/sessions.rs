//! `POST /v1/sessions` (log in) and `DELETE /v1/sessions/current` (log out).
//!
//! The password is checked off the runtime against the hash the account had when loaded;
//! the outcome goes to the aggregate, which counts failures and locks. A lock is checked
//! before spending a hash verification. An unknown document costs one dummy verification, and
//! every failed login — known document or not — is answered no sooner than a recent failed
//! login of a known document took (its commit included), picked at random, plus a margin
//! ([`FailedLoginTimes`]): both kinds then take the same time, so timing does not tell which
//! documents are registered.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::{AccountCommand, AccountError, AccountEvent, LogIn, NewSession};
use shenfen_domain::metadata::Actor;
use shenfen_projections::store::CommitOptions;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx, Holder};
use crate::startup::AppState;

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub document_number: Option<String>,
    pub password: Option<String>,
    /// Optional: inferred from the number's format when left out.
    pub document_type: Option<String>,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub account_id: String,
    pub profile_complete: bool,
    pub real_name_status: String,
}

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
    fn record(&self, took: std::time::Duration) {
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= KEPT_COMMIT_TIMES {
                recent.pop_front();
            }
            recent.push_back(took);
        }
    }

    /// Waits until the request begun at `begun` has taken as long as a recent failed login
    /// (picked at random) plus [`FAILED_LOGIN_MARGIN`].
    async fn answer_after(&self, begun: std::time::Instant) {
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

fn login_failed() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "login_failed",
        "The document number or password is wrong.",
        "证件号码或密码错误。",
    )
}

/// Logs in.
#[utoipa::path(post, path = "/v1/sessions", request_body = LoginRequest, tag = "public",
    responses((status = 201, body = LoginResponse), (status = 401, description = "login_failed", body = crate::error::Problem),
              (status = 423, description = "account_locked, with locked_until", body = crate::error::Problem),
              (status = 403, description = "legacy_account_must_reregister", body = crate::error::Problem)))]
pub async fn log_in(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    AppJson(body): AppJson<LoginRequest>,
) -> ApiResult<(StatusCode, Json<LoginResponse>)> {
    let begun = std::time::Instant::now();
    let mut errors = crate::validate::Errors::default();
    let number = errors.required("document_number", &body.document_number).map(str::to_string);
    let password = errors.required("password", &body.password).map(str::to_string);
    errors.finish()?;
    let (Some(number), Some(password)) = (number, password) else { return Err(login_failed()) };
    let found = super::accounts::find_for_command(&state, &number, body.document_type.as_deref(), &ctx).await?;
    let Some((account_id, first)) = found else {
        state.hashing.verify_dummy(password).await.map_err(ApiError::internal)?;
        state.failed_logins.answer_after(begun).await;
        return Err(login_failed());
    };
    let settings = &state.settings;
    let mut next = Some(first);
    for _ in 0..4 {
        let current = match next.take() {
            Some(current) => current,
            None => state.accounts.load_current(&account_id).await?,
        };
        let account = &current.loaded.state;
        let refusal = if account.legacy {
            Some(ApiError::from(AccountError::LegacyMustReregister))
        } else if let Some(until) = account.locked_at(ctx.now) {
            Some(ApiError::from(AccountError::Locked { until }))
        } else if account.password_hash.is_none() {
            Some(login_failed())
        } else {
            None
        };
        if let Some(refusal) = refusal {
            // Refuse only on the stream as it stands in the store.
            if current.verified {
                return Err(refusal);
            }
            continue;
        }
        let Some(hash) = account.password_hash.clone() else { return Err(login_failed()) };
        let token = crate::crypto::session_token(&account_id);
        let session = NewSession {
            session_id: uuid::Uuid::new_v4().to_string(),
            token_hash: shenfen_domain::ids::token_hash(&token),
            expires_at: ctx.now + Duration::seconds(settings.session_ttl_seconds),
        };
        let password = crate::app::password::check(&state, password.clone(), hash, || async { Ok(session) }).await?;
        let command = AccountCommand::LogIn(LogIn { password, now: ctx.now });
        // While other logins are hashing, this one's commit may wait a little to share theirs.
        let linger = if state.hashing.pending() > 0 { COMMIT_LINGER } else { std::time::Duration::ZERO };
        let result = state
            .accounts
            .execute_with(
                &account_id,
                Some(current),
                &|_| true,
                command,
                &ctx.meta(Actor::Anonymous),
                CommitOptions { linger, ..CommitOptions::default() },
            )
            .await;
        let committed = match result {
            Err(shenfen_projections::store::BusError::Domain(AccountError::StaleCredentials)) => continue,
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
        return Ok((
            StatusCode::CREATED,
            Json(LoginResponse {
                token,
                expires_at,
                account_id,
                profile_complete: committed.state.profile_complete(),
                real_name_status: committed.state.real_name_status.as_str().to_string(),
            }),
        ));
    }
    Err(ApiError::from(AccountError::StaleCredentials))
}

/// Ends the current session.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "holder", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::error::Problem)))]
pub async fn log_out(State(state): State<Arc<AppState>>, ctx: Ctx, holder: Holder) -> ApiResult<StatusCode> {
    let command = AccountCommand::EndSession(shenfen_domain::account::EndSession {
        session_id: holder.session_id.clone(),
        now: ctx.now,
    });
    state
        .accounts
        .execute_from(&holder.account_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
