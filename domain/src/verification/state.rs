//! The verification state, folded from its events, and what can be asked of it (quotas).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::account::RealNameStatus;
use crate::shared::document::DocumentType;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::time::{cst_date, cst_midnight, review_period};

use super::events::{Photos, VerificationEvent};

/// Counted real-name attempts per China-Standard-Time day.
pub const DAILY_ATTEMPTS: usize = 3;
/// Manual-review applications per period.
pub const PERIOD_APPLICATIONS: usize = 3;

/// Where a manual-review application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Pending,
    Approved,
    Rejected,
    /// Ended undecided: the account was handed to someone else.
    Withdrawn,
}

impl ReviewStatus {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
            ReviewStatus::Withdrawn => "withdrawn",
        }
    }
}

/// One application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub review_id: String,
    pub document_type: DocumentType,
    pub name: PersonName,
    pub validity: Validity,
    pub photos: Photos,
    pub submitted_at: DateTime<Utc>,
    pub due_by: NaiveDate,
    pub status: ReviewStatus,
    pub claimed_by: Option<String>,
    pub decision_reason: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Whether its photos were deleted (their retention period over).
    #[serde(default)]
    pub photos_deleted: bool,
}

/// An attempt waiting for the authority's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub attempt_id: String,
    pub name: PersonName,
    pub validity: Option<Validity>,
    pub started_at: DateTime<Utc>,
}

/// The verification state of one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Verification {
    pub account_id: Option<String>,
    /// Start instants of counted attempts (recent ones only).
    pub counted: Vec<(String, DateTime<Utc>)>,
    pub in_flight: Option<InFlight>,
    pub failed_once: bool,
    pub status: RealNameStatus,
    pub applications: Vec<Application>,
    /// Sources of the resets applied (idempotence of the process manager).
    #[serde(default)]
    pub reset_sources: Vec<String>,
    /// The account's identity generation this stream has been reset to (see
    /// [`Account::generation`](crate::account::Account::generation)).
    #[serde(default)]
    pub generation: u32,
}

/// Quotas left at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    pub attempts_left_today: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub applications_left_in_period: u32,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub next_period_start: NaiveDate,
}

/// The first day of the period after the one holding `date`.
pub fn next_period_start(date: NaiveDate) -> NaiveDate {
    let (_, end) = review_period(date);
    end.succ_opt().unwrap_or(end)
}

impl Verification {
    /// The pending application, if any.
    pub fn pending(&self) -> Option<&Application> {
        self.applications.iter().find(|a| a.status == ReviewStatus::Pending)
    }

    /// Whether the identity is proven (eligible for business).
    pub fn is_proven(&self) -> bool {
        matches!(self.status, RealNameStatus::Verified | RealNameStatus::ManualReviewApproved)
    }

    /// Whether the identity is proven for the holder of `account` as it stands now: proven,
    /// and reset for every re-registration of the account (until the identity process manager
    /// has carried a re-registration here, the proof belongs to the earlier holder).
    pub fn proves(&self, account: &crate::account::Account) -> bool {
        self.is_proven() && self.generation == account.generation
    }

    pub(super) fn attempts_on(&self, day: NaiveDate) -> usize {
        self.counted.iter().filter(|(_, t)| cst_date(*t) == day).count()
    }

    pub(super) fn applications_in_period(&self, date: NaiveDate) -> usize {
        let period = review_period(date);
        self.applications.iter().filter(|a| review_period(cst_date(a.submitted_at)) == period).count()
    }

    /// The quotas left at `now`.
    pub fn quotas(&self, now: DateTime<Utc>) -> Quotas {
        let today = cst_date(now);
        // An attempt in flight is already counted (from its start).
        let used = self.attempts_on(today);
        let attempts_left = DAILY_ATTEMPTS.saturating_sub(used) as u32;
        let tomorrow = today.succ_opt().unwrap_or(today);
        let (period_start, period_end) = review_period(today);
        Quotas {
            attempts_left_today: attempts_left,
            next_attempt_at: (attempts_left == 0).then(|| cst_midnight(tomorrow)),
            applications_left_in_period: PERIOD_APPLICATIONS.saturating_sub(self.applications_in_period(today)) as u32,
            period_start,
            period_end,
            next_period_start: next_period_start(today),
        }
    }

    /// Folds one event into the state (the aggregate's `apply`).
    pub(super) fn apply_event(&mut self, event: VerificationEvent) {
        match event {
            VerificationEvent::AttemptStarted { account_id, attempt_id, name, validity, at } => {
                self.account_id = Some(account_id);
                // Keep only the attempts that can still matter for a daily quota.
                let today = cst_date(at);
                self.counted.retain(|(_, t)| (today - cst_date(*t)).num_days() < 2);
                self.counted.push((attempt_id.clone(), at));
                self.in_flight = Some(InFlight { attempt_id, name, validity, started_at: at });
            }
            VerificationEvent::AttemptPassed { .. } => {
                self.in_flight = None;
                self.status = RealNameStatus::Verified;
            }
            VerificationEvent::AttemptFailed { .. } => {
                self.in_flight = None;
                self.failed_once = true;
                if !self.is_proven() {
                    self.status = RealNameStatus::Failed;
                }
            }
            VerificationEvent::AttemptVoided { attempt_id, .. } => {
                if self.in_flight.as_ref().is_some_and(|f| f.attempt_id == attempt_id) {
                    self.in_flight = None;
                }
                self.counted.retain(|(id, _)| *id != attempt_id);
            }
            VerificationEvent::ApplicationSubmitted {
                account_id,
                review_id,
                document_type,
                name,
                validity,
                photos,
                due_by,
                at,
            } => {
                self.account_id = Some(account_id);
                self.applications.push(Application {
                    review_id,
                    document_type,
                    name,
                    validity,
                    photos,
                    submitted_at: at,
                    due_by,
                    status: ReviewStatus::Pending,
                    claimed_by: None,
                    decision_reason: None,
                    decided_at: None,
                    photos_deleted: false,
                });
                self.status = RealNameStatus::ManualReviewPending;
                // Applications of periods before the previous one can no longer matter.
                let year = cst_date(at).year();
                self.applications
                    .retain(|a| a.status == ReviewStatus::Pending || cst_date(a.submitted_at).year() >= year - 1);
            }
            VerificationEvent::ApplicationClaimed { review_id, reviewer, .. } => {
                if let Some(a) = self.applications.iter_mut().find(|a| a.review_id == review_id) {
                    a.claimed_by = Some(reviewer);
                }
            }
            VerificationEvent::ApplicationApproved { review_id, reason, at, .. } => {
                if let Some(a) = self.applications.iter_mut().find(|a| a.review_id == review_id) {
                    a.status = ReviewStatus::Approved;
                    a.decision_reason = reason;
                    a.decided_at = Some(at);
                }
                self.status = RealNameStatus::ManualReviewApproved;
            }
            VerificationEvent::ApplicationRejected { review_id, reason, at, .. } => {
                if let Some(a) = self.applications.iter_mut().find(|a| a.review_id == review_id) {
                    a.status = ReviewStatus::Rejected;
                    a.decision_reason = Some(reason);
                    a.decided_at = Some(at);
                }
                if !self.is_proven() {
                    self.status = RealNameStatus::ManualReviewRejected;
                }
            }
            VerificationEvent::Reset { source, generation, claim_id, .. } => {
                self.reset_sources.push(source);
                if let Some(g) = generation {
                    self.generation = g;
                }
                // An answer still awaited was asked for by the earlier holder: it is not recorded.
                self.in_flight = None;
                self.status = if claim_id.is_some() {
                    RealNameStatus::ManualReviewApproved
                } else if self.pending().is_some() {
                    RealNameStatus::ManualReviewPending
                } else {
                    RealNameStatus::Unverified
                };
            }
            VerificationEvent::ApplicationPhotosDeleted { review_id, .. } => {
                if let Some(a) = self.applications.iter_mut().find(|a| a.review_id == review_id) {
                    a.photos_deleted = true;
                }
            }
            VerificationEvent::ApplicationWithdrawn { review_id, at, .. } => {
                if let Some(a) = self.applications.iter_mut().find(|a| a.review_id == review_id) {
                    a.status = ReviewStatus::Withdrawn;
                    a.decided_at = Some(at);
                }
            }
        }
    }
}
