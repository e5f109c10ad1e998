//! Why a support-case command was refused.

use crate::kind::ErrorKind;

/// A refused support-case command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupportCaseError {
    #[error("no such support case")]
    NotFound,
    #[error("this support case is already open")]
    AlreadyOpen,
}

impl SupportCaseError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            SupportCaseError::NotFound => "case_not_found",
            SupportCaseError::AlreadyOpen => "case_already_open",
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SupportCaseError::NotFound => ErrorKind::NotFound,
            SupportCaseError::AlreadyOpen => ErrorKind::Conflict,
        }
    }
}

/// A case's text (a description or a reply) that is blank or too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaseTextError {
    #[error("the text is empty")]
    Blank,
    #[error("the text is longer than {max} characters")]
    TooLong { max: usize },
}

impl CaseTextError {
    /// The stable API code: `required` or `too_long`.
    pub fn code(&self) -> &'static str {
        match self {
            CaseTextError::Blank => "required",
            CaseTextError::TooLong { .. } => "too_long",
        }
    }
}
