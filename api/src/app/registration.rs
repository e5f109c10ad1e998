//! Registering a document, and registering it again.
//!
//! Order of work: the code sent to the mobile is consumed for this account id first (a retried
//! request for the same document may consume it again); only then is it said whether the
//! document is taken (409) or, for a re-registration, unknown (404) — so nobody learns which
//! documents are registered without a code sent to a mobile of their own; then the password is
//! hashed and the account aggregate decides. Of many concurrent registrations of one document
//! exactly one commits; the others conflict on the stream, reload, and are refused.

use chrono::{DateTime, Utc};
use shenfen_domain::account::{Account, AccountCommand, AccountError, Consent, Registration};
use shenfen_domain::claim::{ClaimCommand, Claimed, OpenClaim, CLAIM_DAYS};
use shenfen_domain::code::{CodeCommand, CodeError, CodeEvent, ConsumeCode, Purpose};
use shenfen_domain::ids;
use shenfen_domain::metadata::Actor;
use shenfen_domain::shared::{DocumentNumber, DocumentType, Email, Mobile, PersonName, Validity};
use shenfen_projections::claims::Claims;
use shenfen_projections::identity::IdentityProcess;
use shenfen_projections::outbox::NewMessage;
use shenfen_projections::store::Loaded;

use crate::error::{ApiError, ApiResult};
use crate::extract::Ctx;
use crate::startup::AppState;

/// A registration as validated: everything but the password's hash.
pub struct RegistrationInput {
    pub document_type: DocumentType,
    pub document_number: DocumentNumber,
    pub name: PersonName,
    pub validity: Validity,
    pub email: Email,
    pub mobile: Mobile,
    pub password: String,
    /// The code sent to `mobile` for registering.
    pub code: String,
}

/// A registered account.
pub struct NewAccount {
    pub account_id: String,
    pub validity: Validity,
}

/// A claim opened on an account in use.
pub struct OpenedClaim {
    pub claim_id: String,
    pub claim_token: String,
    pub expires_at: DateTime<Utc>,
}

/// What a re-registration led to.
pub enum Reregistered {
    /// A legacy account, registered again at once.
    Account(NewAccount),
    /// An account in use: a claim was opened instead, and nothing changed yet.
    Claim(OpenedClaim),
}

/// Registers a new document (or supersedes a legacy import of it).
pub async fn register(state: &AppState, ctx: &Ctx, input: RegistrationInput) -> ApiResult<NewAccount> {
    let (account_id, loaded) = consume_code(state, ctx, &input).await?;
    if loaded.state.is_active() {
        return Err(ApiError::from(AccountError::AlreadyRegistered));
    }
    let registration = hashed(state, ctx, input).await?;
    let validity = registration.validity;
    let command = AccountCommand::Register(registration);
    // From the state just read (a registration in between makes the append collide, and the
    // command runs again on the fresh state, which refuses it).
    state.accounts.execute_from(&account_id, Some(loaded), command, &ctx.meta(Actor::Anonymous)).await?;
    tracing::info!(account_id = %account_id, reregistration = false, "account registered");
    Ok(NewAccount { account_id, validity })
}

/// Registers a registered document again: an account in use gets a claim (its holder is told
/// and may refuse); a legacy account is registered again at once.
pub async fn reregister(state: &AppState, ctx: &Ctx, input: RegistrationInput) -> ApiResult<Reregistered> {
    let (account_id, loaded) = consume_code(state, ctx, &input).await?;
    let current = loaded.state;
    if !current.exists() {
        return Err(ApiError::from(AccountError::NotFound));
    }
    let registration = hashed(state, ctx, input).await?;
    if current.is_active() {
        return Ok(Reregistered::Claim(open_claim(state, ctx, &account_id, &current, registration).await?));
    }
    let validity = registration.validity;
    let command = AccountCommand::Reregister(registration);
    let committed = state.accounts.execute(&account_id, command, &ctx.meta(Actor::Anonymous)).await?;
    // The identity must be proven again: wait until the verification stream has heard.
    state.caught_up_after(&committed, &[IdentityProcess::NAME]).await;
    tracing::info!(account_id = %account_id, reregistration = true, "account registered");
    Ok(Reregistered::Account(NewAccount { account_id, validity }))
}

/// Uses the register code sent to the input's mobile for its account; answers the account id
/// and the account as it stands in the store.
async fn consume_code(state: &AppState, ctx: &Ctx, input: &RegistrationInput) -> ApiResult<(String, Loaded<Account>)> {
    let account_id = ids::account_id(&state.key, input.document_type, &input.document_number);
    let channel_id = ids::code_channel_id(&state.key, Purpose::Register.as_str(), input.mobile.as_str());
    let code_hash = ids::code_hash(&state.key, &channel_id, &input.code);
    let command = CodeCommand::Consume(ConsumeCode { code_hash, claimant: account_id.clone(), now: ctx.now });
    // From the code as this process last saw it (it issued the code, most often): a consume
    // always writes an event, so a stale state collides and is retried, and a refusal is
    // checked against the store first (see `execute_checked`).
    let current = state.codes.load_optimistic(&channel_id).await?;
    let committed = state
        .codes
        .execute_checked(&channel_id, Some(current), &|_| true, command, &ctx.meta(Actor::Anonymous))
        .await?;
    if committed.events.iter().any(|e| matches!(e, CodeEvent::WrongEntry { .. })) {
        return Err(ApiError::from(CodeError::Invalid));
    }
    let loaded = state.accounts.load_context(&account_id).await?;
    Ok((account_id, loaded))
}

/// The registration, its password hashed (off the runtime).
async fn hashed(state: &AppState, ctx: &Ctx, input: RegistrationInput) -> ApiResult<Registration> {
    let RegistrationInput { document_type, document_number, name, validity, email, mobile, password, .. } = input;
    let password_hash = state.hashing.hash(password).await.map_err(ApiError::internal)?;
    let consent = Consent { agreement_version: state.settings.agreement_version.clone(), accepted_at: ctx.now };
    Ok(Registration {
        document_type,
        document_number,
        name,
        validity,
        email,
        mobile,
        password_hash,
        consent: Some(consent),
        now: ctx.now,
    })
}

/// Opens a claim on the account in use `account_id` for `registration`; the holder is told on
/// the registered mobile and e-mail, in the same transaction.
async fn open_claim(
    state: &AppState,
    ctx: &Ctx,
    account_id: &str,
    holder: &Account,
    registration: Registration,
) -> ApiResult<OpenedClaim> {
    let claim_id = crate::ids::id_for("clm_", account_id);
    let claim_token = crate::crypto::claim_token(claim_id.trim_start_matches("clm_"));
    let Registration { document_type, name, validity, email, mobile, password_hash, now, .. } = registration;
    let claimed = Claimed { name, validity, email, mobile, password_hash };
    let token_hash = ids::token_hash(&claim_token);
    let command =
        ClaimCommand::Open(OpenClaim { account_id: account_id.to_string(), document_type, claimed, token_hash, now });
    let body = serde_json::json!({ "claim_id": claim_id, "at": now }).to_string();
    let notice = |channel: &str, to: &str| NewMessage {
        channel: channel.into(),
        destination: to.into(),
        purpose: "reregistration_claim".into(),
        body: body.clone(),
        created_at: now,
        expires_at: now + chrono::Duration::days(CLAIM_DAYS),
    };
    let mut messages = Vec::new();
    if let Some(mobile) = &holder.mobile {
        messages.push(notice("sms", mobile.as_str()));
    }
    if let Some(email) = &holder.email {
        messages.push(notice("email", email.as_str()));
    }
    let committed =
        state.claims.execute_sending(&claim_id, command, &ctx.meta(Actor::Anonymous), messages, "Opened").await?;
    state.outbox_wake.notify_one();
    state.caught_up_after(&committed, &[Claims::NAME]).await;
    let expires_at = committed.state.expires_at.unwrap_or(now);
    tracing::info!(account_id = %account_id, claim_id = %claim_id, "re-registration claim opened");
    Ok(OpenedClaim { claim_id, claim_token, expires_at })
}
