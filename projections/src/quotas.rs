//! `verification_quotas`: what is left of the two quotas, behind `GET /v1/me`.
//!
//! Rows hold counts for one day and one period; a row whose day or period is not today's is
//! read as a full quota, so the model is right across day and period boundaries without any
//! timer. The aggregate enforces the quotas; this view only shows them.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use shenfen_domain::time::{cst_date, cst_midnight, review_period};
use shenfen_domain::verification::{
    next_period_start, Verification, VerificationEvent, DAILY_ATTEMPTS, PERIOD_APPLICATIONS,
};

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct Quotas;

#[derive(Debug, Clone, Default, sqlx::FromRow)]
struct QuotaRow {
    attempts_day: Option<NaiveDate>,
    attempts_on_day: i32,
    period_start: Option<NaiveDate>,
    applications_in_period: i32,
}

/// The quotas as shown to the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaView {
    pub attempts_left_today: u32,
    pub attempts_reset_at: DateTime<Utc>,
    pub applications_left_in_period: u32,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub next_period_start: NaiveDate,
}

impl Quotas {
    /// The projection's name.
    pub const NAME: &'static str = "verification_quotas";

    /// The quotas of an account at `now`.
    pub async fn get(db: &Db, account_id: &str, now: DateTime<Utc>) -> Result<QuotaView, sqlx::Error> {
        let row = crate::fetch_optional!(
            db,
            QuotaRow,
            "SELECT attempts_day, attempts_on_day, period_start, applications_in_period
               FROM verification_quotas WHERE account_id = $1",
            account_id
        )?
        .unwrap_or_default();
        let today = cst_date(now);
        let (period_start, period_end) = review_period(today);
        let used_today = if row.attempts_day == Some(today) { row.attempts_on_day.max(0) as usize } else { 0 };
        let used_period =
            if row.period_start == Some(period_start) { row.applications_in_period.max(0) as usize } else { 0 };
        Ok(QuotaView {
            attempts_left_today: DAILY_ATTEMPTS.saturating_sub(used_today) as u32,
            attempts_reset_at: cst_midnight(today.succ_opt().unwrap_or(today)),
            applications_left_in_period: PERIOD_APPLICATIONS.saturating_sub(used_period) as u32,
            period_start,
            period_end,
            next_period_start: next_period_start(today),
        })
    }
}

#[async_trait]
impl Projection for Quotas {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == "verification"
            && matches!(
                e.event_type,
                "AttemptStarted" | "AttemptVoided" | "AttemptPassed" | "AttemptFailed" | "ApplicationSubmitted"
            )
    }

    fn tables(&self) -> &'static [&'static str] {
        &["verification_quotas"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != <Verification as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event = VerificationEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        let id = e.aggregate_id.as_str();
        exec!(tx tx, "INSERT INTO verification_quotas (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING", id)?;
        match event {
            VerificationEvent::AttemptStarted { at, .. } => {
                let day = cst_date(at);
                exec!(tx tx,
                    "UPDATE verification_quotas
                        SET attempts_on_day = CASE WHEN attempts_day = $1 THEN attempts_on_day + 1 ELSE 1 END,
                            attempts_day = $2, in_flight_day = $3
                      WHERE account_id = $4",
                    day, day, day, id)?;
            }
            VerificationEvent::AttemptVoided { .. } => {
                exec!(tx tx,
                    "UPDATE verification_quotas
                        SET attempts_on_day = CASE WHEN attempts_day = in_flight_day AND attempts_on_day > 0
                                                   THEN attempts_on_day - 1 ELSE attempts_on_day END,
                            in_flight_day = NULL
                      WHERE account_id = $1",
                    id)?;
            }
            VerificationEvent::AttemptPassed { .. } | VerificationEvent::AttemptFailed { .. } => {
                exec!(tx tx, "UPDATE verification_quotas SET in_flight_day = NULL WHERE account_id = $1", id)?;
            }
            VerificationEvent::ApplicationSubmitted { at, .. } => {
                let (start, _) = review_period(cst_date(at));
                exec!(tx tx,
                    "UPDATE verification_quotas
                        SET applications_in_period = CASE WHEN period_start = $1 THEN applications_in_period + 1 ELSE 1 END,
                            period_start = $2
                      WHERE account_id = $3",
                    start, start, id)?;
            }
            _ => {}
        }
        Ok(())
    }
}
