//! The account holder's endpoints under `/v1/me`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use shenfen_domain::account::{
    Account, AccountCommand, AccountError, AccountEvent, BindWechat, ChangePassword, ConfirmEmailChange, NewPassword,
    ProfileInput, UnbindWechat,
};
use shenfen_domain::ports::WechatAnswer;
use shenfen_domain::shared::ethnicity::Ethnicity;
use shenfen_domain::shared::mask::{mask_document, mask_email, mask_mobile};
use shenfen_domain::shared::Gender;
use shenfen_domain::time::cst_date;
use shenfen_projections::quotas::Quotas;
use utoipa::ToSchema;

use super::accounts::ValidityInput;
use crate::app::password;
use crate::app::profile::{self, ProfileChange};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, CommandHolder, Ctx, Holder};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// A review period.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodView {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// What is left of the verification quotas.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotasView {
    pub real_name_attempts_left_today: u32,
    pub manual_review_applications_left_in_period: u32,
    pub period: PeriodView,
    /// When today's attempts are back (the next midnight, China time).
    pub attempts_reset_at: chrono::DateTime<chrono::Utc>,
    /// When the next period starts.
    pub next_period_start: NaiveDate,
}

/// The holder's account, without the quotas.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummary {
    pub account_id: String,
    pub document_type: String,
    pub document_number_masked: String,
    pub name: String,
    pub profile_complete: bool,
    pub real_name_status: String,
    pub email_masked: Option<String>,
    pub mobile_masked: Option<String>,
    pub wechat_bound: bool,
    /// A new e-mail address waiting for the code sent to it (`POST /v1/me/email-confirmation`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_email: Option<String>,
}

impl AccountSummary {
    fn of(account_id: &str, account: &Account) -> Self {
        AccountSummary {
            account_id: account_id.to_string(),
            document_type: account.document_type.map(|t| t.as_str().to_string()).unwrap_or_default(),
            document_number_masked: account
                .document_number
                .as_ref()
                .map(|n| mask_document(n.as_str()))
                .unwrap_or_default(),
            name: account.name.as_ref().map(|n| n.as_str().to_string()).unwrap_or_default(),
            profile_complete: account.profile_complete(),
            real_name_status: account.real_name_status.as_str().to_string(),
            email_masked: account.email.as_ref().map(|e| mask_email(e.as_str())),
            mobile_masked: account.mobile.as_ref().map(|m| mask_mobile(m.as_str())),
            wechat_bound: account.wechat_openid.is_some(),
            pending_email: account.pending_email.as_ref().map(|p| p.email.as_str().to_string()),
        }
    }
}

/// The holder's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub account: AccountSummary,
    pub quotas: QuotasView,
}

async fn me_view(state: &AppState, ctx: &Ctx, account_id: &str, account: &Account) -> ApiResult<MeView> {
    let quotas = Quotas::get(&state.db, account_id, ctx.now).await.map_err(ApiError::internal)?;
    Ok(MeView {
        account: AccountSummary::of(account_id, account),
        quotas: QuotasView {
            real_name_attempts_left_today: quotas.attempts_left_today,
            manual_review_applications_left_in_period: quotas.applications_left_in_period,
            period: PeriodView { start: quotas.period_start, end: quotas.period_end },
            attempts_reset_at: quotas.attempts_reset_at,
            next_period_start: quotas.next_period_start,
        },
    })
}

/// The holder's account.
#[utoipa::path(get, path = "/v1/me", tag = "holder",
    responses((status = 200, body = MeView), (status = 401, body = crate::error::Problem)))]
pub async fn get_me(State(state): State<Arc<AppState>>, ctx: Ctx, holder: Holder) -> ApiResult<Json<MeView>> {
    Ok(Json(me_view(&state, &ctx, &holder.account_id, holder.account()).await?))
}

/// Completion (first login) or edit of the profile.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProfileRequest {
    /// GB/T 3304 two-digit code ("01" 汉族 … "56", "97" other, "98" foreign-born Chinese).
    #[schema(value_type = Option<String>, pattern = "^\\s*(0[1-9]|[1-4][0-9]|5[0-6]|9[78])\\s*$")]
    pub ethnicity: Option<String>,
    /// `male` or `female` (permits, at completion).
    #[schema(value_type = Option<crate::openapi::values::GenderName>)]
    pub gender: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birth_date: Option<String>,
    /// The local Hong Kong / Macau / Taiwan identity number (permits, at completion).
    pub local_id_number: Option<String>,
    /// The travel-permit number (`hmt_residence_permit`, at completion).
    pub permit_number: Option<String>,
    /// A new e-mail address: needs `current_password`, and applies once the code sent to it is
    /// confirmed (`POST /v1/me/email-confirmation`).
    #[schema(value_type = Option<String>, format = Email)]
    pub email: Option<String>,
    pub validity: Option<ValidityInput>,
    /// Required with `email`.
    pub current_password: Option<String>,
    /// Never modifiable here: present → `field_not_modifiable`.
    pub name: Option<serde_json::Value>,
    /// Never modifiable: present → `field_not_modifiable`.
    pub document_number: Option<serde_json::Value>,
    /// Never modifiable: present → `field_not_modifiable`.
    pub document_type: Option<serde_json::Value>,
}

fn optional_text(errors: &mut Errors, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    if v.chars().count() > max || v.chars().any(char::is_control) {
        errors.add(field, "invalid_value");
        return None;
    }
    Some(v.to_string())
}

/// Completes or edits the profile; answers the account as changed (`GET /v1/me` adds the
/// quotas, which a profile change does not touch). A new e-mail address needs the current
/// password and waits for the code sent to it (`pending_email`).
#[utoipa::path(put, path = "/v1/me/profile", request_body = ProfileRequest, tag = "holder",
    responses((status = 200, body = AccountSummary),
              (status = 401, description = "unauthenticated, or login_failed (current_password wrong)", body = crate::error::Problem),
              (status = 423, description = "account_locked", body = crate::error::Problem),
              (status = 422, description = "invalid fields, field_not_modifiable, password_required", body = crate::error::Problem)))]
pub async fn update_profile(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    CommandHolder(holder): CommandHolder,
    AppJson(body): AppJson<ProfileRequest>,
) -> ApiResult<Json<AccountSummary>> {
    let change = parse_profile(&body, holder.account(), cst_date(ctx.now))?;
    let account = profile::change(&state, &ctx, &holder, change).await?;
    Ok(Json(AccountSummary::of(&holder.account_id, &account)))
}

/// Validates a profile change for `account`; every bad field is named at once.
fn parse_profile(body: &ProfileRequest, account: &Account, today: NaiveDate) -> ApiResult<ProfileChange> {
    let mut errors = Errors::default();
    for (field, present) in [
        ("name", body.name.is_some()),
        ("document_number", body.document_number.is_some()),
        ("document_type", body.document_type.is_some()),
    ] {
        if present {
            errors.add(field, "field_not_modifiable");
        }
    }
    let ethnicity = optional(body.ethnicity.as_deref())
        .and_then(|e| Ethnicity::parse(e).map_err(|err| errors.add("ethnicity", err.code())).ok());
    let gender = optional(body.gender.as_deref())
        .and_then(|g| Gender::parse(g).map_err(|_| errors.add("gender", "invalid_gender")).ok());
    let birth_date = validate::date(&mut errors, "birth_date", optional(body.birth_date.as_deref()));
    if birth_date.is_some_and(|b| b > today) {
        errors.add("birth_date", "invalid_date");
    }
    let local_id_number = optional_text(&mut errors, "local_id_number", body.local_id_number.as_deref(), 32);
    let permit_number = optional_text(&mut errors, "permit_number", body.permit_number.as_deref(), 32);
    let email = body.email.as_ref().and_then(|_| validate::email(&mut errors, "email", &body.email));
    let email = email.filter(|e| Some(e) != account.email.as_ref());
    let current_password = body.current_password.clone().filter(|p| !p.is_empty());
    if email.is_some() && current_password.is_none() {
        errors.add("current_password", "password_required");
    }
    let validity = body.validity.as_ref().and_then(|v| {
        let doc_type = account.document_type?;
        let birth = account
            .document_number
            .as_ref()
            .and_then(|n| n.birth_date())
            .or(birth_date)
            .or(account.profile.as_ref().and_then(|p| p.birth_date));
        validate::validity(&mut errors, v.period.as_deref(), v.start.as_deref(), Some((doc_type, birth)), today)
    });
    errors.finish()?;
    let profile = ProfileInput { ethnicity, gender, birth_date, local_id_number, permit_number };
    Ok(ProfileChange { profile, validity, new_email: email.zip(current_password) })
}

/// A trimmed optional text field; blank is absent.
fn optional(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The code sent to a new e-mail address.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailConfirmation {
    #[schema(value_type = String, min_length = 1)]
    pub code: Option<String>,
}

/// Confirms an e-mail change with the code sent to the new address; the old address is told.
#[utoipa::path(post, path = "/v1/me/email-confirmation", request_body = EmailConfirmation, tag = "holder",
    responses((status = 204), (status = 400, description = "invalid_or_expired_secret", body = crate::error::Problem),
              (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn confirm_email(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    AppJson(body): AppJson<EmailConfirmation>,
) -> ApiResult<StatusCode> {
    let mut errors = Errors::default();
    let code = errors.required("code", body.code.as_deref()).map(|c| c.trim().to_string());
    errors.finish()?;
    let code = code.unwrap_or_default();
    let code_hash = profile::email_code_hash(&state, &holder.account_id, &code);
    let command = AccountCommand::ConfirmEmailChange(ConfirmEmailChange { code_hash, now: ctx.now });
    let committed = state
        .accounts
        .execute_from(&holder.account_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    if !committed.events.iter().any(|e| matches!(e, AccountEvent::EmailChanged { .. })) {
        return Err(ApiError::from(AccountError::InvalidOrExpiredSecret));
    }
    state.outbox_wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    #[schema(value_type = String, min_length = 1)]
    pub old_password: Option<String>,
    #[schema(value_type = String, min_length = 8, max_length = 32)]
    pub new_password: Option<String>,
    #[schema(value_type = String)]
    pub new_password_confirmation: Option<String>,
}

/// Changes the password; every other session ends. A wrong old password counts as a failed
/// login (the lockout applies).
#[utoipa::path(post, path = "/v1/me/password", request_body = PasswordChange, tag = "holder",
    responses((status = 204), (status = 401, description = "login_failed (old password wrong)", body = crate::error::Problem),
              (status = 423, description = "account_locked", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    AppJson(body): AppJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let account = holder.account();
    let mut errors = Errors::default();
    let old = errors.required("old_password", body.old_password.as_deref()).map(str::to_string);
    let new = validate::new_password(
        &mut errors,
        "new_password",
        &body.new_password,
        "new_password_confirmation",
        &body.new_password_confirmation,
        account.document_number.as_ref().map(|n| n.as_str()),
    );
    errors.finish()?;
    let (Some(old), Some(new)) = (old, new) else {
        return Err(ApiError::internal("validated password change incomplete"));
    };
    let password = password::check_current(&state, &ctx, account, old, || async {
        let new_password_hash = state.hashing.hash(new).await.map_err(ApiError::internal)?;
        Ok(NewPassword { new_password_hash, keep_session: holder.session_id.clone() })
    })
    .await?;
    let command = AccountCommand::ChangePassword(ChangePassword { password, now: ctx.now });
    let committed = state
        .accounts
        .execute_from(&holder.account_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    password::refused(&committed.events)?;
    state.outbox_wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// A WeChat binding: the OAuth code the user got in WeChat, and the current password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WechatBinding {
    /// Exchanged through WeChat for the openid to bind (never an openid sent by the client).
    #[schema(value_type = String, min_length = 1)]
    pub oauth_code: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub current_password: Option<String>,
}

/// Binds WeChat (enables password recovery over WeChat); the holder is told.
#[utoipa::path(put, path = "/v1/me/wechat", request_body = WechatBinding, tag = "holder",
    responses((status = 204), (status = 401, description = "login_failed (current_password wrong)", body = crate::error::Problem),
              (status = 423, description = "account_locked", body = crate::error::Problem),
              (status = 422, description = "invalid_oauth_code and field errors", body = crate::error::Problem),
              (status = 503, description = "wechat_unavailable", body = crate::error::Problem)))]
pub async fn bind_wechat(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    AppJson(body): AppJson<WechatBinding>,
) -> ApiResult<StatusCode> {
    let mut errors = Errors::default();
    let code = errors.required("oauth_code", body.oauth_code.as_deref()).map(|o| o.trim().to_string());
    let password = errors.required("current_password", body.current_password.as_deref()).map(str::to_string);
    if code.as_ref().is_some_and(|c| c.len() > 256 || c.chars().any(char::is_control)) {
        errors.add("oauth_code", "invalid_oauth_code");
    }
    errors.finish()?;
    let (Some(code), Some(password)) = (code, password) else {
        return Err(ApiError::internal("validated binding incomplete"));
    };
    // A wrong password is recorded (and refused) before WeChat is asked: the code stays unused.
    let password = password::check_current(&state, &ctx, holder.account(), password, || async {
        match state.wechat.openid(&code).await {
            WechatAnswer::Openid(openid) => Ok(openid),
            WechatAnswer::InvalidCode => Err(ApiError::field("oauth_code", "invalid_oauth_code")),
            WechatAnswer::Unavailable => Err(ApiError::unavailable(
                "wechat_unavailable",
                "WeChat cannot be reached; try again later.",
                "微信服务暂不可用，请稍后再试。",
            )),
        }
    })
    .await?;
    let command = AccountCommand::BindWechat(BindWechat { password, now: ctx.now });
    let committed = state
        .accounts
        .execute_from(&holder.account_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    password::refused(&committed.events)?;
    state.outbox_wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// Unbinds WeChat.
#[utoipa::path(delete, path = "/v1/me/wechat", tag = "holder",
    responses((status = 204), (status = 409, description = "wechat_not_bound", body = crate::error::Problem)))]
pub async fn unbind_wechat(State(state): State<Arc<AppState>>, ctx: Ctx, holder: Holder) -> ApiResult<StatusCode> {
    let command = AccountCommand::UnbindWechat(UnbindWechat { now: ctx.now });
    state
        .accounts
        .execute_from(&holder.account_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
