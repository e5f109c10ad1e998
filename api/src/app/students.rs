//! Student identity verification (学生身份认证): registration by student number, login by pass
//! ID or student number, and the submissions that ask the student registry.
//!
//! A submission is recorded on the student's stream before the registry is called (so the
//! registry is asked at most once per counted submission, and the daily quota is the
//! stream's); then the answer is recorded. An unavailable registry voids the submission (it
//! counts nothing) and is answered 503. A difference sends the application to the class's head
//! teacher, told by SMS through the outbox in the same transaction as the event.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use shenfen_domain::account::{Consent, NewSession};
use shenfen_domain::code::{CodeCommand, CodeError, CodeEvent, ConsumeCode, Purpose};
use shenfen_domain::ids;
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::student::pass::AssignPassId;
use shenfen_domain::student::{
    EducationIdentity, Enrolment, LogIn, PassId, Recompare, Reconfirm, RecordRegistryAnswer, Register, RegistryAnswer,
    Scope, Student, StudentCommand, StudentError, StudentEvent, StudentNumber, Submit,
};
use shenfen_projections::outbox::NewMessage;
use shenfen_projections::store::{CommitOptions, Committed};
use shenfen_projections::students::Students;

use crate::error::{ApiError, ApiResult};
use crate::extract::Ctx;
use crate::startup::AppState;

/// How long the registry is waited for (its adapters bound themselves too); then it counts as
/// unavailable.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many pass IDs are drawn before a registration gives up (each draw is 1 in 10^11).
const PASS_ID_DRAWS: usize = 8;
/// Working days a head teacher has for a review.
pub const REVIEW_WORKING_DAYS: u32 = 2;

/// A registration as validated: everything but the password's hash.
pub struct StudentRegistration {
    pub student_number: StudentNumber,
    pub mobile: String,
    pub code: String,
    pub password: String,
    pub education_identity: EducationIdentity,
}

/// Registers a student number: the code sent to the mobile is used first (so nobody learns
/// which student numbers are registered without a code of their own), then a pass ID is drawn
/// and made the student's, then the student aggregate decides.
pub async fn register(state: &AppState, ctx: &Ctx, input: StudentRegistration) -> ApiResult<(String, PassId)> {
    let student_id = ids::student_id(&state.key, &input.student_number);
    let channel_id = ids::code_channel_id(&state.key, Purpose::StudentRegister.as_str(), &input.mobile);
    let code_hash = ids::code_hash(&state.key, &channel_id, &input.code);
    let meta = ctx.meta(Actor::Anonymous);
    let command = CodeCommand::Consume(ConsumeCode { code_hash, claimant: student_id.clone(), now: ctx.now });
    let committed = state.codes.execute(&channel_id, command, &meta).await?;
    if committed.events.iter().any(|e| matches!(e, CodeEvent::WrongEntry { .. })) {
        return Err(ApiError::from(CodeError::Invalid));
    }
    if state.students.load(&student_id).await?.exists() {
        return Err(ApiError::from(StudentError::AlreadyRegistered));
    }
    let password_hash = state.hashing.hash(input.password).await.map_err(ApiError::internal)?;
    let pass_id = draw_pass_id(state, &student_id, &input.mobile, &input.student_number, &meta).await?;
    let consent = Consent { agreement_version: state.settings.agreement_version.clone(), accepted_at: ctx.now };
    let command = StudentCommand::Register(Register {
        student_number: input.student_number,
        pass_id: pass_id.clone(),
        mobile: input.mobile,
        password_hash,
        education_identity: input.education_identity,
        consent,
        now: ctx.now,
    });
    let committed = state.students.execute(&student_id, command, &meta).await?;
    state.caught_up_after(&committed, &[Students::NAME]).await;
    tracing::info!(student_id = %student_id, "student registered");
    Ok((student_id, pass_id))
}

/// Draws pass IDs until one is admissible and free, and makes it the student's.
async fn draw_pass_id(
    state: &AppState,
    student_id: &str,
    mobile: &str,
    number: &StudentNumber,
    meta: &EventMetadata,
) -> ApiResult<PassId> {
    use rand::Rng;
    for _ in 0..PASS_ID_DRAWS {
        let digits = format!("{:011}", rand::thread_rng().gen_range(10_000_000_000u64..100_000_000_000));
        let Some(pass_id) = PassId::admissible(&digits, mobile, number) else { continue };
        let stream = ids::pass_id_stream(&state.key, &pass_id);
        let command = AssignPassId { student_id: student_id.to_string(), now: meta.at };
        match state.pass_ids.execute(&stream, command, meta).await {
            Ok(_) => return Ok(pass_id),
            // Taken: draw again.
            Err(shenfen_projections::store::BusError::Domain(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::internal("no free pass ID after several draws"))
}

/// 401 `login_failed`: wrong pass ID, student number or password (never which).
pub fn login_failed() -> ApiError {
    ApiError::from(StudentError::NotFound)
}

/// The student a login names (a pass ID or a student number), if registered.
async fn student_of_login(state: &AppState, login: &str) -> ApiResult<Option<String>> {
    if let Some(pass_id) = PassId::parse(login) {
        let owner = state.pass_ids.load(&ids::pass_id_stream(&state.key, &pass_id)).await?;
        let Some(student_id) = owner.student_id else { return Ok(None) };
        let student = state.students.load(&student_id).await?;
        // A pass ID drawn by a registration that then failed names no one.
        return Ok((student.pass_id.as_deref() == Some(pass_id.as_str())).then_some(student_id));
    }
    let Ok(number) = StudentNumber::parse(login) else { return Ok(None) };
    let student_id = ids::student_id(&state.key, &number);
    Ok(state.students.load(&student_id).await?.exists().then_some(student_id))
}

/// A started student session.
pub struct StudentLoggedIn {
    pub student_id: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub student: Student,
}

/// Logs a student in with the accounts' lockout; an unknown login costs a dummy verification
/// and is answered no sooner than a known one's failure.
pub async fn log_in(
    state: &AppState,
    ctx: &Ctx,
    begun: Instant,
    login: &str,
    password: String,
) -> ApiResult<StudentLoggedIn> {
    let Some(student_id) = student_of_login(state, login).await? else {
        state.hashing.verify_dummy(password).await.map_err(ApiError::internal)?;
        state.failed_logins.answer_after(begun).await;
        return Err(login_failed());
    };
    for _ in 0..4 {
        let loaded = state.students.load_current(&student_id).await?.loaded;
        if let Some(until) = loaded.state.lockout.locked_at(ctx.now) {
            return Err(ApiError::from(StudentError::Locked { until }));
        }
        let Some(hash) = loaded.state.password_hash.clone() else { return Err(login_failed()) };
        let token = crate::crypto::student_token(&student_id);
        let session = NewSession {
            session_id: uuid::Uuid::new_v4().to_string(),
            token_hash: ids::token_hash(&token),
            expires_at: ctx.now + chrono::Duration::seconds(state.settings.session_ttl_seconds),
        };
        let password = super::password::check(state, password.clone(), hash, || async { Ok(session) }).await?;
        let command = StudentCommand::LogIn(LogIn { password, now: ctx.now });
        let committed =
            match state.students.execute_from(&student_id, Some(loaded), command, &ctx.meta(Actor::Anonymous)).await {
                Err(shenfen_projections::store::BusError::Domain(StudentError::StaleCredentials)) => continue,
                other => other?,
            };
        let started = committed.events.iter().find_map(|e| match e {
            StudentEvent::SessionStarted { expires_at, .. } => Some(*expires_at),
            _ => None,
        });
        let Some(expires_at) = started else {
            state.failed_logins.record(begun.elapsed());
            state.failed_logins.answer_after(begun).await;
            return Err(login_failed());
        };
        return Ok(StudentLoggedIn { student_id, token, expires_at, student: committed.state });
    }
    Err(ApiError::from(StudentError::StaleCredentials))
}

/// The head teacher's deadline for a submission made at `at`: two working days after its
/// China day.
pub fn review_due_by(state: &AppState, at: DateTime<Utc>) -> NaiveDate {
    state.calendar.add_working_days(shenfen_domain::time::cst_date(at), REVIEW_WORKING_DAYS)
}

/// Asks the registry about `number`, bounded.
async fn lookup(state: &AppState, number: &StudentNumber) -> RegistryAnswer {
    let answer = tokio::time::timeout(REGISTRY_TIMEOUT, state.student_registry.lookup(number))
        .await
        .unwrap_or(RegistryAnswer::Unavailable);
    metrics::counter!("shenfen_student_registry_answers_total", "result" => match &answer {
        RegistryAnswer::Found(_) => "found",
        RegistryAnswer::NotFound => "not_found",
        RegistryAnswer::SchoolNotSynced => "school_not_synced",
        RegistryAnswer::Unavailable => "unavailable",
    })
    .increment(1);
    answer
}

/// The SMS to the head teacher that a record which differs will call for.
fn head_teacher_sms(answer: &RegistryAnswer, pass_id: &str, now: DateTime<Utc>, due_by: NaiveDate) -> Vec<NewMessage> {
    let RegistryAnswer::Found(record) = answer else { return Vec::new() };
    vec![NewMessage {
        channel: "sms".into(),
        destination: record.head_teacher_mobile.clone(),
        purpose: "student_review_pending".into(),
        body: serde_json::json!({ "pass_id": pass_id, "due_by": due_by }).to_string(),
        created_at: now,
        expires_at: now + chrono::Duration::days(7),
    }]
}

/// Commits a comparison's outcome with the head teacher's SMS it may call for (queued only
/// with `SentToHeadTeacher`), and waits for the queues to have it.
async fn commit_comparison(
    state: &AppState,
    student_id: &str,
    command: StudentCommand,
    messages: Vec<NewMessage>,
    meta: &EventMetadata,
) -> ApiResult<Committed<Student>> {
    let options = CommitOptions { messages, messages_with: Some("SentToHeadTeacher"), ..CommitOptions::default() };
    let committed = state.students.execute_with(student_id, None, &|_| true, command, meta, options).await?;
    state.outbox_wake.notify_one();
    state.caught_up_after(&committed, &[Students::NAME]).await;
    Ok(committed)
}

/// A new review id.
fn review_id() -> String {
    format!("srv_{}", uuid::Uuid::new_v4().simple())
}

/// Whether the catalogue has `enrolment`'s school as filed (备案).
fn school_filed(state: &AppState, enrolment: Option<&Enrolment>) -> bool {
    enrolment.and_then(|e| state.schools.get(&e.school_code)).is_some_and(|s| s.filed)
}

/// Records the registry's answer for the submission in flight on `student` (the state that
/// recorded it); an unavailable registry voids it and is answered 503
/// `student_registry_unavailable`.
async fn record_answer(
    state: &AppState,
    ctx: &Ctx,
    student_id: &str,
    student: &Student,
    submission_id: String,
    meta: &EventMetadata,
) -> ApiResult<Committed<Student>> {
    let answer = lookup(state, &registry_number(student)?).await;
    let now = state.clock.now();
    let due_by = review_due_by(state, ctx.now);
    let unavailable = answer == RegistryAnswer::Unavailable;
    let messages = head_teacher_sms(&answer, student.pass_id.as_deref().unwrap_or_default(), now, due_by);
    let command = StudentCommand::RecordRegistryAnswer(RecordRegistryAnswer {
        submission_id,
        answer,
        review_id: review_id(),
        due_by,
        now,
    });
    let committed = commit_comparison(state, student_id, command, messages, meta).await?;
    if unavailable {
        return Err(ApiError::from(StudentError::RegistryUnavailable));
    }
    Ok(committed)
}

/// The student number the registry is asked about: the one a school admin linked, else the
/// registered one.
fn registry_number(student: &Student) -> ApiResult<StudentNumber> {
    let number = student.registry_number().unwrap_or_default();
    StudentNumber::parse(number).map_err(|_| ApiError::internal("a student without a valid student number"))
}

/// Submits the student's application and records the registry's answer.
pub async fn submit(state: &AppState, ctx: &Ctx, student_id: &str) -> ApiResult<Committed<Student>> {
    let meta = ctx.meta(Actor::Student { id: student_id.to_string() });
    let student = state.students.load(student_id).await?;
    let submission_id = uuid::Uuid::new_v4().to_string();
    let command = StudentCommand::Submit(Submit {
        submission_id: submission_id.clone(),
        school_filed: school_filed(state, student.enrolment.as_ref()),
        abandon_before: ctx.now - shenfen_domain::student::abandon_after(),
        now: ctx.now,
    });
    let submitted = state.students.execute(student_id, command, &meta).await?;
    let committed = record_answer(state, ctx, student_id, &submitted.state, submission_id, &meta).await?;
    tracing::info!(student_id = %student_id, status = committed.state.status.as_str(), "student submission");
    Ok(committed)
}

/// Reconfirms an approved student for the semester in course: unchanged, or with a new
/// enrolment, which is submitted and compared again.
pub async fn reconfirm(
    state: &AppState,
    ctx: &Ctx,
    student_id: &str,
    enrolment: Option<Enrolment>,
) -> ApiResult<Committed<Student>> {
    let meta = ctx.meta(Actor::Student { id: student_id.to_string() });
    let submission_id = uuid::Uuid::new_v4().to_string();
    let command = StudentCommand::Reconfirm(Reconfirm {
        school_filed: school_filed(state, enrolment.as_ref()),
        enrolment,
        submission_id: submission_id.clone(),
        semester_start: state.semesters.current_start(ctx.now),
        now: ctx.now,
    });
    let committed = state.students.execute(student_id, command, &meta).await?;
    if !committed.events.iter().any(|e| matches!(e, StudentEvent::Submitted { .. })) {
        state.caught_up_after(&committed, &[Students::NAME]).await;
        return Ok(committed);
    }
    record_answer(state, ctx, student_id, &committed.state, submission_id, &meta).await
}

/// A school admin runs the comparison again, against the registered student number or the
/// one linked (`link`).
pub async fn recompare(
    state: &AppState,
    ctx: &Ctx,
    student_id: &str,
    staff_id: &str,
    scope: Scope,
    link: Option<StudentNumber>,
    meta: &EventMetadata,
) -> ApiResult<Committed<Student>> {
    let student = state.students.load(student_id).await?;
    if !student.exists() {
        return Err(ApiError::from(StudentError::ReviewNotFound));
    }
    let number = match &link {
        Some(number) => number.clone(),
        None => registry_number(&student)?,
    };
    let answer = lookup(state, &number).await;
    let due_by = review_due_by(state, ctx.now);
    let messages = head_teacher_sms(&answer, student.pass_id.as_deref().unwrap_or_default(), ctx.now, due_by);
    let command = StudentCommand::Recompare(Recompare {
        staff_id: staff_id.to_string(),
        scope,
        link,
        answer,
        review_id: review_id(),
        due_by,
        now: ctx.now,
    });
    commit_comparison(state, student_id, command, messages, meta).await
}

/// Asks for the student's deletion (注销) with their password, after the same cooling-off
/// period as an account's (`SHENFEN_DELETION_COOLING_OFF_DAYS`); `0` erases at once. Returns
/// when it falls due.
pub async fn request_deletion(
    state: &AppState,
    ctx: &Ctx,
    holder: &crate::extract::StudentHolder,
    password: String,
) -> ApiResult<DateTime<Utc>> {
    let effective_at = ctx.now + chrono::Duration::days(i64::from(state.settings.deletion_cooling_off_days));
    let student = holder.student();
    if let Some(until) = student.lockout.locked_at(ctx.now) {
        return Err(ApiError::from(StudentError::Locked { until }));
    }
    let hash = student.password_hash.clone().ok_or_else(|| ApiError::internal("a student without a password"))?;
    let checked = super::password::check(state, password, hash, || async { Ok(effective_at) }).await?;
    let command =
        StudentCommand::RequestDeletion(shenfen_domain::student::RequestDeletion { password: checked, now: ctx.now });
    let committed = state
        .students
        .execute_from(&holder.student_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    if committed.events.iter().any(|e| matches!(e, StudentEvent::LoginFailed { .. })) {
        return Err(ApiError::wrong_current_password());
    }
    let due = committed.state.deletion_effective_at.unwrap_or(effective_at);
    if due <= ctx.now {
        erase(state, &holder.student_id, ctx.now).await?;
    } else {
        state.caught_up_after(&committed, &[Students::NAME]).await;
    }
    Ok(due)
}

/// Erases a student whose deletion fell due (nothing when it was withdrawn or is done): the
/// `Erased` event, then the student's keys destroyed (journalled) and their materials deleted.
pub async fn erase(state: &AppState, student_id: &str, now: DateTime<Utc>) -> ApiResult<()> {
    let meta = EventMetadata { actor: Actor::System { id: "erasure".into() }, request_id: String::new(), at: now };
    let key_version = state.keyring().latest_version(student_id).await.map_err(ApiError::internal)?;
    let command = StudentCommand::Erase(shenfen_domain::student::Erase { key_version, reapplied: false, now });
    match state.students.execute(student_id, command, &meta).await {
        Ok(committed) => state.caught_up_after(&committed, &[Students::NAME]).await,
        Err(shenfen_projections::store::BusError::Domain(StudentError::NoDeletionPending)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let journal = super::erasure::journal_path(&state.settings.secret_key_file);
    forget(state.keyring(), &state.db, &state.blobs, &journal, student_id, key_version, now)
        .await
        .map_err(ApiError::internal)?;
    let _ = state.students.load_uncached(student_id).await;
    Ok(())
}

/// A student erasure's side effects, each idempotent: the keys destroyed (journalled first), the
/// materials deleted. Run by whoever erased and again by the erasure process manager.
pub async fn forget(
    keyring: &shenfen_projections::pii::Keyring,
    db: &shenfen_projections::db::Db,
    blobs: &crate::blobs::BlobStore,
    journal: &std::path::Path,
    student_id: &str,
    key_version: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    super::erasure::destroy_keys(keyring, journal, student_id, key_version, now).await?;
    let stream = shenfen_projections::audit::history(db, "student", student_id).await?;
    let digests = stream.iter().filter_map(|e| e.payload.get("MaterialAttached")?.get("digest")?.as_str());
    for digest in digests {
        blobs.delete(digest).await?;
    }
    Ok(())
}

/// Erases the students whose deletion fell due at `now` (a failed one is tried again next round).
pub async fn erase_due(state: &AppState, now: DateTime<Utc>) {
    match Students::due_deletions(&state.db, now, 100).await {
        Ok(due) => {
            for student_id in due {
                if let Err(e) = erase(state, &student_id, now).await {
                    tracing::error!(code = %e.code, "a student erasure failed; it is tried again");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "reading the students' due deletions failed"),
    }
}
