//! Support cases (source document 001): a person who cannot help themselves writes to support
//! with their name, document, contacts, a description and a handheld photo; they are
//! acknowledged by e-mail at once, support agents see the cases by the instant their reply is
//! due (24 working hours on), reply through the notifier, and may name a case as the evidence
//! of a contact change. Each runs the real server on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use shenfen_tests::{
    both_stores, email_address, is_working_day, jpeg_of_size, labelled_jpeg, masked, mobile_number, resident_id_number,
    ApiResponse, MultipartForm, Registered, Settings, Store, TestApp, PNG_HEADER,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const CASES: &str = "/v1/support/cases";

/// What a person writes to support; [`Case::form`] makes the multipart form.
#[derive(Debug, Clone)]
struct Case {
    kind: String,
    name: String,
    document_type: String,
    document_number: String,
    mobile: String,
    email: String,
    description: String,
    photo: Vec<u8>,
}

impl Case {
    /// A fresh person asking for `kind`, with a real JPEG.
    fn new(kind: &str) -> Case {
        Case {
            kind: kind.into(),
            name: "赵六".into(),
            document_type: "resident_id_card".into(),
            document_number: resident_id_number(),
            mobile: mobile_number(),
            email: email_address(),
            description: "注册时提示“该用户已注册”，申请核查账号信息。".into(),
            photo: labelled_jpeg("handheld"),
        }
    }

    /// A case about `account`'s document, from new contacts.
    fn about(account: &Registered, kind: &str) -> Case {
        Case {
            name: account.name.clone(),
            document_type: account.document_type.clone(),
            document_number: account.document_number.clone(),
            description: "手机号已停用，无法找回密码，申请修改手机信息。".into(),
            ..Case::new(kind)
        }
    }

    fn form(&self) -> MultipartForm {
        MultipartForm::new()
            .text("kind", &self.kind)
            .text("name", &self.name)
            .text("document_type", &self.document_type)
            .text("document_number", &self.document_number)
            .text("mobile", &self.mobile)
            .text("email", &self.email)
            .text("description", &self.description)
            .file("photo_handheld", "handheld.jpg", "image/jpeg", &self.photo)
    }
}

/// `POST /v1/support-cases` with `form`, without a token.
async fn post_case(app: &TestApp, form: MultipartForm) -> ApiResponse {
    let what = format!("POST /v1/support-cases multipart {}", form.describe());
    let content_type = form.content_type();
    let request =
        app.request(Method::POST, "/v1/support-cases").header("content-type", content_type).body(form.finish());
    app.send(what, request).await
}

/// Opens `case` (201) and returns its id and due instant.
async fn open(app: &TestApp, case: &Case) -> (String, DateTime<Utc>) {
    let opened = post_case(app, case.form()).await;
    opened.assert_status(201);
    let case_id = opened.str("case_id");
    assert!(
        case_id.len() == 36 && case_id.starts_with("spc_") && case_id[4..].bytes().all(|b| b.is_ascii_hexdigit()),
        "case id {case_id:?}"
    );
    (case_id, instant(&opened.body, "reply_due_by"))
}

fn instant(value: &Value, field: &str) -> DateTime<Utc> {
    let text = value[field].as_str().unwrap_or_else(|| panic!("no `{field}` in {value}"));
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("`{field}` = {text:?}: {e}")).with_timezone(&Utc)
}

fn items(response: &ApiResponse) -> Vec<Value> {
    response.body.as_array().unwrap_or_else(|| panic!("not a JSON array\n{}", response.describe())).clone()
}

fn item<'a>(list: &'a [Value], case_id: &str) -> &'a Value {
    list.iter().find(|c| c["case_id"] == json!(case_id)).unwrap_or_else(|| panic!("{case_id} not listed: {list:?}"))
}

/// 24 working hours after `opened_at`, counted independently of the server: China Standard
/// Time, the spec's calendar, a non-working day's hours left out.
fn expected_due(opened_at: DateTime<Utc>) -> DateTime<Utc> {
    let cst = Duration::hours(8);
    let mut local = (opened_at + cst).naive_utc();
    let mut left = Duration::hours(24);
    loop {
        let day = local.date();
        let next = day.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap();
        if is_working_day(day) {
            if next - local >= left {
                return (local + left).and_utc() - cst;
            }
            left -= next - local;
        }
        local = next;
    }
}

/// The raw webhook document of the last message `purpose` sent to `to`.
fn delivered(app: &TestApp, to: &str, purpose: &str) -> Value {
    app.hooks
        .received()
        .into_iter()
        .rev()
        .find(|m| m["to"] == json!(to) && m["purpose"] == json!(purpose))
        .unwrap_or_else(|| panic!("no {purpose} message to {to}"))
}

/// Moves a case's due instant in the `support_cases` read model (the server's clock cannot be
/// moved).
async fn move_due(app: &TestApp, case_id: &str, due: DateTime<Utc>) {
    let sql = match app.store {
        Store::Postgres => "UPDATE support_cases SET reply_due_by = $1::timestamptz WHERE case_id = $2",
        Store::Sqlite => "UPDATE support_cases SET reply_due_by = $1 WHERE case_id = $2",
    };
    let changed = app.execute_sql(sql, &[&due.to_rfc3339(), case_id]).await;
    assert_eq!(changed, 1, "the case's row");
}

fn unknown_case_id() -> String {
    format!("spc_{}", "0".repeat(32))
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async fn a_support_case_is_acknowledged_queued_by_its_due_instant_and_replied_to(app: &mut TestApp) {
    let support = app.staff_member("support").await;
    let first = Case::new("contact_change");
    let (first_id, first_due) = open(app, &first).await;
    let ack = app.wait_for_message(&first.email, "support_case_received").await;
    assert_eq!(ack.channel, "email");
    let ack = delivered(app, &first.email, "support_case_received");
    assert_eq!((&ack["case_id"], &ack["kind"]), (&json!(first_id), &json!("contact_change")), "{ack}");
    assert_eq!(instant(&ack, "reply_due_by"), first_due, "{ack}");

    let second = Case::new("account_check");
    let (second_id, second_due) = open(app, &second).await;
    app.wait_for_message(&second.email, "support_case_received").await;
    assert!(second_due >= first_due);

    // Both are listed, earliest due first, masked, open and not overdue.
    let listed = app.get_as(&support.token, CASES).await;
    listed.assert_status(200);
    let list = items(&listed);
    let dues: Vec<DateTime<Utc>> = list.iter().map(|c| instant(c, "reply_due_by")).collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "ordered by due instant: {dues:?}");
    for (case, id, due) in [(&first, &first_id, first_due), (&second, &second_id, second_due)] {
        let listed_case = item(&list, id);
        assert_eq!(listed_case["kind"], json!(case.kind));
        assert_eq!(listed_case["status"], json!("open"));
        assert_eq!(listed_case["overdue"], json!(false));
        assert_eq!(listed_case["replies"], json!(0));
        assert_eq!(instant(listed_case, "reply_due_by"), due);
        let opened_at = instant(listed_case, "opened_at");
        let expected = expected_due(opened_at);
        assert!(
            (due - expected).num_milliseconds().abs() <= 1000,
            "due {due}, 24 working hours after {opened_at}: {expected}"
        );
        assert!(due > opened_at + Duration::hours(23), "{due} vs {opened_at}");
        assert_eq!(listed_case["name"], json!(case.name));
        assert_eq!(listed_case["description"], json!(case.description));
        assert_eq!(listed_case["document_type"], json!("resident_id_card"));
        assert_eq!(listed_case["document_number_masked"], json!(masked(&case.document_number)));
        let mobile = listed_case["mobile_masked"].as_str().unwrap();
        assert!(mobile.contains('*') && mobile.ends_with(&case.mobile[7..]), "{mobile}");
        assert!(listed_case["email_masked"].as_str().unwrap().contains('*'), "{listed_case}");
        assert!(!listed.text.contains(&case.document_number) && !listed.text.contains(&case.mobile));
        assert!(!listed.text.contains(&case.email), "{}", listed.text);
    }

    // The second case is made late (in the read model): it comes first, overdue.
    move_due(app, &second_id, Utc::now() - Duration::hours(2)).await;
    let list = items(&app.get_as(&support.token, CASES).await);
    assert_eq!(list[0]["case_id"], json!(second_id), "{list:?}");
    assert_eq!(list[0]["overdue"], json!(true));
    assert_eq!(item(&list, &first_id)["overdue"], json!(false));

    // The handheld photo, as sent.
    let photo = app.get_as(&support.token, &format!("{CASES}/{second_id}/photo")).await;
    photo.assert_status(200);
    assert_eq!(photo.content_type(), "image/jpeg");
    assert_eq!(photo.bytes, second.photo);

    // A reply goes to the case's e-mail and settles the case.
    let message = "您好，经核查该证件号已注册，请使用“忘记密码”重置密码。";
    let path = format!("{CASES}/{second_id}/reply");
    app.post_json_as(&support.token, &path, &json!({"message": message})).await.assert_status(204);
    app.wait_for_message(&second.email, "support_case_reply").await;
    let reply = delivered(app, &second.email, "support_case_reply");
    assert_eq!((&reply["case_id"], &reply["message"]), (&json!(second_id), &json!(message)), "{reply}");
    let list = items(&app.get_as(&support.token, CASES).await);
    let replied = item(&list, &second_id);
    assert_eq!(
        (&replied["status"], &replied["overdue"], &replied["replies"]),
        (&json!("replied"), &json!(false), &json!(1))
    );
    assert!(instant(replied, "replied_at") <= Utc::now() + Duration::seconds(5), "{replied}");
    // A second reply is kept too; the case stays replied.
    app.post_json_as(&support.token, &path, &json!({"message": "补充：如仍有问题请再次来信。"}))
        .await
        .assert_status(204);
    let list = items(&app.get_as(&support.token, CASES).await);
    assert_eq!(item(&list, &second_id)["replies"], json!(2));

    // Filtered by status.
    let open_only = items(&app.get_as(&support.token, &format!("{CASES}?status=open")).await);
    assert!(
        open_only.iter().all(|c| c["status"] == json!("open"))
            && open_only.iter().any(|c| c["case_id"] == json!(first_id))
    );
    assert!(open_only.iter().all(|c| c["case_id"] != json!(second_id)));
    let replied_only = items(&app.get_as(&support.token, &format!("{CASES}?status=replied")).await);
    assert_eq!(replied_only.len(), 1, "{replied_only:?}");
    app.get_as(&support.token, &format!("{CASES}?status=closed")).await.assert_field_error("status", "invalid_status");

    // Replies need a message of at most 2000 characters, to a case that exists.
    app.post_json_as(&support.token, &path, &json!({})).await.assert_field_error("message", "required");
    app.post_json_as(&support.token, &path, &json!({"message": "  "})).await.assert_field_error("message", "required");
    let long = "字".repeat(2001);
    app.post_json_as(&support.token, &path, &json!({"message": long})).await.assert_field_error("message", "too_long");
    let unknown = format!("{CASES}/{}/reply", unknown_case_id());
    app.post_json_as(&support.token, &unknown, &json!({"message": "x"})).await.assert_problem(404, "case_not_found");
    let malformed = format!("{CASES}/spc_nope/reply");
    app.post_json_as(&support.token, &malformed, &json!({"message": "x"})).await.assert_problem(404, "case_not_found");
    app.get_as(&support.token, &format!("{CASES}/{}/photo", unknown_case_id()))
        .await
        .assert_problem(404, "case_not_found");

    // After a restart the queue is the same.
    app.restart().await;
    let support_token = app.staff_token(&support.username, &support.password).await;
    let list = items(&app.get_as(&support_token, CASES).await);
    assert_eq!(item(&list, &second_id)["status"], json!("replied"));
    assert_eq!(item(&list, &first_id)["status"], json!("open"));
}
both_stores!(a_support_case_is_acknowledged_queued_by_its_due_instant_and_replied_to);

async fn a_support_case_form_names_every_bad_field_at_once(app: &mut TestApp) {
    // Nothing but an unknown part.
    let bare = post_case(app, MultipartForm::new().text("subject", "hi")).await;
    bare.assert_status(422);
    let expected = [
        ("subject", "unknown_field"),
        ("kind", "required"),
        ("name", "required"),
        ("document_type", "required"),
        ("document_number", "required"),
        ("mobile", "required"),
        ("email", "required"),
        ("description", "required"),
        ("photo_handheld", "photo_missing"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
    assert_eq!(bare.field_errors(), expected, "{}", bare.describe());

    // Every field wrong at once, and an extra photo.
    let wrong = Case {
        kind: "complaint".into(),
        name: "x".into(),
        document_number: "110105194912310021".into(),
        mobile: "12345".into(),
        email: "someone＠example.com".into(),
        description: "说".repeat(2001),
        photo: PNG_HEADER.to_vec(),
        ..Case::new("account_check")
    };
    let form = wrong.form().file("photo_extra", "extra.jpg", "image/jpeg", &labelled_jpeg("extra"));
    let answer = post_case(app, form).await;
    answer.assert_status(422);
    let fields: Vec<String> = answer.field_errors().into_iter().map(|(f, _)| f).collect();
    for (field, code) in [
        ("photo_extra", "unknown_field"),
        ("kind", "invalid_kind"),
        ("name", "invalid_name"),
        ("document_number", "invalid_document_number"),
        ("mobile", "invalid_mobile"),
        ("email", "invalid_email"),
        ("description", "too_long"),
        ("photo_handheld", "photo_not_jpeg"),
    ] {
        answer.assert_field_error(field, code);
    }
    assert_eq!(fields.len(), 8, "one error per field: {fields:?}");

    // Photos as manual review takes them: under 190 KB, a JPEG whatever its declared type.
    let too_large = Case { photo: jpeg_of_size(190 * 1024), ..Case::new("account_check") };
    post_case(app, too_large.form()).await.assert_field_error("photo_handheld", "photo_too_large");
    let empty = Case { photo: Vec::new(), ..Case::new("account_check") };
    post_case(app, empty.form()).await.assert_field_error("photo_handheld", "photo_missing");
    let largest = Case { photo: jpeg_of_size(190 * 1024 - 1), ..Case::new("account_check") };
    open(app, &largest).await;
    let described_as_png = Case::new("contact_change");
    let form = MultipartForm::new()
        .text("kind", &described_as_png.kind)
        .text("name", &described_as_png.name)
        .text("document_type", &described_as_png.document_type)
        .text("document_number", &described_as_png.document_number)
        .text("mobile", &described_as_png.mobile)
        .text("email", &described_as_png.email)
        .text("description", &"述".repeat(2000))
        .file("photo_handheld", "me.png", "image/png", &described_as_png.photo);
    post_case(app, form).await.assert_status(201);

    // Nothing was opened for the refused forms.
    let support = app.staff_member("support").await;
    assert_eq!(items(&app.get_as(&support.token, CASES).await).len(), 2);
}
both_stores!(a_support_case_form_names_every_bad_field_at_once);

async fn only_support_agents_see_and_answer_support_cases(app: &mut TestApp) {
    let (case_id, _) = open(app, &Case::new("account_check")).await;
    let reply = format!("{CASES}/{case_id}/reply");
    let photo = format!("{CASES}/{case_id}/photo");
    let body = json!({"message": "您好"});
    for role in ["reviewer", "auditor", "analyst", "admin"] {
        let staff = app.staff_member(role).await;
        app.get_as(&staff.token, CASES).await.assert_problem(403, "forbidden");
        app.post_json_as(&staff.token, &reply, &body).await.assert_problem(403, "forbidden");
        app.get_as(&staff.token, &photo).await.assert_problem(403, "forbidden");
    }
    let account = app.register_account().await;
    let holder = app.login_ok(&account).await;
    app.get_as(&holder, CASES).await.assert_problem(403, "forbidden");
    app.post_json_as(&holder, &reply, &body).await.assert_problem(403, "forbidden");
    app.get(CASES).await.assert_problem(401, "unauthenticated");
    app.get(&photo).await.assert_problem(401, "unauthenticated");
    let support = app.staff_member("support").await;
    app.post_json_as(&support.token, &reply, &body).await.assert_status(204);
}
both_stores!(only_support_agents_see_and_answer_support_cases);

async fn a_contact_change_may_name_a_support_case_as_its_evidence(app: &mut TestApp) {
    let account = app.register_account().await;
    let support = app.staff_member("support").await;
    let case = Case::about(&account, "contact_change");
    let (case_id, _) = open(app, &case).await;
    let (other_id, _) = open(app, &Case::new("contact_change")).await;

    let contact = format!("/v1/support/accounts/{}/contact", account.account_id);
    let change =
        |evidence: &str| json!({"mobile": case.mobile, "reason": "来信：手机号已停用", "evidence_ref": evidence});
    let unknown = app.post_json_as(&support.token, &contact, &change(&unknown_case_id())).await;
    unknown.assert_field_error("evidence_ref", "unknown_case");
    assert_eq!(unknown.field_errors().len(), 1, "{}", unknown.describe());
    app.post_json_as(&support.token, &contact, &change("spc_42"))
        .await
        .assert_field_error("evidence_ref", "unknown_case");
    app.post_json_as(&support.token, &contact, &change(&other_id))
        .await
        .assert_field_error("evidence_ref", "case_of_another_account");
    // Named with the other errors of the request.
    let bare =
        app.post_json_as(&support.token, &contact, &json!({"mobile": "1", "evidence_ref": unknown_case_id()})).await;
    bare.assert_field_error("mobile", "invalid_mobile").assert_field_error("reason", "required");
    bare.assert_field_error("evidence_ref", "unknown_case");

    let requested = app.post_json_as(&support.token, &contact, &change(&case_id)).await;
    requested.assert_status(202);
    let approval = format!("/v1/support/requests/{}/approval", requested.str("request_id"));
    let second = app.staff_member("support").await;
    app.post_json_as(&second.token, &approval, &json!({})).await.assert_status(204);
    app.wait_for_message(&account.mobile, "contact_changed").await;
    // Evidence that names no case stays free text.
    let free = json!({"email": email_address(), "reason": "来信", "evidence_ref": "mail-2048/handheld.jpg"});
    app.post_json_as(&support.token, &contact, &free).await.assert_status(202);

    // Corrections follow the same rule.
    let corrections = format!("/v1/support/accounts/{}/corrections", account.account_id);
    let correction = |evidence: &str| json!({"name": "李𠮷", "reason": "来信更正姓名", "evidence_ref": evidence});
    app.post_json_as(&support.token, &corrections, &correction(&unknown_case_id()))
        .await
        .assert_field_error("evidence_ref", "unknown_case");
    app.post_json_as(&support.token, &corrections, &correction(&case_id)).await.assert_status(204);

    // The account records the case as the evidence.
    let auditor = app.staff_member("auditor").await;
    let history = app.audit_events(&auditor.token, "account", &account.account_id).await;
    history.assert_status(200);
    assert!(history.text.contains(&case_id), "{}", history.text);
}
both_stores!(a_contact_change_may_name_a_support_case_as_its_evidence);

async fn auditors_read_a_support_case_stream_with_its_chain_intact(app: &mut TestApp) {
    let case = Case::new("account_check");
    let (case_id, due) = open(app, &case).await;
    let support = app.staff_member("support").await;
    let path = format!("{CASES}/{case_id}/reply");
    app.post_json_as(&support.token, &path, &json!({"message": "已核查"})).await.assert_status(204);

    let auditor = app.staff_member("auditor").await;
    let history = app.audit_events(&auditor.token, "support_case", &case_id).await;
    history.assert_status(200);
    let events = items(&history);
    let types: Vec<&str> = events.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Opened", "Replied"], "{}", history.text);
    assert_eq!(events[0]["actor"]["kind"], json!("anonymous"));
    assert_eq!((&events[1]["actor"]["kind"], &events[1]["actor"]["role"]), (&json!("staff"), &json!("support")));
    let opened = &events[0]["payload"]["Opened"];
    assert_eq!(opened["applicant"]["document_number"], json!(case.document_number), "{opened}");
    assert_eq!(instant(opened, "reply_due_by"), due);

    let state = app.audit_state(&auditor.token, "support_case", &case_id, None).await;
    state.assert_status(200);
    assert_eq!(state.body["chain_intact"], json!(true), "{}", state.text);
    assert_eq!(state.body["sequence"], json!(2));
    assert_eq!(state.body["state"]["replies"][0]["message"], json!("已核查"), "{}", state.text);
    let before = instant(&events[1], "at") - Duration::microseconds(1);
    let state = app.audit_state(&auditor.token, "support_case", &case_id, Some(before)).await;
    assert_eq!(state.body["state"]["replies"], json!([]), "{}", state.text);

    app.audit_events(&auditor.token, "support_case", &unknown_case_id())
        .await
        .assert_problem(404, "aggregate_not_found");
    app.audit_events(&support.token, "support_case", &case_id).await.assert_problem(403, "forbidden");
}
both_stores!(auditors_read_a_support_case_stream_with_its_chain_intact);

/// A case's photo is referenced by the log like a review's: the sweeper, which deletes stored
/// photos no event references once their grace period is over, leaves it.
async fn a_support_cases_photo_outlives_the_sweep_of_unreferenced_photos(app: &mut TestApp) {
    let case = Case::new("contact_change");
    let (case_id, _) = open(app, &case).await;
    // A stray photo, stored as the blob store stores them (`ab/abcd…`, named by its SHA-256).
    let stray = "a photo of a refused upload";
    let digest = shenfen_domain::ids::token_hash(stray);
    let shard = app.dir().join("blobs").join(&digest[..2]);
    std::fs::create_dir_all(&shard).unwrap();
    let stray_path = shard.join(&digest);
    std::fs::write(&stray_path, stray).unwrap();

    let swept = async {
        while stray_path.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), swept).await.expect("the stray photo was swept");
    let support = app.staff_member("support").await;
    let photo = app.get_as(&support.token, &format!("{CASES}/{case_id}/photo")).await;
    photo.assert_status(200);
    assert_eq!(photo.bytes, case.photo);
}
both_stores!(
    a_support_cases_photo_outlives_the_sweep_of_unreferenced_photos,
    Settings::defaults().env("SHENFEN_BLOB_GRACE_SECONDS", "2")
);

/// An account's erasure (PIPL) erases the support cases about it too: their keys destroyed (the
/// stream reads `[erased]`), the queue's row scrubbed, the photo deleted (410), the reply
/// sealed in the log like the rest.
async fn an_erased_accounts_support_cases_are_erased_with_it(app: &mut TestApp) {
    let support = app.staff_member("support").await;
    let auditor = app.staff_member("auditor").await;
    let account = app.register_account().await;
    let token = app.login_ok(&account).await;
    let case = Case::about(&account, "contact_change");
    let (case_id, _) = open(app, &case).await;
    let other = Case::new("account_check");
    let (other_id, _) = open(app, &other).await;
    let message = "您好，赵六：请携带身份证原件办理。";
    let path = format!("{CASES}/{case_id}/reply");
    app.post_json_as(&support.token, &path, &json!({"message": message})).await.assert_status(204);
    let events = app.query_texts("SELECT CAST(payload AS TEXT) FROM events WHERE aggregate_type = 'support_case'", &[]);
    let events = events.await.into_iter().flatten().collect::<Vec<_>>().join("\n");
    for secret in [case.description.as_str(), message, case.mobile.as_str(), case.email.as_str()] {
        assert!(!events.contains(secret), "{secret} is stored in plain text: {events}");
    }
    app.poll_as(&support.token, CASES, |r| r.text.contains(&case_id) && r.text.contains(&other_id)).await;

    app.post_json_as(&token, "/v1/me/deletion", &json!({"password": account.password})).await.assert_status(202);

    let listed = app.poll_as(&support.token, CASES, |r| r.text.contains("[erased]")).await;
    let list = items(&listed);
    let erased = item(&list, &case_id);
    for field in ["name", "description", "document_number_masked", "mobile_masked", "email_masked"] {
        assert_eq!(erased[field], json!("[erased]"), "{field}: {erased}");
    }
    assert_eq!(erased["kind"], json!("contact_change"), "what is not personal stays: {erased}");
    assert_eq!(item(&list, &other_id)["name"], json!(other.name), "another person's case stays");
    app.get_as(&support.token, &format!("{CASES}/{case_id}/photo")).await.assert_problem(410, "photo_deleted");
    app.get_as(&support.token, &format!("{CASES}/{other_id}/photo")).await.assert_status(200);
    let audited = app.audit_events(&auditor.token, "support_case", &case_id).await;
    audited.assert_status(200);
    assert!(audited.text.contains("[erased]"), "{}", audited.text);
    for secret in [case.description.as_str(), message, case.mobile.as_str(), case.email.as_str(), &account.name] {
        assert!(!audited.text.contains(secret), "{secret} is still readable: {}", audited.text);
    }
}
both_stores!(
    an_erased_accounts_support_cases_are_erased_with_it,
    Settings::defaults().env("SHENFEN_DELETION_COOLING_OFF_DAYS", "0")
);
