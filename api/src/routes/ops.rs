//! Operations: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::startup::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up.")))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers. A projection stuck at an event it cannot
/// apply makes the answer `degraded` (still 200: the write side and the holders' own reads
/// work, and taking every process out of service would not move the projection on), with the
/// projections named, where they stopped and why (no personal data). With a read standby
/// configured, `read_standby` says whether lag-tolerant reads go there (`in_use`) or to the
/// primary (`bypassed`: it does not answer or is too far behind).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "`ready`, or `degraded` with the stuck projections"), (status = 503, description = "The database does not answer.")))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if !state.db.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database unavailable" })));
    }
    match shenfen_projections::checkpoint::stuck(&state.db).await {
        Ok(stuck) if stuck.is_empty() => {
            let mut body = json!({ "status": "ready" });
            if let Some(in_use) = state.reads.standby_in_use() {
                body["read_standby"] = json!(if in_use { "in_use" } else { "bypassed" });
            }
            (StatusCode::OK, Json(body))
        }
        Ok(stuck) => {
            let projections: Vec<_> = stuck
                .iter()
                .map(|s| {
                    json!({
                        "projection": s.projection,
                        "since": s.since,
                        "position": {"transaction_id": s.tx, "global_position": s.pos},
                        "error": s.error,
                    })
                })
                .collect();
            (StatusCode::OK, Json(json!({ "status": "degraded", "stuck_projections": projections })))
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database unavailable" }))),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String),
        (status = 404, description = "`SHENFEN_METRICS_LISTEN` serves `/metrics` on its own address instead")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// The OpenAPI description, generated from the handlers and types.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "This description (OpenAPI 3.1)", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document().clone())
}
