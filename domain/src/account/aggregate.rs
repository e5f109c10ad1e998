//! The account's state, its decisions (`handle`, one private fn per command) and `apply`.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::lockout::Lockout;
use crate::shared::contact::{Email, Mobile};
use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::time::{cst_date, cst_midnight};

use super::commands::{
    AccountCommand, IdentityOutcome, NewSession, PasswordProof, ProfileInput, Registration, SupportAction,
};
use super::errors::AccountError;
use super::events::{AccountEvent, Profile, ResetMethod};

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
}

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

    fn require_active(&self) -> Result<(), AccountError> {
        if !self.exists() {
            return Err(AccountError::NotFound);
        }
        if self.legacy {
            return Err(AccountError::LegacyMustReregister);
        }
        Ok(())
    }

    fn check_hash(&self, checked: &str) -> Result<(), AccountError> {
        if self.password_hash.as_deref() != Some(checked) {
            return Err(AccountError::StaleCredentials);
        }
        Ok(())
    }

    async fn register(&mut self, r: Registration, sink: &EventSink<Self>) -> Result<(), AccountError> {
        if self.is_active() {
            return Err(AccountError::AlreadyRegistered);
        }
        let event = AccountEvent::Registered {
            document_type: r.document_type,
            document_number: r.document_number,
            name: r.name,
            validity: r.validity,
            email: r.email,
            mobile: r.mobile,
            password_hash: r.password_hash,
            registered_at: r.now,
        };
        sink.write(event, self).await;
        Ok(())
    }

    async fn reregister(&mut self, r: Registration, sink: &EventSink<Self>) -> Result<(), AccountError> {
        if !self.exists() {
            return Err(AccountError::NotFound);
        }
        let event = AccountEvent::Reregistered {
            name: r.name,
            validity: r.validity,
            email: r.email,
            mobile: r.mobile,
            password_hash: r.password_hash,
            at: r.now,
            generation: Some(self.generation + 1),
            claim_id: None,
        };
        sink.write(event, self).await;
        if !self.sessions.is_empty() {
            sink.write(AccountEvent::SessionsRevoked { kept: None, at: r.now }, self).await;
        }
        Ok(())
    }

    /// An approved re-registration claim hands the account to the claimant.
    async fn hand_over(
        &mut self,
        claim_id: String,
        r: Registration,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.exists() {
            return Err(AccountError::NotFound);
        }
        if self.claims_handed_over.contains(&claim_id) {
            return Ok(());
        }
        let at = r.now;
        let event = AccountEvent::Reregistered {
            name: r.name,
            validity: r.validity,
            email: r.email,
            mobile: r.mobile,
            password_hash: r.password_hash,
            at,
            generation: Some(self.generation + 1),
            claim_id: Some(claim_id),
        };
        sink.write(event, self).await;
        if !self.sessions.is_empty() {
            sink.write(AccountEvent::SessionsRevoked { kept: None, at }, self).await;
        }
        if self.wechat_openid.is_some() {
            sink.write(AccountEvent::WechatUnbound { at }, self).await;
        }
        Ok(())
    }

    /// Checks a password proven outside: refused while locked or when the hash changed
    /// meanwhile; a wrong password is a failed login (counted, and locking at the threshold).
    /// Returns whether it matched.
    async fn prove(
        &mut self,
        proof: &PasswordProof,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<bool, AccountError> {
        self.require_active()?;
        if let Some(until) = self.locked_at(now) {
            return Err(AccountError::Locked { until });
        }
        self.check_hash(&proof.checked_hash)?;
        if proof.matched {
            return Ok(true);
        }
        sink.write(AccountEvent::LoginFailed { at: now }, self).await;
        if self.lockout.must_lock(proof.lockout_threshold) {
            sink.write(AccountEvent::Locked { at: now, until: now + proof.lockout }, self).await;
        }
        Ok(false)
    }

    async fn import_legacy(&mut self, cmd: AccountCommand, sink: &EventSink<Self>) -> Result<(), AccountError> {
        let AccountCommand::ImportLegacy { document_type, document_number, name, registered_at, .. } = cmd else {
            return Ok(());
        };
        if self.exists() {
            return Err(AccountError::AlreadyRegistered);
        }
        sink.write(AccountEvent::LegacyImported { document_type, document_number, name, registered_at }, self).await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn log_in(
        &mut self,
        password_matched: bool,
        checked_hash: &str,
        session: NewSession,
        threshold: u32,
        lockout: Duration,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let proof = PasswordProof {
            matched: password_matched,
            checked_hash: checked_hash.to_string(),
            lockout_threshold: threshold,
            lockout,
        };
        if self.prove(&proof, now, sink).await? {
            // At most MAX_SESSIONS live: a scripted login loop ends its own oldest sessions.
            let live: Vec<String> =
                self.sessions.iter().filter(|s| s.expires_at > now).map(|s| s.session_id.clone()).collect();
            if live.len() >= MAX_SESSIONS {
                for oldest in live.iter().take(live.len() + 1 - MAX_SESSIONS) {
                    sink.write(AccountEvent::SessionEnded { session_id: oldest.clone(), at: now }, self).await;
                }
            }
            let NewSession { session_id, token_hash, expires_at } = session;
            sink.write(AccountEvent::SessionStarted { session_id, token_hash, expires_at, at: now }, self).await;
        }
        Ok(())
    }

    async fn update_profile(
        &mut self,
        input: ProfileInput,
        validity: Option<Validity>,
        email: Option<Email>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        self.require_active()?;
        let doc_type = self.document_type.ok_or(AccountError::NotFound)?;
        match &self.profile {
            None => {
                let required = Self::required_profile_fields(doc_type);
                let given = |f: &str| match f {
                    "ethnicity" => input.ethnicity.is_some(),
                    "gender" => input.gender.is_some(),
                    "birth_date" => input.birth_date.is_some(),
                    "local_id_number" => input.local_id_number.is_some(),
                    "permit_number" => input.permit_number.is_some(),
                    _ => true,
                };
                let missing: Vec<&'static str> = required.iter().copied().filter(|f| !given(f)).collect();
                if !missing.is_empty() {
                    return Err(AccountError::MissingProfileFields(missing));
                }
                let profile = Profile {
                    ethnicity: input.ethnicity.unwrap_or_default(),
                    gender: input.gender,
                    birth_date: input.birth_date,
                    local_id_number: input.local_id_number,
                    permit_number: input.permit_number,
                };
                sink.write(AccountEvent::ProfileCompleted { profile, at: now }, self).await;
                self.edit_profile(None, validity, email, now, sink).await
            }
            Some(current) => {
                // After completion only ethnicity, validity and e-mail may change; resending an
                // unchanged value of another field is harmless.
                let unchanged = [
                    ("gender", input.gender.is_none() || input.gender == current.gender),
                    ("birth_date", input.birth_date.is_none() || input.birth_date == current.birth_date),
                    (
                        "local_id_number",
                        input.local_id_number.is_none() || input.local_id_number == current.local_id_number,
                    ),
                    ("permit_number", input.permit_number.is_none() || input.permit_number == current.permit_number),
                ];
                if let Some((field, _)) = unchanged.iter().find(|(_, ok)| !ok) {
                    return Err(AccountError::FieldNotModifiable(field));
                }
                self.edit_profile(input.ethnicity, validity, email, now, sink).await
            }
        }
    }

    async fn edit_profile(
        &mut self,
        ethnicity: Option<String>,
        validity: Option<Validity>,
        email: Option<Email>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let current = self.profile.as_ref().map(|p| p.ethnicity.clone());
        let ethnicity = ethnicity.filter(|e| Some(e) != current.as_ref());
        let validity = validity.filter(|v| Some(v) != self.validity.as_ref());
        let email = email.filter(|e| Some(e) != self.email.as_ref());
        if ethnicity.is_some() || validity.is_some() || email.is_some() {
            sink.write(AccountEvent::ProfileEdited { ethnicity, validity, email, at: now }, self).await;
        }
        Ok(())
    }

    async fn change_password(
        &mut self,
        proof: PasswordProof,
        new_password_hash: String,
        keep_session: String,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.prove(&proof, now, sink).await? {
            return Ok(());
        }
        sink.write(AccountEvent::PasswordChanged { password_hash: new_password_hash, at: now }, self).await;
        if self.sessions.iter().any(|s| s.session_id != keep_session) {
            sink.write(AccountEvent::SessionsRevoked { kept: Some(keep_session), at: now }, self).await;
        }
        Ok(())
    }

    async fn request_email_change(
        &mut self,
        proof: PasswordProof,
        email: Email,
        code_hash: String,
        ttl: Duration,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.prove(&proof, now, sink).await? || self.email.as_ref() == Some(&email) {
            return Ok(());
        }
        if let Some(pending) = &self.pending_email {
            let next = pending.requested_at + Duration::seconds(crate::code::RESEND_INTERVAL_SECONDS);
            if now < next {
                return Err(AccountError::RateLimited { retry_at: next });
            }
        }
        sink.write(AccountEvent::EmailChangeRequested { email, code_hash, expires_at: now + ttl, at: now }, self).await;
        Ok(())
    }

    async fn confirm_email_change(
        &mut self,
        code_hash: String,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        self.require_active()?;
        let pending = self
            .pending_email
            .clone()
            .filter(|p| now < p.expires_at && p.wrong_entries < MAX_EMAIL_CODE_WRONG_ENTRIES)
            .ok_or(AccountError::NoEmailChangePending)?;
        if pending.code_hash != code_hash {
            sink.write(AccountEvent::EmailChangeCodeRejected { at: now }, self).await;
            return Ok(());
        }
        sink.write(AccountEvent::EmailChanged { email: pending.email, at: now }, self).await;
        Ok(())
    }

    async fn request_contact_change(
        &mut self,
        request_id: String,
        mobile: Option<Mobile>,
        email: Option<Email>,
        by: SupportAction,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        self.require_active()?;
        let mobile = mobile.filter(|m| Some(m) != self.mobile.as_ref());
        let email = email.filter(|e| Some(e) != self.email.as_ref());
        if mobile.is_none() && email.is_none() {
            return Err(AccountError::NothingToChange);
        }
        sink.write(AccountEvent::ContactChangeRequested { request_id, mobile, email, by, at: now }, self).await;
        Ok(())
    }

    async fn approve_contact_change(
        &mut self,
        request_id: String,
        approver: String,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        self.require_active()?;
        let request = self
            .contact_requests
            .iter()
            .find(|r| r.request_id == request_id)
            .cloned()
            .ok_or(AccountError::ContactRequestNotFound)?;
        if request.by.agent == approver {
            return Err(AccountError::SameAgent);
        }
        let event = AccountEvent::ContactChangedBySupport {
            mobile: request.mobile,
            email: request.email,
            by: request.by,
            at: now,
            request_id: Some(request_id),
            approved_by: Some(approver),
        };
        sink.write(event, self).await;
        // Resets in flight could still go to the old contacts: they end.
        let pending: Vec<String> = self.resets.iter().filter(|r| !r.completed).map(|r| r.reset_id.clone()).collect();
        for reset_id in pending {
            sink.write(AccountEvent::ResetWithdrawn { reset_id, at: now }, self).await;
        }
        Ok(())
    }

    fn live_reset(&self, reset_id: &str, now: DateTime<Utc>) -> Result<&PendingReset, AccountError> {
        self.resets
            .iter()
            .find(|r| r.reset_id == reset_id)
            .filter(|r| !r.completed && now < r.requested_at + Duration::hours(RESET_VALIDITY_HOURS))
            .ok_or(AccountError::ResetNotFound)
    }

    async fn issue_reset_secret(&mut self, cmd: AccountCommand, sink: &EventSink<Self>) -> Result<(), AccountError> {
        let AccountCommand::IssueResetSecret { reset_id, method, secret_hash, ttl, now } = cmd else {
            return Ok(());
        };
        self.require_active()?;
        self.live_reset(&reset_id, now)?;
        if !self.reset_methods().contains(&method) {
            return Err(AccountError::MethodNotAvailable);
        }
        if let Some(last) = self.reset_deliveries.last() {
            let next = *last + Duration::seconds(crate::code::RESEND_INTERVAL_SECONDS);
            if now < next {
                return Err(AccountError::RateLimited { retry_at: next });
            }
        }
        let today = cst_date(now);
        if self.reset_deliveries.iter().filter(|t| cst_date(**t) == today).count() >= RESET_DELIVERIES_PER_DAY {
            let tomorrow = today.succ_opt().unwrap_or(today);
            return Err(AccountError::RateLimited { retry_at: cst_midnight(tomorrow) });
        }
        let event = AccountEvent::ResetSecretIssued { reset_id, method, secret_hash, expires_at: now + ttl, at: now };
        sink.write(event, self).await;
        Ok(())
    }

    async fn complete_reset(&mut self, cmd: AccountCommand, sink: &EventSink<Self>) -> Result<(), AccountError> {
        let AccountCommand::CompletePasswordReset { reset_id, secret_hash, new_password_hash, now } = cmd else {
            return Ok(());
        };
        self.require_active()?;
        let reset = self.live_reset(&reset_id, now).map_err(|_| AccountError::InvalidOrExpiredSecret)?;
        let usable = reset.wrong_entries < MAX_SECRET_WRONG_ENTRIES && reset.secret_expires_at.is_some_and(|t| now < t);
        let Some(expected) = reset.secret_hash.clone().filter(|_| usable) else {
            return Err(AccountError::InvalidOrExpiredSecret);
        };
        if expected != secret_hash {
            sink.write(AccountEvent::ResetSecretRejected { reset_id, at: now }, self).await;
            return Ok(());
        }
        if new_password_hash.is_empty() {
            // The caller skipped hashing because the secret looked wrong when it loaded.
            return Err(AccountError::StaleCredentials);
        }
        sink.write(AccountEvent::PasswordReset { reset_id, password_hash: new_password_hash, at: now }, self).await;
        if !self.sessions.is_empty() {
            sink.write(AccountEvent::SessionsRevoked { kept: None, at: now }, self).await;
        }
        Ok(())
    }

    async fn record_identity(&mut self, outcome: IdentityOutcome, sink: &EventSink<Self>) -> Result<(), AccountError> {
        let IdentityOutcome { verification_sequence, generation, status, name, validity, now } = outcome;
        // Already carried, or proof of an earlier holder (a re-registration came in between).
        if !self.exists() || verification_sequence <= self.verification_sequence || generation != self.generation {
            return Ok(());
        }
        let name = name.filter(|n| Some(n) != self.name.as_ref());
        let validity = validity.filter(|v| Some(v) != self.validity.as_ref());
        let name_changed = name.is_some();
        if name.is_some() || validity.is_some() {
            sink.write(AccountEvent::VerifiedIdentityApplied { name, validity, verification_sequence, at: now }, self)
                .await;
        }
        sink.write(AccountEvent::RealNameStatusChanged { status, verification_sequence, at: now }, self).await;
        if name_changed {
            sink.write(AccountEvent::ResubmissionRequired { reason: "name_changed".into(), at: now }, self).await;
        }
        Ok(())
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
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(&mut self, command: AccountCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AccountError> {
        match command {
            AccountCommand::Register(r) => self.register(r, sink).await,
            AccountCommand::Reregister(r) => self.reregister(r, sink).await,
            cmd @ AccountCommand::ImportLegacy { .. } => self.import_legacy(cmd, sink).await,
            AccountCommand::LogIn { password_matched, checked_hash, session, lockout_threshold, lockout, now } => {
                self.log_in(password_matched, &checked_hash, session, lockout_threshold, lockout, now, sink).await
            }
            AccountCommand::EndSession { session_id, now } => {
                if !self.sessions.iter().any(|s| s.session_id == session_id) {
                    return Err(AccountError::SessionNotFound);
                }
                sink.write(AccountEvent::SessionEnded { session_id, at: now }, self).await;
                Ok(())
            }
            AccountCommand::UpdateProfile { profile, validity, email, now } => {
                self.update_profile(profile, validity, email, now, sink).await
            }
            AccountCommand::ChangePassword { proof, new_password_hash, keep_session, now } => {
                self.change_password(proof, new_password_hash, keep_session, now, sink).await
            }
            AccountCommand::RequestEmailChange { proof, email, code_hash, ttl, now } => {
                self.request_email_change(proof, email, code_hash, ttl, now, sink).await
            }
            AccountCommand::ConfirmEmailChange { code_hash, now } => {
                self.confirm_email_change(code_hash, now, sink).await
            }
            AccountCommand::RequestPasswordReset { reset_id, name, now } => {
                if !self.exists() || self.name.as_ref() != Some(&name) {
                    return Err(AccountError::NotFound);
                }
                self.require_active()?;
                // At most MAX_PENDING_RESETS pending: a new one withdraws the oldest.
                let pending: Vec<String> = self
                    .resets
                    .iter()
                    .filter(|r| !r.completed && now < r.requested_at + Duration::hours(RESET_VALIDITY_HOURS))
                    .map(|r| r.reset_id.clone())
                    .collect();
                if pending.len() >= MAX_PENDING_RESETS {
                    for oldest in pending.iter().take(pending.len() + 1 - MAX_PENDING_RESETS) {
                        sink.write(AccountEvent::ResetWithdrawn { reset_id: oldest.clone(), at: now }, self).await;
                    }
                }
                sink.write(AccountEvent::PasswordResetRequested { reset_id, at: now }, self).await;
                Ok(())
            }
            cmd @ AccountCommand::IssueResetSecret { .. } => self.issue_reset_secret(cmd, sink).await,
            cmd @ AccountCommand::CompletePasswordReset { .. } => self.complete_reset(cmd, sink).await,
            AccountCommand::RecordIdentity(outcome) => self.record_identity(outcome, sink).await,
            AccountCommand::RequestContactChange { request_id, mobile, email, by, now } => {
                self.request_contact_change(request_id, mobile, email, by, now, sink).await
            }
            AccountCommand::ApproveContactChange { request_id, approver, now } => {
                self.approve_contact_change(request_id, approver, now, sink).await
            }
            AccountCommand::HandOver { claim_id, registration } => self.hand_over(claim_id, registration, sink).await,
            AccountCommand::SupportCorrect { gender, name, by, now } => {
                if !self.exists() {
                    return Err(AccountError::NotFound);
                }
                if gender.is_some() && self.profile.is_none() {
                    return Err(AccountError::ProfileIncomplete);
                }
                let gender = gender.filter(|g| self.profile.as_ref().and_then(|p| p.gender) != Some(*g));
                let name = name.filter(|n| Some(n) != self.name.as_ref());
                let verified_name_changed = name.is_some()
                    && matches!(self.real_name_status, RealNameStatus::Verified | RealNameStatus::ManualReviewApproved);
                if gender.is_some() || name.is_some() {
                    sink.write(AccountEvent::CorrectedBySupport { gender, name, by, at: now }, self).await;
                }
                if verified_name_changed {
                    let event = AccountEvent::ResubmissionRequired { reason: "name_corrected".into(), at: now };
                    sink.write(event, self).await;
                }
                Ok(())
            }
            AccountCommand::BindWechat { proof, openid, now } => {
                if !self.prove(&proof, now, sink).await? {
                    return Ok(());
                }
                if self.wechat_openid.as_ref() != Some(&openid) {
                    sink.write(AccountEvent::WechatBound { openid, at: now }, self).await;
                }
                Ok(())
            }
            AccountCommand::UnbindWechat { now } => {
                self.require_active()?;
                if self.wechat_openid.is_none() {
                    return Err(AccountError::WechatNotBound);
                }
                sink.write(AccountEvent::WechatUnbound { at: now }, self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: AccountEvent) {
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
            } => {
                self.document_type = Some(document_type);
                self.document_number = Some(document_number);
                self.registered_at = Some(registered_at);
                self.apply_registration(name, validity, email, mobile, password_hash);
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
