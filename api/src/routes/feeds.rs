//! `GET /v1/feeds/identity-changes`: what downstream services read to learn that an account's
//! identity information changed (resubmit its applications) or its name, validity or
//! verification status did (source document 001). Staff role `service`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::staff::Role;
use shenfen_projections::feed::{ChangeRow, IdentityChanges};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::StaffMember;
use crate::startup::AppState;
use crate::validate::Errors;

/// The most items one page holds.
pub const MAX_LIMIT: i64 = 1000;
/// Items per page when `limit` is left out.
pub const DEFAULT_LIMIT: i64 = 100;

/// Where to go on from.
#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedQuery {
    /// The `next_cursor` of the previous page; from the beginning when left out.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One change of an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeItem {
    /// Pass the last one as `after` to go on.
    pub cursor: i64,
    pub account_id: String,
    /// `resubmission_required`, `name_changed`, `validity_changed` or
    /// `verification_status_changed`.
    #[schema(value_type = crate::openapi::values::ChangeKindName)]
    pub kind: String,
    /// When the change was recorded.
    pub at: DateTime<Utc>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    pub items: Vec<ChangeItem>,
    /// The cursor to send as `after` next (the request's own when nothing new came).
    pub next_cursor: i64,
}

impl From<ChangeRow> for ChangeItem {
    fn from(row: ChangeRow) -> Self {
        ChangeItem { cursor: row.cursor, account_id: row.account_id, kind: row.kind, at: row.at }
    }
}

/// The identity changes after a cursor, in commit order, gap-free, at least once; an item
/// names the account, never its personal data.
#[utoipa::path(get, path = "/v1/feeds/identity-changes", tag = "service", params(FeedQuery),
    responses((status = 200, body = ChangePage)))]
pub async fn identity_changes(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    Query(query): Query<FeedQuery>,
) -> ApiResult<Json<ChangePage>> {
    staff.require(&[Role::Service])?;
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let mut errors = Errors::default();
    if after < 0 {
        errors.add("after", "invalid_cursor");
    }
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.add("limit", "invalid_limit");
    }
    errors.finish()?;
    let rows = IdentityChanges::page(state.reads.db(), after, limit).await.map_err(ApiError::internal)?;
    let next_cursor = rows.last().map_or(after, |r| r.cursor);
    Ok(Json(ChangePage { items: rows.into_iter().map(ChangeItem::from).collect(), next_cursor }))
}
