//! `POST /v1/me/deletion` and `DELETE /v1/me/deletion`: account deletion (注销) after a
//! cooling-off period, and its withdrawal (see [`crate::app::erasure`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::erasure;
use crate::error::ApiResult;
use crate::extract::{AppJson, Ctx, Holder};
use crate::startup::AppState;
use crate::validate::Errors;

/// The holder's password, proving the request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeletionRequest {
    #[schema(value_type = String, min_length = 1)]
    pub password: Option<String>,
}

/// When the account will be erased.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionScheduled {
    /// After `SHENFEN_DELETION_COOLING_OFF_DAYS` (15 by default); logging in or
    /// `DELETE /v1/me/deletion` before then withdraws it.
    pub effective_at: DateTime<Utc>,
}

/// Asks for the account's deletion; a wrong password counts as a failed login.
#[utoipa::path(post, path = "/v1/me/deletion", request_body = DeletionRequest, tag = "holder",
    responses((status = 202, body = DeletionScheduled)))]
pub async fn request(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    AppJson(body): AppJson<DeletionRequest>,
) -> ApiResult<(StatusCode, Json<DeletionScheduled>)> {
    let mut errors = Errors::default();
    let password = errors.required("password", body.password.as_deref()).map(str::to_string);
    errors.finish()?;
    let password = password.unwrap_or_default();
    let effective_at = erasure::request(&state, &ctx, &holder, password).await?;
    Ok((StatusCode::ACCEPTED, Json(DeletionScheduled { effective_at })))
}

/// Withdraws a pending deletion.
#[utoipa::path(delete, path = "/v1/me/deletion", tag = "holder", responses((status = 204)))]
pub async fn cancel(State(state): State<Arc<AppState>>, ctx: Ctx, holder: Holder) -> ApiResult<StatusCode> {
    erasure::cancel(&state, &ctx, &holder).await?;
    Ok(StatusCode::NO_CONTENT)
}
