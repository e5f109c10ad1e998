//! Manual review: the photos are stored, then the application (a holder's) or the proof (a
//! claimant's) is made on its stream. A photo stored for an application that is then refused
//! is swept after the grace period (`blobs::sweep`).

use chrono::NaiveDate;
use shenfen_domain::calendar::REVIEW_WORKING_DAYS;
use shenfen_domain::claim::{Claim, ClaimCommand, SubmitProof};
use shenfen_domain::metadata::Actor;
use shenfen_domain::shared::{DocumentType, PersonName, Validity};
use shenfen_domain::time::cst_date;
use shenfen_domain::verification::{Apply, Photos, ReviewRequest, VerificationCommand};
use shenfen_projections::claims::Claims;
use shenfen_projections::review_queue::{claim_review_id, ReviewQueue};
use shenfen_projections::store::Loaded;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Ctx, Holder};
use crate::startup::AppState;

/// A manual-review form as validated: the document type (the account's), the name and
/// validity to prove, and the three photos (front, back, handheld), each a real JPEG under
/// 190 KB.
pub struct ReviewForm {
    pub document_type: DocumentType,
    pub name: PersonName,
    pub validity: Validity,
    pub photos: [Vec<u8>; 3],
}

/// A review waiting for a reviewer.
pub struct Submitted {
    pub review_id: String,
    pub due_by: NaiveDate,
}

/// The holder applies for manual review; answers the review and the applications left in the
/// period.
pub async fn apply(state: &AppState, ctx: &Ctx, holder: &Holder, form: ReviewForm) -> ApiResult<(Submitted, u32)> {
    let (request, due_by) = stored(state, ctx, form).await?;
    let review_id = crate::ids::id_for("rev_", &holder.account_id);
    let account_id = holder.account_id.clone();
    let command =
        VerificationCommand::Apply(Apply { account_id, review_id: review_id.clone(), request, due_by, now: ctx.now });
    let committed = state.verifications.execute(&holder.account_id, command, &ctx.meta(holder.actor())).await?;
    super::settle_verification(state, &committed).await;
    let left = committed.state.quotas(ctx.now).applications_left_in_period;
    tracing::info!(account_id = %holder.account_id, review_id = %review_id, "manual review applied for");
    Ok((Submitted { review_id, due_by }, left))
}

/// A claimant submits the proof of their claim `claim_id` (as loaded to check the token).
pub async fn submit_proof(
    state: &AppState,
    ctx: &Ctx,
    claim_id: &str,
    loaded: Loaded<Claim>,
    form: ReviewForm,
) -> ApiResult<Submitted> {
    let (request, due_by) = stored(state, ctx, form).await?;
    let review_id = claim_review_id(claim_id);
    let command =
        ClaimCommand::SubmitProof(SubmitProof { review_id: review_id.clone(), request, due_by, now: ctx.now });
    let actor = Actor::Claimant { id: claim_id.to_string() };
    let committed = state.claims.execute_from(claim_id, Some(loaded), command, &ctx.meta(actor)).await?;
    state.caught_up_after(&committed, &[ReviewQueue::NAME, Claims::NAME]).await;
    tracing::info!(claim_id = %claim_id, "claim proof submitted");
    Ok(Submitted { review_id, due_by })
}

/// Stores the form's photos; answers what the review is asked to accept and its due date
/// (7 working days on).
async fn stored(state: &AppState, ctx: &Ctx, form: ReviewForm) -> ApiResult<(ReviewRequest, NaiveDate)> {
    let ReviewForm { document_type, name, validity, photos: [front, back, handheld] } = form;
    let photos = Photos {
        front: state.blobs.put(front).await.map_err(ApiError::internal)?,
        back: state.blobs.put(back).await.map_err(ApiError::internal)?,
        handheld: state.blobs.put(handheld).await.map_err(ApiError::internal)?,
    };
    let due_by = state.calendar.add_working_days(cst_date(ctx.now), REVIEW_WORKING_DAYS);
    Ok((ReviewRequest { document_type, name, validity, photos }, due_by))
}
