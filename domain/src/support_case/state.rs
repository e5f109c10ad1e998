//! The support-case state, folded from its events, what can be asked of it, and its ids.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::events::{Applicant, CaseKind, CaseText, SupportCaseEvent};

/// The most characters of a case's description.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// The most characters of a reply.
pub const MAX_REPLY_CHARS: usize = 2000;

/// How case ids begin: `spc_` and 32 lower-case hex digits (128 random bits).
pub const CASE_ID_PREFIX: &str = "spc_";

/// Whether `id` is a well-formed case id.
pub fn is_case_id(id: &str) -> bool {
    id.strip_prefix(CASE_ID_PREFIX)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Whether a reference (a support change's `evidence_ref`) names a case: it begins with
/// [`CASE_ID_PREFIX`]. Such a reference must name a case that exists; any other reference is
/// free text.
pub fn names_a_case(reference: &str) -> bool {
    reference.trim().starts_with(CASE_ID_PREFIX)
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Waiting for a support agent's reply.
    Open,
    /// An agent has replied.
    Replied,
}

impl CaseStatus {
    /// Every status.
    pub const ALL: [CaseStatus; 2] = [CaseStatus::Open, CaseStatus::Replied];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Replied => "replied",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One reply of a support agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub message: CaseText,
    pub agent: String,
    pub at: DateTime<Utc>,
}

/// A support case's state (`kind` is `None` until it is opened).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SupportCase {
    pub kind: Option<CaseKind>,
    pub applicant: Option<Applicant>,
    pub description: Option<CaseText>,
    pub photo_handheld: Option<String>,
    pub account_id: Option<String>,
    pub opened_at: Option<DateTime<Utc>>,
    pub reply_due_by: Option<DateTime<Utc>>,
    pub replies: Vec<Reply>,
}

impl SupportCase {
    /// Whether the case was opened.
    pub fn is_opened(&self) -> bool {
        self.kind.is_some()
    }

    /// The status (`None` before it is opened).
    pub fn status(&self) -> Option<CaseStatus> {
        match (self.is_opened(), self.replies.is_empty()) {
            (false, _) => None,
            (true, true) => Some(CaseStatus::Open),
            (true, false) => Some(CaseStatus::Replied),
        }
    }

    /// Whether the reply is late at `now`: still open after its due instant.
    pub fn overdue_at(&self, now: DateTime<Utc>) -> bool {
        self.status() == Some(CaseStatus::Open) && self.reply_due_by.is_some_and(|due| now > due)
    }

    pub(super) fn apply_event(&mut self, event: SupportCaseEvent) {
        match event {
            SupportCaseEvent::Opened { kind, applicant, description, photo_handheld, account_id, reply_due_by, at } => {
                self.kind = Some(kind);
                self.applicant = Some(applicant);
                self.description = Some(description);
                self.photo_handheld = Some(photo_handheld);
                self.account_id = Some(account_id);
                self.opened_at = Some(at);
                self.reply_due_by = Some(reply_due_by);
            }
            SupportCaseEvent::Replied { message, agent, at } => self.replies.push(Reply { message, agent, at }),
        }
    }
}
