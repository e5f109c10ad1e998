//! Personal information (PIPL): the log holds personal data only sealed under its data
//! subject's key, yet every reader that may see it (the holder, support, auditors) does.

use serde_json::json;
use std::time::Duration;

use shenfen_tests::{both_stores, eventually, unzip, Identity, Settings, TestApp};

/// Every stored text of `sql` (one column) joined, for searching.
async fn stored(app: &TestApp, sql: &str) -> String {
    app.query_texts(sql, &[]).await.into_iter().flatten().collect::<Vec<_>>().join("\n")
}

async fn no_name_document_mobile_or_email_is_stored_in_plain_text(app: &mut TestApp) {
    let on_record = app.identities()[0].clone();
    let registration = on_record.registration(&on_record.name);
    let (account, token) = app.ready_applicant(registration.clone()).await;
    app.verify(&token).await.assert_status(200);
    let support = app.staff_member("support").await;
    let lookup = json!({"document_type": "resident_id_card", "document_number": registration.document_number});
    let found = app.post_json_as(&support.token, "/v1/support/lookups", &lookup).await;
    found.assert_status(200);
    assert_eq!(found.str("name"), on_record.name, "support still reads the name: {}", found.text);
    let me = app.me(&token).await;
    assert_eq!(me.str("name"), on_record.name, "{}", me.text);

    let events = stored(app, "SELECT CAST(payload AS TEXT) FROM events").await;
    assert!(events.contains("enc:"), "personal values are sealed: {events}");
    for secret in [
        on_record.name.as_str(),
        registration.document_number.as_str(),
        registration.mobile.as_str(),
        registration.email.as_str(),
    ] {
        assert!(!events.contains(secret), "{secret} is in the events table in plain text");
    }
    // What is counted stays readable: the document type of the registration.
    assert!(events.contains("resident_id_card"), "{events}");

    // The outbox keeps a delivered message's destination masked only.
    let plain = "SELECT count(*) FROM outbox WHERE destination = $1 OR destination = $2";
    let contacts = [registration.mobile.as_str(), registration.email.as_str()];
    let left = eventually(Duration::from_secs(15), || app.query_i64(plain, &contacts), |n| *n == 0).await;
    assert_eq!(left, 0, "a delivered message keeps its destination in plain text");
    assert!(app.query_i64("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL", &[]).await > 0);

    // Auditors read the events opened.
    let auditor = app.staff_member("auditor").await;
    let audited = app.audit_events(&auditor.token, "account", &account.account_id).await;
    audited.assert_status(200);
    assert!(audited.text.contains(&on_record.name), "{}", audited.text);
    // Consent is recorded: the agreement's version and when it was accepted.
    let registered = audited.body.as_array().and_then(|events| events.first()).cloned().unwrap_or_default();
    let consent = &registered["payload"]["Registered"]["consent"];
    assert_eq!(consent["agreement_version"], json!("2026-01"), "{registered}");
    assert!(consent["accepted_at"].is_string(), "{registered}");
}
both_stores!(
    no_name_document_mobile_or_email_is_stored_in_plain_text,
    Settings::with_identities(vec![Identity::resident("赵敏")])
);

const DELETION: &str = "/v1/me/deletion";

async fn a_withdrawn_deletion_leaves_everything(app: &mut TestApp) {
    let account = app.register_account().await;
    let token = app.login_ok(&account).await;
    app.post_json_as(&token, DELETION, &json!({"password": "Not-the-password-1"}))
        .await
        .assert_problem(401, "login_failed");
    let asked = app.post_json_as(&token, DELETION, &json!({"password": account.password})).await;
    asked.assert_status(202);
    let effective_at = asked.str("effective_at");
    let days = (chrono::DateTime::parse_from_rfc3339(&effective_at).expect("RFC 3339").with_timezone(&chrono::Utc)
        - chrono::Utc::now())
    .num_hours();
    assert!((14 * 24..=15 * 24).contains(&days), "15 days of cooling-off: {}", asked.text);
    // Asked again: the first date stands.
    let again = app.post_json_as(&token, DELETION, &json!({"password": account.password})).await;
    assert_eq!(again.str("effective_at"), effective_at);

    app.delete_as(&token, DELETION).await.assert_status(204);
    app.delete_as(&token, DELETION).await.assert_problem(409, "no_deletion_pending");
    // Logging in withdraws it too.
    app.post_json_as(&token, DELETION, &json!({"password": account.password})).await.assert_status(202);
    let again = app.login_ok(&account).await;
    app.delete_as(&again, DELETION).await.assert_problem(409, "no_deletion_pending");
    let me = app.me(&token).await;
    me.assert_status(200);
    assert_eq!(me.str("name"), account.name, "{}", me.text);
}
both_stores!(a_withdrawn_deletion_leaves_everything);

async fn an_erased_account_is_forgotten_and_its_document_registers_again(app: &mut TestApp) {
    let analyst = app.staff_member("analyst").await;
    let auditor = app.staff_member("auditor").await;
    let on_record = app.identities()[0].clone();
    let registration = on_record.registration(&on_record.name);
    let (account, token) = app.ready_applicant(registration.clone()).await;
    app.verify(&token).await.assert_status(200);
    let registrations = |r: &shenfen_tests::ApiResponse| {
        r.body.as_array().map_or(0, |rows| rows.iter().filter_map(|row| row["registrations"].as_i64()).sum::<i64>())
    };
    let counted = app.poll_as(&analyst.token, "/v1/analytics/registrations", |r| registrations(r) >= 1).await;
    let before = registrations(&counted);

    // No cooling-off here: erased before the answer.
    let asked = app.post_json_as(&token, DELETION, &json!({"password": registration.password})).await;
    asked.assert_status(202);
    app.me(&token).await.assert_problem(401, "unauthenticated");
    app.login(&registration.document_number, &registration.password).await.assert_problem(401, "login_failed");

    // Auditors see the events, with no personal data; the chain is intact.
    let audited = app.audit_events(&auditor.token, "account", &account.account_id).await;
    audited.assert_status(200);
    assert!(audited.text.contains("[erased]") && audited.text.contains("\"Erased\""), "{}", audited.text);
    for secret in [on_record.name.as_str(), registration.mobile.as_str(), registration.email.as_str()] {
        assert!(!audited.text.contains(secret), "{secret} is still readable: {}", audited.text);
    }
    let verification = app.audit_events(&auditor.token, "verification", &account.account_id).await;
    assert!(!verification.text.contains(&on_record.name), "{}", verification.text);
    let state = app.audit_state(&auditor.token, "account", &account.account_id, None).await;
    assert_eq!(state.body["chain_intact"], json!(true), "{}", state.text);
    // What was counted stays counted.
    assert_eq!(registrations(&app.get_as(&analyst.token, "/v1/analytics/registrations").await), before);

    // The document registers again, as a new holder: nothing of the erased one carries over.
    let fresh = shenfen_tests::Registration {
        password: shenfen_tests::password(),
        mobile: shenfen_tests::mobile_number(),
        ..registration.clone()
    };
    let again = app.register_account_with(fresh.clone()).await;
    assert_eq!(again.account_id, account.account_id, "the same stream goes on");
    let token = app.login_ok(&again).await;
    let me = app.me(&token).await;
    assert_eq!(me.str("name"), on_record.name, "{}", me.text);
    assert_eq!(me.str("real_name_status"), "unverified", "the erased holder's proof does not carry over: {}", me.text);
    let counted = app.poll_as(&analyst.token, "/v1/analytics/registrations", |r| registrations(r) > before).await;
    assert_eq!(registrations(&counted), before + 1);
    // The new registration is readable; the erased one's events stay erased.
    let audited = app.audit_events(&auditor.token, "account", &account.account_id).await;
    assert!(audited.text.contains(&on_record.name) && audited.text.contains("[erased]"), "{}", audited.text);
}
both_stores!(
    an_erased_account_is_forgotten_and_its_document_registers_again,
    Settings::with_identities(vec![Identity::resident("钱程")]).env("SHENFEN_DELETION_COOLING_OFF_DAYS", "0")
);

async fn photos_of_a_decided_review_are_deleted_when_their_retention_ends(app: &mut TestApp) {
    let app: &TestApp = app;
    let reviewer = app.staff_member("reviewer").await;
    let auditor = app.staff_member("auditor").await;
    let apply = |registration: shenfen_tests::Registration| async move {
        let (account, token) = app.ready_applicant(registration.clone()).await;
        let application = shenfen_tests::ReviewApplication::for_registration(&registration, &registration.name);
        let submitted = app.apply_for_review(&token, &application).await;
        submitted.assert_status(201);
        (account, submitted.str("review_id"))
    };
    let (decided_account, decided) = apply(shenfen_tests::Registration::other()).await;
    let (_, pending) = apply(shenfen_tests::Registration::other()).await;
    app.claim_review(&reviewer.token, &decided).await.assert_status(200);
    app.decide_review(&reviewer.token, &decided, "reject", Some("照片不清晰")).await.assert_status(200);

    // Retention 0 days: the next housekeeping round deletes the decided review's photos.
    let photo = || app.review_photo(&reviewer.token, &decided, "front");
    let photo = eventually(Duration::from_secs(20), photo, |p| p.status == 410).await;
    assert!(photo.status == 410, "the photos were not deleted: {}", photo.describe());
    photo.assert_problem(410, "photo_deleted");
    // Recorded in the stream; a pending review keeps its photos.
    let events = app.audit_events(&auditor.token, "verification", &decided_account.account_id).await;
    assert!(events.text.contains("ApplicationPhotosDeleted"), "{}", events.text);
    app.review_photo(&reviewer.token, &pending, "front").await.assert_status(200);
}
both_stores!(
    photos_of_a_decided_review_are_deleted_when_their_retention_ends,
    Settings::defaults().env("SHENFEN_PHOTO_RETENTION_DAYS", "0").env("SHENFEN_HOUSEKEEPING_SECONDS", "1")
);

/// A database backup taken before an erasure and restored after it: the erasure journal
/// (beside the key file, not in the database) destroys the subject's keys again at start-up,
/// so the restored events stay unreadable, and applies the erasure again to the restored
/// stream, so its password and sessions do not come back. (SQLite, where a backup is a copy of
/// the files.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_survives_the_restore_of_a_backup_taken_before_it() {
    shenfen_tests::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
    let settings =
        Settings::with_identities(vec![Identity::resident("孙立")]).env("SHENFEN_DELETION_COOLING_OFF_DAYS", "0");
    let mut app = TestApp::spawn(shenfen_tests::Store::Sqlite, settings).await;
    let auditor = app.staff_member("auditor").await;
    let on_record = app.identities()[0].clone();
    let registration = on_record.registration(&on_record.name);
    let (account, token) = app.ready_applicant(registration.clone()).await;

    // The backup: the database files, copied while the server is stopped.
    app.backup_sqlite().await;
    let token = if app.me(&token).await.status == 200 { token } else { app.login_ok(&account).await };

    app.post_json_as(&token, "/v1/me/deletion", &json!({"password": registration.password})).await.assert_status(202);
    let erased = app.audit_events(&auditor.token, "account", &account.account_id).await;
    assert!(!erased.text.contains(&on_record.name), "{}", erased.text);

    // The restore: the files from before the erasure, then a start.
    app.restore_sqlite().await;
    let restored = app.audit_events(&auditor.token, "account", &account.account_id).await;
    restored.assert_status(200);
    assert!(restored.text.contains("[erased]"), "{}", restored.text);
    // The restored stream lacked its `Erased` event: it is applied again, naming the first.
    let events = restored.body.as_array().cloned().unwrap_or_default();
    let erasures: Vec<_> = events.iter().filter(|e| e["event_type"] == json!("Erased")).collect();
    assert_eq!(erasures.len(), 1, "{}", restored.text);
    assert!(erasures[0]["payload"]["Erased"]["restored_from"].is_string(), "{}", restored.text);
    // Its password and sessions did not come back with the backup.
    app.me(&token).await.assert_problem(401, "unauthenticated");
    app.login(&registration.document_number, &registration.password).await.assert_problem(401, "login_failed");
    // A second start applies nothing more.
    app.restart().await;
    let again = app.audit_events(&auditor.token, "account", &account.account_id).await;
    assert_eq!(again.body.as_array().map(Vec::len), Some(events.len()), "{}", again.text);
    for secret in [on_record.name.as_str(), registration.mobile.as_str(), registration.email.as_str()] {
        assert!(!restored.text.contains(secret), "{secret} readable again after the restore: {}", restored.text);
    }
}

async fn the_export_holds_the_profile_the_events_with_their_actors_the_reviews_and_the_photos(app: &mut TestApp) {
    let app: &TestApp = app;
    let reviewer = app.staff_member("reviewer").await;
    let auditor = app.staff_member("auditor").await;
    let registration = shenfen_tests::Registration::other();
    let (account, token) = app.ready_applicant(registration.clone()).await;
    let application = shenfen_tests::ReviewApplication::for_registration(&registration, &registration.name);
    let submitted = app.apply_for_review(&token, &application).await;
    submitted.assert_status(201);
    let review_id = submitted.str("review_id");
    app.claim_review(&reviewer.token, &review_id).await.assert_status(200);
    app.decide_review(&reviewer.token, &review_id, "approve", None).await.assert_status(200);
    // The reviewer's id, as auditors see it: the holder's copy must not show it.
    let audited = app.audit_events(&auditor.token, "verification", &account.account_id).await;
    let reviewer_id = audited
        .body
        .as_array()
        .and_then(|events| events.iter().find_map(|e| e["payload"]["ApplicationApproved"]["reviewer"].as_str()))
        .unwrap_or_else(|| panic!("an approval with its reviewer: {}", audited.text))
        .to_string();

    let export = app.get_as(&token, "/v1/me/export").await;
    export.assert_status(200);
    assert_eq!(export.headers["content-type"], "application/zip");
    let files = unzip(&export.bytes);
    let text =
        |name: &str| String::from_utf8(files.get(name).unwrap_or_else(|| panic!("no {name}")).clone()).expect("UTF-8");
    let json = |name: &str| serde_json::from_str::<serde_json::Value>(&text(name)).expect("JSON");

    let profile = json("profile.json");
    assert_eq!(profile["account_id"], json!(account.account_id));
    assert_eq!(profile["name"], json!(registration.name), "unmasked: it is the holder's own: {profile}");
    assert_eq!(profile["document_number"], json!(registration.document_number), "{profile}");
    assert_eq!(profile["mobile"], json!(registration.mobile), "{profile}");
    assert_eq!(profile["email"], json!(registration.email), "{profile}");

    let account_events = json("events/account.json");
    let registered = account_events.as_array().and_then(|e| e.first()).cloned().unwrap_or_default();
    assert_eq!(registered["event_type"], json!("Registered"), "{account_events}");
    assert_eq!(registered["payload"]["Registered"]["name"], json!(registration.name), "opened: {registered}");
    assert!(!text("events/account.json").contains("$argon2"), "password hashes are redacted");

    let verification = text("events/verification.json");
    assert!(verification.contains("ApplicationApproved"), "{verification}");
    assert!(
        verification.contains(r#""kind": "staff""#) && verification.contains(r#""role": "reviewer""#),
        "{verification}"
    );
    for (name, content) in &files {
        let content = String::from_utf8_lossy(content);
        assert!(!content.contains(&reviewer_id), "{name} names the reviewer by id");
        assert!(!content.contains(&reviewer.username), "{name} names the reviewer");
    }

    let reviews = json("reviews.json");
    assert_eq!(reviews[0]["review_id"], json!(review_id), "{reviews}");
    assert_eq!(reviews[0]["status"], json!("approved"), "{reviews}");
    for (which, part) in [("front", "photo_front"), ("back", "photo_back"), ("handheld", "photo_handheld")] {
        let name = format!("photos/{review_id}/{which}.jpg");
        assert_eq!(files.get(&name).map(Vec::as_slice), Some(application.photo(part)), "{name}");
    }
    assert!(files.contains_key("README.txt"));

    // Only the holder: no token, no archive.
    app.get("/v1/me/export").await.assert_problem(401, "unauthenticated");
}
both_stores!(the_export_holds_the_profile_the_events_with_their_actors_the_reviews_and_the_photos);

/// Subject keys wrapped under a master key of the master key file: a server started without
/// that file refuses to start (rather than fail on every read of personal data), and starts
/// again once the file is back.
async fn a_server_without_the_master_key_in_use_refuses_to_start(app: &mut TestApp) {
    let master_file = app.dir().join("master.keys");
    app.stop().await;
    let key: [u8; 32] = rand::random();
    std::fs::write(&master_file, format!("{}\n", hex(&key))).expect("write the master key file");
    app.start().await;
    let account = app.register_account().await;
    let token = app.login_ok(&account).await;
    assert_eq!(app.me(&token).await.str("name"), account.name);

    app.stop().await;
    let away = master_file.with_extension("away");
    std::fs::rename(&master_file, &away).expect("move the file away");
    let refused = app.serve_refused().await;
    assert!(refused.contains("master key") && refused.contains("m-"), "{refused}");

    std::fs::rename(&away, &master_file).expect("put the file back");
    app.start().await;
    let token = app.login_ok(&account).await;
    assert_eq!(app.me(&token).await.str("name"), account.name);
}
both_stores!(a_server_without_the_master_key_in_use_refuses_to_start);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
