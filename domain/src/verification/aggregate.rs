//! The verification stream's decisions: `handle` dispatches each command to one private fn;
//! `apply` folds the events (see [`state`](super::state)).

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use crate::account::RealNameStatus;
use crate::time::{cst_date, cst_midnight};

use super::commands::*;
use super::errors::VerificationError;
use super::events::{AuthorityAnswer, VerificationEvent};
use super::review;
use super::state::*;

type Sink = EventSink<Verification>;
type Decided = Result<(), VerificationError>;

impl Verification {
    fn application(&self, review_id: &str) -> Result<&Application, VerificationError> {
        self.applications.iter().find(|a| a.review_id == review_id).ok_or(VerificationError::ReviewNotFound)
    }

    async fn start_attempt(&mut self, c: StartAttempt, sink: &Sink) -> Decided {
        let StartAttempt { account_id, attempt_id, name, validity, abandon_before, now } = c;
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

    async fn record_answer(&mut self, c: RecordAnswer, sink: &Sink) -> Decided {
        let RecordAnswer { attempt_id, answer, now } = c;
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

    async fn apply_for_review(&mut self, c: Apply, sink: &Sink) -> Decided {
        let Apply { account_id, review_id, request, due_by, now } = c;
        if self.pending().is_some() {
            return Err(VerificationError::ManualReviewPending);
        }
        if self.in_flight.is_some() {
            return Err(VerificationError::AttemptInProgress);
        }
        if self.is_proven() {
            return Err(VerificationError::AlreadyVerified);
        }
        if request.document_type.auto_verifiable() && !self.failed_once {
            return Err(VerificationError::VerificationRequiredFirst);
        }
        let today = cst_date(now);
        if self.applications_in_period(today) >= PERIOD_APPLICATIONS {
            return Err(VerificationError::PeriodQuotaExhausted { next_period_start: next_period_start(today) });
        }
        let ReviewRequest { document_type, name, validity, photos } = request;
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

    async fn claim(&mut self, c: ClaimApplication, sink: &Sink) -> Decided {
        let ClaimApplication { review_id, reviewer, reviewer_account, now } = c;
        let application = self.application(&review_id)?;
        review::not_own(reviewer_account.as_deref(), self.account_id.as_deref())?;
        if application.status != ReviewStatus::Pending {
            return Err(VerificationError::NotPending);
        }
        if review::may_claim(application.claimed_by.as_deref(), &reviewer)? {
            sink.write(VerificationEvent::ApplicationClaimed { review_id, reviewer, at: now }, self).await;
        }
        Ok(())
    }

    async fn delete_photos(&mut self, c: DeletePhotos, sink: &Sink) -> Decided {
        let DeletePhotos { review_id, retention, now } = c;
        let application = self.application(&review_id)?;
        let due = application.decided_at.is_some_and(|decided| decided + retention <= now);
        if application.status != ReviewStatus::Pending && due && !application.photos_deleted {
            sink.write(VerificationEvent::ApplicationPhotosDeleted { review_id, at: now }, self).await;
        }
        Ok(())
    }

    async fn decide(&mut self, c: DecideApplication, sink: &Sink) -> Decided {
        let DecideApplication { review_id, reviewer, decision, now } = c;
        let application = self.application(&review_id)?;
        if application.status != ReviewStatus::Pending {
            return Err(VerificationError::NotPending);
        }
        let event = match review::verdict(application.claimed_by.as_deref(), &reviewer, decision)? {
            None => {
                let (name, validity) = (application.name.clone(), application.validity);
                VerificationEvent::ApplicationApproved { review_id, reviewer, reason: None, name, validity, at: now }
            }
            Some(reason) => VerificationEvent::ApplicationRejected { review_id, reviewer, reason, at: now },
        };
        sink.write(event, self).await;
        Ok(())
    }

    async fn reset(&mut self, c: Reset, sink: &Sink) -> Decided {
        let Reset { source, generation, claim_id, now } = c;
        let needed = match generation {
            // Every generation is recorded, even when there is nothing to undo: the business
            // gate compares it with the account's.
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
                let event =
                    VerificationEvent::ApplicationWithdrawn { review_id, reason: "reregistered".into(), at: now };
                sink.write(event, self).await;
            }
        }
        sink.write(VerificationEvent::Reset { source, at: now, generation, claim_id }, self).await;
        Ok(())
    }
}

impl Aggregate for Verification {
    const TYPE: &'static str = "verification";
    type Command = VerificationCommand;
    type Event = VerificationEvent;
    type Error = VerificationError;
    type Services = ();

    async fn handle(&mut self, command: VerificationCommand, _: &(), sink: &Sink) -> Decided {
        match command {
            VerificationCommand::StartAttempt(c) => self.start_attempt(c, sink).await,
            VerificationCommand::RecordAnswer(c) => self.record_answer(c, sink).await,
            VerificationCommand::Apply(c) => self.apply_for_review(c, sink).await,
            VerificationCommand::Claim(c) => self.claim(c, sink).await,
            VerificationCommand::Decide(c) => self.decide(c, sink).await,
            VerificationCommand::Reset(c) => self.reset(c, sink).await,
            VerificationCommand::DeletePhotos(c) => self.delete_photos(c, sink).await,
        }
    }

    fn apply(&mut self, event: VerificationEvent) {
        self.apply_event(event);
    }
}
