//! Verification commands.

use chrono::{DateTime, NaiveDate, Utc};

use crate::shared::document::DocumentType;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;

use super::events::{AuthorityAnswer, Photos};

/// Commands on a verification stream.
#[derive(Debug, Clone, PartialEq)]
pub enum VerificationCommand {
    /// Record a real-name attempt before calling the authority.
    StartAttempt {
        account_id: String,
        attempt_id: String,
        name: PersonName,
        validity: Option<Validity>,
        /// Attempts whose start is older than this instant and still in flight are abandoned.
        abandon_before: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// Record the authority's answer to an attempt.
    RecordAnswer { attempt_id: String, answer: AuthorityAnswer, now: DateTime<Utc> },
    /// Apply for manual review.
    Apply {
        account_id: String,
        review_id: String,
        document_type: DocumentType,
        name: PersonName,
        validity: Validity,
        photos: Photos,
        due_by: NaiveDate,
        now: DateTime<Utc>,
    },
    /// A reviewer claims an application.
    Claim { review_id: String, reviewer: String, reviewer_account: Option<String>, now: DateTime<Utc> },
    /// The claiming reviewer decides.
    Decide { review_id: String, reviewer: String, approve: bool, reason: Option<String>, now: DateTime<Utc> },
    /// The account registered again: identity must be proven again. `generation` is the
    /// account's identity generation after the re-registration (`None` for re-registrations
    /// recorded before generations existed).
    /// `claim_id` names the approved re-registration claim that made the new holder.
    Reset { source: String, generation: Option<u32>, claim_id: Option<String>, now: DateTime<Utc> },
}
