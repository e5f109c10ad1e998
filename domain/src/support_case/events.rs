//! Support-case events: the schema of the case stream, with the values they carry.

use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::errors::CaseTextError;
use crate::shared::contact::{Email, Mobile};
use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::name::PersonName;

/// What a case asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// 核查账号信息: registering says the document is taken, and the person asks support to
    /// check the account.
    AccountCheck,
    /// 申请修改手机（邮箱）信息: the registered mobile or e-mail changed, so a password reset
    /// cannot reach the holder.
    ContactChange,
}

impl CaseKind {
    /// Every kind.
    pub const ALL: [CaseKind; 2] = [CaseKind::AccountCheck, CaseKind::ContactChange];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            CaseKind::AccountCheck => "account_check",
            CaseKind::ContactChange => "contact_change",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<CaseKind> {
        CaseKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A case's free text — the person's description, an agent's reply: not blank, and at most
/// the bound it was parsed with, counted in characters. `Debug` shows only its length (it may
/// hold personal data). Stored events are read back as they are, whatever the bound is now.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseText(String);

impl CaseText {
    /// Trims surrounding white space; refuses blank text and text over `max` characters.
    pub fn parse(raw: &str, max: usize) -> Result<CaseText, CaseTextError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(CaseTextError::Blank);
        }
        if text.chars().count() > max {
            return Err(CaseTextError::TooLong { max });
        }
        Ok(CaseText(text.to_string()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CaseText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaseText({} chars)", self.0.chars().count())
    }
}

/// Who wrote to support, as they gave it: their name, document, and where to reach them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applicant {
    pub name: PersonName,
    pub document_type: DocumentType,
    pub document_number: DocumentNumber,
    pub mobile: Mobile,
    pub email: Email,
}

/// Events of a support-case stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SupportCaseEvent {
    /// The case was opened (and its acknowledgement queued in the same commit).
    Opened {
        kind: CaseKind,
        applicant: Applicant,
        description: CaseText,
        /// SHA-256 (hex) of the handheld photo, stored outside the log.
        photo_handheld: String,
        /// The id the document's account has (or would have): derived, it may name no account.
        account_id: String,
        reply_due_by: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// A support agent replied (the reply is sent to the case's e-mail in the same commit).
    Replied { message: CaseText, agent: String, at: DateTime<Utc> },
}

impl DomainEvent for SupportCaseEvent {
    fn event_type(&self) -> String {
        match self {
            SupportCaseEvent::Opened { .. } => "Opened",
            SupportCaseEvent::Replied { .. } => "Replied",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
