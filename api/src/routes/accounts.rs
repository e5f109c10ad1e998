//! `POST /v1/accounts` (register) and `POST /v1/accounts/reregistration`: every field is
//! validated here, then [`crate::app::registration`] does the work.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::Account;
use shenfen_domain::ids;
use shenfen_domain::ports::Captcha;
use shenfen_domain::shared::document::{infer_types, DocumentNumber, DocumentType};
use shenfen_domain::shared::validity::Validity;
use shenfen_domain::time::cst_date;
use shenfen_projections::store::{Current, Loaded};
use utoipa::ToSchema;

use crate::app::registration::{self, NewAccount, OpenedClaim, RegistrationInput, Reregistered};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// A document validity as entered.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct ValidityInput {
    /// `5y`, `10y`, `20y` or `long_term`.
    #[schema(value_type = crate::openapi::values::ValidityPeriodName)]
    pub period: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    pub start: Option<String>,
}

/// A verification code as entered.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeInput {
    /// `sms` or `wechat`.
    #[schema(value_type = Option<crate::openapi::values::CodeChannelName>)]
    pub channel: Option<String>,
    #[schema(value_type = String, pattern = "^\\s*[0-9]{6}\\s*$")]
    pub code: Option<String>,
}

/// A registration (also the body of a re-registration).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegistrationRequest {
    #[schema(value_type = bool)]
    pub agreement_accepted: Option<bool>,
    #[schema(value_type = crate::openapi::values::DocumentTypeName)]
    pub document_type: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub document_number: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub name: Option<String>,
    #[schema(value_type = ValidityInput)]
    pub validity: Option<ValidityInput>,
    #[schema(value_type = String, min_length = 8, max_length = 32)]
    pub password: Option<String>,
    #[schema(value_type = String)]
    pub password_confirmation: Option<String>,
    #[schema(value_type = String, format = Email)]
    pub email: Option<String>,
    #[schema(value_type = String, pattern = "^\\s*1[3-9][0-9]{9}\\s*$")]
    pub mobile: Option<String>,
    #[schema(value_type = CodeInput)]
    pub verification: Option<CodeInput>,
    /// The token of a solved CAPTCHA; required when the server has one (`SHENFEN_CAPTCHA`).
    pub captcha_token: Option<String>,
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

/// Validates a registration; every bad field is named at once.
fn parse(body: RegistrationRequest, today: NaiveDate, captcha: Option<&dyn Captcha>) -> ApiResult<RegistrationInput> {
    let mut errors = Errors::default();
    crate::captcha::require(captcha, &mut errors, body.captcha_token.as_deref());
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
    let code = parse_code(&mut errors, body.verification.as_ref());
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
        ) => Ok(RegistrationInput { document_type, document_number, name, validity, email, mobile, password, code }),
        _ => Err(ApiError::internal("validated registration incomplete")),
    }
}

/// The six-digit code sent to the mobile (and its channel, when given).
pub fn parse_code(errors: &mut Errors, verification: Option<&CodeInput>) -> Option<String> {
    let Some(v) = verification else {
        errors.add("verification.code", "required");
        return None;
    };
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

impl From<NewAccount> for Registered {
    fn from(account: NewAccount) -> Self {
        Registered { account_id: account.account_id, validity: ValidityView::from(&account.validity) }
    }
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
    let token = body.captcha_token.clone();
    let input = parse(body, cst_date(ctx.now), state.captcha())?;
    crate::captcha::check(state.captcha(), token.as_deref()).await?;
    let account = registration::register(&state, &ctx, input).await?;
    Ok((StatusCode::CREATED, Json(Registered::from(account))))
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
    let token = body.captcha_token.clone();
    let input = parse(body, cst_date(ctx.now), state.captcha())?;
    crate::captcha::check(state.captcha(), token.as_deref()).await?;
    Ok(match registration::reregister(&state, &ctx, input).await? {
        Reregistered::Account(account) => (StatusCode::CREATED, Json(Registered::from(account))).into_response(),
        Reregistered::Claim(claim) => {
            let OpenedClaim { claim_id, claim_token, expires_at } = claim;
            let opened = ClaimOpened { claim_id, claim_token, status: "proof_required".into(), expires_at };
            (StatusCode::ACCEPTED, Json(opened)).into_response()
        }
    })
}

/// The ids of the accounts a document number may belong to: of its type when given, else of
/// every type its format allows, in that order.
fn candidate_ids(state: &AppState, number: &str, doc_type: Option<&str>, today: NaiveDate) -> Vec<String> {
    let types = match doc_type {
        Some(t) => DocumentType::parse(t.trim()).into_iter().collect(),
        None => infer_types(number),
    };
    types
        .into_iter()
        .filter_map(|t| DocumentNumber::parse(t, number, today).ok().map(|n| ids::account_id(&state.key, t, &n)))
        .collect()
}

/// Finds the account of a document number whose type may be left out, trying the types its
/// format allows. Returns the id and the stream as the store has it now, of the first that
/// exists.
pub async fn find_by_document(
    state: &AppState,
    number: &str,
    doc_type: Option<&str>,
    ctx: &Ctx,
) -> ApiResult<Option<(String, Loaded<Account>)>> {
    for id in candidate_ids(state, number, doc_type, cst_date(ctx.now)) {
        let current = state.accounts.load_current(&id).await?;
        if current.loaded.state.exists() {
            return Ok(Some((id, current.loaded)));
        }
    }
    Ok(None)
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
    for id in candidate_ids(state, number, doc_type, cst_date(ctx.now)) {
        let current = state.accounts.load_optimistic(&id).await?;
        if current.loaded.state.exists() {
            return Ok(Some((id, current)));
        }
    }
    Ok(None)
}
