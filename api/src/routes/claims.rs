//! Re-registration claims (我要重新注册 of an account in use), from both sides: the claimant,
//! with the claim token (`/v1/claims/current…`, the only place it works), and the holder
//! (`/v1/me/reregistration-claims…`), who is told when a claim opens and may refuse it.
//!
//! A claim changes nothing on the account until the claimant's manual review is approved; the
//! hand-over process manager then carries it to the account.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use shenfen_domain::claim::{Claim, ClaimCommand, ClaimError};
use shenfen_domain::time::cst_date;
use shenfen_projections::claims::Claims;
use shenfen_projections::review_queue::ReviewQueue;
use shenfen_projections::store::Loaded;
use utoipa::ToSchema;

use super::verification::parse_review_form;
use crate::app::review;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Ctx, Holder, MultipartForm};
use crate::startup::AppState;

/// The claimant, from `Authorization: Bearer <claim token>`: a claim whose token is still
/// alive (not refused by the holder, not expired).
pub struct Claimant {
    pub claim_id: String,
    pub loaded: Loaded<Claim>,
}

impl FromRequestParts<Arc<AppState>> for Claimant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(ApiError::unauthenticated)?;
        let claim_id = crate::crypto::claim_of_token(token).ok_or_else(ApiError::unauthenticated)?;
        let loaded = state.claims.load_current(&claim_id).await.map_err(|e| ApiError::internal(e.to_string()))?.loaded;
        let hash = shenfen_domain::ids::token_hash(token);
        if !loaded.state.token_alive(&hash, state.clock.now()) {
            return Err(ApiError::unauthenticated());
        }
        Ok(Claimant { claim_id, loaded })
    }
}

/// A claim's review, as the claimant sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimReviewView {
    pub review_id: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    pub due_by: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
}

/// The claimant's claim.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    pub claim_id: String,
    /// `proof_required`, `under_review`, `approved` or `rejected`.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ClaimReviewView>,
}

fn view(claim_id: &str, claim: &Claim, now: DateTime<Utc>) -> ClaimView {
    let status = claim.status_at(now);
    let review = claim.review.as_ref().map(|r| ClaimReviewView {
        review_id: r.review_id.clone(),
        status: match status.map(|s| s.as_str()) {
            Some("approved") => "approved",
            Some("rejected") => "rejected",
            _ => "pending",
        }
        .into(),
        submitted_at: r.submitted_at,
        due_by: r.due_by,
        decision_reason: r.decision_reason.clone(),
    });
    ClaimView {
        claim_id: claim_id.to_string(),
        status: status.map(|s| s.as_str()).unwrap_or_default().into(),
        expires_at: claim.expires_at.unwrap_or(now),
        review,
    }
}

/// The claimant's claim and its review.
#[utoipa::path(get, path = "/v1/claims/current", tag = "claimant",
    responses((status = 200, body = ClaimView), (status = 401, description = "unauthenticated (no claim token, or a dead one)", body = crate::error::Problem)))]
pub async fn current(State(state): State<Arc<AppState>>, claimant: Claimant) -> ApiResult<Json<ClaimView>> {
    Ok(Json(view(&claimant.claim_id, &claimant.loaded.state, state.clock.now())))
}

/// A submitted proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProofSubmitted {
    pub review_id: String,
    pub status: String,
    pub due_by: NaiveDate,
}

/// The claimant's proof: a manual-review form with three JPEG photos (front, back and the
/// claimant holding the document), as `POST /v1/me/manual-reviews`.
#[utoipa::path(post, path = "/v1/claims/current/manual-review", tag = "claimant",
    request_body(content = super::verification::ReviewForm, content_type = "multipart/form-data"),
    responses((status = 201, body = ProofSubmitted),
              (status = 401, body = crate::error::Problem),
              (status = 409, description = "manual_review_pending, claim_not_open", body = crate::error::Problem),
              (status = 422, description = "photo_not_jpeg, photo_too_large, photo_missing and field errors", body = crate::error::Problem)))]
pub async fn submit_proof(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    claimant: Claimant,
    form: MultipartForm,
) -> ApiResult<(StatusCode, Json<ProofSubmitted>)> {
    let claim = &claimant.loaded.state;
    let birth = match (&claim.account_id, claim.document_type) {
        (Some(account_id), Some(_)) => {
            state.accounts.load(account_id).await?.document_number.and_then(|n| n.birth_date())
        }
        _ => None,
    };
    let form = parse_review_form(form, claim.document_type, birth, cst_date(ctx.now))?;
    let submitted = review::submit_proof(&state, &ctx, &claimant.claim_id, claimant.loaded.clone(), form).await?;
    let review::Submitted { review_id, due_by } = submitted;
    Ok((StatusCode::CREATED, Json(ProofSubmitted { review_id, status: "pending".into(), due_by })))
}

/// A claim on the holder's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct HolderClaimView {
    pub claim_id: String,
    /// `proof_required`, `under_review`, `approved`, `rejected`, `refused` or `expired`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The re-registration claims on the holder's account, newest first.
#[utoipa::path(get, path = "/v1/me/reregistration-claims", tag = "holder",
    responses((status = 200, body = [HolderClaimView]), (status = 401, body = crate::error::Problem)))]
pub async fn of_holder(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
) -> ApiResult<Json<Vec<HolderClaimView>>> {
    let rows = Claims::of_account(&state.db, &holder.account_id).await.map_err(ApiError::internal)?;
    Ok(Json(
        rows.into_iter()
            .map(|r| HolderClaimView {
                status: r.status_at(ctx.now).to_string(),
                claim_id: r.claim_id,
                created_at: r.created_at,
                expires_at: r.expires_at,
            })
            .collect(),
    ))
}

/// The holder refuses a claim on their account: it ends, and its token dies.
#[utoipa::path(delete, path = "/v1/me/reregistration-claims/{claim_id}", tag = "holder",
    params(("claim_id" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::Problem),
              (status = 404, description = "claim_not_found", body = crate::error::Problem),
              (status = 409, description = "claim_not_open", body = crate::error::Problem)))]
pub async fn refuse(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: Holder,
    Path(claim_id): Path<String>,
) -> ApiResult<StatusCode> {
    // The claim id names its account: a claim on another account is not found.
    let on_this_account = crate::ids::account_of("clm_", &claim_id).as_deref() == Some(holder.account_id.as_str());
    if !on_this_account {
        return Err(ApiError::from(ClaimError::NotFound));
    }
    let committed = state
        .claims
        .execute(
            &claim_id,
            ClaimCommand::Refuse(shenfen_domain::claim::Refuse { now: ctx.now }),
            &ctx.meta(holder.actor()),
        )
        .await?;
    state.caught_up_after(&committed, &[ReviewQueue::NAME, Claims::NAME]).await;
    tracing::info!(account_id = %holder.account_id, claim_id = %claim_id, "re-registration claim refused");
    Ok(StatusCode::NO_CONTENT)
}
