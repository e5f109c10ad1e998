//! The holder's real-name verification, manual-review applications and business gate. The
//! work is in [`crate::app::identity`] and [`crate::app::review`]; the verification stream
//! enforces the quotas, and the `verification_quotas` read model shows them in `GET /v1/me`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::{Account, AccountError, RealNameStatus};
use shenfen_domain::shared::document::DocumentType;
use shenfen_domain::shared::name::PersonName;
use shenfen_domain::time::cst_date;
use shenfen_domain::verification::AuthorityAnswer;
use utoipa::ToSchema;

use super::accounts::ValidityInput;
use crate::app::identity::{self, AttemptInput};
use crate::app::review::{self, ReviewForm as ValidForm};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Ctx, Holder, MultipartForm, OptionalJson};
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// The largest photo accepted (小于190KB).
pub const MAX_PHOTO_BYTES: usize = 190 * 1024;

fn profile_incomplete() -> ApiError {
    ApiError::from(AccountError::ProfileIncomplete)
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

    responses((status = 200, body = VerificationResult),
              (status = 409, description = "profile_incomplete, manual_review_pending, attempt_in_progress, manual_review_required", body = crate::error::Problem),
              (status = 429, description = "daily_attempts_exhausted + next_attempt_at", body = crate::error::Problem),
              (status = 503, description = "identity_authority_unavailable (the attempt does not count)", body = crate::error::Problem)))]
pub async fn verify(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    OptionalJson(body): OptionalJson<VerificationRequest>,
) -> ApiResult<Json<VerificationResult>> {
    let input = parse_attempt(holder.account(), &body, cst_date(ctx.now))?;
    let (answer, left) = identity::attempt(&state, &ctx, &holder, input).await?;
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

/// What to verify for `account`: its document, and the registered name and validity unless
/// the request corrects them. Only a complete profile of an automatically verifiable document
/// type is verified.
fn parse_attempt(account: &Account, body: &VerificationRequest, today: NaiveDate) -> ApiResult<AttemptInput> {
    if !account.profile_complete() {
        return Err(profile_incomplete());
    }
    let (Some(document_type), Some(document_number), Some(registered_name)) =
        (account.document_type, account.document_number.clone(), account.name.clone())
    else {
        return Err(ApiError::internal("registered account without document"));
    };
    if !document_type.auto_verifiable() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "manual_review_required",
            "This document type cannot be checked automatically: apply for manual review.",
            "该证件类型无法自动核验，请申请人工审核。",
        ));
    }
    // A proven name changes only through support (a name the authority also knows must not
    // replace it by verifying again).
    let proven = matches!(account.real_name_status, RealNameStatus::Verified | RealNameStatus::ManualReviewApproved);
    let different = body.name.as_deref().is_some_and(|n| PersonName::parse(n).is_ok_and(|n| n != registered_name));
    if proven && different {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "name_change_needs_support",
            "The verified name can only be changed by support.",
            "已实名的姓名只能由客服修改，请联系客服。",
        ));
    }
    let mut errors = Errors::default();
    let name = match &body.name {
        Some(_) => validate::name(&mut errors, "name", &body.name),
        None => Some(registered_name),
    };
    let birth = document_number.birth_date();
    let corrected_validity = body.validity.as_ref().and_then(|v| {
        validate::validity(&mut errors, v.period.as_deref(), v.start.as_deref(), Some((document_type, birth)), today)
    });
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::internal("validated name missing"))?;
    let validity = corrected_validity.or(account.validity);
    Ok(AttemptInput { document_type, document_number, name, corrected_validity, validity })
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ReviewForm {
    #[schema(value_type = crate::openapi::values::DocumentTypeName)]
    document_type: String,
    #[schema(min_length = 1)]
    name: String,
    #[schema(value_type = crate::openapi::values::ValidityPeriodName)]
    validity_period: String,
    #[schema(format = Date)]
    validity_start: String,
    #[schema(format = Binary, value_type = String)]
    photo_front: Vec<u8>,
    #[schema(format = Binary, value_type = String)]
    photo_back: Vec<u8>,
    #[schema(format = Binary, value_type = String)]
    photo_handheld: Vec<u8>,
}

/// Applies for manual review (multipart form with three JPEG photos under 190 KB).
#[utoipa::path(post, path = "/v1/me/manual-reviews", tag = "holder",
    request_body(content = ReviewForm, content_type = "multipart/form-data"),
    responses((status = 201, body = ReviewSubmitted),
              (status = 409, description = "real_name_verification_required_first, manual_review_pending", body = crate::error::Problem),
              (status = 422, description = "photo_not_jpeg, photo_too_large, photo_missing and field errors", body = crate::error::Problem),
              (status = 429, description = "period_quota_exhausted + next_period_start", body = crate::error::Problem)))]
pub async fn apply_for_review(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    form: MultipartForm,
) -> ApiResult<(StatusCode, Json<ReviewSubmitted>)> {
    let account = holder.account();
    let birth = account.document_number.as_ref().and_then(|n| n.birth_date());
    let form = parse_review_form(form, account.document_type, birth, cst_date(ctx.now))?;
    let (submitted, left) = review::apply(&state, &ctx, &holder, form).await?;
    let review::Submitted { review_id, due_by } = submitted;
    Ok((
        StatusCode::CREATED,
        Json(ReviewSubmitted { review_id, status: "pending".into(), due_by, applications_left_in_period: left }),
    ))
}

/// The parts of a review form; any other part is refused (422 `unknown_field`).
const REVIEW_FORM_PARTS: [&str; 7] =
    ["document_type", "name", "validity_period", "validity_start", "photo_front", "photo_back", "photo_handheld"];

/// Checks a manual-review form for the account's document type `expected` (whose number
/// embeds `birth`, if any). Every bad field is named at once.
pub fn parse_review_form(
    mut form: MultipartForm,
    expected: Option<DocumentType>,
    birth: Option<NaiveDate>,
    today: NaiveDate,
) -> ApiResult<ValidForm> {
    let mut errors = Errors::default();
    let mut unknown: Vec<&String> =
        form.fields.keys().chain(form.files.keys()).filter(|n| !REVIEW_FORM_PARTS.contains(&n.as_str())).collect();
    unknown.sort();
    for name in unknown {
        errors.add(name, "unknown_field");
    }
    let doc_type =
        errors.required("document_type", form.field("document_type").as_deref()).and_then(
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
    let name = validate::name(&mut errors, "name", &form.field("name"));
    let validity = validate::validity(
        &mut errors,
        form.fields.get("validity_period").map(String::as_str),
        form.fields.get("validity_start").map(String::as_str),
        doc_type.map(|t| (t, birth)),
        today,
    );
    for error in &mut errors.0 {
        error.field =
            error.field.replace("validity.period", "validity_period").replace("validity.start", "validity_start");
    }
    let mut good = Vec::new();
    for part in ["photo_front", "photo_back", "photo_handheld"] {
        match check_photo(form.files.remove(part)) {
            Ok(bytes) => good.push(bytes),
            Err(code) => errors.add(part, code),
        }
    }
    errors.finish()?;
    let (Some(document_type), Some(name), Some(validity), Ok(photos)) =
        (doc_type, name, validity, <[Vec<u8>; 3]>::try_from(good))
    else {
        return Err(ApiError::invalid(vec![FieldError { field: "form".into(), code: "invalid".into(), hint: None }]));
    };
    Ok(ValidForm { document_type, name, validity, photos })
}

/// A photo part as every form checks it: sent and not empty (`photo_missing`), under
/// [`MAX_PHOTO_BYTES`] (`photo_too_large`), and a JPEG by its content, whatever its name or
/// declared type (`photo_not_jpeg`).
pub fn check_photo(part: Option<Vec<u8>>) -> Result<Vec<u8>, &'static str> {
    match part {
        None => Err("photo_missing"),
        Some(bytes) if bytes.is_empty() => Err("photo_missing"),
        Some(bytes) if bytes.len() >= MAX_PHOTO_BYTES => Err("photo_too_large"),
        Some(bytes) if !crate::blobs::is_jpeg(&bytes) => Err("photo_not_jpeg"),
        Some(bytes) => Ok(bytes),
    }
}

/// The holder's applications, newest first.
#[utoipa::path(get, path = "/v1/me/manual-reviews", tag = "holder",
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

/// Whether the holder may do business: profile complete, identity proven, and a document type
/// that business accepts (not `other`).
#[utoipa::path(get, path = "/v1/me/business-eligibility", tag = "holder",
    responses((status = 200, body = Eligibility),
              (status = 403, description = "real_name_verification_required, document_type_not_eligible", body = crate::error::Problem),
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
    // Source document 004: an `other` document serves record queries only, never business.
    if account.document_type == Some(DocumentType::Other) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "document_type_not_eligible",
            "Accounts with this document type can query records but not do business.",
            "使用其他证件注册的账号仅可查询，不能办理业务。",
        ));
    }
    Ok(Json(Eligibility { eligible: true }))
}
