//! The holder's real-name verification, manual-review applications and business gate.
//!
//! A real-name attempt is recorded on the verification stream before the authority is
//! called (so the authority is called at most once per counted attempt), then its answer is
//! recorded. The verification stream enforces the quotas; the `verification_quotas` read
//! model shows them in `GET /v1/me`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::AccountError;
use shenfen_domain::calendar::REVIEW_WORKING_DAYS;
use shenfen_domain::ports::IdentityQuery;
use shenfen_domain::shared::document::DocumentType;
use shenfen_domain::time::cst_date;
use shenfen_domain::verification::{Apply, AuthorityAnswer, Photos, ReviewRequest, VerificationCommand};
use shenfen_projections::identity::IdentityProcess;
use shenfen_projections::log::Position;
use shenfen_projections::quotas::Quotas;
use shenfen_projections::review_queue::ReviewQueue;
use utoipa::ToSchema;

use super::accounts::ValidityInput;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{AppJson, Ctx, Holder};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// How long an attempt may stay in flight before it counts as abandoned (a process that died
/// between calling the authority and recording its answer). A request runs to its end even
/// when its client hangs up, so only a crash leaves an attempt in flight; this is well above
/// the authority's timeout.
const ABANDON_AFTER_SECONDS: i64 = 30;
/// The largest photo accepted (小于190KB).
pub const MAX_PHOTO_BYTES: usize = 190 * 1024;
/// The largest part of a multipart form.
pub const MAX_PART_BYTES: usize = 1024 * 1024;

fn profile_incomplete() -> ApiError {
    ApiError::from(AccountError::ProfileIncomplete)
}

/// Waits until a verification event is reflected where the holder and reviewers read: the
/// quotas and the review queue, and the account (name, status) once the identity process
/// manager has carried it over.
pub async fn settle(state: &AppState, position: Option<Position>) {
    state.caught_up(position, &[Quotas::NAME, ReviewQueue::NAME, IdentityProcess::NAME]).await;
}

/// An optional correction of name and validity.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct VerificationRequest {
    /// The name to verify, when it differs from the registered one.
    pub name: Option<String>,
    pub validity: Option<ValidityInput>,
}

/// The outcome of an attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationResult {
    /// `passed` or `failed`.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub attempts_left_today: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guidance: Option<Vec<String>>,
}

fn guidance() -> Vec<String> {
    vec![
        "Check the document type, number, name and validity you entered; do not resubmit unchanged.".into(),
        "If they are right, your identity data may be stale: open a CTID network credential (网证) and try again."
            .into(),
        "Or apply for manual review with photos of your document.".into(),
    ]
}

/// Runs real-name verification against the identity authority.
#[utoipa::path(post, path = "/v1/me/real-name-verifications", request_body = VerificationRequest, tag = "holder",
    security(("bearer" = [])),
    responses((status = 200, body = VerificationResult),
              (status = 409, description = "profile_incomplete, manual_review_pending, attempt_in_progress, manual_review_required", body = crate::error::Problem),
              (status = 429, description = "daily_attempts_exhausted + next_attempt_at", body = crate::error::Problem),
              (status = 503, description = "identity_authority_unavailable (the attempt does not count)", body = crate::error::Problem)))]
pub async fn verify(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    request: axum::extract::Request,
) -> ApiResult<Json<VerificationResult>> {
    // The body is optional: no body means "verify the registered data".
    let empty = request.headers().get(axum::http::header::CONTENT_TYPE).is_none()
        && request.headers().get(axum::http::header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0");
    let body = if empty {
        VerificationRequest::default()
    } else {
        let AppJson(body) =
            <AppJson<VerificationRequest> as axum::extract::FromRequest<()>>::from_request(request, &()).await?;
        body
    };
    let account = holder.account().clone();
    if !account.profile_complete() {
        return Err(profile_incomplete());
    }
    let (Some(doc_type), Some(number), Some(current_name)) =
        (account.document_type, account.document_number.clone(), account.name.clone())
    else {
        return Err(ApiError::internal("registered account without document"));
    };
    if !doc_type.auto_verifiable() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "manual_review_required",
            "This document type cannot be checked automatically: apply for manual review.",
            "该证件类型无法自动核验，请申请人工审核。",
        ));
    }
    let today = cst_date(ctx.now);
    let mut errors = Errors::default();
    let name = match &body.name {
        Some(_) => validate::name(&mut errors, "name", &body.name),
        None => Some(current_name),
    };
    let validity = body.validity.as_ref().and_then(|v| {
        validate::validity(
            &mut errors,
            v.period.as_deref(),
            v.start.as_deref(),
            Some((doc_type, number.birth_date())),
            today,
        )
    });
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::internal("validated name missing"))?;
    let attempt_id = uuid::Uuid::new_v4().to_string();
    let start = VerificationCommand::StartAttempt(shenfen_domain::verification::StartAttempt {
        account_id: holder.account_id.clone(),
        attempt_id: attempt_id.clone(),
        name: name.clone(),
        validity,
        abandon_before: ctx.now - chrono::Duration::seconds(ABANDON_AFTER_SECONDS),
        now: ctx.now,
    });
    state.verifications.execute(&holder.account_id, start, &ctx.meta(holder.actor())).await?;
    let query = IdentityQuery {
        document_type: doc_type,
        document_number: number,
        name,
        validity: validity.or(account.validity),
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), state.authority.check(&query))
        .await
        .unwrap_or(AuthorityAnswer::Unavailable);
    metrics::counter!("shenfen_authority_answers_total", "result" => match &answer {
        AuthorityAnswer::Passed => "passed",
        AuthorityAnswer::Failed { .. } => "failed",
        AuthorityAnswer::Unavailable => "unavailable",
    })
    .increment(1);
    let record = VerificationCommand::RecordAnswer(shenfen_domain::verification::RecordAnswer {
        attempt_id,
        answer: answer.clone(),
        now: state.clock.now(),
    });
    let committed = state.verifications.execute(&holder.account_id, record, &ctx.meta(holder.actor())).await?;
    let left = committed.state.quotas(ctx.now).attempts_left_today;
    settle(&state, committed.position).await;
    tracing::info!(account_id = %holder.account_id, result = ?committed.events.first().map(|e| e.name()), "real-name attempt");
    match answer {
        AuthorityAnswer::Passed => Ok(Json(VerificationResult {
            result: "passed".into(),
            reason: None,
            attempts_left_today: left,
            guidance: None,
        })),
        AuthorityAnswer::Failed { reason } => Ok(Json(VerificationResult {
            result: "failed".into(),
            reason: Some(reason),
            attempts_left_today: left,
            guidance: Some(guidance()),
        })),
        AuthorityAnswer::Unavailable => Err(ApiError::unavailable(
            "identity_authority_unavailable",
            "The identity authority is unavailable; this attempt was not counted. Try again later.",
            "身份核验服务暂不可用，本次不计入次数，请稍后再试。",
        )
        .with("attempts_left_today", left)),
    }
}

/// An application as shown to its holder.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub review_id: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    pub due_by: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
}

/// A submitted application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewSubmitted {
    pub review_id: String,
    pub status: String,
    pub due_by: NaiveDate,
    pub applications_left_in_period: u32,
}

/// The multipart form of an application (documentation of the wire shape).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReviewForm {
    document_type: String,
    name: String,
    validity_period: String,
    validity_start: String,
    #[schema(format = Binary, value_type = String)]
    photo_front: Vec<u8>,
    #[schema(format = Binary, value_type = String)]
    photo_back: Vec<u8>,
    #[schema(format = Binary, value_type = String)]
    photo_handheld: Vec<u8>,
}

fn multipart_problem(err: axum::extract::multipart::MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large("A part of the form", "1 MiB")
    } else {
        ApiError::malformed_multipart()
    }
}

/// Applies for manual review (multipart form with three JPEG photos under 190 KB).
#[utoipa::path(post, path = "/v1/me/manual-reviews", tag = "holder", security(("bearer" = [])),
    request_body(content = ReviewForm, content_type = "multipart/form-data"),
    responses((status = 201, body = ReviewSubmitted),
              (status = 409, description = "real_name_verification_required_first, manual_review_pending", body = crate::error::Problem),
              (status = 422, description = "photo_not_jpeg, photo_too_large, photo_missing and field errors", body = crate::error::Problem),
              (status = 429, description = "period_quota_exhausted + next_period_start", body = crate::error::Problem)))]
pub async fn apply_for_review(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    request: axum::extract::Request,
) -> ApiResult<(StatusCode, Json<ReviewSubmitted>)> {
    let account = holder.account().clone();
    let birth = account.document_number.as_ref().and_then(|n| n.birth_date());
    let form = read_review_form(request, account.document_type, birth, cst_date(ctx.now)).await?;
    let photos = store_photos(&state, form.photos).await?;
    let review_id = super::id_for("rev_", &holder.account_id);
    let due_by = state.calendar.add_working_days(cst_date(ctx.now), REVIEW_WORKING_DAYS);
    let request = ReviewRequest { document_type: form.document_type, name: form.name, validity: form.validity, photos };
    let command = VerificationCommand::Apply(Apply {
        account_id: holder.account_id.clone(),
        review_id: review_id.clone(),
        request,
        due_by,
        now: ctx.now,
    });
    let committed = state.verifications.execute(&holder.account_id, command, &ctx.meta(holder.actor())).await?;
    settle(&state, committed.position).await;
    let left = committed.state.quotas(ctx.now).applications_left_in_period;
    tracing::info!(account_id = %holder.account_id, review_id = %review_id, "manual review applied for");
    Ok((
        StatusCode::CREATED,
        Json(ReviewSubmitted { review_id, status: "pending".into(), due_by, applications_left_in_period: left }),
    ))
}

/// A manual-review form as read and checked: the document type (the account's), the name and
/// validity to prove, and the three photos (front, back, handheld), each a real JPEG under
/// 190 KB.
pub struct ReviewFormInput {
    pub document_type: DocumentType,
    pub name: shenfen_domain::shared::name::PersonName,
    pub validity: shenfen_domain::shared::validity::Validity,
    pub photos: [Vec<u8>; 3],
}

/// Reads and checks a manual-review form (multipart), for the account's document type
/// `expected` (whose number embeds `birth`, if any). Every bad field is named at once.
pub async fn read_review_form(
    request: axum::extract::Request,
    expected: Option<DocumentType>,
    birth: Option<NaiveDate>,
    today: NaiveDate,
) -> ApiResult<ReviewFormInput> {
    let is_multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::unsupported_media_type("multipart/form-data"));
    }
    let mut multipart = <Multipart as axum::extract::FromRequest<()>>::from_request(request, &())
        .await
        .map_err(|_| ApiError::malformed_multipart())?;
    let mut fields: std::collections::HashMap<String, String> = Default::default();
    let mut photos: std::collections::HashMap<String, Vec<u8>> = Default::default();
    while let Some(field) = multipart.next_field().await.map_err(multipart_problem)? {
        let name = field.name().unwrap_or_default().to_string();
        if name.starts_with("photo_") {
            let bytes = field.bytes().await.map_err(multipart_problem)?;
            if bytes.len() > MAX_PART_BYTES {
                return Err(ApiError::payload_too_large("A part of the form", "1 MiB"));
            }
            photos.insert(name, bytes.to_vec());
        } else {
            let text = field.text().await.map_err(multipart_problem)?;
            fields.insert(name, text);
        }
    }
    let mut errors = Errors::default();
    let doc_type =
        errors.required("document_type", &fields.get("document_type").cloned()).and_then(
            |t| match DocumentType::parse(t.trim()) {
                Some(t) if Some(t) == expected => Some(t),
                Some(_) => {
                    errors.add("document_type", "document_type_mismatch");
                    None
                }
                None => {
                    errors.add("document_type", "invalid_document_type");
                    None
                }
            },
        );
    let name = validate::name(&mut errors, "name", &fields.get("name").cloned());
    let validity = validate::validity(
        &mut errors,
        fields.get("validity_period").map(String::as_str),
        fields.get("validity_start").map(String::as_str),
        doc_type.map(|t| (t, birth)),
        today,
    );
    for error in errors.0.iter_mut() {
        error.field =
            error.field.replace("validity.period", "validity_period").replace("validity.start", "validity_start");
    }
    let mut good = Vec::new();
    for part in ["photo_front", "photo_back", "photo_handheld"] {
        match photos.remove(part) {
            None => errors.add(part, "photo_missing"),
            Some(bytes) if bytes.is_empty() => errors.add(part, "photo_missing"),
            Some(bytes) if bytes.len() >= MAX_PHOTO_BYTES => errors.add(part, "photo_too_large"),
            Some(bytes) if !crate::blobs::is_jpeg(&bytes) => errors.add(part, "photo_not_jpeg"),
            Some(bytes) => good.push(bytes),
        }
    }
    errors.finish()?;
    let (Some(document_type), Some(name), Some(validity), Ok(photos)) =
        (doc_type, name, validity, <[Vec<u8>; 3]>::try_from(good))
    else {
        return Err(ApiError::invalid(vec![FieldError { field: "form".into(), code: "invalid".into(), hint: None }]));
    };
    Ok(ReviewFormInput { document_type, name, validity, photos })
}

/// Stores the three photos of a form; returns their digests.
pub async fn store_photos(state: &AppState, photos: [Vec<u8>; 3]) -> ApiResult<Photos> {
    let [front, back, handheld] = photos;
    Ok(Photos {
        front: state.blobs.put(front).await.map_err(ApiError::internal)?,
        back: state.blobs.put(back).await.map_err(ApiError::internal)?,
        handheld: state.blobs.put(handheld).await.map_err(ApiError::internal)?,
    })
}

/// The holder's applications, newest first.
#[utoipa::path(get, path = "/v1/me/manual-reviews", tag = "holder", security(("bearer" = [])),
    responses((status = 200, body = [ReviewView])))]
pub async fn my_reviews(State(state): State<Arc<AppState>>, holder: Holder) -> ApiResult<Json<Vec<ReviewView>>> {
    let verification = state.verifications.load(&holder.account_id).await?;
    let mut list: Vec<ReviewView> = verification
        .applications
        .iter()
        .map(|a| ReviewView {
            review_id: a.review_id.clone(),
            status: a.status.as_str().into(),
            submitted_at: a.submitted_at,
            due_by: a.due_by,
            decision_reason: a.decision_reason.clone(),
        })
        .collect();
    list.reverse();
    Ok(Json(list))
}

/// The gate downstream services call.
#[derive(Debug, Serialize, ToSchema)]
pub struct Eligibility {
    pub eligible: bool,
}

/// Whether the holder may do business: profile complete and identity proven.
#[utoipa::path(get, path = "/v1/me/business-eligibility", tag = "holder", security(("bearer" = [])),
    responses((status = 200, body = Eligibility),
              (status = 403, description = "real_name_verification_required", body = crate::error::Problem),
              (status = 409, description = "profile_incomplete", body = crate::error::Problem)))]
pub async fn eligibility(State(state): State<Arc<AppState>>, holder: Holder) -> ApiResult<Json<Eligibility>> {
    let account = holder.account().clone();
    if !account.profile_complete() {
        return Err(profile_incomplete());
    }
    let verification = state.verifications.load(&holder.account_id).await?;
    // Both streams: until a re-registration has reached the verification stream, the proof
    // there belongs to the earlier holder.
    if !verification.proves(&account) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "real_name_verification_required",
            "Pass real-name verification (or manual review) before doing business.",
            "您还未进行实名核验，需完成实名核验后再办理业务。",
        ));
    }
    Ok(Json(Eligibility { eligible: true }))
}
