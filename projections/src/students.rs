//! `students`: one row per student, for the school staff's queues (head teachers: their class's
//! pending reviews; school admins: their school's pending and failed ones, oldest due first) and
//! their searches by pass ID or student number; and `analytics_student_verifications`, the
//! analyst table per school and China day. Whether a review is overdue is read off the clock,
//! not stored.
//!
//! Counting: `submitted` counts the students' own submissions that reached the registry (an
//! unavailable registry's voided ones are not counted, nor a school admin's refresh or link),
//! and `auto_approved` and `registry_failed` the outcomes of those submissions only, so that
//! the rates compare like with like; the head teachers' decisions are all counted. Each on the
//! day and school it happened in.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use shenfen_domain::shared::ERASED;
use shenfen_domain::student::{ClassName, Student, StudentEvent};
use shenfen_domain::time::cst_date;

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct Students;

const STUDENT: &str = <Student as cqrs_es::Aggregate>::TYPE;

/// One student as school staff see them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StudentRow {
    pub student_id: String,
    pub pass_id: String,
    pub student_number: String,
    pub name: String,
    pub school_code: String,
    pub grade: i32,
    pub class: String,
    pub status: String,
    pub review_id: Option<String>,
    /// JSON array.
    pub differences: String,
    pub submitted_at: Option<DateTime<Utc>>,
    pub due_by: Option<NaiveDate>,
    pub registry_error: Option<String>,
}

impl StudentRow {
    /// The fields that differ from the registry's record.
    pub fn differences(&self) -> Vec<String> {
        serde_json::from_str(&self.differences).unwrap_or_default()
    }

    /// Whether the review is late at `today` (China date): pending after its due day.
    pub fn overdue_on(&self, today: NaiveDate) -> bool {
        self.status == "pending_head_teacher" && self.due_by.is_some_and(|due| today > due)
    }
}

/// One row of the analyst table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StudentVerificationDay {
    pub school_code: String,
    pub day: NaiveDate,
    pub submitted: i32,
    pub auto_approved: i32,
    pub head_teacher_approved: i32,
    pub returned: i32,
    pub registry_failed: i32,
}

const COLUMNS: &str = "student_id, pass_id, student_number, name, school_code, grade, class, status, review_id,
    differences, submitted_at, due_by, registry_error";

impl Students {
    /// The projection's name.
    pub const NAME: &'static str = "students";

    /// The pending reviews of one class (a head teacher's queue), oldest due first.
    pub async fn class_queue(
        db: &Db,
        school_code: &str,
        grade: i32,
        class: &str,
        limit: i64,
    ) -> Result<Vec<StudentRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM students
              WHERE school_code = $1 AND grade = $2 AND class = $3 AND status = 'pending_head_teacher'
              ORDER BY due_by, submitted_at, student_id LIMIT $4"
        );
        crate::fetch_all!(db, StudentRow, &sql, school_code, grade, ClassName::normalise(class), limit)
    }

    /// The pending and failed applications of one school (a school admin's queue), oldest due
    /// first, failed ones (which have no due day) after.
    pub async fn school_queue(db: &Db, school_code: &str, limit: i64) -> Result<Vec<StudentRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM students
              WHERE school_code = $1 AND status IN ('pending_head_teacher', 'registry_failed')
              ORDER BY CASE WHEN due_by IS NULL THEN 1 ELSE 0 END, due_by, submitted_at, student_id LIMIT $2"
        );
        crate::fetch_all!(db, StudentRow, &sql, school_code, limit)
    }

    /// The school's students whose pass ID or student number is `q` (case-blind).
    pub async fn search(db: &Db, school_code: &str, q: &str, limit: i64) -> Result<Vec<StudentRow>, sqlx::Error> {
        let q = q.trim().to_uppercase();
        let sql = format!(
            "SELECT {COLUMNS} FROM students WHERE school_code = $1 AND (pass_id = $2 OR student_number = $2)
                AND status <> 'erased'
              ORDER BY student_id LIMIT $3"
        );
        crate::fetch_all!(db, StudentRow, &sql, school_code, q, limit)
    }

    /// The row of the student whose review this is.
    pub async fn by_review(db: &Db, review_id: &str) -> Result<Option<StudentRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM students WHERE review_id = $1");
        crate::fetch_optional!(db, StudentRow, &sql, review_id)
    }

    /// The students whose deletion is due at `now`, earliest first (at most `limit`).
    pub async fn due_deletions(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> =
            crate::fetch_all!(db, (String,),
            "SELECT student_id FROM students WHERE deletion_effective_at <= $1 ORDER BY deletion_effective_at LIMIT $2",
            now, limit)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The analyst table between two China days (inclusive), by day then school.
    pub async fn verifications(
        db: &Db,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StudentVerificationDay>, sqlx::Error> {
        crate::fetch_all!(
            db,
            StudentVerificationDay,
            "SELECT school_code, day, submitted, auto_approved, head_teacher_approved, returned, registry_failed
               FROM analytics_student_verifications WHERE day >= $1 AND day <= $2 ORDER BY day, school_code",
            from,
            to
        )
    }
}

/// Adds one to `column` for `school_code` on the China day of `at` (and to `submitted` when
/// `submission` is true), in one statement.
async fn count(
    tx: &mut DbTx,
    school_code: &str,
    at: DateTime<Utc>,
    column: Option<&'static str>,
    submission: bool,
) -> Result<(), sqlx::Error> {
    let (insert, add) = match column {
        Some(column) => (format!(", {column}"), format!(", {column} = analytics_student_verifications.{column} + 1")),
        None => (String::new(), String::new()),
    };
    let one = if column.is_some() { ", 1" } else { "" };
    let sql = format!(
        "INSERT INTO analytics_student_verifications (school_code, day, submitted{insert}) VALUES ($1, $2, $3{one})
         ON CONFLICT (school_code, day)
         DO UPDATE SET submitted = analytics_student_verifications.submitted + excluded.submitted{add}"
    );
    exec!(tx tx, &sql, school_code, cst_date(at), i32::from(submission))?;
    Ok(())
}

/// Whom the next comparison outcome answers (`student`, `school`, or nobody).
async fn comparing_for(tx: &mut DbTx, id: &str, whom: Option<&str>, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    exec!(tx tx, "UPDATE students SET comparing_for = $1, updated_at = $2 WHERE student_id = $3", whom, at, id)?;
    Ok(())
}

/// The student's school and whether the outcome being applied answers the student's own
/// submission (read before the outcome clears it).
async fn outcome_context(tx: &mut DbTx, id: &str) -> Result<(String, bool), sqlx::Error> {
    let row: Option<(String, Option<String>)> = crate::fetch_optional!(tx tx, (String, Option<String>),
        "SELECT school_code, comparing_for FROM students WHERE student_id = $1", id)?;
    let (school, whom) = row.unwrap_or_default();
    Ok((school, whom.as_deref() == Some("student")))
}

/// A decision or outcome that ends any review: the new status, nothing pending. The last
/// review's id stays, so that a second decision on it is answered "not pending".
async fn settle(tx: &mut DbTx, id: &str, status: &str, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    exec!(tx tx,
        "UPDATE students SET status = $1, differences = '[]', submitted_at = NULL,
                due_by = NULL, registry_error = NULL, comparing_for = NULL, updated_at = $2
          WHERE student_id = $3",
        status, at, id)?;
    Ok(())
}

#[async_trait]
impl Projection for Students {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == STUDENT
            && !matches!(e.event_type, "SessionStarted" | "LoginFailed" | "Locked" | "SessionEnded")
    }

    fn tables(&self) -> &'static [&'static str] {
        &["students", "analytics_student_verifications"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != STUDENT {
            return Ok(());
        }
        let event = StudentEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        let id = e.aggregate_id.as_str();
        let at = event.at();
        match event {
            StudentEvent::Registered { student_number, pass_id, .. } => {
                // A student number registered anew after an erasure starts from a clean row.
                exec!(tx tx,
                    "INSERT INTO students (student_id, pass_id, student_number, status, updated_at)
                     VALUES ($1, $2, $3, 'draft', $4)
                     ON CONFLICT (student_id) DO UPDATE SET pass_id = excluded.pass_id,
                        student_number = excluded.student_number, name = '', school_code = '', grade = 0,
                        class = '', status = 'draft', review_id = NULL, differences = '[]', submitted_at = NULL,
                        due_by = NULL, registry_error = NULL, comparing_for = NULL, deletion_effective_at = NULL,
                        updated_at = excluded.updated_at",
                    id, pass_id, student_number, at)?;
            }
            StudentEvent::DeletionRequested { effective_at, .. } => {
                exec!(tx tx, "UPDATE students SET deletion_effective_at = $1, updated_at = $2 WHERE student_id = $3",
                    effective_at, at, id)?;
            }
            StudentEvent::DeletionCancelled { .. } => {
                exec!(tx tx, "UPDATE students SET deletion_effective_at = NULL, updated_at = $1 WHERE student_id = $2",
                    at, id)?;
            }
            StudentEvent::Erased { .. } => {
                // What a rebuild, opening the events with the key destroyed, would show; the
                // counts of the analyst table stay.
                exec!(tx tx,
                    "UPDATE students SET student_number = $1, name = $1, status = 'erased', review_id = NULL,
                            differences = '[]',
                            submitted_at = NULL, due_by = NULL, registry_error = NULL, comparing_for = NULL,
                            deletion_effective_at = NULL, updated_at = $2
                      WHERE student_id = $3",
                    ERASED, at, id)?;
            }
            StudentEvent::PersonalEntered { personal, .. } => {
                exec!(tx tx, "UPDATE students SET name = $1, updated_at = $2 WHERE student_id = $3",
                    personal.name, at, id)?;
            }
            StudentEvent::EnrolmentEntered { enrolment, .. } => {
                exec!(tx tx,
                    "UPDATE students SET school_code = $1, grade = $2, class = $3, updated_at = $4 WHERE student_id = $5",
                    enrolment.school_code.trim(), i32::from(enrolment.grade.get()),
                    ClassName::normalise(&enrolment.class), at, id)?;
            }
            StudentEvent::Submitted { .. } => comparing_for(tx, id, Some("student"), at).await?,
            StudentEvent::RegistryRefreshed { .. } | StudentEvent::RegistryLinked { .. } => {
                comparing_for(tx, id, Some("school"), at).await?
            }
            StudentEvent::SubmissionVoided { .. } => comparing_for(tx, id, None, at).await?,
            StudentEvent::AutoApproved { .. } => {
                let (school, from_student) = outcome_context(tx, id).await?;
                settle(tx, id, "approved", at).await?;
                count(tx, &school, at, from_student.then_some("auto_approved"), from_student).await?;
            }
            StudentEvent::SentToHeadTeacher { review_id, differences, school_code, submitted_at, due_by, .. } => {
                let (_, from_student) = outcome_context(tx, id).await?;
                let differences = serde_json::to_string(&differences).unwrap_or_else(|_| "[]".into());
                exec!(tx tx,
                    "UPDATE students SET status = 'pending_head_teacher', review_id = $1, differences = $2,
                            submitted_at = $3, due_by = $4, registry_error = NULL, comparing_for = NULL, updated_at = $5
                      WHERE student_id = $6",
                    review_id, differences, submitted_at, due_by, at, id)?;
                count(tx, &school_code, at, None, from_student).await?;
            }
            StudentEvent::RegistryFailed { error, school_code, .. } => {
                let (_, from_student) = outcome_context(tx, id).await?;
                exec!(tx tx,
                    "UPDATE students SET status = 'registry_failed', review_id = $1, differences = '[]',
                            submitted_at = $2, due_by = NULL, registry_error = $3, comparing_for = NULL, updated_at = $2
                      WHERE student_id = $4",
                    format!("{id}-failed"), at, error.as_str(), id)?;
                count(tx, &school_code, at, from_student.then_some("registry_failed"), from_student).await?;
            }
            StudentEvent::HeadTeacherApproved { .. } => {
                let (school, _) = outcome_context(tx, id).await?;
                settle(tx, id, "approved", at).await?;
                count(tx, &school, at, Some("head_teacher_approved"), false).await?;
            }
            StudentEvent::Returned { .. } => {
                let (school, _) = outcome_context(tx, id).await?;
                settle(tx, id, "returned", at).await?;
                count(tx, &school, at, Some("returned"), false).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
