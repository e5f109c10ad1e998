//! The CAPTCHA port (source document 000: the slider in front of codes and logins): when
//! `SHENFEN_CAPTCHA` is set, code requests, registrations and logins need a solved token, and
//! a service that cannot be asked refuses them (it fails closed).

use serde_json::{json, Value};
use shenfen_tests::{both_stores, mobile_number, ApiResponse, Registration, Settings, TestApp};

const SOLVED: &str = "solved-token";
const FAILED: &str = "failed-token";

/// A reference CAPTCHA file (`token,valid`) in a fresh temporary file; returns `reference:PATH`.
fn reference_captcha() -> String {
    let dir = std::env::temp_dir().join(format!("shenfen-captcha-{}-{}", std::process::id(), mobile_number()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("captcha.csv");
    std::fs::write(&path, format!("token,valid\n{SOLVED},true\n{FAILED},false\n")).expect("captcha file");
    format!("reference:{}", path.display())
}

fn with_captcha(spec: String) -> Settings {
    Settings { env: vec![("SHENFEN_CAPTCHA".into(), spec)], ..Settings::default() }
}

fn with_token(mut body: Value, token: Option<&str>) -> Value {
    if let Some(token) = token {
        body["captcha_token"] = json!(token);
    }
    body
}

async fn ask_code(app: &TestApp, mobile: &str, token: Option<&str>) -> ApiResponse {
    let body = with_token(json!({"purpose": "register", "channel": "sms", "mobile": mobile}), token);
    app.post_json("/v1/verification-codes", &body).await
}

async fn log_in(app: &TestApp, document_number: &str, password: &str, token: Option<&str>) -> ApiResponse {
    let body = with_token(json!({"document_number": document_number, "password": password}), token);
    app.post_json("/v1/sessions", &body).await
}

async fn codes_registrations_and_logins_need_a_solved_captcha(app: &mut TestApp) {
    let registration = Registration { mobile: mobile_number(), ..Registration::resident() };

    // A code: none without a token or with a refused one (and nothing is sent).
    ask_code(app, &registration.mobile, None).await.assert_field_error("captcha_token", "captcha_required");
    ask_code(app, &registration.mobile, Some(FAILED)).await.assert_field_error("captcha_token", "captcha_failed");
    ask_code(app, &registration.mobile, Some(SOLVED)).await.assert_status(202);
    let code = app.wait_for_message(&registration.mobile, "register").await.code();

    // Registration: the missing token is named with the other bad fields, in one 422.
    let mut incomplete = registration.body(&code);
    incomplete["email"] = json!("not-an-address");
    let refused = app.post_json("/v1/accounts", &incomplete).await;
    refused.assert_status(422);
    let fields: Vec<String> = refused.field_errors().into_iter().map(|(f, _)| f).collect();
    assert!(fields.contains(&"captcha_token".to_string()) && fields.contains(&"email".to_string()), "{}", refused.text);
    let body = registration.body(&code);
    app.post_json("/v1/accounts", &with_token(body.clone(), Some(FAILED)))
        .await
        .assert_field_error("captcha_token", "captcha_failed");
    app.post_json("/v1/accounts", &with_token(body, Some(SOLVED))).await.assert_status(201);

    // Login: the CAPTCHA comes before the password is even looked at.
    let (number, password) = (&registration.document_number, &registration.password);
    log_in(app, number, password, None).await.assert_field_error("captcha_token", "captcha_required");
    log_in(app, number, password, Some(FAILED)).await.assert_field_error("captcha_token", "captcha_failed");
    log_in(app, number, "Wrong-password-1", Some(SOLVED)).await.assert_problem(401, "login_failed");
    log_in(app, number, password, Some(SOLVED)).await.assert_status(201);

    // A student's registration too (api.md: `POST /v1/students` takes `captcha_token`).
    let mobile = mobile_number();
    let ask = json!({"purpose": "student_register", "channel": "sms", "mobile": mobile});
    app.post_json("/v1/verification-codes", &with_token(ask, Some(SOLVED))).await.assert_status(202);
    let code = app.wait_for_message(&mobile, "student_register").await.code();
    let student = json!({"agreement_accepted": true, "student_number": shenfen_tests::student_number(), "mobile": mobile,
        "verification": {"channel": "sms", "code": code},
        "password": registration.password, "password_confirmation": registration.password});
    app.post_json("/v1/students", &student).await.assert_field_error("captcha_token", "captcha_required");
    app.post_json("/v1/students", &with_token(student.clone(), Some(FAILED)))
        .await
        .assert_field_error("captcha_token", "captcha_failed");
    app.post_json("/v1/students", &with_token(student, Some(SOLVED))).await.assert_status(201);
}
both_stores!(codes_registrations_and_logins_need_a_solved_captcha, with_captcha(reference_captcha()));

async fn an_unreachable_captcha_service_refuses_the_request(app: &mut TestApp) {
    let mobile = mobile_number();
    let answer = ask_code(app, &mobile, Some(SOLVED)).await;
    answer.assert_problem(503, "captcha_unavailable");
    let registration = Registration::resident();
    log_in(app, &registration.document_number, &registration.password, Some(SOLVED))
        .await
        .assert_problem(503, "captcha_unavailable");
}
// Nothing listens on port 1 of the loopback: the connection is refused at once.
both_stores!(an_unreachable_captcha_service_refuses_the_request, with_captcha("http:http://127.0.0.1:1/check".into()));

async fn without_a_captcha_nothing_changes(app: &mut TestApp) {
    let mobile = mobile_number();
    ask_code(app, &mobile, None).await.assert_status(202);
}
both_stores!(without_a_captcha_nothing_changes);
