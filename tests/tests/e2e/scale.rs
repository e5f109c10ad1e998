//! Shenfen past one process and one database server, on PostgreSQL: a store seeded by bulk SQL
//! (`shenfen-seed`) served like one the server wrote itself; reads that tolerate lag
//! served by a real streaming standby (`pg_basebackup`, streaming replication, both
//! throwaway) while the caller's own writes are read from the primary; and two server
//! processes on one database taking the same requests at once without breaking an invariant
//! (one account per document, five failures lock, three attempts a day, one reviewer per
//! review).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use shenfen_test_postgres::Standby;
use shenfen_tests::{
    china_today, email_address, eventually, mobile_number, ApiResponse, Identity, Registration, ReviewApplication,
    Settings, Store, TestApp,
};

const REGISTRATIONS: &str = "/v1/analytics/registrations";

/// Today's registrations as the analyst endpoint answers them (any document type).
fn registrations_today(response: &ApiResponse) -> i64 {
    let today = china_today().format("%Y-%m-%d").to_string();
    response
        .body
        .as_array()
        .map(|rows| rows.iter().filter(|r| r["day"] == json!(today)).filter_map(|r| r["registrations"].as_i64()).sum())
        .unwrap_or(-1)
}

/// Today's registrations in the primary's read model (what the standby will show once it has
/// replayed).
async fn registrations_on_the_primary(app: &TestApp) -> i64 {
    let today = china_today().format("%Y-%m-%d").to_string();
    app.query_i64(
        "SELECT COALESCE(SUM(registrations), 0)::bigint FROM analytics_registrations WHERE day = $1::date",
        &[&today],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_tolerant_reads_are_served_by_the_standby_and_the_callers_own_writes_by_the_primary() {
    let mut app = TestApp::spawn(Store::Postgres, Settings::defaults()).await;
    let standby = Standby::start(&app.direct_db_url).await;
    assert!(standby.in_recovery().await, "the standby is in recovery");
    app.stop().await;
    app.settings.env.push(("SHENFEN_READ_DATABASE_URL".into(), standby.uri.clone()));
    // Paused below for as long as the test needs: not so far behind that reads leave it.
    app.settings.env.push(("SHENFEN_READ_MAX_LAG_SECONDS".into(), "3600".into()));
    app.start().await;
    let wait = Duration::from_secs(15);
    let ready = app.get("/readyz").await;
    ready.assert_status(200);
    assert_eq!(ready.str("read_standby"), "in_use", "{}", ready.text);

    let analyst = app.staff_member("analyst").await;
    let auditor = app.staff_member("auditor").await;
    app.register_account().await;
    let replicated =
        eventually(wait, || app.get_as(&analyst.token, REGISTRATIONS), |r| registrations_today(r) == 1).await;
    assert_eq!(registrations_today(&replicated), 1, "the first registration reached the standby: {}", replicated.text);

    // The standby stops replaying: it shows the log as it is now.
    standby.pause_replay().await;
    let second = app.register_account().await;
    let token = app.login_ok(&second).await;
    let counted = eventually(wait, || registrations_on_the_primary(&app), |n| *n == 2).await;
    assert_eq!(counted, 2, "the primary's read model counts both registrations");

    // Read-your-writes answers come from the primary (the standby knows nothing of the account).
    let me = app.me(&token).await;
    me.assert_status(200);
    assert_eq!(me.str("account_id"), second.account_id, "{}", me.text);
    // Lag-tolerant reads come from the standby, which has not seen the second account yet.
    let stale = app.get_as(&analyst.token, REGISTRATIONS).await;
    stale.assert_status(200);
    assert_eq!(registrations_today(&stale), 1, "the analyst's figure is the standby's: {}", stale.text);
    let path = format!("/v1/audit/aggregates/account/{}/events", second.account_id);
    app.get_as(&auditor.token, &path).await.assert_problem(404, "aggregate_not_found");

    // Replay resumes: the standby catches up and serves the new figure and history.
    standby.resume_replay().await;
    let fresh = eventually(wait, || app.get_as(&analyst.token, REGISTRATIONS), |r| registrations_today(r) == 2).await;
    assert_eq!(registrations_today(&fresh), 2, "{}", fresh.text);
    let history = eventually(wait, || app.get_as(&auditor.token, &path), |r| r.status == 200).await;
    history.assert_status(200);

    // A standby that falls over costs the primary reads, not errors.
    standby.crash();
    let bypassed = eventually(wait, || app.get("/readyz"), |r| r.body["read_standby"] == json!("bypassed")).await;
    assert_eq!(bypassed.str("read_standby"), "bypassed", "{}", bypassed.text);
    let from_primary = app.get_as(&analyst.token, REGISTRATIONS).await;
    from_primary.assert_status(200);
    assert_eq!(registrations_today(&from_primary), 2, "{}", from_primary.text);
    app.get_as(&auditor.token, &path).await.assert_status(200);
}

/// The `i`th of two processes, by turns.
fn by_turns<'a>(apps: &'a [&'a TestApp; 2], i: usize) -> &'a TestApp {
    apps[i % 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_taking_the_same_requests_at_once_break_no_invariant() {
    let a = TestApp::spawn(Store::Postgres, Settings::with_identities(vec![Identity::resident("王晓明")])).await;
    // Staff made by the command line first: with both servers busy, PostgreSQL's 100
    // connections are spoken for.
    let admin = a.staff_member("admin").await;
    let b = a.spawn_sibling().await;
    let apps = [&a, &b];

    // One account per document: twenty registrations of one document, split between the two.
    let base = Registration::resident();
    let registrations: Vec<Registration> =
        (0..20).map(|_| Registration { mobile: mobile_number(), email: email_address(), ..base.clone() }).collect();
    let mut bodies = Vec::new();
    for (i, r) in registrations.iter().enumerate() {
        by_turns(&apps, i).send_code("register", &r.mobile).await.assert_status(202);
        bodies.push(r.body(&a.wait_for_message(&r.mobile, "register").await.code()));
    }
    let answers =
        join_all(bodies.iter().enumerate().map(|(i, body)| by_turns(&apps, i).post_json("/v1/accounts", body))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "exactly one account: {statuses:?}");
    for answer in answers.iter().filter(|r| r.status != 201) {
        answer.assert_problem(409, "document_already_registered");
    }

    // Lockout: twenty wrong passwords at once, split, give exactly five failures.
    let answers = join_all((0..20).map(|i| by_turns(&apps, i).login(&base.document_number, "Zq7#wrongpass1"))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "exactly five 401: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 423).count(), 15, "the rest 423: {statuses:?}");
    b.login(&base.document_number, &base.password).await.assert_problem(423, "account_locked");

    // Three real-name attempts a day: thirty at once, split, count at most three, and the
    // rest of the day's attempts one after the other come to exactly three.
    let identity = a.identities()[0].clone();
    let (_, token) = a.ready_applicant(identity.registration("王小明")).await;
    let answers = join_all((0..30).map(|i| by_turns(&apps, i).verify(&token))).await;
    let mut counted = 0;
    for answer in &answers {
        match answer.status.as_u16() {
            200 => counted += 1,
            429 => {
                answer.assert_problem(429, "daily_attempts_exhausted");
            }
            409 => {
                let code = answer.body["code"].as_str().unwrap_or_default();
                assert!(["attempt_in_progress", "conflict_retry"].contains(&code), "{}", answer.text);
            }
            _ => panic!("unexpected answer to a concurrent attempt: {} {}", answer.status, answer.text),
        }
    }
    assert!((1..=3).contains(&counted), "{counted} attempts answered 200");
    for i in counted..3 {
        by_turns(&apps, i).verify(&token).await.assert_status(200);
    }
    a.verify(&token).await.assert_problem(429, "daily_attempts_exhausted");
    b.verify(&token).await.assert_problem(429, "daily_attempts_exhausted");
    assert_eq!(b.me(&token).await.body["quotas"]["real_name_attempts_left_today"], json!(0));

    // One reviewer per review: ten reviewers claiming one application at once, split.
    let registration = Registration::other();
    let (_, holder) = a.ready_applicant(registration.clone()).await;
    let application = ReviewApplication::for_registration(&registration, &registration.name);
    let submitted = b.apply_for_review(&holder, &application).await;
    submitted.assert_status(201);
    let review_id = submitted.str("review_id");
    let created = join_all((0..10).map(|_| a.create_staff(&admin.token, "reviewer", None))).await;
    let reviewers = join_all(created.iter().map(|s| a.staff_token(&s.username, &s.password))).await;
    let claims =
        join_all(reviewers.iter().enumerate().map(|(i, t)| by_turns(&apps, i).claim_review(t, &review_id))).await;
    let winners: Vec<&ApiResponse> = claims.iter().filter(|c| c.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one reviewer wins: {:?}", claims.iter().map(|c| &c.text).collect::<Vec<_>>());
    for claim in claims.iter().filter(|c| c.status != 200) {
        claim.assert_problem(409, "already_claimed");
    }

    // What the log holds agrees: three accounts (the contested document's and the two
    // applicants'), five failures before the lock, three attempts charged today, one claim.
    let a = &a;
    let count = |sql: &'static str| async move { a.query_i64(sql, &[]).await };
    assert_eq!(
        count("SELECT count(*) FROM events WHERE aggregate_type = 'account' AND event_type = 'Registered'").await,
        3
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE aggregate_type = 'account' AND event_type = 'LoginFailed'").await,
        5
    );
    assert_eq!(count("SELECT count(*) FROM events WHERE event_type = 'AttemptFailed'").await, 3);
    assert_eq!(count("SELECT count(*) FROM events WHERE event_type = 'ApplicationClaimed'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_seeded_by_bulk_sql_is_served_as_if_the_server_had_written_it() {
    let mut app = TestApp::spawn(Store::Postgres, Settings::defaults()).await;
    app.stop().await;
    let accounts = 300;
    let target = shenfen_bench::seed::Target::at(&app.direct_db_url, app.dir()).expect("seed target");
    let seeded = target.seed(0, accounts, 2).await.expect("seeding");
    assert_eq!(seeded.accounts, accounts);
    let stored = app.query_i64("SELECT count(*) FROM events", &[]).await;
    assert_eq!(stored as u64, seeded.events, "every seeded event is stored");
    assert!(seeded.events >= accounts * 5, "{} events for {accounts} accounts", seeded.events);
    let plain = app
        .query_i64(
            "SELECT count(*) FROM events WHERE payload::text LIKE '%440305%' OR payload::text LIKE '%@example.com%'",
            &[],
        )
        .await;
    assert_eq!(plain, 0, "personal data is sealed");
    app.start().await;
    let analyst = app.staff_member("analyst").await;
    let auditor = app.staff_member("auditor").await;
    let wait = Duration::from_secs(60);

    // The read models catch up from the seeded log: every registration is counted.
    let total = |r: &ApiResponse| {
        r.body.as_array().map_or(-1, |rows| rows.iter().filter_map(|row| row["registrations"].as_i64()).sum::<i64>())
    };
    let counted = eventually(wait, || app.get_as(&analyst.token, REGISTRATIONS), |r| total(r) == accounts as i64).await;
    assert_eq!(total(&counted), accounts as i64, "{}", counted.text);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.str("status"), "ready", "no projection is stuck on a seeded event: {}", ready.text);

    // Seeded people log in with their document and the seeding's password, and see their
    // accounts as the seeding made them.
    let mut verified = 0;
    for i in 0..10 {
        let login = app.login(&shenfen_bench::seed::document_number(i), shenfen_bench::seed::PASSWORD).await;
        login.assert_status(201);
        let me = app.me(&login.str("token")).await;
        me.assert_status(200);
        assert_eq!(me.body["profile_complete"], json!(true), "{}", me.text);
        if ["verified", "manual_review_approved"].contains(&me.str("real_name_status").as_str()) {
            verified += 1;
        }
        // The hash chain of the seeded stream holds under the server's key and seal.
        let path = format!("/v1/audit/aggregates/account/{}/state", login.str("account_id"));
        let state =
            eventually(wait, || app.get_as(&auditor.token, &path), |r| r.body["chain_intact"] == json!(true)).await;
        assert_eq!(state.body["chain_intact"], json!(true), "{}", state.text);
    }
    assert!(verified >= 5, "most seeded people proved who they are: {verified} of 10");

    // A seeded document cannot be registered again.
    let mut again = Registration::resident();
    again.document_number = shenfen_bench::seed::document_number(7);
    app.register(&again).await.assert_problem(409, "document_already_registered");
}

/// What ethnicity the account's last profile event recorded (the log, not a read model).
async fn recorded_ethnicity(app: &TestApp, account_id: &str) -> Option<String> {
    app.query_texts(
        "SELECT COALESCE(payload->'ProfileEdited'->>'ethnicity', payload->'ProfileCompleted'->'profile'->>'ethnicity')
           FROM events WHERE aggregate_type = 'account' AND aggregate_id = $1
            AND event_type IN ('ProfileEdited', 'ProfileCompleted')
          ORDER BY sequence DESC LIMIT 1",
        &[account_id],
    )
    .await
    .into_iter()
    .next()
    .flatten()
}

/// Found by the load generator's outcome check: a process whose memory of an account was
/// behind the store answered an edit back to the value it remembered as done (200) without
/// writing it. The holder's change must be recorded whichever process takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_through_a_process_whose_memory_is_stale_is_recorded_not_assumed() {
    let a = TestApp::spawn(Store::Postgres, Settings::defaults()).await;
    let b = a.spawn_sibling().await;
    let account = a.register_account().await;
    let token = a.login_ok(&account).await;
    a.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "01"})).await.assert_status(200);
    a.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "02"})).await.assert_status(200);
    assert_eq!(recorded_ethnicity(&a, &account.account_id).await.as_deref(), Some("02"));

    // `b` changes it back; `a` still remembers "02".
    b.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "01"})).await.assert_status(200);
    assert_eq!(recorded_ethnicity(&a, &account.account_id).await.as_deref(), Some("01"));

    a.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "02"})).await.assert_status(200);

    assert_eq!(
        recorded_ethnicity(&a, &account.account_id).await.as_deref(),
        Some("02"),
        "the edit answered 200 through the stale process is in the log"
    );
}
