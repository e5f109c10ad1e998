//! Support-case commands: one type per command.

use chrono::{DateTime, Utc};

use super::events::{Applicant, CaseKind, CaseText};

/// Commands on a support case.
#[derive(Debug, Clone, PartialEq)]
pub enum SupportCaseCommand {
    Open(OpenCase),
    Reply(ReplyToCase),
}

/// Opens a case with what the person gave. `account_id` is the id the document's account has
/// (or would have), derived by the caller; `reply_due_by` comes from [`super::reply_due_by`].
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCase {
    pub kind: CaseKind,
    pub applicant: Applicant,
    pub description: CaseText,
    /// SHA-256 (hex) of the handheld photo, already in the blob store.
    pub photo_handheld: String,
    pub account_id: String,
    pub reply_due_by: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// A support agent replies to the case (the reply goes to the e-mail the person gave).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyToCase {
    pub message: CaseText,
    /// The agent's staff id.
    pub agent: String,
    pub now: DateTime<Utc>,
}
