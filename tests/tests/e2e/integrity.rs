//! Exactly once, end to end: what the server acknowledged happened once, whatever the wire,
//! the client or the process did in between. Each scenario runs the real server binary; those
//! that need no PostgreSQL-only fault run on both stores (see `both_stores!`).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use shenfen_tests::{both_stores, mobile_number, request_id, Settings, Store, TestApp};

async fn count_events(app: &TestApp, account_id: &str, event_type: &str) -> i64 {
    app.query_i64(
        "SELECT count(*) FROM events WHERE aggregate_type = 'account' AND aggregate_id = $1 AND event_type = $2",
        &[account_id, event_type],
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// A commit whose answer is lost
// ---------------------------------------------------------------------------------------------

/// The proxy loses the answer to the INSERT of a failed login (the commit happens, the server
/// never hears of it). The login is counted once, not decided again against its own events,
/// whether it was written alone or in a batch with other commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_answered_as_committed_and_counted_once() {
    shenfen_tests::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
    let settings = Settings { lockout_threshold: Some(3), ..Settings::defaults() }.proxied();
    let app = TestApp::spawn(Store::Postgres, settings).await;
    let proxy = app.proxy.clone().expect("proxied");
    let wrong = |account: &shenfen_tests::Registered| json!({"document_number": account.document_number, "password": "Wrong#Pass1", "document_type": account.document_type});

    // Alone.
    let alone = app.register_account().await;
    let marker = request_id();
    proxy.lose_the_answer_to(&marker);
    app.send_with_request_id(reqwest::Method::POST, "/v1/sessions", None, Some(&wrong(&alone)), &marker)
        .await
        .assert_problem(401, "login_failed");
    assert_eq!(proxy.tripped(), 1, "the answer to the failed login's commit was lost");
    assert_eq!(count_events(&app, &alone.account_id, "LoginFailed").await, 1, "counted once");
    assert_eq!(count_events(&app, &alone.account_id, "Locked").await, 0);

    // In a batch: eight failed logins at once, the answer to one of them lost.
    let mut accounts = Vec::new();
    for _ in 0..8 {
        accounts.push(app.register_account().await);
    }
    let marker = request_id();
    proxy.lose_the_answer_to(&marker);
    let answers = join_all(accounts.iter().enumerate().map(|(i, account)| {
        let id = if i == 3 { marker.clone() } else { request_id() };
        let body = wrong(account);
        let app = &app;
        async move { app.send_with_request_id(reqwest::Method::POST, "/v1/sessions", None, Some(&body), &id).await }
    }))
    .await;
    for answer in &answers {
        answer.assert_problem(401, "login_failed");
    }
    assert_eq!(proxy.tripped(), 2);
    for account in &accounts {
        assert_eq!(count_events(&app, &account.account_id, "LoginFailed").await, 1, "each counted once");
    }
}

/// The connection that carried an edit's INSERT goes silent (a network path that drops
/// everything without closing), once after the database committed it and once while the INSERT
/// waits behind a lock and is cancelled there: the server does not wait for TCP to give up. It
/// ends the silent session from another connection, looks at the log and answers the truth —
/// 200 for the edit that committed, stored once; 503 `store_unavailable` for the one that did
/// not, never stored, even after the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gone_silent_is_ended_and_the_write_answered_as_it_stands() {
    shenfen_tests::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
    let settings = Settings::defaults().env("SHENFEN_WRITE_TIMEOUT_MS", "1000").proxied();
    let app = TestApp::spawn(Store::Postgres, settings).await;
    let proxy = app.proxy.clone().expect("proxied");
    let account = app.register_account().await;
    let token = app.login_ok(&account).await;
    app.complete_profile(&token, "resident_id_card").await;
    let edits = || count_events(&app, &account.account_id, "ProfileEdited");
    let before = edits().await;

    // Committed, then silence.
    let marker = request_id();
    proxy.go_silent_after(&marker);
    let started = std::time::Instant::now();
    let edit = json!({"ethnicity": "03"});
    app.send_with_request_id(reqwest::Method::PUT, "/v1/me/profile", Some(&token), Some(&edit), &marker)
        .await
        .assert_status(200);
    let answered_after = started.elapsed();
    assert_eq!(proxy.tripped(), 1, "the INSERT's connection went silent");
    assert!(answered_after < Duration::from_secs(10), "answered after {answered_after:?}");
    assert_eq!(edits().await, before + 1, "stored once");

    // Held behind a lock, cancelled there, and silence: not written, then or later.
    let hold = app.hold_writes().await;
    let marker = request_id();
    proxy.go_silent_after(&marker);
    let edit = json!({"ethnicity": "04"});
    app.send_with_request_id(reqwest::Method::PUT, "/v1/me/profile", Some(&token), Some(&edit), &marker)
        .await
        .assert_problem(503, "store_unavailable");
    assert_eq!(proxy.tripped(), 2);
    hold.release().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(edits().await, before + 1, "the refused edit was never written");
    app.put_json_as(&token, "/v1/me/profile", &edit).await.assert_status(200);
    assert_eq!(edits().await, before + 2);
}

// ---------------------------------------------------------------------------------------------
// Messages: queued with their secret, or neither
// ---------------------------------------------------------------------------------------------

/// Refuses every outbox row (as a full disk or a broken table would).
async fn break_the_outbox(app: &TestApp) {
    match app.store {
        Store::Postgres => {
            app.execute_sql(
                "CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'the outbox refuses rows'; END $$",
                &[],
            )
            .await;
            app.execute_sql(
                "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox()",
                &[],
            )
            .await;
        }
        Store::Sqlite => {
            app.execute_sql(
                "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'the outbox refuses rows'); END",
                &[],
            )
            .await;
        }
    }
}

async fn mend_the_outbox(app: &TestApp) {
    app.execute_sql("DROP TRIGGER refuse_outbox ON outbox", &[]).await;
}

async fn mend_the_outbox_sqlite(app: &TestApp) {
    app.execute_sql("DROP TRIGGER refuse_outbox", &[]).await;
}

/// A code whose message cannot be queued is not issued either: it counts against no limit, and
/// the next request gets a code at once.
async fn a_code_counts_against_the_limits_only_when_its_message_is_queued(app: &mut TestApp) {
    let mobile = mobile_number();
    break_the_outbox(app).await;
    let refused = app.send_code("register", &mobile).await;
    assert!(refused.status.is_server_error(), "the request fails: {}", refused.describe());
    let issued = app
        .query_i64("SELECT count(*) FROM events WHERE aggregate_type = 'code_channel' AND event_type = 'Issued'", &[])
        .await;
    assert_eq!(issued, 0, "no code was issued without its message");
    match app.store {
        Store::Postgres => mend_the_outbox(app).await,
        Store::Sqlite => mend_the_outbox_sqlite(app).await,
    }
    app.send_code("register", &mobile).await.assert_status(202);
    let code = app.wait_for_message(&mobile, "register").await.code();
    assert_eq!(code.len(), 6);
}

both_stores!(a_code_counts_against_the_limits_only_when_its_message_is_queued);

/// A burst of codes is claimed and marked a few at a time: every message is delivered once,
/// then kept with its secret erased and its destination masked.
async fn a_burst_of_codes_is_delivered_and_marked_once_each(app: &mut TestApp) {
    let mobiles: Vec<String> = (0..12).map(|_| mobile_number()).collect();
    let sent = join_all(mobiles.iter().map(|m| app.send_code("register", m))).await;
    for response in sent {
        response.assert_status(202);
    }
    for mobile in &mobiles {
        assert_eq!(app.wait_for_message(mobile, "register").await.code().len(), 6);
    }
    let marked = async {
        loop {
            let n = app.query_i64("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL", &[]).await;
            if n == mobiles.len() as i64 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), marked).await.expect("every message marked delivered");
    assert_eq!(app.query_i64("SELECT count(*) FROM outbox WHERE body IS NOT NULL", &[]).await, 0, "secrets erased");
    assert_eq!(app.query_i64("SELECT max(attempts) FROM outbox", &[]).await, 1, "each delivered once");
    for kept in app.query_texts("SELECT destination FROM outbox", &[]).await {
        let kept = kept.expect("a destination");
        assert!(!mobiles.contains(&kept) && kept.contains('*'), "kept masked only: {kept}");
    }
}

both_stores!(a_burst_of_codes_is_delivered_and_marked_once_each);

/// A gateway that never answers: the message is retried until its code expires, then given
/// up with its body erased and its destination masked; the stored error never names the gateway's address.
async fn undeliverable_messages_expire_with_their_secret(app: &mut TestApp) {
    let mobile = mobile_number();
    app.send_code("register", &mobile).await.assert_status(202);
    let expired = async {
        loop {
            let n = app.query_i64("SELECT count(*) FROM outbox WHERE expired_at IS NOT NULL", &[]).await;
            if n > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), expired).await.expect("the message expired");
    let bodies = app.query_texts("SELECT body FROM outbox", &[]).await;
    assert_eq!(bodies, vec![None], "the secret is erased");
    let destinations = app.query_texts("SELECT destination FROM outbox", &[]).await;
    let kept = destinations.first().cloned().flatten().expect("a destination");
    assert!(kept != mobile && kept.contains('*'), "the destination is kept masked only: {kept}");
    let attempts = app.query_i64("SELECT attempts FROM outbox", &[]).await;
    assert!(attempts >= 1, "delivery was tried");
    let errors = app.query_texts("SELECT last_error FROM outbox", &[]).await;
    let error = errors.first().cloned().flatten().expect("the failure is recorded");
    assert!(!error.contains("127.0.0.1") && !error.contains("s3cret"), "the gateway is not named: {error}");
    // Given up: no attempt after expiry.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.query_i64("SELECT attempts FROM outbox", &[]).await, attempts);
}

both_stores!(
    undeliverable_messages_expire_with_their_secret,
    Settings::defaults()
        .env("SHENFEN_NOTIFIER", "webhook:http://127.0.0.1:9/hook?token=s3cret")
        .env("SHENFEN_CODE_TTL_SECONDS", "3")
);

// ---------------------------------------------------------------------------------------------
// A client that hangs up
// ---------------------------------------------------------------------------------------------

/// A client that hangs up while the authority is being asked gets no free attempt, and an
/// honest one is not blocked: the attempt runs to its end, its answer is recorded and counted,
/// and the next attempt may start at once.
async fn a_client_that_hangs_up_mid_verification_gets_no_free_attempt(app: &mut TestApp) {
    let authority = app.authority.clone().expect("a fake HTTP authority");
    let person = shenfen_tests::Identity::resident("周芷若");
    authority.add(person.clone());
    let (_, token) = app.ready_applicant(person.registration("周至若")).await;
    authority.answer_after(Duration::from_millis(1500));

    let impatient = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(300)).build().unwrap();
    let hung_up =
        impatient.post(format!("{}/v1/me/real-name-verifications", app.base_url)).bearer_auth(&token).send().await;
    assert!(hung_up.is_err(), "the client gave up before the answer");

    // The authority answers later; the attempt's answer is recorded all the same.
    let recorded = async {
        loop {
            let me = app.me(&token).await;
            if me.body["real_name_status"] == json!("failed") {
                return me;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let me = tokio::time::timeout(Duration::from_secs(10), recorded).await.expect("the answer was recorded");
    assert_eq!(me.body["quotas"]["real_name_attempts_left_today"], json!(2), "the answered attempt counts");

    // The next attempt starts at once (no attempt is left in flight).
    authority.answer_after(Duration::ZERO);
    let next = app.verify(&token).await;
    next.assert_status(200);
    assert_eq!(next.body["attempts_left_today"], json!(1), "{}", next.text);
    assert_eq!(authority.queries().len(), 2, "one query per counted attempt");
}

both_stores!(a_client_that_hangs_up_mid_verification_gets_no_free_attempt, Settings::with_http_authority(vec![]));

// ---------------------------------------------------------------------------------------------
// Photos
// ---------------------------------------------------------------------------------------------

pub(crate) fn stored_blobs(app: &TestApp) -> usize {
    let root = app.dir().join("blobs");
    std::fs::read_dir(&root)
        .map(|shards| {
            shards
                .filter_map(Result::ok)
                .filter(|s| s.path().is_dir())
                .map(|s| std::fs::read_dir(s.path()).map(|f| f.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Photos of a refused application (one is already pending) are deleted once their grace
/// period is over; the photos an event references stay and are served.
async fn photos_no_event_references_are_swept_after_their_grace_period(app: &mut TestApp) {
    let registration = shenfen_tests::Registration::other();
    let (_, token) = app.ready_applicant(registration.clone()).await;
    let application = shenfen_tests::ReviewApplication::for_registration(&registration, &registration.name);
    let submitted = app.apply_for_review(&token, &application).await;
    submitted.assert_status(201);
    let review_id = submitted.str("review_id");
    let another = shenfen_tests::ReviewApplication::for_registration(&registration, &registration.name);
    app.apply_for_review(&token, &another).await.assert_problem(409, "manual_review_pending");
    assert_eq!(stored_blobs(app), 6, "the refused application's photos were stored");

    let swept = async {
        while stored_blobs(app) != 3 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), swept).await.expect("the unreferenced photos were swept");
    let reviewer = app.staff_member("reviewer").await;
    for (which, part) in [("front", "photo_front"), ("back", "photo_back"), ("handheld", "photo_handheld")] {
        let photo = app.review_photo(&reviewer.token, &review_id, which).await;
        photo.assert_status(200);
        assert_eq!(photo.bytes, application.photo(part), "{which}");
    }
}

both_stores!(
    photos_no_event_references_are_swept_after_their_grace_period,
    Settings::defaults().env("SHENFEN_BLOB_GRACE_SECONDS", "2")
);

// ---------------------------------------------------------------------------------------------
// A poison event
// ---------------------------------------------------------------------------------------------

/// An event a projection cannot decode stops it there, and is reported — `/readyz` degraded
/// with the projection's name and where it stopped, a metric, an ERROR line with the position
/// and no personal data — never skipped.
async fn an_event_a_projection_cannot_decode_is_reported_not_skipped(app: &mut TestApp) {
    let account = app.register_account().await;
    let next = app
        .query_i64(
            "SELECT max(sequence) + 1 FROM events WHERE aggregate_type = 'account' AND aggregate_id = $1",
            &[&account.account_id],
        )
        .await;
    let payload = json!({"ProfileEdited": {"validity": "王秘密", "at": "2026-05-10T01:00:00Z"}}).to_string();
    let metadata = json!({"at": "2026-05-10T01:00:00Z", "request_id": "poison"}).to_string();
    let cast = if app.store == Store::Postgres { "::jsonb" } else { "" };
    app.execute_sql(
        &format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('account', $1, CAST($2 AS BIGINT), 'ProfileEdited', '1', $3{cast}, $4{cast})"
        ),
        &[&account.account_id, &next.to_string(), &payload, &metadata],
    )
    .await;

    let degraded = async {
        loop {
            // Every projection that reads the event stops at it (the account view, the feed);
            // wait for the account view.
            let ready = app.get("/readyz").await;
            let stuck = ready.body["stuck_projections"].as_array().cloned().unwrap_or_default();
            if ready.body["status"] == json!("degraded") && stuck.iter().any(|s| s["projection"] == "account_view") {
                return ready;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let ready = tokio::time::timeout(Duration::from_secs(15), degraded).await.expect("readyz degraded");
    ready.assert_status(200);
    let stuck = ready.body["stuck_projections"].as_array().cloned().unwrap_or_default();
    let view = stuck
        .iter()
        .find(|s| s["projection"] == json!("account_view"))
        .unwrap_or_else(|| panic!("account_view is named: {}", ready.text));
    assert!(view["position"]["global_position"].as_i64().unwrap_or(0) > 0, "{}", ready.text);
    assert!(view["error"].as_str().unwrap_or("").contains(&format!("{}#{next}", account.account_id)), "{}", ready.text);
    assert!(!ready.text.contains("王秘密"), "no personal data: {}", ready.text);

    let metrics = app.get("/metrics").await.text;
    assert!(metrics.contains("shenfen_projection_stuck{projection=\"account_view\"} 1"), "{metrics}");
    let log = app.server_log();
    assert!(log.contains("projection is stuck"), "an ERROR line");
    assert!(!log.contains("王秘密"), "no personal data in the log");

    // Not skipped: the projection stays where it stopped, also after a restart.
    app.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.get("/readyz").await.body["status"], json!("degraded"));
}

both_stores!(an_event_a_projection_cannot_decode_is_reported_not_skipped);
