//! The reviewers' side of manual review: the queue, claiming, photos, decisions — of holders'
//! applications (`rev_…` ids, on the verification stream) and of re-registration claimants'
//! proofs (`rvc_…` ids, on the claim stream; `kind: "reregistration"` in the queue).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::claim::{ClaimCommand, ClaimError, ClaimStatus};
use shenfen_domain::staff::Role;
use shenfen_domain::time::cst_date;
use shenfen_domain::verification::{
    ClaimApplication, DecideApplication, Decision as Verdict, VerificationCommand, VerificationError,
};
use shenfen_projections::claims::Claims;
use shenfen_projections::handover::HandOver;
use shenfen_projections::identity::IdentityProcess;
use shenfen_projections::review_queue::{claim_of_review, ReviewQueue};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx, StaffMember};
use crate::startup::AppState;

/// An application in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    pub review_id: String,
    pub account_id: String,
    pub document_type: String,
    pub submitted_at: DateTime<Utc>,
    pub due_by: NaiveDate,
    /// The due date (China time) has passed without a decision.
    pub overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// `verification` (the holder's application) or `reregistration` (a claimant's proof).
    pub kind: String,
}

/// Pending applications, oldest due first.
#[utoipa::path(get, path = "/v1/review-queue", tag = "reviewer",
    responses((status = 200, body = [QueueItem]), (status = 403, body = crate::error::Problem)))]
pub async fn queue(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
) -> ApiResult<Json<Vec<QueueItem>>> {
    staff.require(&[Role::Reviewer])?;
    let today = cst_date(ctx.now);
    let rows = ReviewQueue::pending(state.reads.db(), 1000).await.map_err(ApiError::internal)?;
    let overdue = rows.iter().filter(|r| r.due_by < today).count();
    metrics::gauge!("shenfen_reviews_overdue").set(overdue as f64);
    Ok(Json(
        rows.into_iter()
            .map(|r| QueueItem {
                overdue: r.due_by < today,
                review_id: r.review_id,
                account_id: r.account_id,
                document_type: r.document_type,
                submitted_at: r.submitted_at,
                due_by: r.due_by,
                claimed_by: r.claimed_by,
                kind: r.kind,
            })
            .collect(),
    ))
}

/// Where a review lives.
enum Target {
    /// A holder's application, on the verification stream of this account.
    Application(String),
    /// A claimant's proof, on this claim's stream.
    Claim(String),
}

fn target(review_id: &str) -> ApiResult<Target> {
    if let Some(claim_id) = claim_of_review(review_id).filter(|c| crate::ids::account_of("clm_", c).is_some()) {
        return Ok(Target::Claim(claim_id));
    }
    crate::ids::account_of("rev_", review_id)
        .map(Target::Application)
        .ok_or_else(|| ApiError::from(VerificationError::ReviewNotFound))
}

/// A claimed or decided application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewState {
    pub review_id: String,
    pub status: String,
    pub claimed_by: Option<String>,
}

/// What a reviewer does, for either kind of review.
enum Act {
    Claim { reviewer_account: Option<String> },
    Decide(Verdict),
}

async fn act(
    state: &AppState,
    ctx: &Ctx,
    staff: &StaffMember,
    review_id: &str,
    act: Act,
) -> ApiResult<Json<ReviewState>> {
    let (review_id, reviewer, now) = (review_id.to_string(), staff.staff_id.clone(), ctx.now);
    match target(&review_id)? {
        Target::Application(account_id) => {
            let command = match act {
                Act::Claim { reviewer_account } => VerificationCommand::Claim(ClaimApplication {
                    review_id: review_id.clone(),
                    reviewer,
                    reviewer_account,
                    now,
                }),
                Act::Decide(decision) => VerificationCommand::Decide(DecideApplication {
                    review_id: review_id.clone(),
                    reviewer,
                    decision,
                    now,
                }),
            };
            run(state, ctx, staff, &account_id, &review_id, command).await
        }
        Target::Claim(claim_id) => {
            let command = match act {
                Act::Claim { reviewer_account } => ClaimCommand::ClaimReview(ClaimApplication {
                    review_id: review_id.clone(),
                    reviewer,
                    reviewer_account,
                    now,
                }),
                Act::Decide(decision) => {
                    ClaimCommand::Decide(DecideApplication { review_id: review_id.clone(), reviewer, decision, now })
                }
            };
            run_claim(state, ctx, staff, &claim_id, &review_id, command).await
        }
    }
}

/// A command on a claimant's proof. An approval is answered once the account has been handed
/// over and its verification stream reset (the claimant can sign in with the new password).
async fn run_claim(
    state: &AppState,
    ctx: &Ctx,
    staff: &StaffMember,
    claim_id: &str,
    review_id: &str,
    command: ClaimCommand,
) -> ApiResult<Json<ReviewState>> {
    let committed = state.claims.execute(claim_id, command, &ctx.meta(staff.actor())).await?;
    state.caught_up_after(&committed, &[ReviewQueue::NAME, Claims::NAME, HandOver::NAME]).await;
    let claim = committed.state;
    let review = claim.review.as_ref().filter(|r| r.review_id == review_id);
    let review = review.ok_or_else(|| ApiError::from(ClaimError::ReviewNotFound))?;
    let status = match claim.status {
        Some(ClaimStatus::Approved) => "approved",
        Some(ClaimStatus::Rejected) => "rejected",
        _ => "pending",
    };
    if let (Some(ClaimStatus::Approved), Some(account_id)) = (claim.status, &claim.account_id) {
        // The hand-over wrote to the account: wait for the identity process manager too.
        let at = shenfen_projections::log::stream_head_position(&state.db, "account", account_id)
            .await
            .map_err(ApiError::internal)?;
        state.caught_up(at, &[IdentityProcess::NAME]).await;
    }
    Ok(Json(ReviewState {
        review_id: review_id.to_string(),
        status: status.into(),
        claimed_by: review.claimed_by.clone(),
    }))
}

async fn run(
    state: &AppState,
    ctx: &Ctx,
    staff: &StaffMember,
    account_id: &str,
    review_id: &str,
    command: VerificationCommand,
) -> ApiResult<Json<ReviewState>> {
    let committed = state.verifications.execute(account_id, command, &ctx.meta(staff.actor())).await?;
    crate::app::settle_verification(state, &committed).await;
    let application = committed
        .state
        .applications
        .iter()
        .find(|a| a.review_id == review_id)
        .ok_or_else(|| ApiError::from(VerificationError::ReviewNotFound))?;
    Ok(Json(ReviewState {
        review_id: review_id.to_string(),
        status: application.status.as_str().into(),
        claimed_by: application.claimed_by.clone(),
    }))
}

/// Claims an application; of many reviewers claiming at once exactly one wins.
#[utoipa::path(post, path = "/v1/manual-reviews/{id}/claim", tag = "reviewer",
    params(("id" = String, Path)),
    responses((status = 200, body = ReviewState), (status = 409, description = "already_claimed", body = crate::error::Problem)))]
pub async fn claim(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(review_id): Path<String>,
) -> ApiResult<Json<ReviewState>> {
    staff.require(&[Role::Reviewer])?;
    let reviewer_account = staff.loaded.state.account_id.clone();
    act(&state, &ctx, &staff, &review_id, Act::Claim { reviewer_account }).await
}

/// A decision.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Decision {
    /// `approve` or `reject`.
    #[schema(value_type = crate::openapi::values::DecisionName)]
    pub decision: Option<String>,
    /// Required for a rejection; shown to the applicant.
    pub reason: Option<String>,
}

/// Approves or rejects a claimed application.
#[utoipa::path(post, path = "/v1/manual-reviews/{id}/decision", request_body = Decision, tag = "reviewer",
    params(("id" = String, Path)),
    responses((status = 200, body = ReviewState),
              (status = 409, description = "not_claimed_by_you", body = crate::error::Problem),
              (status = 422, description = "reason_required", body = crate::error::Problem)))]
pub async fn decide(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(review_id): Path<String>,
    AppJson(body): AppJson<Decision>,
) -> ApiResult<Json<ReviewState>> {
    staff.require(&[Role::Reviewer])?;
    // An approval's reason is not recorded; a rejection without one is refused by the stream.
    let reason = body.reason.clone().unwrap_or_default();
    let decision = match body.decision.as_deref().map(str::trim) {
        Some("approve") => Verdict::Approve,
        Some("reject") => Verdict::Reject { reason },
        Some(_) => return Err(ApiError::field("decision", "invalid_decision")),
        None => return Err(ApiError::field("decision", "required")),
    };
    if body.reason.as_deref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::field("reason", "too_long"));
    }
    act(&state, &ctx, &staff, &review_id, Act::Decide(decision)).await
}

/// One photo of an application.
#[utoipa::path(get, path = "/v1/manual-reviews/{id}/photos/{which}", tag = "reviewer",
    params(("id" = String, Path), ("which" = String, Path, description = "front, back or handheld")),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>), (status = 404, body = crate::error::Problem)))]
pub async fn photo(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    Path((review_id, which)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    staff.require(&[Role::Reviewer])?;
    let photos = match target(&review_id)? {
        Target::Application(account_id) => {
            let verification = state.verifications.load(&account_id).await?;
            verification
                .applications
                .into_iter()
                .find(|a| a.review_id == review_id)
                .ok_or_else(|| ApiError::from(VerificationError::ReviewNotFound))?
                .photos
        }
        Target::Claim(claim_id) => {
            let claim = state.claims.load(&claim_id).await?;
            claim
                .review
                .filter(|r| r.review_id == review_id)
                .ok_or_else(|| ApiError::from(ClaimError::ReviewNotFound))?
                .photos
        }
    };
    let digest = match which.as_str() {
        "front" => &photos.front,
        "back" => &photos.back,
        "handheld" => &photos.handheld,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such photo.", "照片不存在。")),
    };
    let bytes = state.blobs.get(digest).await.map_err(ApiError::internal)?.ok_or_else(ApiError::photo_deleted)?;
    tracing::info!(staff_id = %staff.staff_id, review_id = %review_id, which = %which, "photo viewed");
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, no-store")], bytes))
}
