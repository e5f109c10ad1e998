//! Why an account command was refused.

use chrono::{DateTime, Utc};

use crate::kind::ErrorKind;

/// A refused account command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("this document is already registered; recover the password instead")]
    AlreadyRegistered,
    #[error("no account matches")]
    NotFound,
    #[error("accounts from before the cut-over must register again")]
    LegacyMustReregister,
    #[error("the account is locked until {until}")]
    Locked { until: DateTime<Utc> },
    #[error("the credentials changed while the request was in flight")]
    StaleCredentials,
    #[error("the profile must be completed first")]
    ProfileIncomplete,
    #[error("required profile fields are missing")]
    MissingProfileFields(Vec<&'static str>),
    #[error("this field cannot be modified: {0}")]
    FieldNotModifiable(&'static str),
    #[error("this recovery method is not available for the account")]
    MethodNotAvailable,
    #[error("no such password reset")]
    ResetNotFound,
    #[error("the code or link is wrong, used or expired")]
    InvalidOrExpiredSecret,
    #[error("a new code may be sent at {retry_at}")]
    RateLimited { retry_at: DateTime<Utc> },
    #[error("no such session")]
    SessionNotFound,
    #[error("WeChat is not bound")]
    WechatNotBound,
    #[error("no contact change request with this id is waiting")]
    ContactRequestNotFound,
    #[error("a second support agent must approve the change")]
    SameAgent,
    #[error("no e-mail change is waiting for confirmation")]
    NoEmailChangePending,
    #[error("the new contact is the current one")]
    NothingToChange,
    #[error("no deletion is pending")]
    NoDeletionPending,
    #[error("a manual review is pending")]
    ManualReviewPending,
}

impl AccountError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::AlreadyRegistered => "document_already_registered",
            AccountError::NotFound => "account_not_found",
            AccountError::LegacyMustReregister => "legacy_account_must_reregister",
            AccountError::Locked { .. } => "account_locked",
            AccountError::StaleCredentials => "conflict_retry",
            AccountError::ProfileIncomplete => "profile_incomplete",
            AccountError::MissingProfileFields(_) => "validation_failed",
            AccountError::FieldNotModifiable(_) => "field_not_modifiable",
            AccountError::MethodNotAvailable => "method_not_available",
            AccountError::ResetNotFound => "reset_not_found",
            AccountError::InvalidOrExpiredSecret | AccountError::NoEmailChangePending => "invalid_or_expired_secret",
            AccountError::RateLimited { .. } => "code_rate_limited",
            AccountError::SessionNotFound => "unauthenticated",
            AccountError::WechatNotBound => "wechat_not_bound",
            AccountError::ContactRequestNotFound => "request_not_found",
            AccountError::SameAgent => "same_agent",
            AccountError::NothingToChange => "nothing_to_change",
            AccountError::NoDeletionPending => "no_deletion_pending",
            AccountError::ManualReviewPending => "manual_review_pending",
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AccountError::AlreadyRegistered
            | AccountError::ProfileIncomplete
            | AccountError::WechatNotBound
            | AccountError::SameAgent
            | AccountError::NoDeletionPending
            | AccountError::ManualReviewPending => ErrorKind::Conflict,
            AccountError::NotFound | AccountError::ResetNotFound | AccountError::ContactRequestNotFound => {
                ErrorKind::NotFound
            }
            AccountError::LegacyMustReregister => ErrorKind::Forbidden,
            AccountError::Locked { .. } => ErrorKind::Locked,
            AccountError::StaleCredentials => ErrorKind::Retry,
            AccountError::MissingProfileFields(_)
            | AccountError::FieldNotModifiable(_)
            | AccountError::MethodNotAvailable
            | AccountError::NothingToChange => ErrorKind::Invalid,
            AccountError::InvalidOrExpiredSecret | AccountError::NoEmailChangePending => ErrorKind::BadSecret,
            AccountError::RateLimited { .. } => ErrorKind::RateLimited,
            AccountError::SessionNotFound => ErrorKind::Unauthenticated,
        }
    }
}
