//! Forgot password: `POST /v1/password-resets`, `…/{reset_id}/deliveries`,
//! `…/{reset_id}/completion`.
//!
//! A reset id names its account (`rst_` + the account id's 32 hex digits + 16 random hex
//! digits), so no read model is needed to find it. Its secrets live, hashed, in the account
//! stream: an e-mailed link token (SHA-256) or a 6-digit code (keyed hash bound to the reset).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shenfen_domain::account::{Account, AccountCommand, AccountError, AccountEvent, ResetMethod};
use shenfen_domain::ids;
use shenfen_domain::metadata::Actor;
use shenfen_domain::shared::mask::{mask_email, mask_mobile};
use shenfen_domain::shared::name::PersonName;
use shenfen_projections::outbox::NewMessage;
use shenfen_projections::store::BusError;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// Who wants to reset: all three must match.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    #[schema(value_type = crate::openapi::values::DocumentTypeName)]
    pub document_type: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub document_number: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub name: Option<String>,
}

/// A recovery method and its masked destination.
#[derive(Debug, Serialize, ToSchema)]
pub struct MethodView {
    /// `email`, `sms` or `wechat`.
    pub method: String,
    pub destination: String,
}

/// A started reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetStarted {
    pub reset_id: String,
    pub methods: Vec<MethodView>,
}

/// The chosen method.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeliveryRequest {
    #[schema(value_type = crate::openapi::values::ResetMethodName)]
    pub method: Option<String>,
}

/// The secret and the new password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompletionRequest {
    /// The code (SMS, WeChat) or the e-mailed token.
    #[schema(value_type = String, min_length = 1)]
    pub secret: Option<String>,
    #[schema(value_type = String, min_length = 8, max_length = 32)]
    pub new_password: Option<String>,
    #[schema(value_type = String)]
    pub new_password_confirmation: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::from(AccountError::NotFound)
}

fn destination(account: &Account, method: ResetMethod) -> Option<String> {
    match method {
        ResetMethod::Email => account.email.as_ref().map(|e| e.as_str().to_string()),
        ResetMethod::Sms => account.mobile.as_ref().map(|m| m.as_str().to_string()),
        ResetMethod::Wechat => account.wechat_openid.clone(),
    }
}

fn masked(method: ResetMethod, to: &str) -> String {
    match method {
        ResetMethod::Email => mask_email(to),
        ResetMethod::Sms => mask_mobile(to),
        ResetMethod::Wechat => {
            let head: String = to.chars().take(3).collect();
            format!("{head}***")
        }
    }
}

fn reset_not_found() -> ApiError {
    ApiError::from(AccountError::ResetNotFound)
}

/// Starts a password reset.
#[utoipa::path(post, path = "/v1/password-resets", request_body = ResetRequest, tag = "public",
    responses((status = 201, body = ResetStarted), (status = 404, description = "account_not_found", body = crate::error::Problem),
              (status = 403, description = "legacy_account_must_reregister", body = crate::error::Problem)))]
pub async fn start(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    AppJson(body): AppJson<ResetRequest>,
) -> ApiResult<(StatusCode, Json<ResetStarted>)> {
    let mut errors = Errors::default();
    let doc_type = errors.required("document_type", body.document_type.as_deref()).map(str::to_string);
    let number = errors.required("document_number", body.document_number.as_deref()).map(str::to_string);
    let name = errors.required("name", body.name.as_deref()).map(str::to_string);
    errors.finish()?;
    let (Some(doc_type), Some(number), Some(name)) = (doc_type, number, name) else { return Err(not_found()) };
    let Ok(name) = PersonName::parse(&name) else { return Err(not_found()) };
    let Some((account_id, account)) = super::accounts::find_by_document(&state, &number, Some(&doc_type), &ctx).await?
    else {
        return Err(not_found());
    };
    if account.state.legacy {
        return Err(ApiError::from(AccountError::LegacyMustReregister));
    }
    let reset_id = crate::ids::id_for("rst_", &account_id);
    let command = AccountCommand::RequestPasswordReset(shenfen_domain::account::RequestPasswordReset {
        reset_id: reset_id.clone(),
        name,
        now: ctx.now,
    });
    let committed = state.accounts.execute(&account_id, command, &ctx.meta(Actor::Anonymous)).await?;
    let account = committed.state;
    let methods = account
        .reset_methods()
        .into_iter()
        .filter_map(|m| {
            destination(&account, m).map(|to| MethodView { method: m.as_str().into(), destination: masked(m, &to) })
        })
        .collect();
    Ok((StatusCode::CREATED, Json(ResetStarted { reset_id, methods })))
}

/// Sends the reset secret by the chosen method.
#[utoipa::path(post, path = "/v1/password-resets/{reset_id}/deliveries", request_body = DeliveryRequest, tag = "public",
    params(("reset_id" = String, Path)),
    responses((status = 202), (status = 422, description = "method_not_available", body = crate::error::Problem),
              (status = 404, description = "reset_not_found", body = crate::error::Problem),
              (status = 429, description = "code_rate_limited", body = crate::error::Problem)))]
pub async fn deliver(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    Path(reset_id): Path<String>,
    AppJson(body): AppJson<DeliveryRequest>,
) -> ApiResult<StatusCode> {
    let account_id = crate::ids::account_of("rst_", &reset_id).ok_or_else(reset_not_found)?;
    let mut errors = Errors::default();
    let method = errors.required("method", body.method.as_deref()).map(str::to_string);
    errors.finish()?;
    let method = method
        .as_deref()
        .and_then(|m| ResetMethod::parse(m.trim()))
        .ok_or_else(|| ApiError::from(AccountError::MethodNotAvailable))?;
    let account = state.accounts.load(&account_id).await?;
    let to = destination(&account, method).ok_or_else(|| ApiError::from(AccountError::MethodNotAvailable))?;
    let (secret_hash, message) = new_secret(&state, &reset_id, method);
    let ttl = Duration::seconds(state.settings.code_ttl_seconds);
    let command = AccountCommand::IssueResetSecret(shenfen_domain::account::IssueResetSecret {
        reset_id: reset_id.clone(),
        method,
        secret_hash,
        ttl,
        now: ctx.now,
    });
    let message = NewMessage {
        channel: method.as_str().into(),
        destination: to,
        purpose: "reset_password".into(),
        body: message.to_string(),
        created_at: ctx.now,
        expires_at: ctx.now + ttl,
    };
    state
        .accounts
        .execute_sending(&account_id, command, &ctx.meta(Actor::Anonymous), vec![message], "ResetSecretIssued")
        .await?;
    state.outbox_wake.notify_one();
    tracing::info!(account_id = %account_id, method = method.as_str(), "reset secret issued");
    Ok(StatusCode::ACCEPTED)
}

/// A new reset secret for `method`: its hash, and the message that carries it — a link for
/// e-mail, a six-digit code otherwise.
fn new_secret(state: &AppState, reset_id: &str, method: ResetMethod) -> (String, serde_json::Value) {
    match method {
        ResetMethod::Email => {
            // The token travels in the fragment: browsers never send it to a server, so it
            // never lands in a web server's or proxy's access log.
            let token = crate::crypto::random_token();
            let base = state.settings.public_url.trim_end_matches('/');
            let link = format!("{base}/reset-password#reset_id={reset_id}&token={token}");
            (ids::token_hash(&token), json!({ "link": link, "token": token }))
        }
        ResetMethod::Sms | ResetMethod::Wechat => {
            let code = crate::crypto::random_code();
            (ids::code_hash(&state.key, reset_id, &code), json!({ "code": code }))
        }
    }
}

/// The hash a completion secret is compared by: codes are keyed hashes bound to the reset,
/// link tokens plain SHA-256.
fn secret_hash(state: &AppState, reset_id: &str, secret: &str) -> String {
    if secret.len() == 6 && secret.bytes().all(|b| b.is_ascii_digit()) {
        ids::code_hash(&state.key, reset_id, secret)
    } else {
        ids::token_hash(secret)
    }
}

fn bad_secret() -> ApiError {
    ApiError::from(AccountError::InvalidOrExpiredSecret)
}

/// Sets a new password with the code or token.
#[utoipa::path(post, path = "/v1/password-resets/{reset_id}/completion", request_body = CompletionRequest, tag = "public",
    params(("reset_id" = String, Path)),
    responses((status = 204), (status = 400, description = "invalid_or_expired_secret", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub async fn complete(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    Path(reset_id): Path<String>,
    AppJson(body): AppJson<CompletionRequest>,
) -> ApiResult<StatusCode> {
    let account_id = crate::ids::account_of("rst_", &reset_id).ok_or_else(bad_secret)?;
    let account = state.accounts.load(&account_id).await?;
    let mut errors = Errors::default();
    let secret = errors.required("secret", body.secret.as_deref()).map(|s| s.trim().to_string());
    let password = validate::new_password(
        &mut errors,
        "new_password",
        &body.new_password,
        "new_password_confirmation",
        &body.new_password_confirmation,
        account.document_number.as_ref().map(|n| n.as_str()),
    );
    errors.finish()?;
    let (Some(secret), Some(password)) = (secret, password) else { return Err(bad_secret()) };
    let hash = secret_hash(&state, &reset_id, &secret);
    // Check the secret before spending a password hash on it; the aggregate checks again.
    let live = account.resets.iter().find(|r| r.reset_id == reset_id);
    let plausible = live.is_some_and(|r| !r.completed && r.secret_hash.as_deref() == Some(hash.as_str()));
    let mut new_password_hash =
        if plausible { Some(state.hashing.hash(password.clone()).await.map_err(ApiError::internal)?) } else { None };
    let mut attempt = 0;
    let committed = loop {
        let command = AccountCommand::CompletePasswordReset(shenfen_domain::account::CompletePasswordReset {
            reset_id: reset_id.clone(),
            secret_hash: hash.clone(),
            new_password_hash: new_password_hash.clone(),
            now: ctx.now,
        });
        match state.accounts.execute(&account_id, command, &ctx.meta(Actor::Anonymous)).await {
            Err(BusError::Domain(AccountError::StaleCredentials)) if attempt == 0 => {
                // The secret was issued after we looked: hash after all and try again.
                attempt += 1;
                new_password_hash = Some(state.hashing.hash(password.clone()).await.map_err(ApiError::internal)?);
            }
            other => break other?,
        }
    };
    if !committed.events.iter().any(|e| matches!(e, AccountEvent::PasswordReset { .. })) {
        return Err(bad_secret());
    }
    tracing::info!(account_id = %account_id, "password reset");
    Ok(StatusCode::NO_CONTENT)
}
