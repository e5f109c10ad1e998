//! Verification commands: one type per command.

use chrono::{DateTime, NaiveDate, Utc};

use crate::shared::document::DocumentType;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;

use super::events::{AuthorityAnswer, Photos};

/// Commands on a verification stream.
#[derive(Debug, Clone, PartialEq)]
pub enum VerificationCommand {
    StartAttempt(StartAttempt),
    RecordAnswer(RecordAnswer),
    Apply(Apply),
    Claim(ClaimApplication),
    Decide(DecideApplication),
    Reset(Reset),
    DeletePhotos(DeletePhotos),
}

/// Deletes the ID photos of a decided application once they have been kept `retention` after
/// the decision (PIPL: kept no longer than needed). Nothing happens before, or twice.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletePhotos {
    pub review_id: String,
    pub retention: chrono::Duration,
    pub now: DateTime<Utc>,
}

/// Record a real-name attempt before calling the authority.
#[derive(Debug, Clone, PartialEq)]
pub struct StartAttempt {
    pub account_id: String,
    pub attempt_id: String,
    pub name: PersonName,
    pub validity: Option<Validity>,
    /// Attempts whose start is older than this instant and still in flight are abandoned.
    pub abandon_before: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Record the authority's answer to an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordAnswer {
    pub attempt_id: String,
    pub answer: AuthorityAnswer,
    pub now: DateTime<Utc>,
}

/// What a manual review is asked to accept: the document type, the name and validity, and the
/// digests of the three photos.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRequest {
    pub document_type: DocumentType,
    pub name: PersonName,
    pub validity: Validity,
    pub photos: Photos,
}

/// Apply for manual review.
#[derive(Debug, Clone, PartialEq)]
pub struct Apply {
    pub account_id: String,
    pub review_id: String,
    pub request: ReviewRequest,
    pub due_by: NaiveDate,
    pub now: DateTime<Utc>,
}

/// A reviewer claims an application (never one of their own account).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimApplication {
    pub review_id: String,
    pub reviewer: String,
    pub reviewer_account: Option<String>,
    pub now: DateTime<Utc>,
}

/// A reviewer's decision: approval, or rejection with the reason the applicant is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject { reason: String },
}

/// The claiming reviewer decides.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideApplication {
    pub review_id: String,
    pub reviewer: String,
    pub decision: Decision,
    pub now: DateTime<Utc>,
}

/// The account registered again: identity must be proven again. `generation` is the
/// account's identity generation after the re-registration (`None` for re-registrations
/// recorded before generations existed); `claim_id` names the approved re-registration claim
/// that made the new holder.
#[derive(Debug, Clone, PartialEq)]
pub struct Reset {
    pub source: String,
    pub generation: Option<u32>,
    pub claim_id: Option<String>,
    pub now: DateTime<Utc>,
}
