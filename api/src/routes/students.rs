//! Student identity verification (学生身份认证), the student's side: registration by student
//! number, login by pass ID or student number, the school search, and `/v1/student/me/…` (see
//! [`crate::app::students`] for the submission's order of work).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shenfen_domain::code::{CodeCommand, CodeError, CodeEvent, ConsumeCode, Purpose};
use shenfen_domain::ids;
use shenfen_domain::shared::document::{DocumentNumber, DocumentType};
use shenfen_domain::shared::name::PersonName;
use shenfen_domain::student::{
    step, AttachMaterials, ClassName, Edit, EducationIdentity, Enrolment, Grade, Guardian, Material, Personal, Step,
    Student, StudentCommand, StudentNumber, StudentStatus, VerifyGuardian,
};
use utoipa::{IntoParams, ToSchema};

use crate::app::students::{self as app, StudentRegistration};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Ctx, MultipartForm, StudentHolder};
use crate::schools::School;
use crate::startup::AppState;
use crate::validate::{self, Errors};

/// A student's registration.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StudentRegistrationRequest {
    /// Must be `true`: the user agreement was accepted.
    pub agreement_accepted: Option<bool>,
    /// `G` + resident ID number, or `L`/`J` + 18 digits.
    #[schema(value_type = String)]
    pub student_number: Option<String>,
    #[schema(value_type = String, pattern = "^\\s*1[3-9][0-9]{9}\\s*$")]
    pub mobile: Option<String>,
    /// The code sent with purpose `student_register` to `mobile`.
    pub verification: Option<crate::routes::accounts::CodeInput>,
    #[schema(value_type = String, min_length = 8, max_length = 32)]
    pub password: Option<String>,
    #[schema(value_type = String)]
    pub password_confirmation: Option<String>,
    /// `student` or `guardian`: who registers.
    #[schema(value_type = crate::openapi::values::EducationIdentityName)]
    pub education_identity: Option<String>,
    /// The token of a solved CAPTCHA; required when the server has one (`SHENFEN_CAPTCHA`).
    pub captcha_token: Option<String>,
}

/// A registered student.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudentRegistered {
    pub student_id: String,
    /// The generated pass ID (通行证ID): log in with it or the student number.
    pub pass_id: String,
}

/// Registers a student number.
#[utoipa::path(post, operation_id = "student_register", path = "/v1/students", request_body = StudentRegistrationRequest, tag = "public",
    responses((status = 201, body = StudentRegistered),
              (status = 422, description = "agreement_required, invalid_student_number, student_number_registration_required, weak_password, password_mismatch, invalid_mobile, invalid_verification_code", body = crate::error::Problem),
              (status = 409, description = "student_number_already_registered", body = crate::error::Problem)))]
pub async fn register(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    AppJson(body): AppJson<StudentRegistrationRequest>,
) -> ApiResult<(StatusCode, Json<StudentRegistered>)> {
    let mut errors = Errors::default();
    if body.agreement_accepted != Some(true) {
        errors.add("agreement_accepted", "agreement_required");
    }
    let student_number = match body.student_number.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            errors.add("student_number", "student_number_registration_required");
            None
        }
        Some(raw) => StudentNumber::parse(raw).map_err(|e| errors.add("student_number", e.code())).ok(),
    };
    let mobile = validate::mobile(&mut errors, "mobile", &body.mobile);
    let code = crate::routes::accounts::parse_code(&mut errors, body.verification.as_ref());
    let password = validate::new_password(
        &mut errors,
        "password",
        &body.password,
        "password_confirmation",
        &body.password_confirmation,
        None,
    );
    let education_identity = match body.education_identity.as_deref().map(str::trim) {
        None | Some("student") => Some(EducationIdentity::Student),
        Some("guardian") => Some(EducationIdentity::Guardian),
        Some(_) => {
            errors.add("education_identity", "invalid_education_identity");
            None
        }
    };
    crate::captcha::require(state.captcha(), &mut errors, body.captcha_token.as_deref());
    errors.finish()?;
    crate::captcha::check(state.captcha(), body.captcha_token.as_deref()).await?;
    let (Some(student_number), Some(mobile), Some(code), Some(password), Some(education_identity)) =
        (student_number, mobile, code, password, education_identity)
    else {
        return Err(ApiError::internal("validated registration incomplete"));
    };
    let input =
        StudentRegistration { student_number, mobile: mobile.as_str().to_string(), code, password, education_identity };
    let (student_id, pass_id) = app::register(&state, &ctx, input).await?;
    Ok((StatusCode::CREATED, Json(StudentRegistered { student_id, pass_id: pass_id.as_str().to_string() })))
}

/// A student's credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StudentLoginRequest {
    /// The pass ID or the student number.
    #[schema(value_type = String, min_length = 1)]
    pub login: Option<String>,
    #[schema(value_type = String, min_length = 1)]
    pub password: Option<String>,
}

/// A new student session.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudentSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub student_id: String,
    pub pass_id: String,
    #[schema(value_type = crate::openapi::values::StudentStatusName)]
    pub status: String,
}

/// Logs a student in.
#[utoipa::path(post, operation_id = "student_log_in", path = "/v1/student-sessions", request_body = StudentLoginRequest, tag = "public",
    responses((status = 201, body = StudentSession),
              (status = 401, description = "login_failed", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem),
              (status = 423, description = "account_locked, with locked_until", body = crate::error::Problem)))]
pub async fn log_in(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    AppJson(body): AppJson<StudentLoginRequest>,
) -> ApiResult<(StatusCode, Json<StudentSession>)> {
    let begun = std::time::Instant::now();
    let mut errors = Errors::default();
    let login = errors.required("login", body.login.as_deref()).map(str::to_string);
    let password = errors.required("password", body.password.as_deref()).map(str::to_string);
    errors.finish()?;
    let (Some(login), Some(password)) = (login, password) else { return Err(app::login_failed()) };
    let logged_in = app::log_in(&state, &ctx, begun, &login, password).await?;
    let status = state.student_status(&logged_in.student, ctx.now).as_str().to_string();
    Ok((
        StatusCode::CREATED,
        Json(StudentSession {
            token: logged_in.token,
            expires_at: logged_in.expires_at,
            student_id: logged_in.student_id,
            pass_id: logged_in.student.pass_id.unwrap_or_default(),
            status,
        }),
    ))
}

/// A school search.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SchoolQuery {
    /// Part of the name, or the start of the code; at least 2 characters.
    #[param(min_length = 2)]
    pub q: String,
}

/// Finds schools by name or code (at most 20).
#[utoipa::path(get, operation_id = "search_schools", path = "/v1/schools", tag = "public", params(SchoolQuery),
    responses((status = 200, body = [School]), (status = 422, description = "query_too_short", body = crate::error::Problem)))]
pub async fn search_schools(
    State(state): State<Arc<AppState>>,
    Query(query): Query<SchoolQuery>,
) -> ApiResult<Json<Vec<School>>> {
    let q = query.q;
    if q.chars().count() < 2 {
        return Err(ApiError::field("q", "query_too_short"));
    }
    Ok(Json(state.schools.search(&q)))
}

/// The student's personal information.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PersonalInput {
    /// As in the household register.
    #[schema(value_type = String)]
    pub name: Option<String>,
    /// The student's resident ID number; a minor without one leaves it out (or gives the
    /// guardian's) and sets `minor_uses_guardian_id`.
    pub id_number: Option<String>,
    pub minor_uses_guardian_id: Option<bool>,
    #[schema(value_type = String, format = Date)]
    pub birth_date: Option<String>,
    pub email: Option<String>,
}

/// The enrolment: a school of the catalogue, grade and class.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentInput {
    #[schema(value_type = String)]
    pub school_code: Option<String>,
    #[schema(value_type = i64, minimum = 1, maximum = 12)]
    pub grade: Option<i64>,
    /// As the registry writes it, e.g. `3班`.
    #[schema(value_type = String)]
    pub class: Option<String>,
}

/// The guardian (监护人).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GuardianInput {
    #[schema(value_type = String)]
    pub name: Option<String>,
    #[schema(value_type = String)]
    pub id_number: Option<String>,
    #[schema(value_type = String, pattern = "^\\s*1[3-9][0-9]{9}\\s*$")]
    pub mobile: Option<String>,
    #[schema(value_type = String)]
    pub address: Option<String>,
}

/// Parts of the application; each part sent replaces the one held.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ApplicationInput {
    pub personal: Option<PersonalInput>,
    pub enrolment: Option<EnrolmentInput>,
    pub guardian: Option<GuardianInput>,
}

/// The application as the student filled it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    pub personal: Option<PersonalInput>,
    pub enrolment: Option<EnrolmentInput>,
    pub guardian: Option<GuardianInput>,
    /// The attached materials the stage asks for.
    pub materials: Vec<String>,
    pub guardian_verified: bool,
    /// What a submission still lacks, as `section.field` paths.
    pub missing: Vec<String>,
}

/// The student and where their verification stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudentView {
    pub student_id: String,
    pub pass_id: String,
    pub student_number: String,
    #[schema(value_type = crate::openapi::values::StudentStatusName)]
    pub status: String,
    pub application: ApplicationView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_by: Option<NaiveDate>,
    pub submissions_left_today: usize,
}

fn view(state: &AppState, student_id: &str, s: &Student, now: DateTime<Utc>) -> StudentView {
    let personal = s.personal.as_ref().map(|p| PersonalInput {
        name: Some(p.name.clone()),
        id_number: p.id_number.clone(),
        minor_uses_guardian_id: Some(p.minor_uses_guardian_id),
        birth_date: Some(p.birth_date.clone()),
        email: p.email.clone(),
    });
    let enrolment = s.enrolment.as_ref().map(|e| EnrolmentInput {
        school_code: Some(e.school_code.clone()),
        grade: Some(i64::from(e.grade.get())),
        class: Some(e.class.clone()),
    });
    let guardian = s.guardian.as_ref().map(|g| GuardianInput {
        name: Some(g.name.clone()),
        id_number: Some(g.id_number.clone()),
        mobile: Some(g.mobile.clone()),
        address: Some(g.address.clone()),
    });
    StudentView {
        student_id: student_id.to_string(),
        pass_id: s.pass_id.clone().unwrap_or_default(),
        student_number: s.student_number.clone().unwrap_or_default(),
        status: state.student_status(s, now).as_str().to_string(),
        application: ApplicationView {
            personal,
            enrolment,
            guardian,
            materials: s.material_names().into_iter().map(String::from).collect(),
            guardian_verified: s.guardian_is_verified(),
            missing: s.missing(),
        },
        return_reason: s.return_reason.clone(),
        registry_error: s.registry_error.map(|e| e.as_str().to_string()),
        due_by: s.review.as_ref().map(|r| r.due_by),
        submissions_left_today: s.submissions_left(now),
    }
}

/// The signed-in student.
#[utoipa::path(get, operation_id = "student_me", path = "/v1/student/me", tag = "students",
    responses((status = 200, body = StudentView), (status = 401, body = crate::error::Problem)))]
pub async fn me(State(state): State<Arc<AppState>>, ctx: Ctx, holder: StudentHolder) -> Json<StudentView> {
    Json(view(&state, &holder.student_id, holder.student(), ctx.now))
}

/// A resident ID number field (`invalid_id_number`).
fn id_number(errors: &mut Errors, field: &str, raw: &str, today: NaiveDate) -> Option<String> {
    match DocumentNumber::parse(DocumentType::ResidentIdCard, raw, today) {
        Ok(n) => Some(n.as_str().to_string()),
        Err(_) => {
            errors.add(field, "invalid_id_number");
            None
        }
    }
}

fn personal(errors: &mut Errors, p: &PersonalInput, today: NaiveDate) -> Option<Personal> {
    let name = validate::name(errors, "personal.name", &p.name).map(PersonName::into_string);
    let id_number = p
        .id_number
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|raw| id_number(errors, "personal.id_number", raw, today));
    let birth = errors.required("personal.birth_date", p.birth_date.as_deref());
    let birth_date = validate::date(errors, "personal.birth_date", birth);
    if birth_date.is_some_and(|d| d > today) {
        errors.add("personal.birth_date", "invalid_date");
    }
    let email =
        p.email.as_ref().filter(|e| !e.trim().is_empty()).map(|_| validate::email(errors, "personal.email", &p.email));
    let minor = p.minor_uses_guardian_id.unwrap_or(false);
    if id_number.is_none() && !minor {
        errors.add("personal.id_number", "required");
    }
    Some(Personal {
        name: name?,
        id_number: match id_number {
            Some(n) => Some(n?),
            None => None,
        },
        minor_uses_guardian_id: minor,
        birth_date: birth_date?.format("%Y-%m-%d").to_string(),
        email: match email {
            Some(e) => Some(e?.as_str().to_string()),
            None => None,
        },
    })
}

fn enrolment(state: &AppState, errors: &mut Errors, e: &EnrolmentInput) -> Option<Enrolment> {
    let school_code = errors.required("enrolment.school_code", e.school_code.as_deref()).map(|c| c.trim().to_string());
    if school_code.as_deref().is_some_and(|c| state.schools.get(c).is_none()) {
        errors.add("enrolment.school_code", "school_not_selectable");
    }
    let grade = match e.grade {
        None => {
            errors.add("enrolment.grade", "required");
            None
        }
        Some(g) => Grade::new(g).map_err(|err| errors.add("enrolment.grade", err.code())).ok(),
    };
    let class = errors
        .required("enrolment.class", e.class.as_deref())
        .and_then(|c| ClassName::parse(c).map_err(|err| errors.add("enrolment.class", err.code())).ok());
    Some(Enrolment { school_code: school_code?, grade: grade?, class: class?.as_str().to_string() })
}

fn guardian(errors: &mut Errors, g: &GuardianInput, today: NaiveDate) -> Option<Guardian> {
    let name = validate::name(errors, "guardian.name", &g.name).map(PersonName::into_string);
    let id = errors.required("guardian.id_number", g.id_number.as_deref()).map(str::to_string);
    let id = id.and_then(|raw| id_number(errors, "guardian.id_number", &raw, today));
    let mobile = validate::mobile(errors, "guardian.mobile", &g.mobile);
    let address = errors.required("guardian.address", g.address.as_deref()).map(|a| a.trim().to_string());
    if address.as_deref().is_some_and(|a| a.chars().count() > 200) {
        errors.add("guardian.address", "too_long");
    }
    Some(Guardian { name: name?, id_number: id?, mobile: mobile?.as_str().to_string(), address: address? })
}

/// Fills in or replaces parts of the application.
#[utoipa::path(put, operation_id = "student_edit_application", path = "/v1/student/me/application", request_body = ApplicationInput, tag = "students",
    responses((status = 200, body = StudentView), (status = 401, body = crate::error::Problem),
              (status = 409, description = "student_verification_pending, student_already_approved", body = crate::error::Problem),
              (status = 422, description = "invalid_name, invalid_id_number, minor_flag_required, school_not_selectable, invalid_grade, invalid_class, invalid_mobile, invalid_date, required", body = crate::error::Problem)))]
pub async fn edit_application(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
    AppJson(body): AppJson<ApplicationInput>,
) -> ApiResult<Json<StudentView>> {
    let today = shenfen_domain::time::cst_date(ctx.now);
    let mut errors = Errors::default();
    let personal = body.personal.as_ref().and_then(|p| personal(&mut errors, p, today));
    let enrolment = body.enrolment.as_ref().and_then(|e| enrolment(&state, &mut errors, e));
    let guardian = body.guardian.as_ref().and_then(|g| guardian(&mut errors, g, today));
    errors.finish()?;
    let command = StudentCommand::Edit(Edit { personal, enrolment, guardian, now: ctx.now });
    let committed = state
        .students
        .execute_from(&holder.student_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    Ok(Json(view(&state, &holder.student_id, &committed.state, ctx.now)))
}

/// The materials attached.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaterialsAttached {
    pub materials: Vec<String>,
    pub missing: Vec<String>,
}

/// The material parts: `household_register` (grades 1–9), or `id_front` and `id_back` (grades
/// 10–12); at least one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MaterialsForm {
    #[schema(format = Binary, value_type = Option<String>)]
    household_register: Option<Vec<u8>>,
    #[schema(format = Binary, value_type = Option<String>)]
    id_front: Option<Vec<u8>>,
    #[schema(format = Binary, value_type = Option<String>)]
    id_back: Option<Vec<u8>>,
}

/// Attaches identity material (JPEG parts under 1 MiB): `household_register` for grades 1–9,
/// `id_front` and `id_back` for grades 10–12.
#[utoipa::path(post, operation_id = "student_attach_materials", path = "/v1/student/me/application/materials", tag = "students",
    request_body(content = MaterialsForm, content_type = "multipart/form-data"),
    responses((status = 200, body = MaterialsAttached), (status = 401, body = crate::error::Problem),
              (status = 409, description = "enrolment_required, student_verification_pending, student_already_approved", body = crate::error::Problem),
              (status = 413, body = crate::error::Problem), (status = 415, body = crate::error::Problem),
              (status = 422, description = "material_wrong_for_stage, photo_not_jpeg, photo_too_large, photo_missing", body = crate::error::Problem)))]
pub async fn attach_materials(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
    mut form: MultipartForm,
) -> ApiResult<Json<MaterialsAttached>> {
    let mut errors = Errors::default();
    let mut parts = Vec::new();
    for material in Material::ALL {
        if let Some(bytes) = form.files.remove(material.as_str()) {
            match crate::routes::verification::check_photo(Some(bytes)) {
                Ok(bytes) => parts.push((material, bytes)),
                Err(code) => errors.add(material.as_str(), code),
            }
        }
    }
    if parts.is_empty() && errors.0.is_empty() {
        errors.add("materials", "photo_missing");
    }
    errors.finish()?;
    let mut materials = Vec::with_capacity(parts.len());
    for (material, bytes) in parts {
        let digest = state.blobs.put(bytes).await.map_err(ApiError::internal)?;
        materials.push((material, digest));
    }
    let command = StudentCommand::AttachMaterials(AttachMaterials { materials, now: ctx.now });
    let committed = state
        .students
        .execute_from(&holder.student_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    let s = &committed.state;
    Ok(Json(MaterialsAttached {
        materials: s.material_names().into_iter().map(String::from).collect(),
        missing: s.missing(),
    }))
}

/// The guardian's code and consent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GuardianVerificationRequest {
    /// The code sent with purpose `guardian_consent` to the guardian's mobile.
    #[schema(value_type = String, pattern = "^\\s*[0-9]{6}\\s*$")]
    pub code: Option<String>,
    /// Must be `true`: the guardian consents to the use of their mobile for verification.
    pub consent_accepted: Option<bool>,
}

/// The guardian is verified.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuardianVerified {
    pub guardian_verified: bool,
}

/// Confirms the guardian's mobile with the code sent to it, and records the guardian's consent
/// (the consent text's version and the time).
#[utoipa::path(post, operation_id = "student_verify_guardian", path = "/v1/student/me/guardian-verification", request_body = GuardianVerificationRequest, tag = "students",
    responses((status = 200, body = GuardianVerified), (status = 401, body = crate::error::Problem),
              (status = 409, description = "guardian_mobile_missing", body = crate::error::Problem),
              (status = 422, description = "guardian_consent_required, invalid_verification_code", body = crate::error::Problem)))]
pub async fn verify_guardian(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
    AppJson(body): AppJson<GuardianVerificationRequest>,
) -> ApiResult<Json<GuardianVerified>> {
    let mut errors = Errors::default();
    if body.consent_accepted != Some(true) {
        errors.add("consent_accepted", "guardian_consent_required");
    }
    let code = errors.required("code", body.code.as_deref()).map(|c| c.trim().to_string());
    errors.finish()?;
    let Some(guardian) = holder.student().guardian.clone() else {
        return Err(ApiError::from(shenfen_domain::student::StudentError::GuardianMobileMissing));
    };
    let channel_id = ids::code_channel_id(&state.key, Purpose::GuardianConsent.as_str(), &guardian.mobile);
    let code_hash = ids::code_hash(&state.key, &channel_id, &code.unwrap_or_default());
    let consume = CodeCommand::Consume(ConsumeCode { code_hash, claimant: holder.student_id.clone(), now: ctx.now });
    let consumed = state.codes.execute(&channel_id, consume, &ctx.meta(holder.actor())).await?;
    if consumed.events.iter().any(|e| matches!(e, CodeEvent::WrongEntry { .. })) {
        return Err(ApiError::field("code", CodeError::Invalid.code()));
    }
    let command = StudentCommand::VerifyGuardian(VerifyGuardian {
        mobile: guardian.mobile.clone(),
        consent_version: state.settings.guardian_consent_version.clone(),
        now: ctx.now,
    });
    let committed = state.students.execute(&holder.student_id, command, &ctx.meta(holder.actor())).await?;
    Ok(Json(GuardianVerified { guardian_verified: committed.state.guardian_is_verified() }))
}

/// The school's confirmation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubmissionRequest {
    /// Must be `true`: the student confirms the school chosen.
    pub school_confirmed: Option<bool>,
}

/// Where a submission led.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmissionOutcome {
    #[schema(value_type = crate::openapi::values::StudentStatusName)]
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_by: Option<NaiveDate>,
    pub submissions_left_today: usize,
}

fn outcome(state: &AppState, s: &Student, now: DateTime<Utc>) -> SubmissionOutcome {
    SubmissionOutcome {
        status: state.student_status(s, now).as_str().to_string(),
        registry_error: s.registry_error.map(|e| e.as_str().to_string()),
        due_by: s.review.as_ref().map(|r| r.due_by),
        submissions_left_today: s.submissions_left(now),
    }
}

/// Submits the application: counted (3 per China day), then compared with the student
/// registry.
#[utoipa::path(post, operation_id = "student_submit", path = "/v1/student/me/application/submission", request_body = SubmissionRequest, tag = "students",
    responses((status = 200, body = SubmissionOutcome), (status = 401, body = crate::error::Problem),
              (status = 409, description = "application_incomplete (with missing), guardian_not_verified, school_not_filed, student_verification_pending, student_already_approved, school_action_required", body = crate::error::Problem),
              (status = 422, description = "school_confirmation_required", body = crate::error::Problem),
              (status = 429, description = "daily_submissions_exhausted, with next_attempt_at", body = crate::error::Problem),
              (status = 503, description = "student_registry_unavailable: nothing counted", body = crate::error::Problem)))]
pub async fn submit(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
    AppJson(body): AppJson<SubmissionRequest>,
) -> ApiResult<Json<SubmissionOutcome>> {
    if body.school_confirmed != Some(true) {
        return Err(ApiError::field("school_confirmed", "school_confirmation_required"));
    }
    let committed = app::submit(&state, &ctx, &holder.student_id).await?;
    Ok(Json(outcome(&state, &committed.state, ctx.now)))
}

/// A semester's reconfirmation: `unchanged: true`, or a new enrolment.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReconfirmationRequest {
    pub unchanged: Option<bool>,
    pub enrolment: Option<EnrolmentInput>,
}

/// The status after a reconfirmation.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudentStatusView {
    #[schema(value_type = crate::openapi::values::StudentStatusName)]
    pub status: String,
}

/// Reconfirms the enrolment for the semester in course (学期确认).
#[utoipa::path(post, operation_id = "student_reconfirm", path = "/v1/student/me/reconfirmation", request_body = ReconfirmationRequest, tag = "students",
    responses((status = 200, body = StudentStatusView), (status = 401, body = crate::error::Problem),
              (status = 409, description = "reconfirmation_not_due, student_verification_pending", body = crate::error::Problem),
              (status = 422, description = "reconfirmation_required (neither unchanged nor an enrolment), enrolment field errors, material_wrong_for_stage", body = crate::error::Problem),
              (status = 429, description = "daily_submissions_exhausted", body = crate::error::Problem),
              (status = 503, description = "student_registry_unavailable", body = crate::error::Problem)))]
pub async fn reconfirm(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
    AppJson(body): AppJson<ReconfirmationRequest>,
) -> ApiResult<Json<StudentStatusView>> {
    let mut errors = Errors::default();
    let enrolment = match (&body.unchanged, &body.enrolment) {
        (_, Some(e)) => enrolment(&state, &mut errors, e),
        (Some(true), None) => None,
        _ => {
            errors.add("unchanged", "reconfirmation_required");
            None
        }
    };
    errors.finish()?;
    let committed = app::reconfirm(&state, &ctx, &holder.student_id, enrolment).await?;
    let status = state.student_status(&committed.state, ctx.now).as_str().to_string();
    Ok(Json(StudentStatusView { status }))
}

/// One step of the progress timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineStep {
    pub at: DateTime<Utc>,
    /// `draft`, `submitted`, `submission_voided`, `approved`, `pending_head_teacher`,
    /// `returned`, `registry_failed`, `registry_refreshed`, `registry_linked`.
    pub status: String,
    /// `student`, `system`, `head_teacher` or `school_admin`.
    pub actor_role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The progress timeline (实名认证进度), oldest first, from the student's events.
#[utoipa::path(get, operation_id = "student_timeline", path = "/v1/student/me/timeline", tag = "students",
    responses((status = 200, body = [TimelineStep]), (status = 401, body = crate::error::Problem)))]
pub async fn timeline(State(state): State<Arc<AppState>>, holder: StudentHolder) -> ApiResult<Json<Vec<TimelineStep>>> {
    let events = state.students.events(&holder.student_id).await?;
    let steps = events
        .iter()
        .filter_map(step)
        .map(|Step { at, status, actor_role, reason }| TimelineStep {
            at,
            status: status.to_string(),
            actor_role: actor_role.to_string(),
            reason,
        })
        .collect();
    Ok(Json(steps))
}

/// The student may use what needs a verified student.
#[derive(Debug, Serialize, ToSchema)]
pub struct Eligibility {
    pub eligible: bool,
}

/// Whether the student is verified for this semester.
#[utoipa::path(get, operation_id = "student_eligibility", path = "/v1/student/me/eligibility", tag = "students",
    responses((status = 200, body = Eligibility), (status = 401, body = crate::error::Problem),
              (status = 403, description = "student_verification_required, reconfirmation_required", body = crate::error::Problem)))]
pub async fn eligibility(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
) -> ApiResult<Json<Eligibility>> {
    match state.student_status(holder.student(), ctx.now) {
        StudentStatus::Approved => Ok(Json(Eligibility { eligible: true })),
        StudentStatus::ReconfirmationRequired => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "reconfirmation_required",
            "Confirm your enrolment for this semester first.",
            "请先完成本学期学籍信息确认。",
        )),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "student_verification_required",
            "Complete student identity verification first.",
            "请先完成学生身份认证。",
        )),
    }
}

/// The student's password, for a deletion.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StudentDeletionRequest {
    #[schema(value_type = String, min_length = 1)]
    pub password: Option<String>,
}

/// When the deletion falls due.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudentDeletionScheduled {
    pub effective_at: DateTime<Utc>,
}

/// Asks for the student's deletion (注销) with the password: after the cooling-off period
/// (`SHENFEN_DELETION_COOLING_OFF_DAYS`; a login or `DELETE` withdraws it) the student's key is
/// destroyed, their sessions end, their materials are deleted, and the student number may
/// register anew.
#[utoipa::path(post, operation_id = "student_request_deletion", path = "/v1/student/me/deletion", request_body = StudentDeletionRequest, tag = "students",
    responses((status = 202, body = StudentDeletionScheduled), (status = 401, description = "unauthenticated, login_failed (a wrong password, counted as a failed login)", body = crate::error::Problem),
              (status = 423, description = "account_locked", body = crate::error::Problem)))]
pub async fn request_deletion(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
    AppJson(body): AppJson<StudentDeletionRequest>,
) -> ApiResult<(StatusCode, Json<StudentDeletionScheduled>)> {
    let mut errors = Errors::default();
    let password = errors.required("password", body.password.as_deref()).map(str::to_string);
    errors.finish()?;
    let effective_at = app::request_deletion(&state, &ctx, &holder, password.unwrap_or_default()).await?;
    Ok((StatusCode::ACCEPTED, Json(StudentDeletionScheduled { effective_at })))
}

/// Withdraws the student's pending deletion.
#[utoipa::path(delete, operation_id = "student_cancel_deletion", path = "/v1/student/me/deletion", tag = "students",
    responses((status = 204), (status = 401, body = crate::error::Problem),
              (status = 409, description = "no_deletion_pending", body = crate::error::Problem)))]
pub async fn cancel_deletion(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
) -> ApiResult<StatusCode> {
    let command = StudentCommand::CancelDeletion(shenfen_domain::student::CancelDeletion { now: ctx.now });
    state
        .students
        .execute_from(&holder.student_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A copy of everything held about the student, as a zip: the student and application, every
/// event with its actors (school staff by role), the materials.
#[utoipa::path(get, operation_id = "student_export", path = "/v1/student/me/export", tag = "students",
    responses((status = 200, description = "a zip archive", content_type = "application/zip"),
              (status = 401, body = crate::error::Problem)))]
pub async fn export(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    holder: StudentHolder,
) -> ApiResult<impl axum::response::IntoResponse> {
    let bytes = crate::app::export::student_archive(&state, &holder.student_id, holder.student(), ctx.now).await?;
    tracing::info!(student_id = %holder.student_id, "student data exported");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/zip"),
            (axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"shenfen-student-export.zip\""),
            (axum::http::header::CACHE_CONTROL, "private, no-store"),
        ],
        bytes,
    ))
}
