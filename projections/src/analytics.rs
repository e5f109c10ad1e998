//! Analyst tables: registrations, real-name attempts, quota exhaustion and manual reviews.
//! See `migrations/*/0005_analytics.sql` for the schema and the README for its meaning.
//! Days are China Standard Time dates.
//!
//! A batch is folded in memory and written with few statements: the counted tables
//! (registrations, attempts, exhaustion) get the batch's sums ([`Sums`]), and the per-account
//! attempt counts behind the exhaustion figures are read for the accounts the batch touches,
//! folded ([`Counts`]) and written back — on PostgreSQL one statement per table, with arrays;
//! on SQLite, in-process, row by row. Reviews are few and stay event by event.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// What a batch adds to the counted tables, keyed as their primary keys are.
#[derive(Debug, Default)]
struct Sums {
    /// (day, document type) → registrations.
    registrations: BTreeMap<(NaiveDate, &'static str), i32>,
    /// (day, outcome, reason) → ended attempts.
    attempts: BTreeMap<(NaiveDate, &'static str, String), i32>,
    /// (day, quota) → accounts that used the quota up (less those given an attempt back).
    exhaustion: BTreeMap<(NaiveDate, &'static str), i32>,
}

/// Attempts counted per account and day (`analytics_attempt_counts`), for the accounts a
/// batch touches: every row of theirs, so an account's most recent day is known.
#[derive(Debug, Default)]
struct Counts {
    rows: HashMap<String, BTreeMap<NaiveDate, i32>>,
    changed: BTreeSet<(String, NaiveDate)>,
}

impl Counts {
    /// Counts an attempt `account` started on `day`; answers the day's count after it.
    fn start(&mut self, account: &str, day: NaiveDate) -> i32 {
        let counted = self.rows.entry(account.to_string()).or_default().entry(day).or_insert(0);
        *counted += 1;
        self.changed.insert((account.to_string(), day));
        *counted
    }

    /// Gives back a voided attempt: it no longer counts against the day it started on, which
    /// is the account's most recent day with a count. Answers that day and its count before.
    fn void(&mut self, account: &str) -> Option<(NaiveDate, i32)> {
        let (day, counted) = self.rows.get_mut(account)?.iter_mut().next_back()?;
        let before = *counted;
        *counted -= 1;
        self.changed.insert((account.to_string(), *day));
        Some((*day, before))
    }

    /// The rows as they now stand, of the days that changed.
    fn changed(&self) -> impl Iterator<Item = (&str, NaiveDate, i32)> {
        self.changed.iter().map(|(account, day)| (account.as_str(), *day, self.rows[account][day]))
    }
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

    async fn apply_batch(&self, tx: &mut DbTx, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        let mut sums = Sums::default();
        let mut attempts = Vec::new();
        for e in events {
            if e.aggregate_type == <Account as cqrs_es::Aggregate>::TYPE {
                if e.event_type != "Registered" {
                    continue;
                }
                let event = AccountEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
                if let AccountEvent::Registered { document_type, registered_at, .. } = event {
                    *sums.registrations.entry((cst_date(registered_at), document_type.as_str())).or_default() += 1;
                }
            } else if e.aggregate_type == <Verification as cqrs_es::Aggregate>::TYPE {
                let event =
                    VerificationEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
                match event {
                    VerificationEvent::AttemptStarted { .. } | VerificationEvent::AttemptVoided { .. } => {
                        attempts.push((e.aggregate_id.as_str(), event));
                    }
                    event => self.apply_verification(tx, event, &mut sums).await?,
                }
            }
        }
        if !attempts.is_empty() {
            let mut accounts: Vec<&str> = attempts.iter().map(|(id, _)| *id).collect();
            accounts.sort_unstable();
            accounts.dedup();
            let mut counts = read_counts(tx, &accounts).await?;
            for (account, event) in &attempts {
                counts.fold(account, event, &mut sums);
            }
            write_counts(tx, &counts).await?;
        }
        add_sums(tx, sums).await?;
        Ok(())
    }
}

impl Counts {
    /// The one place the exhaustion rule is written: the account's third attempt of a day
    /// exhausts the day's quota; voiding one of three gives it back. A voided attempt is also
    /// counted here among the ended ones (the others are in [`Analytics::apply_verification`]).
    fn fold(&mut self, account: &str, event: &VerificationEvent, sums: &mut Sums) {
        match event {
            VerificationEvent::AttemptStarted { at, .. } => {
                let day = cst_date(*at);
                if self.start(account, day) == DAILY_ATTEMPTS as i32 {
                    *sums.exhaustion.entry((day, "daily_attempts")).or_default() += 1;
                }
            }
            VerificationEvent::AttemptVoided { at, reason, .. } => {
                *sums.attempts.entry((cst_date(*at), "voided", reason.clone())).or_default() += 1;
                if let Some((day, before)) = self.void(account) {
                    if before == DAILY_ATTEMPTS as i32 {
                        *sums.exhaustion.entry((day, "daily_attempts")).or_default() -= 1;
                    }
                }
            }
            _ => {}
        }
    }
}

impl Analytics {
    /// Ended attempts and manual reviews.
    async fn apply_verification(
        &self,
        tx: &mut DbTx,
        event: VerificationEvent,
        sums: &mut Sums,
    ) -> Result<(), ProjectionError> {
        match event {
            VerificationEvent::AttemptPassed { at, .. } => {
                *sums.attempts.entry((cst_date(at), "passed", String::new())).or_default() += 1;
            }
            VerificationEvent::AttemptFailed { at, reason, .. } => {
                *sums.attempts.entry((cst_date(at), "failed", reason)).or_default() += 1;
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
                    *sums.exhaustion.entry((day, "period_applications")).or_default() += 1;
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

/// Every `analytics_attempt_counts` row of `accounts`.
async fn read_counts(tx: &mut DbTx, accounts: &[&str]) -> Result<Counts, sqlx::Error> {
    const COLUMNS: &str = "SELECT account_id, day, counted FROM analytics_attempt_counts";
    let rows: Vec<(String, NaiveDate, i32)> = match tx {
        DbTx::Postgres(conn) => {
            sqlx::query_as(&format!("{COLUMNS} WHERE account_id = ANY($1)"))
                .bind(accounts)
                .fetch_all(&mut **conn)
                .await?
        }
        DbTx::Sqlite(_) => {
            let sql = format!("{COLUMNS} WHERE account_id = $1");
            let mut rows = Vec::new();
            for account in accounts {
                rows.extend(crate::fetch_all!(tx tx, (String, NaiveDate, i32), &sql, *account)?);
            }
            rows
        }
    };
    let mut counts = Counts::default();
    for (account, day, counted) in rows {
        counts.rows.entry(account).or_default().insert(day, counted);
    }
    Ok(counts)
}

/// Writes the changed rows of `counts` as they now stand.
async fn write_counts(tx: &mut DbTx, counts: &Counts) -> Result<(), sqlx::Error> {
    if counts.changed.is_empty() {
        return Ok(());
    }
    const UPSERT: &str = "ON CONFLICT (account_id, day) DO UPDATE SET counted = excluded.counted";
    match tx {
        DbTx::Postgres(conn) => {
            let (mut accounts, mut days, mut counted) = (Vec::new(), Vec::new(), Vec::new());
            for (account, day, n) in counts.changed() {
                accounts.push(account);
                days.push(day);
                counted.push(n);
            }
            sqlx::query(&format!(
                "INSERT INTO analytics_attempt_counts (account_id, day, counted)
                 SELECT * FROM UNNEST($1::text[], $2::date[], $3::int4[]) {UPSERT}"
            ))
            .bind(accounts)
            .bind(days)
            .bind(counted)
            .execute(&mut **conn)
            .await?;
        }
        DbTx::Sqlite(_) => {
            let sql =
                format!("INSERT INTO analytics_attempt_counts (account_id, day, counted) VALUES ($1, $2, $3) {UPSERT}");
            for (account, day, n) in counts.changed() {
                exec!(tx tx, &sql, account, day, n)?;
            }
        }
    }
    Ok(())
}

/// Adds a batch's sums to the counted tables (a key not there yet is inserted, even with a sum
/// of zero, as adding one by one would).
async fn add_sums(tx: &mut DbTx, sums: Sums) -> Result<(), sqlx::Error> {
    add_pairs(tx, "analytics_registrations", "document_type", "registrations", &sums.registrations).await?;
    add_pairs(tx, "analytics_quota_exhaustion", "quota", "accounts", &sums.exhaustion).await?;
    if sums.attempts.is_empty() {
        return Ok(());
    }
    const UPSERT: &str = "ON CONFLICT (day, outcome, reason)
         DO UPDATE SET attempts = analytics_verification_attempts.attempts + excluded.attempts";
    match tx {
        DbTx::Postgres(conn) => {
            let (mut days, mut outcomes, mut reasons, mut counts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ((day, outcome, reason), n) in &sums.attempts {
                days.push(*day);
                outcomes.push(*outcome);
                reasons.push(reason.as_str());
                counts.push(*n);
            }
            sqlx::query(&format!(
                "INSERT INTO analytics_verification_attempts (day, outcome, reason, attempts)
                 SELECT * FROM UNNEST($1::date[], $2::text[], $3::text[], $4::int4[]) {UPSERT}"
            ))
            .bind(days)
            .bind(outcomes)
            .bind(reasons)
            .bind(counts)
            .execute(&mut **conn)
            .await?;
        }
        DbTx::Sqlite(_) => {
            let sql = format!(
                "INSERT INTO analytics_verification_attempts (day, outcome, reason, attempts) VALUES ($1, $2, $3, $4) {UPSERT}"
            );
            for ((day, outcome, reason), n) in sums.attempts {
                exec!(tx tx, &sql, day, outcome, reason, n)?;
            }
        }
    }
    Ok(())
}

/// Adds `sums` to `table`, keyed by `(day, key)`, into its column `value`.
async fn add_pairs(
    tx: &mut DbTx,
    table: &str,
    key: &str,
    value: &str,
    sums: &BTreeMap<(NaiveDate, &'static str), i32>,
) -> Result<(), sqlx::Error> {
    if sums.is_empty() {
        return Ok(());
    }
    let upsert = format!("ON CONFLICT (day, {key}) DO UPDATE SET {value} = {table}.{value} + excluded.{value}");
    match tx {
        DbTx::Postgres(conn) => {
            let days: Vec<NaiveDate> = sums.keys().map(|(day, _)| *day).collect();
            let keys: Vec<&str> = sums.keys().map(|(_, key)| *key).collect();
            let counts: Vec<i32> = sums.values().copied().collect();
            sqlx::query(&format!(
                "INSERT INTO {table} (day, {key}, {value}) SELECT * FROM UNNEST($1::date[], $2::text[], $3::int4[]) {upsert}"
            ))
            .bind(days)
            .bind(keys)
            .bind(counts)
            .execute(&mut **conn)
            .await?;
        }
        DbTx::Sqlite(_) => {
            let sql = format!("INSERT INTO {table} (day, {key}, {value}) VALUES ($1, $2, $3) {upsert}");
            for ((day, key), n) in sums {
                exec!(tx tx, &sql, *day, *key, *n)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use shenfen_domain::shared::PersonName;

    fn at(day: u32) -> DateTime<Utc> {
        // 02:00 UTC is 10:00 in China: the CST date is the same calendar day.
        Utc.with_ymd_and_hms(2026, 5, day, 2, 0, 0).single().expect("a valid instant")
    }

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, day).expect("a valid date")
    }

    fn started(day: u32) -> VerificationEvent {
        VerificationEvent::AttemptStarted {
            account_id: "acc".into(),
            attempt_id: format!("att-{day}"),
            name: PersonName::parse("张三").expect("a name"),
            validity: None,
            at: at(day),
        }
    }

    fn voided(day: u32) -> VerificationEvent {
        VerificationEvent::AttemptVoided { attempt_id: "a".into(), reason: "authority_unavailable".into(), at: at(day) }
    }

    #[test]
    fn the_third_attempt_of_a_day_exhausts_it_and_a_void_gives_it_back_on_the_latest_day() {
        let mut counts = Counts::default();
        // What the table held before the batch: two attempts on the 9th.
        counts.rows.entry("acc".into()).or_default().insert(date(9), 2);
        let mut sums = Sums::default();
        for event in [started(9), started(10), started(10), started(10), voided(11), voided(11)] {
            counts.fold("acc", &event, &mut sums);
        }
        // The 9th and the 10th reached three; the 10th was given two back (the voids' own day,
        // the 11th, has no count: a voided attempt counts against the most recent day).
        assert_eq!(
            sums.exhaustion,
            BTreeMap::from([((date(9), "daily_attempts"), 1), ((date(10), "daily_attempts"), 0)])
        );
        assert_eq!(counts.changed().collect::<Vec<_>>(), vec![("acc", date(9), 3), ("acc", date(10), 1)]);
        assert_eq!(sums.attempts, BTreeMap::from([((date(11), "voided", "authority_unavailable".to_string()), 2)]));
    }

    #[test]
    fn a_void_with_nothing_counted_changes_no_count() {
        let mut counts = Counts::default();
        let mut sums = Sums::default();
        counts.fold("acc", &voided(3), &mut sums);
        assert!(counts.changed.is_empty());
        assert!(sums.exhaustion.is_empty());
        // A third start on a day already at two exhausts it.
        counts.rows.entry("acc".into()).or_default().insert(date(4), 2);
        counts.fold("acc", &started(4), &mut sums);
        assert_eq!(sums.exhaustion, BTreeMap::from([((date(4), "daily_attempts"), 1)]));
        assert_eq!(counts.changed().collect::<Vec<_>>(), vec![("acc", date(4), 3)]);
    }
}
