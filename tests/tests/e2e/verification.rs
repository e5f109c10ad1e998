//! End-to-end scenarios of real-name verification, manual review, business eligibility and the
//! staff endpoints (reviewers, support, staff accounts), each run against the real server binary
//! on SQLite and on PostgreSQL (see `both_stores!`).
//!
//! The identity authority is the reference registry, written by the harness from
//! `Settings::identities` before the server starts, or (one scenario) a fake HTTP authority.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::join_all;
use serde_json::{json, Value};
use shenfen_tests::{
    both_stores, china_today, is_working_day, jpeg_of_size, masked, mobile_number, next_china_midnight, password,
    review_period, working_days_between, ApiResponse, Identity, Registered, Registration, ReviewApplication, Settings,
    TestApp, PNG_HEADER,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn instant(response: &ApiResponse, field: &str) -> DateTime<Utc> {
    let text = response.str(field);
    DateTime::parse_from_rfc3339(&text)
        .unwrap_or_else(|e| panic!("`{field}` = {text:?} is not RFC 3339: {e}\n{}", response.text))
        .with_timezone(&Utc)
}

fn date(response: &ApiResponse, field: &str) -> NaiveDate {
    let text = response.str(field);
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .unwrap_or_else(|e| panic!("`{field}` = {text:?} is not YYYY-MM-DD: {e}\n{}", response.text))
}

/// The items of a JSON array answer.
fn items(response: &ApiResponse) -> Vec<Value> {
    response.body.as_array().unwrap_or_else(|| panic!("not a JSON array\n{}: {}", response.what, response.text)).clone()
}

/// The review-queue item of `review_id`, if the queue lists it.
fn queue_item(queue: &ApiResponse, review_id: &str) -> Option<Value> {
    items(queue).into_iter().find(|item| item["review_id"] == json!(review_id))
}

/// One real-name attempt that the authority refuses: 200 `failed` with `reason`.
async fn failed_attempt(app: &TestApp, token: &str, reason: &str) -> ApiResponse {
    let attempt = app.verify(token).await;
    attempt.assert_status(200);
    assert_eq!(attempt.str("result"), "failed", "{}", attempt.text);
    assert_eq!(attempt.str("reason"), reason, "{}", attempt.text);
    attempt
}

/// Submits `application` (201) and returns the review id.
async fn submit(app: &TestApp, token: &str, application: &ReviewApplication) -> String {
    let submitted = app.apply_for_review(token, application).await;
    submitted.assert_status(201);
    assert_eq!(submitted.str("status"), "pending");
    submitted.str("review_id")
}

/// Claims `review_id` as `reviewer` and decides it; asserts 200 both times.
async fn claim_and_decide(app: &TestApp, reviewer: &str, review_id: &str, decision: &str, reason: Option<&str>) {
    app.claim_review(reviewer, review_id).await.assert_status(200);
    let decided = app.decide_review(reviewer, review_id, decision, reason).await;
    decided.assert_status(200);
    let status = if decision == "approve" { "approved" } else { "rejected" };
    assert_eq!(decided.str("status"), status, "{}", decided.text);
}

/// Asserts what `GET /v1/me` shows of the verification.
#[track_caller]
fn assert_status_and_name(me: &ApiResponse, real_name_status: &str, name: &str) {
    me.assert_status(200);
    assert_eq!(me.str("real_name_status"), real_name_status, "{}", me.text);
    assert_eq!(me.str("name"), name, "{}", me.text);
}

/// The holder of an `other` document (who may apply for manual review at once) with an
/// application pending; returns the registration, the account, its token and the review id.
async fn other_holder_with_a_pending_review(app: &TestApp) -> (Registration, Registered, String, String) {
    let registration = Registration::other();
    let (account, token) = app.ready_applicant(registration.clone()).await;
    let application = ReviewApplication::for_registration(&registration, &registration.name);
    let review_id = submit(app, &token, &application).await;
    (registration, account, token, review_id)
}

// ---------------------------------------------------------------------------------------------
// The whole journey
// ---------------------------------------------------------------------------------------------

async fn a_holder_who_fails_three_times_is_approved_on_a_manual_review_resubmitted_after_a_rejection(
    app: &mut TestApp,
) {
    // On record as 王晓明, registered as 王小明: every attempt with the registered name fails.
    let identity = app.identities()[0].clone();
    let registration = identity.registration("王小明");
    let (account, token) = app.ready_applicant(registration.clone()).await;
    app.eligibility(&token).await.assert_problem(403, "real_name_verification_required");

    for left in [2, 1, 0] {
        let attempt = failed_attempt(app, &token, "name_mismatch").await;
        assert_eq!(attempt.body["attempts_left_today"], json!(left), "{}", attempt.text);
        assert!(
            attempt.body["guidance"].as_array().is_some_and(|g| !g.is_empty()),
            "a failure answers with guidance: {}",
            attempt.text
        );
    }
    let fourth = app.verify(&token).await;
    fourth.assert_problem(429, "daily_attempts_exhausted");
    let next_attempt_at = instant(&fourth, "next_attempt_at");
    assert_eq!(next_attempt_at, next_china_midnight(), "the next attempt is possible at midnight, China time");

    let me = app.me(&token).await;
    assert_status_and_name(&me, "failed", "王小明");
    let quotas = &me.body["quotas"];
    assert_eq!(quotas["real_name_attempts_left_today"], json!(0), "{}", me.text);
    assert_eq!(instant(&me, "quotas.attempts_reset_at"), next_attempt_at);
    assert_eq!(quotas["manual_review_applications_left_in_period"], json!(3), "{}", me.text);
    let (period_start, period_end) = review_period(china_today());
    assert_eq!(date(&me, "quotas.period.start"), period_start);
    assert_eq!(date(&me, "quotas.period.end"), period_end);
    assert_eq!(date(&me, "quotas.next_period_start"), period_end.succ_opt().unwrap());

    // Manual review, with the name on the document.
    let application = ReviewApplication::for_registration(&registration, "王晓明");
    let submitted = app.apply_for_review(&token, &application).await;
    submitted.assert_status(201);
    assert_eq!(submitted.str("status"), "pending");
    assert_eq!(submitted.body["applications_left_in_period"], json!(2), "{}", submitted.text);
    let first_review = submitted.str("review_id");
    let due_by = date(&submitted, "due_by");
    let today = china_today();
    assert_eq!(
        working_days_between(today, due_by),
        7,
        "due by {due_by}: the 7th working day after {today} (holidays and adjusted weekends counted)"
    );
    assert!(is_working_day(due_by), "due by {due_by}: not a working day");

    let me = app.me(&token).await;
    assert_status_and_name(&me, "manual_review_pending", "王小明");
    assert_eq!(me.body["quotas"]["manual_review_applications_left_in_period"], json!(2), "{}", me.text);

    // While it is pending: no verification, no second application.
    app.verify(&token).await.assert_problem(409, "manual_review_pending");
    app.apply_for_review(&token, &application).await.assert_problem(409, "manual_review_pending");
    let mine = app.my_reviews(&token).await;
    mine.assert_status(200);
    let list = items(&mine);
    assert_eq!(list.len(), 1, "{}", mine.text);
    assert_eq!(list[0]["review_id"], json!(first_review));
    assert_eq!(list[0]["status"], json!("pending"));
    assert_eq!(list[0]["due_by"], json!(due_by.to_string()));
    assert!(list[0]["submitted_at"].is_string(), "{}", mine.text);
    assert!(list[0].get("decision_reason").is_none_or(Value::is_null), "{}", mine.text);
    app.eligibility(&token).await.assert_problem(403, "real_name_verification_required");

    // A reviewer (made on the command line) finds it in the queue, claims it and sees the photos.
    let reviewer = app.staff_member("reviewer").await;
    let queue = app.review_queue(&reviewer.token).await;
    queue.assert_status(200);
    let item = queue_item(&queue, &first_review).unwrap_or_else(|| panic!("{first_review} not queued: {}", queue.text));
    assert_eq!(item["account_id"], json!(account.account_id));
    assert_eq!(item["document_type"], json!("resident_id_card"));
    assert_eq!(item["due_by"], json!(due_by.to_string()));
    assert_eq!(item["overdue"], json!(false));
    assert!(item.get("claimed_by").is_none_or(Value::is_null), "not claimed yet: {item}");

    let claimed = app.claim_review(&reviewer.token, &first_review).await;
    claimed.assert_status(200);
    assert_eq!(claimed.str("review_id"), first_review);
    assert_eq!(claimed.str("status"), "pending");
    assert!(!claimed.str("claimed_by").is_empty());
    let queue = app.review_queue(&reviewer.token).await;
    let item = queue_item(&queue, &first_review).unwrap_or_else(|| panic!("{first_review} not queued: {}", queue.text));
    assert_eq!(item["claimed_by"], claimed.body["claimed_by"], "the queue shows who claimed it");
    for (which, part) in [("front", "photo_front"), ("back", "photo_back"), ("handheld", "photo_handheld")] {
        let photo = app.review_photo(&reviewer.token, &first_review, which).await;
        photo.assert_status(200);
        assert!(photo.content_type().starts_with("image/jpeg"), "{which}: content-type {}", photo.content_type());
        assert!(photo.bytes == application.photo(part), "the {which} photo comes back byte for byte");
    }

    // Rejected, with a reason the applicant sees.
    app.decide_review(&reviewer.token, &first_review, "reject", None).await.assert_problem(422, "reason_required");
    let reason = "证件照片模糊，请重新拍摄";
    let rejected = app.decide_review(&reviewer.token, &first_review, "reject", Some(reason)).await;
    rejected.assert_status(200);
    assert_eq!(rejected.str("status"), "rejected");
    let mine = app.my_reviews(&token).await;
    let list = items(&mine);
    assert_eq!(list[0]["status"], json!("rejected"), "{}", mine.text);
    assert_eq!(list[0]["decision_reason"], json!(reason), "{}", mine.text);
    assert_status_and_name(&app.me(&token).await, "manual_review_rejected", "王小明");
    app.eligibility(&token).await.assert_problem(403, "real_name_verification_required");
    assert!(
        queue_item(&app.review_queue(&reviewer.token).await, &first_review).is_none(),
        "a decided review leaves the queue"
    );

    // Resubmitted: a new application of the period.
    let resubmitted = app.apply_for_review(&token, &application).await;
    resubmitted.assert_status(201);
    assert_eq!(resubmitted.body["applications_left_in_period"], json!(1), "{}", resubmitted.text);
    let second_review = resubmitted.str("review_id");
    assert_ne!(second_review, first_review);
    let me = app.me(&token).await;
    assert_status_and_name(&me, "manual_review_pending", "王小明");
    assert_eq!(me.body["quotas"]["manual_review_applications_left_in_period"], json!(1), "{}", me.text);

    claim_and_decide(app, &reviewer.token, &second_review, "approve", None).await;

    assert_status_and_name(&app.me(&token).await, "manual_review_approved", "王晓明");
    let eligible = app.eligibility(&token).await;
    eligible.assert_status(200);
    assert_eq!(eligible.body["eligible"], json!(true));
    let list = items(&app.my_reviews(&token).await);
    let statuses: Vec<(&Value, &Value)> = list.iter().map(|r| (&r["review_id"], &r["status"])).collect();
    assert_eq!(
        statuses,
        vec![(&json!(second_review), &json!("approved")), (&json!(first_review), &json!("rejected"))],
        "newest first"
    );
    let login = app.login(&account.document_number, &account.password).await;
    login.assert_status(201);
    assert_eq!(login.str("real_name_status"), "manual_review_approved");
}
both_stores!(
    a_holder_who_fails_three_times_is_approved_on_a_manual_review_resubmitted_after_a_rejection,
    Settings::with_identities(vec![Identity::resident("王晓明")])
);

// ---------------------------------------------------------------------------------------------
// Quotas under concurrency
// ---------------------------------------------------------------------------------------------

async fn thirty_concurrent_attempts_count_at_most_three(app: &mut TestApp) {
    let identity = app.identities()[0].clone();
    let (_, token) = app.ready_applicant(identity.registration("王小明")).await;

    let answers = join_all((0..30).map(|_| app.verify(&token))).await;

    let mut counted = 0;
    for answer in &answers {
        match answer.status.as_u16() {
            200 => {
                assert_eq!(answer.str("result"), "failed", "{}", answer.text);
                counted += 1;
            }
            429 => {
                answer.assert_problem(429, "daily_attempts_exhausted");
            }
            409 => {
                let code = answer.body["code"].as_str().unwrap_or_default();
                assert!(
                    ["attempt_in_progress", "conflict_retry"].contains(&code),
                    "409 with code {code:?}: {}",
                    answer.text
                );
            }
            _ => {
                panic!("unexpected answer to a concurrent attempt\n{}: {} {}", answer.what, answer.status, answer.text)
            }
        }
    }
    assert!((1..=3).contains(&counted), "{counted} attempts answered 200");
    let me = app.me(&token).await;
    me.assert_status(200);
    assert_eq!(me.body["quotas"]["real_name_attempts_left_today"], json!(3 - counted), "{}", me.text);

    // The rest of today's attempts, one after the other, and not one more.
    for _ in counted..3 {
        failed_attempt(app, &token, "name_mismatch").await;
    }
    app.verify(&token).await.assert_problem(429, "daily_attempts_exhausted");
    assert_eq!(app.me(&token).await.body["quotas"]["real_name_attempts_left_today"], json!(0));
}
both_stores!(
    thirty_concurrent_attempts_count_at_most_three,
    Settings::with_identities(vec![Identity::resident("王晓明")])
);

async fn of_ten_reviewers_claiming_one_application_at_once_exactly_one_wins(app: &mut TestApp) {
    let (_, _, _, review_id) = other_holder_with_a_pending_review(app).await;
    let admin = app.staff_member("admin").await;
    let created = join_all((0..10).map(|_| app.create_staff(&admin.token, "reviewer", None))).await;
    for staff in &created {
        staff.response.assert_status(201);
    }
    let tokens = join_all(created.iter().map(|s| app.staff_token(&s.username, &s.password))).await;

    let claims = join_all(tokens.iter().map(|token| app.claim_review(token, &review_id))).await;

    let winners: Vec<usize> = (0..claims.len()).filter(|i| claims[*i].status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins: {:?}", claims.iter().map(|c| &c.text).collect::<Vec<_>>());
    let winner = winners[0];
    for (i, claim) in claims.iter().enumerate() {
        if i != winner {
            claim.assert_problem(409, "already_claimed");
        }
    }
    let claimed_by = claims[winner].str("claimed_by");
    let queue = app.review_queue(&tokens[0]).await;
    let item = queue_item(&queue, &review_id).unwrap_or_else(|| panic!("{review_id} not queued: {}", queue.text));
    assert_eq!(item["claimed_by"], json!(claimed_by));

    // Only the winner decides.
    let loser = (winner + 1) % tokens.len();
    app.decide_review(&tokens[loser], &review_id, "approve", None).await.assert_problem(409, "not_claimed_by_you");
    app.claim_review(&tokens[winner], &review_id).await.assert_status(200);
    app.decide_review(&tokens[winner], &review_id, "approve", None).await.assert_status(200);
}
both_stores!(of_ten_reviewers_claiming_one_application_at_once_exactly_one_wins);

// ---------------------------------------------------------------------------------------------
// The authority's answers
// ---------------------------------------------------------------------------------------------

async fn an_unavailable_authority_costs_no_attempt_and_a_pass_verifies_the_corrected_name(app: &mut TestApp) {
    let unavailable = app.identities()[0].clone();
    let (_, token) = app.ready_applicant(unavailable.registration("王小明")).await;
    for _ in 0..2 {
        let answer = app.verify(&token).await;
        answer.assert_problem(503, "identity_authority_unavailable");
        assert_eq!(answer.body["attempts_left_today"], json!(3), "{}", answer.text);
    }
    let me = app.me(&token).await;
    assert_status_and_name(&me, "unverified", "王小明");
    assert_eq!(me.body["quotas"]["real_name_attempts_left_today"], json!(3), "{}", me.text);
    // Not a failed attempt either: manual review still needs one.
    let application = ReviewApplication::for_registration(&unavailable.registration("王小明"), "王小明");
    app.apply_for_review(&token, &application).await.assert_problem(409, "real_name_verification_required_first");

    // On record as 张伟, registered as 王小明, verified with the name corrected.
    let on_record = app.identities()[1].clone();
    let (account, token) = app.ready_applicant(on_record.registration("王小明")).await;
    let passed = app.verify_with(&token, &json!({"name": "张伟"})).await;
    passed.assert_status(200);
    assert_eq!(passed.str("result"), "passed", "{}", passed.text);
    assert_eq!(passed.body["attempts_left_today"], json!(2), "{}", passed.text);
    assert!(passed.body.get("reason").is_none_or(Value::is_null), "{}", passed.text);

    assert_status_and_name(&app.me(&token).await, "verified", "张伟");
    let eligible = app.eligibility(&token).await;
    eligible.assert_status(200);
    assert_eq!(eligible.body["eligible"], json!(true));
    let login = app.login(&account.document_number, &account.password).await;
    login.assert_status(201);
    assert_eq!(login.str("real_name_status"), "verified");
}
both_stores!(
    an_unavailable_authority_costs_no_attempt_and_a_pass_verifies_the_corrected_name,
    Settings::with_identities(vec![Identity::unavailable(), Identity::resident("张伟")])
);

async fn a_verification_with_a_corrected_validity_passes_when_the_authority_checks_the_dates(app: &mut TestApp) {
    // On record with a validity of 2016-05-01 to 2036-05-01; registered from 2021-03-15.
    let identity = app.identities()[0].clone();
    let (_, token) = app.ready_applicant(identity.registration(&identity.name)).await;
    failed_attempt(app, &token, "validity_mismatch").await;

    let corrected = json!({"validity": {"period": "20y", "start": "2016-05-01"}});
    let passed = app.verify_with(&token, &corrected).await;

    passed.assert_status(200);
    assert_eq!(passed.str("result"), "passed", "{}", passed.text);
    assert_eq!(passed.body["attempts_left_today"], json!(1), "{}", passed.text);
    assert_status_and_name(&app.me(&token).await, "verified", &identity.name);
    app.eligibility(&token).await.assert_status(200);
}
both_stores!(
    a_verification_with_a_corrected_validity_passes_when_the_authority_checks_the_dates,
    Settings::with_identities(vec![Identity {
        validity_start: "2016-05-01".into(),
        validity_end: "2036-05-01".into(),
        ..Identity::resident("周杰")
    }])
);

async fn the_http_identity_authority_passes_and_fails_verifications(app: &mut TestApp) {
    let authority = app.authority.clone().expect("a fake HTTP authority");
    let known = Identity::resident("赵敏");
    let misspelt = Identity::resident("钱多多");
    let unavailable = Identity::unavailable();
    for identity in [&known, &misspelt, &unavailable] {
        authority.add(identity.clone());
    }

    let (_, token) = app.ready_applicant(known.registration("赵敏")).await;
    let passed = app.verify(&token).await;
    passed.assert_status(200);
    assert_eq!(passed.str("result"), "passed", "{}", passed.text);
    assert_status_and_name(&app.me(&token).await, "verified", "赵敏");
    app.eligibility(&token).await.assert_status(200);

    let (_, token) = app.ready_applicant(misspelt.registration("钱朵朵")).await;
    let failed = failed_attempt(app, &token, "name_mismatch").await;
    assert_eq!(failed.body["attempts_left_today"], json!(2), "{}", failed.text);
    assert_status_and_name(&app.me(&token).await, "failed", "钱朵朵");

    let (_, token) = app.ready_applicant(unavailable.registration("孙丽")).await;
    let refused = app.verify(&token).await;
    refused.assert_problem(503, "identity_authority_unavailable");
    // The failed request is logged once, at ERROR, in a span that names its route.
    let request_id = refused.header("x-request-id").expect("a request id").to_string();
    let error_lines = || async {
        let log = app.server_log();
        log.lines().filter(|l| l.contains(&request_id) && l.contains("ERROR")).map(str::to_string).collect::<Vec<_>>()
    };
    let errors =
        shenfen_tests::eventually(std::time::Duration::from_secs(5), error_lines, |e: &Vec<String>| !e.is_empty())
            .await;
    assert_eq!(errors.len(), 1, "one ERROR line for the request: {errors:#?}");
    assert!(errors[0].contains("route=/v1/me/real-name-verifications"), "{}", errors[0]);
    assert!(errors[0].contains("identity_authority_unavailable"), "{}", errors[0]);

    // The authority was asked with the documented JSON, the registered validity included.
    let queries = authority.queries();
    let asked = queries
        .iter()
        .find(|q| q["document_number"] == json!(known.document_number))
        .unwrap_or_else(|| panic!("the authority was never asked about the known person: {queries:#?}"));
    assert_eq!(asked["document_type"], json!("resident_id_card"));
    assert_eq!(asked["name"], json!("赵敏"));
    assert_eq!(asked["validity_start"], json!("2021-03-15"));
    assert_eq!(asked["validity_end"], json!("2041-03-15"));
    assert_eq!(queries.len(), 3, "one query per attempt: {queries:#?}");
}
both_stores!(the_http_identity_authority_passes_and_fails_verifications, Settings::with_http_authority(vec![]));

// ---------------------------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------------------------

async fn photos_must_be_small_real_jpegs_and_only_an_other_document_may_apply_without_an_attempt(app: &mut TestApp) {
    let registration = Registration::other();
    let (_, token) = app.ready_applicant(registration.clone()).await;
    // The authority cannot check an `other` document.
    app.verify(&token).await.assert_problem(409, "manual_review_required");
    let good = ReviewApplication::for_registration(&registration, &registration.name)
        .with_photo("photo_back", jpeg_of_size(190 * 1024 - 1));

    // A PNG sent as front.jpg, a JPEG of 190 KiB, no handheld photo: one 422 naming all three.
    let bad = good
        .clone()
        .with_photo("photo_front", PNG_HEADER.to_vec())
        .with_photo("photo_back", jpeg_of_size(190 * 1024))
        .without_photo("photo_handheld");
    let refused = app.apply_for_review(&token, &bad).await;
    refused.assert_status(422);
    assert!(refused.content_type().starts_with("application/problem+json"), "{}", refused.content_type());
    let mut errors = refused.field_errors();
    errors.sort();
    let expected: Vec<(String, String)> =
        [("photo_back", "photo_too_large"), ("photo_front", "photo_not_jpeg"), ("photo_handheld", "photo_missing")]
            .iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect();
    assert_eq!(errors, expected, "{}", refused.text);

    // Not a form, or a part over 1 MiB.
    let as_json = json!({"document_type": registration.document_type, "name": registration.name});
    let not_multipart = app.post_json_as(&token, "/v1/me/manual-reviews", &as_json).await;
    not_multipart.assert_status(415);
    assert!(not_multipart.content_type().starts_with("application/problem+json"), "{}", not_multipart.text);
    let huge = good.clone().with_photo("photo_front", jpeg_of_size(1024 * 1024 + 1));
    let too_large = app.apply_for_review(&token, &huge).await;
    too_large.assert_status(413);
    assert!(too_large.content_type().starts_with("application/problem+json"), "{}", too_large.text);

    // Nothing of that was recorded; a good application (photos just under the limit) is.
    assert_eq!(items(&app.my_reviews(&token).await).len(), 0);
    assert_eq!(app.me(&token).await.body["quotas"]["manual_review_applications_left_in_period"], json!(3));
    let submitted = app.apply_for_review(&token, &good).await;
    submitted.assert_status(201);
    assert_eq!(submitted.body["applications_left_in_period"], json!(2), "{}", submitted.text);
    assert_eq!(app.me(&token).await.str("real_name_status"), "manual_review_pending");

    // A resident ID card holder must try real-name verification first.
    let resident = Registration::resident();
    let (_, token) = app.ready_applicant(resident.clone()).await;
    let application = ReviewApplication::for_registration(&resident, &resident.name);
    app.apply_for_review(&token, &application).await.assert_problem(409, "real_name_verification_required_first");
    let mut other_type = application.clone();
    other_type.document_type = "other".into();
    let mismatch = app.apply_for_review(&token, &other_type).await;
    mismatch.assert_status(422);
    assert!(mismatch.field_errors().iter().any(|(f, _)| f == "document_type"), "{}", mismatch.text);
    // Unknown to the authority: a failed attempt, after which the application is accepted.
    failed_attempt(app, &token, "identity_not_found").await;
    submit(app, &token, &application).await;
}
both_stores!(photos_must_be_small_real_jpegs_and_only_an_other_document_may_apply_without_an_attempt);

/// Source document 001 (港澳台申请人实名核验问题): travel-permit holders verify against the
/// identity authority first, like ID cards; manual review follows a failure.
async fn travel_permit_holders_verify_against_the_authority_first(app: &mut TestApp) {
    let on_record = app.identities()[0].clone();
    let hk = Registration { document_number: on_record.document_number.clone(), ..Registration::hk_macau_permit() };
    let (_, token) = app.ready_applicant(hk).await;
    let passed = app.verify(&token).await;
    passed.assert_status(200);
    assert_eq!(passed.str("result"), "passed", "{}", passed.text);
    assert_eq!(app.me(&token).await.str("real_name_status"), "verified");

    let taiwan = Registration {
        document_type: "taiwan_permit".into(),
        document_number: shenfen_tests::hk_macau_permit_number()[1..].to_string(),
        period: "5y".into(),
        ..Registration::hk_macau_permit()
    };
    let (_, token) = app.ready_applicant(taiwan.clone()).await;
    let application = ReviewApplication::for_registration(&taiwan, &taiwan.name);
    app.apply_for_review(&token, &application).await.assert_problem(409, "real_name_verification_required_first");
    failed_attempt(app, &token, "identity_not_found").await;
    submit(app, &token, &application).await;
}
both_stores!(
    travel_permit_holders_verify_against_the_authority_first,
    Settings::with_identities(vec![Identity {
        document_type: "hk_macau_permit".into(),
        document_number: shenfen_tests::hk_macau_permit_number(),
        name: "陈大文".into(),
        validity_start: String::new(),
        validity_end: String::new(),
    }])
);

/// After a passed verification (or an approved review) the name changes only through support.
async fn a_verified_name_is_not_changed_by_verifying_again(app: &mut TestApp) {
    let on_record = app.identities()[0].clone();
    let (_, token) = app.ready_applicant(on_record.registration(&on_record.name)).await;
    app.verify(&token).await.assert_status(200);
    assert_eq!(app.me(&token).await.str("real_name_status"), "verified");
    // The authority knows the other name too: still refused, and nothing was counted.
    let other_name = app.identities()[1].name.clone();
    let again = app.verify_with(&token, &json!({"name": other_name})).await;
    again.assert_problem(409, "name_change_needs_support");
    let me = app.me(&token).await;
    assert_eq!(me.str("name"), on_record.name, "{}", me.text);
    assert_eq!(me.body["quotas"]["real_name_attempts_left_today"], json!(2), "{}", me.text);
}
both_stores!(
    a_verified_name_is_not_changed_by_verifying_again,
    Settings::with_identities(vec![Identity::resident("周杰"), Identity::resident("周杰伦")])
);

/// Source document 004: an `other` document serves record queries only, even approved.
async fn an_approved_other_document_is_never_eligible_for_business(app: &mut TestApp) {
    let reviewer = app.staff_member("reviewer").await;
    let (_, _, token, review_id) = other_holder_with_a_pending_review(app).await;
    claim_and_decide(app, &reviewer.token, &review_id, "approve", None).await;
    assert_eq!(app.me(&token).await.str("real_name_status"), "manual_review_approved");
    app.eligibility(&token).await.assert_problem(403, "document_type_not_eligible");
}
both_stores!(an_approved_other_document_is_never_eligible_for_business);

async fn a_fourth_application_in_a_period_waits_for_the_next_period(app: &mut TestApp) {
    let registration = Registration::other();
    let (_, token) = app.ready_applicant(registration.clone()).await;
    let application = ReviewApplication::for_registration(&registration, &registration.name);
    let reviewer = app.staff_member("reviewer").await;
    for left in [2, 1, 0] {
        let submitted = app.apply_for_review(&token, &application).await;
        submitted.assert_status(201);
        assert_eq!(submitted.body["applications_left_in_period"], json!(left), "{}", submitted.text);
        claim_and_decide(app, &reviewer.token, &submitted.str("review_id"), "reject", Some("手持照片不清晰")).await;
    }

    let fourth = app.apply_for_review(&token, &application).await;

    fourth.assert_problem(429, "period_quota_exhausted");
    let (_, period_end) = review_period(china_today());
    assert_eq!(date(&fourth, "next_period_start"), period_end.succ_opt().unwrap());
    let me = app.me(&token).await;
    assert_eq!(me.str("real_name_status"), "manual_review_rejected");
    assert_eq!(me.body["quotas"]["manual_review_applications_left_in_period"], json!(0), "{}", me.text);
    assert_eq!(items(&app.my_reviews(&token).await).len(), 3);
}
both_stores!(a_fourth_application_in_a_period_waits_for_the_next_period);

async fn business_eligibility_asks_for_the_profile_before_the_verification(app: &mut TestApp) {
    let account = app.register_account().await;
    let token = app.login_ok(&account).await;

    app.eligibility(&token).await.assert_problem(409, "profile_incomplete");
    app.verify(&token).await.assert_problem(409, "profile_incomplete");
    assert_eq!(app.me(&token).await.body["quotas"]["real_name_attempts_left_today"], json!(3));

    app.complete_profile(&token, &account.document_type).await;
    app.eligibility(&token).await.assert_problem(403, "real_name_verification_required");
    app.get("/v1/me/business-eligibility").await.assert_problem(401, "unauthenticated");
}
both_stores!(business_eligibility_asks_for_the_profile_before_the_verification);

// ---------------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------------

async fn staff_endpoints_admit_only_staff_of_the_right_role(app: &mut TestApp) {
    let (registration, _, applicant, review_id) = other_holder_with_a_pending_review(app).await;

    // No token, a made-up token, an account holder's token.
    app.get("/v1/review-queue").await.assert_problem(401, "unauthenticated");
    app.review_queue("no-such-token").await.assert_problem(401, "unauthenticated");
    app.review_queue(&applicant).await.assert_problem(403, "forbidden");
    app.claim_review(&applicant, &review_id).await.assert_problem(403, "forbidden");
    let lookup = json!({"document_type": registration.document_type, "document_number": registration.document_number});
    app.post_json_as(&applicant, "/v1/support/lookups", &lookup).await.assert_problem(403, "forbidden");

    // The command line refuses an unknown role or a bad username.
    for (username, role) in [(shenfen_tests::staff_username(), "janitor"), ("No Spaces!".to_string(), "reviewer")] {
        let output = app.run_staff_add(&username, role, &password()).await;
        assert!(!output.status.success(), "staff add --username {username:?} --role {role} must fail");
    }

    // Staff of another role.
    let support = app.staff_member("support").await;
    app.review_queue(&support.token).await.assert_problem(403, "forbidden");
    app.claim_review(&support.token, &review_id).await.assert_problem(403, "forbidden");
    let admin = app.staff_member("admin").await;
    app.review_queue(&admin.token).await.assert_problem(403, "forbidden");
    let by_support = json!({"username": shenfen_tests::staff_username(), "role": "reviewer", "password": password()});
    app.post_json_as(&support.token, "/v1/staff/accounts", &by_support).await.assert_problem(403, "forbidden");

    // An admin creates a reviewer, who signs in and works the queue.
    let reviewer = app.create_staff(&admin.token, "reviewer", None).await;
    reviewer.response.assert_status(201);
    assert_eq!(reviewer.response.str("username"), reviewer.username);
    assert_eq!(reviewer.response.str("role"), "reviewer");
    assert!(!reviewer.response.str("staff_id").is_empty());
    let again = json!({"username": reviewer.username, "role": "support", "password": password()});
    app.post_json_as(&admin.token, "/v1/staff/accounts", &again).await.assert_problem(409, "username_taken");
    app.staff_login(&reviewer.username, &password()).await.assert_problem(401, "login_failed");
    app.staff_login(&shenfen_tests::staff_username(), &reviewer.password).await.assert_problem(401, "login_failed");
    let session = app.staff_login(&reviewer.username, &reviewer.password).await;
    session.assert_status(201);
    assert_eq!(session.str("role"), "reviewer");
    instant(&session, "expires_at");
    let reviewer_token = session.str("token");
    let queue = app.review_queue(&reviewer_token).await;
    queue.assert_status(200);
    assert!(queue_item(&queue, &review_id).is_some(), "{review_id} not queued: {}", queue.text);
    app.post_json_as(&reviewer_token, "/v1/support/lookups", &lookup).await.assert_problem(403, "forbidden");
    app.post_json_as(&reviewer_token, "/v1/staff/accounts", &by_support).await.assert_problem(403, "forbidden");

    // A reviewer who is the applicant never reviews that application.
    let own = (registration.document_type.as_str(), registration.document_number.as_str());
    let applicant_reviewer = app.create_staff(&admin.token, "reviewer", Some(own)).await;
    applicant_reviewer.response.assert_status(201);
    let own_token = app.staff_token(&applicant_reviewer.username, &applicant_reviewer.password).await;
    app.claim_review(&own_token, &review_id).await.assert_problem(403, "forbidden");
    app.claim_review(&reviewer_token, &review_id).await.assert_status(200);
}
both_stores!(staff_endpoints_admit_only_staff_of_the_right_role);

async fn support_looks_an_account_up_changes_its_mobile_and_corrects_a_garbled_name(app: &mut TestApp) {
    let mut registration = Registration::resident();
    registration.name = "李吉".into();
    let account = app.register_account_with(registration).await;
    let support = app.staff_member("support").await;

    let lookup = json!({"document_type": account.document_type, "document_number": account.document_number});
    let found = app.post_json_as(&support.token, "/v1/support/lookups", &lookup).await;
    found.assert_status(200);
    assert_eq!(found.str("account_id"), account.account_id);
    assert_eq!(found.str("name"), "李吉");
    assert_eq!(found.str("document_number_masked"), masked(&account.document_number));
    let mobile_masked = found.str("mobile_masked");
    assert!(
        mobile_masked.contains('*') && mobile_masked.ends_with(&account.mobile[7..]),
        "mobile shown masked: {mobile_masked:?}"
    );
    assert!(found.str("email_masked").contains('*'), "{}", found.text);
    instant(&found, "registered_at");
    assert_eq!(found.str("real_name_status"), "unverified");
    assert_eq!(found.body["legacy"], json!(false));
    assert!(!found.text.contains(&account.document_number) && !found.text.contains(&account.mobile), "{}", found.text);
    let unknown = json!({"document_type": "resident_id_card", "document_number": shenfen_tests::resident_id_number()});
    app.post_json_as(&support.token, "/v1/support/lookups", &unknown).await.assert_problem(404, "account_not_found");

    // A contact change needs a reason and the evidence.
    let contact = format!("/v1/support/accounts/{}/contact", account.account_id);
    let new_mobile = mobile_number();
    let bare = app.post_json_as(&support.token, &contact, &json!({"mobile": new_mobile})).await;
    bare.assert_field_error("reason", "required").assert_field_error("evidence_ref", "required");
    app.post_json_as(&support.token, &contact, &json!({"mobile": new_mobile, "reason": "客服邮件 #1024"}))
        .await
        .assert_field_error("evidence_ref", "required");
    let change = json!({
        "mobile": new_mobile,
        "reason": "客服邮件 #1024：手机号已停用",
        "evidence_ref": "mail-1024/handheld.jpg",
    });
    let requested = app.post_json_as(&support.token, &contact, &change).await;
    requested.assert_status(202);
    assert_eq!(requested.str("status"), "awaiting_second_approval");
    let approval = format!("/v1/support/requests/{}/approval", requested.str("request_id"));
    // Nothing changes until a second agent approves; the one who asked cannot.
    app.post_json_as(&support.token, &approval, &json!({})).await.assert_problem(409, "same_agent");
    let second = app.staff_member("support").await;
    app.post_json_as(&second.token, &approval, &json!({})).await.assert_status(204);
    app.post_json_as(&second.token, &approval, &json!({})).await.assert_problem(404, "request_not_found");
    // The old mobile and e-mail are told.
    assert_eq!(app.wait_for_message(&account.mobile, "contact_changed").await.channel, "sms");
    assert_eq!(app.wait_for_message(&account.email, "contact_changed").await.channel, "email");

    // A password reset by SMS now goes to the new mobile.
    let reset = app.start_password_reset(&account).await;
    reset.assert_status(201);
    let sms = reset.body["methods"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["method"] == json!("sms")))
        .cloned()
        .unwrap_or_else(|| panic!("no sms method: {}", reset.text));
    assert!(sms["destination"].as_str().unwrap_or("").ends_with(&new_mobile[7..]), "{sms}");
    app.deliver_reset(&reset.str("reset_id"), "sms").await.assert_status(202);
    let message = app.wait_for_message(&new_mobile, "reset_password").await;
    let new_password = password();
    app.complete_reset(&reset.str("reset_id"), &message.code(), &new_password).await.assert_status(204);
    assert!(
        !app.hooks
            .received()
            .iter()
            .any(|m| m["to"] == json!(account.mobile) && m["purpose"] == json!("reset_password")),
        "nothing went to the old mobile"
    );
    let token = app.login(&account.document_number, &new_password).await;
    token.assert_status(201);
    let token = token.str("token");

    // The garbled name is corrected, with the rare character intact.
    let corrections = format!("/v1/support/accounts/{}/corrections", account.account_id);
    app.post_json_as(&support.token, &corrections, &json!({"name": "李𠮷", "evidence_ref": "mail-1025/id.jpg"}))
        .await
        .assert_field_error("reason", "required");
    let correction = json!({"name": "李𠮷", "reason": "姓名生僻字显示为乱码", "evidence_ref": "mail-1025/id.jpg"});
    app.post_json_as(&support.token, &corrections, &correction).await.assert_status(204);
    assert_eq!(app.me(&token).await.str("name"), "李𠮷");
    let found = app.post_json_as(&support.token, "/v1/support/lookups", &lookup).await;
    assert_eq!(found.str("name"), "李𠮷");
}
both_stores!(support_looks_an_account_up_changes_its_mobile_and_corrects_a_garbled_name);

// ---------------------------------------------------------------------------------------------
// After an approval
// ---------------------------------------------------------------------------------------------

async fn an_approval_outlives_a_failed_attempt_and_a_killed_server(app: &mut TestApp) {
    // On record as 孙悦, registered as 孙月.
    let identity = app.identities()[0].clone();
    let registration = identity.registration("孙月");
    let (account, token) = app.ready_applicant(registration.clone()).await;
    failed_attempt(app, &token, "name_mismatch").await;
    let review_id = submit(app, &token, &ReviewApplication::for_registration(&registration, "孙悦")).await;
    let reviewer = app.staff_member("reviewer").await;
    claim_and_decide(app, &reviewer.token, &review_id, "approve", Some("照片清晰，信息一致")).await;
    assert_status_and_name(&app.me(&token).await, "manual_review_approved", "孙悦");

    // Verifying the old name again is refused (a proven name changes only through support);
    // the approval stays in force.
    app.verify_with(&token, &json!({"name": "孙月"})).await.assert_problem(409, "name_change_needs_support");
    assert_status_and_name(&app.me(&token).await, "manual_review_approved", "孙悦");
    app.eligibility(&token).await.assert_status(200);

    app.restart().await;

    assert_status_and_name(&app.me(&token).await, "manual_review_approved", "孙悦");
    let eligible = app.eligibility(&token).await;
    eligible.assert_status(200);
    assert_eq!(eligible.body["eligible"], json!(true));
    let list = items(&app.my_reviews(&token).await);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], json!("approved"));
    let login = app.login(&account.document_number, &account.password).await;
    login.assert_status(201);
    assert_eq!(login.str("real_name_status"), "manual_review_approved");
    assert!(queue_item(&app.review_queue(&reviewer.token).await, &review_id).is_none());
    // The restarted server still answers attempts (here: a document it cannot check).
    let (_, other) = app.ready_applicant(Registration::other()).await;
    app.verify(&other).await.assert_problem(409, "manual_review_required");
}
both_stores!(
    an_approval_outlives_a_failed_attempt_and_a_killed_server,
    Settings::with_identities(vec![Identity::resident("孙悦")])
);
