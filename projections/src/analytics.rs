//! Analyst tables: registrations, real-name attempts, quota exhaustion and manual reviews.
//! See `migrations/*/0005_analytics.sql` for the schema and the README for its meaning.
//! Days are China Standard Time dates.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Deserialize;
use shenfen_domain::account::{Account, AccountEvent};
use shenfen_domain::calendar::WorkingCalendar;
use shenfen_domain::time::{cst_date, review_period};
use shenfen_domain::verification::{Verification, VerificationEvent, DAILY_ATTEMPTS, PERIOD_APPLICATIONS};

use crate::db::DbTx;
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct Analytics {
    pub calendar: WorkingCalendar,
}

impl Analytics {
    /// The projection's name.
    pub const NAME: &'static str = "analytics";

    /// A projection with the shipped working-day calendar.
    pub fn new() -> Self {
        Analytics { calendar: WorkingCalendar::shipped() }
    }
}

impl Default for Analytics {
    fn default() -> Self {
        Self::new()
    }
}

/// Ended attempts counted over a batch, per (day, outcome, reason): a pure count, added with one
/// statement per key at the end of the batch.
type Attempts = std::collections::BTreeMap<(NaiveDate, &'static str, String), i32>;

async fn add_attempts(tx: &mut DbTx, attempts: Attempts) -> Result<(), sqlx::Error> {
    for ((day, outcome, reason), count) in attempts {
        exec!(tx tx,
            "INSERT INTO analytics_verification_attempts (day, outcome, reason, attempts) VALUES ($1, $2, $3, $4)
             ON CONFLICT (day, outcome, reason) DO UPDATE SET attempts = analytics_verification_attempts.attempts + $5",
            day, outcome, reason, count, count)?;
    }
    Ok(())
}

async fn bump_exhaustion(tx: &mut DbTx, day: NaiveDate, quota: &str, by: i32) -> Result<(), sqlx::Error> {
    exec!(tx tx,
        "INSERT INTO analytics_quota_exhaustion (day, quota, accounts) VALUES ($1, $2, $3)
         ON CONFLICT (day, quota) DO UPDATE SET accounts = analytics_quota_exhaustion.accounts + $4",
        day, quota, by, by)?;
    Ok(())
}

/// Counts an attempt started by `account` on `day`; answers the day's count after it.
async fn count_attempt(tx: &mut DbTx, account: &str, day: NaiveDate) -> Result<i32, sqlx::Error> {
    let row: Option<(i32,)> = crate::fetch_optional!(tx tx, (i32,),
        "INSERT INTO analytics_attempt_counts (account_id, day, counted) VALUES ($1, $2, 1)
         ON CONFLICT (account_id, day) DO UPDATE SET counted = analytics_attempt_counts.counted + 1
         RETURNING counted",
        account, day)?;
    Ok(row.map(|r| r.0).unwrap_or(0))
}

#[async_trait]
impl Projection for Analytics {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        (e.aggregate_type == "account" && e.event_type == "Registered")
            || (e.aggregate_type == "verification"
                && matches!(
                    e.event_type,
                    "AttemptStarted"
                        | "AttemptPassed"
                        | "AttemptFailed"
                        | "AttemptVoided"
                        | "ApplicationSubmitted"
                        | "ApplicationApproved"
                        | "ApplicationRejected"
                        | "ApplicationWithdrawn"
                ))
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "analytics_registrations",
            "analytics_verification_attempts",
            "analytics_quota_exhaustion",
            "analytics_attempt_counts",
            "analytics_reviews",
        ]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_batch(tx, &[e]).await
    }

    /// Registrations and ended attempts are counted in memory over the batch and added with
    /// one statement per (day, document type) and per (day, outcome, reason); the per-account
    /// tables are kept event by event.
    async fn apply_batch(&self, tx: &mut DbTx, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        let mut registrations: std::collections::BTreeMap<(NaiveDate, &'static str), i32> = Default::default();
        let mut attempts = Attempts::new();
        for e in events {
            if e.aggregate_type == <Account as cqrs_es::Aggregate>::TYPE {
                if e.event_type != "Registered" {
                    continue;
                }
                let event = AccountEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
                if let AccountEvent::Registered { document_type, registered_at, .. } = event {
                    *registrations.entry((cst_date(registered_at), document_type.as_str())).or_default() += 1;
                }
            } else {
                self.apply_verification(tx, e, &mut attempts).await?;
            }
        }
        add_attempts(tx, attempts).await?;
        for ((day, document_type), count) in registrations {
            exec!(tx tx,
                "INSERT INTO analytics_registrations (day, document_type, registrations) VALUES ($1, $2, $3)
                 ON CONFLICT (day, document_type) DO UPDATE SET registrations = analytics_registrations.registrations + $4",
                day, document_type, count, count)?;
        }
        Ok(())
    }
}

impl Analytics {
    async fn apply_verification(
        &self,
        tx: &mut DbTx,
        e: &StoredEvent,
        attempts: &mut Attempts,
    ) -> Result<(), ProjectionError> {
        let id = e.aggregate_id.as_str();
        if e.aggregate_type != <Verification as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event = VerificationEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        match event {
            VerificationEvent::AttemptStarted { at, .. } => {
                let day = cst_date(at);
                if count_attempt(tx, id, day).await? == DAILY_ATTEMPTS as i32 {
                    bump_exhaustion(tx, day, "daily_attempts", 1).await?;
                }
            }
            VerificationEvent::AttemptPassed { at, .. } => {
                *attempts.entry((cst_date(at), "passed", String::new())).or_default() += 1;
            }
            VerificationEvent::AttemptFailed { at, reason, .. } => {
                *attempts.entry((cst_date(at), "failed", reason)).or_default() += 1;
            }
            VerificationEvent::AttemptVoided { at, reason, .. } => {
                *attempts.entry((cst_date(at), "voided", reason)).or_default() += 1;
                // The voided attempt no longer counts against the day it started on, which is
                // the most recent day with a count for this account.
                let row: Option<(NaiveDate, i32)> = crate::fetch_optional!(tx tx, (NaiveDate, i32),
                    "SELECT day, counted FROM analytics_attempt_counts WHERE account_id = $1 ORDER BY day DESC LIMIT 1", id)?;
                if let Some((day, counted)) = row {
                    exec!(tx tx, "UPDATE analytics_attempt_counts SET counted = counted - 1 WHERE account_id = $1 AND day = $2",
                        id, day)?;
                    if counted == DAILY_ATTEMPTS as i32 {
                        bump_exhaustion(tx, day, "daily_attempts", -1).await?;
                    }
                }
            }
            VerificationEvent::ApplicationSubmitted { account_id, review_id, document_type, due_by, at, .. } => {
                let day = cst_date(at);
                let (period_start, _) = review_period(day);
                exec!(tx tx,
                    "INSERT INTO analytics_reviews (review_id, account_id, document_type, submitted_at, submitted_day,
                         period_start, due_by) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (review_id) DO NOTHING",
                    review_id, account_id.clone(), document_type.as_str(), at, day, period_start, due_by)?;
                let row: Option<(i64,)> = crate::fetch_optional!(tx tx, (i64,),
                    "SELECT count(*) FROM analytics_reviews WHERE account_id = $1 AND period_start = $2",
                    account_id, period_start)?;
                if row.map(|r| r.0) == Some(PERIOD_APPLICATIONS as i64) {
                    bump_exhaustion(tx, day, "period_applications", 1).await?;
                }
            }
            VerificationEvent::ApplicationApproved { review_id, at, .. } => {
                self.decide(tx, &review_id, "approved", at, None).await?;
            }
            VerificationEvent::ApplicationRejected { review_id, reason, at, .. } => {
                self.decide(tx, &review_id, "rejected", at, Some(reason)).await?;
            }
            VerificationEvent::ApplicationWithdrawn { review_id, at, .. } => {
                // Not a reviewer's decision: no turnaround, never overdue.
                exec!(tx tx, "UPDATE analytics_reviews SET decision = 'withdrawn', decided_at = $1, decided_day = $2
                               WHERE review_id = $3", at, cst_date(at), review_id)?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn decide(
        &self,
        tx: &mut DbTx,
        review_id: &str,
        decision: &str,
        at: chrono::DateTime<chrono::Utc>,
        reason: Option<String>,
    ) -> Result<(), ProjectionError> {
        let row: Option<(NaiveDate,)> = crate::fetch_optional!(tx tx, (NaiveDate,),
            "SELECT submitted_day FROM analytics_reviews WHERE review_id = $1", review_id)?;
        let Some((submitted,)) = row else { return Ok(()) };
        let decided = cst_date(at);
        let turnaround = self.calendar.working_days_between(submitted, decided) as i32;
        exec!(tx tx,
            "UPDATE analytics_reviews SET decision = $1, decided_at = $2, decided_day = $3, turnaround_working_days = $4,
                    rejection_reason = $5 WHERE review_id = $6",
            decision, at, decided, turnaround, reason, review_id)?;
        Ok(())
    }
}
