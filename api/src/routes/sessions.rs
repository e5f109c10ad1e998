//! `POST /v1/sessions` (log in, see [`crate::app::sessions`]) and `DELETE /v1/sessions/current`
//! (log out).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::AccountCommand;
use utoipa::ToSchema;

use crate::app::sessions::{self, LoggedIn};
use crate::error::ApiResult;
use crate::extract::{AppJson, Ctx, Holder};
use crate::startup::AppState;

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(value_type = String, min_length = 1)]
    pub document_number: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub password: Option<String>,
    /// Optional: inferred from the number's format when left out.
    #[schema(value_type = Option<crate::openapi::values::DocumentTypeName>)]
    pub document_type: Option<String>,
    /// The token of a solved CAPTCHA; required when the server has one (`SHENFEN_CAPTCHA`).
    pub captcha_token: Option<String>,
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
    let number = errors.required("document_number", body.document_number.as_deref()).map(str::to_string);
    let password = errors.required("password", body.password.as_deref()).map(str::to_string);
    crate::captcha::require(state.captcha(), &mut errors, body.captcha_token.as_deref());
    errors.finish()?;
    crate::captcha::check(state.captcha(), body.captcha_token.as_deref()).await?;
    let (Some(number), Some(password)) = (number, password) else { return Err(sessions::login_failed()) };
    let doc_type = body.document_type.as_deref();
    let LoggedIn { account_id, token, expires_at, account } =
        sessions::log_in(&state, &ctx, begun, &number, doc_type, password).await?;
    let profile_complete = account.profile_complete();
    let real_name_status = account.real_name_status.as_str().to_string();
    Ok((StatusCode::CREATED, Json(LoginResponse { token, expires_at, account_id, profile_complete, real_name_status })))
}

/// Ends the current session.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "holder",
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
