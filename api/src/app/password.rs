//! Passwords are checked outside the aggregates (hashing is slow and needs only the stored
//! hash); the command carries the outcome and the hash it was checked against.

use std::future::Future;

use shenfen_domain::account::{Account, AccountError, AccountEvent, Checked, PasswordCheck};

use crate::error::{ApiError, ApiResult};
use crate::extract::Ctx;
use crate::startup::AppState;

/// Checks `password` against `hash` (off the runtime). When it is right, `then` gives what
/// the command does (it runs only then: a new password is not hashed, WeChat not asked, for
/// a wrong one); when it is wrong the command records a failed login.
pub async fn check<T, Fut>(
    state: &AppState,
    password: String,
    hash: String,
    then: impl FnOnce() -> Fut,
) -> ApiResult<Checked<T>>
where
    Fut: Future<Output = ApiResult<T>>,
{
    let matched = state.hashing.verify(password, hash.clone()).await.map_err(ApiError::internal)?;
    let check = if matched { PasswordCheck::Right(then().await?) } else { PasswordCheck::Wrong };
    Ok(Checked { checked_hash: hash, lockout: state.settings.lockout(), check })
}

/// Checks the holder's current password for a sensitive change: `then` gives the change
/// when it is right. A locked account is refused before any hashing.
pub async fn check_current<T, Fut>(
    state: &AppState,
    ctx: &Ctx,
    account: &Account,
    password: String,
    then: impl FnOnce() -> Fut,
) -> ApiResult<Checked<T>>
where
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    if let Some(until) = account.locked_at(ctx.now) {
        return Err(ApiError::from(AccountError::Locked { until }));
    }
    let hash = account.password_hash.clone().ok_or_else(|| ApiError::internal("account without password"))?;
    check(state, password, hash, then).await
}

/// 401 `login_failed` when a command recorded a wrong password (it counted as a failed login).
pub fn refused(events: &[AccountEvent]) -> ApiResult<()> {
    if events.iter().any(|e| matches!(e, AccountEvent::LoginFailed { .. })) {
        return Err(ApiError::wrong_current_password());
    }
    Ok(())
}
