//! Photo retention (PIPL: kept no longer than needed): the ID photos of a decided manual
//! review — a holder's application or a re-registration claimant's proof — are deleted
//! `SHENFEN_PHOTO_RETENTION_DAYS` after the decision (or the claim's refusal), recorded by the
//! verification stream's `ApplicationPhotosDeleted` or the claim's `ProofPhotosDeleted` (the
//! event comes first: a photo is never gone without a record of why). After the same period a
//! claim that ended forgets its claimant (`Forgotten`, then the claim's key destroyed).

use chrono::{DateTime, Utc};
use shenfen_domain::claim::{ClaimCommand, ClaimEvent, Forget};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::verification::{DeletePhotos, VerificationCommand, VerificationEvent};
use shenfen_projections::claims::Claims;
use shenfen_projections::review_queue::{claim_of_review, ReviewQueue};

use crate::app::erasure;
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

/// Deletes the photos past their retention at `now`; returns how many reviews' photos.
pub async fn delete_due(state: &AppState, now: DateTime<Utc>) -> ApiResult<usize> {
    let retention = chrono::Duration::days(i64::from(state.settings.photo_retention_days));
    let due = ReviewQueue::photos_to_delete(&state.db, now - retention, 100).await.map_err(ApiError::internal)?;
    let meta = EventMetadata { actor: Actor::System { id: "retention".into() }, request_id: String::new(), at: now };
    let mut deleted = 0;
    for (review_id, account_id) in due {
        let request = DeletePhotos { review_id: review_id.clone(), retention, now };
        let photos = match claim_of_review(&review_id) {
            Some(claim_id) => {
                let committed = state.claims.execute(&claim_id, ClaimCommand::DeletePhotos(request), &meta).await?;
                let recorded = committed.events.iter().any(|e| matches!(e, ClaimEvent::ProofPhotosDeleted { .. }));
                committed.state.review.filter(|_| recorded).map(|r| r.photos)
            }
            None => {
                let command = VerificationCommand::DeletePhotos(request);
                let committed = state.verifications.execute(&account_id, command, &meta).await?;
                let recorded =
                    committed.events.iter().any(|e| matches!(e, VerificationEvent::ApplicationPhotosDeleted { .. }));
                let application = committed.state.applications.into_iter().find(|a| a.review_id == review_id);
                application.filter(|_| recorded).map(|a| a.photos)
            }
        };
        let Some(photos) = photos else { continue };
        for digest in photos.digests() {
            state.blobs.delete(digest).await.map_err(ApiError::internal)?;
        }
        deleted += 1;
    }
    Ok(deleted)
}

/// Forgets the claimants of the claims that ended a retention period before `now` (the same
/// period as photos): `Forgotten` recorded first, then the claim's key destroyed (journalled,
/// as an account's erasure) and its proof's photos deleted. Returns how many.
pub async fn forget_claimants(state: &AppState, now: DateTime<Utc>) -> ApiResult<usize> {
    let retention = chrono::Duration::days(i64::from(state.settings.photo_retention_days));
    let due = Claims::to_forget(&state.db, now - retention, 100).await.map_err(ApiError::internal)?;
    let meta = EventMetadata { actor: Actor::System { id: "retention".into() }, request_id: String::new(), at: now };
    let journal = erasure::journal_path(&state.settings.secret_key_file);
    let mut forgotten = 0;
    for claim_id in due {
        let key_version = state.keyring().latest_version(&claim_id).await.map_err(ApiError::internal)?;
        let before = state.claims.load(&claim_id).await?;
        let command = ClaimCommand::Forget(Forget { key_version, retention, now });
        let committed = state.claims.execute(&claim_id, command, &meta).await?;
        if !committed.events.iter().any(|e| matches!(e, ClaimEvent::Forgotten { .. })) {
            continue;
        }
        erasure::destroy_keys(state.keyring(), &journal, &claim_id, key_version, now)
            .await
            .map_err(ApiError::internal)?;
        let photos = before.review.filter(|r| !r.photos_deleted).map(|r| r.photos);
        for digest in photos.iter().flat_map(|p| p.digests()) {
            state.blobs.delete(digest).await.map_err(ApiError::internal)?;
        }
        forgotten += 1;
    }
    Ok(forgotten)
}
