//! Re-registration claims (我要重新注册 of an account in use): one stream per claim.
//!
//! Knowing a document number must never be enough to take an account. So re-registering a
//! document whose account is in use opens a claim and changes nothing on the account: the
//! claimant's new name, validity, password and contacts wait here. The claimant proves who they
//! are by a manual review of three photos (the handheld one included), through a claim token
//! that reaches only this claim; the holder is told at once and may refuse the claim. Approval
//! hands the account over (a process manager carries it to the account); rejection, the
//! holder's refusal, or [`CLAIM_DAYS`] days without proof end it. A claim has one review: a
//! rejected claimant opens a new claim.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::kind::ErrorKind;
use crate::shared::contact::{Email, Mobile};
use crate::shared::document::DocumentType;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::verification::review::{self, ReviewRefusal};
use crate::verification::{ClaimApplication, DecideApplication, DeletePhotos, Photos, ReviewRequest};

/// Days a claim waits for its proof.
pub const CLAIM_DAYS: i64 = 30;

/// Where a claim stands (`expired` is read off the clock: see [`Claim::status_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Waiting for the claimant's photos.
    ProofRequired,
    /// The photos are with a reviewer.
    UnderReview,
    Approved,
    Rejected,
    /// The holder refused it.
    Refused,
    /// No proof within [`CLAIM_DAYS`] days.
    Expired,
}

impl ClaimStatus {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClaimStatus::ProofRequired => "proof_required",
            ClaimStatus::UnderReview => "under_review",
            ClaimStatus::Approved => "approved",
            ClaimStatus::Rejected => "rejected",
            ClaimStatus::Refused => "refused",
            ClaimStatus::Expired => "expired",
        }
    }

    /// Whether the claim may still change hands (proof, review, refusal).
    pub fn is_open(&self) -> bool {
        matches!(self, ClaimStatus::ProofRequired | ClaimStatus::UnderReview)
    }
}

/// What the claimant asks to become: the account's new name, validity, contacts and password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claimed {
    pub name: PersonName,
    pub validity: Validity,
    pub email: Email,
    pub mobile: Mobile,
    pub password_hash: String,
}

/// The claimant's proof and its review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimReview {
    pub review_id: String,
    pub document_type: DocumentType,
    pub name: PersonName,
    pub validity: Validity,
    pub photos: Photos,
    pub submitted_at: DateTime<Utc>,
    pub due_by: NaiveDate,
    pub claimed_by: Option<String>,
    pub decision_reason: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// When the review ended: decided, or withdrawn by the holder's refusal of the claim.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// Whether its photos were deleted (their retention period over).
    #[serde(default)]
    pub photos_deleted: bool,
}

/// Commands on a claim. A reviewer claims and decides a claimant's proof with the same
/// commands as an application ([`ClaimApplication`], [`DecideApplication`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimCommand {
    Open(OpenClaim),
    SubmitProof(SubmitProof),
    ClaimReview(ClaimApplication),
    Decide(DecideApplication),
    Refuse(Refuse),
    /// The proof's photos, once its review ended `retention` ago (nothing otherwise).
    DeletePhotos(DeletePhotos),
    /// The claimant's personal data, once the claim ended `retention` ago (nothing otherwise).
    Forget(Forget),
}

/// Forgets the claimant (PIPL: kept no longer than needed): `key_version` is the claim
/// subject's newest key, which the caller destroys once `Forgotten` is recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Forget {
    pub key_version: u32,
    pub retention: Duration,
    pub now: DateTime<Utc>,
}

/// Opens the claim on `account_id`; `token_hash` is the hash of the claimant's token.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenClaim {
    pub account_id: String,
    pub document_type: DocumentType,
    pub claimed: Claimed,
    pub token_hash: String,
    pub now: DateTime<Utc>,
}

/// The claimant's photos, for a manual review.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitProof {
    pub review_id: String,
    pub request: ReviewRequest,
    pub due_by: NaiveDate,
    pub now: DateTime<Utc>,
}

/// The account's holder refuses the claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Refuse {
    pub now: DateTime<Utc>,
}

/// Events of a claim stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClaimEvent {
    Opened {
        account_id: String,
        document_type: DocumentType,
        claimed: Claimed,
        token_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    ProofSubmitted {
        /// The account claimed (as opened), for the review queue.
        account_id: String,
        review_id: String,
        document_type: DocumentType,
        name: PersonName,
        validity: Validity,
        photos: Photos,
        due_by: NaiveDate,
        at: DateTime<Utc>,
    },
    ReviewClaimed {
        review_id: String,
        reviewer: String,
        at: DateTime<Utc>,
    },
    /// Approved: the account is handed to the claimant, with the name and validity reviewed.
    Approved {
        review_id: String,
        reviewer: String,
        reason: Option<String>,
        name: PersonName,
        validity: Validity,
        at: DateTime<Utc>,
    },
    Rejected {
        review_id: String,
        reviewer: String,
        reason: String,
        at: DateTime<Utc>,
    },
    Refused {
        at: DateTime<Utc>,
    },
    /// The proof's photos were deleted, their retention period over.
    ProofPhotosDeleted {
        review_id: String,
        at: DateTime<Utc>,
    },
    /// The claim ended long enough ago: the claimant's key (up to `key_version`) is destroyed,
    /// so what they gave reads as `[erased]`, their token is dead and their photos deleted.
    Forgotten {
        key_version: u32,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ClaimEvent {
    fn event_type(&self) -> String {
        match self {
            ClaimEvent::Opened { .. } => "Opened",
            ClaimEvent::ProofSubmitted { .. } => "ProofSubmitted",
            ClaimEvent::ReviewClaimed { .. } => "ReviewClaimed",
            ClaimEvent::Approved { .. } => "Approved",
            ClaimEvent::Rejected { .. } => "Rejected",
            ClaimEvent::Refused { .. } => "Refused",
            ClaimEvent::ProofPhotosDeleted { .. } => "ProofPhotosDeleted",
            ClaimEvent::Forgotten { .. } => "Forgotten",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// A refused claim command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    #[error("no such claim")]
    NotFound,
    #[error("this claim is already open")]
    AlreadyOpen,
    #[error("the claim is no longer open")]
    NotOpen,
    #[error("the proof was already submitted")]
    ProofAlreadySubmitted,
    #[error("the document type is not the claimed document's")]
    DocumentTypeMismatch,
    #[error("no such review")]
    ReviewNotFound,
    #[error("the review is not pending")]
    NotPending,
    #[error("another reviewer has claimed the review")]
    AlreadyClaimed,
    #[error("claim the review before deciding")]
    NotClaimedByYou,
    #[error("a rejection needs a reason")]
    ReasonRequired,
    #[error("a reviewer never reviews a claim on their own account")]
    OwnAccount,
}

impl From<ReviewRefusal> for ClaimError {
    fn from(refusal: ReviewRefusal) -> Self {
        match refusal {
            ReviewRefusal::OwnAccount => ClaimError::OwnAccount,
            ReviewRefusal::AlreadyClaimed => ClaimError::AlreadyClaimed,
            ReviewRefusal::NotClaimedByYou => ClaimError::NotClaimedByYou,
            ReviewRefusal::ReasonRequired => ClaimError::ReasonRequired,
        }
    }
}

impl ClaimError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            ClaimError::NotFound => "claim_not_found",
            ClaimError::AlreadyOpen => "claim_already_open",
            ClaimError::NotOpen => "claim_not_open",
            ClaimError::ProofAlreadySubmitted => "manual_review_pending",
            ClaimError::DocumentTypeMismatch => "document_type_mismatch",
            ClaimError::ReviewNotFound => "review_not_found",
            ClaimError::NotPending => "review_not_pending",
            ClaimError::AlreadyClaimed => "already_claimed",
            ClaimError::NotClaimedByYou => "not_claimed_by_you",
            ClaimError::ReasonRequired => "reason_required",
            ClaimError::OwnAccount => "own_account",
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClaimError::NotFound | ClaimError::ReviewNotFound => ErrorKind::NotFound,
            ClaimError::DocumentTypeMismatch | ClaimError::ReasonRequired => ErrorKind::Invalid,
            ClaimError::OwnAccount => ErrorKind::Forbidden,
            ClaimError::AlreadyOpen
            | ClaimError::NotOpen
            | ClaimError::ProofAlreadySubmitted
            | ClaimError::NotPending
            | ClaimError::AlreadyClaimed
            | ClaimError::NotClaimedByYou => ErrorKind::Conflict,
        }
    }
}

/// A claim's state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Claim {
    pub account_id: Option<String>,
    pub document_type: Option<DocumentType>,
    pub claimed: Option<Claimed>,
    pub token_hash: Option<String>,
    pub opened_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The status as recorded (without expiry; see [`Claim::status_at`]).
    pub status: Option<ClaimStatus>,
    pub review: Option<ClaimReview>,
    /// When it was approved, rejected or refused.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// Whether the claimant was forgotten.
    #[serde(default)]
    pub forgotten: bool,
}

impl Claim {
    /// The status at `now`: a claim still waiting for its proof after its expiry has expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> Option<ClaimStatus> {
        match self.status {
            Some(ClaimStatus::ProofRequired) if self.expires_at.is_some_and(|e| now >= e) => Some(ClaimStatus::Expired),
            other => other,
        }
    }

    /// Whether a claimant's token may still be used at `now`: not after the holder refused
    /// the claim or it expired.
    pub fn token_alive(&self, token_hash: &str, now: DateTime<Utc>) -> bool {
        self.token_hash.as_deref() == Some(token_hash)
            && !matches!(self.status_at(now), Some(ClaimStatus::Refused | ClaimStatus::Expired) | None)
    }

    fn open_at(&self, now: DateTime<Utc>) -> Result<ClaimStatus, ClaimError> {
        match self.status_at(now) {
            None => Err(ClaimError::NotFound),
            Some(s) if s.is_open() => Ok(s),
            Some(_) => Err(ClaimError::NotOpen),
        }
    }

    /// When the claim ended (approved, rejected, refused, or expired without proof), if it did
    /// by `now`.
    pub fn ended_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.status_at(now)? {
            ClaimStatus::Expired => self.expires_at,
            ClaimStatus::Approved | ClaimStatus::Rejected | ClaimStatus::Refused => self.closed_at,
            ClaimStatus::ProofRequired | ClaimStatus::UnderReview => None,
        }
    }

    fn pending_review(&self, review_id: &str) -> Result<&ClaimReview, ClaimError> {
        let review = self.review.as_ref().filter(|r| r.review_id == review_id).ok_or(ClaimError::ReviewNotFound)?;
        if self.status != Some(ClaimStatus::UnderReview) {
            return Err(ClaimError::NotPending);
        }
        Ok(review)
    }
}

impl Aggregate for Claim {
    const TYPE: &'static str = "claim";
    type Command = ClaimCommand;
    type Event = ClaimEvent;
    type Error = ClaimError;
    type Services = ();

    async fn handle(&mut self, command: ClaimCommand, _: &(), sink: &EventSink<Self>) -> Result<(), ClaimError> {
        match command {
            ClaimCommand::Open(c) => {
                if self.status.is_some() {
                    return Err(ClaimError::AlreadyOpen);
                }
                let OpenClaim { account_id, document_type, claimed, token_hash, now } = c;
                let expires_at = now + Duration::days(CLAIM_DAYS);
                let event = ClaimEvent::Opened { account_id, document_type, claimed, token_hash, expires_at, at: now };
                sink.write(event, self).await;
            }
            ClaimCommand::SubmitProof(c) => {
                let SubmitProof { review_id, request, due_by, now } = c;
                if self.open_at(now)? != ClaimStatus::ProofRequired {
                    return Err(ClaimError::ProofAlreadySubmitted);
                }
                if Some(request.document_type) != self.document_type {
                    return Err(ClaimError::DocumentTypeMismatch);
                }
                let ReviewRequest { document_type, name, validity, photos } = request;
                let account_id = self.account_id.clone().unwrap_or_default();
                let event = ClaimEvent::ProofSubmitted {
                    account_id,
                    review_id,
                    document_type,
                    name,
                    validity,
                    photos,
                    due_by,
                    at: now,
                };
                sink.write(event, self).await;
            }
            ClaimCommand::ClaimReview(c) => {
                let ClaimApplication { review_id, reviewer, reviewer_account, now } = c;
                let review = self.pending_review(&review_id)?;
                review::not_own(reviewer_account.as_deref(), self.account_id.as_deref())?;
                if review::may_claim(review.claimed_by.as_deref(), &reviewer)? {
                    sink.write(ClaimEvent::ReviewClaimed { review_id, reviewer, at: now }, self).await;
                }
            }
            ClaimCommand::Decide(c) => {
                let DecideApplication { review_id, reviewer, decision, now } = c;
                let review = self.pending_review(&review_id)?;
                let event = match review::verdict(review.claimed_by.as_deref(), &reviewer, decision)? {
                    None => {
                        let (name, validity) = (review.name.clone(), review.validity);
                        ClaimEvent::Approved { review_id, reviewer, reason: None, name, validity, at: now }
                    }
                    Some(reason) => ClaimEvent::Rejected { review_id, reviewer, reason, at: now },
                };
                sink.write(event, self).await;
            }
            ClaimCommand::Refuse(c) => {
                self.open_at(c.now)?;
                sink.write(ClaimEvent::Refused { at: c.now }, self).await;
            }
            ClaimCommand::DeletePhotos(c) => {
                let DeletePhotos { review_id, retention, now } = c;
                let review =
                    self.review.as_ref().filter(|r| r.review_id == review_id).ok_or(ClaimError::ReviewNotFound)?;
                let due = review.closed_at.is_some_and(|closed| closed + retention <= now);
                if due && !review.photos_deleted {
                    sink.write(ClaimEvent::ProofPhotosDeleted { review_id, at: now }, self).await;
                }
            }
            ClaimCommand::Forget(c) => {
                let Forget { key_version, retention, now } = c;
                let due = self.ended_at(now).is_some_and(|ended| ended + retention <= now);
                if due && !self.forgotten {
                    sink.write(ClaimEvent::Forgotten { key_version, at: now }, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: ClaimEvent) {
        match event {
            ClaimEvent::Opened { account_id, document_type, claimed, token_hash, expires_at, at } => {
                self.account_id = Some(account_id);
                self.document_type = Some(document_type);
                self.claimed = Some(claimed);
                self.token_hash = Some(token_hash);
                self.opened_at = Some(at);
                self.expires_at = Some(expires_at);
                self.status = Some(ClaimStatus::ProofRequired);
            }
            ClaimEvent::ProofSubmitted { review_id, document_type, name, validity, photos, due_by, at, .. } => {
                self.review = Some(ClaimReview {
                    review_id,
                    document_type,
                    name,
                    validity,
                    photos,
                    submitted_at: at,
                    due_by,
                    claimed_by: None,
                    decision_reason: None,
                    decided_at: None,
                    closed_at: None,
                    photos_deleted: false,
                });
                self.status = Some(ClaimStatus::UnderReview);
            }
            ClaimEvent::ReviewClaimed { reviewer, .. } => {
                if let Some(r) = self.review.as_mut() {
                    r.claimed_by = Some(reviewer);
                }
            }
            ClaimEvent::Approved { reason, at, .. } => {
                if let Some(r) = self.review.as_mut() {
                    r.decision_reason = reason;
                    r.decided_at = Some(at);
                    r.closed_at = Some(at);
                }
                self.closed_at = Some(at);
                self.status = Some(ClaimStatus::Approved);
            }
            ClaimEvent::Rejected { reason, at, .. } => {
                if let Some(r) = self.review.as_mut() {
                    r.decision_reason = Some(reason);
                    r.decided_at = Some(at);
                    r.closed_at = Some(at);
                }
                self.closed_at = Some(at);
                self.status = Some(ClaimStatus::Rejected);
            }
            ClaimEvent::Refused { at } => {
                if let Some(r) = self.review.as_mut().filter(|r| r.closed_at.is_none()) {
                    r.closed_at = Some(at);
                }
                self.closed_at = Some(at);
                self.status = Some(ClaimStatus::Refused);
            }
            ClaimEvent::ProofPhotosDeleted { .. } => {
                if let Some(r) = self.review.as_mut() {
                    r.photos_deleted = true;
                }
            }
            ClaimEvent::Forgotten { .. } => {
                self.forgotten = true;
                self.claimed = None;
                self.token_hash = None;
                if let Some(r) = self.review.as_mut() {
                    r.photos_deleted = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
