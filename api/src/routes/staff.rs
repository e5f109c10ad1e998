//! Staff sign-in and staff accounts: `POST /v1/staff/sessions`, `POST /v1/staff/accounts`,
//! and the `shenfen staff add` command.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::NewSession;
use shenfen_domain::ids;
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::password;
use shenfen_domain::staff::{valid_username, Role, StaffCommand, StaffError, StaffEvent};
use shenfen_projections::staff_sessions::StaffSessions;
use shenfen_projections::store::BusError;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx, StaffMember};
use crate::startup::AppState;
use crate::validate::Errors;

/// Staff credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StaffLogin {
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A staff session.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffSession {
    pub token: String,
    pub role: String,
    pub expires_at: DateTime<Utc>,
}

fn login_failed() -> ApiError {
    super::staff_problem(StaffError::NotFound)
}

/// Signs a staff member in.
#[utoipa::path(post, path = "/v1/staff/sessions", request_body = StaffLogin, tag = "staff",
    responses((status = 201, body = StaffSession), (status = 401, description = "login_failed", body = crate::error::Problem),
              (status = 423, description = "account_locked", body = crate::error::Problem)))]
pub async fn log_in(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    AppJson(body): AppJson<StaffLogin>,
) -> ApiResult<(StatusCode, Json<StaffSession>)> {
    let mut errors = Errors::default();
    let username = errors.required("username", &body.username).map(|u| u.trim().to_string());
    let password = errors.required("password", &body.password).map(str::to_string);
    errors.finish()?;
    let (Some(username), Some(password)) = (username, password) else { return Err(login_failed()) };
    let staff_id = ids::staff_id(&state.key, &username);
    let staff = state.staff.load(&staff_id).await.map_err(|e| super::bus_problem(e, super::staff_problem))?;
    let Some(hash) = staff.password_hash.clone() else {
        state.hashing.verify_dummy(password).await.map_err(ApiError::internal)?;
        return Err(login_failed());
    };
    if let Some(until) = staff.lockout.locked_at(ctx.now) {
        return Err(super::staff_problem(StaffError::Locked { until }));
    }
    let matched = state.hashing.verify(password, hash.clone()).await.map_err(ApiError::internal)?;
    let token = crate::crypto::random_token();
    let expires_at = ctx.now + Duration::seconds(state.settings.session_ttl_seconds);
    let command = StaffCommand::LogIn {
        password_matched: matched,
        checked_hash: hash,
        session: NewSession {
            session_id: uuid::Uuid::new_v4().to_string(),
            token_hash: ids::token_hash(&token),
            expires_at,
        },
        lockout_threshold: state.settings.lockout_threshold,
        lockout: Duration::seconds(state.settings.lockout_seconds),
        now: ctx.now,
    };
    let committed = state
        .staff
        .execute(&staff_id, command, &ctx.meta(Actor::Anonymous))
        .await
        .map_err(|e| super::bus_problem(e, super::staff_problem))?;
    if !committed.events.iter().any(|e| matches!(e, StaffEvent::SessionStarted { .. })) {
        return Err(login_failed());
    }
    state.caught_up(committed.position, &[StaffSessions::NAME]).await;
    let role = committed.state.role.map(|r| r.as_str()).unwrap_or_default().to_string();
    tracing::info!(staff_id = %staff_id, role = %role, "staff signed in");
    Ok((StatusCode::CREATED, Json(StaffSession { token, role, expires_at })))
}

/// A new staff account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewStaff {
    pub username: Option<String>,
    /// `reviewer`, `support`, `auditor`, `analyst`, `head_teacher`, `school_admin` or `admin`.
    pub role: Option<String>,
    pub password: Option<String>,
    /// The staff member's own applicant document, if any: they never review that account.
    pub own_document_type: Option<String>,
    pub own_document_number: Option<String>,
}

/// The created staff account.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffCreated {
    pub staff_id: String,
    pub username: String,
    pub role: String,
}

/// Everything needed to create a staff member, validated.
pub struct StaffInput {
    pub username: String,
    pub role: Role,
    pub password: String,
    pub account_id: Option<String>,
}

/// Validates a new staff member.
pub fn validate_staff(state: &AppState, body: &NewStaff, today: chrono::NaiveDate) -> ApiResult<StaffInput> {
    let mut errors = Errors::default();
    let username = errors.required("username", &body.username).map(|u| u.trim().to_string());
    if username.as_deref().is_some_and(|u| !valid_username(u)) {
        errors.add("username", "invalid_username");
    }
    let role = errors.required("role", &body.role).and_then(|r| {
        let parsed = Role::parse(r.trim());
        if parsed.is_none() {
            errors.add("role", "invalid_role");
        }
        parsed
    });
    let password = errors.required("password", &body.password).map(str::to_string);
    if let Some(Err(e)) = password.as_deref().map(|p| password::check_policy(p, None)) {
        errors.add_hint("password", e.code(), Some(e.reason()));
    }
    let account_id = match (&body.own_document_type, &body.own_document_number) {
        (None, None) => None,
        (t, n) => crate::validate::document(&mut errors, t, n, today).map(|(t, n)| ids::account_id(&state.key, t, &n)),
    };
    errors.finish()?;
    match (username, role, password) {
        (Some(username), Some(role), Some(password)) => Ok(StaffInput { username, role, password, account_id }),
        _ => Err(ApiError::internal("validated staff incomplete")),
    }
}

/// Creates a staff member.
pub async fn create_staff(
    state: &AppState,
    input: StaffInput,
    created_by: &str,
    meta: &EventMetadata,
) -> ApiResult<StaffCreated> {
    let staff_id = ids::staff_id(&state.key, &input.username);
    let password_hash = state.hashing.hash(input.password).await.map_err(ApiError::internal)?;
    let command = StaffCommand::Create {
        username: input.username.clone(),
        role: input.role,
        password_hash,
        account_id: input.account_id,
        created_by: created_by.to_string(),
        now: meta.at,
    };
    match state.staff.execute(&staff_id, command, meta).await {
        Ok(committed) => state.caught_up(committed.position, &[StaffSessions::NAME]).await,
        Err(BusError::Domain(e)) => return Err(super::staff_problem(e)),
        Err(e) => return Err(super::bus_problem(e, super::staff_problem)),
    }
    Ok(StaffCreated { staff_id, username: input.username, role: input.role.as_str().into() })
}

/// Creates a staff account (admins only).
#[utoipa::path(post, path = "/v1/staff/accounts", request_body = NewStaff, tag = "staff", security(("bearer" = [])),
    responses((status = 201, body = StaffCreated), (status = 403, body = crate::error::Problem),
              (status = 409, description = "username_taken", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    AppJson(body): AppJson<NewStaff>,
) -> ApiResult<(StatusCode, Json<StaffCreated>)> {
    staff.require(&[Role::Admin])?;
    let input = validate_staff(&state, &body, shenfen_domain::time::cst_date(ctx.now))?;
    let created = create_staff(&state, input, &staff.staff_id, &ctx.meta(staff.actor())).await?;
    tracing::info!(by = %staff.staff_id, staff_id = %created.staff_id, role = %created.role, "staff account created");
    Ok((StatusCode::CREATED, Json(created)))
}
