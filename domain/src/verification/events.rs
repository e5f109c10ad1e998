//! Verification events: the schema of the verification stream.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::shared::document::DocumentType;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;

/// What the identity authority answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AuthorityAnswer {
    Passed,
    Failed { reason: String },
    Unavailable,
}

/// SHA-256 digests (hex) of the three photos of an application, stored outside the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photos {
    pub front: String,
    pub back: String,
    pub handheld: String,
}

impl Photos {
    /// The three digests.
    pub fn digests(&self) -> [&str; 3] {
        [&self.front, &self.back, &self.handheld]
    }
}

/// Events of a verification stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VerificationEvent {
    AttemptStarted {
        account_id: String,
        attempt_id: String,
        name: PersonName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        validity: Option<Validity>,
        at: DateTime<Utc>,
    },
    /// The authority confirmed the identity; carries the name and validity it confirmed.
    AttemptPassed {
        attempt_id: String,
        name: PersonName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        validity: Option<Validity>,
        at: DateTime<Utc>,
    },
    AttemptFailed {
        attempt_id: String,
        reason: String,
        at: DateTime<Utc>,
    },
    /// The attempt does not count: the authority was unavailable, or it was abandoned.
    AttemptVoided {
        attempt_id: String,
        reason: String,
        at: DateTime<Utc>,
    },
    ApplicationSubmitted {
        account_id: String,
        review_id: String,
        document_type: DocumentType,
        name: PersonName,
        validity: Validity,
        photos: Photos,
        due_by: NaiveDate,
        at: DateTime<Utc>,
    },
    ApplicationClaimed {
        review_id: String,
        reviewer: String,
        at: DateTime<Utc>,
    },
    /// Approved; carries the name and validity the reviewer accepted.
    ApplicationApproved {
        review_id: String,
        reviewer: String,
        reason: Option<String>,
        name: PersonName,
        validity: Validity,
        at: DateTime<Utc>,
    },
    ApplicationRejected {
        review_id: String,
        reviewer: String,
        reason: String,
        at: DateTime<Utc>,
    },
    /// The account registered again; the identity must be proven again.
    Reset {
        source: String,
        at: DateTime<Utc>,
        /// The account's identity generation this reset brings the stream to (absent in resets
        /// written before generations existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generation: Option<u32>,
        /// The re-registration claim whose approved proof (a manual review of the claimant)
        /// made the new holder: the identity stands approved at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim_id: Option<String>,
    },
    /// A pending application ended undecided: the account was handed to someone else.
    ApplicationWithdrawn {
        review_id: String,
        reason: String,
        at: DateTime<Utc>,
    },
    /// The application's ID photos were deleted, their retention period over.
    ApplicationPhotosDeleted {
        review_id: String,
        at: DateTime<Utc>,
    },
}

impl VerificationEvent {
    /// The event's name in the store.
    pub fn name(&self) -> &'static str {
        match self {
            VerificationEvent::AttemptStarted { .. } => "AttemptStarted",
            VerificationEvent::AttemptPassed { .. } => "AttemptPassed",
            VerificationEvent::AttemptFailed { .. } => "AttemptFailed",
            VerificationEvent::AttemptVoided { .. } => "AttemptVoided",
            VerificationEvent::ApplicationSubmitted { .. } => "ApplicationSubmitted",
            VerificationEvent::ApplicationClaimed { .. } => "ApplicationClaimed",
            VerificationEvent::ApplicationApproved { .. } => "ApplicationApproved",
            VerificationEvent::ApplicationRejected { .. } => "ApplicationRejected",
            VerificationEvent::Reset { .. } => "Reset",
            VerificationEvent::ApplicationWithdrawn { .. } => "ApplicationWithdrawn",
            VerificationEvent::ApplicationPhotosDeleted { .. } => "ApplicationPhotosDeleted",
        }
    }
}

impl DomainEvent for VerificationEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
