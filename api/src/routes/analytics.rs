//! `GET /v1/analytics/...` for analysts: JSON, or CSV with `Accept: text/csv`. Every list
//! takes optional `from` and `to` dates (China time, inclusive).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use shenfen_domain::calendar::REVIEW_WORKING_DAYS;
use shenfen_domain::staff::Role;
use shenfen_domain::time::cst_date;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Ctx, StaffMember};
use crate::startup::AppState;

/// A date range (inclusive); both optional.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Range {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Range {
    /// The range with open ends closed by dates every backend stores and orders alike (SQLite
    /// compares dates as text, and PostgreSQL's dates stop long before `NaiveDate::MAX`).
    fn bounds(&self) -> (NaiveDate, NaiveDate) {
        let first = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
        let last = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default();
        // Ends outside those dates are clamped (PostgreSQL refuses dates before 4713 BC).
        (self.from.unwrap_or(first).clamp(first, last), self.to.unwrap_or(last).clamp(first, last))
    }
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/csv"))
}

/// JSON, or CSV (a header row from the field names) when the client asks for it.
fn respond<T: Serialize>(headers: &HeaderMap, rows: Vec<T>) -> ApiResult<Response> {
    if !wants_csv(headers) {
        return Ok(Json(rows).into_response());
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in &rows {
        writer.serialize(row).map_err(ApiError::internal)?;
    }
    let bytes = writer.into_inner().map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response())
}

fn analyst(staff: &StaffMember) -> ApiResult<()> {
    staff.require(&[Role::Analyst])
}

/// New accounts on one day for one document type.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct RegistrationRow {
    pub day: NaiveDate,
    pub document_type: String,
    pub registrations: i32,
}

/// Registrations by day and document type.
#[utoipa::path(get, path = "/v1/analytics/registrations", tag = "analyst", params(Range),
    responses((status = 200, description = "JSON, or CSV with `Accept: text/csv`",
        content((Vec<RegistrationRow> = "application/json"), (String = "text/csv")))))]
pub async fn registrations(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> ApiResult<Response> {
    analyst(&staff)?;
    let (from, to) = range.bounds();
    let rows = shenfen_projections::fetch_all!(
        state.reads.db(),
        RegistrationRow,
        "SELECT day, document_type, registrations FROM analytics_registrations WHERE day >= $1 AND day <= $2
          ORDER BY day, document_type",
        from,
        to
    )
    .map_err(ApiError::internal)?;
    respond(&headers, rows)
}

#[derive(Debug, sqlx::FromRow)]
struct AttemptRow {
    day: NaiveDate,
    outcome: String,
    reason: String,
    attempts: i32,
}

/// Real-name attempts on one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptDay {
    pub day: NaiveDate,
    pub passed: i64,
    pub failed: i64,
    /// Attempts that did not count (authority unavailable, abandoned).
    pub voided: i64,
    /// passed / (passed + failed); absent when there was neither.
    pub pass_rate: Option<f64>,
}

/// Failed attempts on one day for one reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureRow {
    pub day: NaiveDate,
    pub reason: String,
    pub failures: i64,
}

async fn attempt_rows(state: &AppState, range: &Range) -> ApiResult<Vec<AttemptRow>> {
    let (from, to) = range.bounds();
    shenfen_projections::fetch_all!(
        state.reads.db(),
        AttemptRow,
        "SELECT day, outcome, reason, attempts FROM analytics_verification_attempts WHERE day >= $1 AND day <= $2
          ORDER BY day, outcome, reason",
        from,
        to
    )
    .map_err(ApiError::internal)
}

/// Verification attempts and pass rate by day.
#[utoipa::path(get, path = "/v1/analytics/verification-attempts", tag = "analyst", params(Range),
    responses((status = 200, description = "JSON, or CSV with `Accept: text/csv`",
        content((Vec<AttemptDay> = "application/json"), (String = "text/csv")))))]
pub async fn verification_attempts(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> ApiResult<Response> {
    analyst(&staff)?;
    let mut days: Vec<AttemptDay> = Vec::new();
    for row in attempt_rows(&state, &range).await? {
        if days.last().is_none_or(|d| d.day != row.day) {
            days.push(AttemptDay { day: row.day, passed: 0, failed: 0, voided: 0, pass_rate: None });
        }
        if let Some(day) = days.last_mut() {
            match row.outcome.as_str() {
                "passed" => day.passed += i64::from(row.attempts),
                "failed" => day.failed += i64::from(row.attempts),
                _ => day.voided += i64::from(row.attempts),
            }
        }
    }
    for day in &mut days {
        let decided = day.passed + day.failed;
        day.pass_rate = (decided > 0).then(|| day.passed as f64 / decided as f64);
    }
    respond(&headers, days)
}

/// Failed attempts by day and failure reason.
#[utoipa::path(get, path = "/v1/analytics/verification-failures", tag = "analyst", params(Range),
    responses((status = 200, description = "JSON, or CSV with `Accept: text/csv`",
        content((Vec<FailureRow> = "application/json"), (String = "text/csv")))))]
pub async fn verification_failures(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> ApiResult<Response> {
    analyst(&staff)?;
    let rows = attempt_rows(&state, &range)
        .await?
        .into_iter()
        .filter(|r| r.outcome == "failed")
        .map(|r| FailureRow { day: r.day, reason: r.reason, failures: i64::from(r.attempts) })
        .collect();
    respond(&headers, rows)
}

/// Accounts that used up a quota on one day.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ExhaustionRow {
    pub day: NaiveDate,
    /// `daily_attempts` or `period_applications`.
    pub quota: String,
    pub accounts: i32,
}

/// Quota exhaustion by day.
#[utoipa::path(get, path = "/v1/analytics/quota-exhaustion", tag = "analyst", params(Range),
    responses((status = 200, description = "JSON, or CSV with `Accept: text/csv`",
        content((Vec<ExhaustionRow> = "application/json"), (String = "text/csv")))))]
pub async fn quota_exhaustion(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> ApiResult<Response> {
    analyst(&staff)?;
    let (from, to) = range.bounds();
    let rows = shenfen_projections::fetch_all!(
        state.reads.db(),
        ExhaustionRow,
        "SELECT day, quota, accounts FROM analytics_quota_exhaustion WHERE day >= $1 AND day <= $2 AND accounts > 0
          ORDER BY day, quota",
        from,
        to
    )
    .map_err(ApiError::internal)?;
    respond(&headers, rows)
}

#[derive(Debug, sqlx::FromRow)]
struct ReviewFact {
    review_id: String,
    submitted_day: NaiveDate,
    due_by: NaiveDate,
    decision: Option<String>,
    turnaround_working_days: Option<i32>,
}

/// Manual-review figures over a range of submission days.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewSummary {
    pub submitted: i64,
    pub decided: i64,
    pub approved: i64,
    pub rejected: i64,
    /// approved / decided.
    pub approval_rate: Option<f64>,
    pub turnaround_p50_working_days: Option<f64>,
    pub turnaround_p90_working_days: Option<f64>,
    /// The promise: a decision within this many working days.
    pub promise_working_days: u32,
    /// Share of decided applications decided within the promise.
    pub within_promise_rate: Option<f64>,
    /// Pending applications past their due date now.
    pub overdue_now: i64,
}

/// Manual reviews submitted on one day and what became of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewDay {
    pub day: NaiveDate,
    pub submitted: i64,
    pub approved: i64,
    pub rejected: i64,
    pub pending: i64,
}

/// A pending application past its due date.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueRow {
    pub review_id: String,
    pub submitted_day: NaiveDate,
    pub due_by: NaiveDate,
    pub working_days_overdue: u32,
}

async fn review_facts(state: &AppState, range: &Range) -> ApiResult<Vec<ReviewFact>> {
    let (from, to) = range.bounds();
    shenfen_projections::fetch_all!(
        state.reads.db(),
        ReviewFact,
        "SELECT review_id, submitted_day, due_by, decision, turnaround_working_days FROM analytics_reviews
          WHERE submitted_day >= $1 AND submitted_day <= $2 ORDER BY submitted_day, review_id",
        from,
        to
    )
    .map_err(ApiError::internal)
}

/// The value below which `q` of the sorted values fall (nearest rank).
fn percentile(sorted: &[i32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(f64::from(sorted[rank - 1]))
}

/// Volume, approval rate, turnaround against the 7-working-day promise, and what is overdue.
#[utoipa::path(get, path = "/v1/analytics/manual-reviews", tag = "analyst", params(Range),
    responses((status = 200, description = "JSON, or CSV with `Accept: text/csv`",
        content((ReviewSummary = "application/json"), (String = "text/csv")))))]
pub async fn manual_reviews(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> ApiResult<Response> {
    analyst(&staff)?;
    let facts = review_facts(&state, &range).await?;
    let today = cst_date(ctx.now);
    let mut turnaround: Vec<i32> = facts.iter().filter_map(|f| f.turnaround_working_days).collect();
    turnaround.sort_unstable();
    let approved = facts.iter().filter(|f| f.decision.as_deref() == Some("approved")).count() as i64;
    let rejected = facts.iter().filter(|f| f.decision.as_deref() == Some("rejected")).count() as i64;
    let decided = approved + rejected;
    let within = turnaround.iter().filter(|t| **t <= REVIEW_WORKING_DAYS as i32).count();
    let summary = ReviewSummary {
        submitted: facts.len() as i64,
        decided,
        approved,
        rejected,
        approval_rate: (decided > 0).then(|| approved as f64 / decided as f64),
        turnaround_p50_working_days: percentile(&turnaround, 0.5),
        turnaround_p90_working_days: percentile(&turnaround, 0.9),
        promise_working_days: REVIEW_WORKING_DAYS,
        within_promise_rate: (!turnaround.is_empty()).then(|| within as f64 / turnaround.len() as f64),
        overdue_now: facts.iter().filter(|f| f.decision.is_none() && f.due_by < today).count() as i64,
    };
    if wants_csv(&headers) {
        respond(&headers, vec![summary])
    } else {
        Ok(Json(summary).into_response())
    }
}

/// Manual reviews by submission day.
#[utoipa::path(get, path = "/v1/analytics/manual-reviews/daily", tag = "analyst", params(Range),
    responses((status = 200, description = "JSON, or CSV with `Accept: text/csv`",
        content((Vec<ReviewDay> = "application/json"), (String = "text/csv")))))]
pub async fn manual_reviews_daily(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> ApiResult<Response> {
    analyst(&staff)?;
    let mut days: Vec<ReviewDay> = Vec::new();
    for fact in review_facts(&state, &range).await? {
        if days.last().is_none_or(|d| d.day != fact.submitted_day) {
            days.push(ReviewDay { day: fact.submitted_day, submitted: 0, approved: 0, rejected: 0, pending: 0 });
        }
        if let Some(day) = days.last_mut() {
            day.submitted += 1;
            match fact.decision.as_deref() {
                Some("approved") => day.approved += 1,
                Some("rejected") => day.rejected += 1,
                Some(_) => {}
                None => day.pending += 1,
            }
        }
    }
    respond(&headers, days)
}

/// Pending applications past their due date, most overdue first.
#[utoipa::path(get, path = "/v1/analytics/manual-reviews/overdue", tag = "analyst",
    responses((status = 200, description = "JSON, or CSV with `Accept: text/csv`",
        content((Vec<OverdueRow> = "application/json"), (String = "text/csv")))))]
pub async fn overdue(
    State(state): State<Arc<AppState>>,
    ctx: Ctx,
    staff: StaffMember,
    headers: HeaderMap,
) -> ApiResult<Response> {
    analyst(&staff)?;
    let today = cst_date(ctx.now);
    let all = Range { from: None, to: None };
    let mut rows: Vec<OverdueRow> = review_facts(&state, &all)
        .await?
        .into_iter()
        .filter(|f| f.decision.is_none() && f.due_by < today)
        .map(|f| OverdueRow {
            working_days_overdue: state.calendar.working_days_between(f.due_by, today),
            review_id: f.review_id,
            submitted_day: f.submitted_day,
            due_by: f.due_by,
        })
        .collect();
    rows.sort_by(|a, b| a.due_by.cmp(&b.due_by).then_with(|| a.review_id.cmp(&b.review_id)));
    respond(&headers, rows)
}

/// Student verifications of one school on one China day.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudentVerificationRow {
    pub school_code: String,
    pub day: NaiveDate,
    /// The students' own submissions that reached the registry (voided ones not counted).
    pub submitted: i32,
    pub auto_approved: i32,
    pub head_teacher_approved: i32,
    pub returned: i32,
    pub registry_failed: i32,
    /// auto_approved / submitted; absent when nothing was submitted.
    pub auto_approval_rate: Option<f64>,
    /// returned / submitted; absent when nothing was submitted.
    pub return_rate: Option<f64>,
}

/// Student verification outcomes per school and day (自动审核通过率, 退回率).
#[utoipa::path(get, path = "/v1/analytics/student-verifications", tag = "analyst", params(Range),
    responses((status = 200, description = "JSON, or CSV with `Accept: text/csv`",
        content((Vec<StudentVerificationRow> = "application/json"), (String = "text/csv"))),
        (status = 403, body = crate::error::Problem)))]
pub async fn student_verifications(
    State(state): State<Arc<AppState>>,
    staff: StaffMember,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> ApiResult<Response> {
    analyst(&staff)?;
    let (from, to) = range.bounds();
    let days = shenfen_projections::students::Students::verifications(state.reads.db(), from, to)
        .await
        .map_err(ApiError::internal)?;
    let rate = |n: i32, of: i32| (of > 0).then(|| f64::from(n) / f64::from(of));
    let rows = days
        .into_iter()
        .map(|d| StudentVerificationRow {
            auto_approval_rate: rate(d.auto_approved, d.submitted),
            return_rate: rate(d.returned, d.submitted),
            school_code: d.school_code,
            day: d.day,
            submitted: d.submitted,
            auto_approved: d.auto_approved,
            head_teacher_approved: d.head_teacher_approved,
            returned: d.returned,
            registry_failed: d.registry_failed,
        })
        .collect();
    respond(&headers, rows)
}
