//! `GET /v1/me/export`: a copy of everything held about the holder (see [`crate::app::export`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::export;
use crate::error::ApiResult;
use crate::extract::{Ctx, Holder};
use crate::startup::AppState;

/// A zip of the profile, the holder's events with their actors (staff by role), the manual
/// reviews and the photos still kept.
#[utoipa::path(get, path = "/v1/me/export", tag = "holder",
    responses((status = 200, content_type = "application/zip", body = Vec<u8>,
        description = "README.txt, profile.json, events/account.json, events/verification.json, reviews.json, photos/REVIEW_ID/{front,back,handheld}.jpg")))]
pub async fn export(State(state): State<Arc<AppState>>, ctx: Ctx, holder: Holder) -> ApiResult<impl IntoResponse> {
    let bytes = export::archive(&state, &holder, ctx.now).await?;
    tracing::info!(account_id = %holder.account_id, bytes = bytes.len(), "personal data exported");
    let disposition = format!("attachment; filename=\"shenfen-{}.zip\"", holder.account_id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    ))
}
