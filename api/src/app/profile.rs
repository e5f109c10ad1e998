//! Changing the profile. A new e-mail address needs the current password and applies only
//! once the code sent to it is confirmed; the rest of the profile changes at once.

use shenfen_domain::account::{Account, AccountCommand, EmailChange, ProfileInput, RequestEmailChange, UpdateProfile};
use shenfen_domain::shared::{Email, Validity};
use shenfen_projections::outbox::NewMessage;
use shenfen_projections::store::CommitOptions;

use super::password;
use crate::error::ApiResult;
use crate::extract::{Ctx, Holder};
use crate::startup::AppState;

/// A profile change as validated.
pub struct ProfileChange {
    pub profile: ProfileInput,
    pub validity: Option<Validity>,
    /// A new e-mail address, and the current password that allows it.
    pub new_email: Option<(Email, String)>,
}

/// Applies a profile change for the holder; answers the account as changed.
pub async fn change(state: &AppState, ctx: &Ctx, holder: &Holder, change: ProfileChange) -> ApiResult<Account> {
    let mut first = Some(holder.current());
    if let Some((email, current_password)) = change.new_email {
        request_email_change(state, ctx, holder, first.take(), email, current_password).await?;
    }
    let command = AccountCommand::UpdateProfile(UpdateProfile {
        profile: change.profile,
        validity: change.validity,
        now: ctx.now,
    });
    let committed = state
        .accounts
        .execute_checked(&holder.account_id, first, &holder.session_live(ctx.now), command, &ctx.meta(holder.actor()))
        .await?;
    Ok(committed.state)
}

/// Proves the password and sends a code to the new address, in the transaction that records
/// the request.
async fn request_email_change(
    state: &AppState,
    ctx: &Ctx,
    holder: &Holder,
    first: Option<shenfen_projections::store::Current<Account>>,
    email: Email,
    current_password: String,
) -> ApiResult<()> {
    let code = crate::crypto::random_code();
    let ttl = chrono::Duration::seconds(state.settings.code_ttl_seconds);
    let code_hash = email_code_hash(state, &holder.account_id, &code);
    let message = NewMessage {
        channel: "email".into(),
        destination: email.as_str().into(),
        purpose: "change_contact".into(),
        body: serde_json::json!({ "code": code }).to_string(),
        created_at: ctx.now,
        expires_at: ctx.now + ttl,
    };
    let change = EmailChange { email, code_hash, ttl };
    let checked =
        password::check_current(state, ctx, holder.account(), current_password, || async { Ok(change) }).await?;
    let command = AccountCommand::RequestEmailChange(RequestEmailChange { password: checked, now: ctx.now });
    let options = CommitOptions {
        messages: vec![message],
        messages_with: Some("EmailChangeRequested"),
        ..CommitOptions::default()
    };
    let live = holder.session_live(ctx.now);
    let committed = state
        .accounts
        .execute_with(&holder.account_id, first, &live, command, &ctx.meta(holder.actor()), options)
        .await?;
    password::refused(&committed.events)?;
    state.outbox_wake.notify_one();
    Ok(())
}

/// The hash an e-mail change code is kept as (keyed, bound to the account).
pub fn email_code_hash(state: &AppState, account_id: &str, code: &str) -> String {
    shenfen_domain::ids::code_hash(&state.key, &format!("email-change:{account_id}"), code)
}
