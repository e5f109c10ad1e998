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

/// An account's row: what `get` reads and what a batch folds its events into.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
struct QuotaRow {
    account_id: String,
    attempts_day: Option<NaiveDate>,
    attempts_on_day: i32,
    in_flight_day: Option<NaiveDate>,
    period_start: Option<NaiveDate>,
    applications_in_period: i32,
}

const ROW_COLUMNS: &str =
    "account_id, attempts_day, attempts_on_day, in_flight_day, period_start, applications_in_period";

impl QuotaRow {
    /// The row after `event`, the one place the view's counting rule is written. An attempt
    /// voided gives back the day it was started on only while that attempt is in flight on
    /// the counted day.
    fn fold(&mut self, event: &VerificationEvent) {
        match event {
            VerificationEvent::AttemptStarted { at, .. } => {
                let day = cst_date(*at);
                self.attempts_on_day = if self.attempts_day == Some(day) { self.attempts_on_day + 1 } else { 1 };
                self.attempts_day = Some(day);
                self.in_flight_day = Some(day);
            }
            VerificationEvent::AttemptVoided { .. } => {
                if self.attempts_day.is_some() && self.attempts_day == self.in_flight_day && self.attempts_on_day > 0 {
                    self.attempts_on_day -= 1;
                }
                self.in_flight_day = None;
            }
            VerificationEvent::AttemptPassed { .. } | VerificationEvent::AttemptFailed { .. } => {
                self.in_flight_day = None;
            }
            VerificationEvent::ApplicationSubmitted { at, .. } => {
                let (start, _) = review_period(cst_date(*at));
                self.applications_in_period =
                    if self.period_start == Some(start) { self.applications_in_period + 1 } else { 1 };
                self.period_start = Some(start);
            }
            _ => {}
        }
    }
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
        let sql = format!("SELECT {ROW_COLUMNS} FROM verification_quotas WHERE account_id = $1");
        let row = crate::fetch_optional!(db, QuotaRow, &sql, account_id)?.unwrap_or_default();
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
        self.apply_batch(tx, &[e]).await
    }

    /// A batch reads the rows of the accounts it touches, folds its events into them in memory
    /// ([`QuotaRow::fold`]) and writes them back: on PostgreSQL with one statement each way
    /// (instead of two per event, which is what a rebuild of a year of attempts spent its time
    /// on), on SQLite, in-process, row by row.
    async fn apply_batch(&self, tx: &mut DbTx, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        let mut changes = Vec::with_capacity(events.len());
        for e in events.iter().filter(|e| e.aggregate_type == <Verification as cqrs_es::Aggregate>::TYPE) {
            let event = VerificationEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
            changes.push((e.aggregate_id.as_str(), event));
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<&str> = changes.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows: std::collections::HashMap<String, QuotaRow> =
            read_rows(tx, &ids).await?.into_iter().map(|row| (row.account_id.clone(), row)).collect();
        for (id, event) in &changes {
            rows.entry((*id).to_string())
                .or_insert_with(|| QuotaRow { account_id: (*id).to_string(), ..QuotaRow::default() })
                .fold(event);
        }
        write_rows(tx, rows.into_values().collect()).await?;
        Ok(())
    }
}

/// The rows of `ids` that exist.
async fn read_rows(tx: &mut DbTx, ids: &[&str]) -> Result<Vec<QuotaRow>, sqlx::Error> {
    match tx {
        DbTx::Postgres(conn) => {
            let sql = format!("SELECT {ROW_COLUMNS} FROM verification_quotas WHERE account_id = ANY($1)");
            sqlx::query_as(&sql).bind(ids).fetch_all(&mut **conn).await
        }
        DbTx::Sqlite(_) => {
            let sql = format!("SELECT {ROW_COLUMNS} FROM verification_quotas WHERE account_id = $1");
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                rows.extend(crate::fetch_optional!(tx tx, QuotaRow, &sql, *id)?);
            }
            Ok(rows)
        }
    }
}

const UPSERT_SET: &str = "ON CONFLICT (account_id) DO UPDATE SET attempts_day = excluded.attempts_day,
     attempts_on_day = excluded.attempts_on_day, in_flight_day = excluded.in_flight_day,
     period_start = excluded.period_start, applications_in_period = excluded.applications_in_period";

/// Writes `rows` as they now stand.
async fn write_rows(tx: &mut DbTx, rows: Vec<QuotaRow>) -> Result<(), sqlx::Error> {
    match tx {
        DbTx::Postgres(conn) => {
            let sql = format!(
                "INSERT INTO verification_quotas ({ROW_COLUMNS})
                 SELECT * FROM UNNEST($1::text[], $2::date[], $3::int4[], $4::date[], $5::date[], $6::int4[]) {UPSERT_SET}"
            );
            sqlx::query(&sql)
                .bind(rows.iter().map(|r| r.account_id.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.attempts_day).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.attempts_on_day).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.in_flight_day).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.period_start).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.applications_in_period).collect::<Vec<_>>())
                .execute(&mut **conn)
                .await?;
        }
        DbTx::Sqlite(_) => {
            let sql =
                format!("INSERT INTO verification_quotas ({ROW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) {UPSERT_SET}");
            for r in rows {
                exec!(tx tx, &sql, r.account_id, r.attempts_day, r.attempts_on_day, r.in_flight_day, r.period_start,
                    r.applications_in_period)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shenfen_domain::shared::PersonName;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        // 02:00 UTC is 10:00 in China: the CST date is the same calendar day.
        Utc.with_ymd_and_hms(2026, 5, day, hour, 0, 0).single().expect("a valid instant")
    }

    fn started(day: u32) -> VerificationEvent {
        VerificationEvent::AttemptStarted {
            account_id: "acc".into(),
            attempt_id: format!("att-{day}"),
            name: PersonName::parse("张三").expect("a name"),
            validity: None,
            at: at(day, 2),
        }
    }

    fn voided(day: u32) -> VerificationEvent {
        VerificationEvent::AttemptVoided {
            attempt_id: "a".into(),
            reason: "authority_unavailable".into(),
            at: at(day, 3),
        }
    }

    fn date(day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2026, 5, day)
    }

    #[test]
    fn a_batch_folds_attempts_as_the_statements_do() {
        let mut row = QuotaRow::default();
        row.fold(&started(10));
        row.fold(&VerificationEvent::AttemptFailed {
            attempt_id: "a".into(),
            reason: "mismatch".into(),
            at: at(10, 3),
        });
        row.fold(&started(10));
        assert_eq!((row.attempts_day, row.attempts_on_day, row.in_flight_day), (date(10), 2, date(10)));
        // A voided attempt gives back the day it was started on.
        row.fold(&voided(10));
        assert_eq!((row.attempts_on_day, row.in_flight_day), (1, None));
        // Nothing in flight: a second void changes nothing (SQL's NULL = NULL is not true).
        row.fold(&voided(10));
        assert_eq!(row.attempts_on_day, 1);
        // A new day starts from one.
        row.fold(&started(11));
        assert_eq!((row.attempts_day, row.attempts_on_day), (date(11), 1));
        // A row never started: voiding does not go below zero or count anything.
        let mut fresh = QuotaRow::default();
        fresh.fold(&voided(10));
        assert_eq!((fresh.attempts_day, fresh.attempts_on_day, fresh.in_flight_day), (None, 0, None));
    }
}
