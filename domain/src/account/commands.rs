//! Account commands: one type per command, each carrying the instant it happens at and any
//! secret already hashed (hashing is slow and happens outside the aggregate).

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::shared::contact::{Email, Mobile};
use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::ethnicity::Ethnicity;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::shared::Gender;

use super::events::{Consent, RealNameStatus, ResetMethod, SupportAction};

/// Commands on an account.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    Register(Registration),
    Reregister(Registration),
    ImportLegacy(ImportLegacy),
    LogIn(LogIn),
    EndSession(EndSession),
    UpdateProfile(UpdateProfile),
    ChangePassword(ChangePassword),
    RequestEmailChange(RequestEmailChange),
    ConfirmEmailChange(ConfirmEmailChange),
    RequestPasswordReset(RequestPasswordReset),
    IssueResetSecret(IssueResetSecret),
    CompletePasswordReset(CompletePasswordReset),
    RecordIdentity(IdentityOutcome),
    RequestContactChange(RequestContactChange),
    ApproveContactChange(ApproveContactChange),
    SupportCorrect(SupportCorrect),
    BindWechat(BindWechat),
    UnbindWechat(UnbindWechat),
    HandOver(HandOver),
    RequestDeletion(RequestDeletion),
    CancelDeletion(CancelDeletion),
    Erase(Erase),
    ReapplyErasure(ReapplyErasure),
}

/// The holder asks for the account's deletion (注销), proving the password; it is erased at
/// `effective_at` unless they log in or cancel before.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestDeletion {
    pub password: Checked<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// The holder withdraws a deletion request.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelDeletion {
    pub now: DateTime<Utc>,
}

/// The erasure of an account whose deletion fell due: what remains names no one.
#[derive(Debug, Clone, PartialEq)]
pub struct Erase {
    /// The data subject's newest key version now: the erasure destroys it and those before
    /// (a key made later, for a new registration of the document, is not the erased one's).
    pub key_version: u32,
    pub now: DateTime<Utc>,
}

/// Applies again an erasure recorded in the erasure journal that a restored database backup
/// lacks (see the server's start-up).
#[derive(Debug, Clone, PartialEq)]
pub struct ReapplyErasure {
    /// The key version the journal says was destroyed.
    pub key_version: u32,
    /// When the erasure was first made.
    pub erased_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Everything a (re-)registration sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub document_type: DocumentType,
    pub document_number: DocumentNumber,
    pub name: PersonName,
    pub validity: Validity,
    pub email: Email,
    pub mobile: Mobile,
    pub password_hash: String,
    /// The agreement accepted with it (none for a hand-over, accepted with the claim).
    pub consent: Option<Consent>,
    pub now: DateTime<Utc>,
}

/// An account from before the cut-over, imported by an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportLegacy {
    pub document_type: DocumentType,
    pub document_number: DocumentNumber,
    pub name: PersonName,
    pub registered_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// How many consecutive failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub duration: Duration,
}

/// What a password checked outside the aggregate gave: `Right` with what the command does
/// then, or `Wrong` — a failed login, counted towards the lock.
#[derive(Debug, Clone, PartialEq)]
pub enum PasswordCheck<T> {
    Right(T),
    Wrong,
}

/// A password checked against `checked_hash`, the hash the account had when it was checked (a
/// password changed in between makes the command stale), under `lockout`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<T> {
    pub checked_hash: String,
    pub lockout: LockoutPolicy,
    pub check: PasswordCheck<T>,
}

/// A session to start on a successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub session_id: String,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// A login attempt: a session to start if the password was right.
#[derive(Debug, Clone, PartialEq)]
pub struct LogIn {
    pub password: Checked<NewSession>,
    pub now: DateTime<Utc>,
}

/// A logout.
#[derive(Debug, Clone, PartialEq)]
pub struct EndSession {
    pub session_id: String,
    pub now: DateTime<Utc>,
}

/// The first-login profile (fields by document type).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileInput {
    pub ethnicity: Option<Ethnicity>,
    pub gender: Option<Gender>,
    pub birth_date: Option<NaiveDate>,
    pub local_id_number: Option<String>,
    pub permit_number: Option<String>,
}

/// Complete or edit the profile; which one is decided by the state.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateProfile {
    pub profile: ProfileInput,
    pub validity: Option<Validity>,
    pub now: DateTime<Utc>,
}

/// A new password, and the session that stays signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPassword {
    pub new_password_hash: String,
    pub keep_session: String,
}

/// The holder changes the password, proving the current one; other sessions end.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePassword {
    pub password: Checked<NewPassword>,
    pub now: DateTime<Utc>,
}

/// A new e-mail address and the (hashed) code sent to it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailChange {
    pub email: Email,
    pub code_hash: String,
    pub ttl: Duration,
}

/// The holder asks to change the e-mail address, proving the password; the change applies
/// once the code sent to the new address is confirmed.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEmailChange {
    pub password: Checked<EmailChange>,
    pub now: DateTime<Utc>,
}

/// The code sent to the new address, entered by the holder.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmEmailChange {
    pub code_hash: String,
    pub now: DateTime<Utc>,
}

/// Forgot password: who asks must give the registered name.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPasswordReset {
    pub reset_id: String,
    pub name: PersonName,
    pub now: DateTime<Utc>,
}

/// A reset secret (its hash) to send by `method`.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueResetSecret {
    pub reset_id: String,
    pub method: ResetMethod,
    pub secret_hash: String,
    pub ttl: Duration,
    pub now: DateTime<Utc>,
}

/// The secret entered to complete a reset, and the new password's hash — `None` when it was not
/// hashed because the secret looked wrong (a right secret then asks for it: `StaleCredentials`).
#[derive(Debug, Clone, PartialEq)]
pub struct CompletePasswordReset {
    pub reset_id: String,
    pub secret_hash: String,
    pub new_password_hash: Option<String>,
    pub now: DateTime<Utc>,
}

/// One verification event's outcome, as the identity process manager carries it to the
/// account: everything is as of that event (its own sequence, and the stream's status and
/// generation folded up to it), never as of the stream's head, so a process manager that runs
/// behind carries each event exactly as it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityOutcome {
    /// The event's sequence in the verification stream: the account applies each once, in order.
    pub verification_sequence: i64,
    /// The verification stream's generation at that event; the account ignores outcomes of a
    /// generation other than its own (proof given before a re-registration).
    pub generation: u32,
    pub status: RealNameStatus,
    /// The name and validity the event proved (a pass or an approval).
    pub name: Option<PersonName>,
    pub validity: Option<Validity>,
    pub now: DateTime<Utc>,
}

/// A support agent asks to change the contact, on the holder's e-mailed request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestContactChange {
    pub request_id: String,
    pub mobile: Option<Mobile>,
    pub email: Option<Email>,
    pub by: SupportAction,
    pub now: DateTime<Utc>,
}

/// A second support agent approves a contact change: it applies now.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproveContactChange {
    pub request_id: String,
    pub approver: String,
    pub now: DateTime<Utc>,
}

/// A support agent corrects the gender or a garbled name.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportCorrect {
    pub gender: Option<Gender>,
    pub name: Option<PersonName>,
    pub by: SupportAction,
    pub now: DateTime<Utc>,
}

/// Binds WeChat, proving the password; the openid comes from the WeChat port.
#[derive(Debug, Clone, PartialEq)]
pub struct BindWechat {
    pub password: Checked<String>,
    pub now: DateTime<Utc>,
}

/// Unbinds WeChat.
#[derive(Debug, Clone, PartialEq)]
pub struct UnbindWechat {
    pub now: DateTime<Utc>,
}

/// A re-registration claim was approved: the claimant's credentials, contacts, name and
/// validity replace the holder's, every session ends, WeChat is unbound.
#[derive(Debug, Clone, PartialEq)]
pub struct HandOver {
    pub claim_id: String,
    pub registration: Registration,
}
