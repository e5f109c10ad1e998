//! `POST /v1/verification-codes`: send a 6-digit code to a mobile (SMS or WeChat).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shenfen_domain::code::{Channel, CodeCommand, CodeEvent, Purpose, RESEND_INTERVAL_SECONDS};
use shenfen_domain::ids;
use shenfen_domain::metadata::Actor;
use shenfen_projections::outbox::NewMessage;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// A request for a code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    /// `register`, `reset_password`, `guardian_consent` or `change_contact`.
    #[schema(value_type = crate::openapi::values::PurposeName)]
    pub purpose: Option<String>,
    /// `sms` or `wechat`.
    #[schema(value_type = crate::openapi::values::CodeChannelName)]
    pub channel: Option<String>,
    #[schema(value_type = String, pattern = "^\\s*1[3-9][0-9]{9}\\s*$")]
    pub mobile: Option<String>,
    /// The token of a solved CAPTCHA; required when the server has one (`SHENFEN_CAPTCHA`).
    pub captcha_token: Option<String>,
}

/// When the code expires and when another may be asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    pub expires_at: DateTime<Utc>,
    pub resend_after: DateTime<Utc>,
}

/// Sends a verification code.
#[utoipa::path(post, path = "/v1/verification-codes", request_body = CodeRequest, tag = "public",
    responses((status = 202, body = CodeSent), (status = 422, body = crate::error::Problem),
              (status = 429, description = "code_rate_limited", body = crate::error::Problem)))]
pub async fn request_code(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    AppJson(body): AppJson<CodeRequest>,
) -> ApiResult<(StatusCode, Json<CodeSent>)> {
    let mut errors = Errors::default();
    let purpose = errors.required("purpose", body.purpose.as_deref()).and_then(|p| {
        let parsed = Purpose::parse(p.trim());
        if parsed.is_none() {
            errors.add("purpose", "invalid_purpose");
        }
        parsed
    });
    let channel = errors.required("channel", body.channel.as_deref()).and_then(|c| {
        let parsed = Channel::parse(c.trim());
        if parsed.is_none() {
            errors.add("channel", "invalid_channel");
        }
        parsed
    });
    let mobile = validate::mobile(&mut errors, "mobile", &body.mobile);
    crate::captcha::require(state.captcha(), &mut errors, body.captcha_token.as_deref());
    errors.finish()?;
    crate::captcha::check(state.captcha(), body.captcha_token.as_deref()).await?;
    let (Some(purpose), Some(channel), Some(mobile)) = (purpose, channel, mobile) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    if purpose == Purpose::GuardianConsent {
        guardians_mobile(&state, &headers, mobile.as_str()).await?;
    }
    let channel_id = ids::code_channel_id(&state.key, purpose.as_str(), mobile.as_str());
    let code = crate::crypto::random_code();
    let code_hash = ids::code_hash(&state.key, &channel_id, &code);
    let ttl = Duration::seconds(state.settings.code_ttl_seconds);
    let command = CodeCommand::Issue(shenfen_domain::code::IssueCode { channel, code_hash, now: ctx.now, ttl });
    let message = NewMessage {
        channel: channel.as_str().into(),
        destination: mobile.as_str().into(),
        purpose: purpose.as_str().into(),
        body: json!({ "code": code }).to_string(),
        created_at: ctx.now,
        expires_at: ctx.now + ttl,
    };
    let committed =
        state.codes.execute_sending(&channel_id, command, &ctx.meta(Actor::Anonymous), vec![message], "Issued").await?;
    let Some(CodeEvent::Issued { issued_at, expires_at, .. }) = committed.events.first().cloned() else {
        return Err(ApiError::internal("code was not issued"));
    };
    state.outbox_wake.notify_one();
    tracing::info!(purpose = purpose.as_str(), channel = channel.as_str(), "verification code issued");
    let resend_after = issued_at + Duration::seconds(RESEND_INTERVAL_SECONDS);
    Ok((StatusCode::ACCEPTED, Json(CodeSent { expires_at, resend_after })))
}

/// A guardian-consent code goes only to the guardian's mobile of the signed-in student's
/// application: a student token is needed (401), the application must name a guardian's
/// mobile (409 `guardian_mobile_missing`), and the code's mobile must be it (409
/// `not_guardian_mobile`: the request is well formed, the application names another mobile). Nobody can have codes sent to a stranger's mobile in a student's
/// name.
async fn guardians_mobile(state: &AppState, headers: &axum::http::HeaderMap, mobile: &str) -> ApiResult<()> {
    let student = crate::extract::StudentHolder::of(headers, state).await?;
    let Some(guardian) = &student.student().guardian else {
        return Err(ApiError::from(shenfen_domain::student::StudentError::GuardianMobileMissing));
    };
    if guardian.mobile != mobile {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_guardian_mobile",
            "A guardian-consent code goes only to the guardian's mobile of the application.",
            "监护人验证码只能发送至认证信息中填写的监护人手机号。",
        ));
    }
    Ok(())
}
