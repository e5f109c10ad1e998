//! Events of a student stream. Personal members (`name`, `id_number`, `birth_date`, `mobile`,
//! `email`, `address`, `student_number`, `head_teacher_mobile`) are sealed under the student's
//! own key in the store, and read back as `[erased]` once the student is erased.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::account::Consent;

use super::values::{Grade, Material, Stage};

/// Who the registrant is in the education system (教育身份).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EducationIdentity {
    Student,
    Guardian,
}

/// The student's personal information as entered. Text as entered (validated at the door);
/// the birth date as `YYYY-MM-DD`, so that an erased one still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personal {
    pub name: String,
    /// Absent for a minor without an ID number of their own who uses the guardian's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    #[serde(default)]
    pub minor_uses_guardian_id: bool,
    pub birth_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Where the student says they are enrolled: the school by registry code, grade and class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub school_code: String,
    pub grade: Grade,
    pub class: String,
}

/// The guardian (监护人).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardian {
    pub name: String,
    pub id_number: String,
    pub mobile: String,
    pub address: String,
}

/// Why the registry could not be used for a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryError {
    /// The registry has no record of this student number.
    StudentNumberNotInRegistry,
    /// The school's records are not synchronised with the registry.
    SchoolNotSynced,
}

impl RegistryError {
    pub fn as_str(&self) -> &'static str {
        match self {
            RegistryError::StudentNumberNotInRegistry => "student_number_not_in_registry",
            RegistryError::SchoolNotSynced => "school_not_synced",
        }
    }
}

/// A staff member acting on a student: their staff id and role (`head_teacher`,
/// `school_admin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub staff_id: String,
    pub role: String,
}

/// Events of a student stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StudentEvent {
    Registered {
        student_number: String,
        pass_id: String,
        mobile: String,
        password_hash: String,
        education_identity: EducationIdentity,
        consent: Consent,
        at: DateTime<Utc>,
    },
    SessionStarted {
        session_id: String,
        token_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    LoginFailed {
        at: DateTime<Utc>,
    },
    Locked {
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    SessionEnded {
        session_id: String,
        at: DateTime<Utc>,
    },
    PersonalEntered {
        personal: Personal,
        at: DateTime<Utc>,
    },
    /// The enrolment, with the stage that follows from its grade (a derived fact for readers).
    EnrolmentEntered {
        enrolment: Enrolment,
        stage: Stage,
        at: DateTime<Utc>,
    },
    GuardianEntered {
        guardian: Guardian,
        at: DateTime<Utc>,
    },
    /// A material photo, stored encrypted by its digest.
    MaterialAttached {
        material: Material,
        digest: String,
        at: DateTime<Utc>,
    },
    /// The guardian's mobile answered the code and the guardian consented to its use.
    GuardianVerified {
        mobile: String,
        consent_version: String,
        at: DateTime<Utc>,
    },
    /// A submission, counted, recorded before the registry is asked. A reconfirmation's
    /// submission names the enrolment it changed from: a void restores it.
    Submitted {
        submission_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reconfirming_from: Option<Enrolment>,
        at: DateTime<Utc>,
    },
    /// A submission that counts nothing: the registry was unavailable, or it was abandoned.
    SubmissionVoided {
        submission_id: String,
        reason: String,
        at: DateTime<Utc>,
    },
    /// Every compared field equals the registry's record (自动审核通过).
    AutoApproved {
        at: DateTime<Utc>,
    },
    /// The record differs: the class's head teacher reviews it by `due_by`.
    SentToHeadTeacher {
        review_id: String,
        differences: Vec<String>,
        school_code: String,
        grade: Grade,
        class: String,
        head_teacher_mobile: String,
        submitted_at: DateTime<Utc>,
        due_by: NaiveDate,
        at: DateTime<Utc>,
    },
    RegistryFailed {
        error: RegistryError,
        school_code: String,
        at: DateTime<Utc>,
    },
    HeadTeacherApproved {
        review_id: String,
        by: Actor,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    Returned {
        review_id: String,
        by: Actor,
        reason: String,
        at: DateTime<Utc>,
    },
    /// A school admin ran the comparison again (刷新学籍状态); its outcome follows.
    RegistryRefreshed {
        by: Actor,
        at: DateTime<Utc>,
    },
    /// A school admin linked the application to another registry record (手动关联学籍); the
    /// comparison with it follows.
    RegistryLinked {
        by: Actor,
        student_number: String,
        at: DateTime<Utc>,
    },
    /// An approved student confirmed their enrolment for the new semester.
    Reconfirmed {
        at: DateTime<Utc>,
    },
    /// The student asked for their deletion (注销), effective after the cooling-off period.
    DeletionRequested {
        effective_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// The pending deletion was withdrawn (by the student, or by their logging in).
    DeletionCancelled {
        at: DateTime<Utc>,
    },
    /// The student was erased: their key up to `key_version` is destroyed, every session ends,
    /// and the student number may register anew. Names no one.
    Erased {
        key_version: u32,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for StudentEvent {
    fn event_type(&self) -> String {
        match self {
            StudentEvent::Registered { .. } => "Registered",
            StudentEvent::SessionStarted { .. } => "SessionStarted",
            StudentEvent::LoginFailed { .. } => "LoginFailed",
            StudentEvent::Locked { .. } => "Locked",
            StudentEvent::SessionEnded { .. } => "SessionEnded",
            StudentEvent::PersonalEntered { .. } => "PersonalEntered",
            StudentEvent::EnrolmentEntered { .. } => "EnrolmentEntered",
            StudentEvent::GuardianEntered { .. } => "GuardianEntered",
            StudentEvent::MaterialAttached { .. } => "MaterialAttached",
            StudentEvent::GuardianVerified { .. } => "GuardianVerified",
            StudentEvent::Submitted { .. } => "Submitted",
            StudentEvent::SubmissionVoided { .. } => "SubmissionVoided",
            StudentEvent::AutoApproved { .. } => "AutoApproved",
            StudentEvent::SentToHeadTeacher { .. } => "SentToHeadTeacher",
            StudentEvent::RegistryFailed { .. } => "RegistryFailed",
            StudentEvent::HeadTeacherApproved { .. } => "HeadTeacherApproved",
            StudentEvent::Returned { .. } => "Returned",
            StudentEvent::RegistryRefreshed { .. } => "RegistryRefreshed",
            StudentEvent::RegistryLinked { .. } => "RegistryLinked",
            StudentEvent::Reconfirmed { .. } => "Reconfirmed",
            StudentEvent::DeletionRequested { .. } => "DeletionRequested",
            StudentEvent::DeletionCancelled { .. } => "DeletionCancelled",
            StudentEvent::Erased { .. } => "Erased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl StudentEvent {
    /// When the event happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            StudentEvent::Registered { at, .. }
            | StudentEvent::SessionStarted { at, .. }
            | StudentEvent::LoginFailed { at }
            | StudentEvent::Locked { at, .. }
            | StudentEvent::SessionEnded { at, .. }
            | StudentEvent::PersonalEntered { at, .. }
            | StudentEvent::EnrolmentEntered { at, .. }
            | StudentEvent::GuardianEntered { at, .. }
            | StudentEvent::MaterialAttached { at, .. }
            | StudentEvent::GuardianVerified { at, .. }
            | StudentEvent::Submitted { at, .. }
            | StudentEvent::SubmissionVoided { at, .. }
            | StudentEvent::AutoApproved { at }
            | StudentEvent::SentToHeadTeacher { at, .. }
            | StudentEvent::RegistryFailed { at, .. }
            | StudentEvent::HeadTeacherApproved { at, .. }
            | StudentEvent::Returned { at, .. }
            | StudentEvent::RegistryRefreshed { at, .. }
            | StudentEvent::RegistryLinked { at, .. }
            | StudentEvent::Reconfirmed { at }
            | StudentEvent::DeletionRequested { at, .. }
            | StudentEvent::DeletionCancelled { at }
            | StudentEvent::Erased { at, .. } => *at,
        }
    }
}
