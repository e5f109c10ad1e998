//! Support cases (source document 001): anyone who cannot help themselves writes to support
//! with their name, document, mobile, e-mail, a description and a photo of themselves holding
//! the document; they are acknowledged at once by e-mail, and support agents answer within 24
//! working hours, from a queue ordered by that due instant. The work is in
//! [`crate::app::support_cases`].

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::staff::Role;
use shenfen_domain::support_case::{
    is_case_id, Applicant, CaseKind, CaseStatus, CaseText, SupportCaseError, MAX_DESCRIPTION_CHARS, MAX_REPLY_CHARS,
};
use shenfen_domain::time::cst_date;
use shenfen_projections::support_cases::SupportCases;
use utoipa::{IntoParams, ToSchema};

use super::verification::check_photo;
use crate::app::support_cases::{self, CaseForm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx, MultipartForm, StaffMember};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// The most cases one list answers.
const LIST_LIMIT: i64 = 1000;

/// The multipart form of a support case (documentation of the wire shape).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SupportCaseForm {
    #[schema(value_type = crate::openapi::values::SupportCaseKindName)]
    kind: String,
    #[schema(min_length = 1)]
    name: String,
    #[schema(value_type = crate::openapi::values::DocumentTypeName)]
    document_type: String,
    #[schema(min_length = 1)]
    document_number: String,
    #[schema(pattern = "^1[3-9][0-9]{9}$")]
    mobile: String,
    #[schema(format = Email)]
    email: String,
    /// What happened and what is asked (at most 2000 characters).
    #[schema(min_length = 1, max_length = 2000)]
    description: String,
    /// The person holding their document (a JPEG under 190 KB).
    #[schema(format = Binary, value_type = String)]
    photo_handheld: Vec<u8>,
}

/// An opened case.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportCaseOpened {
    pub case_id: String,
    /// 24 working hours (China Standard Time, the working-day calendar) after opening.
    pub reply_due_by: DateTime<Utc>,
}

/// Writes to support (核查账号信息, 申请修改手机（邮箱）信息): multipart form with the handheld
/// photo; an acknowledgement goes to the e-mail given (purpose `support_case_received`).
#[utoipa::path(post, path = "/v1/support-cases", tag = "public",
    request_body(content = SupportCaseForm, content_type = "multipart/form-data"),
    responses((status = 201, body = SupportCaseOpened),
              (status = 422, description = "field errors, photo_not_jpeg, photo_too_large, photo_missing, unknown_field", body = crate::error::Problem)))]
pub async fn open_case(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    form: MultipartForm,
) -> ApiResult<(StatusCode, Json<SupportCaseOpened>)> {
    let form = parse_case_form(form, cst_date(ctx.now))?;
    let opened = support_cases::open(&state, &ctx, form).await?;
    Ok((StatusCode::CREATED, Json(SupportCaseOpened { case_id: opened.case_id, reply_due_by: opened.reply_due_by })))
}

/// The parts of a support-case form; any other part is refused (422 `unknown_field`).
const CASE_FORM_PARTS: [&str; 8] =
    ["kind", "name", "document_type", "document_number", "mobile", "email", "description", "photo_handheld"];

/// Checks a support-case form; every bad field is named at once.
pub fn parse_case_form(mut form: MultipartForm, today: NaiveDate) -> ApiResult<CaseForm> {
    let mut errors = Errors::default();
    let mut unknown: Vec<&String> =
        form.fields.keys().chain(form.files.keys()).filter(|n| !CASE_FORM_PARTS.contains(&n.as_str())).collect();
    unknown.sort();
    for name in unknown {
        errors.add(name, "unknown_field");
    }
    let kind = errors.required("kind", form.fields.get("kind").map(String::as_str)).and_then(|k| {
        let kind = CaseKind::parse(k.trim());
        if kind.is_none() {
            errors.add("kind", "invalid_kind");
        }
        kind
    });
    let name = validate::name(&mut errors, "name", &form.field("name"));
    let document = validate::document(&mut errors, &form.field("document_type"), &form.field("document_number"), today);
    let mobile = validate::mobile(&mut errors, "mobile", &form.field("mobile"));
    let email = validate::email(&mut errors, "email", &form.field("email"));
    let description =
        text(&mut errors, "description", form.fields.get("description").map(String::as_str), MAX_DESCRIPTION_CHARS);
    let photo = match check_photo(form.files.remove("photo_handheld")) {
        Ok(bytes) => Some(bytes),
        Err(code) => {
            errors.add("photo_handheld", code);
            None
        }
    };
    errors.finish()?;
    let (
        Some(kind),
        Some(name),
        Some((document_type, document_number)),
        Some(mobile),
        Some(email),
        Some(description),
        Some(photo_handheld),
    ) = (kind, name, document, mobile, email, description, photo)
    else {
        return Err(ApiError::internal("validated case form incomplete"));
    };
    let applicant = Applicant { name, document_type, document_number, mobile, email };
    Ok(CaseForm { kind, applicant, description, photo_handheld })
}

/// A case's free text: `required` when missing or blank, `too_long` over `max` characters.
fn text(errors: &mut Errors, field: &str, value: Option<&str>, max: usize) -> Option<CaseText> {
    match CaseText::parse(value.unwrap_or_default(), max) {
        Ok(text) => Some(text),
        Err(err) => {
            errors.add(field, err.code());
            None
        }
    }
}

/// Which cases to list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CaseFilter {
    /// `open` or `replied`; every case when left out.
    #[param(inline, value_type = Option<crate::openapi::values::SupportCaseStatusName>)]
    pub status: Option<String>,
}

/// A case as support agents see it: the document and contacts masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportCaseItem {
    pub case_id: String,
    /// `account_check` or `contact_change`.
    #[schema(value_type = crate::openapi::values::SupportCaseKindName)]
    pub kind: String,
    /// `open` or `replied`.
    #[schema(value_type = crate::openapi::values::SupportCaseStatusName)]
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub reply_due_by: DateTime<Utc>,
    /// Still open after `reply_due_by`.
    pub overdue: bool,
    /// The first reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replied_at: Option<DateTime<Utc>>,
    pub replies: i32,
    /// The id of the account registered with the document given, for the support endpoints
    /// under `/v1/support/accounts/{id}`; there may be no such account.
    pub account_id: String,
    pub name: String,
    #[schema(value_type = crate::openapi::values::DocumentTypeName)]
    pub document_type: String,
    pub document_number_masked: String,
    pub mobile_masked: String,
    pub email_masked: String,
    pub description: String,
}

/// The support cases, the earliest due first (at most 1000).
#[utoipa::path(get, path = "/v1/support/cases", tag = "support", params(CaseFilter),
    responses((status = 200, body = [SupportCaseItem]), (status = 403, body = crate::error::Problem),
              (status = 422, description = "invalid_status", body = crate::error::Problem)))]
pub async fn list_cases(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Query(filter): Query<CaseFilter>,
) -> ApiResult<Json<Vec<SupportCaseItem>>> {
    staff.require(&[Role::Support])?;
    let status = match filter.status.as_deref() {
        None => None,
        Some(s) => Some(CaseStatus::parse(s.trim()).ok_or_else(|| ApiError::field("status", "invalid_status"))?),
    };
    let rows = SupportCases::by_due_time(state.reads.db(), status, LIST_LIMIT).await.map_err(ApiError::internal)?;
    let overdue = rows.iter().filter(|r| r.overdue_at(ctx.now)).count();
    if status.is_none() || status == Some(CaseStatus::Open) {
        metrics::gauge!("shenfen_support_cases_overdue").set(overdue as f64);
    }
    Ok(Json(
        rows.into_iter()
            .map(|r| SupportCaseItem {
                overdue: r.overdue_at(ctx.now),
                case_id: r.case_id,
                kind: r.kind,
                status: r.status,
                opened_at: r.opened_at,
                reply_due_by: r.reply_due_by,
                replied_at: r.replied_at,
                replies: r.replies,
                account_id: r.account_id,
                name: r.name,
                document_type: r.document_type,
                document_number_masked: r.document_number_masked,
                mobile_masked: r.mobile_masked,
                email_masked: r.email_masked,
                description: r.description,
            })
            .collect(),
    ))
}

/// A support agent's reply.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SupportCaseReply {
    /// Sent to the case's e-mail (at most 2000 characters).
    #[schema(value_type = String, min_length = 1, max_length = 2000)]
    pub message: Option<String>,
}

fn case_not_found() -> ApiError {
    ApiError::from(SupportCaseError::NotFound)
}

/// Replies to a case: recorded on the case and sent to its e-mail (purpose
/// `support_case_reply`). A case may be replied to more than once; the first reply settles it.
#[utoipa::path(post, path = "/v1/support/cases/{id}/reply", request_body = SupportCaseReply, tag = "support",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::Problem),
              (status = 404, description = "case_not_found", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub async fn reply_to_case(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(case_id): Path<String>,
    AppJson(body): AppJson<SupportCaseReply>,
) -> ApiResult<StatusCode> {
    staff.require(&[Role::Support])?;
    if !is_case_id(&case_id) {
        return Err(case_not_found());
    }
    let mut errors = Errors::default();
    let message = text(&mut errors, "message", body.message.as_deref(), MAX_REPLY_CHARS);
    errors.finish()?;
    let message = message.ok_or_else(|| ApiError::internal("validated message missing"))?;
    support_cases::reply(&state, &ctx, &staff, &case_id, message).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The handheld photo of a case.
#[utoipa::path(get, path = "/v1/support/cases/{id}/photo", tag = "support",
    params(("id" = String, Path)),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>),
              (status = 403, body = crate::error::Problem),
              (status = 404, description = "case_not_found", body = crate::error::Problem)))]
pub async fn case_photo(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    Path(case_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    staff.require(&[Role::Support])?;
    if !is_case_id(&case_id) {
        return Err(case_not_found());
    }
    let case = state.support_cases.load(&case_id).await?;
    let digest = case.photo_handheld.ok_or_else(case_not_found)?;
    let bytes = state.blobs.get(&digest).await.map_err(ApiError::internal)?.ok_or_else(ApiError::photo_deleted)?;
    tracing::info!(staff_id = %staff.staff_id, case_id = %case_id, "support case photo viewed");
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, no-store")], bytes))
}
