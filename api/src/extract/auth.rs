//! Who is signed in: an account holder (session token) or a staff member (staff token).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use shenfen_domain::account::Account;
use shenfen_domain::metadata::Actor;
use shenfen_projections::store::{Current, Loaded};

use crate::error::ApiError;
use crate::startup::AppState;

/// The signed-in account holder (from `Authorization: Bearer <token>`), with the account
/// stream as loaded to check the session, so that a command can start from it.
///
/// As an extractor it checks the session against the store's latest state (reads must see
/// other processes' writes); commands take [`CommandHolder`] instead.
#[derive(Debug, Clone)]
pub struct Holder {
    pub account_id: String,
    pub session_id: String,
    pub loaded: Loaded<Account>,
    /// Whether `loaded` was checked against the store (see [`CommandBus::load_optimistic`]).
    ///
    /// [`CommandBus::load_optimistic`]: shenfen_projections::store::CommandBus::load_optimistic
    pub verified: bool,
    token_hash: String,
}

impl Holder {
    /// The actor for events this holder causes.
    pub fn actor(&self) -> Actor {
        Actor::Account { id: self.account_id.clone() }
    }

    /// The account.
    pub fn account(&self) -> &Account {
        &self.loaded.state
    }

    /// The state a command starts from.
    pub fn current(&self) -> Current<Account> {
        Current { loaded: self.loaded.clone(), verified: self.verified }
    }

    /// The precondition of the holder's commands, checked on every state a command runs on:
    /// the session is still live on an active account.
    pub fn session_live(&self, now: DateTime<Utc>) -> impl Fn(&Account) -> bool + Send + Sync + 'static {
        let hash = self.token_hash.clone();
        move |account: &Account| live_session(account, &hash, now).is_some()
    }
}

/// The id of the session whose token hashes to `token_hash`, if it is live at `now` on an
/// active account.
fn live_session(account: &Account, token_hash: &str, now: DateTime<Utc>) -> Option<String> {
    account.session_by_token(token_hash, now).filter(|_| account.is_active()).map(|s| s.session_id.clone())
}

/// The account holder of a command: like [`Holder`], but the session is checked on the state
/// this process last saw when it has one, saving a query. The command itself is then run with
/// [`CommandBus::execute_checked`] and [`Holder::session_live`], which re-checks the session
/// on whatever state the command finally runs on, and against the store before refusing.
///
/// [`CommandBus::execute_checked`]: shenfen_projections::store::CommandBus::execute_checked
#[derive(Debug, Clone)]
pub struct CommandHolder(pub Holder);

fn bearer(parts: &Parts) -> Option<&str> {
    bearer_of(&parts.headers)
}

fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The account holder a token belongs to, if it is a live session of an active account, as
/// the store has the account now.
async fn current_holder(state: &AppState, token: &str) -> Result<Option<Holder>, ApiError> {
    let Some(account_id) = crate::crypto::account_of_session_token(token) else { return Ok(None) };
    let current = state.accounts.load_current(&account_id).await.map_err(ApiError::internal)?;
    holder_in(state, token, account_id, current).await
}

/// Like [`current_holder`], but an account this process has seen is taken as it last saw it
/// when that shows the session live (saving a query); otherwise the store is asked.
async fn seen_holder(state: &AppState, token: &str) -> Result<Option<Holder>, ApiError> {
    let Some(account_id) = crate::crypto::account_of_session_token(token) else { return Ok(None) };
    let current = state.accounts.load_optimistic(&account_id).await.map_err(ApiError::internal)?;
    holder_in(state, token, account_id, current).await
}

/// The holder of `token` on the account as loaded; a state not verified against the store
/// that shows no live session is loaded again from the store before refusing.
async fn holder_in(
    state: &AppState,
    token: &str,
    account_id: String,
    mut current: Current<Account>,
) -> Result<Option<Holder>, ApiError> {
    let token_hash = shenfen_domain::ids::token_hash(token);
    let now = state.clock.now();
    let live = |account: &Account| live_session(account, &token_hash, now);
    let mut session_id = live(&current.loaded.state);
    if session_id.is_none() && !current.verified {
        current = state.accounts.load_current(&account_id).await.map_err(ApiError::internal)?;
        session_id = live(&current.loaded.state);
    }
    let Some(session_id) = session_id else { return Ok(None) };
    Ok(Some(Holder { account_id, session_id, loaded: current.loaded, verified: current.verified, token_hash }))
}

impl FromRequestParts<Arc<AppState>> for Holder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        current_holder(state, token).await?.ok_or_else(ApiError::unauthenticated)
    }
}

impl FromRequestParts<Arc<AppState>> for CommandHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        seen_holder(state, token).await?.map(CommandHolder).ok_or_else(ApiError::unauthenticated)
    }
}

/// A signed-in staff member, checked against their own stream: a disabled member, a changed
/// role, a changed password or a logout ends the session at once, in every process. A bearer
/// token of an account holder on a staff endpoint is answered 403 `forbidden`; no or an
/// unknown token, 401.
#[derive(Debug, Clone)]
pub struct StaffMember {
    pub staff_id: String,
    pub username: String,
    pub role: shenfen_domain::staff::Role,
    pub session_id: String,
    /// The staff stream as loaded to check the session.
    pub loaded: Loaded<shenfen_domain::staff::Staff>,
}

impl StaffMember {
    /// The actor for events this staff member causes.
    pub fn actor(&self) -> Actor {
        Actor::Staff { id: self.staff_id.clone(), role: self.role.as_str().to_string() }
    }

    /// Refuses with 403 unless the member has one of `roles`.
    pub fn require(&self, roles: &[shenfen_domain::staff::Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl FromRequestParts<Arc<AppState>> for StaffMember {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        let Some(staff_id) = crate::crypto::staff_of_token(token) else {
            if current_holder(state, token).await?.is_some() {
                return Err(ApiError::forbidden());
            }
            return Err(ApiError::unauthenticated());
        };
        let loaded = state.staff.load_current(&staff_id).await.map_err(ApiError::internal)?.loaded;
        let hash = shenfen_domain::ids::token_hash(token);
        let member = &loaded.state;
        let session = member.session_by_token(&hash, state.clock.now()).ok_or_else(ApiError::unauthenticated)?;
        let (Some(username), Some(role)) = (member.username.clone(), member.role) else {
            return Err(ApiError::unauthenticated());
        };
        let session_id = session.session_id.clone();
        Ok(StaffMember { staff_id, username, role, session_id, loaded })
    }
}

/// A signed-in student (student token), checked against the student's own stream as the store
/// has it now.
#[derive(Debug, Clone)]
pub struct StudentHolder {
    pub student_id: String,
    pub session_id: String,
    pub loaded: Loaded<shenfen_domain::student::Student>,
}

impl StudentHolder {
    /// The actor for events this student causes.
    pub fn actor(&self) -> Actor {
        Actor::Student { id: self.student_id.clone() }
    }

    /// The student.
    pub fn student(&self) -> &shenfen_domain::student::Student {
        &self.loaded.state
    }
}

impl FromRequestParts<Arc<AppState>> for StudentHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        StudentHolder::of(&parts.headers, state).await
    }
}

impl StudentHolder {
    /// The student whose live session the request's bearer token is: 401 without one, 403
    /// for an account holder's or staff member's token.
    pub async fn of(headers: &axum::http::HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_of(headers).ok_or_else(ApiError::unauthenticated)?;
        let Some(student_id) = crate::crypto::student_of_token(token) else {
            if crate::crypto::staff_of_token(token).is_some() || current_holder(state, token).await?.is_some() {
                return Err(ApiError::forbidden());
            }
            return Err(ApiError::unauthenticated());
        };
        let loaded = state.students.load_current(&student_id).await.map_err(ApiError::internal)?.loaded;
        let hash = shenfen_domain::ids::token_hash(token);
        let session = loaded.state.session_by_token(&hash, state.clock.now()).ok_or_else(ApiError::unauthenticated)?;
        let session_id = session.session_id.clone();
        Ok(StudentHolder { student_id, session_id, loaded })
    }
}
