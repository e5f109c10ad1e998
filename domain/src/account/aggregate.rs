//! The account's decisions: `handle` dispatches each command to one private fn; `apply` folds
//! the events (see [`state`](super::state)).

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use crate::time::{cst_date, cst_midnight};

use super::commands::*;
use super::errors::AccountError;
use super::events::{AccountEvent, RealNameStatus};
use super::state::*;

type Sink = EventSink<Account>;
type Decided = Result<(), AccountError>;

impl Account {
    fn require_active(&self) -> Decided {
        if !self.exists() {
            return Err(AccountError::NotFound);
        }
        if self.legacy {
            return Err(AccountError::LegacyMustReregister);
        }
        Ok(())
    }

    fn check_hash(&self, checked: &str) -> Decided {
        if self.password_hash.as_deref() != Some(checked) {
            return Err(AccountError::StaleCredentials);
        }
        Ok(())
    }

    /// Checks a password checked outside: refused while locked or when the hash changed
    /// meanwhile; a wrong password is a failed login (counted, and locking at the threshold).
    /// Returns what the command does when the password was right.
    async fn prove<T>(
        &mut self,
        checked: Checked<T>,
        now: DateTime<Utc>,
        sink: &Sink,
    ) -> Result<Option<T>, AccountError> {
        self.require_active()?;
        if let Some(until) = self.locked_at(now) {
            return Err(AccountError::Locked { until });
        }
        self.check_hash(&checked.checked_hash)?;
        match checked.check {
            PasswordCheck::Right(then) => Ok(Some(then)),
            PasswordCheck::Wrong => {
                sink.write(AccountEvent::LoginFailed { at: now }, self).await;
                if self.lockout.must_lock(checked.lockout.threshold) {
                    let until = now + checked.lockout.duration;
                    sink.write(AccountEvent::Locked { at: now, until }, self).await;
                }
                Ok(None)
            }
        }
    }

    async fn revoke_sessions(&mut self, kept: Option<String>, now: DateTime<Utc>, sink: &Sink) {
        if self.sessions.iter().any(|s| Some(&s.session_id) != kept.as_ref()) {
            sink.write(AccountEvent::SessionsRevoked { kept, at: now }, self).await;
        }
    }

    async fn register(&mut self, r: Registration, sink: &Sink) -> Decided {
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
            consent: r.consent,
        };
        sink.write(event, self).await;
        Ok(())
    }

    /// The immediate re-registration (a legacy account: nobody can use it anyway).
    async fn reregister(&mut self, r: Registration, claim_id: Option<String>, sink: &Sink) -> Decided {
        if !self.exists() {
            return Err(AccountError::NotFound);
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
            claim_id,
            consent: r.consent,
        };
        sink.write(event, self).await;
        self.revoke_sessions(None, at, sink).await;
        // The name and validity were replaced.
        self.require_resubmission("reregistered", at, sink).await;
        Ok(())
    }

    /// An approved re-registration claim hands the account to the claimant.
    async fn hand_over(&mut self, c: HandOver, sink: &Sink) -> Decided {
        if self.claims_handed_over.contains(&c.claim_id) {
            return Ok(());
        }
        let at = c.registration.now;
        self.reregister(c.registration, Some(c.claim_id), sink).await?;
        if self.wechat_openid.is_some() {
            sink.write(AccountEvent::WechatUnbound { at }, self).await;
        }
        Ok(())
    }

    async fn import_legacy(&mut self, c: ImportLegacy, sink: &Sink) -> Decided {
        if self.exists() {
            return Err(AccountError::AlreadyRegistered);
        }
        let ImportLegacy { document_type, document_number, name, registered_at, .. } = c;
        sink.write(AccountEvent::LegacyImported { document_type, document_number, name, registered_at }, self).await;
        Ok(())
    }

    async fn log_in(&mut self, c: LogIn, sink: &Sink) -> Decided {
        let now = c.now;
        let Some(session) = self.prove(c.password, now, sink).await? else { return Ok(()) };
        // At most MAX_SESSIONS live: a scripted login loop ends its own oldest sessions.
        let live: Vec<String> =
            self.sessions.iter().filter(|s| s.expires_at > now).map(|s| s.session_id.clone()).collect();
        for oldest in live.iter().take((live.len() + 1).saturating_sub(MAX_SESSIONS)) {
            sink.write(AccountEvent::SessionEnded { session_id: oldest.clone(), at: now }, self).await;
        }
        let NewSession { session_id, token_hash, expires_at } = session;
        sink.write(AccountEvent::SessionStarted { session_id, token_hash, expires_at, at: now }, self).await;
        // Logging in during the cooling-off period withdraws a deletion request.
        if self.deletion_effective_at.is_some() {
            sink.write(AccountEvent::DeletionCancelled { at: now }, self).await;
        }
        Ok(())
    }

    async fn request_deletion(&mut self, c: RequestDeletion, sink: &Sink) -> Decided {
        let now = c.now;
        let Some(effective_at) = self.prove(c.password, now, sink).await? else { return Ok(()) };
        if self.real_name_status == RealNameStatus::ManualReviewPending {
            return Err(AccountError::ManualReviewPending);
        }
        // Asked again: the first request's date stands.
        if self.deletion_effective_at.is_none() {
            sink.write(AccountEvent::DeletionRequested { effective_at, at: now }, self).await;
        }
        Ok(())
    }

    async fn cancel_deletion(&mut self, c: CancelDeletion, sink: &Sink) -> Decided {
        if self.deletion_effective_at.is_none() {
            return Err(AccountError::NoDeletionPending);
        }
        sink.write(AccountEvent::DeletionCancelled { at: c.now }, self).await;
        Ok(())
    }

    async fn erase(&mut self, c: Erase, sink: &Sink) -> Decided {
        let due = self.deletion_effective_at.ok_or(AccountError::NoDeletionPending)?;
        if c.now < due {
            return Err(AccountError::NoDeletionPending);
        }
        let event = AccountEvent::Erased {
            generation: self.generation + 1,
            key_version: c.key_version,
            at: c.now,
            restored_from: None,
        };
        sink.write(event, self).await;
        Ok(())
    }

    /// An erasure the erasure journal holds and the (restored) stream lacks: the account is
    /// erased again, whatever deletion is pending or not. Nothing when it is erased already or
    /// was never registered.
    async fn reapply_erasure(&mut self, c: ReapplyErasure, sink: &Sink) -> Decided {
        if !self.exists() || self.erased {
            return Ok(());
        }
        let event = AccountEvent::Erased {
            generation: self.generation + 1,
            key_version: c.key_version,
            at: c.now,
            restored_from: Some(c.erased_at),
        };
        sink.write(event, self).await;
        Ok(())
    }

    async fn end_session(&mut self, c: EndSession, sink: &Sink) -> Decided {
        if !self.sessions.iter().any(|s| s.session_id == c.session_id) {
            return Err(AccountError::SessionNotFound);
        }
        sink.write(AccountEvent::SessionEnded { session_id: c.session_id, at: c.now }, self).await;
        Ok(())
    }

    async fn update_profile(&mut self, c: UpdateProfile, sink: &Sink) -> Decided {
        self.require_active()?;
        let doc_type = self.document_type.ok_or(AccountError::NotFound)?;
        let UpdateProfile { profile: input, validity, now } = c;
        let Some(current) = &self.profile else {
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
            let Some(ethnicity) = input.ethnicity.filter(|_| missing.is_empty()) else {
                return Err(AccountError::MissingProfileFields(missing));
            };
            let profile = super::events::Profile {
                ethnicity,
                gender: input.gender,
                birth_date: input.birth_date,
                local_id_number: input.local_id_number,
                permit_number: input.permit_number,
            };
            sink.write(AccountEvent::ProfileCompleted { profile, at: now }, self).await;
            return self.edit_profile(None, validity, now, sink).await;
        };
        // After completion only ethnicity and validity change here; resending an unchanged
        // value of another field is harmless.
        let unchanged = [
            ("gender", input.gender.is_none() || input.gender == current.gender),
            ("birth_date", input.birth_date.is_none() || input.birth_date == current.birth_date),
            ("local_id_number", input.local_id_number.is_none() || input.local_id_number == current.local_id_number),
            ("permit_number", input.permit_number.is_none() || input.permit_number == current.permit_number),
        ];
        if let Some((field, _)) = unchanged.iter().find(|(_, ok)| !ok) {
            return Err(AccountError::FieldNotModifiable(field));
        }
        self.edit_profile(input.ethnicity, validity, now, sink).await
    }

    /// Tells downstream services that applications made with the identity information as it
    /// was must be resubmitted (source document 001: after a change in 个人信息中心, 报名信息
    /// must be confirmed again). Written after every change of name, validity, ethnicity,
    /// gender, birth date or permit fields, by the holder, by support, or by a verification.
    async fn require_resubmission(&mut self, reason: &str, now: DateTime<Utc>, sink: &Sink) {
        sink.write(AccountEvent::ResubmissionRequired { reason: reason.into(), at: now }, self).await;
    }

    async fn edit_profile(
        &mut self,
        ethnicity: Option<crate::shared::ethnicity::Ethnicity>,
        validity: Option<crate::shared::validity::Validity>,
        now: DateTime<Utc>,
        sink: &Sink,
    ) -> Decided {
        let current = self.profile.as_ref().map(|p| p.ethnicity.clone());
        let ethnicity = ethnicity.filter(|e| Some(e) != current.as_ref());
        let validity = validity.filter(|v| Some(v) != self.validity.as_ref());
        if ethnicity.is_some() || validity.is_some() {
            sink.write(AccountEvent::ProfileEdited { ethnicity, validity, email: None, at: now }, self).await;
            self.require_resubmission("profile_edited", now, sink).await;
        }
        Ok(())
    }

    async fn change_password(&mut self, c: ChangePassword, sink: &Sink) -> Decided {
        let now = c.now;
        let Some(change) = self.prove(c.password, now, sink).await? else { return Ok(()) };
        sink.write(AccountEvent::PasswordChanged { password_hash: change.new_password_hash, at: now }, self).await;
        self.revoke_sessions(Some(change.keep_session), now, sink).await;
        Ok(())
    }

    async fn request_email_change(&mut self, c: RequestEmailChange, sink: &Sink) -> Decided {
        let now = c.now;
        let Some(change) = self.prove(c.password, now, sink).await? else { return Ok(()) };
        if self.email.as_ref() == Some(&change.email) {
            return Ok(());
        }
        if let Some(pending) = &self.pending_email {
            let next = pending.requested_at + Duration::seconds(crate::code::RESEND_INTERVAL_SECONDS);
            if now < next {
                return Err(AccountError::RateLimited { retry_at: next });
            }
        }
        let EmailChange { email, code_hash, ttl } = change;
        sink.write(AccountEvent::EmailChangeRequested { email, code_hash, expires_at: now + ttl, at: now }, self).await;
        Ok(())
    }

    async fn confirm_email_change(&mut self, c: ConfirmEmailChange, sink: &Sink) -> Decided {
        self.require_active()?;
        let now = c.now;
        let pending = self
            .pending_email
            .clone()
            .filter(|p| now < p.expires_at && p.wrong_entries < MAX_EMAIL_CODE_WRONG_ENTRIES)
            .ok_or(AccountError::NoEmailChangePending)?;
        if pending.code_hash != c.code_hash {
            sink.write(AccountEvent::EmailChangeCodeRejected { at: now }, self).await;
            return Ok(());
        }
        sink.write(AccountEvent::EmailChanged { email: pending.email, at: now }, self).await;
        Ok(())
    }

    async fn request_password_reset(&mut self, c: RequestPasswordReset, sink: &Sink) -> Decided {
        if !self.exists() || self.name.as_ref() != Some(&c.name) {
            return Err(AccountError::NotFound);
        }
        self.require_active()?;
        let now = c.now;
        // At most MAX_PENDING_RESETS pending: a new one withdraws the oldest.
        let pending: Vec<String> = self
            .resets
            .iter()
            .filter(|r| !r.completed && now < r.requested_at + Duration::hours(RESET_VALIDITY_HOURS))
            .map(|r| r.reset_id.clone())
            .collect();
        for oldest in pending.iter().take((pending.len() + 1).saturating_sub(MAX_PENDING_RESETS)) {
            sink.write(AccountEvent::ResetWithdrawn { reset_id: oldest.clone(), at: now }, self).await;
        }
        sink.write(AccountEvent::PasswordResetRequested { reset_id: c.reset_id, at: now }, self).await;
        Ok(())
    }

    fn live_reset(&self, reset_id: &str, now: DateTime<Utc>) -> Result<&PendingReset, AccountError> {
        self.resets
            .iter()
            .find(|r| r.reset_id == reset_id)
            .filter(|r| !r.completed && now < r.requested_at + Duration::hours(RESET_VALIDITY_HOURS))
            .ok_or(AccountError::ResetNotFound)
    }

    async fn issue_reset_secret(&mut self, c: IssueResetSecret, sink: &Sink) -> Decided {
        let IssueResetSecret { reset_id, method, secret_hash, ttl, now } = c;
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

    async fn complete_reset(&mut self, c: CompletePasswordReset, sink: &Sink) -> Decided {
        let CompletePasswordReset { reset_id, secret_hash, new_password_hash, now } = c;
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
        // The caller skipped hashing because the secret looked wrong when it loaded.
        let password_hash = new_password_hash.ok_or(AccountError::StaleCredentials)?;
        sink.write(AccountEvent::PasswordReset { reset_id, password_hash, at: now }, self).await;
        self.revoke_sessions(None, now, sink).await;
        Ok(())
    }

    async fn record_identity(&mut self, outcome: IdentityOutcome, sink: &Sink) -> Decided {
        let IdentityOutcome { verification_sequence, generation, status, name, validity, now } = outcome;
        // Already carried, or proof of an earlier holder (a re-registration came in between).
        if !self.exists() || verification_sequence <= self.verification_sequence || generation != self.generation {
            return Ok(());
        }
        let name = name.filter(|n| Some(n) != self.name.as_ref());
        let validity = validity.filter(|v| Some(v) != self.validity.as_ref());
        let reason = match (&name, &validity) {
            (Some(_), _) => Some("name_changed"),
            (None, Some(_)) => Some("validity_changed"),
            (None, None) => None,
        };
        if name.is_some() || validity.is_some() {
            sink.write(AccountEvent::VerifiedIdentityApplied { name, validity, verification_sequence, at: now }, self)
                .await;
        }
        sink.write(AccountEvent::RealNameStatusChanged { status, verification_sequence, at: now }, self).await;
        if let Some(reason) = reason {
            self.require_resubmission(reason, now, sink).await;
        }
        Ok(())
    }

    async fn request_contact_change(&mut self, c: RequestContactChange, sink: &Sink) -> Decided {
        self.require_active()?;
        let RequestContactChange { request_id, mobile, email, by, now } = c;
        let mobile = mobile.filter(|m| Some(m) != self.mobile.as_ref());
        let email = email.filter(|e| Some(e) != self.email.as_ref());
        if mobile.is_none() && email.is_none() {
            return Err(AccountError::NothingToChange);
        }
        sink.write(AccountEvent::ContactChangeRequested { request_id, mobile, email, by, at: now }, self).await;
        Ok(())
    }

    async fn approve_contact_change(&mut self, c: ApproveContactChange, sink: &Sink) -> Decided {
        self.require_active()?;
        let ApproveContactChange { request_id, approver, now } = c;
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

    async fn support_correct(&mut self, c: SupportCorrect, sink: &Sink) -> Decided {
        if !self.exists() {
            return Err(AccountError::NotFound);
        }
        let SupportCorrect { gender, name, by, now } = c;
        if gender.is_some() && self.profile.is_none() {
            return Err(AccountError::ProfileIncomplete);
        }
        let gender = gender.filter(|g| self.profile.as_ref().and_then(|p| p.gender) != Some(*g));
        let name = name.filter(|n| Some(n) != self.name.as_ref());
        let reason = if name.is_some() { "name_corrected" } else { "gender_corrected" };
        if gender.is_some() || name.is_some() {
            sink.write(AccountEvent::CorrectedBySupport { gender, name, by, at: now }, self).await;
            self.require_resubmission(reason, now, sink).await;
        }
        Ok(())
    }

    async fn bind_wechat(&mut self, c: BindWechat, sink: &Sink) -> Decided {
        let now = c.now;
        let Some(openid) = self.prove(c.password, now, sink).await? else { return Ok(()) };
        if self.wechat_openid.as_ref() != Some(&openid) {
            sink.write(AccountEvent::WechatBound { openid, at: now }, self).await;
        }
        Ok(())
    }

    async fn unbind_wechat(&mut self, c: UnbindWechat, sink: &Sink) -> Decided {
        self.require_active()?;
        if self.wechat_openid.is_none() {
            return Err(AccountError::WechatNotBound);
        }
        sink.write(AccountEvent::WechatUnbound { at: c.now }, self).await;
        Ok(())
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(&mut self, command: AccountCommand, _: &(), sink: &Sink) -> Decided {
        match command {
            AccountCommand::Register(c) => self.register(c, sink).await,
            AccountCommand::Reregister(c) => self.reregister(c, None, sink).await,
            AccountCommand::ImportLegacy(c) => self.import_legacy(c, sink).await,
            AccountCommand::LogIn(c) => self.log_in(c, sink).await,
            AccountCommand::EndSession(c) => self.end_session(c, sink).await,
            AccountCommand::UpdateProfile(c) => self.update_profile(c, sink).await,
            AccountCommand::ChangePassword(c) => self.change_password(c, sink).await,
            AccountCommand::RequestEmailChange(c) => self.request_email_change(c, sink).await,
            AccountCommand::ConfirmEmailChange(c) => self.confirm_email_change(c, sink).await,
            AccountCommand::RequestPasswordReset(c) => self.request_password_reset(c, sink).await,
            AccountCommand::IssueResetSecret(c) => self.issue_reset_secret(c, sink).await,
            AccountCommand::CompletePasswordReset(c) => self.complete_reset(c, sink).await,
            AccountCommand::RecordIdentity(c) => self.record_identity(c, sink).await,
            AccountCommand::RequestContactChange(c) => self.request_contact_change(c, sink).await,
            AccountCommand::ApproveContactChange(c) => self.approve_contact_change(c, sink).await,
            AccountCommand::SupportCorrect(c) => self.support_correct(c, sink).await,
            AccountCommand::BindWechat(c) => self.bind_wechat(c, sink).await,
            AccountCommand::UnbindWechat(c) => self.unbind_wechat(c, sink).await,
            AccountCommand::HandOver(c) => self.hand_over(c, sink).await,
            AccountCommand::RequestDeletion(c) => self.request_deletion(c, sink).await,
            AccountCommand::CancelDeletion(c) => self.cancel_deletion(c, sink).await,
            AccountCommand::Erase(c) => self.erase(c, sink).await,
            AccountCommand::ReapplyErasure(c) => self.reapply_erasure(c, sink).await,
        }
    }

    fn apply(&mut self, event: AccountEvent) {
        self.apply_event(event);
    }
}
