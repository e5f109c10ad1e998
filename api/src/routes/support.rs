//! Support agents (客服): account lookup, contact changes and corrections, each change an
//! event naming the agent, the reason and the evidence (which may be a support case, see
//! [`super::support_cases`]). A support agent alone cannot move an account's contacts: a
//! contact change is a request that a second agent approves; when it applies, the old mobile
//! and e-mail are told and pending password resets end.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::{AccountCommand, AccountError, SupportAction};
use shenfen_domain::shared::mask::{mask_document, mask_email, mask_mobile};
use shenfen_domain::shared::Gender;
use shenfen_domain::staff::Role;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx, StaffMember};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// A lookup by document.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Lookup {
    #[schema(value_type = crate::openapi::values::DocumentTypeName)]
    pub document_type: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub document_number: Option<String>,
}

/// What support sees of an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResult {
    pub account_id: String,
    pub name: String,
    pub document_number_masked: String,
    pub mobile_masked: Option<String>,
    pub email_masked: Option<String>,
    pub registered_at: DateTime<Utc>,
    pub real_name_status: String,
    pub legacy: bool,
}

/// Looks an account up by document.
#[utoipa::path(post, path = "/v1/support/lookups", request_body = Lookup, tag = "support",
    responses((status = 200, body = LookupResult), (status = 404, description = "account_not_found", body = crate::error::Problem)))]
pub async fn lookup(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    AppJson(body): AppJson<Lookup>,
) -> ApiResult<Json<LookupResult>> {
    staff.require(&[Role::Support])?;
    let mut errors = Errors::default();
    let doc_type = errors.required("document_type", body.document_type.as_deref()).map(str::to_string);
    let number = errors.required("document_number", body.document_number.as_deref()).map(str::to_string);
    errors.finish()?;
    let (Some(doc_type), Some(number)) = (doc_type, number) else { return Err(not_found()) };
    let (account_id, loaded) =
        super::accounts::find_by_document(&state, &number, Some(&doc_type), &ctx).await?.ok_or_else(not_found)?;
    let account = loaded.state;
    tracing::info!(staff_id = %staff.staff_id, account_id = %account_id, "support lookup");
    Ok(Json(LookupResult {
        account_id,
        name: account.name.as_ref().map(|n| n.as_str().to_string()).unwrap_or_default(),
        document_number_masked: account.document_number.as_ref().map(|n| mask_document(n.as_str())).unwrap_or_default(),
        mobile_masked: account.mobile.as_ref().map(|m| mask_mobile(m.as_str())),
        email_masked: account.email.as_ref().map(|e| mask_email(e.as_str())),
        registered_at: account.registered_at.unwrap_or(ctx.now),
        real_name_status: account.real_name_status.as_str().into(),
        legacy: account.legacy,
    }))
}

fn not_found() -> ApiError {
    ApiError::from(AccountError::NotFound)
}

/// A contact change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContactChange {
    pub mobile: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub reason: Option<String>,
    /// A reference to the evidence (e.g. the photo of the holder with the ID card); a support
    /// case id (`spc_…`) must name a case opened for this account's document.
    #[schema(value_type = String, min_length = 1)]
    pub evidence_ref: Option<String>,
}

fn action(
    errors: &mut Errors,
    staff: &StaffMember,
    reason: Option<&str>,
    evidence: Option<&str>,
) -> Option<SupportAction> {
    let reason = errors.required("reason", reason).map(|r| r.trim().to_string());
    let evidence_ref = errors.required("evidence_ref", evidence).map(|r| r.trim().to_string());
    for (field, value) in [("reason", &reason), ("evidence_ref", &evidence_ref)] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 500) {
            errors.add(field, "too_long");
        }
    }
    Some(SupportAction { agent: staff.staff_id.clone(), reason: reason?, evidence_ref: evidence_ref? })
}

/// An `evidence_ref` that names a support case (`spc_…`) must name one that was opened for this
/// account's document: 422 `unknown_case` or `case_of_another_account` otherwise. Any other
/// reference is free text.
async fn check_case(state: &AppState, errors: &mut Errors, evidence: Option<&str>, account_id: &str) -> ApiResult<()> {
    let Some(evidence) = evidence.filter(|_| !errors.0.iter().any(|e| e.field == "evidence_ref")) else {
        return Ok(());
    };
    if let Some(code) = crate::app::support_cases::evidence_problem(state, evidence, account_id).await? {
        errors.add("evidence_ref", code);
    }
    Ok(())
}

async fn run(
    state: &AppState,
    ctx: &Ctx,
    staff: &StaffMember,
    account_id: &str,
    command: AccountCommand,
) -> ApiResult<()> {
    state.accounts.execute(account_id, command, &ctx.meta(staff.actor())).await?;
    tracing::info!(staff_id = %staff.staff_id, account_id = %account_id, "support change");
    Ok(())
}

/// A contact change waiting for a second agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactChangeRequested {
    pub request_id: String,
    /// `awaiting_second_approval`.
    pub status: String,
}

/// Asks to change an account's mobile or e-mail; a second support agent approves it.
#[utoipa::path(post, path = "/v1/support/accounts/{id}/contact", request_body = ContactChange, tag = "support",
    params(("id" = String, Path)),
    responses((status = 202, body = ContactChangeRequested), (status = 404, body = crate::error::Problem),
              (status = 422, description = "field errors, nothing_to_change", body = crate::error::Problem)))]
pub async fn change_contact(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(account_id): Path<String>,
    AppJson(body): AppJson<ContactChange>,
) -> ApiResult<(StatusCode, Json<ContactChangeRequested>)> {
    staff.require(&[Role::Support])?;
    let mut errors = Errors::default();
    let mobile = body.mobile.as_ref().and_then(|_| validate::mobile(&mut errors, "mobile", &body.mobile));
    let email = body.email.as_ref().and_then(|_| validate::email(&mut errors, "email", &body.email));
    if body.mobile.is_none() && body.email.is_none() {
        errors.add("mobile", "required");
    }
    let by = action(&mut errors, &staff, body.reason.as_deref(), body.evidence_ref.as_deref());
    check_case(&state, &mut errors, body.evidence_ref.as_deref(), &account_id).await?;
    errors.finish()?;
    let by = by.ok_or_else(|| ApiError::internal("validated action missing"))?;
    let request_id = crate::ids::id_for("scr_", &account_id);
    let command = AccountCommand::RequestContactChange(shenfen_domain::account::RequestContactChange {
        request_id: request_id.clone(),
        mobile,
        email,
        by,
        now: ctx.now,
    });
    run(&state, &ctx, &staff, &account_id, command).await?;
    Ok((StatusCode::ACCEPTED, Json(ContactChangeRequested { request_id, status: "awaiting_second_approval".into() })))
}

/// A second support agent approves a contact change: it applies now.
#[utoipa::path(post, path = "/v1/support/requests/{request_id}/approval", tag = "support",
    params(("request_id" = String, Path)),
    responses((status = 204), (status = 404, description = "request_not_found", body = crate::error::Problem),
              (status = 409, description = "same_agent", body = crate::error::Problem)))]
pub async fn approve(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(request_id): Path<String>,
) -> ApiResult<StatusCode> {
    staff.require(&[Role::Support])?;
    let account_id = crate::ids::account_of("scr_", &request_id)
        .ok_or_else(|| ApiError::from(AccountError::ContactRequestNotFound))?;
    let command = AccountCommand::ApproveContactChange(shenfen_domain::account::ApproveContactChange {
        request_id,
        approver: staff.staff_id.clone(),
        now: ctx.now,
    });
    run(&state, &ctx, &staff, &account_id, command).await?;
    state.outbox_wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// A correction.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Correction {
    /// `male` or `female`.
    #[schema(value_type = Option<crate::openapi::values::GenderName>)]
    pub gender: Option<String>,
    /// The right spelling of a garbled name.
    pub name: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub reason: Option<String>,
    /// A reference to the evidence; a support case id (`spc_…`) must name a case opened for this
    /// account's document.
    #[schema(value_type = String, min_length = 1)]
    pub evidence_ref: Option<String>,
}

/// Corrects the gender or a garbled name.
#[utoipa::path(post, path = "/v1/support/accounts/{id}/corrections", request_body = Correction, tag = "support",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn correct(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(account_id): Path<String>,
    AppJson(body): AppJson<Correction>,
) -> ApiResult<StatusCode> {
    staff.require(&[Role::Support])?;
    let mut errors = Errors::default();
    let gender = body.gender.as_deref().and_then(|g| match Gender::parse(g.trim()) {
        Ok(g) => Some(g),
        Err(_) => {
            errors.add("gender", "invalid_gender");
            None
        }
    });
    let name = body.name.as_ref().and_then(|_| validate::name(&mut errors, "name", &body.name));
    if body.gender.is_none() && body.name.is_none() {
        errors.add("name", "required");
    }
    let by = action(&mut errors, &staff, body.reason.as_deref(), body.evidence_ref.as_deref());
    check_case(&state, &mut errors, body.evidence_ref.as_deref(), &account_id).await?;
    errors.finish()?;
    let by = by.ok_or_else(|| ApiError::internal("validated action missing"))?;
    run(
        &state,
        &ctx,
        &staff,
        &account_id,
        AccountCommand::SupportCorrect(shenfen_domain::account::SupportCorrect { gender, name, by, now: ctx.now }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
