//! Account commands. Each carries the instant it happens at and any secret already hashed.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::shared::contact::{Email, Mobile};
use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::shared::Gender;

use super::aggregate::RealNameStatus;
use super::events::ResetMethod;

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
    pub now: DateTime<Utc>,
}

/// A session to start on a successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub session_id: String,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// The first-login profile (fields by document type).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileInput {
    pub ethnicity: Option<String>,
    pub gender: Option<Gender>,
    pub birth_date: Option<NaiveDate>,
    pub local_id_number: Option<String>,
    pub permit_number: Option<String>,
}

/// Commands on an account.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    Register(Registration),
    Reregister(Registration),
    ImportLegacy {
        document_type: DocumentType,
        document_number: DocumentNumber,
        name: PersonName,
        registered_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// A login attempt whose password was checked against `checked_hash`.
    LogIn {
        password_matched: bool,
        checked_hash: String,
        session: NewSession,
        lockout_threshold: u32,
        lockout: Duration,
        now: DateTime<Utc>,
    },
    EndSession {
        session_id: String,
        now: DateTime<Utc>,
    },
    /// Complete or edit the profile; which one is decided by the state. (`email` is only
    /// set by commands of earlier versions: an e-mail change is [`AccountCommand::RequestEmailChange`].)
    UpdateProfile {
        profile: ProfileInput,
        validity: Option<Validity>,
        email: Option<Email>,
        now: DateTime<Utc>,
    },
    /// The holder changes the password, proving the current one.
    ChangePassword {
        proof: PasswordProof,
        new_password_hash: String,
        keep_session: String,
        now: DateTime<Utc>,
    },
    /// The holder asks to change the e-mail address, proving the password; the change applies
    /// once the code sent to the new address is confirmed.
    RequestEmailChange {
        proof: PasswordProof,
        email: Email,
        code_hash: String,
        ttl: Duration,
        now: DateTime<Utc>,
    },
    /// The code sent to the new address, entered by the holder.
    ConfirmEmailChange {
        code_hash: String,
        now: DateTime<Utc>,
    },
    RequestPasswordReset {
        reset_id: String,
        name: PersonName,
        now: DateTime<Utc>,
    },
    IssueResetSecret {
        reset_id: String,
        method: ResetMethod,
        secret_hash: String,
        ttl: Duration,
        now: DateTime<Utc>,
    },
    CompletePasswordReset {
        reset_id: String,
        secret_hash: String,
        new_password_hash: String,
        now: DateTime<Utc>,
    },
    /// The verification stream's outcome, forwarded by the identity process manager.
    RecordIdentity(IdentityOutcome),
    /// A support agent asks to change the contact, on the holder's e-mailed request.
    RequestContactChange {
        request_id: String,
        mobile: Option<Mobile>,
        email: Option<Email>,
        by: SupportAction,
        now: DateTime<Utc>,
    },
    /// A second support agent approves a contact change: it applies now.
    ApproveContactChange {
        request_id: String,
        approver: String,
        now: DateTime<Utc>,
    },
    /// A support agent corrects the gender or a garbled name.
    SupportCorrect {
        gender: Option<Gender>,
        name: Option<PersonName>,
        by: SupportAction,
        now: DateTime<Utc>,
    },
    /// Binds WeChat, proving the password; the openid comes from the WeChat port.
    BindWechat {
        proof: PasswordProof,
        openid: String,
        now: DateTime<Utc>,
    },
    /// A re-registration claim was approved: the claimant's credentials, contacts, name and
    /// validity replace the holder's, every session ends, WeChat is unbound.
    HandOver {
        claim_id: String,
        registration: Registration,
    },
    UnbindWechat {
        now: DateTime<Utc>,
    },
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

/// A password checked outside the aggregate (hashing is slow): whether it matched
/// `checked_hash`, the hash the account had when it was checked. A wrong password counts as a
/// failed login, with the lockout rules given.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordProof {
    pub matched: bool,
    pub checked_hash: String,
    pub lockout_threshold: u32,
    pub lockout: Duration,
}

/// Who did a support action, why, and on what evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SupportAction {
    pub agent: String,
    pub reason: String,
    pub evidence_ref: String,
}
