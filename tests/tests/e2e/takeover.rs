//! Knowing a document number must never be enough to take an account, written as an attacker
//! would try: the stranger re-registering a leaked number, the wrong old password guessed
//! again and again, the e-mail moved without the password, the openid sent instead of a WeChat
//! code, the lone support agent, the disabled reviewer's token on another process, the scripted
//! loop that grows an account. Each runs the real server on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use shenfen_tests::{
    both_stores, email_address, mobile_number, openid, password, resident_id_number, ApiResponse, Registered,
    Registration, ReviewApplication, Settings, TestApp,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A registration of `account`'s document by someone else: their own name, mobile, e-mail and
/// password.
fn stranger_for(account: &Registered) -> Registration {
    Registration { document_number: account.document_number.clone(), name: "王五".into(), ..Registration::resident() }
}

/// `POST /v1/accounts/reregistration` of `registration` with a fresh code for its mobile.
async fn reregister(app: &TestApp, registration: &Registration) -> ApiResponse {
    let code = app.register_code(&registration.mobile).await;
    app.post_json("/v1/accounts/reregistration", &registration.body(&code)).await
}

/// A claim opened by a stranger on `account`: its id and token.
async fn open_claim(app: &TestApp, account: &Registered) -> (String, String, Registration) {
    let stranger = stranger_for(account);
    let opened = reregister(app, &stranger).await;
    opened.assert_status(202);
    assert_eq!(opened.str("status"), "proof_required", "{}", opened.text);
    (opened.str("claim_id"), opened.str("claim_token"), stranger)
}

async fn claim_status(app: &TestApp, claim_token: &str) -> ApiResponse {
    app.get_as(claim_token, "/v1/claims/current").await
}

async fn submit_proof(app: &TestApp, claim_token: &str, claimant: &Registration) -> ApiResponse {
    let application = ReviewApplication::for_registration(claimant, &claimant.name);
    app.post_multipart_as(claim_token, "/v1/claims/current/manual-review", application.form()).await
}

fn items(response: &ApiResponse) -> Vec<Value> {
    response.body.as_array().cloned().unwrap_or_else(|| panic!("not a JSON array: {}", response.describe()))
}

// ---------------------------------------------------------------------------------------------
// Re-registration of an account in use
// ---------------------------------------------------------------------------------------------

/// A stranger who knows the number re-registers it: a claim opens, and nothing about the
/// account changes; the holder is told, refuses, and the claim's token dies.
async fn a_stranger_re_registering_a_number_changes_nothing_and_the_holder_refuses(app: &mut TestApp) {
    let holder = app.register_account().await;
    let session = app.login_ok(&holder).await;
    let bound = openid();
    app.bind_wechat(&session, &holder.password, &bound).await.assert_status(204);
    let before = app.me(&session).await;

    let (claim_id, claim_token, stranger) = open_claim(app, &holder).await;

    // Nothing changed: the password, the session, the name, the contacts, WeChat.
    let after = app.me(&session).await;
    after.assert_status(200);
    for field in ["name", "email_masked", "mobile_masked", "real_name_status", "wechat_bound"] {
        assert_eq!(after.body[field], before.body[field], "{field} unchanged");
    }
    app.login_ok(&holder).await;
    app.login(&holder.document_number, &stranger.password).await.assert_problem(401, "login_failed");
    // The holder is told at once, on the registered mobile and e-mail.
    assert_eq!(app.wait_for_message(&holder.mobile, "reregistration_claim").await.channel, "sms");
    assert_eq!(app.wait_for_message(&holder.email, "reregistration_claim").await.channel, "email");

    // The claim token reaches the claim only.
    claim_status(app, &claim_token).await.assert_status(200);
    app.me(&claim_token).await.assert_problem(401, "unauthenticated");
    app.get_as(&claim_token, "/v1/review-queue").await.assert_problem(401, "unauthenticated");
    app.get_as(&session, "/v1/claims/current").await.assert_problem(401, "unauthenticated");

    // The holder sees the claim and refuses it; its token is dead.
    let claims = app.get_as(&session, "/v1/me/reregistration-claims").await;
    claims.assert_status(200);
    let listed = items(&claims);
    assert_eq!(listed.len(), 1, "{}", claims.text);
    assert_eq!(listed[0]["claim_id"], json!(claim_id));
    assert_eq!(listed[0]["status"], json!("proof_required"));
    let refuse = format!("/v1/me/reregistration-claims/{claim_id}");
    app.delete_as(&session, &refuse).await.assert_status(204);
    claim_status(app, &claim_token).await.assert_problem(401, "unauthenticated");
    submit_proof(app, &claim_token, &stranger).await.assert_problem(401, "unauthenticated");
    app.delete_as(&session, &refuse).await.assert_problem(409, "claim_not_open");
    assert_eq!(items(&app.get_as(&session, "/v1/me/reregistration-claims").await)[0]["status"], json!("refused"));

    // Another holder cannot refuse (or see) someone else's claim.
    let other = app.register_account().await;
    let other_session = app.login_ok(&other).await;
    let (foreign, _, _) = open_claim(app, &holder).await;
    app.delete_as(&other_session, &format!("/v1/me/reregistration-claims/{foreign}"))
        .await
        .assert_problem(404, "claim_not_found");
}

both_stores!(a_stranger_re_registering_a_number_changes_nothing_and_the_holder_refuses);

/// The real person proves who they are: a reviewer sees the claim, approves it, and only then
/// does the account change hands — new credentials and contacts, every session ended, WeChat
/// unbound, pending resets dropped, identity approved.
async fn an_approved_claim_hands_the_account_over_and_a_rejected_one_changes_nothing(app: &mut TestApp) {
    let holder = app.register_account().await;
    let session = app.login_ok(&holder).await;
    app.complete_profile(&session, "resident_id_card").await;
    app.bind_wechat(&session, &holder.password, &openid()).await.assert_status(204);
    let reset = app.start_password_reset(&holder).await;
    reset.assert_status(201);
    app.deliver_reset(&reset.str("reset_id"), "sms").await.assert_status(202);
    let reset_code = app.wait_for_message(&holder.mobile, "reset_password").await.code();
    let reviewer = app.staff_member("reviewer").await;

    // A rejected claim ends and changes nothing.
    let (_, token, claimant) = open_claim(app, &holder).await;
    submit_proof(app, &token, &claimant).await.assert_status(201);
    let rejected_review = claim_status(app, &token).await.body["review"]["review_id"].as_str().unwrap().to_string();
    app.claim_review(&reviewer.token, &rejected_review).await.assert_status(200);
    app.decide_review(&reviewer.token, &rejected_review, "reject", Some("照片与证件不符")).await.assert_status(200);
    assert_eq!(claim_status(app, &token).await.body["status"], json!("rejected"));
    submit_proof(app, &token, &claimant).await.assert_problem(409, "claim_not_open");
    app.me(&session).await.assert_status(200);

    // The true person opens a claim, proves it, and a reviewer approves.
    let (claim_id, token, claimant) = open_claim(app, &holder).await;
    let proof = submit_proof(app, &token, &claimant).await;
    proof.assert_status(201);
    let review_id = proof.str("review_id");
    let queue = app.review_queue(&reviewer.token).await;
    let item = items(&queue).into_iter().find(|i| i["review_id"] == json!(review_id));
    let item = item.unwrap_or_else(|| panic!("the claim is in the queue: {}", queue.text));
    assert_eq!(item["kind"], json!("reregistration"));
    assert_eq!(item["account_id"], json!(holder.account_id));
    let photo = app.review_photo(&reviewer.token, &review_id, "handheld").await;
    photo.assert_status(200);
    app.claim_review(&reviewer.token, &review_id).await.assert_status(200);
    let approved = app.decide_review(&reviewer.token, &review_id, "approve", None).await;
    approved.assert_status(200);
    assert_eq!(approved.str("status"), "approved");
    assert_eq!(claim_status(app, &token).await.body["status"], json!("approved"));

    // Handed over: the holder's password and session are dead, the claimant's work.
    app.me(&session).await.assert_problem(401, "unauthenticated");
    app.login(&holder.document_number, &holder.password).await.assert_problem(401, "login_failed");
    let login = app.login(&holder.document_number, &claimant.password).await;
    login.assert_status(201);
    assert_eq!(login.str("real_name_status"), "manual_review_approved");
    let new_session = login.str("token");
    let me = app.me(&new_session).await;
    assert_eq!(me.str("name"), claimant.name);
    assert_eq!(me.body["wechat_bound"], json!(false), "WeChat unbound");
    assert!(me.str("mobile_masked").ends_with(&claimant.mobile[7..]), "{}", me.text);
    app.eligibility(&new_session).await.assert_status(200);
    // The reset the earlier holder had under way is gone.
    app.complete_reset(&reset.str("reset_id"), &reset_code, &password()).await.assert_status(400);
    // The earlier holder is told.
    app.wait_for_message(&holder.mobile, "account_handed_over").await;
    let claims = items(&app.get_as(&new_session, "/v1/me/reregistration-claims").await);
    assert!(claims.iter().any(|c| c["claim_id"] == json!(claim_id) && c["status"] == json!("approved")), "{claims:?}");
}

both_stores!(an_approved_claim_hands_the_account_over_and_a_rejected_one_changes_nothing);

/// Nobody learns whether a document is registered without a valid code of their own, and the
/// `other` type cannot hold someone's ID number.
async fn registration_says_whether_a_document_is_taken_only_after_a_valid_code(app: &mut TestApp) {
    let holder = app.register_account().await;
    let mut again = Registration { document_number: holder.document_number.clone(), ..Registration::resident() };
    app.send_code("register", &again.mobile).await.assert_status(202);
    let wrong = app.post_json("/v1/accounts", &again.body("000000")).await;
    wrong.assert_field_error("verification.code", "invalid_verification_code");
    let code = app.wait_for_message(&again.mobile, "register").await.code();
    app.post_json("/v1/accounts", &again.body(&code)).await.assert_problem(409, "document_already_registered");

    let unknown = Registration::resident();
    app.send_code("register", &unknown.mobile).await.assert_status(202);
    let wrong = app.post_json("/v1/accounts/reregistration", &unknown.body("000000")).await;
    wrong.assert_field_error("verification.code", "invalid_verification_code");
    let code = app.wait_for_message(&unknown.mobile, "register").await.code();
    app.post_json("/v1/accounts/reregistration", &unknown.body(&code)).await.assert_problem(404, "account_not_found");

    again.document_type = "other".into();
    again.document_number = resident_id_number();
    again.mobile = mobile_number();
    let code = app.register_code(&again.mobile).await;
    app.post_json("/v1/accounts", &again.body(&code))
        .await
        .assert_field_error("document_number", "wrong_document_type");
}

both_stores!(registration_says_whether_a_document_is_taken_only_after_a_valid_code);

// ---------------------------------------------------------------------------------------------
// Sensitive changes
// ---------------------------------------------------------------------------------------------

/// Guessing the old password on the password change is guessing a login: five wrong ones lock
/// the account. A right change ends the other sessions and tells the holder.
async fn wrong_old_passwords_lock_the_account_and_a_change_is_told(app: &mut TestApp) {
    let holder = app.register_account().await;
    let session = app.login_ok(&holder).await;
    let change =
        |old: &str, new: &str| json!({"old_password": old, "new_password": new, "new_password_confirmation": new});
    let new = password();
    for _ in 0..5 {
        app.post_json_as(&session, "/v1/me/password", &change("Wrong#Guess1", &new))
            .await
            .assert_problem(401, "login_failed");
    }
    let locked = app.post_json_as(&session, "/v1/me/password", &change(&holder.password, &new)).await;
    locked.assert_problem(423, "account_locked");
    app.login(&holder.document_number, &holder.password).await.assert_problem(423, "account_locked");
    app.wait_for_message(&holder.mobile, "account_locked").await;

    let other = app.register_account().await;
    let first = app.login_ok(&other).await;
    let second = app.login_ok(&other).await;
    app.post_json_as(&second, "/v1/me/password", &change(&other.password, &new)).await.assert_status(204);
    app.me(&first).await.assert_problem(401, "unauthenticated");
    app.me(&second).await.assert_status(200);
    app.wait_for_message(&other.mobile, "password_changed").await;
    app.wait_for_message(&other.email, "password_changed").await;
}

both_stores!(wrong_old_passwords_lock_the_account_and_a_change_is_told);

/// A stolen session cannot move the account's e-mail: the change needs the password and a code
/// sent to the new address, and the old address is told.
async fn an_email_change_needs_the_password_and_the_new_address(app: &mut TestApp) {
    let holder = app.register_account().await;
    let session = app.login_ok(&holder).await;
    app.complete_profile(&session, "resident_id_card").await;
    let new_email = email_address().replace("@example.com", "@example.net");
    app.put_json_as(&session, "/v1/me/profile", &json!({"email": new_email}))
        .await
        .assert_field_error("current_password", "password_required");
    app.put_json_as(&session, "/v1/me/profile", &json!({"email": new_email, "current_password": "Wrong#Guess1"}))
        .await
        .assert_problem(401, "login_failed");
    let sent = app.query_i64("SELECT count(*) FROM outbox WHERE purpose = 'change_contact'", &[]).await;
    assert_eq!(sent, 0, "no code went out for a wrong password");
    let asked = app
        .put_json_as(&session, "/v1/me/profile", &json!({"email": new_email, "current_password": holder.password}))
        .await;
    asked.assert_status(200);
    assert_eq!(asked.str("pending_email"), new_email);
    let before = app.me(&session).await.str("email_masked");
    assert!(before.ends_with("@example.com"), "unchanged until confirmed: {before}");

    let code = app.wait_for_message(&new_email, "change_contact").await.code();
    app.post_json_as(&session, "/v1/me/email-confirmation", &json!({"code": "000000"}))
        .await
        .assert_problem(400, "invalid_or_expired_secret");
    app.post_json_as(&session, "/v1/me/email-confirmation", &json!({"code": code})).await.assert_status(204);
    let after = app.me(&session).await;
    assert!(after.str("email_masked").ends_with("@example.net"), "{}", after.text);
    assert!(after.body.get("pending_email").is_none(), "{}", after.text);
    app.wait_for_message(&holder.email, "contact_changed").await;
    app.post_json_as(&session, "/v1/me/email-confirmation", &json!({"code": code}))
        .await
        .assert_problem(400, "invalid_or_expired_secret");
}

both_stores!(an_email_change_needs_the_password_and_the_new_address);

/// WeChat is bound only with an OAuth code WeChat itself exchanges, and the password: an
/// openid sent by the client binds nothing.
async fn wechat_is_bound_only_through_wechat_with_the_password(app: &mut TestApp) {
    let holder = app.register_account().await;
    let session = app.login_ok(&holder).await;
    let sent = app.put_json_as(&session, "/v1/me/wechat", &json!({"openid": openid()})).await;
    sent.assert_field_error("oauth_code", "required").assert_field_error("current_password", "required");
    app.put_json_as(&session, "/v1/me/wechat", &json!({"oauth_code": "forged", "current_password": holder.password}))
        .await
        .assert_field_error("oauth_code", "invalid_oauth_code");
    app.bind_wechat(&session, "Wrong#Guess1", &openid()).await.assert_problem(401, "login_failed");
    assert_eq!(app.me(&session).await.body["wechat_bound"], json!(false));
    app.bind_wechat(&session, &holder.password, &openid()).await.assert_status(204);
    assert_eq!(app.me(&session).await.body["wechat_bound"], json!(true));
    app.wait_for_message(&holder.mobile, "wechat_bound").await;
}

both_stores!(wechat_is_bound_only_through_wechat_with_the_password);

// ---------------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------------

/// Disabling a reviewer ends their session at once, in every process; so does a role change;
/// staff lock out, log out and change their password like holders.
async fn a_disabled_reviewers_token_is_refused_at_once_by_another_process(app: &mut TestApp) {
    let admin = app.staff_member("admin").await;
    let reviewer = app.staff_member("reviewer").await;
    let other = app.spawn_sibling().await;
    other.review_queue(&reviewer.token).await.assert_status(200);

    let path = format!("/v1/staff/accounts/{}/disable", reviewer.username);
    app.post_json_as(&reviewer.token, &path, &json!({})).await.assert_problem(403, "forbidden");
    app.post_json_as(&admin.token, &path, &json!({})).await.assert_status(204);
    other.review_queue(&reviewer.token).await.assert_problem(401, "unauthenticated");
    app.staff_login(&reviewer.username, &reviewer.password).await.assert_problem(401, "login_failed");
    let enable = format!("/v1/staff/accounts/{}/enable", reviewer.username);
    app.post_json_as(&admin.token, &enable, &json!({})).await.assert_status(204);
    other.review_queue(&reviewer.token).await.assert_problem(401, "unauthenticated");
    let token = app.staff_token(&reviewer.username, &reviewer.password).await;
    other.review_queue(&token).await.assert_status(200);

    // A role change ends the sessions too; the new role applies at the next sign-in.
    let role = format!("/v1/staff/accounts/{}/role", reviewer.username);
    app.put_json_as(&admin.token, &role, &json!({"role": "auditor"})).await.assert_status(204);
    other.review_queue(&token).await.assert_problem(401, "unauthenticated");
    let signed_in = app.staff_login(&reviewer.username, &reviewer.password).await;
    assert_eq!(signed_in.str("role"), "auditor");
    other.review_queue(&signed_in.str("token")).await.assert_problem(403, "forbidden");
    app.put_json_as(&admin.token, &format!("/v1/staff/accounts/{}/role", admin.username), &json!({"role": "reviewer"}))
        .await
        .assert_problem(409, "own_staff_account");

    // Logout; lockout after five wrong passwords; a password change ends the other sessions.
    let support = app.staff_member("support").await;
    let second = app.staff_token(&support.username, &support.password).await;
    app.delete_as(&support.token, "/v1/staff/sessions/current").await.assert_status(204);
    other.post_json_as(&support.token, "/v1/support/lookups", &json!({})).await.assert_problem(401, "unauthenticated");
    let new = password();
    let change = |old: &str| json!({"old_password": old, "new_password": new, "new_password_confirmation": new});
    app.post_json_as(&second, "/v1/staff/password", &change("Wrong#Guess1")).await.assert_problem(401, "login_failed");
    let third = app.staff_token(&support.username, &support.password).await;
    app.post_json_as(&second, "/v1/staff/password", &change(&support.password)).await.assert_status(204);
    other.post_json_as(&third, "/v1/support/lookups", &json!({})).await.assert_problem(401, "unauthenticated");
    for _ in 0..5 {
        app.staff_login(&support.username, "Wrong#Guess1").await.assert_problem(401, "login_failed");
    }
    app.staff_login(&support.username, &new).await.assert_problem(423, "account_locked");
}

both_stores!(a_disabled_reviewers_token_is_refused_at_once_by_another_process);

// ---------------------------------------------------------------------------------------------
// Bounded state, client addresses, request ids, reset links
// ---------------------------------------------------------------------------------------------

/// A scripted loop cannot grow an account: at most 10 live sessions (the oldest ends) and 3
/// pending resets (the oldest is withdrawn).
async fn a_scripted_loop_cannot_grow_an_account(app: &mut TestApp) {
    let holder = app.register_account().await;
    let mut tokens = Vec::new();
    for _ in 0..11 {
        tokens.push(app.login_ok(&holder).await);
    }
    app.me(&tokens[0]).await.assert_problem(401, "unauthenticated");
    for token in &tokens[1..] {
        app.me(token).await.assert_status(200);
    }
    let mut resets = Vec::new();
    for _ in 0..4 {
        let reset = app.start_password_reset(&holder).await;
        reset.assert_status(201);
        resets.push(reset.str("reset_id"));
    }
    app.deliver_reset(&resets[0], "sms").await.assert_problem(404, "reset_not_found");
    app.deliver_reset(&resets[3], "sms").await.assert_status(202);
}

both_stores!(a_scripted_loop_cannot_grow_an_account);

/// Only a trusted proxy's `X-Forwarded-For` names the client: the per-address limit counts
/// the address it gives, and ignores what a client wrote further left.
async fn only_a_trusted_proxy_names_the_client(app: &mut TestApp) {
    let from = |forwarded: &str| {
        app.request(reqwest::Method::POST, "/v1/verification-codes")
            .header("x-forwarded-for", forwarded)
            .json(&json!({"purpose": "register", "channel": "sms", "mobile": mobile_number()}))
    };
    for spoofed in ["198.51.100.1, 203.0.113.7", "198.51.100.2, 203.0.113.7", "203.0.113.7"] {
        app.send("a code for 203.0.113.7", from(spoofed)).await.assert_status(202);
    }
    app.send("a fourth for 203.0.113.7", from("198.51.100.3, 203.0.113.7")).await.assert_problem(429, "rate_limited");
    app.send("another client", from("203.0.113.8")).await.assert_status(202);
}

both_stores!(
    only_a_trusted_proxy_names_the_client,
    Settings::defaults().env("SHENFEN_IP_RATE_LIMIT", "3").env("SHENFEN_TRUSTED_PROXIES", "127.0.0.1/32, ::1")
);

/// Without trusted proxies `X-Forwarded-For` is ignored: every request counts for the peer.
async fn an_untrusted_forwarded_for_is_ignored(app: &mut TestApp) {
    for i in 0..3 {
        let request = app
            .request(reqwest::Method::POST, "/v1/verification-codes")
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({"purpose": "register", "channel": "sms", "mobile": mobile_number()}));
        let answer = app.send("a code", request).await;
        if i < 2 {
            answer.assert_status(202);
        } else {
            answer.assert_problem(429, "rate_limited");
        }
    }
}

both_stores!(an_untrusted_forwarded_for_is_ignored, Settings::defaults().env("SHENFEN_IP_RATE_LIMIT", "2"));

/// A client-sent request id is kept only when it is short and plain; a reset link carries its
/// token in the fragment; `/metrics` leaves the public port when it has one of its own.
async fn request_ids_reset_links_and_the_metrics_port(app: &mut TestApp) {
    let kept = app.send_with_request_id(reqwest::Method::GET, "/healthz", None, None, "client-id_1.2").await;
    assert_eq!(kept.header("x-request-id"), Some("client-id_1.2"));
    let long = "x".repeat(65);
    for bad in [long.as_str(), "id with spaces", "<script>"] {
        let request = app.request(reqwest::Method::GET, "/healthz").header("x-request-id", bad);
        let answer = app.send("a bad request id", request).await;
        let id = answer.header("x-request-id").unwrap_or_default().to_string();
        assert!(!id.is_empty() && id != bad, "a new id replaces {bad:?}: {id:?}");
    }

    let holder = app.register_account().await;
    let reset = app.start_password_reset(&holder).await;
    app.deliver_reset(&reset.str("reset_id"), "email").await.assert_status(202);
    let message = app.wait_for_message(&holder.email, "reset_password").await;
    let link = message.link.clone().unwrap_or_default();
    assert!(link.contains("#reset_id=") && link.contains("&token=") && !link.contains('?'), "{link}");

    app.get("/metrics").await.assert_problem(404, "not_found");
}

both_stores!(
    request_ids_reset_links_and_the_metrics_port,
    Settings::defaults().env("SHENFEN_METRICS_LISTEN", "127.0.0.1:0")
);

/// A claimant's proof stays with the reviewer after the blob sweeper's grace period (the
/// photos of a refused second proof are swept; the proof's are referenced by the claim stream).
async fn a_claims_proof_photos_outlive_the_sweepers_grace_period(app: &mut TestApp) {
    let holder = app.register_account().await;
    let (_, token, claimant) = open_claim(app, &holder).await;
    let proof = submit_proof(app, &token, &claimant).await;
    proof.assert_status(201);
    let review_id = proof.str("review_id");
    let stored = crate::integrity::stored_blobs(app);
    let refused = ReviewApplication::for_registration(&claimant, &claimant.name);
    app.post_multipart_as(&token, "/v1/claims/current/manual-review", refused.form()).await.assert_status(409);
    assert_eq!(crate::integrity::stored_blobs(app), stored + 3, "the refused proof's photos were stored");

    let swept = async {
        while crate::integrity::stored_blobs(app) != stored {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), swept).await.expect("the refused photos were swept");
    let reviewer = app.staff_member("reviewer").await;
    for which in ["front", "back", "handheld"] {
        app.review_photo(&reviewer.token, &review_id, which).await.assert_status(200);
    }
}
both_stores!(
    a_claims_proof_photos_outlive_the_sweepers_grace_period,
    Settings::defaults().env("SHENFEN_BLOB_GRACE_SECONDS", "2")
);

/// A claimant's proof is a manual review like any other: once decided (here rejected), its
/// photos are deleted after the retention period, and the claimant is forgotten (the claim's
/// key destroyed, its token dead), recorded in the claim stream.
async fn a_decided_claim_forgets_its_claimant_and_photos_when_their_retention_ends(app: &mut TestApp) {
    let app: &TestApp = app;
    let holder = app.register_account().await;
    let (claim_id, token, claimant) = open_claim(app, &holder).await;
    let proof = submit_proof(app, &token, &claimant).await;
    proof.assert_status(201);
    let review_id = proof.str("review_id");
    let reviewer = app.staff_member("reviewer").await;
    // Pending: kept however long it waits.
    app.review_photo(&reviewer.token, &review_id, "front").await.assert_status(200);
    app.claim_review(&reviewer.token, &review_id).await.assert_status(200);
    app.decide_review(&reviewer.token, &review_id, "reject", Some("手持照片与证件不符")).await.assert_status(200);

    let photo = || app.review_photo(&reviewer.token, &review_id, "handheld");
    let photo = shenfen_tests::eventually(std::time::Duration::from_secs(20), photo, |p| p.status == 410).await;
    photo.assert_problem(410, "photo_deleted");
    let claim = claim_id.as_str();
    let count = |event_type: &'static str| async move {
        let sql =
            "SELECT count(*) FROM events WHERE aggregate_type = 'claim' AND aggregate_id = $1 AND event_type = $2";
        app.query_i64(sql, &[claim, event_type]).await
    };
    let forgotten =
        shenfen_tests::eventually(std::time::Duration::from_secs(20), || count("Forgotten"), |n| *n == 1).await;
    assert_eq!(forgotten, 1, "the claimant is forgotten once");
    assert!(count("ProofPhotosDeleted").await <= 1);
    // The key is destroyed right after `Forgotten` is recorded (in that order), and stays so.
    let live = || async {
        let sql = "SELECT count(*) FROM subject_keys WHERE subject = $1 AND wrapped IS NOT NULL";
        app.query_i64(sql, &[&claim_id]).await
    };
    let left = shenfen_tests::eventually(std::time::Duration::from_secs(20), live, |n| *n == 0).await;
    assert_eq!(left, 0, "the claim's key is destroyed");
    claim_status(app, &token).await.assert_problem(401, "unauthenticated");
    assert_eq!(live().await, 0, "no key is made for the claim again");
    // The holder still sees that there was a claim, and how it ended.
    let holder_token = app.login_ok(&holder).await;
    let claims = app.get_as(&holder_token, "/v1/me/reregistration-claims").await;
    assert!(claims.text.contains(&claim_id) && claims.text.contains("rejected"), "{}", claims.text);
}
both_stores!(
    a_decided_claim_forgets_its_claimant_and_photos_when_their_retention_ends,
    Settings::defaults().env("SHENFEN_PHOTO_RETENTION_DAYS", "0").env("SHENFEN_HOUSEKEEPING_SECONDS", "1")
);
