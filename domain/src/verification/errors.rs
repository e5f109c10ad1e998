//! Why a verification command was refused.

use chrono::{DateTime, NaiveDate, Utc};

use super::review::ReviewRefusal;
use crate::kind::ErrorKind;

/// A refused verification command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerificationError {
    #[error("a manual review is pending")]
    ManualReviewPending,
    #[error("another attempt is in progress")]
    AttemptInProgress,
    #[error("today's attempts are used up; next attempt at {next_attempt_at}")]
    DailyAttemptsExhausted { next_attempt_at: DateTime<Utc> },
    #[error("no such attempt in flight")]
    NoSuchAttempt,
    #[error("run real-name verification first")]
    VerificationRequiredFirst,
    #[error("the identity is already proven")]
    AlreadyVerified,
    #[error("this period's applications are used up; next period starts {next_period_start}")]
    PeriodQuotaExhausted { next_period_start: NaiveDate },
    #[error("no such application")]
    ReviewNotFound,
    #[error("the application is not pending")]
    NotPending,
    #[error("another reviewer has claimed this application")]
    AlreadyClaimed,
    #[error("a reviewer cannot review their own account")]
    OwnAccount,
    #[error("claim the application first")]
    NotClaimedByYou,
    #[error("a rejection needs a reason")]
    ReasonRequired,
}

impl From<ReviewRefusal> for VerificationError {
    fn from(refusal: ReviewRefusal) -> Self {
        match refusal {
            ReviewRefusal::OwnAccount => VerificationError::OwnAccount,
            ReviewRefusal::AlreadyClaimed => VerificationError::AlreadyClaimed,
            ReviewRefusal::NotClaimedByYou => VerificationError::NotClaimedByYou,
            ReviewRefusal::ReasonRequired => VerificationError::ReasonRequired,
        }
    }
}

impl VerificationError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            VerificationError::ManualReviewPending => "manual_review_pending",
            VerificationError::AttemptInProgress => "attempt_in_progress",
            VerificationError::DailyAttemptsExhausted { .. } => "daily_attempts_exhausted",
            VerificationError::NoSuchAttempt => "attempt_not_found",
            VerificationError::VerificationRequiredFirst => "real_name_verification_required_first",
            VerificationError::AlreadyVerified => "already_verified",
            VerificationError::PeriodQuotaExhausted { .. } => "period_quota_exhausted",
            VerificationError::ReviewNotFound => "review_not_found",
            VerificationError::NotPending => "review_not_pending",
            VerificationError::AlreadyClaimed => "already_claimed",
            VerificationError::OwnAccount => "forbidden",
            VerificationError::NotClaimedByYou => "not_claimed_by_you",
            VerificationError::ReasonRequired => "reason_required",
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            VerificationError::DailyAttemptsExhausted { .. } | VerificationError::PeriodQuotaExhausted { .. } => {
                ErrorKind::RateLimited
            }
            VerificationError::ReviewNotFound | VerificationError::NoSuchAttempt => ErrorKind::NotFound,
            VerificationError::OwnAccount => ErrorKind::Forbidden,
            VerificationError::ReasonRequired => ErrorKind::Invalid,
            _ => ErrorKind::Conflict,
        }
    }
}
