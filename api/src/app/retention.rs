//! Photo retention (PIPL: kept no longer than needed): the ID photos of a decided manual
//! review are deleted `SHENFEN_PHOTO_RETENTION_DAYS` after the decision, recorded by the
//! verification stream's `ApplicationPhotosDeleted` (the event comes first: a photo is never
//! gone without a record of why).

use chrono::{DateTime, Utc};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::verification::{DeletePhotos, VerificationCommand, VerificationEvent};
use shenfen_projections::review_queue::ReviewQueue;

use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

/// Deletes the photos past their retention at `now`; returns how many applications' photos.
pub async fn delete_due(state: &AppState, now: DateTime<Utc>) -> ApiResult<usize> {
    let retention = chrono::Duration::days(i64::from(state.settings.photo_retention_days));
    let due = ReviewQueue::photos_to_delete(&state.db, now - retention, 100).await.map_err(ApiError::internal)?;
    let meta = EventMetadata { actor: Actor::System { id: "retention".into() }, request_id: String::new(), at: now };
    let mut deleted = 0;
    for (review_id, account_id) in due {
        let command = VerificationCommand::DeletePhotos(DeletePhotos { review_id: review_id.clone(), retention, now });
        let committed = state.verifications.execute(&account_id, command, &meta).await?;
        if !committed.events.iter().any(|e| matches!(e, VerificationEvent::ApplicationPhotosDeleted { .. })) {
            continue;
        }
        let photos = committed.state.applications.iter().find(|a| a.review_id == review_id).map(|a| a.photos.clone());
        for digest in photos.iter().flat_map(|p| p.digests()) {
            state.blobs.delete(digest).await.map_err(ApiError::internal)?;
        }
        deleted += 1;
    }
    Ok(deleted)
}
