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
use chrono::{DateTime, NaiveDate, Utc};
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
        let (mut attempts, mut reviews) = (Vec::new(), Vec::new());
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
                    VerificationEvent::AttemptPassed { at, .. } => {
                        *sums.attempts.entry((cst_date(at), "passed", String::new())).or_default() += 1;
                    }
                    VerificationEvent::AttemptFailed { at, reason, .. } => {
                        *sums.attempts.entry((cst_date(at), "failed", reason)).or_default() += 1;
                    }
                    VerificationEvent::ApplicationSubmitted { .. }
                    | VerificationEvent::ApplicationApproved { .. }
                    | VerificationEvent::ApplicationRejected { .. }
                    | VerificationEvent::ApplicationWithdrawn { .. } => reviews.push(event),
                    _ => {}
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
        if !reviews.is_empty() {
            let mut rows = read_reviews(tx, &reviews).await?;
            for event in reviews {
                rows.fold(event, &self.calendar, &mut sums);
            }
            write_reviews(tx, &rows).await?;
        }
        add_sums(tx, sums).await?;
        Ok(())
    }
}

impl Counts {
    /// The one place the exhaustion rule is written: the account's third attempt of a day
    /// exhausts the day's quota; voiding one of three gives it back. A voided attempt is also
    /// counted here among the ended ones (the others in [`Analytics::apply_batch`]).
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

/// An `analytics_reviews` row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct ReviewRow {
    review_id: String,
    account_id: String,
    document_type: String,
    submitted_at: DateTime<Utc>,
    submitted_day: NaiveDate,
    period_start: NaiveDate,
    due_by: NaiveDate,
    decision: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    decided_day: Option<NaiveDate>,
    turnaround_working_days: Option<i32>,
    rejection_reason: Option<String>,
}

const REVIEW_COLUMNS: &str = "review_id, account_id, document_type, submitted_at, submitted_day, period_start, due_by,
     decision, decided_at, decided_day, turnaround_working_days, rejection_reason";

/// The reviews a batch touches, and the applications of its applicants per period.
#[derive(Debug, Default)]
struct Reviews {
    rows: HashMap<String, ReviewRow>,
    /// (account, period start) → applications in the table.
    in_period: HashMap<(String, NaiveDate), i64>,
    changed: BTreeSet<String>,
}

impl Reviews {
    /// The one place the reviews' rules are written: an application is recorded once (a
    /// second submission of the same review changes nothing); the applicant's third in a
    /// period exhausts the period's quota; a decision records its turnaround in working days,
    /// a withdrawal is no reviewer's decision (no turnaround, never overdue).
    fn fold(&mut self, event: VerificationEvent, calendar: &WorkingCalendar, sums: &mut Sums) {
        match event {
            VerificationEvent::ApplicationSubmitted { account_id, review_id, document_type, due_by, at, .. } => {
                let day = cst_date(at);
                let (period_start, _) = review_period(day);
                let key = (account_id.clone(), period_start);
                if !self.rows.contains_key(&review_id) {
                    *self.in_period.entry(key.clone()).or_default() += 1;
                    self.changed.insert(review_id.clone());
                    self.rows.insert(
                        review_id.clone(),
                        ReviewRow {
                            review_id,
                            account_id,
                            document_type: document_type.as_str().to_string(),
                            submitted_at: at,
                            submitted_day: day,
                            period_start,
                            due_by,
                            decision: None,
                            decided_at: None,
                            decided_day: None,
                            turnaround_working_days: None,
                            rejection_reason: None,
                        },
                    );
                }
                if self.in_period.get(&key) == Some(&(PERIOD_APPLICATIONS as i64)) {
                    *sums.exhaustion.entry((day, "period_applications")).or_default() += 1;
                }
            }
            VerificationEvent::ApplicationApproved { review_id, at, .. } => {
                self.reviewed(&review_id, "approved", at, None, calendar);
            }
            VerificationEvent::ApplicationRejected { review_id, reason, at, .. } => {
                self.reviewed(&review_id, "rejected", at, Some(reason), calendar);
            }
            VerificationEvent::ApplicationWithdrawn { review_id, at, .. } => {
                // Not a reviewer's decision: no turnaround, never overdue.
                self.record(&review_id, "withdrawn", at);
            }
            _ => {}
        }
    }

    /// A reviewer's decision: recorded with its turnaround in working days and its reason.
    fn reviewed(
        &mut self,
        review_id: &str,
        decision: &str,
        at: DateTime<Utc>,
        reason: Option<String>,
        calendar: &WorkingCalendar,
    ) {
        if let Some(row) = self.record(review_id, decision, at) {
            row.turnaround_working_days = Some(calendar.working_days_between(row.submitted_day, cst_date(at)) as i32);
            row.rejection_reason = reason;
        }
    }

    /// Records `decision` at `at` on a review the table has; answers its row.
    fn record(&mut self, review_id: &str, decision: &str, at: DateTime<Utc>) -> Option<&mut ReviewRow> {
        let row = self.rows.get_mut(review_id)?;
        row.decision = Some(decision.to_string());
        row.decided_at = Some(at);
        row.decided_day = Some(cst_date(at));
        self.changed.insert(review_id.to_string());
        Some(row)
    }
}

/// The rows of the reviews `events` name, and the applications in the table of the accounts
/// that submit.
async fn read_reviews(tx: &mut DbTx, events: &[VerificationEvent]) -> Result<Reviews, sqlx::Error> {
    let mut ids = Vec::new();
    let mut accounts = Vec::new();
    for event in events {
        match event {
            VerificationEvent::ApplicationSubmitted { review_id, account_id, .. } => {
                ids.push(review_id.as_str());
                accounts.push(account_id.as_str());
            }
            VerificationEvent::ApplicationApproved { review_id, .. }
            | VerificationEvent::ApplicationRejected { review_id, .. }
            | VerificationEvent::ApplicationWithdrawn { review_id, .. } => ids.push(review_id.as_str()),
            _ => {}
        }
    }
    ids.sort_unstable();
    ids.dedup();
    accounts.sort_unstable();
    accounts.dedup();
    const PER_PERIOD: &str =
        "SELECT account_id, period_start, count(*) FROM analytics_reviews WHERE account_id = ANY($1)
          GROUP BY account_id, period_start";
    let (rows, in_period): (Vec<ReviewRow>, Vec<(String, NaiveDate, i64)>) = match tx {
        DbTx::Postgres(conn) => {
            let rows =
                sqlx::query_as(&format!("SELECT {REVIEW_COLUMNS} FROM analytics_reviews WHERE review_id = ANY($1)"))
                    .bind(&ids)
                    .fetch_all(&mut **conn)
                    .await?;
            let in_period = if accounts.is_empty() {
                Vec::new()
            } else {
                sqlx::query_as(PER_PERIOD).bind(&accounts).fetch_all(&mut **conn).await?
            };
            (rows, in_period)
        }
        DbTx::Sqlite(_) => {
            let by_id = format!("SELECT {REVIEW_COLUMNS} FROM analytics_reviews WHERE review_id = $1");
            let mut rows = Vec::new();
            for id in &ids {
                rows.extend(crate::fetch_optional!(tx tx, ReviewRow, &by_id, *id)?);
            }
            let mut in_period = Vec::new();
            for account in &accounts {
                in_period.extend(crate::fetch_all!(tx tx, (String, NaiveDate, i64),
                    "SELECT account_id, period_start, count(*) FROM analytics_reviews WHERE account_id = $1
                      GROUP BY account_id, period_start", *account)?);
            }
            (rows, in_period)
        }
    };
    Ok(Reviews {
        rows: rows.into_iter().map(|row| (row.review_id.clone(), row)).collect(),
        in_period: in_period.into_iter().map(|(account, period, n)| ((account, period), n)).collect(),
        changed: BTreeSet::new(),
    })
}

/// Writes the changed review rows as they now stand.
async fn write_reviews(tx: &mut DbTx, reviews: &Reviews) -> Result<(), sqlx::Error> {
    const UPSERT: &str = "ON CONFLICT (review_id) DO UPDATE SET decision = excluded.decision,
         decided_at = excluded.decided_at, decided_day = excluded.decided_day,
         turnaround_working_days = excluded.turnaround_working_days, rejection_reason = excluded.rejection_reason";
    let rows: Vec<&ReviewRow> = reviews.changed.iter().map(|id| &reviews.rows[id]).collect();
    if rows.is_empty() {
        return Ok(());
    }
    match tx {
        DbTx::Postgres(conn) => {
            sqlx::query(&format!(
                "INSERT INTO analytics_reviews ({REVIEW_COLUMNS})
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::date[], $6::date[],
                                      $7::date[], $8::text[], $9::timestamptz[], $10::date[], $11::int4[], $12::text[])
                 {UPSERT}"
            ))
            .bind(rows.iter().map(|r| r.review_id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.account_id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.document_type.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.submitted_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.submitted_day).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.period_start).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.due_by).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.decision.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.decided_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.decided_day).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.turnaround_working_days).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.rejection_reason.as_deref()).collect::<Vec<_>>())
            .execute(&mut **conn)
            .await?;
        }
        DbTx::Sqlite(_) => {
            let sql = format!(
                "INSERT INTO analytics_reviews ({REVIEW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 {UPSERT}"
            );
            for r in rows {
                exec!(tx tx, &sql, &r.review_id, &r.account_id, &r.document_type, r.submitted_at, r.submitted_day,
                    r.period_start, r.due_by, r.decision.as_deref(), r.decided_at, r.decided_day,
                    r.turnaround_working_days, r.rejection_reason.as_deref())?;
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

    fn review_event(json: serde_json::Value) -> VerificationEvent {
        serde_json::from_value(json).expect("a review event")
    }

    fn submitted(review: &str, day: u32) -> VerificationEvent {
        review_event(serde_json::json!({"ApplicationSubmitted": {
            "at": at(day), "name": "张三", "due_by": "2026-05-29",
            "photos": {"back": "b", "front": "f", "handheld": "h"},
            "validity": {"start": "2018-09-19", "period": "20y"},
            "review_id": review, "account_id": "acc", "document_type": "resident_id_card"}}))
    }

    #[test]
    fn reviews_are_recorded_once_decided_with_their_turnaround_and_the_third_exhausts_the_period() {
        let calendar = WorkingCalendar::shipped();
        let mut reviews = Reviews::default();
        let mut sums = Sums::default();
        // Two applications this period already in the table; one of them is `rev-0`.
        reviews.in_period.insert(("acc".into(), review_period(date(4)).0), 2);
        let mut fresh = Reviews::default();
        fresh.fold(submitted("rev-0", 4), &calendar, &mut Sums::default());
        let mut old = fresh.rows.remove("rev-0").expect("a row");
        old.decision = Some("rejected".into());
        reviews.rows.insert("rev-0".into(), old.clone());
        let events = [
            submitted("rev-0", 4), // again: changes nothing, counts nothing
            submitted("rev-1", 11),
            review_event(serde_json::json!({"ApplicationRejected": {
                "at": at(12), "reason": "blurred", "reviewer": "r", "review_id": "rev-1"}})),
            review_event(serde_json::json!({"ApplicationWithdrawn": {
                "at": at(13), "reason": "reregistered", "review_id": "rev-1"}})),
            review_event(serde_json::json!({"ApplicationWithdrawn": {
                "at": at(13), "reason": "reregistered", "review_id": "rev-unknown"}})),
        ];
        for event in events {
            reviews.fold(event, &calendar, &mut sums);
        }
        assert_eq!(reviews.rows["rev-0"], old);
        assert_eq!(reviews.changed.iter().collect::<Vec<_>>(), vec!["rev-1"]);
        let row = &reviews.rows["rev-1"];
        assert_eq!((row.submitted_day, row.period_start), (date(11), review_period(date(11)).0));
        // Rejected the next day, with the calendar's turnaround; then withdrawn, which keeps it.
        assert_eq!(row.decision.as_deref(), Some("withdrawn"));
        assert_eq!(row.decided_day, Some(date(13)));
        assert_eq!(row.turnaround_working_days, Some(calendar.working_days_between(date(11), date(12)) as i32));
        assert_eq!(row.rejection_reason.as_deref(), Some("blurred"));
        assert_eq!(sums.exhaustion, BTreeMap::from([((date(11), "period_applications"), 1)]));
    }
}
