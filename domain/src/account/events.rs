//! Account events: the schema of the account stream, with every type they carry (so the schema
//! depends on the value types only). Never rename or drop a variant or a field; change one
//! through a new version and an upcaster.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::shared::contact::{Email, Mobile};
use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::ethnicity::Ethnicity;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::shared::Gender;

/// Where the account stands on real-name verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RealNameStatus {
    #[default]
    Unverified,
    Failed,
    Verified,
    ManualReviewPending,
    ManualReviewApproved,
    ManualReviewRejected,
}

impl RealNameStatus {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RealNameStatus::Unverified => "unverified",
            RealNameStatus::Failed => "failed",
            RealNameStatus::Verified => "verified",
            RealNameStatus::ManualReviewPending => "manual_review_pending",
            RealNameStatus::ManualReviewApproved => "manual_review_approved",
            RealNameStatus::ManualReviewRejected => "manual_review_rejected",
        }
    }

    /// Whether the identity is proven (a pass or an approval).
    pub fn is_proven(&self) -> bool {
        matches!(self, RealNameStatus::Verified | RealNameStatus::ManualReviewApproved)
    }
}

/// Who did a support action, why, and on what evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportAction {
    pub agent: String,
    pub reason: String,
    pub evidence_ref: String,
}

/// A way to recover a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetMethod {
    Email,
    Sms,
    Wechat,
}

impl ResetMethod {
    /// Every method.
    pub const ALL: [ResetMethod; 3] = [ResetMethod::Email, ResetMethod::Sms, ResetMethod::Wechat];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ResetMethod::Email => "email",
            ResetMethod::Sms => "sms",
            ResetMethod::Wechat => "wechat",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        ResetMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// The completed first-login profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub ethnicity: Ethnicity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "erasable_date")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_id_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_number: Option<String>,
}

/// The user agreement a registrant accepted, and when (PIPL: consent is recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub agreement_version: String,
    pub accepted_at: DateTime<Utc>,
}

/// Events of an account stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Registered {
        document_type: DocumentType,
        document_number: DocumentNumber,
        name: PersonName,
        validity: Validity,
        email: Email,
        mobile: Mobile,
        password_hash: String,
        registered_at: DateTime<Utc>,
        /// The agreement accepted (absent in events written before consent was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consent: Option<Consent>,
    },
    LegacyImported {
        document_type: DocumentType,
        document_number: DocumentNumber,
        name: PersonName,
        registered_at: DateTime<Utc>,
    },
    /// The holder registered again: new credentials and contact, identity to be proven again.
    Reregistered {
        name: PersonName,
        validity: Validity,
        email: Email,
        mobile: Mobile,
        password_hash: String,
        at: DateTime<Utc>,
        /// The identity generation this re-registration starts (1 for the first): the
        /// verification stream is reset to the same generation, and outcomes of an earlier
        /// generation are never carried to the account. Absent in events written before
        /// generations existed (they started none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generation: Option<u32>,
        /// The re-registration claim whose approved proof handed the account over (absent for
        /// the immediate re-registration of a legacy account).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim_id: Option<String>,
        /// The agreement the new holder accepted (absent for a hand-over and in older events).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consent: Option<Consent>,
    },
    LoginFailed {
        at: DateTime<Utc>,
    },
    Locked {
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    SessionStarted {
        session_id: String,
        token_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    SessionEnded {
        session_id: String,
        at: DateTime<Utc>,
    },
    /// Every session but `kept` (if any) ended.
    SessionsRevoked {
        kept: Option<String>,
        at: DateTime<Utc>,
    },
    ProfileCompleted {
        profile: Profile,
        at: DateTime<Utc>,
    },
    ProfileEdited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ethnicity: Option<Ethnicity>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        validity: Option<Validity>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<Email>,
        at: DateTime<Utc>,
    },
    PasswordChanged {
        password_hash: String,
        at: DateTime<Utc>,
    },
    PasswordResetRequested {
        reset_id: String,
        at: DateTime<Utc>,
    },
    ResetSecretIssued {
        reset_id: String,
        method: ResetMethod,
        secret_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    ResetSecretRejected {
        reset_id: String,
        at: DateTime<Utc>,
    },
    PasswordReset {
        reset_id: String,
        password_hash: String,
        at: DateTime<Utc>,
    },
    WechatBound {
        openid: String,
        at: DateTime<Utc>,
    },
    WechatUnbound {
        at: DateTime<Utc>,
    },
    /// The verification stream changed the real-name status.
    RealNameStatusChanged {
        status: RealNameStatus,
        verification_sequence: i64,
        at: DateTime<Utc>,
    },
    /// A verified or approved name (and validity) replaced the entered ones.
    VerifiedIdentityApplied {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<PersonName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        validity: Option<Validity>,
        verification_sequence: i64,
        at: DateTime<Utc>,
    },
    /// Downstream services must have their applications resubmitted (the name changed).
    ResubmissionRequired {
        reason: String,
        at: DateTime<Utc>,
    },
    /// A contact change applied by support: asked for by `by`, approved by `approved_by` (a
    /// second agent; absent in changes made before approvals were required).
    ContactChangedBySupport {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mobile: Option<Mobile>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<Email>,
        by: SupportAction,
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approved_by: Option<String>,
    },
    /// A support agent asked for a contact change; a second agent must approve it.
    ContactChangeRequested {
        request_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mobile: Option<Mobile>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<Email>,
        by: SupportAction,
        at: DateTime<Utc>,
    },
    /// A pending password reset ended without use (a newer one replaced it, or the contacts
    /// it could go to changed).
    ResetWithdrawn {
        reset_id: String,
        at: DateTime<Utc>,
    },
    /// The holder asked to change the e-mail address; a code went to the new one.
    EmailChangeRequested {
        email: Email,
        code_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// A wrong code was entered to confirm an e-mail change.
    EmailChangeCodeRejected {
        at: DateTime<Utc>,
    },
    /// The new e-mail address was confirmed and replaces the old one.
    EmailChanged {
        email: Email,
        at: DateTime<Utc>,
    },
    /// The holder asked for the account's deletion; it is erased at `effective_at` unless
    /// cancelled (by `DELETE /v1/me/deletion` or a login) before.
    DeletionRequested {
        effective_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    DeletionCancelled {
        at: DateTime<Utc>,
    },
    /// The account was erased: its data subject's key is destroyed, so every personal value
    /// of this stream reads as `[erased]`. It starts identity generation `generation`: the
    /// verification stream is reset to it, and the document may register again.
    Erased {
        generation: u32,
        /// The subject key versions up to this one are destroyed.
        key_version: u32,
        at: DateTime<Utc>,
        /// When this applies again an erasure made at that instant, which a restored database
        /// backup (taken before it) lacked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restored_from: Option<DateTime<Utc>>,
    },
    CorrectedBySupport {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gender: Option<Gender>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<PersonName>,
        by: SupportAction,
        at: DateTime<Utc>,
    },
}

impl AccountEvent {
    /// The event's name in the store.
    pub fn name(&self) -> &'static str {
        match self {
            AccountEvent::Registered { .. } => "Registered",
            AccountEvent::DeletionRequested { .. } => "DeletionRequested",
            AccountEvent::DeletionCancelled { .. } => "DeletionCancelled",
            AccountEvent::Erased { .. } => "Erased",
            AccountEvent::LegacyImported { .. } => "LegacyImported",
            AccountEvent::Reregistered { .. } => "Reregistered",
            AccountEvent::ContactChangeRequested { .. } => "ContactChangeRequested",
            AccountEvent::ResetWithdrawn { .. } => "ResetWithdrawn",
            AccountEvent::EmailChangeRequested { .. } => "EmailChangeRequested",
            AccountEvent::EmailChangeCodeRejected { .. } => "EmailChangeCodeRejected",
            AccountEvent::EmailChanged { .. } => "EmailChanged",
            AccountEvent::LoginFailed { .. } => "LoginFailed",
            AccountEvent::Locked { .. } => "Locked",
            AccountEvent::SessionStarted { .. } => "SessionStarted",
            AccountEvent::SessionEnded { .. } => "SessionEnded",
            AccountEvent::SessionsRevoked { .. } => "SessionsRevoked",
            AccountEvent::ProfileCompleted { .. } => "ProfileCompleted",
            AccountEvent::ProfileEdited { .. } => "ProfileEdited",
            AccountEvent::PasswordChanged { .. } => "PasswordChanged",
            AccountEvent::PasswordResetRequested { .. } => "PasswordResetRequested",
            AccountEvent::ResetSecretIssued { .. } => "ResetSecretIssued",
            AccountEvent::ResetSecretRejected { .. } => "ResetSecretRejected",
            AccountEvent::PasswordReset { .. } => "PasswordReset",
            AccountEvent::WechatBound { .. } => "WechatBound",
            AccountEvent::WechatUnbound { .. } => "WechatUnbound",
            AccountEvent::RealNameStatusChanged { .. } => "RealNameStatusChanged",
            AccountEvent::VerifiedIdentityApplied { .. } => "VerifiedIdentityApplied",
            AccountEvent::ResubmissionRequired { .. } => "ResubmissionRequired",
            AccountEvent::ContactChangedBySupport { .. } => "ContactChangedBySupport",
            AccountEvent::CorrectedBySupport { .. } => "CorrectedBySupport",
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// A stored birth date, or none once its subject was erased (it reads as
/// [`ERASED`](crate::shared::ERASED)).
fn erasable_date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDate>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    match text.as_deref() {
        None | Some(crate::shared::ERASED) => Ok(None),
        Some(date) => date.parse().map(Some).map_err(serde::de::Error::custom),
    }
}
