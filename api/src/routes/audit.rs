//! Auditors: any aggregate's full history and its state as of an instant.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shenfen_domain::staff::Role;
use shenfen_projections::audit::{self, AuditError};
use shenfen_projections::seal::Head;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::StaffMember;
use crate::startup::AppState;

/// One event as auditors see it (secrets redacted).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// When the database recorded it.
    pub recorded_at: DateTime<Utc>,
    /// When it happened (the application clock).
    pub at: DateTime<Utc>,
    /// `{kind, id?, role?}`.
    #[schema(value_type = Object)]
    pub actor: Value,
    pub request_id: Option<String>,
    /// This event's link in the stream's hash chain.
    pub hash: Option<String>,
    #[schema(value_type = Object)]
    pub payload: Value,
}

fn problem(err: AuditError) -> ApiError {
    match err {
        AuditError::UnknownType(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_aggregate_type",
            "The type must be account or verification (or staff, code_channel, support_case, student).",
            "聚合类型应为 account 或 verification。",
        ),
        other => ApiError::internal(other),
    }
}

fn no_events() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "aggregate_not_found", "No events for this aggregate.", "该对象没有任何事件。")
}

fn text(meta: &Value, key: &str) -> Option<String> {
    meta.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Every event of an aggregate.
#[utoipa::path(get, path = "/v1/audit/aggregates/{type}/{id}/events", tag = "auditor",
    params(("type" = String, Path, description = "account or verification (an account's verification stream has the account's id); also staff, code_channel, support_case (a case id), student (a student id)"),
           ("id" = String, Path)),
    responses((status = 200, body = [AuditEvent]), (status = 404, body = crate::error::Problem)))]
pub async fn events(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    Path((aggregate_type, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    staff.require(&[Role::Auditor])?;
    let mut events = audit::history(state.reads.db(), &aggregate_type, &id).await.map_err(problem)?;
    if events.is_empty() {
        return Err(no_events());
    }
    audit::open(state.keyring(), &mut events).await.map_err(problem)?;
    tracing::info!(staff_id = %staff.staff_id, aggregate_type = %aggregate_type, aggregate_id = %id, "audit history read");
    Ok(Json(
        events
            .iter()
            .map(|e| AuditEvent {
                sequence: e.sequence,
                event_type: e.event_type.clone(),
                event_version: e.event_version.clone(),
                recorded_at: e.recorded_at,
                at: e.at(),
                actor: json!({
                    "kind": text(&e.metadata, "actor_kind"),
                    "id": text(&e.metadata, "actor_id"),
                    "role": text(&e.metadata, "actor_role"),
                }),
                request_id: text(&e.metadata, "request_id"),
                hash: text(&e.metadata, "hash"),
                payload: audit::redact(&e.payload),
            })
            .collect(),
    ))
}

/// The instant to fold up to.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AsOf {
    /// RFC 3339; the present when left out.
    pub as_of: Option<DateTime<Utc>>,
}

/// A reconstructed state.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditState {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub as_of: Option<DateTime<Utc>>,
    /// The last event folded (0: none yet at that instant).
    pub sequence: i64,
    /// Whether the stream is intact: its keyed hash chain holds, and it still ends at (or
    /// beyond) the head the seal recorded for it.
    pub chain_intact: bool,
    #[schema(value_type = Object)]
    pub state: Value,
}

/// The state of an aggregate folded from its events up to an instant.
#[utoipa::path(get, path = "/v1/audit/aggregates/{type}/{id}/state", tag = "auditor",
    params(("type" = String, Path), ("id" = String, Path), AsOf),
    responses((status = 200, body = AuditState), (status = 404, body = crate::error::Problem)))]
pub async fn state(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    Path((aggregate_type, id)): Path<(String, String)>,
    Query(as_of): Query<AsOf>,
) -> ApiResult<Json<AuditState>> {
    staff.require(&[Role::Auditor])?;
    let events = audit::history(state.reads.db(), &aggregate_type, &id).await.map_err(problem)?;
    if events.is_empty() {
        return Err(no_events());
    }
    let mut opened = events.clone();
    audit::open(state.keyring(), &mut opened).await.map_err(problem)?;
    let (folded, sequence) = audit::state_as_of(&aggregate_type, &opened, as_of.as_of).map_err(problem)?;
    let (integrity, _) =
        audit::Integrity::load(state.reads.db(), state.chain.clone()).await.map_err(ApiError::internal)?;
    let head = Head::read(state.reads.db(), &aggregate_type, &id).await.map_err(ApiError::internal)?;
    let chain_intact =
        integrity.seal.is_some() && integrity.check(&aggregate_type, &id, &events, head.as_ref()).is_none();
    Ok(Json(AuditState {
        aggregate_type,
        aggregate_id: id,
        as_of: as_of.as_of,
        sequence,
        chain_intact,
        state: audit::redact(&folded),
    }))
}
