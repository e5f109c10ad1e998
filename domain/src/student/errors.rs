//! Why a student command was refused: a stable code and a kind for each.

use chrono::{DateTime, Utc};

use crate::kind::ErrorKind;

/// A refused student command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StudentError {
    #[error("this student number is already registered")]
    AlreadyRegistered,
    #[error("no such student")]
    NotFound,
    #[error("locked until {until}")]
    Locked { until: DateTime<Utc> },
    #[error("the credentials changed meanwhile")]
    StaleCredentials,
    #[error("no such session")]
    SessionNotFound,
    #[error("the application is being reviewed")]
    Pending,
    #[error("the application is approved already")]
    AlreadyApproved,
    #[error("the personal ID number equals the guardian's: set minor_uses_guardian_id if the minor has none")]
    MinorFlagRequired,
    #[error("enter the grade before the materials")]
    EnrolmentRequired,
    #[error("this material is not the one the school stage asks for")]
    MaterialWrongForStage,
    #[error("enter the guardian's mobile first")]
    GuardianMobileMissing,
    #[error("the application is incomplete")]
    Incomplete { missing: Vec<String> },
    #[error("the guardian's mobile is not verified")]
    GuardianNotVerified,
    #[error("the school is not filed (备案) on the platform")]
    SchoolNotFiled,
    #[error("a school admin must refresh or link the registry record first")]
    SchoolActionRequired,
    #[error("the day's submissions are used up")]
    DailySubmissionsExhausted { next_attempt_at: DateTime<Utc> },
    #[error("the student registry is unavailable")]
    RegistryUnavailable,
    #[error("no such submission in flight")]
    NoSuchSubmission,
    #[error("no such review")]
    ReviewNotFound,
    #[error("this review is not pending")]
    NotPending,
    #[error("outside the staff member's school or class")]
    OutOfScope,
    #[error("a reason is required")]
    ReasonRequired,
    #[error("no reconfirmation is due")]
    ReconfirmationNotDue,
    #[error("no deletion is pending")]
    NoDeletionPending,
}

impl StudentError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            StudentError::AlreadyRegistered => "student_number_already_registered",
            StudentError::NotFound => "login_failed",
            StudentError::Locked { .. } => "account_locked",
            StudentError::StaleCredentials | StudentError::NoSuchSubmission => "conflict_retry",
            StudentError::SessionNotFound => "unauthenticated",
            StudentError::Pending => "student_verification_pending",
            StudentError::AlreadyApproved => "student_already_approved",
            StudentError::MinorFlagRequired => "minor_flag_required",
            StudentError::EnrolmentRequired => "enrolment_required",
            StudentError::MaterialWrongForStage => "material_wrong_for_stage",
            StudentError::GuardianMobileMissing => "guardian_mobile_missing",
            StudentError::Incomplete { .. } => "application_incomplete",
            StudentError::GuardianNotVerified => "guardian_not_verified",
            StudentError::SchoolNotFiled => "school_not_filed",
            StudentError::SchoolActionRequired => "school_action_required",
            StudentError::DailySubmissionsExhausted { .. } => "daily_submissions_exhausted",
            StudentError::RegistryUnavailable => "student_registry_unavailable",
            StudentError::ReviewNotFound => "review_not_found",
            StudentError::NotPending => "not_pending",
            StudentError::OutOfScope => "out_of_scope",
            StudentError::ReasonRequired => "reason_required",
            StudentError::ReconfirmationNotDue => "reconfirmation_not_due",
            StudentError::NoDeletionPending => "no_deletion_pending",
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StudentError::AlreadyRegistered
            | StudentError::Pending
            | StudentError::AlreadyApproved
            | StudentError::EnrolmentRequired
            | StudentError::GuardianMobileMissing
            | StudentError::Incomplete { .. }
            | StudentError::GuardianNotVerified
            | StudentError::SchoolNotFiled
            | StudentError::SchoolActionRequired
            | StudentError::NotPending
            | StudentError::ReconfirmationNotDue
            | StudentError::NoDeletionPending => ErrorKind::Conflict,
            StudentError::NotFound | StudentError::SessionNotFound => ErrorKind::Unauthenticated,
            StudentError::Locked { .. } => ErrorKind::Locked,
            StudentError::StaleCredentials | StudentError::NoSuchSubmission => ErrorKind::Retry,
            StudentError::MinorFlagRequired | StudentError::MaterialWrongForStage | StudentError::ReasonRequired => {
                ErrorKind::Invalid
            }
            StudentError::DailySubmissionsExhausted { .. } => ErrorKind::RateLimited,
            StudentError::RegistryUnavailable => ErrorKind::Unavailable,
            StudentError::ReviewNotFound => ErrorKind::NotFound,
            StudentError::OutOfScope => ErrorKind::Forbidden,
        }
    }
}
