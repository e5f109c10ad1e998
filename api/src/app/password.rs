//! Passwords are checked outside the aggregates (hashing is slow and needs only the stored
//! hash); the command carries the outcome and the hash it was checked against.

use std::future::Future;

use shenfen_domain::account::{Checked, PasswordCheck};

use crate::error::{ApiError, ApiResult};
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
