//! Student identity verification, the school's side: head teachers see and decide their own
//! class's reviews, school admins see their school's pending and failed applications, refresh
//! or link registry records, and find their students. Anything outside the member's scope is
//! 403 `out_of_scope`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::staff::Role;
use shenfen_domain::student::{Decide, Decision, Grade, Material, Scope, StudentCommand, StudentError, StudentNumber};
use shenfen_domain::time::cst_date;
use shenfen_projections::students::{StudentRow, Students};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx, StaffMember};
use crate::startup::AppState;
use crate::validate::Errors;

/// How many queue entries one answer lists at most.
const QUEUE_LIMIT: i64 = 500;

/// The member's scope on students: 403 `forbidden` for other roles, `out_of_scope` for a
/// school role without a school.
fn scope_of(staff: &StaffMember, roles: &[Role]) -> ApiResult<Scope> {
    staff.require(roles)?;
    staff.loaded.state.student_scope().ok_or_else(|| ApiError::from(StudentError::OutOfScope))
}

fn review_not_found() -> ApiError {
    ApiError::from(StudentError::ReviewNotFound)
}

/// The queue row of review `id`, if the member's scope covers it (404 otherwise unknown,
/// 403 `out_of_scope` when it is someone else's).
async fn row_in_scope(state: &AppState, scope: &Scope, id: &str) -> ApiResult<StudentRow> {
    let row = Students::by_review(&state.db, id).await.map_err(ApiError::internal)?.ok_or_else(review_not_found)?;
    let grade = u8::try_from(row.grade).ok().and_then(|g| Grade::try_from(g).ok());
    let covered = grade.is_some_and(|g| scope.covers(&row.school_code, g, &row.class));
    if !covered {
        return Err(ApiError::from(StudentError::OutOfScope));
    }
    Ok(row)
}

/// One application waiting for the school.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudentReview {
    pub review_id: String,
    pub student_id: String,
    pub pass_id: String,
    pub student_number: String,
    pub name: String,
    pub school_code: String,
    pub grade: i32,
    pub class: String,
    /// `pending_head_teacher` or `registry_failed`.
    #[schema(value_type = crate::openapi::values::StudentStatusName)]
    pub status: String,
    /// The fields that differ from the registry's record.
    pub differences: Vec<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub due_by: Option<NaiveDate>,
    /// Still pending after its due day (China time).
    pub overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_error: Option<String>,
}

fn review(row: StudentRow, today: NaiveDate) -> StudentReview {
    StudentReview {
        overdue: row.overdue_on(today),
        differences: row.differences(),
        review_id: row.review_id.unwrap_or_default(),
        student_id: row.student_id,
        pass_id: row.pass_id,
        student_number: row.student_number,
        name: row.name,
        school_code: row.school_code,
        grade: row.grade,
        class: row.class,
        status: row.status,
        submitted_at: row.submitted_at,
        due_by: row.due_by,
        registry_error: row.registry_error,
    }
}

/// The reviews for the member, oldest due first: a head teacher's class's pending ones; a
/// school admin's school's pending and registry-failed ones.
#[utoipa::path(get, operation_id = "student_review_list", path = "/v1/student-reviews", tag = "school",
    responses((status = 200, body = [StudentReview]), (status = 401, body = crate::error::Problem),
              (status = 403, description = "forbidden, out_of_scope", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
) -> ApiResult<Json<Vec<StudentReview>>> {
    let scope = scope_of(&staff, &[Role::HeadTeacher, Role::SchoolAdmin])?;
    let rows = match &scope {
        Scope::HeadTeacher { school_code, grade, class } => {
            Students::class_queue(state.reads.db(), school_code, i32::from(grade.get()), class.as_str(), QUEUE_LIMIT)
                .await
        }
        Scope::SchoolAdmin { school_code } => Students::school_queue(state.reads.db(), school_code, QUEUE_LIMIT).await,
    }
    .map_err(ApiError::internal)?;
    let today = cst_date(ctx.now);
    Ok(Json(rows.into_iter().map(|r| review(r, today)).collect()))
}

/// A material photo of a review's student.
#[utoipa::path(get, operation_id = "student_review_material", path = "/v1/student-reviews/{id}/materials/{kind}", tag = "school",
    params(("id" = String, Path, description = "the review id"),
           ("kind" = String, Path, description = "household_register, id_front or id_back")),
    responses((status = 200, description = "the JPEG", content_type = "image/jpeg"),
              (status = 401, body = crate::error::Problem),
              (status = 403, description = "forbidden, out_of_scope", body = crate::error::Problem),
              (status = 404, description = "review_not_found, material_not_found", body = crate::error::Problem),
              (status = 410, description = "photo_deleted", body = crate::error::Problem)))]
pub async fn material(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    Path((id, kind)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let scope = scope_of(&staff, &[Role::HeadTeacher, Role::SchoolAdmin])?;
    let row = row_in_scope(&state, &scope, &id).await?;
    let not_found =
        || ApiError::new(StatusCode::NOT_FOUND, "material_not_found", "No such material.", "该材料不存在。");
    let material = Material::parse(&kind).ok_or_else(not_found)?;
    let student = state.students.load(&row.student_id).await?;
    let digest = student.material(material).ok_or_else(not_found)?.to_string();
    let bytes = state.blobs.get(&digest).await.map_err(ApiError::internal)?.ok_or_else(ApiError::photo_deleted)?;
    tracing::info!(staff_id = %staff.staff_id, student_id = %row.student_id, "student material viewed");
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, no-store")], bytes))
}

/// A head teacher's decision.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StudentDecisionRequest {
    /// `approve` or `return`.
    #[schema(value_type = crate::openapi::values::StudentDecisionName)]
    pub decision: Option<String>,
    /// Required to return; recorded with an approval.
    pub reason: Option<String>,
}

/// The student's status after an action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewedStatus {
    #[schema(value_type = crate::openapi::values::StudentStatusName)]
    pub status: String,
}

/// The head teacher of the class approves, or returns with a reason.
#[utoipa::path(post, operation_id = "student_review_decide", path = "/v1/student-reviews/{id}/decision", tag = "school",
    params(("id" = String, Path, description = "the review id")), request_body = StudentDecisionRequest,
    responses((status = 200, body = ReviewedStatus), (status = 401, body = crate::error::Problem),
              (status = 403, description = "forbidden, out_of_scope", body = crate::error::Problem),
              (status = 404, description = "review_not_found", body = crate::error::Problem),
              (status = 409, description = "not_pending", body = crate::error::Problem),
              (status = 422, description = "reason_required, invalid_decision", body = crate::error::Problem)))]
pub async fn decide(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(id): Path<String>,
    AppJson(body): AppJson<StudentDecisionRequest>,
) -> ApiResult<Json<ReviewedStatus>> {
    let scope = scope_of(&staff, &[Role::HeadTeacher])?;
    let mut errors = Errors::default();
    let reason = body.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    let decision = match errors.required("decision", body.decision.as_deref()).map(str::trim) {
        Some("approve") => Some(Decision::Approve { reason }),
        Some("return") => match reason {
            Some(reason) => Some(Decision::Return { reason }),
            None => {
                errors.add("reason", "reason_required");
                None
            }
        },
        Some(_) => {
            errors.add("decision", "invalid_decision");
            None
        }
        None => None,
    };
    errors.finish()?;
    let decision = decision.ok_or_else(|| ApiError::internal("validated decision missing"))?;
    let row = row_in_scope(&state, &scope, &id).await?;
    let command = StudentCommand::Decide(Decide {
        review_id: id,
        staff_id: staff.staff_id.clone(),
        scope,
        decision,
        now: ctx.now,
    });
    let committed = state.students.execute(&row.student_id, command, &ctx.meta(staff.actor())).await?;
    state.caught_up_after(&committed, &[Students::NAME]).await;
    tracing::info!(staff_id = %staff.staff_id, student_id = %row.student_id, "student review decided");
    Ok(Json(ReviewedStatus { status: committed.state.status.as_str().to_string() }))
}

/// Runs the registry comparison again now (刷新学籍状态).
#[utoipa::path(post, operation_id = "student_review_refresh", path = "/v1/student-reviews/{id}/registry-refresh", tag = "school",
    params(("id" = String, Path, description = "the review id")),
    responses((status = 200, body = ReviewedStatus), (status = 401, body = crate::error::Problem),
              (status = 403, description = "forbidden, out_of_scope", body = crate::error::Problem),
              (status = 404, description = "review_not_found", body = crate::error::Problem),
              (status = 409, description = "not_pending", body = crate::error::Problem),
              (status = 503, description = "student_registry_unavailable", body = crate::error::Problem)))]
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(id): Path<String>,
) -> ApiResult<Json<ReviewedStatus>> {
    recompare(&state, &ctx, &staff, &id, None).await
}

/// The registry record to link.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegistryLinkRequest {
    #[schema(value_type = String)]
    pub student_number: Option<String>,
}

/// Links the application to a registry record and compares again (手动关联学籍).
#[utoipa::path(post, operation_id = "student_review_link", path = "/v1/student-reviews/{id}/registry-link", tag = "school",
    params(("id" = String, Path, description = "the review id")), request_body = RegistryLinkRequest,
    responses((status = 200, body = ReviewedStatus), (status = 401, body = crate::error::Problem),
              (status = 403, description = "forbidden, out_of_scope", body = crate::error::Problem),
              (status = 404, description = "review_not_found", body = crate::error::Problem),
              (status = 409, description = "not_pending", body = crate::error::Problem),
              (status = 422, description = "invalid_student_number", body = crate::error::Problem),
              (status = 503, description = "student_registry_unavailable", body = crate::error::Problem)))]
pub async fn link(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    Path(id): Path<String>,
    AppJson(body): AppJson<RegistryLinkRequest>,
) -> ApiResult<Json<ReviewedStatus>> {
    let mut errors = Errors::default();
    let number = errors
        .required("student_number", body.student_number.as_deref())
        .and_then(|n| StudentNumber::parse(n).map_err(|e| errors.add("student_number", e.code())).ok());
    errors.finish()?;
    recompare(&state, &ctx, &staff, &id, number).await
}

async fn recompare(
    state: &AppState,
    ctx: &Ctx,
    staff: &StaffMember,
    id: &str,
    link: Option<StudentNumber>,
) -> ApiResult<Json<ReviewedStatus>> {
    let scope = scope_of(staff, &[Role::SchoolAdmin])?;
    let row = row_in_scope(state, &scope, id).await?;
    let meta = ctx.meta(staff.actor());
    let committed =
        crate::app::students::recompare(state, ctx, &row.student_id, &staff.staff_id, scope, link, &meta).await?;
    tracing::info!(staff_id = %staff.staff_id, student_id = %row.student_id, "student registry record recompared");
    Ok(Json(ReviewedStatus { status: committed.state.status.as_str().to_string() }))
}

/// A search among a school's students.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StudentSearch {
    /// A pass ID or a student number.
    #[param(min_length = 1)]
    pub q: String,
}

/// A student of the school.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchoolStudent {
    pub student_id: String,
    pub pass_id: String,
    pub student_number: String,
    pub name: String,
    pub grade: i32,
    pub class: String,
    #[schema(value_type = crate::openapi::values::StudentStatusName)]
    pub status: String,
    /// The review or failure the school can act on, if any.
    pub review_id: Option<String>,
}

/// The school's students whose pass ID or student number is `q` (school admins of the school).
#[utoipa::path(get, operation_id = "school_students", path = "/v1/schools/{code}/students", tag = "school",
    params(("code" = String, Path, description = "the school code"), StudentSearch),
    responses((status = 200, body = [SchoolStudent]), (status = 401, body = crate::error::Problem),
              (status = 403, description = "forbidden, out_of_scope", body = crate::error::Problem)))]
pub async fn school_students(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    Path(code): Path<String>,
    Query(search): Query<StudentSearch>,
) -> ApiResult<Json<Vec<SchoolStudent>>> {
    let scope = scope_of(&staff, &[Role::SchoolAdmin])?;
    if !matches!(&scope, Scope::SchoolAdmin { school_code } if *school_code == code.trim()) {
        return Err(ApiError::from(StudentError::OutOfScope));
    }
    let rows = Students::search(state.reads.db(), code.trim(), &search.q, 20).await.map_err(ApiError::internal)?;
    Ok(Json(
        rows.into_iter()
            .map(|r| SchoolStudent {
                student_id: r.student_id,
                pass_id: r.pass_id,
                student_number: r.student_number,
                name: r.name,
                grade: r.grade,
                class: r.class,
                status: r.status,
                review_id: r.review_id,
            })
            .collect(),
    ))
}
