//! Commands on a student stream. Time, ids, hashed secrets, the registry's answer and the
//! catalogue's facts come on the command: `handle` does no I/O.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::account::{Checked, Consent};

use super::events::{EducationIdentity, Enrolment, Guardian, Personal};
use super::values::{ClassName, Grade, Material, PassId, StudentNumber};

/// Commands on a student.
#[derive(Debug, Clone, PartialEq)]
pub enum StudentCommand {
    Register(Register),
    LogIn(LogIn),
    EndSession(EndSession),
    Edit(Edit),
    AttachMaterials(AttachMaterials),
    VerifyGuardian(VerifyGuardian),
    Submit(Submit),
    RecordRegistryAnswer(RecordRegistryAnswer),
    Decide(Decide),
    Recompare(Recompare),
    Reconfirm(Reconfirm),
    RequestDeletion(RequestDeletion),
    CancelDeletion(CancelDeletion),
    Erase(Erase),
}

/// Registers the student number (its mobile code already checked).
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    pub student_number: StudentNumber,
    pub pass_id: PassId,
    pub mobile: String,
    pub password_hash: String,
    pub education_identity: EducationIdentity,
    pub consent: Consent,
    pub now: DateTime<Utc>,
}

/// A login attempt and a logout are an account's.
pub use crate::account::{EndSession, LogIn};

/// Replaces the parts of the application that were sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Edit {
    pub personal: Option<Personal>,
    pub enrolment: Option<Enrolment>,
    pub guardian: Option<Guardian>,
    pub now: DateTime<Utc>,
}

/// Attaches material photos (already stored, by digest).
#[derive(Debug, Clone, PartialEq)]
pub struct AttachMaterials {
    pub materials: Vec<(Material, String)>,
    pub now: DateTime<Utc>,
}

/// The guardian's code was right and the guardian consented (text version `consent_version`).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyGuardian {
    /// The mobile the code was checked for: the guardian's must still be it.
    pub mobile: String,
    pub consent_version: String,
    pub now: DateTime<Utc>,
}

/// Submits the application; `school_filed` is the catalogue's 备案 flag for the chosen school.
/// An earlier submission still waiting for the registry since before `abandon_before` is voided.
#[derive(Debug, Clone, PartialEq)]
pub struct Submit {
    pub submission_id: String,
    pub school_filed: bool,
    pub abandon_before: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What the student registry (学籍库) answered for a student number.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryAnswer {
    Found(RegistryRecord),
    NotFound,
    SchoolNotSynced,
    Unavailable,
}

/// A registry record, as the registry writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryRecord {
    pub name: String,
    /// Empty for a student who has no ID number.
    pub id_number: Option<String>,
    pub birth_date: NaiveDate,
    pub school_code: String,
    pub grade: Grade,
    pub class: String,
    pub head_teacher_mobile: String,
}

/// The registry's answer for submission `submission_id`; `due_by` is the head teacher's
/// deadline should the record differ (two working days after the submission day).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRegistryAnswer {
    pub submission_id: String,
    pub answer: RegistryAnswer,
    pub review_id: String,
    pub due_by: NaiveDate,
    pub now: DateTime<Utc>,
}

/// Where a school staff member may act: a head teacher their own class, a school admin their
/// own school.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    HeadTeacher { school_code: String, grade: Grade, class: ClassName },
    SchoolAdmin { school_code: String },
}

impl Scope {
    /// Whether this scope covers an application for `school_code`, `grade`, `class`.
    pub fn covers(&self, school_code: &str, grade: Grade, class: &str) -> bool {
        match self {
            Scope::HeadTeacher { school_code: s, grade: g, class: c } => {
                s == school_code && *g == grade && c.same_as(class)
            }
            Scope::SchoolAdmin { school_code: s } => s == school_code,
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Scope::HeadTeacher { .. } => "head_teacher",
            Scope::SchoolAdmin { .. } => "school_admin",
        }
    }
}

/// A head teacher's decision on a pending review.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Approve { reason: Option<String> },
    Return { reason: String },
}

/// A head teacher decides review `review_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decide {
    pub review_id: String,
    pub staff_id: String,
    pub scope: Scope,
    pub decision: Decision,
    pub now: DateTime<Utc>,
}

/// A school admin runs the comparison again (`link: None`: 刷新学籍状态) or against another
/// registry record (`link`: 手动关联学籍), with the registry's answer for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recompare {
    pub staff_id: String,
    pub scope: Scope,
    pub link: Option<StudentNumber>,
    pub answer: RegistryAnswer,
    pub review_id: String,
    pub due_by: NaiveDate,
    pub now: DateTime<Utc>,
}

/// An approved student reconfirms for the semester that started at `semester_start` (the
/// latest start at or before now): unchanged, or with a new enrolment to be compared again.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconfirm {
    pub enrolment: Option<Enrolment>,
    /// The catalogue's 备案 flag of the new enrolment's school.
    pub school_filed: bool,
    pub submission_id: String,
    pub semester_start: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// Counted submissions per China day.
pub const DAILY_SUBMISSIONS: usize = 3;

/// How long a submission may wait for the registry before a new one voids it.
pub fn abandon_after() -> Duration {
    Duration::seconds(30)
}

/// The student asks for their deletion (注销) with their password; it falls due at the
/// instant the check carries (after the cooling-off period).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestDeletion {
    pub password: Checked<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// The student withdraws a pending deletion.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelDeletion {
    pub now: DateTime<Utc>,
}

/// Erases a student whose deletion fell due: their key (version `key_version` and older) is
/// destroyed after this event.
#[derive(Debug, Clone, PartialEq)]
pub struct Erase {
    pub key_version: u32,
    /// The erasure journal recorded it, and the restored store lacks it: applied again
    /// whatever the stream says.
    pub reapplied: bool,
    pub now: DateTime<Utc>,
}
