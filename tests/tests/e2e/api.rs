//! End-to-end scenarios of the public account API, each run against the real server binary on
//! SQLite and on PostgreSQL (see `both_stores!`). The one test binary for all API tests.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use reqwest::Method;
use serde_json::json;
use shenfen_tests::{
    both_stores, email_address, eventually, masked, mobile_number, openid, password, resident_id_number,
    use_server_binary, ApiResponse, Registered, Registration, Settings, Store, TestApp,
};

/// Starts a server for a scenario, telling the harness where cargo built the binary.
async fn spawn(store: Store, settings: Settings) -> TestApp {
    use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
    TestApp::spawn(store, settings).await
}

fn instant(response: &ApiResponse, field: &str) -> DateTime<Utc> {
    let text = response.str(field);
    DateTime::parse_from_rfc3339(&text)
        .unwrap_or_else(|e| panic!("`{field}` = {text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

fn reset_methods(response: &ApiResponse) -> Vec<(String, String)> {
    response.body["methods"]
        .as_array()
        .unwrap_or_else(|| panic!("no `methods` in {}", response.text))
        .iter()
        .map(|m| (m["method"].as_str().unwrap_or("").to_string(), m["destination"].as_str().unwrap_or("").to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

async fn registration_computes_the_validity_end_and_keeps_a_rare_character_name_intact(app: &TestApp) {
    let mut registration = Registration::resident();
    registration.name = "李𠮷".into();
    registration.period = "10y".into();
    registration.start = "2020-07-01".into();

    let response = app.register(&registration).await;

    response.assert_status(201);
    let account_id = response.str("account_id");
    assert!(!account_id.is_empty());
    assert_eq!(response.str("validity.period"), "10y");
    assert_eq!(response.str("validity.start"), "2020-07-01");
    assert_eq!(response.str("validity.end"), "2030-07-01");

    let login = app.login(&registration.document_number, &registration.password).await;
    login.assert_status(201);
    let me = app.me(&login.str("token")).await;
    me.assert_status(200);
    assert_eq!(me.str("account_id"), account_id);
    assert_eq!(me.str("document_type"), "resident_id_card");
    assert_eq!(me.str("document_number_masked"), masked(&registration.document_number));
    assert!(me.str("document_number_masked").starts_with(&registration.document_number[..2]));
    assert_eq!(me.str("document_number_masked").matches('*').count(), 14);
    assert_eq!(me.str("name"), "李𠮷", "the name outside the BMP must round-trip intact");
    assert_eq!(me.body["profile_complete"], json!(false));
    assert_eq!(me.str("real_name_status"), "unverified");
    assert!(!me.text.contains(&registration.document_number), "GET /v1/me must not show the full number");
    let quotas = &me.body["quotas"];
    assert!(quotas["real_name_attempts_left_today"].is_number(), "quotas: {}", me.text);
    assert!(quotas["manual_review_applications_left_in_period"].is_number(), "quotas: {}", me.text);
    assert!(quotas["period"]["start"].is_string() && quotas["period"]["end"].is_string(), "quotas: {}", me.text);
}
both_stores!(registration_computes_the_validity_end_and_keeps_a_rare_character_name_intact);

async fn a_validity_starting_on_29_february_ends_on_28_february(app: &TestApp) {
    let mut registration = Registration::resident();
    registration.period = "5y".into();
    registration.start = "2024-02-29".into();

    let response = app.register(&registration).await;

    response.assert_status(201);
    assert_eq!(response.str("validity.end"), "2029-02-28");
}
both_stores!(a_validity_starting_on_29_february_ends_on_28_february);

async fn registration_lists_every_bad_field_at_once(app: &TestApp) {
    let registration = Registration::resident();
    let mut bad_number = registration.document_number.clone();
    let last = bad_number.pop().unwrap();
    bad_number.push(if last == '0' { '1' } else { '0' });
    let mut body = registration.body("000000");
    body["document_number"] = json!(bad_number);
    body["name"] = json!("张3");
    body["password_confirmation"] = json!(format!("{}x", registration.password));
    body["email"] = json!("someone＠example.com");
    body["mobile"] = json!("12345");

    let response = app.post_json("/v1/accounts", &body).await;

    response.assert_status(422);
    let errors = response.field_errors();
    response
        .assert_field_error("document_number", "invalid_document_number")
        .assert_field_error("name", "invalid_name")
        .assert_field_error("email", "invalid_email")
        .assert_field_error("mobile", "invalid_mobile");
    assert!(
        errors.iter().any(|(f, c)| c == "password_mismatch" && (f == "password_confirmation" || f == "password")),
        "password_mismatch missing from {errors:?}"
    );
    response.assert_problem(422, &errors[0].1);

    // A password that is weak or contains the document number is refused as such.
    let mut body = registration.body("000000");
    body["password"] = json!("password");
    body["password_confirmation"] = json!("password");
    app.post_json("/v1/accounts", &body).await.assert_field_error("password", "weak_password");
    let containing = format!("A#{}", registration.document_number);
    body["password"] = json!(containing);
    body["password_confirmation"] = json!(containing);
    app.post_json("/v1/accounts", &body).await.assert_field_error("password", "weak_password");

    // Nothing was registered.
    app.login(&registration.document_number, &registration.password).await.assert_problem(401, "login_failed");
}
both_stores!(registration_lists_every_bad_field_at_once);

async fn each_kind_of_bad_registration_data_gets_its_own_code(app: &TestApp) {
    let refused = |body: serde_json::Value, code: &'static str| async move {
        let response = app.post_json("/v1/accounts", &body).await;
        response.assert_status(422);
        let errors = response.field_errors();
        assert!(errors.iter().any(|(_, c)| c == code), "expected {code} among {errors:?}\n{}", response.what);
        errors
    };
    let base = Registration::resident();

    // A permit number typed with the two renewal digits the card prints.
    let mut body = Registration::hk_macau_permit().body("000000");
    body["document_number"] = json!(format!("{}01", Registration::hk_macau_permit().document_number));
    refused(body, "invalid_document_number").await;

    // A resident number whose birth date is in the future.
    let mut body = base.body("000000");
    body["document_number"] = json!(shenfen_tests::resident_id_number_born("20990101"));
    refused(body, "invalid_document_number").await;

    // Long-term validity for a holder younger than 46.
    let mut body = base.body("000000");
    body["validity"] = json!({"period": "long_term", "start": "2021-03-15"});
    refused(body, "long_term_not_allowed").await;

    // A document that has already expired.
    let mut body = base.body("000000");
    body["validity"] = json!({"period": "10y", "start": "2010-01-01"});
    refused(body, "document_expired").await;

    // qq.com addresses take digits only before the @.
    let mut body = base.body("000000");
    body["email"] = json!("alias.name@qq.com");
    refused(body, "invalid_email").await;

    // A name with a symbol, and a one-character name.
    let mut body = base.body("000000");
    body["name"] = json!("王#明");
    refused(body, "invalid_name").await;
    let mut body = base.body("000000");
    body["name"] = json!(" 王 ");
    refused(body, "invalid_name").await;

    // Full-width dots in an e-mail address.
    let mut body = base.body("000000");
    body["email"] = json!("someone@example．com");
    refused(body, "invalid_email").await;

    // Passwords: a character outside the allowed set, no special character, too long.
    for weak in ["Zq7#mount ain", "Zq7mountain", "Zq7#mountainmountainmountainmount"] {
        let mut body = base.body("000000");
        body["password"] = json!(weak);
        body["password_confirmation"] = json!(weak);
        let errors = refused(body, "weak_password").await;
        assert!(errors.iter().any(|(f, c)| f == "password" && c == "weak_password"), "{weak:?}: {errors:?}");
    }
}
both_stores!(each_kind_of_bad_registration_data_gets_its_own_code);

async fn names_with_a_middle_dot_or_latin_letters_and_long_term_documents_are_accepted(app: &TestApp) {
    let dotted = Registration { name: "阿依古丽·买买提".into(), ..Registration::resident() };
    app.register(&dotted).await.assert_status(201);

    let latin = Registration { name: "Chan Tai Man".into(), ..Registration::hk_macau_permit() };
    app.register(&latin).await.assert_status(201);
    let token = app
        .login_ok(&Registered {
            document_type: latin.document_type.clone(),
            document_number: latin.document_number.clone(),
            name: latin.name.clone(),
            password: latin.password.clone(),
            mobile: latin.mobile.clone(),
            email: latin.email.clone(),
            account_id: String::new(),
        })
        .await;
    assert_eq!(app.me(&token).await.str("name"), "Chan Tai Man");

    // Born 1965, 49 on the start date: long-term validity is allowed.
    let older = Registration {
        document_number: shenfen_tests::resident_id_number_born("19650301"),
        period: "long_term".into(),
        start: "2015-01-01".into(),
        ..Registration::resident()
    };
    let response = app.register(&older).await;
    response.assert_status(201);
    assert_eq!(response.str("validity.period"), "long_term");
}
both_stores!(names_with_a_middle_dot_or_latin_letters_and_long_term_documents_are_accepted);

async fn registration_without_accepting_the_agreement_is_refused(app: &TestApp) {
    let registration = Registration::resident();
    let code = app.register_code(&registration.mobile).await;
    let mut body = registration.body(&code);
    body["agreement_accepted"] = json!(false);

    let response = app.post_json("/v1/accounts", &body).await;

    response.assert_problem(422, "agreement_required").assert_field_error("agreement_accepted", "agreement_required");
    app.login(&registration.document_number, &registration.password).await.assert_problem(401, "login_failed");
}
both_stores!(registration_without_accepting_the_agreement_is_refused);

async fn registration_with_a_wrong_verification_code_is_refused(app: &TestApp) {
    let registration = Registration::resident();
    let code = app.register_code(&registration.mobile).await;
    let wrong = if code == "123456" { "654321" } else { "123456" };

    let response = app.post_json("/v1/accounts", &registration.body(wrong)).await;

    response
        .assert_problem(422, "invalid_verification_code")
        .assert_field_error("verification.code", "invalid_verification_code");
}
both_stores!(registration_with_a_wrong_verification_code_is_refused);

async fn a_verification_code_works_once_and_only_for_its_mobile(app: &TestApp) {
    let first = Registration::resident();
    let code = app.register_code(&first.mobile).await;

    // Another mobile cannot use it.
    let elsewhere = Registration { mobile: mobile_number(), ..first.clone() };
    app.post_json("/v1/accounts", &elsewhere.body(&code))
        .await
        .assert_field_error("verification.code", "invalid_verification_code");

    app.post_json("/v1/accounts", &first.body(&code)).await.assert_status(201);

    // Spent: a second document cannot register with the same code.
    let second = Registration { mobile: first.mobile.clone(), ..Registration::resident() };
    app.post_json("/v1/accounts", &second.body(&code))
        .await
        .assert_field_error("verification.code", "invalid_verification_code");
}
both_stores!(a_verification_code_works_once_and_only_for_its_mobile);

async fn a_code_is_spent_after_five_wrong_entries(app: &TestApp) {
    let registration = Registration::resident();
    let code = app.register_code(&registration.mobile).await;
    let wrong = if code == "123456" { "654321" } else { "123456" };
    for _ in 0..5 {
        app.post_json("/v1/accounts", &registration.body(wrong))
            .await
            .assert_field_error("verification.code", "invalid_verification_code");
    }

    app.post_json("/v1/accounts", &registration.body(&code))
        .await
        .assert_field_error("verification.code", "invalid_verification_code");
}
both_stores!(a_code_is_spent_after_five_wrong_entries);

async fn a_second_code_for_the_same_mobile_within_a_minute_is_refused(app: &TestApp) {
    let mobile = mobile_number();
    let first = app.send_code("register", &mobile).await;
    first.assert_status(202);
    instant(&first, "expires_at");
    instant(&first, "resend_after");

    app.send_code("register", &mobile).await.assert_problem(429, "code_rate_limited");
}
both_stores!(a_second_code_for_the_same_mobile_within_a_minute_is_refused);

async fn ten_concurrent_code_requests_for_one_mobile_send_exactly_one_code(app: &TestApp) {
    let mobile = mobile_number();

    let answers = join_all((0..10).map(|_| app.send_code("register", &mobile))).await;

    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "exactly one 202; statuses {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 9, "nine 429; statuses {statuses:?}");
    app.wait_for_message(&mobile, "register").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = app.hooks.received().iter().filter(|m| m["to"] == json!(mobile)).count();
    assert_eq!(sent, 1, "one message to the mobile");
}
both_stores!(ten_concurrent_code_requests_for_one_mobile_send_exactly_one_code);

async fn a_document_cannot_be_registered_twice(app: &TestApp) {
    let account = app.register_account().await;
    let mut again = Registration::resident();
    again.document_number = account.document_number.clone();

    let response = app.register(&again).await;

    response.assert_problem(409, "document_already_registered");
    // The first holder's password still works, the second one's does not.
    app.login_ok(&account).await;
    app.login(&account.document_number, &again.password).await.assert_problem(401, "login_failed");
}
both_stores!(a_document_cannot_be_registered_twice);

async fn a_lower_case_x_is_the_same_document_as_an_upper_case_x(app: &TestApp) {
    let number = std::iter::repeat_with(resident_id_number).find(|n| n.ends_with('X')).unwrap();
    let mut registration = Registration::resident();
    registration.document_number = number.to_lowercase();
    app.register(&registration).await.assert_status(201);

    app.login(&number, &registration.password).await.assert_status(201);
    let mut again = Registration::resident();
    again.document_number = number.clone();
    app.register(&again).await.assert_problem(409, "document_already_registered");
}
both_stores!(a_lower_case_x_is_the_same_document_as_an_upper_case_x);

async fn twenty_concurrent_registrations_of_one_document_create_exactly_one_account(app: &TestApp) {
    let base = Registration::resident();
    let registrations: Vec<Registration> =
        (0..20).map(|_| Registration { mobile: mobile_number(), email: email_address(), ..base.clone() }).collect();
    let sent = join_all(registrations.iter().map(|r| app.send_code("register", &r.mobile))).await;
    for response in &sent {
        response.assert_status(202);
    }
    let mut bodies = Vec::new();
    for r in &registrations {
        let code = app.wait_for_message(&r.mobile, "register").await.code();
        bodies.push(r.body(&code));
    }

    let answers = join_all(bodies.iter().map(|body| app.post_json("/v1/accounts", body))).await;

    let created: Vec<&ApiResponse> = answers.iter().filter(|a| a.status.as_u16() == 201).collect();
    let refused: Vec<&ApiResponse> = answers.iter().filter(|a| a.status.as_u16() == 409).collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(created.len(), 1, "exactly one 201; statuses {statuses:?}");
    assert_eq!(refused.len(), 19, "nineteen 409; statuses {statuses:?}");
    for answer in refused {
        answer.assert_problem(409, "document_already_registered");
    }
    let login = app.login(&base.document_number, &base.password).await;
    login.assert_status(201);
    assert_eq!(login.str("account_id"), created[0].str("account_id"));
}
both_stores!(twenty_concurrent_registrations_of_one_document_create_exactly_one_account);

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

async fn login_works_with_the_right_password_and_fails_alike_for_any_wrong_part(app: &TestApp) {
    let account = app.register_account().await;

    let login = app.login(&account.document_number, &account.password).await;
    login.assert_status(201);
    assert!(!login.str("token").is_empty());
    assert!(instant(&login, "expires_at") > Utc::now());
    assert_eq!(login.str("account_id"), account.account_id);
    assert_eq!(login.body["profile_complete"], json!(false));
    assert_eq!(login.str("real_name_status"), "unverified");
    let token = login.str("token");

    let typed = app
        .post_json(
            "/v1/sessions",
            &json!({"document_number": account.document_number, "password": account.password, "document_type": "resident_id_card"}),
        )
        .await;
    typed.assert_status(201);

    let wrong_password = app.login(&account.document_number, "Zq7#wrongpass1").await;
    wrong_password.assert_problem(401, "login_failed");
    let unknown = app.login(&resident_id_number(), &account.password).await;
    unknown.assert_problem(401, "login_failed");
    assert_eq!(wrong_password.body["detail"], unknown.body["detail"], "any wrong part gives the same answer");
    for field in ["type", "title", "detail"] {
        assert!(wrong_password.body[field].is_string(), "problem field `{field}`: {}", wrong_password.text);
    }
    let english = wrong_password.str("detail");
    assert!(english.is_ascii(), "detail in English by default: {english:?}");
    let chinese = app
        .send(
            "POST /v1/sessions (Accept-Language: zh-CN)",
            app.request(Method::POST, "/v1/sessions")
                .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")
                .json(&json!({"document_number": account.document_number, "password": "Zq7#wrongpass1"})),
        )
        .await;
    chinese.assert_problem(401, "login_failed");
    let detail = chinese.str("detail");
    assert!(detail.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "detail in Chinese: {detail:?}");

    app.me(&token).await.assert_status(200);
    app.get("/v1/me").await.assert_problem(401, "unauthenticated");
    app.me("not-a-token").await.assert_problem(401, "unauthenticated");

    app.delete_as(&token, "/v1/sessions/current").await.assert_status(204);
    app.me(&token).await.assert_problem(401, "unauthenticated");
    app.me(&typed.str("token")).await.assert_status(200);
}
both_stores!(login_works_with_the_right_password_and_fails_alike_for_any_wrong_part);

async fn five_wrong_passwords_lock_the_account_even_for_the_right_one(app: &TestApp) {
    let account = app.register_account().await;
    for _ in 0..5 {
        app.login(&account.document_number, "Zq7#wrongpass1").await.assert_problem(401, "login_failed");
    }

    let response = app.login(&account.document_number, &account.password).await;

    response.assert_problem(423, "account_locked");
    let until = instant(&response, "locked_until");
    assert!(until > Utc::now() + chrono::Duration::minutes(10), "locked for about 15 minutes, until {until}");
    assert!(until < Utc::now() + chrono::Duration::minutes(16), "locked for about 15 minutes, until {until}");
}
both_stores!(five_wrong_passwords_lock_the_account_even_for_the_right_one);

async fn twenty_concurrent_wrong_passwords_give_exactly_five_login_failures(app: &TestApp) {
    let account = app.register_account().await;

    let answers = join_all((0..20).map(|_| app.login(&account.document_number, "Zq7#wrongpass1"))).await;

    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "exactly five 401; statuses {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 423).count(), 15, "the rest 423; statuses {statuses:?}");
    app.login(&account.document_number, &account.password).await.assert_problem(423, "account_locked");
}
both_stores!(twenty_concurrent_wrong_passwords_give_exactly_five_login_failures);

async fn a_successful_login_resets_the_count_of_failures(app: &TestApp) {
    let account = app.register_account().await;
    for _ in 0..4 {
        app.login(&account.document_number, "Zq7#wrongpass1").await.assert_problem(401, "login_failed");
    }
    app.login_ok(&account).await;
    for _ in 0..4 {
        app.login(&account.document_number, "Zq7#wrongpass1").await.assert_problem(401, "login_failed");
    }

    app.login_ok(&account).await;
}
both_stores!(a_successful_login_resets_the_count_of_failures);

async fn a_locked_account_opens_again_when_the_lock_expires(app: &TestApp) {
    let account = app.register_account().await;
    for _ in 0..5 {
        app.login(&account.document_number, "Zq7#wrongpass1").await.assert_problem(401, "login_failed");
    }
    let locked = app.login(&account.document_number, &account.password).await;
    locked.assert_problem(423, "account_locked");
    let until = instant(&locked, "locked_until");
    assert!(until <= Utc::now() + chrono::Duration::seconds(3), "a 2 s lock, until {until}");

    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500);
    tokio::time::sleep(wait.min(Duration::from_secs(4))).await;

    app.login(&account.document_number, &account.password).await.assert_status(201);
}
both_stores!(a_locked_account_opens_again_when_the_lock_expires, Settings::lockout_seconds(2));

// ---------------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------------

async fn a_resident_completes_the_profile_by_giving_the_ethnicity(app: &TestApp) {
    let account = app.register_account().await;
    let token = app.login_ok(&account).await;
    assert_eq!(app.me(&token).await.body["profile_complete"], json!(false));

    let missing = app.put_json_as(&token, "/v1/me/profile", &json!({})).await;
    missing.assert_status(422);
    assert!(missing.field_errors().iter().any(|(f, _)| f == "ethnicity"), "ethnicity must be listed: {}", missing.text);

    app.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "01"})).await.assert_status(200);

    assert_eq!(app.me(&token).await.body["profile_complete"], json!(true));
    let login = app.login(&account.document_number, &account.password).await;
    login.assert_status(201);
    assert_eq!(login.body["profile_complete"], json!(true));
}
both_stores!(a_resident_completes_the_profile_by_giving_the_ethnicity);

async fn a_permit_holder_must_give_every_permit_field(app: &TestApp) {
    // Hong Kong/Macau permit: gender, birth date, ethnicity and the local identity number.
    let permit = app.register_account_with(Registration::hk_macau_permit()).await;
    app.login(&permit.document_number, &permit.password).await.assert_status(201);
    let token = app.login_ok(&permit).await;
    assert_eq!(app.me(&token).await.body["profile_complete"], json!(false));

    let partial = app.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "01", "gender": "male"})).await;
    partial.assert_status(422);
    let fields: Vec<String> = partial.field_errors().into_iter().map(|(f, _)| f).collect();
    assert!(fields.contains(&"birth_date".to_string()), "birth_date must be listed: {fields:?}");
    assert!(fields.contains(&"local_id_number".to_string()), "local_id_number must be listed: {fields:?}");
    assert_eq!(app.me(&token).await.body["profile_complete"], json!(false));

    let full = json!({"ethnicity": "01", "gender": "male", "birth_date": "1990-05-20", "local_id_number": "A1234563"});
    app.put_json_as(&token, "/v1/me/profile", &full).await.assert_status(200);
    assert_eq!(app.me(&token).await.body["profile_complete"], json!(true));

    // Residence permit: also the matching travel-permit number.
    let registration = Registration::hmt_residence_permit();
    let number = registration.document_number.clone();
    let birth_date = format!("{}-{}-{}", &number[6..10], &number[10..12], &number[12..14]);
    let resident = app.register_account_with(registration).await;
    let token = app.login_ok(&resident).await;
    let without_permit =
        json!({"ethnicity": "01", "gender": "female", "birth_date": birth_date, "local_id_number": "A1234563"});
    let response = app.put_json_as(&token, "/v1/me/profile", &without_permit).await;
    response.assert_status(422);
    assert!(
        response.field_errors().iter().any(|(f, _)| f == "permit_number"),
        "permit_number must be listed: {}",
        response.text
    );
    let mut with_permit = without_permit.clone();
    with_permit["permit_number"] = json!("H87654321");
    app.put_json_as(&token, "/v1/me/profile", &with_permit).await.assert_status(200);
    assert_eq!(app.me(&token).await.body["profile_complete"], json!(true));
}
both_stores!(a_permit_holder_must_give_every_permit_field);

async fn the_name_and_document_number_cannot_be_edited_in_the_profile(app: &TestApp) {
    let account = app.register_account().await;
    let token = app.login_ok(&account).await;

    app.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "01", "name": "王五"}))
        .await
        .assert_problem(422, "field_not_modifiable")
        .assert_field_error("name", "field_not_modifiable");
    app.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "01", "document_number": resident_id_number()}))
        .await
        .assert_problem(422, "field_not_modifiable")
        .assert_field_error("document_number", "field_not_modifiable");

    let me = app.me(&token).await;
    assert_eq!(me.str("name"), account.name);
    assert_eq!(me.str("document_number_masked"), masked(&account.document_number));
}
both_stores!(the_name_and_document_number_cannot_be_edited_in_the_profile);

// ---------------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------------

async fn changing_the_password_ends_the_other_sessions(app: &TestApp) {
    let account = app.register_account().await;
    let this_session = app.login_ok(&account).await;
    let other_session = app.login_ok(&account).await;
    let new_password = password();

    let wrong_old = json!({"old_password": "Zq7#wrongpass1", "new_password": new_password, "new_password_confirmation": new_password});
    app.post_json_as(&this_session, "/v1/me/password", &wrong_old).await.assert_problem(401, "login_failed");
    let mismatch = json!({"old_password": account.password, "new_password": new_password, "new_password_confirmation": password()});
    app.post_json_as(&this_session, "/v1/me/password", &mismatch).await.assert_problem(422, "password_mismatch");

    let change = json!({"old_password": account.password, "new_password": new_password, "new_password_confirmation": new_password});
    app.post_json_as(&this_session, "/v1/me/password", &change).await.assert_status(204);

    app.me(&this_session).await.assert_status(200);
    app.me(&other_session).await.assert_problem(401, "unauthenticated");
    app.login(&account.document_number, &account.password).await.assert_problem(401, "login_failed");
    app.login(&account.document_number, &new_password).await.assert_status(201);
}
both_stores!(changing_the_password_ends_the_other_sessions);

/// After a completed reset: the new password logs in, the old one fails, `session` has ended.
async fn assert_password_was_reset(app: &TestApp, account: &Registered, new_password: &str, session: &str) {
    app.login(&account.document_number, new_password).await.assert_status(201);
    app.login(&account.document_number, &account.password).await.assert_problem(401, "login_failed");
    app.me(session).await.assert_problem(401, "unauthenticated");
}

async fn a_password_can_be_reset_by_sms(app: &TestApp) {
    let account = app.register_account().await;
    let session = app.login_ok(&account).await;

    let reset = app.start_password_reset(&account).await;
    reset.assert_status(201);
    let reset_id = reset.str("reset_id");
    let methods = reset_methods(&reset);
    let sms = methods.iter().find(|(m, _)| m == "sms").unwrap_or_else(|| panic!("no sms in {methods:?}"));
    assert_ne!(sms.1, account.mobile, "the mobile is shown masked");
    assert!(sms.1.starts_with(&account.mobile[..3]) && sms.1.ends_with(&account.mobile[7..]), "masked {:?}", sms.1);
    assert!(sms.1.contains('*'), "masked {:?}", sms.1);
    let email = methods.iter().find(|(m, _)| m == "email").unwrap_or_else(|| panic!("no email in {methods:?}"));
    assert_ne!(email.1, account.email, "the e-mail is shown masked");
    assert!(email.1.ends_with("@example.com") && email.1.contains('*'), "masked {:?}", email.1);
    assert!(!methods.iter().any(|(m, _)| m == "wechat"), "no wechat before binding: {methods:?}");

    app.deliver_reset(&reset_id, "sms").await.assert_status(202);
    let message = app.wait_for_message(&account.mobile, "reset_password").await;
    assert_eq!(message.channel, "sms");
    app.deliver_reset(&reset_id, "sms").await.assert_status(429);
    let new_password = password();
    app.complete_reset(&reset_id, &message.code(), &new_password).await.assert_status(204);

    assert_password_was_reset(app, &account, &new_password, &session).await;
    // The code was single use.
    app.complete_reset(&reset_id, &message.code(), &password()).await.assert_problem(400, "invalid_or_expired_secret");
}
both_stores!(a_password_can_be_reset_by_sms);

async fn a_password_can_be_reset_by_an_email_link(app: &TestApp) {
    let account = app.register_account().await;
    let session = app.login_ok(&account).await;
    let reset = app.start_password_reset(&account).await;
    reset.assert_status(201);
    let reset_id = reset.str("reset_id");

    app.deliver_reset(&reset_id, "email").await.assert_status(202);
    let message = app.wait_for_message(&account.email, "reset_password").await;
    assert_eq!(message.channel, "email");
    let token = message.token.clone().unwrap_or_else(|| panic!("no token in {message:?}"));
    let link = message.link.clone().unwrap_or_else(|| panic!("no link in {message:?}"));
    assert!(link.contains(&token), "the link {link:?} carries the token");
    app.complete_reset(&reset_id, &token, "weakpassword").await.assert_status(422);
    let new_password = password();
    app.complete_reset(&reset_id, &token, &new_password).await.assert_status(204);

    assert_password_was_reset(app, &account, &new_password, &session).await;
    app.complete_reset(&reset_id, &token, &password()).await.assert_problem(400, "invalid_or_expired_secret");
}
both_stores!(a_password_can_be_reset_by_an_email_link);

async fn a_password_can_be_reset_over_wechat_once_bound(app: &TestApp) {
    let account = app.register_account().await;
    let session = app.login_ok(&account).await;
    let openid = openid();
    app.bind_wechat(&session, &account.password, &openid).await.assert_status(204);

    let reset = app.start_password_reset(&account).await;
    reset.assert_status(201);
    let methods = reset_methods(&reset);
    assert!(methods.iter().any(|(m, _)| m == "wechat"), "wechat offered once bound: {methods:?}");
    let reset_id = reset.str("reset_id");
    app.deliver_reset(&reset_id, "wechat").await.assert_status(202);
    let message = app.wait_for_message(&openid, "reset_password").await;
    assert_eq!(message.channel, "wechat");
    let new_password = password();
    app.complete_reset(&reset_id, &message.code(), &new_password).await.assert_status(204);

    assert_password_was_reset(app, &account, &new_password, &session).await;

    // Unbound again, WeChat is no longer offered.
    let account = Registered { password: new_password, ..account };
    let session = app.login_ok(&account).await;
    app.send(
        "DELETE /v1/me/wechat",
        app.request(Method::DELETE, "/v1/me/wechat").bearer_auth(&session).json(&json!({"openid": openid})),
    )
    .await
    .assert_status(204);
    let reset = app.start_password_reset(&account).await;
    reset.assert_status(201);
    let methods = reset_methods(&reset);
    assert!(!methods.iter().any(|(m, _)| m == "wechat"), "no wechat once unbound: {methods:?}");
    app.deliver_reset(&reset.str("reset_id"), "wechat").await.assert_problem(422, "method_not_available");
}
both_stores!(a_password_can_be_reset_over_wechat_once_bound);

async fn a_wrong_reset_code_is_refused(app: &TestApp) {
    let account = app.register_account().await;
    let reset = app.start_password_reset(&account).await;
    reset.assert_status(201);
    let reset_id = reset.str("reset_id");
    app.deliver_reset(&reset_id, "sms").await.assert_status(202);
    let code = app.wait_for_message(&account.mobile, "reset_password").await.code();
    let wrong: String = code
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '9' {
                    '1'
                } else {
                    '9'
                }
            } else {
                c
            }
        })
        .collect();
    let new_password = password();

    app.complete_reset(&reset_id, &wrong, &new_password).await.assert_problem(400, "invalid_or_expired_secret");
    app.login(&account.document_number, &new_password).await.assert_problem(401, "login_failed");

    // One wrong entry does not spend the right code.
    app.complete_reset(&reset_id, &code, &new_password).await.assert_status(204);
    app.login(&account.document_number, &new_password).await.assert_status(201);
}
both_stores!(a_wrong_reset_code_is_refused);

async fn a_reset_code_used_by_ten_concurrent_completions_works_once(app: &TestApp) {
    let account = app.register_account().await;
    let reset = app.start_password_reset(&account).await;
    reset.assert_status(201);
    let reset_id = reset.str("reset_id");
    app.deliver_reset(&reset_id, "sms").await.assert_status(202);
    let code = app.wait_for_message(&account.mobile, "reset_password").await.code();
    let passwords: Vec<String> = (0..10).map(|_| password()).collect();

    let answers = join_all(passwords.iter().map(|p| app.complete_reset(&reset_id, &code, p))).await;

    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "exactly one 204; statuses {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 9, "nine 400; statuses {statuses:?}");
    let winner = statuses.iter().position(|s| *s == 204).unwrap();
    app.login(&account.document_number, &passwords[winner]).await.assert_status(201);
}
both_stores!(a_reset_code_used_by_ten_concurrent_completions_works_once);

async fn a_reset_for_an_unknown_or_mismatched_holder_is_refused(app: &TestApp) {
    let account = app.register_account().await;
    let wrong_name = Registered { name: "李四".into(), ..account.clone() };
    app.start_password_reset(&wrong_name).await.assert_problem(404, "account_not_found");
    let unknown = Registered { document_number: resident_id_number(), ..account.clone() };
    app.start_password_reset(&unknown).await.assert_problem(404, "account_not_found");
}
both_stores!(a_reset_for_an_unknown_or_mismatched_holder_is_refused);

// ---------------------------------------------------------------------------------------------
// Legacy accounts and re-registration
// ---------------------------------------------------------------------------------------------

async fn a_legacy_account_must_register_again(app: &mut TestApp) {
    let number = resident_id_number();
    let name = "赵老师";
    app.stop().await;
    app.import_legacy(&format!(
        "document_type,document_number,name,registered_at\nresident_id_card,{number},{name},2018-06-01\n"
    ))
    .await;
    app.start().await;

    app.login(&number, &password()).await.assert_problem(403, "legacy_account_must_reregister");
    let legacy = Registered {
        document_type: "resident_id_card".into(),
        document_number: number.clone(),
        name: name.into(),
        password: String::new(),
        mobile: String::new(),
        email: String::new(),
        account_id: String::new(),
    };
    app.start_password_reset(&legacy).await.assert_problem(403, "legacy_account_must_reregister");

    let registration = Registration { document_number: number.clone(), name: name.into(), ..Registration::resident() };
    app.register(&registration).await.assert_status(201);
    app.login(&number, &registration.password).await.assert_status(201);
}
both_stores!(a_legacy_account_must_register_again);

async fn a_legacy_import_while_the_server_runs_takes_effect(app: &TestApp) {
    let number = resident_id_number();
    app.import_legacy(&format!(
        "document_type,document_number,name,registered_at\nresident_id_card,{number},钱老师,2017-09-01\n"
    ))
    .await;

    let any_password = password();
    let login = eventually(Duration::from_secs(5), || app.login(&number, &any_password), |r| r.status == 403).await;
    login.assert_problem(403, "legacy_account_must_reregister");
    let mut again = Registration::resident();
    again.document_number = number.clone();
    again.name = "钱老师".into();
    app.register(&again).await.assert_status(201);
    app.login(&number, &again.password).await.assert_status(201);
}
both_stores!(a_legacy_import_while_the_server_runs_takes_effect);

async fn reregistration_of_an_unknown_document_is_refused(app: &TestApp) {
    let registration = Registration::resident();
    let code = app.register_code(&registration.mobile).await;

    let response = app.post_json("/v1/accounts/reregistration", &registration.body(&code)).await;

    response.assert_problem(404, "account_not_found");
}
both_stores!(reregistration_of_an_unknown_document_is_refused);

// ---------------------------------------------------------------------------------------------
// Durability and operations
// ---------------------------------------------------------------------------------------------

async fn a_killed_server_restarts_without_losing_accounts_or_sessions(app: &mut TestApp) {
    let account = app.register_account().await;
    let session = app.login_ok(&account).await;
    let token = app.login_ok(&account).await;
    app.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "01"})).await.assert_status(200);
    app.delete_as(&session, "/v1/sessions/current").await.assert_status(204);

    app.restart().await;

    let login = app.login(&account.document_number, &account.password).await;
    login.assert_status(201);
    assert_eq!(login.str("account_id"), account.account_id);
    let me = app.me(&token).await;
    me.assert_status(200);
    assert_eq!(me.str("account_id"), account.account_id);
    assert_eq!(me.body["profile_complete"], json!(true));
    app.me(&session).await.assert_problem(401, "unauthenticated");
    // The restarted server still sends codes and registers.
    app.register_account().await;
}
both_stores!(a_killed_server_restarts_without_losing_accounts_or_sessions);

async fn bad_requests_get_problem_json_answers(app: &TestApp) {
    let assert_problem = |response: &ApiResponse, status: u16| {
        response.assert_status(status);
        assert!(
            response.content_type().starts_with("application/problem+json"),
            "{}: content-type {:?}, body {}",
            response.what,
            response.content_type(),
            response.text
        );
        assert!(response.body["code"].is_string(), "{}: a problem has a code: {}", response.what, response.text);
        assert_eq!(response.body["status"], json!(status), "{}: {}", response.what, response.text);
    };

    let invalid_json = app
        .send(
            "POST /v1/accounts (invalid JSON)",
            app.request(Method::POST, "/v1/accounts").header("content-type", "application/json").body("{not json"),
        )
        .await;
    assert_problem(&invalid_json, 400);

    let wrong_type = app
        .send(
            "POST /v1/accounts (text/plain)",
            app.request(Method::POST, "/v1/accounts").header("content-type", "text/plain").body("hello"),
        )
        .await;
    assert_problem(&wrong_type, 415);

    let mut big = Registration::resident().body("000000");
    big["name"] = json!("长".repeat(30_000));
    let too_large = app.send("POST /v1/accounts (90 KB)", app.request(Method::POST, "/v1/accounts").json(&big)).await;
    assert_problem(&too_large, 413);

    let unknown = app.get("/v1/no-such-thing").await;
    assert_problem(&unknown, 404);

    let wrong_json_type = app.post_json("/v1/sessions", &json!({"document_number": 5, "password": []})).await;
    assert!(
        [400, 422].contains(&wrong_json_type.status.as_u16()),
        "JSON of the wrong shape: {} {}",
        wrong_json_type.status,
        wrong_json_type.text
    );
    assert_problem(&wrong_json_type, wrong_json_type.status.as_u16());
}
both_stores!(bad_requests_get_problem_json_answers);

async fn every_response_carries_a_request_id(app: &TestApp) {
    let echoed =
        app.send("GET /healthz", app.request(Method::GET, "/healthz").header("x-request-id", "e2e-request-42")).await;
    echoed.assert_status(200);
    assert_eq!(echoed.header("x-request-id"), Some("e2e-request-42"));

    let fresh = app.get("/healthz").await;
    assert!(fresh.header("x-request-id").is_some_and(|id| !id.is_empty()), "x-request-id missing");

    let error =
        app.send("GET /v1/me", app.request(Method::GET, "/v1/me").header("x-request-id", "e2e-request-43")).await;
    error.assert_status(401);
    assert_eq!(error.header("x-request-id"), Some("e2e-request-43"));
    let unknown = app.get("/v1/no-such-thing").await;
    assert!(unknown.header("x-request-id").is_some_and(|id| !id.is_empty()), "x-request-id missing on a 404");
}
both_stores!(every_response_carries_a_request_id);

async fn health_readiness_metrics_and_openapi_are_served(app: &TestApp) {
    app.get("/healthz").await.assert_status(200);
    app.get("/readyz").await.assert_status(200);
    app.login(&resident_id_number(), &password()).await.assert_status(401);

    let metrics = app.get("/metrics").await;
    metrics.assert_status(200);
    assert!(metrics.text.contains("shenfen_"), "metrics without shenfen_: {}", metrics.text);

    let openapi = app.get("/openapi.json").await;
    openapi.assert_status(200);
    let paths = openapi.body["paths"].as_object().unwrap_or_else(|| panic!("no paths object: {}", openapi.text));
    assert!(paths.contains_key("/v1/accounts"), "paths: {:?}", paths.keys().collect::<Vec<_>>());
    assert!(paths.contains_key("/v1/sessions"), "paths: {:?}", paths.keys().collect::<Vec<_>>());
}
both_stores!(health_readiness_metrics_and_openapi_are_served);

// ---------------------------------------------------------------------------------------------
// Two processes on one PostgreSQL database
// ---------------------------------------------------------------------------------------------

/// How many commit notices from other processes `app` has received (its `/metrics`).
async fn commit_notices(app: &TestApp) -> u64 {
    let metrics = app.get("/metrics").await;
    metrics
        .text
        .lines()
        .find(|l| l.starts_with("shenfen_peer_notices_total{notice=\"committed\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_postgres_database_and_the_survivor_takes_over_the_projections() {
    let mut a = spawn(Store::Postgres, Settings::defaults()).await;
    let b = a.spawn_sibling().await;
    let wait = Duration::from_secs(10);

    let account = a.register_account().await;
    let login = eventually(wait, || b.login(&account.document_number, &account.password), |r| r.status == 201).await;
    login.assert_status(201);
    let token = login.str("token");
    let me = eventually(wait, || a.me(&token), |r| r.status == 200).await;
    me.assert_status(200);
    assert_eq!(me.str("account_id"), account.account_id);

    // A command through a process whose memory of the account is stale: `a` has seen the
    // session live, `b` ends it; `a` must not accept the token for a command any more.
    a.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "01"})).await.assert_status(200);
    b.delete_as(&token, "/v1/sessions/current").await.assert_status(204);
    let stale = a.put_json_as(&token, "/v1/me/profile", &json!({"ethnicity": "02"})).await;
    stale.assert_status(401);
    assert_eq!(stale.str("code"), "unauthenticated");
    // A session `b` has never seen works there at once.
    let fresh = a.login(&account.document_number, &account.password).await;
    fresh.assert_status(201);
    let edited = b.put_json_as(&fresh.str("token"), "/v1/me/profile", &json!({"ethnicity": "03"})).await;
    edited.assert_status(200);
    assert_eq!(edited.str("account_id"), account.account_id);

    // Each process knows the other is there and tells it of its commits, also after the first
    // seconds in which a process notifies regardless: `b` answered `a`'s greeting (or `a`
    // answered `b`'s), and a commit through `b` now reaches `a` as a NOTIFY.
    tokio::time::sleep(shenfen_projections::notify::GREETING_GRACE + Duration::from_millis(500)).await;
    let before = commit_notices(&a).await;
    b.login(&account.document_number, &account.password).await.assert_status(201);
    let after = eventually(wait, || commit_notices(&a), |after| *after > before).await;
    assert!(after > before, "a heard of b's commit: {before} then {after}");

    a.stop().await;

    let second = b.register_account().await;
    let login = eventually(wait, || b.login(&second.document_number, &second.password), |r| r.status == 201).await;
    login.assert_status(201);
    let token = login.str("token");
    let me = eventually(Duration::from_secs(15), || b.me(&token), |r| r.status == 200).await;
    me.assert_status(200);
    assert_eq!(me.str("account_id"), second.account_id);
    assert_eq!(me.str("name"), second.name);
    assert_eq!(me.str("document_number_masked"), masked(&second.document_number));
    // The first account is still visible through the survivor.
    let first = b.login(&account.document_number, &account.password).await;
    first.assert_status(201);
    b.me(&first.str("token")).await.assert_status(200);
}
