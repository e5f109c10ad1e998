//! The verification state, its decisions and `apply`.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::account::RealNameStatus;
use crate::shared::document::DocumentType;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::time::{cst_date, cst_midnight, review_period};

use super::commands::VerificationCommand;
use super::errors::VerificationError;
use super::events::{AuthorityAnswer, Photos, VerificationEvent};

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

    fn attempts_on(&self, day: NaiveDate) -> usize {
        self.counted.iter().filter(|(_, t)| cst_date(*t) == day).count()
    }

    fn applications_in_period(&self, date: NaiveDate) -> usize {
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

    fn application(&self, review_id: &str) -> Result<&Application, VerificationError> {
        self.applications.iter().find(|a| a.review_id == review_id).ok_or(VerificationError::ReviewNotFound)
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_attempt(
        &mut self,
        account_id: String,
        attempt_id: String,
        name: PersonName,
        validity: Option<Validity>,
        abandon_before: DateTime<Utc>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), VerificationError> {
        if self.pending().is_some() {
            return Err(VerificationError::ManualReviewPending);
        }
        if let Some(flight) = &self.in_flight {
            if flight.started_at >= abandon_before {
                return Err(VerificationError::AttemptInProgress);
            }
            let event = VerificationEvent::AttemptVoided {
                attempt_id: flight.attempt_id.clone(),
                reason: "abandoned".into(),
                at: now,
            };
            sink.write(event, self).await;
        }
        let today = cst_date(now);
        if self.attempts_on(today) >= DAILY_ATTEMPTS {
            let tomorrow = today.succ_opt().unwrap_or(today);
            return Err(VerificationError::DailyAttemptsExhausted { next_attempt_at: cst_midnight(tomorrow) });
        }
        sink.write(VerificationEvent::AttemptStarted { account_id, attempt_id, name, validity, at: now }, self).await;
        Ok(())
    }

    async fn record_answer(
        &mut self,
        attempt_id: String,
        answer: AuthorityAnswer,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), VerificationError> {
        let Some(flight) = self.in_flight.clone().filter(|f| f.attempt_id == attempt_id) else {
            return Err(VerificationError::NoSuchAttempt);
        };
        let event = match answer {
            AuthorityAnswer::Passed => {
                VerificationEvent::AttemptPassed { attempt_id, name: flight.name, validity: flight.validity, at: now }
            }
            AuthorityAnswer::Failed { reason } => VerificationEvent::AttemptFailed { attempt_id, reason, at: now },
            AuthorityAnswer::Unavailable => {
                VerificationEvent::AttemptVoided { attempt_id, reason: "authority_unavailable".into(), at: now }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    async fn apply_for_review(
        &mut self,
        cmd: VerificationCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), VerificationError> {
        let VerificationCommand::Apply { account_id, review_id, document_type, name, validity, photos, due_by, now } =
            cmd
        else {
            return Ok(());
        };
        if self.pending().is_some() {
            return Err(VerificationError::ManualReviewPending);
        }
        if self.in_flight.is_some() {
            return Err(VerificationError::AttemptInProgress);
        }
        if self.is_proven() {
            return Err(VerificationError::AlreadyVerified);
        }
        if document_type.auto_verifiable() && !self.failed_once {
            return Err(VerificationError::VerificationRequiredFirst);
        }
        let today = cst_date(now);
        if self.applications_in_period(today) >= PERIOD_APPLICATIONS {
            return Err(VerificationError::PeriodQuotaExhausted { next_period_start: next_period_start(today) });
        }
        let event = VerificationEvent::ApplicationSubmitted {
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
        Ok(())
    }

    async fn claim(
        &mut self,
        review_id: String,
        reviewer: String,
        reviewer_account: Option<String>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), VerificationError> {
        let application = self.application(&review_id)?;
        if reviewer_account.is_some() && reviewer_account == self.account_id {
            return Err(VerificationError::OwnAccount);
        }
        if application.status != ReviewStatus::Pending {
            return Err(VerificationError::NotPending);
        }
        match &application.claimed_by {
            Some(by) if *by == reviewer => Ok(()),
            Some(_) => Err(VerificationError::AlreadyClaimed),
            None => {
                sink.write(VerificationEvent::ApplicationClaimed { review_id, reviewer, at: now }, self).await;
                Ok(())
            }
        }
    }

    async fn decide(&mut self, cmd: VerificationCommand, sink: &EventSink<Self>) -> Result<(), VerificationError> {
        let VerificationCommand::Decide { review_id, reviewer, approve, reason, now } = cmd else { return Ok(()) };
        let application = self.application(&review_id)?;
        if application.status != ReviewStatus::Pending {
            return Err(VerificationError::NotPending);
        }
        if application.claimed_by.as_ref() != Some(&reviewer) {
            return Err(VerificationError::NotClaimedByYou);
        }
        let reason = reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
        let event = if approve {
            let (name, validity) = (application.name.clone(), application.validity);
            VerificationEvent::ApplicationApproved { review_id, reviewer, reason, name, validity, at: now }
        } else {
            let reason = reason.ok_or(VerificationError::ReasonRequired)?;
            VerificationEvent::ApplicationRejected { review_id, reviewer, reason, at: now }
        };
        sink.write(event, self).await;
        Ok(())
    }
}

impl Aggregate for Verification {
    const TYPE: &'static str = "verification";
    type Command = VerificationCommand;
    type Event = VerificationEvent;
    type Error = VerificationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: VerificationCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), VerificationError> {
        match command {
            VerificationCommand::StartAttempt { account_id, attempt_id, name, validity, abandon_before, now } => {
                self.start_attempt(account_id, attempt_id, name, validity, abandon_before, now, sink).await
            }
            VerificationCommand::RecordAnswer { attempt_id, answer, now } => {
                self.record_answer(attempt_id, answer, now, sink).await
            }
            cmd @ VerificationCommand::Apply { .. } => self.apply_for_review(cmd, sink).await,
            VerificationCommand::Claim { review_id, reviewer, reviewer_account, now } => {
                self.claim(review_id, reviewer, reviewer_account, now, sink).await
            }
            cmd @ VerificationCommand::Decide { .. } => self.decide(cmd, sink).await,
            VerificationCommand::Reset { source, generation, claim_id, now } => {
                let needed = match generation {
                    // Every generation is recorded, even when there is nothing to undo: the
                    // business gate compares it with the account's.
                    Some(g) => g > self.generation,
                    None => self.status != RealNameStatus::Unverified && !self.reset_sources.contains(&source),
                };
                if !needed {
                    return Ok(());
                }
                if generation.is_some() {
                    // The earlier holder's pending application can no longer prove anyone.
                    let pending: Vec<String> = self
                        .applications
                        .iter()
                        .filter(|a| a.status == ReviewStatus::Pending)
                        .map(|a| a.review_id.clone())
                        .collect();
                    for review_id in pending {
                        let event = VerificationEvent::ApplicationWithdrawn {
                            review_id,
                            reason: "reregistered".into(),
                            at: now,
                        };
                        sink.write(event, self).await;
                    }
                }
                sink.write(VerificationEvent::Reset { source, at: now, generation, claim_id }, self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: VerificationEvent) {
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
            VerificationEvent::ApplicationWithdrawn { review_id, at, .. } => {
                if let Some(a) = self.applications.iter_mut().find(|a| a.review_id == review_id) {
                    a.status = ReviewStatus::Withdrawn;
                    a.decided_at = Some(at);
                }
            }
        }
    }
}
