//! End-to-end scenarios of the analyst and auditor endpoints, each run against the real server
//! binary on SQLite and on PostgreSQL (see `both_stores!`): the analytics tables as they fill
//! during a day of registrations, real-name attempts and manual reviews (JSON and CSV); an
//! account's history as auditors read it (order, actors, request ids, hashes, no secrets) and
//! its state as of an instant; the hash chain noticing an event changed behind the server's
//! back; who may read what; and the lists without a date range, including the overdue list
//! (a review is made overdue by moving its row in the `analytics_reviews` read model, since
//! the server's clock cannot be moved).
//!
//! The analytics tables are projections updated asynchronously, so every check of a figure
//! polls (`TestApp::poll_as`) until the figure appears or five seconds pass, then asserts on the
//! last answer.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use shenfen_tests::{
    both_stores, china_today, parse_csv, request_id, working_days_between, ApiResponse, Identity, Registered,
    Registration, ReviewApplication, Settings, Store, TestApp,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const REGISTRATIONS: &str = "/v1/analytics/registrations";
const ATTEMPTS: &str = "/v1/analytics/verification-attempts";
const FAILURES: &str = "/v1/analytics/verification-failures";
const QUOTA_EXHAUSTION: &str = "/v1/analytics/quota-exhaustion";
const REVIEWS: &str = "/v1/analytics/manual-reviews";
const REVIEWS_DAILY: &str = "/v1/analytics/manual-reviews/daily";
const REVIEWS_OVERDUE: &str = "/v1/analytics/manual-reviews/overdue";

/// Every analytics endpoint.
const ANALYTICS: [&str; 7] =
    [REGISTRATIONS, ATTEMPTS, FAILURES, QUOTA_EXHAUSTION, REVIEWS, REVIEWS_DAILY, REVIEWS_OVERDUE];

/// Today in China time, `YYYY-MM-DD`.
fn today() -> String {
    china_today().format("%Y-%m-%d").to_string()
}

/// Yesterday in China time, `YYYY-MM-DD`.
fn yesterday() -> String {
    china_today().pred_opt().unwrap().format("%Y-%m-%d").to_string()
}

/// `path?from=day&to=day`
fn on_day(path: &str, day: &str) -> String {
    format!("{path}?from={day}&to={day}")
}

/// The items of a JSON array answer.
#[track_caller]
fn items(response: &ApiResponse) -> Vec<Value> {
    response.body.as_array().unwrap_or_else(|| panic!("not a JSON array\n{}: {}", response.what, response.text)).clone()
}

/// The rows of a JSON array answer whose `day` is `day`.
fn rows_of_day(response: &ApiResponse, day: &str) -> Vec<Value> {
    response
        .body
        .as_array()
        .map(|rows| rows.iter().filter(|r| r["day"] == json!(day)).cloned().collect())
        .unwrap_or_default()
}

/// The only row of `day` (panics when there is none or more than one).
#[track_caller]
fn the_row_of_day(response: &ApiResponse, day: &str) -> Value {
    let rows = rows_of_day(response, day);
    assert_eq!(rows.len(), 1, "expected one row for {day}\n{}: {}", response.what, response.text);
    rows[0].clone()
}

/// An integer field of a row, or -1 when it is missing or not an integer (so polls keep going).
fn int(row: &Value, field: &str) -> i64 {
    row[field].as_i64().unwrap_or(-1)
}

/// Asserts that a number field of a JSON answer is `expected` (integers and floats alike).
#[track_caller]
fn assert_number(value: &Value, field: &str, expected: f64, context: &str) {
    let actual = value[field].as_f64().unwrap_or_else(|| panic!("`{field}` is not a number in {value}\n{context}"));
    assert!((actual - expected).abs() < 1e-9, "`{field}` is {actual}, expected {expected}\n{context}");
}

/// `{key field: count field}` of the rows of `day`, e.g. registrations by document type.
fn counts_by(response: &ApiResponse, day: &str, key: &str, count: &str) -> BTreeMap<String, i64> {
    rows_of_day(response, day).iter().map(|r| (r[key].as_str().unwrap_or("").to_string(), int(r, count))).collect()
}

/// `[("a", 1), …]` as a map, for comparing with [`counts_by`].
fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// A CSV answer: asserts 200 and `text/csv`, and returns the header and the rows as maps from
/// the header's names.
#[track_caller]
fn csv_table(response: &ApiResponse) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    response.assert_status(200);
    assert!(
        response.content_type().starts_with("text/csv"),
        "content-type is {:?}, not text/csv\n{}: {}",
        response.content_type(),
        response.what,
        response.text
    );
    let mut rows = parse_csv(&response.text).into_iter();
    let header = rows.next().unwrap_or_else(|| panic!("no header row\n{}: {:?}", response.what, response.text));
    let rows = rows
        .map(|row| {
            assert_eq!(row.len(), header.len(), "row {row:?} does not match the header {header:?}\n{}", response.text);
            header.iter().cloned().zip(row).collect()
        })
        .collect();
    (header, rows)
}

/// One real-name attempt that the authority refuses: 200 `failed` with `reason`.
async fn failed_attempt(app: &TestApp, token: &str, reason: &str) {
    let attempt = app.verify(token).await;
    attempt.assert_status(200);
    assert_eq!(attempt.str("result"), "failed", "{}", attempt.text);
    assert_eq!(attempt.str("reason"), reason, "{}", attempt.text);
}

/// One real-name attempt that passes.
async fn passed_attempt(app: &TestApp, token: &str, body: Option<&Value>) {
    let attempt = match body {
        Some(body) => app.verify_with(token, body).await,
        None => app.verify(token).await,
    };
    attempt.assert_status(200);
    assert_eq!(attempt.str("result"), "passed", "{}", attempt.text);
}

/// Submits `application` (201) and returns the review id.
async fn submit(app: &TestApp, token: &str, application: &ReviewApplication) -> String {
    let submitted = app.apply_for_review(token, application).await;
    submitted.assert_status(201);
    submitted.str("review_id")
}

/// Claims `review_id` as `reviewer` and decides it; asserts 200 both times.
async fn claim_and_decide(app: &TestApp, reviewer: &str, review_id: &str, decision: &str, reason: Option<&str>) {
    app.claim_review(reviewer, review_id).await.assert_status(200);
    app.decide_review(reviewer, review_id, decision, reason).await.assert_status(200);
}

/// An instant field of a JSON value.
#[track_caller]
fn instant_of(value: &Value, field: &str) -> DateTime<Utc> {
    let text = value[field].as_str().unwrap_or_else(|| panic!("no `{field}` in {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("`{field}` = {text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The event of `event_type` (the first one) in an events answer.
#[track_caller]
fn event_of_type(events: &[Value], event_type: &str) -> Value {
    events
        .iter()
        .find(|e| e["event_type"] == json!(event_type))
        .cloned()
        .unwrap_or_else(|| panic!("no {event_type} event among {events:#?}"))
}

/// Asserts that no secret is readable anywhere in `value`: every `password_hash`,
/// `secret_hash` and `token_hash` is `"[redacted]"`, and no string holds an Argon2 hash.
#[track_caller]
fn assert_no_secrets(value: &Value, context: &str) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if matches!(key.as_str(), "password_hash" | "secret_hash" | "token_hash") {
                    assert_eq!(inner, &json!("[redacted]"), "`{key}` is not redacted\n{context}");
                }
                assert_no_secrets(inner, context);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| assert_no_secrets(item, context)),
        Value::String(text) => assert!(!text.contains("$argon2"), "an Argon2 hash is shown\n{context}"),
        _ => {}
    }
}

/// Registers `registration` with `x-request-id: request_id` on `POST /v1/accounts`; asserts 201.
async fn register_with_request_id(app: &TestApp, registration: &Registration, request_id: &str) -> Registered {
    let code = app.register_code(&registration.mobile).await;
    let response =
        app.send_with_request_id(Method::POST, "/v1/accounts", None, Some(&registration.body(&code)), request_id).await;
    response.assert_status(201);
    Registered {
        document_type: registration.document_type.clone(),
        document_number: registration.document_number.clone(),
        name: registration.name.clone(),
        password: registration.password.clone(),
        mobile: registration.mobile.clone(),
        email: registration.email.clone(),
        account_id: response.str("account_id"),
    }
}

// ---------------------------------------------------------------------------------------------
// Analytics
// ---------------------------------------------------------------------------------------------

/// Who the identity authority knows in the analytics journey: someone on record under the
/// name they register with, someone on record as 王晓明 who registers as 王小明, and a
/// document for which the authority is unavailable.
fn analytics_identities() -> Settings {
    Settings::with_identities(vec![Identity::resident("王小明"), Identity::resident("王晓明"), Identity::unavailable()])
}

async fn analysts_see_the_days_registrations_attempts_quota_exhaustion_and_manual_reviews(app: &mut TestApp) {
    let analyst = app.staff_member("analyst").await;
    let reviewer = app.staff_member("reviewer").await;
    let today = today();
    let identities = app.identities().to_vec();
    let (on_record, misnamed, unavailable) = (&identities[0], &identities[1], &identities[2]);

    // Registrations: two resident ID cards and one other document (straight to manual review).
    let (_, passer_token) = app.ready_applicant(on_record.registration("王小明")).await;
    let (_, misnamed_token) = app.ready_applicant(misnamed.registration("王小明")).await;
    let permit = Registration::other();
    let (_, permit_token) = app.ready_applicant(permit.clone()).await;

    let expected = counts(&[("other", 1), ("resident_id_card", 2)]);
    let by_type = |r: &ApiResponse| counts_by(r, &today, "document_type", "registrations");
    let registrations = app.poll_as(&analyst.token, &on_day(REGISTRATIONS, &today), |r| by_type(r) == expected).await;
    registrations.assert_status(200);
    assert_eq!(by_type(&registrations), expected, "{}", registrations.text);
    assert_eq!(items(&registrations).len(), 2, "one row per day and document type: {}", registrations.text);

    let csv = app.get_csv_as(&analyst.token, &on_day(REGISTRATIONS, &today)).await;
    let (header, rows) = csv_table(&csv);
    assert_eq!(header, ["day", "document_type", "registrations"], "{}", csv.text);
    let from_csv: BTreeMap<String, i64> = rows
        .iter()
        .filter(|r| r["day"] == today)
        .map(|r| (r["document_type"].clone(), r["registrations"].parse().unwrap_or(-1)))
        .collect();
    assert_eq!(from_csv, expected, "{}", csv.text);
    assert_eq!(rows.len(), 2, "{}", csv.text);

    let before = app.get_as(&analyst.token, &on_day(REGISTRATIONS, &yesterday())).await;
    before.assert_status(200);
    assert!(items(&before).is_empty(), "nothing was registered yesterday: {}", before.text);

    // Real-name verification: one passes at once, one fails twice on the name and then passes
    // with the name on record.
    passed_attempt(app, &passer_token, None).await;
    failed_attempt(app, &misnamed_token, "name_mismatch").await;
    failed_attempt(app, &misnamed_token, "name_mismatch").await;
    passed_attempt(app, &misnamed_token, Some(&json!({"name": "王晓明"}))).await;

    let day_of = |r: &ApiResponse| rows_of_day(r, &today).first().cloned().unwrap_or(Value::Null);
    let attempts = app
        .poll_as(&analyst.token, &on_day(ATTEMPTS, &today), |r| {
            int(&day_of(r), "passed") == 2 && int(&day_of(r), "failed") == 2
        })
        .await;
    attempts.assert_status(200);
    let row = the_row_of_day(&attempts, &today);
    assert_eq!((int(&row, "passed"), int(&row, "failed"), int(&row, "voided")), (2, 2, 0), "{}", attempts.text);
    assert_number(&row, "pass_rate", 0.5, &attempts.text);

    let by_reason = |r: &ApiResponse| counts_by(r, &today, "reason", "failures");
    let failures = app
        .poll_as(&analyst.token, &on_day(FAILURES, &today), |r| by_reason(r) == counts(&[("name_mismatch", 2)]))
        .await;
    failures.assert_status(200);
    assert_eq!(by_reason(&failures), counts(&[("name_mismatch", 2)]), "{}", failures.text);
    assert_eq!(items(&failures).len(), 1, "{}", failures.text);

    // An account counts once it reaches three counted attempts in a day, whatever the third
    // one's outcome. That is how the README puts it ("accounts that used up a quota that day"),
    // and the second holder's third attempt, which passed, used up the day's quota.
    let by_quota = |r: &ApiResponse| counts_by(r, &today, "quota", "accounts");
    let exhausted = app
        .poll_as(&analyst.token, &on_day(QUOTA_EXHAUSTION, &today), |r| by_quota(r) == counts(&[("daily_attempts", 1)]))
        .await;
    exhausted.assert_status(200);
    assert_eq!(by_quota(&exhausted), counts(&[("daily_attempts", 1)]), "{}", exhausted.text);

    // The authority is unavailable for a third resident: the attempt is voided, counted as
    // voided and left out of the pass rate.
    let (_, unavailable_token) = app.ready_applicant(unavailable.registration("王小明")).await;
    app.verify(&unavailable_token).await.assert_problem(503, "identity_authority_unavailable");
    let attempts = app.poll_as(&analyst.token, &on_day(ATTEMPTS, &today), |r| int(&day_of(r), "voided") == 1).await;
    let row = the_row_of_day(&attempts, &today);
    assert_eq!((int(&row, "passed"), int(&row, "failed"), int(&row, "voided")), (2, 2, 1), "{}", attempts.text);
    assert_number(&row, "pass_rate", 0.5, &attempts.text);

    // A fourth resident the authority does not know fails three times and is refused a fourth.
    let (_, unknown_token) = app.ready_applicant(Registration::resident()).await;
    for _ in 0..3 {
        failed_attempt(app, &unknown_token, "identity_not_found").await;
    }
    app.verify(&unknown_token).await.assert_problem(429, "daily_attempts_exhausted");

    let attempts = app.poll_as(&analyst.token, &on_day(ATTEMPTS, &today), |r| int(&day_of(r), "failed") == 5).await;
    let row = the_row_of_day(&attempts, &today);
    assert_eq!((int(&row, "passed"), int(&row, "failed"), int(&row, "voided")), (2, 5, 1), "{}", attempts.text);
    assert_number(&row, "pass_rate", 2.0 / 7.0, &attempts.text);
    let csv = app.get_csv_as(&analyst.token, &on_day(ATTEMPTS, &today)).await;
    let (header, rows) = csv_table(&csv);
    assert_eq!(header, ["day", "passed", "failed", "voided", "pass_rate"], "{}", csv.text);
    assert_eq!(rows.len(), 1, "{}", csv.text);
    assert_eq!((rows[0]["day"].as_str(), rows[0]["passed"].as_str()), (today.as_str(), "2"), "{}", csv.text);
    assert_eq!((rows[0]["failed"].as_str(), rows[0]["voided"].as_str()), ("5", "1"), "{}", csv.text);
    let pass_rate: f64 = rows[0]["pass_rate"].parse().unwrap_or_else(|e| panic!("pass_rate: {e}\n{}", csv.text));
    assert!((pass_rate - 2.0 / 7.0).abs() < 1e-9, "{}", csv.text);

    let failures_expected = counts(&[("identity_not_found", 3), ("name_mismatch", 2)]);
    let failures = app.poll_as(&analyst.token, &on_day(FAILURES, &today), |r| by_reason(r) == failures_expected).await;
    assert_eq!(by_reason(&failures), failures_expected, "{}", failures.text);
    let exhausted = app
        .poll_as(&analyst.token, &on_day(QUOTA_EXHAUSTION, &today), |r| by_quota(r) == counts(&[("daily_attempts", 2)]))
        .await;
    assert_eq!(by_quota(&exhausted), counts(&[("daily_attempts", 2)]), "{}", exhausted.text);
    let none_yesterday = app.get_as(&analyst.token, &on_day(ATTEMPTS, &yesterday())).await;
    none_yesterday.assert_status(200);
    assert!(items(&none_yesterday).is_empty(), "{}", none_yesterday.text);

    // Manual review: the permit holder applies, is rejected, applies again and is approved.
    let application = ReviewApplication::for_registration(&permit, &permit.name);
    let first = submit(app, &permit_token, &application).await;
    claim_and_decide(app, &reviewer.token, &first, "reject", Some("手持证件照片模糊")).await;
    let second = submit(app, &permit_token, &application).await;
    claim_and_decide(app, &reviewer.token, &second, "approve", None).await;

    let summary = app.poll_as(&analyst.token, &on_day(REVIEWS, &today), |r| int(&r.body, "decided") == 2).await;
    summary.assert_status(200);
    let s = &summary.body;
    assert_eq!(
        (int(s, "submitted"), int(s, "decided"), int(s, "approved"), int(s, "rejected")),
        (2, 2, 1, 1),
        "{}",
        summary.text
    );
    assert_number(s, "approval_rate", 0.5, &summary.text);
    assert_number(s, "turnaround_p50_working_days", 0.0, &summary.text);
    assert_number(s, "turnaround_p90_working_days", 0.0, &summary.text);
    assert_number(s, "promise_working_days", 7.0, &summary.text);
    assert_number(s, "within_promise_rate", 1.0, &summary.text);
    assert_number(s, "overdue_now", 0.0, &summary.text);

    let csv = app.get_csv_as(&analyst.token, &on_day(REVIEWS, &today)).await;
    let (header, rows) = csv_table(&csv);
    assert_eq!(rows.len(), 1, "the summary is one row: {}", csv.text);
    for field in ["submitted", "decided", "approved", "rejected", "approval_rate", "within_promise_rate", "overdue_now"]
    {
        assert!(header.iter().any(|h| h == field), "no `{field}` column: {}", csv.text);
    }
    assert_eq!((rows[0]["submitted"].as_str(), rows[0]["approved"].as_str()), ("2", "1"), "{}", csv.text);
    assert_eq!(rows[0]["approval_rate"].parse::<f64>().ok(), Some(0.5), "{}", csv.text);

    let daily =
        app.poll_as(&analyst.token, &on_day(REVIEWS_DAILY, &today), |r| rows_of_day(r, &today).len() == 1).await;
    daily.assert_status(200);
    assert_eq!(items(&daily).len(), 1, "{}", daily.text);
    let row = the_row_of_day(&daily, &today);
    assert_eq!(
        (int(&row, "submitted"), int(&row, "approved"), int(&row, "rejected"), int(&row, "pending")),
        (2, 1, 1, 0),
        "{}",
        daily.text
    );

    // The overdue list (which takes no range) is checked in
    // `lists_without_a_date_range_cover_every_day_and_nothing_from_today_is_overdue`.

    // In all: four resident ID cards and one permit.
    let expected = counts(&[("other", 1), ("resident_id_card", 4)]);
    let registrations = app.poll_as(&analyst.token, &on_day(REGISTRATIONS, &today), |r| by_type(r) == expected).await;
    assert_eq!(by_type(&registrations), expected, "{}", registrations.text);
}
both_stores!(analysts_see_the_days_registrations_attempts_quota_exhaustion_and_manual_reviews, analytics_identities());

async fn a_third_application_in_a_period_counts_as_exhausting_the_period_quota(app: &mut TestApp) {
    let analyst = app.staff_member("analyst").await;
    let reviewer = app.staff_member("reviewer").await;
    let today = today();
    let permit = Registration::other();
    let (_, token) = app.ready_applicant(permit.clone()).await;
    let application = ReviewApplication::for_registration(&permit, &permit.name);

    for _ in 0..2 {
        let review_id = submit(app, &token, &application).await;
        claim_and_decide(app, &reviewer.token, &review_id, "reject", Some("证件信息与照片不符")).await;
    }
    // Once the projection shows both decisions it has seen both submissions.
    let summary = app.poll_as(&analyst.token, &on_day(REVIEWS, &today), |r| int(&r.body, "decided") == 2).await;
    assert_eq!(int(&summary.body, "decided"), 2, "{}", summary.text);
    let by_quota = |r: &ApiResponse| counts_by(r, &today, "quota", "accounts");
    let exhausted = app.get_as(&analyst.token, &on_day(QUOTA_EXHAUSTION, &today)).await;
    exhausted.assert_status(200);
    assert!(by_quota(&exhausted).is_empty(), "two applications do not use up the period: {}", exhausted.text);

    submit(app, &token, &application).await;

    let expected = counts(&[("period_applications", 1)]);
    let exhausted = app.poll_as(&analyst.token, &on_day(QUOTA_EXHAUSTION, &today), |r| by_quota(r) == expected).await;
    exhausted.assert_status(200);
    assert_eq!(by_quota(&exhausted), expected, "{}", exhausted.text);

    let summary = app.poll_as(&analyst.token, &on_day(REVIEWS, &today), |r| int(&r.body, "submitted") == 3).await;
    let s = &summary.body;
    assert_eq!(
        (int(s, "submitted"), int(s, "decided"), int(s, "approved"), int(s, "rejected"), int(s, "overdue_now")),
        (3, 2, 0, 2, 0),
        "{}",
        summary.text
    );
    assert_number(s, "approval_rate", 0.0, &summary.text);
    assert_number(s, "within_promise_rate", 1.0, &summary.text);

    let daily = app.get_as(&analyst.token, &on_day(REVIEWS_DAILY, &today)).await;
    let row = the_row_of_day(&daily, &today);
    assert_eq!(
        (int(&row, "submitted"), int(&row, "approved"), int(&row, "rejected"), int(&row, "pending")),
        (3, 0, 2, 1),
        "{}",
        daily.text
    );
}
both_stores!(a_third_application_in_a_period_counts_as_exhausting_the_period_quota);

async fn dates_no_database_stores_are_read_as_the_widest_range_not_a_server_error(app: &mut TestApp) {
    let analyst = app.staff_member("analyst").await;
    // PostgreSQL stores no date before 4713 BC; chrono reads years far beyond either end.
    for range in ["from=0001-01-01&to=9999-12-31", "from=-5000-01-01", "to=%2B20000-01-01"] {
        app.get_as(&analyst.token, &format!("{REGISTRATIONS}?{range}")).await.assert_status(200);
    }
}
both_stores!(dates_no_database_stores_are_read_as_the_widest_range_not_a_server_error);

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

async fn auditors_read_an_accounts_history_in_order_with_actors_and_request_ids_but_no_secrets(app: &mut TestApp) {
    let auditor = app.staff_member("auditor").await;
    let registration = Registration::resident();
    let ids: Vec<String> = (0..5).map(|_| request_id()).collect();
    let [register_id, login_id, failed_login_id, profile_id, password_id] =
        [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]];

    let account = register_with_request_id(app, &registration, register_id).await;
    let login = json!({
        "document_number": account.document_number,
        "password": account.password,
        "document_type": account.document_type,
    });
    let session = app.send_with_request_id(Method::POST, "/v1/sessions", None, Some(&login), login_id).await;
    session.assert_status(201);
    let token = session.str("token");
    let wrong = json!({"document_number": account.document_number, "password": "Wrong#pass123"});
    app.send_with_request_id(Method::POST, "/v1/sessions", None, Some(&wrong), failed_login_id)
        .await
        .assert_problem(401, "login_failed");
    let profile = json!({"ethnicity": "01"});
    app.send_with_request_id(Method::PUT, "/v1/me/profile", Some(&token), Some(&profile), profile_id)
        .await
        .assert_status(200);
    let new_password = shenfen_tests::password();
    let change = json!({
        "old_password": account.password,
        "new_password": new_password,
        "new_password_confirmation": new_password,
    });
    app.send_with_request_id(Method::POST, "/v1/me/password", Some(&token), Some(&change), password_id)
        .await
        .assert_status(204);

    let history = app.audit_events(&auditor.token, "account", &account.account_id).await;
    history.assert_status(200);
    let events = items(&history);
    let types: Vec<&str> = events.iter().map(|e| e["event_type"].as_str().unwrap_or("")).collect();
    assert!(
        types.starts_with(&["Registered", "SessionStarted", "LoginFailed", "ProfileCompleted", "PasswordChanged"]),
        "events out of order or missing: {types:?}"
    );
    let expected = [
        ("anonymous", None, register_id),
        ("anonymous", None, login_id),
        ("anonymous", None, failed_login_id),
        ("account", Some(account.account_id.as_str()), profile_id),
        ("account", Some(account.account_id.as_str()), password_id),
    ];
    for (event, (kind, actor_id, request_id)) in events.iter().zip(expected) {
        let context = format!("{event:#}");
        assert_eq!(event["actor"]["kind"], json!(kind), "actor kind\n{context}");
        if let Some(actor_id) = actor_id {
            assert_eq!(event["actor"]["id"], json!(actor_id), "actor id\n{context}");
        }
        assert_eq!(event["request_id"], json!(request_id), "the request id sent with the request\n{context}");
    }
    let mut previous_sequence = 0;
    let mut hashes = std::collections::HashSet::new();
    for event in &events {
        let context = format!("{event:#}");
        let sequence = event["sequence"].as_i64().unwrap_or_else(|| panic!("no sequence\n{context}"));
        assert!(sequence > previous_sequence, "sequences must increase\n{}", history.text);
        previous_sequence = sequence;
        let hash = event["hash"].as_str().unwrap_or("");
        assert!(
            hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "hash is not 64 hex digits\n{context}"
        );
        assert!(hashes.insert(hash.to_string()), "every event has its own hash\n{}", history.text);
        assert!(event["request_id"].as_str().is_some_and(|r| !r.is_empty()), "no request id\n{context}");
        assert!(event["event_version"].as_str().is_some_and(|v| !v.is_empty()), "no event version\n{context}");
        instant_of(event, "recorded_at");
        instant_of(event, "at");
        assert!(event["payload"].is_object(), "no payload\n{context}");
    }
    assert!(!history.text.contains("$argon2"), "a password hash is shown:\n{}", history.text);
    assert_no_secrets(&history.body, &history.text);
    let payload = |event_type: &str| event_of_type(&events, event_type)["payload"][event_type].clone();
    assert_eq!(payload("Registered")["password_hash"], json!("[redacted]"), "{}", history.text);
    assert_eq!(payload("PasswordChanged")["password_hash"], json!("[redacted]"), "{}", history.text);
    assert_eq!(payload("SessionStarted")["token_hash"], json!("[redacted]"), "{}", history.text);
    assert!(!history.text.contains(&account.password) && !history.text.contains(&new_password));

    // The state as of an instant: before registration nothing, just before the profile
    // completion no profile, at it (the bound is inclusive) and now the profile.
    let registered = event_of_type(&events, "Registered");
    let completed = event_of_type(&events, "ProfileCompleted");
    let completed_at = instant_of(&completed, "at");
    let completed_sequence = completed["sequence"].as_i64().unwrap();
    let last_sequence = events.last().unwrap()["sequence"].as_i64().unwrap();

    let state = app
        .audit_state(&auditor.token, "account", &account.account_id, Some(completed_at - Duration::microseconds(1)))
        .await;
    state.assert_status(200);
    assert_eq!(state.body["state"]["profile"], Value::Null, "no profile yet\n{}", state.text);
    assert_eq!(state.body["sequence"], json!(completed_sequence - 1), "{}", state.text);
    assert_eq!(state.body["chain_intact"], json!(true), "{}", state.text);
    assert_eq!(state.str("aggregate_type"), "account");
    assert_eq!(state.str("aggregate_id"), account.account_id);
    assert_no_secrets(&state.body, &state.text);

    let state = app.audit_state(&auditor.token, "account", &account.account_id, Some(completed_at)).await;
    assert_eq!(state.body["state"]["profile"]["ethnicity"], json!("01"), "{}", state.text);
    assert_eq!(state.body["sequence"], json!(completed_sequence), "{}", state.text);

    let state = app.audit_state(&auditor.token, "account", &account.account_id, Some(Utc::now())).await;
    state.assert_status(200);
    assert_eq!(state.body["state"]["profile"]["ethnicity"], json!("01"), "{}", state.text);
    assert_eq!(state.body["sequence"], json!(last_sequence), "{}", state.text);
    assert_eq!(state.body["chain_intact"], json!(true), "{}", state.text);
    assert!(!state.text.contains("$argon2"), "a password hash is shown:\n{}", state.text);
    assert_no_secrets(&state.body, &state.text);

    let before = instant_of(&registered, "at") - Duration::seconds(1);
    let state = app.audit_state(&auditor.token, "account", &account.account_id, Some(before)).await;
    state.assert_status(200);
    assert_eq!(state.body["sequence"], json!(0), "nothing had happened yet\n{}", state.text);

    // The account's verification stream has the same id.
    let relogin = Registered { password: new_password.clone(), ..account.clone() };
    let token = app.login_ok(&relogin).await;
    app.verify(&token).await.assert_status(200);
    let verification = app.audit_events(&auditor.token, "verification", &account.account_id).await;
    verification.assert_status(200);
    let events = items(&verification);
    let started = event_of_type(&events, "AttemptStarted");
    event_of_type(&events, "AttemptFailed");
    assert_eq!(started["actor"]["kind"], json!("account"), "{}", verification.text);
    assert_eq!(started["actor"]["id"], json!(account.account_id), "{}", verification.text);
    let state = app.audit_state(&auditor.token, "verification", &account.account_id, None).await;
    state.assert_status(200);
    assert_eq!(state.body["chain_intact"], json!(true), "{}", state.text);
    assert_eq!(state.str("aggregate_type"), "verification");

    // An id with no events.
    let nobody = format!("no-such-account-{}", request_id());
    let missing = app.audit_events(&auditor.token, "account", &nobody).await;
    missing.assert_status(404);
    assert!(missing.content_type().starts_with("application/problem+json"), "{}", missing.text);
    app.audit_state(&auditor.token, "account", &nobody, None).await.assert_status(404);
    app.audit_events(&auditor.token, "verification", &nobody).await.assert_status(404);
}
both_stores!(auditors_read_an_accounts_history_in_order_with_actors_and_request_ids_but_no_secrets);

async fn an_event_changed_behind_the_servers_back_breaks_the_hash_chain(app: &mut TestApp) {
    let auditor = app.staff_member("auditor").await;
    let (victim, _) = app.ready_applicant(Registration::resident()).await;
    let (bystander, _) = app.ready_applicant(Registration::resident()).await;
    let state = app.audit_state(&auditor.token, "account", &victim.account_id, None).await;
    state.assert_status(200);
    assert_eq!(state.body["chain_intact"], json!(true), "an untouched stream\n{}", state.text);

    let changed = match app.store {
        Store::Postgres => {
            app.execute_sql(
                "UPDATE events SET payload = jsonb_set(payload, '{ProfileCompleted,profile,ethnicity}', '\"02\"')
                  WHERE aggregate_type = 'account' AND aggregate_id = $1 AND event_type = 'ProfileCompleted'",
                &[&victim.account_id],
            )
            .await
        }
        Store::Sqlite => {
            app.execute_sql(
                "UPDATE events SET payload = json_set(payload, '$.ProfileCompleted.profile.ethnicity', '02')
                  WHERE aggregate_type = 'account' AND aggregate_id = $1 AND event_type = 'ProfileCompleted'",
                &[&victim.account_id],
            )
            .await
        }
    };
    assert_eq!(changed, 1, "one ProfileCompleted event changed");

    let history = app.audit_events(&auditor.token, "account", &victim.account_id).await;
    history.assert_status(200);
    let completed = event_of_type(&items(&history), "ProfileCompleted");
    assert_eq!(
        completed["payload"]["ProfileCompleted"]["profile"]["ethnicity"],
        json!("02"),
        "the audit endpoint reads the changed log\n{}",
        history.text
    );

    let state = app.audit_state(&auditor.token, "account", &victim.account_id, None).await;
    state.assert_status(200);
    assert_eq!(state.body["chain_intact"], json!(false), "the changed payload must break the chain\n{}", state.text);

    let other = app.audit_state(&auditor.token, "account", &bystander.account_id, None).await;
    other.assert_status(200);
    assert_eq!(other.body["chain_intact"], json!(true), "another stream is untouched\n{}", other.text);
}
both_stores!(an_event_changed_behind_the_servers_back_breaks_the_hash_chain);

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

async fn only_analysts_read_analytics_and_only_auditors_read_the_audit_trail(app: &mut TestApp) {
    let analyst = app.staff_member("analyst").await;
    let auditor = app.staff_member("auditor").await;
    let reviewer = app.staff_member("reviewer").await;
    let (applicant, applicant_token) = app.ready_applicant(Registration::resident()).await;
    let today = today();
    let audit = [
        format!("/v1/audit/aggregates/account/{}/events", applicant.account_id),
        format!("/v1/audit/aggregates/account/{}/state", applicant.account_id),
    ];

    for path in ANALYTICS {
        // The overdue list takes no range; that an analyst may read it (and the lists without a
        // range) is checked in `lists_without_a_date_range_cover_every_day_and_nothing_from_today_is_overdue`.
        if path != REVIEWS_OVERDUE {
            app.get_as(&analyst.token, &on_day(path, &today)).await.assert_status(200);
        }
        app.get_as(&auditor.token, path).await.assert_problem(403, "forbidden");
        app.get_as(&reviewer.token, path).await.assert_problem(403, "forbidden");
        app.get_as(&applicant_token, path).await.assert_problem(403, "forbidden");
        app.get(path).await.assert_problem(401, "unauthenticated");
        app.get_as("not-a-token", path).await.assert_problem(401, "unauthenticated");
    }
    for path in &audit {
        app.get_as(&auditor.token, path).await.assert_status(200);
        app.get_as(&analyst.token, path).await.assert_problem(403, "forbidden");
        app.get_as(&reviewer.token, path).await.assert_problem(403, "forbidden");
        app.get_as(&applicant_token, path).await.assert_problem(403, "forbidden");
        app.get(path).await.assert_problem(401, "unauthenticated");
        app.get_as("not-a-token", path).await.assert_problem(401, "unauthenticated");
    }

    // With no reviews at all the rates are absent, not zero or NaN.
    let summary = app.get_as(&analyst.token, &on_day(REVIEWS, &today)).await;
    summary.assert_status(200);
    let s = &summary.body;
    assert_eq!((int(s, "submitted"), int(s, "decided"), int(s, "overdue_now")), (0, 0, 0), "{}", summary.text);
    for field in ["approval_rate", "turnaround_p50_working_days", "turnaround_p90_working_days", "within_promise_rate"]
    {
        assert_eq!(s[field], Value::Null, "`{field}` with nothing decided\n{}", summary.text);
    }
    assert_number(s, "promise_working_days", 7.0, &summary.text);
    for path in [REVIEWS_DAILY, QUOTA_EXHAUSTION, ATTEMPTS, FAILURES] {
        let empty = app.get_as(&analyst.token, &on_day(path, &today)).await;
        empty.assert_status(200);
        assert!(items(&empty).is_empty(), "nothing happened yet\n{}: {}", empty.what, empty.text);
    }
}
both_stores!(only_analysts_read_analytics_and_only_auditors_read_the_audit_trail);

// ---------------------------------------------------------------------------------------------
// Date ranges
// ---------------------------------------------------------------------------------------------

async fn lists_without_a_date_range_cover_every_day_and_nothing_from_today_is_overdue(app: &mut TestApp) {
    let analyst = app.staff_member("analyst").await;
    let today = today();
    // A registration, a failed attempt (the authority knows nobody) and a pending review.
    let (_, resident_token) = app.ready_applicant(Registration::resident()).await;
    failed_attempt(app, &resident_token, "identity_not_found").await;
    let permit = Registration::other();
    let (_, permit_token) = app.ready_applicant(permit.clone()).await;
    submit(app, &permit_token, &ReviewApplication::for_registration(&permit, &permit.name)).await;

    // Analyst tables are read eventually: wait until every row these writes make is there (two
    // registrations, of two document types; one of everything else).
    for (path, rows) in [(REGISTRATIONS, 2), (ATTEMPTS, 1), (FAILURES, 1), (REVIEWS_DAILY, 1)] {
        let ranged = app.poll_as(&analyst.token, &on_day(path, &today), |r| rows_of_day(r, &today).len() >= rows).await;
        ranged.assert_status(200);
        assert!(!items(&ranged).is_empty(), "{}: {}", ranged.what, ranged.text);
        for unbounded in [path.to_string(), format!("{path}?from={today}"), format!("{path}?to={today}")] {
            let answer = app.get_as(&analyst.token, &unbounded).await;
            answer.assert_status(200);
            assert_eq!(answer.body, ranged.body, "a missing bound means no bound\n{}: {}", answer.what, answer.text);
        }
    }
    let ranged = app.poll_as(&analyst.token, &on_day(REVIEWS, &today), |r| int(&r.body, "submitted") == 1).await;
    assert_eq!(int(&ranged.body, "submitted"), 1, "{}", ranged.text);
    let unbounded = app.get_as(&analyst.token, REVIEWS).await;
    unbounded.assert_status(200);
    assert_eq!(unbounded.body, ranged.body, "{}", unbounded.text);

    let exhausted = app.get_as(&analyst.token, QUOTA_EXHAUSTION).await;
    exhausted.assert_status(200);
    assert!(items(&exhausted).is_empty(), "{}", exhausted.text);
    let overdue = app.get_as(&analyst.token, REVIEWS_OVERDUE).await;
    overdue.assert_status(200);
    assert!(items(&overdue).is_empty(), "nothing submitted today can be overdue: {}", overdue.text);
}
both_stores!(lists_without_a_date_range_cover_every_day_and_nothing_from_today_is_overdue);

async fn a_pending_application_past_its_due_date_is_listed_as_overdue(app: &mut TestApp) {
    let analyst = app.staff_member("analyst").await;
    let permit = Registration::other();
    let (_, token) = app.ready_applicant(permit.clone()).await;
    let review_id = submit(app, &token, &ReviewApplication::for_registration(&permit, &permit.name)).await;
    let today = china_today();
    let summary =
        app.poll_as(&analyst.token, &on_day(REVIEWS, &today.to_string()), |r| int(&r.body, "submitted") == 1).await;
    assert_eq!(int(&summary.body, "submitted"), 1, "{}", summary.text);

    // The server's clock cannot be moved, so the read model is moved instead: the application
    // now looks as if it was submitted 60 days ago and due 45 days ago (`analytics_reviews` is
    // the documented analyst table).
    let submitted_day = today - Duration::days(60);
    let due_by = today - Duration::days(45);
    let sql = match app.store {
        Store::Postgres => {
            "UPDATE analytics_reviews SET submitted_day = $1::date, due_by = $2::date WHERE review_id = $3"
        }
        Store::Sqlite => "UPDATE analytics_reviews SET submitted_day = $1, due_by = $2 WHERE review_id = $3",
    };
    let changed = app.execute_sql(sql, &[&submitted_day.to_string(), &due_by.to_string(), &review_id]).await;
    assert_eq!(changed, 1, "the review's analytics row");

    let overdue = app.get_as(&analyst.token, REVIEWS_OVERDUE).await;
    overdue.assert_status(200);
    let expected = json!([{
        "review_id": review_id,
        "submitted_day": submitted_day.to_string(),
        "due_by": due_by.to_string(),
        "working_days_overdue": working_days_between(due_by, today),
    }]);
    assert_eq!(overdue.body, expected, "{}", overdue.text);

    let range = format!("{REVIEWS}?from={submitted_day}&to={today}");
    let summary = app.get_as(&analyst.token, &range).await;
    summary.assert_status(200);
    assert_eq!((int(&summary.body, "submitted"), int(&summary.body, "overdue_now")), (1, 1), "{}", summary.text);
}
both_stores!(a_pending_application_past_its_due_date_is_listed_as_overdue);
