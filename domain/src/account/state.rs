//! The account's state, folded from its events, and what can be asked of it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::lockout::Lockout;
use crate::shared::contact::{Email, Mobile};
use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;

use super::events::{AccountEvent, Profile, RealNameStatus, ResetMethod, SupportAction};

/// How long a password reset (its id) stays usable.
pub const RESET_VALIDITY_HOURS: i64 = 24;
/// Wrong secret entries allowed per reset secret.
pub const MAX_SECRET_WRONG_ENTRIES: u32 = 5;
/// Reset deliveries: at most one a minute and this many per China-Standard-Time day.
pub const RESET_DELIVERIES_PER_DAY: usize = 10;
/// Live sessions per account: a new one beyond this ends the oldest.
pub const MAX_SESSIONS: usize = 10;
/// Pending password resets per account: a new one beyond this withdraws the oldest.
pub const MAX_PENDING_RESETS: usize = 3;
/// Support contact-change requests waiting for approval per account (the oldest is dropped).
pub const MAX_CONTACT_REQUESTS: usize = 5;
/// Wrong entries allowed for the code confirming an e-mail change.
pub const MAX_EMAIL_CODE_WRONG_ENTRIES: u32 = 5;

/// A live session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// A password reset in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingReset {
    pub reset_id: String,
    pub requested_at: DateTime<Utc>,
    pub secret_hash: Option<String>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub wrong_entries: u32,
    pub completed: bool,
}

/// An e-mail change waiting for the code sent to the new address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingEmail {
    pub email: Email,
    pub code_hash: String,
    pub expires_at: DateTime<Utc>,
    pub requested_at: DateTime<Utc>,
    pub wrong_entries: u32,
}

/// A contact change asked for by one support agent, waiting for a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactRequest {
    pub request_id: String,
    pub mobile: Option<Mobile>,
    pub email: Option<Email>,
    pub by: SupportAction,
    pub at: DateTime<Utc>,
}

/// The account state folded from its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Account {
    pub document_type: Option<DocumentType>,
    pub document_number: Option<DocumentNumber>,
    pub name: Option<PersonName>,
    pub validity: Option<Validity>,
    pub email: Option<Email>,
    pub mobile: Option<Mobile>,
    pub password_hash: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    pub legacy: bool,
    pub profile: Option<Profile>,
    pub real_name_status: RealNameStatus,
    pub lockout: Lockout,
    pub sessions: Vec<Session>,
    pub resets: Vec<PendingReset>,
    pub reset_deliveries: Vec<DateTime<Utc>>,
    pub wechat_openid: Option<String>,
    /// The last verification event forwarded here (idempotence of the process manager).
    pub verification_sequence: i64,
    /// The identity generation: how many re-registrations (since generations were recorded)
    /// superseded earlier holders' proof. Verification outcomes of another generation are
    /// ignored, and the business gate needs the verification stream at this generation.
    #[serde(default)]
    pub generation: u32,
    /// When a requested deletion falls due (absent: none pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_effective_at: Option<DateTime<Utc>>,
    /// Whether the account was erased (until its document registers again).
    #[serde(default)]
    pub erased: bool,
    /// An e-mail change waiting for confirmation.
    #[serde(default)]
    pub pending_email: Option<PendingEmail>,
    /// Support contact changes waiting for a second agent.
    #[serde(default)]
    pub contact_requests: Vec<ContactRequest>,
    /// The re-registration claims that handed this account over (idempotence).
    #[serde(default)]
    pub claims_handed_over: Vec<String>,
}

impl Account {
    /// Whether any registration (or legacy import) exists on this stream.
    pub fn exists(&self) -> bool {
        self.document_number.is_some()
    }

    /// Whether the account is registered and usable (not only a legacy import).
    pub fn is_active(&self) -> bool {
        self.exists() && !self.legacy
    }

    /// Whether the first-login profile is complete.
    pub fn profile_complete(&self) -> bool {
        self.profile.is_some()
    }

    /// The lock in force at `now`, if any.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.lockout.locked_at(now)
    }

    /// The live session with this token hash, if any.
    pub fn session_by_token(&self, token_hash: &str, now: DateTime<Utc>) -> Option<&Session> {
        self.sessions.iter().find(|s| s.token_hash == token_hash && s.expires_at > now)
    }

    /// The recovery methods this account offers, in display order.
    pub fn reset_methods(&self) -> Vec<ResetMethod> {
        let mut methods = Vec::new();
        if self.email.is_some() {
            methods.push(ResetMethod::Email);
        }
        if self.mobile.is_some() {
            methods.push(ResetMethod::Sms);
        }
        if self.wechat_openid.is_some() {
            methods.push(ResetMethod::Wechat);
        }
        methods
    }

    /// Which profile fields a document type requires at first login.
    pub fn required_profile_fields(doc_type: DocumentType) -> &'static [&'static str] {
        match doc_type {
            DocumentType::ResidentIdCard => &["ethnicity"],
            DocumentType::HmtResidencePermit => {
                &["ethnicity", "gender", "birth_date", "local_id_number", "permit_number"]
            }
            DocumentType::HkMacauPermit | DocumentType::TaiwanPermit => {
                &["ethnicity", "gender", "birth_date", "local_id_number"]
            }
            DocumentType::Other => &["ethnicity", "gender", "birth_date"],
        }
    }

    fn apply_registration(&mut self, name: PersonName, validity: Validity, email: Email, mobile: Mobile, hash: String) {
        self.pending_email = None;
        self.contact_requests.clear();
        self.name = Some(name);
        self.validity = Some(validity);
        self.email = Some(email);
        self.mobile = Some(mobile);
        self.password_hash = Some(hash);
        self.legacy = false;
        self.real_name_status = RealNameStatus::Unverified;
        self.lockout.cleared();
        self.resets.clear();
    }

    /// Folds one event into the state (the aggregate's `apply`).
    pub(super) fn apply_event(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Registered {
                document_type,
                document_number,
                name,
                validity,
                email,
                mobile,
                password_hash,
                registered_at,
                ..
            } => {
                self.document_type = Some(document_type);
                self.document_number = Some(document_number);
                self.registered_at = Some(registered_at);
                self.apply_registration(name, validity, email, mobile, password_hash);
                self.erased = false;
            }
            AccountEvent::LegacyImported { document_type, document_number, name, registered_at } => {
                self.document_type = Some(document_type);
                self.document_number = Some(document_number);
                self.name = Some(name);
                self.registered_at = Some(registered_at);
                self.legacy = true;
            }
            AccountEvent::Reregistered {
                name, validity, email, mobile, password_hash, generation, claim_id, ..
            } => {
                self.apply_registration(name, validity, email, mobile, password_hash);
                if let Some(generation) = generation {
                    self.generation = generation;
                }
                if let Some(claim_id) = claim_id {
                    self.claims_handed_over.push(claim_id);
                }
            }
            AccountEvent::LoginFailed { at } => {
                self.lockout.failed(at);
            }
            AccountEvent::Locked { until, .. } => self.lockout.locked(until),
            AccountEvent::SessionStarted { session_id, token_hash, expires_at, at } => {
                self.lockout.cleared();
                self.sessions.retain(|s| s.expires_at > at);
                self.sessions.push(Session { session_id, token_hash, expires_at });
            }
            AccountEvent::SessionEnded { session_id, .. } => self.sessions.retain(|s| s.session_id != session_id),
            AccountEvent::SessionsRevoked { kept, .. } => {
                self.sessions.retain(|s| Some(&s.session_id) == kept.as_ref());
            }
            AccountEvent::ProfileCompleted { profile, .. } => self.profile = Some(profile),
            AccountEvent::ProfileEdited { ethnicity, validity, email, .. } => {
                if let (Some(e), Some(p)) = (ethnicity, self.profile.as_mut()) {
                    p.ethnicity = e;
                }
                if validity.is_some() {
                    self.validity = validity;
                }
                if email.is_some() {
                    self.email = email;
                }
            }
            AccountEvent::PasswordChanged { password_hash, .. } => self.password_hash = Some(password_hash),
            AccountEvent::PasswordResetRequested { reset_id, at } => {
                self.resets.retain(|r| at < r.requested_at + Duration::hours(RESET_VALIDITY_HOURS) && !r.completed);
                self.resets.push(PendingReset {
                    reset_id,
                    requested_at: at,
                    secret_hash: None,
                    secret_expires_at: None,
                    wrong_entries: 0,
                    completed: false,
                });
            }
            AccountEvent::ResetSecretIssued { reset_id, secret_hash, expires_at, at, .. } => {
                self.reset_deliveries.retain(|t| at - *t < Duration::days(2));
                self.reset_deliveries.push(at);
                if let Some(r) = self.resets.iter_mut().find(|r| r.reset_id == reset_id) {
                    r.secret_hash = Some(secret_hash);
                    r.secret_expires_at = Some(expires_at);
                    r.wrong_entries = 0;
                }
            }
            AccountEvent::ResetSecretRejected { reset_id, .. } => {
                if let Some(r) = self.resets.iter_mut().find(|r| r.reset_id == reset_id) {
                    r.wrong_entries += 1;
                }
            }
            AccountEvent::PasswordReset { reset_id, password_hash, .. } => {
                self.password_hash = Some(password_hash);
                self.lockout.cleared();
                if let Some(r) = self.resets.iter_mut().find(|r| r.reset_id == reset_id) {
                    r.completed = true;
                }
            }
            AccountEvent::WechatBound { openid, .. } => self.wechat_openid = Some(openid),
            AccountEvent::WechatUnbound { .. } => self.wechat_openid = None,
            AccountEvent::RealNameStatusChanged { status, verification_sequence, .. } => {
                self.real_name_status = status;
                self.verification_sequence = self.verification_sequence.max(verification_sequence);
            }
            AccountEvent::VerifiedIdentityApplied { name, validity, verification_sequence, .. } => {
                if name.is_some() {
                    self.name = name;
                }
                if validity.is_some() {
                    self.validity = validity;
                }
                self.verification_sequence = self.verification_sequence.max(verification_sequence);
            }
            AccountEvent::ResubmissionRequired { .. } => {}
            AccountEvent::DeletionRequested { effective_at, .. } => self.deletion_effective_at = Some(effective_at),
            AccountEvent::DeletionCancelled { .. } => self.deletion_effective_at = None,
            AccountEvent::Erased { generation, .. } => {
                // Nothing of the person stays; the generation and the last verification
                // carried stay, so that no outcome of the erased holder reaches a new one.
                let verification_sequence = self.verification_sequence;
                *self = Account { generation, verification_sequence, erased: true, ..Account::default() };
            }
            AccountEvent::ContactChangedBySupport { mobile, email, request_id, .. } => {
                if mobile.is_some() {
                    self.mobile = mobile;
                }
                if email.is_some() {
                    self.email = email;
                    self.pending_email = None;
                }
                self.contact_requests.retain(|r| Some(&r.request_id) != request_id.as_ref());
            }
            AccountEvent::ContactChangeRequested { request_id, mobile, email, by, at } => {
                self.contact_requests.push(ContactRequest { request_id, mobile, email, by, at });
                if self.contact_requests.len() > MAX_CONTACT_REQUESTS {
                    self.contact_requests.remove(0);
                }
            }
            AccountEvent::ResetWithdrawn { reset_id, .. } => self.resets.retain(|r| r.reset_id != reset_id),
            AccountEvent::EmailChangeRequested { email, code_hash, expires_at, at } => {
                self.pending_email =
                    Some(PendingEmail { email, code_hash, expires_at, requested_at: at, wrong_entries: 0 });
            }
            AccountEvent::EmailChangeCodeRejected { .. } => {
                if let Some(p) = self.pending_email.as_mut() {
                    p.wrong_entries += 1;
                }
            }
            AccountEvent::EmailChanged { email, .. } => {
                self.email = Some(email);
                self.pending_email = None;
            }
            AccountEvent::CorrectedBySupport { gender, name, .. } => {
                if let (Some(g), Some(p)) = (gender, self.profile.as_mut()) {
                    p.gender = Some(g);
                }
                if name.is_some() {
                    self.name = name;
                }
            }
        }
    }
}
