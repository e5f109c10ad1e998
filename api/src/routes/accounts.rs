//! `POST /v1/accounts` (register) and `POST /v1/accounts/reregistration`.
//!
//! Order of work: validate every field; consume the code for this account id (a retried
//! request for the same document may consume it again); only then say whether the document is
//! taken (409) or, for a re-registration, unknown (404) — so nobody learns which documents are
//! registered without a code sent to a mobile of their own; hash the password; then let the
//! account aggregate decide. Of many concurrent registrations of one document exactly one
//! commits; the others conflict on the stream, reload, and are refused by the aggregate.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::{Account, AccountCommand, AccountError, Registration};
use shenfen_domain::claim::{ClaimCommand, Claimed, CLAIM_DAYS};
use shenfen_domain::code::{CodeCommand, CodeEvent, Purpose};
use shenfen_domain::ids;
use shenfen_domain::metadata::Actor;
use shenfen_domain::shared::validity::Validity;
use shenfen_domain::time::cst_date;
use shenfen_projections::outbox::NewMessage;
use shenfen_projections::store::{Current, Loaded};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// A document validity as entered.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct ValidityInput {
    /// `5y`, `10y`, `20y` or `long_term`.
    pub period: Option<String>,
    /// `YYYY-MM-DD`.
    pub start: Option<String>,
}

/// A verification code as entered.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeInput {
    /// `sms` or `wechat`.
    pub channel: Option<String>,
    pub code: Option<String>,
}

/// A registration (also the body of a re-registration).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegistrationRequest {
    pub agreement_accepted: Option<bool>,
    pub document_type: Option<String>,
    pub document_number: Option<String>,
    pub name: Option<String>,
    pub validity: Option<ValidityInput>,
    pub password: Option<String>,
    pub password_confirmation: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub verification: Option<CodeInput>,
}

/// A validity with its computed end.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidityView {
    pub period: String,
    pub start: NaiveDate,
    /// Absent for `long_term`.
    pub end: Option<NaiveDate>,
}

impl From<&Validity> for ValidityView {
    fn from(v: &Validity) -> Self {
        ValidityView { period: v.period().as_str().to_string(), start: v.start(), end: v.end() }
    }
}

/// The registered account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub account_id: String,
    pub validity: ValidityView,
}

struct Valid {
    registration: Registration,
    password: String,
    code: String,
}

fn validate(body: RegistrationRequest, ctx: &Ctx) -> ApiResult<Valid> {
    let today = cst_date(ctx.now);
    let mut errors = Errors::default();
    if body.agreement_accepted != Some(true) {
        errors.add("agreement_accepted", "agreement_required");
    }
    let document = validate::document(&mut errors, &body.document_type, &body.document_number, today);
    let name = validate::name(&mut errors, "name", &body.name);
    let validity_in = body.validity.unwrap_or_default();
    let doc_for_validity = document.as_ref().map(|(t, n)| (*t, n.birth_date()));
    let validity = validate::validity(
        &mut errors,
        validity_in.period.as_deref(),
        validity_in.start.as_deref(),
        doc_for_validity,
        today,
    );
    let password = validate::new_password(
        &mut errors,
        "password",
        &body.password,
        "password_confirmation",
        &body.password_confirmation,
        document.as_ref().map(|(_, n)| n.as_str()),
    );
    let email = validate::email(&mut errors, "email", &body.email);
    let mobile = validate::mobile(&mut errors, "mobile", &body.mobile);
    let code = match &body.verification {
        None => {
            errors.add("verification.code", "required");
            None
        }
        Some(v) => {
            if v.channel.as_deref().is_some_and(|c| shenfen_domain::code::Channel::parse(c).is_none()) {
                errors.add("verification.channel", "invalid_channel");
            }
            match v.code.as_deref().map(str::trim) {
                Some(c) if c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()) => Some(c.to_string()),
                Some(_) => {
                    errors.add("verification.code", "invalid_verification_code");
                    None
                }
                None => {
                    errors.add("verification.code", "required");
                    None
                }
            }
        }
    };
    errors.finish()?;
    match (document, name, validity, password, email, mobile, code) {
        (
            Some((document_type, document_number)),
            Some(name),
            Some(validity),
            Some(password),
            Some(email),
            Some(mobile),
            Some(code),
        ) => Ok(Valid {
            registration: Registration {
                document_type,
                document_number,
                name,
                validity,
                email,
                mobile,
                password_hash: String::new(),
                now: ctx.now,
            },
            password,
            code,
        }),
        _ => Err(ApiError::internal("validated registration incomplete")),
    }
}

/// What a registration or re-registration led to.
enum Outcome {
    /// The account is registered (a new document, or a legacy one registered again).
    Registered(Registered),
    /// The account is in use: a re-registration claim was opened instead.
    Claimed(ClaimOpened),
}

async fn run(state: &AppState, ctx: &Ctx, body: RegistrationRequest, again: bool) -> ApiResult<Outcome> {
    let Valid { mut registration, password, code } = validate(body, ctx)?;
    let account_id = ids::account_id(&state.key, registration.document_type, &registration.document_number);
    consume_code(state, ctx, registration.mobile.as_str(), &code, &account_id).await?;
    let current = state.accounts.load(&account_id).await?;
    if !again && current.is_active() {
        return Err(ApiError::from(AccountError::AlreadyRegistered));
    }
    if again && !current.exists() {
        return Err(ApiError::from(AccountError::NotFound));
    }
    registration.password_hash = state.hashing.hash(password).await.map_err(ApiError::internal)?;
    if again && current.is_active() {
        return Ok(Outcome::Claimed(open_claim(state, ctx, &account_id, &current, registration).await?));
    }
    let validity = ValidityView::from(&registration.validity);
    let command = if again { AccountCommand::Reregister(registration) } else { AccountCommand::Register(registration) };
    let committed = state.accounts.execute(&account_id, command, &ctx.meta(Actor::Anonymous)).await?;
    if again {
        // The identity must be proven again: wait until the verification stream has heard.
        let position = committed.position;
        state.caught_up(position, &[shenfen_projections::identity::IdentityProcess::NAME]).await;
    }
    tracing::info!(account_id = %account_id, reregistration = again, "account registered");
    Ok(Outcome::Registered(Registered { account_id, validity }))
}

/// An opened re-registration claim.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimOpened {
    pub claim_id: String,
    /// Works on `/v1/claims/current…` only, until the claim ends.
    pub claim_token: String,
    /// `proof_required`.
    pub status: String,
    pub expires_at: DateTime<Utc>,
}

/// Opens a claim on the account in use `account_id` for `registration`; the holder is told on
/// the registered mobile and e-mail, in the same transaction.
async fn open_claim(
    state: &AppState,
    ctx: &Ctx,
    account_id: &str,
    holder: &Account,
    registration: Registration,
) -> ApiResult<ClaimOpened> {
    let claim_id = super::id_for("clm_", account_id);
    let claim_token = crate::crypto::claim_token(claim_id.trim_start_matches("clm_"));
    let Registration { document_type, name, validity, email, mobile, password_hash, now, .. } = registration;
    let claimed = Claimed { name, validity, email, mobile, password_hash };
    let command = ClaimCommand::Open(shenfen_domain::claim::OpenClaim {
        account_id: account_id.to_string(),
        document_type,
        claimed,
        token_hash: ids::token_hash(&claim_token),
        now,
    });
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
    state.caught_up(committed.position, &[shenfen_projections::claims::Claims::NAME]).await;
    let expires_at = committed.state.expires_at.unwrap_or(now);
    tracing::info!(account_id = %account_id, claim_id = %claim_id, "re-registration claim opened");
    Ok(ClaimOpened { claim_id, claim_token, status: "proof_required".into(), expires_at })
}

/// Uses the register code sent to `mobile` for `account_id`.
pub async fn consume_code(state: &AppState, ctx: &Ctx, mobile: &str, code: &str, account_id: &str) -> ApiResult<()> {
    let channel_id = ids::code_channel_id(&state.key, Purpose::Register.as_str(), mobile);
    let code_hash = ids::code_hash(&state.key, &channel_id, code);
    let command = CodeCommand::Consume(shenfen_domain::code::ConsumeCode {
        code_hash,
        claimant: account_id.to_string(),
        now: ctx.now,
    });
    let committed = state.codes.execute(&channel_id, command, &ctx.meta(Actor::Anonymous)).await?;
    if committed.events.iter().any(|e| matches!(e, CodeEvent::WrongEntry { .. })) {
        return Err(ApiError::from(shenfen_domain::code::CodeError::Invalid));
    }
    Ok(())
}

/// Registers an account.
#[utoipa::path(post, path = "/v1/accounts", request_body = RegistrationRequest, tag = "public",
    responses((status = 201, body = Registered), (status = 422, body = crate::error::Problem),
              (status = 409, description = "document_already_registered", body = crate::error::Problem)))]
pub async fn register(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    AppJson(body): AppJson<RegistrationRequest>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    match run(&state, &ctx, body, false).await? {
        Outcome::Registered(registered) => Ok((StatusCode::CREATED, Json(registered))),
        Outcome::Claimed(_) => Err(ApiError::internal("a registration opened a claim")),
    }
}

/// Registers an already registered document again (我要重新注册). For an account in use it
/// opens a claim and changes nothing yet (202): the holder is told and may refuse; the
/// claimant proves who they are by manual review with the claim token; approval hands the
/// account over. A legacy account is registered again at once (201).
#[utoipa::path(post, path = "/v1/accounts/reregistration", request_body = RegistrationRequest, tag = "public",
    responses((status = 202, body = ClaimOpened, description = "a claim on an account in use"),
              (status = 201, body = Registered, description = "a legacy account registered again"),
              (status = 422, body = crate::error::Problem),
              (status = 404, description = "account_not_found (only after a valid code)", body = crate::error::Problem)))]
pub async fn reregister(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    AppJson(body): AppJson<RegistrationRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Ok(match run(&state, &ctx, body, true).await? {
        Outcome::Registered(registered) => (StatusCode::CREATED, Json(registered)).into_response(),
        Outcome::Claimed(claim) => (StatusCode::ACCEPTED, Json(claim)).into_response(),
    })
}

/// Finds the account of a document number whose type may be left out, trying the types its
/// format allows. Returns the id and the loaded stream of the first that exists.
pub async fn find_by_document(
    state: &AppState,
    number: &str,
    doc_type: Option<&str>,
    ctx: &Ctx,
) -> ApiResult<Option<(String, Loaded<Account>)>> {
    let found = find_account(state, number, doc_type, ctx, false).await?;
    Ok(found.map(|(id, current)| (id, current.loaded)))
}

/// Like [`find_by_document`], for a command: an account this process has seen is taken as
/// it last saw it ([`CommandBus::load_optimistic`]); the caller must verify the state before
/// refusing on it, and run the command with [`CommandBus::execute_checked`].
///
/// [`CommandBus::load_optimistic`]: shenfen_projections::store::CommandBus::load_optimistic
/// [`CommandBus::execute_checked`]: shenfen_projections::store::CommandBus::execute_checked
pub async fn find_for_command(
    state: &AppState,
    number: &str,
    doc_type: Option<&str>,
    ctx: &Ctx,
) -> ApiResult<Option<(String, Current<Account>)>> {
    find_account(state, number, doc_type, ctx, true).await
}

async fn find_account(
    state: &AppState,
    number: &str,
    doc_type: Option<&str>,
    ctx: &Ctx,
    optimistic: bool,
) -> ApiResult<Option<(String, Current<Account>)>> {
    use shenfen_domain::shared::document::{infer_types, DocumentNumber, DocumentType};
    let candidates = match doc_type {
        Some(t) => match DocumentType::parse(t.trim()) {
            Some(t) => vec![t],
            None => return Ok(None),
        },
        None => infer_types(number),
    };
    let today = cst_date(ctx.now);
    for candidate in candidates {
        let Ok(parsed) = DocumentNumber::parse(candidate, number, today) else { continue };
        let id = ids::account_id(&state.key, candidate, &parsed);
        let current = if optimistic {
            state.accounts.load_optimistic(&id).await
        } else {
            state.accounts.load_current(&id).await
        }?;
        if current.loaded.state.exists() {
            return Ok(Some((id, current)));
        }
    }
    Ok(None)
}
