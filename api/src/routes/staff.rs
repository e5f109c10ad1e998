//! Staff sign-in and sign-out, password change, and staff accounts (created, disabled,
//! enabled, given another role by admins), and the `shenfen staff add` command.
//!
//! A staff session lives in the member's own stream (the token names it), so disabling a
//! member, changing their role, their password change or their logout ends it at once, in
//! every process: the next request with the old token is 401.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::account::{NewPassword, NewSession};
use shenfen_domain::ids;
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::password;
use shenfen_domain::staff::{
    valid_username, ChangeStaffPassword, Role, SchoolScope, StaffCommand, StaffError, StaffEvent, StaffLogIn,
};
use shenfen_domain::student::{ClassName, Grade};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx, StaffMember};
use crate::startup::AppState;
use crate::validate::Errors;

/// Staff credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StaffLogin {
    #[schema(value_type = String, min_length = 1)]
    pub username: Option<String>,
    #[schema(value_type = String, min_length = 1)]
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
    ApiError::from(StaffError::NotFound)
}

/// Signs a staff member in.
#[utoipa::path(post, path = "/v1/staff/sessions", operation_id = "staff_log_in", request_body = StaffLogin, tag = "staff",
    responses((status = 201, body = StaffSession), (status = 401, description = "login_failed", body = crate::error::Problem),
              (status = 423, description = "account_locked", body = crate::error::Problem)))]
pub async fn log_in(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    AppJson(body): AppJson<StaffLogin>,
) -> ApiResult<(StatusCode, Json<StaffSession>)> {
    let mut errors = Errors::default();
    let username = errors.required("username", body.username.as_deref()).map(|u| u.trim().to_string());
    let password = errors.required("password", body.password.as_deref()).map(str::to_string);
    errors.finish()?;
    let (Some(username), Some(password)) = (username, password) else { return Err(login_failed()) };
    let staff_id = ids::staff_id(&state.key, &username);
    let staff = state.staff.load(&staff_id).await?;
    let Some(hash) = staff.password_hash.clone() else {
        state.hashing.verify_dummy(password).await.map_err(ApiError::internal)?;
        return Err(login_failed());
    };
    if let Some(until) = staff.lockout.locked_at(ctx.now) {
        return Err(ApiError::from(StaffError::Locked { until }));
    }
    let token = crate::crypto::staff_token(&staff_id);
    let expires_at = ctx.now + Duration::seconds(state.settings.session_ttl_seconds);
    let session =
        NewSession { session_id: uuid::Uuid::new_v4().to_string(), token_hash: ids::token_hash(&token), expires_at };
    let password = crate::app::password::check(&state, password, hash, || async { Ok(session) }).await?;
    let command = StaffCommand::LogIn(StaffLogIn { password, now: ctx.now });
    let committed = state.staff.execute(&staff_id, command, &ctx.meta(Actor::Anonymous)).await?;
    if !committed.events.iter().any(|e| matches!(e, StaffEvent::SessionStarted { .. })) {
        return Err(login_failed());
    }
    let role = committed.state.role.map(|r| r.as_str()).unwrap_or_default().to_string();
    tracing::info!(staff_id = %staff_id, role = %role, "staff signed in");
    Ok((StatusCode::CREATED, Json(StaffSession { token, role, expires_at })))
}

/// A new staff account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewStaff {
    #[schema(value_type = String, pattern = "^\\s*[a-z0-9._-]{3,32}\\s*$")]
    pub username: Option<String>,
    /// `reviewer`, `support`, `auditor`, `analyst`, `head_teacher`, `school_admin`, `admin` or `service`.
    #[schema(value_type = crate::openapi::values::RoleName)]
    pub role: Option<String>,
    #[schema(value_type = String, min_length = 8, max_length = 32)]
    pub password: Option<String>,
    /// The staff member's own applicant document, if any: they never review that account.
    #[schema(value_type = Option<crate::openapi::values::DocumentTypeName>)]
    pub own_document_type: Option<String>,
    pub own_document_number: Option<String>,
    /// A head teacher's or school admin's school, by its catalogue code (required for those
    /// roles, refused for others).
    pub school_code: Option<String>,
    /// A head teacher's grade, 1–12.
    #[schema(minimum = 1, maximum = 12)]
    pub grade: Option<i64>,
    /// A head teacher's class, as the registry writes it (e.g. `3班`).
    pub class: Option<String>,
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
    pub school: Option<SchoolScope>,
}

/// Validates a new staff member.
pub fn validate_staff(state: &AppState, body: &NewStaff, today: chrono::NaiveDate) -> ApiResult<StaffInput> {
    let mut errors = Errors::default();
    let username = errors.required("username", body.username.as_deref()).map(|u| u.trim().to_string());
    if username.as_deref().is_some_and(|u| !valid_username(u)) {
        errors.add("username", "invalid_username");
    }
    let role = errors.required("role", body.role.as_deref()).and_then(|r| {
        let parsed = Role::parse(r.trim());
        if parsed.is_none() {
            errors.add("role", "invalid_role");
        }
        parsed
    });
    let password = errors.required("password", body.password.as_deref()).map(str::to_string);
    if let Some(Err(e)) = password.as_deref().map(|p| password::check_policy(p, None)) {
        errors.add_hint("password", e.code(), Some(e.reason()));
    }
    let account_id = match (&body.own_document_type, &body.own_document_number) {
        (None, None) => None,
        (t, n) => crate::validate::document(&mut errors, t, n, today).map(|(t, n)| ids::account_id(&state.key, t, &n)),
    };
    let school = school_scope(state, &mut errors, role, body.school_code.as_deref(), body.grade, body.class.as_deref());
    errors.finish()?;
    match (username, role, password) {
        (Some(username), Some(role), Some(password)) => Ok(StaffInput { username, role, password, account_id, school }),
        _ => Err(ApiError::internal("validated staff incomplete")),
    }
}

/// A school staff member's scope: a school admin needs a school of the catalogue, a head
/// teacher also a grade and a class; other roles take none.
fn school_scope(
    state: &AppState,
    errors: &mut Errors,
    role: Option<Role>,
    school_code: Option<&str>,
    grade: Option<i64>,
    class: Option<&str>,
) -> Option<SchoolScope> {
    let school_role = matches!(role, Some(Role::HeadTeacher | Role::SchoolAdmin));
    let head_teacher = role == Some(Role::HeadTeacher);
    if !school_role {
        for (field, given) in
            [("school_code", school_code.is_some()), ("grade", grade.is_some()), ("class", class.is_some())]
        {
            if given && role.is_some() {
                errors.add(field, "not_for_this_role");
            }
        }
        return None;
    }
    let school_code = errors.required("school_code", school_code).map(|c| c.trim().to_string());
    if school_code.as_deref().is_some_and(|c| state.schools.get(c).is_none()) {
        errors.add("school_code", "school_not_selectable");
    }
    let (grade, class) = if head_teacher {
        let grade = match grade {
            None => {
                errors.add("grade", "required");
                None
            }
            Some(g) => Grade::new(g).map_err(|e| errors.add("grade", e.code())).ok(),
        };
        let class = errors.required("class", class).and_then(|c| {
            ClassName::parse(c).map_err(|e| errors.add("class", e.code())).ok().map(|c| c.as_str().to_string())
        });
        (grade, class)
    } else {
        for (field, given) in [("grade", grade.is_some()), ("class", class.is_some())] {
            if given {
                errors.add(field, "not_for_this_role");
            }
        }
        (None, None)
    };
    Some(SchoolScope { school_code: school_code?, grade, class })
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
    let command = StaffCommand::Create(shenfen_domain::staff::CreateStaff {
        username: input.username.clone(),
        role: input.role,
        password_hash,
        account_id: input.account_id,
        school: input.school,
        created_by: created_by.to_string(),
        now: meta.at,
    });
    state.staff.execute(&staff_id, command, meta).await?;
    Ok(StaffCreated { staff_id, username: input.username, role: input.role.as_str().into() })
}

/// Creates a staff account (admins only).
#[utoipa::path(post, path = "/v1/staff/accounts", request_body = NewStaff, tag = "staff",
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

fn staff_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "staff_not_found", "No staff member has this username.", "该工作人员不存在。")
}

/// Runs an admin's command on the member `username`; an admin never acts on their own
/// account this way (they would lock themselves out).
async fn administer(
    state: &AppState,
    ctx: &Ctx,
    admin: &StaffMember,
    username: &str,
    command: StaffCommand,
) -> ApiResult<StatusCode> {
    admin.require(&[Role::Admin])?;
    let staff_id = ids::staff_id(&state.key, username.trim());
    if staff_id == admin.staff_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "own_staff_account",
            "Admins do not disable or change the role of their own account.",
            "管理员不能停用本人账号或修改本人角色。",
        ));
    }
    let member = state.staff.load(&staff_id).await?;
    if member.username.is_none() {
        return Err(staff_not_found());
    }
    state.staff.execute(&staff_id, command, &ctx.meta(admin.actor())).await?;
    tracing::info!(by = %admin.staff_id, staff_id = %staff_id, "staff account changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Disables a staff member: their sessions end at once, and they cannot sign in until enabled.
#[utoipa::path(post, path = "/v1/staff/accounts/{username}/disable", tag = "staff",
    params(("username" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, description = "staff_not_found", body = crate::error::Problem),
              (status = 409, description = "own_staff_account", body = crate::error::Problem)))]
pub async fn disable(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    admin: StaffMember,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    let command = StaffCommand::Disable(shenfen_domain::staff::Disable { by: admin.staff_id.clone(), now: ctx.now });
    administer(&state, &ctx, &admin, &username, command).await
}

/// Enables a disabled staff member again.
#[utoipa::path(post, path = "/v1/staff/accounts/{username}/enable", tag = "staff",
    params(("username" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, description = "staff_not_found", body = crate::error::Problem),
              (status = 409, description = "own_staff_account", body = crate::error::Problem)))]
pub async fn enable(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    admin: StaffMember,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    let command = StaffCommand::Enable(shenfen_domain::staff::Enable { by: admin.staff_id.clone(), now: ctx.now });
    administer(&state, &ctx, &admin, &username, command).await
}

/// A new role, with the school scope a head teacher or school admin needs (as for a new staff
/// member).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleChange {
    #[schema(value_type = crate::openapi::values::RoleName)]
    pub role: Option<String>,
    pub school_code: Option<String>,
    #[schema(minimum = 1, maximum = 12)]
    pub grade: Option<i64>,
    pub class: Option<String>,
}

/// Gives a staff member another role: their sessions end at once.
#[utoipa::path(put, path = "/v1/staff/accounts/{username}/role", request_body = RoleChange, tag = "staff",
    params(("username" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, description = "staff_not_found", body = crate::error::Problem),
              (status = 409, description = "own_staff_account", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub async fn change_role(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    admin: StaffMember,
    Path(username): Path<String>,
    AppJson(body): AppJson<RoleChange>,
) -> ApiResult<StatusCode> {
    admin.require(&[Role::Admin])?;
    let mut errors = Errors::default();
    let role = errors.required("role", body.role.as_deref()).and_then(|r| {
        let parsed = Role::parse(r.trim());
        if parsed.is_none() {
            errors.add("role", "invalid_role");
        }
        parsed
    });
    let school =
        school_scope(&state, &mut errors, role, body.school_code.as_deref(), body.grade, body.class.as_deref());
    errors.finish()?;
    let role = role.ok_or_else(|| ApiError::internal("validated role missing"))?;
    let command = StaffCommand::ChangeRole(shenfen_domain::staff::ChangeRole {
        role,
        school,
        by: admin.staff_id.clone(),
        now: ctx.now,
    });
    administer(&state, &ctx, &admin, &username, command).await
}

/// Ends the staff member's current session.
#[utoipa::path(delete, path = "/v1/staff/sessions/current", operation_id = "staff_log_out", tag = "staff",
    responses((status = 204), (status = 401, body = crate::error::Problem)))]
pub async fn log_out(State(state): State<Arc<AppState>>, ctx: Ctx, staff: StaffMember) -> ApiResult<StatusCode> {
    let command = StaffCommand::EndSession(shenfen_domain::staff::EndStaffSession {
        session_id: staff.session_id.clone(),
        now: ctx.now,
    });
    state.staff.execute_from(&staff.staff_id, Some(staff.loaded.clone()), command, &ctx.meta(staff.actor())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A staff password change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StaffPasswordChange {
    #[schema(value_type = String, min_length = 1)]
    pub old_password: Option<String>,
    #[schema(value_type = String, min_length = 8, max_length = 32)]
    pub new_password: Option<String>,
    #[schema(value_type = String)]
    pub new_password_confirmation: Option<String>,
}

/// Changes the staff member's password; their other sessions end. A wrong old password counts
/// as a failed login (the lockout applies).
#[utoipa::path(post, path = "/v1/staff/password", operation_id = "staff_change_password", request_body = StaffPasswordChange, tag = "staff",

    responses((status = 204), (status = 401, description = "login_failed (old password wrong)", body = crate::error::Problem),
              (status = 423, description = "account_locked", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    AppJson(body): AppJson<StaffPasswordChange>,
) -> ApiResult<StatusCode> {
    let mut errors = Errors::default();
    let old = errors.required("old_password", body.old_password.as_deref()).map(str::to_string);
    let new = crate::validate::new_password(
        &mut errors,
        "new_password",
        &body.new_password,
        "new_password_confirmation",
        &body.new_password_confirmation,
        None,
    );
    errors.finish()?;
    let (Some(old), Some(new)) = (old, new) else { return Err(ApiError::internal("validated change incomplete")) };
    let member = &staff.loaded.state;
    if let Some(until) = member.lockout.locked_at(ctx.now) {
        return Err(ApiError::from(StaffError::Locked { until }));
    }
    let hash = member.password_hash.clone().ok_or_else(|| ApiError::internal("staff without password"))?;
    let password = crate::app::password::check(&state, old, hash, || async {
        let new_password_hash = state.hashing.hash(new).await.map_err(ApiError::internal)?;
        Ok(NewPassword { new_password_hash, keep_session: staff.session_id.clone() })
    })
    .await?;
    let command = StaffCommand::ChangePassword(ChangeStaffPassword { password, now: ctx.now });
    let committed = state
        .staff
        .execute_from(&staff.staff_id, Some(staff.loaded.clone()), command, &ctx.meta(staff.actor()))
        .await?;
    if committed.events.iter().any(|e| matches!(e, StaffEvent::LoginFailed { .. })) {
        return Err(ApiError::wrong_current_password());
    }
    Ok(StatusCode::NO_CONTENT)
}
