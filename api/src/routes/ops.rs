//! Operations: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::startup::AppState;

/// The process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers.
pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.db.ping().await {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database unavailable" })))
    }
}

/// Prometheus metrics.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// The OpenAPI description, generated from the handlers and types.
pub async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}
