//! Student identity verification (学生身份认证, api-students.md): registration by student
//! number, the application, the guardian's consent, submission against the student registry
//! (a fake `http:` registry shared by the binary), the head teacher's review, the school
//! admin's refresh and link, the daily quota under concurrency. Each runs the real server on
//! SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, NaiveDate, Utc};
use serde_json::{json, Value};
use shenfen_tests::{
    both_stores, is_working_day, labelled_jpeg, mobile_number, parse_csv, password, resident_id_number_born,
    set_registry_entry, student_number, student_registry_spec, unzip, ApiResponse, MultipartForm, RegistryEntry,
    Settings, StudentRecord, TestApp,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The demo catalogue's filed school, and one that is not filed.
const SCHOOL: &str = "3201001";
const UNFILED_SCHOOL: &str = "3201003";

fn settings() -> Settings {
    Settings::defaults().env("SHENFEN_STUDENT_REGISTRY", &student_registry_spec())
}

/// A registered student, signed in.
struct Student {
    number: String,
    student_id: String,
    pass_id: String,
    mobile: String,
    password: String,
    token: String,
    guardian_mobile: String,
}

/// A registry record of a fresh student number: grade 8, class 3班 of [`SCHOOL`].
fn record() -> StudentRecord {
    StudentRecord {
        student_number: student_number(),
        name: "李小明".into(),
        id_number: resident_id_number_born("20120501"),
        birth_date: "2012-05-01".into(),
        school_code: SCHOOL.into(),
        grade: 8,
        class: "3班".into(),
        head_teacher_mobile: mobile_number(),
    }
}

/// Registers `number` with a fresh mobile (201) and signs in by pass ID.
async fn register(app: &TestApp, number: &str) -> Student {
    let mobile = mobile_number();
    let password = password();
    app.send_code("student_register", &mobile).await.assert_status(202);
    let code = app.wait_for_message(&mobile, "student_register").await.code();
    let body = json!({
        "agreement_accepted": true, "student_number": number, "mobile": mobile,
        "verification": {"channel": "sms", "code": code},
        "password": password, "password_confirmation": password, "education_identity": "student"});
    let registered = app.post_json("/v1/students", &body).await;
    registered.assert_status(201);
    let pass_id = registered.str("pass_id");
    assert!(pass_id.starts_with('P') && !pass_id.contains(&mobile) && !pass_id.contains(&number[1..]), "{pass_id}");
    let login = app.post_json("/v1/student-sessions", &json!({"login": pass_id, "password": password})).await;
    login.assert_status(201);
    assert_eq!(login.str("status"), "draft");
    Student {
        number: number.to_string(),
        student_id: registered.str("student_id"),
        pass_id,
        mobile,
        password,
        token: login.str("token"),
        guardian_mobile: mobile_number(),
    }
}

/// The application matching `record`, with the student's guardian.
fn application(record: &StudentRecord, student: &Student) -> Value {
    json!({
        "personal": {"name": record.name, "id_number": record.id_number, "birth_date": record.birth_date},
        "enrolment": {"school_code": record.school_code, "grade": record.grade, "class": record.class},
        "guardian": {"name": "李大明", "id_number": resident_id_number_born("19800101"),
                     "mobile": student.guardian_mobile, "address": "江苏省南京市玄武区北京东路1号"}})
}

async fn put_application(app: &TestApp, student: &Student, body: &Value) -> ApiResponse {
    app.put_json_as(&student.token, "/v1/student/me/application", body).await
}

/// The material parts of `grade`'s stage.
fn materials(grade: u8) -> MultipartForm {
    let form = MultipartForm::new();
    if grade <= 9 {
        form.file("household_register", "hukou.jpg", "image/jpeg", &labelled_jpeg("hukou"))
    } else {
        form.file("id_front", "front.jpg", "image/jpeg", &labelled_jpeg("front")).file(
            "id_back",
            "back.jpg",
            "image/jpeg",
            &labelled_jpeg("back"),
        )
    }
}

async fn attach(app: &TestApp, student: &Student, form: MultipartForm) -> ApiResponse {
    app.post_multipart_as(&student.token, "/v1/student/me/application/materials", form).await
}

/// The guardian's code (sent with the student's token) and consent: 200.
async fn verify_guardian(app: &TestApp, student: &Student) {
    let ask = json!({"purpose": "guardian_consent", "channel": "sms", "mobile": student.guardian_mobile});
    app.post_json("/v1/verification-codes", &ask).await.assert_problem(401, "unauthenticated");
    let stranger = json!({"purpose": "guardian_consent", "channel": "sms", "mobile": mobile_number()});
    app.post_json_as(&student.token, "/v1/verification-codes", &stranger)
        .await
        .assert_problem(409, "not_guardian_mobile");
    app.post_json_as(&student.token, "/v1/verification-codes", &ask).await.assert_status(202);
    let code = app.wait_for_message(&student.guardian_mobile, "guardian_consent").await.code();
    let path = "/v1/student/me/guardian-verification";
    app.post_json_as(&student.token, path, &json!({"code": code, "consent_accepted": false}))
        .await
        .assert_field_error("consent_accepted", "guardian_consent_required");
    let verified = app.post_json_as(&student.token, path, &json!({"code": code, "consent_accepted": true})).await;
    verified.assert_status(200);
    assert_eq!(verified.body["guardian_verified"], json!(true));
}

/// A student of `record` (put in the registry as `entry`) with a complete application and a
/// verified guardian, ready to submit.
async fn ready(app: &TestApp, applied: &StudentRecord, entry: RegistryEntry) -> Student {
    set_registry_entry(&applied.student_number, entry);
    let student = register(app, &applied.student_number).await;
    put_application(app, &student, &application(applied, &student)).await.assert_status(200);
    attach(app, &student, materials(applied.grade)).await.assert_status(200);
    verify_guardian(app, &student).await;
    let me = app.get_as(&student.token, "/v1/student/me").await;
    me.assert_status(200);
    assert_eq!(me.body["application"]["missing"], json!([]), "{}", me.text);
    student
}

async fn submit(app: &TestApp, student: &Student) -> ApiResponse {
    app.post_json_as(&student.token, "/v1/student/me/application/submission", &json!({"school_confirmed": true})).await
}

async fn me(app: &TestApp, student: &Student) -> Value {
    let me = app.get_as(&student.token, "/v1/student/me").await;
    me.assert_status(200);
    me.body.clone()
}

/// The China date today.
fn today() -> NaiveDate {
    (Utc::now() + Duration::hours(8)).date_naive()
}

/// Two working days after `day` on the spec's calendar.
fn two_working_days_after(day: NaiveDate) -> NaiveDate {
    let mut d = day;
    let mut left = 2;
    while left > 0 {
        d = d.succ_opt().unwrap();
        if is_working_day(d) {
            left -= 1;
        }
    }
    d
}

fn statuses(timeline: &ApiResponse) -> Vec<(String, String)> {
    timeline
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["status"].as_str().unwrap().to_string(), s["actor_role"].as_str().unwrap().to_string()))
        .collect()
}

/// The queue entry of `student`, if listed.
fn entry_of<'a>(queue: &'a ApiResponse, student: &Student) -> Option<&'a Value> {
    queue.body.as_array().unwrap().iter().find(|r| r["student_id"] == json!(student.student_id))
}

async fn events_text(app: &TestApp, student: &Student) -> String {
    let sql = "SELECT CAST(payload AS TEXT) FROM events WHERE aggregate_type = 'student' AND aggregate_id = $1";
    let rows = app.query_texts(sql, &[student.student_id.as_str()]).await;
    rows.into_iter().flatten().collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async fn an_exact_match_is_approved_at_once(app: &mut TestApp) {
    let record = record();
    set_registry_entry(&record.student_number, RegistryEntry::Found(record.clone()));
    // Registration: the number is required and checked; a student number registers once.
    let bad = app.post_json("/v1/students", &json!({"agreement_accepted": true, "student_number": "L123"})).await;
    bad.assert_field_error("student_number", "invalid_student_number");
    let missing = app.post_json("/v1/students", &json!({"agreement_accepted": true})).await;
    missing.assert_field_error("student_number", "student_number_registration_required");
    let student = register(app, &record.student_number).await;
    let again = {
        let mobile = mobile_number();
        app.send_code("student_register", &mobile).await.assert_status(202);
        let code = app.wait_for_message(&mobile, "student_register").await.code();
        let pw = password();
        app.post_json(
            "/v1/students",
            &json!({
            "agreement_accepted": true, "student_number": record.student_number, "mobile": mobile,
            "verification": {"channel": "sms", "code": code}, "password": pw, "password_confirmation": pw}),
        )
        .await
    };
    again.assert_problem(409, "student_number_already_registered");
    // Login by student number too; a wrong password is 401.
    let by_number = json!({"login": student.number, "password": student.password});
    app.post_json("/v1/student-sessions", &by_number).await.assert_status(201);
    let wrong = json!({"login": student.pass_id, "password": "Wrong#pass99"});
    app.post_json("/v1/student-sessions", &wrong).await.assert_problem(401, "login_failed");

    let fresh = me(app, &student).await;
    assert_eq!((&fresh["status"], &fresh["pass_id"]), (&json!("draft"), &json!(student.pass_id)));
    assert!(fresh["application"]["missing"].as_array().unwrap().len() >= 8, "{fresh}");
    app.get_as(&student.token, "/v1/student/me/eligibility").await.assert_problem(403, "student_verification_required");
    // The school is chosen from the catalogue.
    let schools = app.get("/v1/schools?q=玄武").await;
    schools.assert_status(200);
    assert_eq!(schools.body[0]["school_code"], json!(SCHOOL));
    app.get("/v1/schools?q=玄").await.assert_field_error("q", "query_too_short");
    let unknown = json!({"enrolment": {"school_code": "9999999", "grade": 8, "class": "3班"}});
    put_application(app, &student, &unknown).await.assert_field_error("enrolment.school_code", "school_not_selectable");

    put_application(app, &student, &application(&record, &student)).await.assert_status(200);
    attach(app, &student, materials(8)).await.assert_status(200);
    // Submission needs the school confirmed and the guardian verified.
    app.post_json_as(&student.token, "/v1/student/me/application/submission", &json!({}))
        .await
        .assert_field_error("school_confirmed", "school_confirmation_required");
    submit(app, &student).await.assert_problem(409, "guardian_not_verified");
    verify_guardian(app, &student).await;

    let submitted = submit(app, &student).await;
    submitted.assert_status(200);
    assert_eq!(submitted.body["status"], json!("approved"), "{}", submitted.text);
    assert_eq!(submitted.body["submissions_left_today"], json!(2));
    app.get_as(&student.token, "/v1/student/me/eligibility").await.assert_status(200);
    let timeline = app.get_as(&student.token, "/v1/student/me/timeline").await;
    timeline.assert_status(200);
    assert_eq!(
        statuses(&timeline),
        [("draft", "student"), ("submitted", "student"), ("approved", "system")]
            .map(|(s, a)| (s.to_string(), a.to_string()))
    );
    // Approved: the application no longer changes but through reconfirmation.
    put_application(app, &student, &application(&record, &student))
        .await
        .assert_problem(409, "student_already_approved");
    app.post_json_as(&student.token, "/v1/student/me/reconfirmation", &json!({"unchanged": true}))
        .await
        .assert_problem(409, "reconfirmation_not_due");

    // No personal value is stored in plain text; auditors read the stream opened.
    let stored = events_text(app, &student).await;
    for secret in [&record.name, &record.id_number, &student.guardian_mobile, &student.mobile, &record.student_number] {
        assert!(!stored.contains(secret.as_str()), "{secret} is stored in plain text: {stored}");
    }
    let auditor = app.staff_member("auditor").await;
    let audited = app.audit_events(&auditor.token, "student", &student.student_id).await;
    audited.assert_status(200);
    assert!(audited.text.contains("AutoApproved") && audited.text.contains(&record.name), "{}", audited.text);

    // The analyst table counts it for the school and day.
    let analyst = app.staff_member("analyst").await;
    let path = "/v1/analytics/student-verifications";
    let rows = app.poll_as(&analyst.token, path, |r| r.text.contains(SCHOOL)).await;
    let row = rows.body.as_array().unwrap().iter().find(|r| r["school_code"] == json!(SCHOOL)).unwrap().clone();
    assert_eq!(
        (&row["submitted"], &row["auto_approved"], &row["returned"]),
        (&json!(1), &json!(1), &json!(0)),
        "{row}"
    );
    assert_eq!(row["auto_approval_rate"], json!(1.0));
    assert_eq!(row["day"], json!(today().to_string()));
}
both_stores!(an_exact_match_is_approved_at_once, settings());

async fn a_transfer_student_goes_to_the_head_teacher_of_the_class_applied_for(app: &mut TestApp) {
    let applied = record();
    // 借读: the registry has the student in another class.
    let registered = StudentRecord { class: "4班".into(), ..applied.clone() };
    let student = ready(app, &applied, RegistryEntry::Found(registered.clone())).await;
    let head_teacher = app.school_staff(SCHOOL, Some((8, "3班"))).await;
    let admin = app.school_staff(SCHOOL, None).await;
    // An admin creates the other class's head teacher through the API: a head teacher needs a
    // catalogue school, a grade and a class; other roles take none.
    let staff_admin = app.staff_member("admin").await;
    let username = format!("ht.{}", &student.student_id[..8]);
    let body = |extra: Value| {
        let mut body = json!({"username": username, "role": "head_teacher", "password": "Zq7#head-teacher"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let no_class = app
        .post_json_as(&staff_admin.token, "/v1/staff/accounts", &body(json!({"school_code": SCHOOL, "grade": 8})))
        .await;
    no_class.assert_field_error("class", "required");
    let unknown = body(json!({"school_code": "9999999", "grade": 8, "class": "4班"}));
    app.post_json_as(&staff_admin.token, "/v1/staff/accounts", &unknown)
        .await
        .assert_field_error("school_code", "school_not_selectable");
    let reviewer = json!({"username": format!("rv.{}", &student.student_id[..8]), "role": "reviewer",
                          "password": "Zq7#head-teacher", "school_code": SCHOOL});
    app.post_json_as(&staff_admin.token, "/v1/staff/accounts", &reviewer)
        .await
        .assert_field_error("school_code", "not_for_this_role");
    let created = app
        .post_json_as(
            &staff_admin.token,
            "/v1/staff/accounts",
            &body(json!({"school_code": SCHOOL, "grade": 8, "class": "4班"})),
        )
        .await;
    created.assert_status(201);
    let other_class = shenfen_tests::StaffMember {
        token: app.staff_token(&username, "Zq7#head-teacher").await,
        username: username.clone(),
        password: "Zq7#head-teacher".into(),
        role: "head_teacher".into(),
    };

    let submitted = submit(app, &student).await;
    submitted.assert_status(200);
    assert_eq!(submitted.body["status"], json!("pending_head_teacher"), "{}", submitted.text);
    let due = two_working_days_after(today());
    assert_eq!(submitted.body["due_by"], json!(due.to_string()));
    submit(app, &student).await.assert_problem(409, "student_verification_pending");
    put_application(app, &student, &application(&applied, &student))
        .await
        .assert_problem(409, "student_verification_pending");
    // The head teacher on record is told by SMS, with the pass ID.
    let sms = app.wait_for_message(&registered.head_teacher_mobile, "student_review_pending").await;
    assert_eq!(sms.channel, "sms");

    let queue = app.poll_as(&head_teacher.token, "/v1/student-reviews", |r| r.text.contains(&student.student_id)).await;
    let entry = entry_of(&queue, &student).unwrap().clone();
    assert_eq!(entry["differences"], json!(["class"]), "{entry}");
    assert_eq!((&entry["status"], &entry["overdue"]), (&json!("pending_head_teacher"), &json!(false)));
    assert_eq!(entry["due_by"], json!(due.to_string()));
    let review_id = entry["review_id"].as_str().unwrap().to_string();
    // Past its due day it is flagged overdue (the due day moved back in the read model: the
    // server's clock cannot be moved).
    let yesterday = (today() - Duration::days(1)).to_string();
    let sql = match app.store {
        shenfen_tests::Store::Postgres => "UPDATE students SET due_by = $1::date WHERE student_id = $2",
        shenfen_tests::Store::Sqlite => "UPDATE students SET due_by = $1 WHERE student_id = $2",
    };
    assert_eq!(app.execute_sql(sql, &[&yesterday, &student.student_id]).await, 1);
    let late = app.get_as(&head_teacher.token, "/v1/student-reviews").await;
    assert_eq!(entry_of(&late, &student).unwrap()["overdue"], json!(true), "{}", late.text);
    // Only their class: another class's head teacher sees nothing and cannot decide.
    let others = app.get_as(&other_class.token, "/v1/student-reviews").await;
    others.assert_status(200);
    assert!(entry_of(&others, &student).is_none(), "{}", others.text);
    let decide = format!("/v1/student-reviews/{review_id}/decision");
    app.post_json_as(&other_class.token, &decide, &json!({"decision": "approve"}))
        .await
        .assert_problem(403, "out_of_scope");
    app.get_as(&other_class.token, &format!("/v1/student-reviews/{review_id}/materials/household_register"))
        .await
        .assert_problem(403, "out_of_scope");
    // An admin moves that head teacher to the class applied for: their sessions end, and with
    // the new scope the review is theirs to see.
    let role = format!("/v1/staff/accounts/{username}/role");
    let to_admin = json!({"role": "school_admin", "school_code": SCHOOL, "class": "3班"});
    app.put_json_as(&staff_admin.token, &role, &to_admin).await.assert_field_error("class", "not_for_this_role");
    let no_class = json!({"role": "head_teacher", "school_code": SCHOOL, "grade": 8});
    app.put_json_as(&staff_admin.token, &role, &no_class).await.assert_field_error("class", "required");
    let moved = json!({"role": "head_teacher", "school_code": SCHOOL, "grade": 8, "class": "3班"});
    app.put_json_as(&staff_admin.token, &role, &moved).await.assert_status(204);
    app.get_as(&other_class.token, "/v1/student-reviews").await.assert_problem(401, "unauthenticated");
    let moved_token = app.staff_token(&username, "Zq7#head-teacher").await;
    let theirs = app.get_as(&moved_token, "/v1/student-reviews").await;
    assert!(entry_of(&theirs, &student).is_some(), "{}", theirs.text);
    // The school admin sees it but a decision is the head teacher's.
    let admins = app.get_as(&admin.token, "/v1/student-reviews").await;
    assert!(entry_of(&admins, &student).is_some(), "{}", admins.text);
    app.post_json_as(&admin.token, &decide, &json!({"decision": "approve"})).await.assert_problem(403, "forbidden");
    let found = app.get_as(&admin.token, &format!("/v1/schools/{SCHOOL}/students?q={}", student.pass_id)).await;
    found.assert_status(200);
    assert_eq!(found.body[0]["student_id"], json!(student.student_id));
    app.get_as(&admin.token, "/v1/schools/3202001/students?q=x").await.assert_problem(403, "out_of_scope");

    let photo =
        app.get_as(&head_teacher.token, &format!("/v1/student-reviews/{review_id}/materials/household_register")).await;
    photo.assert_status(200);
    assert_eq!(photo.content_type(), "image/jpeg");
    app.post_json_as(&head_teacher.token, &decide, &json!({"decision": "return"}))
        .await
        .assert_field_error("reason", "reason_required");
    let approved = app
        .post_json_as(&head_teacher.token, &decide, &json!({"decision": "approve", "reason": "借读生，已核实"}))
        .await;
    approved.assert_status(200);
    assert_eq!(approved.body["status"], json!("approved"));
    app.post_json_as(&head_teacher.token, &decide, &json!({"decision": "approve"}))
        .await
        .assert_problem(409, "not_pending");
    assert_eq!(me(app, &student).await["status"], json!("approved"));
    let timeline = app.get_as(&student.token, "/v1/student/me/timeline").await;
    assert_eq!(statuses(&timeline).last().unwrap(), &("approved".to_string(), "head_teacher".to_string()));
    app.poll_as(&head_teacher.token, "/v1/student-reviews", |r| !r.text.contains(&student.student_id)).await;
}
both_stores!(a_transfer_student_goes_to_the_head_teacher_of_the_class_applied_for, settings());

async fn a_returned_application_is_fixed_and_submitted_again(app: &mut TestApp) {
    let on_record = record();
    let misspelt = StudentRecord { name: "李晓明".into(), ..on_record.clone() };
    let student = ready(app, &misspelt, RegistryEntry::Found(on_record.clone())).await;
    let head_teacher = app.school_staff(SCHOOL, Some((8, "３班"))).await;
    submit(app, &student).await.assert_status(200);
    let queue = app.poll_as(&head_teacher.token, "/v1/student-reviews", |r| r.text.contains(&student.student_id)).await;
    let entry = entry_of(&queue, &student).unwrap().clone();
    assert_eq!(entry["differences"], json!(["name"]));
    let decide = format!("/v1/student-reviews/{}/decision", entry["review_id"].as_str().unwrap());
    let reason = "姓名与户口本不一致，请按户口本填写";
    app.post_json_as(&head_teacher.token, &decide, &json!({"decision": "return", "reason": reason}))
        .await
        .assert_status(200);
    let returned = me(app, &student).await;
    assert_eq!((&returned["status"], &returned["return_reason"]), (&json!("returned"), &json!(reason)));
    let fixed = json!({"personal": {"name": on_record.name, "id_number": on_record.id_number, "birth_date": on_record.birth_date}});
    put_application(app, &student, &fixed).await.assert_status(200);
    let again = submit(app, &student).await;
    again.assert_status(200);
    assert_eq!(again.body["status"], json!("approved"), "{}", again.text);
    assert_eq!(again.body["submissions_left_today"], json!(1));
    let timeline = app.get_as(&student.token, "/v1/student/me/timeline").await;
    let steps = statuses(&timeline);
    assert!(steps.contains(&("returned".to_string(), "head_teacher".to_string())), "{steps:?}");
    assert_eq!(
        timeline.body.as_array().unwrap().iter().find(|s| s["status"] == json!("returned")).unwrap()["reason"],
        json!(reason)
    );
    let analyst = app.staff_member("analyst").await;
    let rows = app
        .poll_as(&analyst.token, "/v1/analytics/student-verifications", |r| r.text.contains("\"auto_approved\":1"))
        .await;
    let row = &rows.body[0];
    assert_eq!(
        (&row["submitted"], &row["returned"], &row["auto_approved"]),
        (&json!(2), &json!(1), &json!(1)),
        "{row}"
    );
    assert_eq!(row["return_rate"], json!(0.5));
    let csv = app.get_csv_as(&analyst.token, "/v1/analytics/student-verifications").await;
    csv.assert_status(200);
    let rows = parse_csv(&csv.text);
    assert_eq!(
        rows[0],
        [
            "school_code",
            "day",
            "submitted",
            "auto_approved",
            "head_teacher_approved",
            "returned",
            "registry_failed",
            "auto_approval_rate",
            "return_rate"
        ]
    );
    assert_eq!(rows[1][..7], [SCHOOL, &today().to_string(), "2", "1", "0", "1", "0"]);
}
both_stores!(a_returned_application_is_fixed_and_submitted_again, settings());

async fn a_registry_failure_waits_for_the_school_admin(app: &mut TestApp) {
    let applied = record();
    // Not in the registry at all.
    let student = ready(app, &applied, RegistryEntry::Unavailable).await;
    shenfen_tests::remove_registry_entry(&applied.student_number);
    let failed = submit(app, &student).await;
    failed.assert_status(200);
    assert_eq!(failed.body["status"], json!("registry_failed"));
    assert_eq!(failed.body["registry_error"], json!("student_number_not_in_registry"));
    submit(app, &student).await.assert_problem(409, "school_action_required");

    let admin = app.school_staff(SCHOOL, None).await;
    let elsewhere = app.school_staff("3202001", None).await;
    let head_teacher = app.school_staff(SCHOOL, Some((8, "3班"))).await;
    let queue = app.poll_as(&admin.token, "/v1/student-reviews", |r| r.text.contains(&student.student_id)).await;
    let entry = entry_of(&queue, &student).unwrap().clone();
    assert_eq!(entry["registry_error"], json!("student_number_not_in_registry"));
    assert!(entry_of(&app.get_as(&head_teacher.token, "/v1/student-reviews").await, &student).is_none());
    let review_id = entry["review_id"].as_str().unwrap().to_string();
    let refresh = format!("/v1/student-reviews/{review_id}/registry-refresh");
    app.post_json_as(&elsewhere.token, &refresh, &json!({})).await.assert_problem(403, "out_of_scope");
    app.post_json_as(&head_teacher.token, &refresh, &json!({})).await.assert_problem(403, "forbidden");
    // Still not there: the refresh fails again, yet the school has acted.
    let refreshed = app.post_json_as(&admin.token, &refresh, &json!({})).await;
    refreshed.assert_status(200);
    assert_eq!(refreshed.body["status"], json!("registry_failed"));
    // The registry knows the student under another number: the admin links it.
    let linked_number = student_number();
    set_registry_entry(
        &linked_number,
        RegistryEntry::Found(StudentRecord { student_number: linked_number.clone(), ..applied.clone() }),
    );
    let link = format!("/v1/student-reviews/{review_id}/registry-link");
    app.post_json_as(&admin.token, &link, &json!({"student_number": "bad"}))
        .await
        .assert_field_error("student_number", "invalid_student_number");
    let linked = app.post_json_as(&admin.token, &link, &json!({"student_number": linked_number})).await;
    linked.assert_status(200);
    assert_eq!(linked.body["status"], json!("approved"));
    let steps = statuses(&app.get_as(&student.token, "/v1/student/me/timeline").await);
    assert!(steps.contains(&("registry_refreshed".into(), "school_admin".into())), "{steps:?}");
    assert!(steps.contains(&("registry_linked".into(), "school_admin".into())), "{steps:?}");

    // A school that is not synchronised with the registry fails the same way, named.
    let unsynced = record();
    let other = ready(app, &unsynced, RegistryEntry::SchoolNotSynced).await;
    let answer = submit(app, &other).await;
    assert_eq!(
        (&answer.body["status"], &answer.body["registry_error"]),
        (&json!("registry_failed"), &json!("school_not_synced"))
    );
}
both_stores!(a_registry_failure_waits_for_the_school_admin, settings());

async fn an_unavailable_registry_counts_nothing(app: &mut TestApp) {
    let applied = record();
    let student = ready(app, &applied, RegistryEntry::Unavailable).await;
    for _ in 0..4 {
        submit(app, &student).await.assert_problem(503, "student_registry_unavailable");
    }
    let after = me(app, &student).await;
    assert_eq!((&after["status"], &after["submissions_left_today"]), (&json!("draft"), &json!(3)), "{after}");
    set_registry_entry(&applied.student_number, RegistryEntry::Found(applied.clone()));
    let submitted = submit(app, &student).await;
    assert_eq!((&submitted.body["status"], &submitted.body["submissions_left_today"]), (&json!("approved"), &json!(2)));
    let steps = statuses(&app.get_as(&student.token, "/v1/student/me/timeline").await);
    assert_eq!(steps.iter().filter(|(s, _)| s == "submission_voided").count(), 4, "{steps:?}");
}
both_stores!(an_unavailable_registry_counts_nothing, settings());

async fn a_minor_uses_the_guardians_id_and_materials_follow_the_stage(app: &mut TestApp) {
    let mut applied = record();
    applied.id_number = String::new();
    set_registry_entry(&applied.student_number, RegistryEntry::Found(applied.clone()));
    let student = register(app, &applied.student_number).await;
    // Materials before a grade, then the wrong ones for the stage.
    attach(app, &student, materials(8)).await.assert_problem(409, "enrolment_required");
    let mut body = application(&applied, &student);
    let guardians_id = body["guardian"]["id_number"].clone();
    body["personal"]["id_number"] = guardians_id.clone();
    put_application(app, &student, &body)
        .await
        .assert_field_error("personal.minor_uses_guardian_id", "minor_flag_required");
    body["personal"]["minor_uses_guardian_id"] = json!(true);
    put_application(app, &student, &body).await.assert_status(200);
    attach(app, &student, materials(10)).await.assert_field_error("materials", "material_wrong_for_stage");
    let not_jpeg = MultipartForm::new().file("household_register", "a.png", "image/png", b"\x89PNG\r\n\x1a\nxxxx");
    attach(app, &student, not_jpeg).await.assert_field_error("household_register", "photo_not_jpeg");
    attach(app, &student, materials(8)).await.assert_status(200);
    verify_guardian(app, &student).await;
    let submitted = submit(app, &student).await;
    assert_eq!(submitted.body["status"], json!("approved"), "the ID number is not compared: {}", submitted.text);

    // A high-school student needs both sides of the ID card; a school must be filed.
    let senior = StudentRecord { grade: 11, school_code: UNFILED_SCHOOL.into(), ..record() };
    set_registry_entry(&senior.student_number, RegistryEntry::Found(senior.clone()));
    let other = register(app, &senior.student_number).await;
    put_application(app, &other, &application(&senior, &other)).await.assert_status(200);
    attach(app, &other, materials(8)).await.assert_field_error("materials", "material_wrong_for_stage");
    let front = MultipartForm::new().file("id_front", "front.jpg", "image/jpeg", &labelled_jpeg("front"));
    attach(app, &other, front).await.assert_status(200);
    verify_guardian(app, &other).await;
    let incomplete = submit(app, &other).await;
    incomplete.assert_problem(409, "application_incomplete");
    assert_eq!(incomplete.body["missing"], json!(["materials.id_back"]));
    attach(app, &other, materials(11)).await.assert_status(200);
    submit(app, &other).await.assert_problem(409, "school_not_filed");
}
both_stores!(a_minor_uses_the_guardians_id_and_materials_follow_the_stage, settings());

async fn thirty_concurrent_submissions_count_exactly_three_a_day(app: &mut TestApp) {
    let on_record = record();
    let differing = StudentRecord { name: "李晓明".into(), ..on_record.clone() };
    let student = ready(app, &differing, RegistryEntry::Found(on_record.clone())).await;
    let head_teacher = app.school_staff(SCHOOL, Some((8, "3班"))).await;
    for round in 0..4 {
        let answers = futures::future::join_all((0..30).map(|_| submit(app, &student))).await;
        let ok = answers.iter().filter(|a| a.status.as_u16() == 200).count();
        let exhausted = answers.iter().filter(|a| a.status.as_u16() == 429).count();
        for a in answers.iter().filter(|a| a.status.as_u16() != 200 && a.status.as_u16() != 429) {
            let code = a.body["code"].as_str().unwrap_or_default();
            assert!(
                a.status.as_u16() == 409 && ["student_verification_pending", "conflict_retry"].contains(&code),
                "{}",
                a.describe()
            );
        }
        if round < 3 {
            assert_eq!(ok, 1, "round {round}: one submission is counted");
            let queue =
                app.poll_as(&head_teacher.token, "/v1/student-reviews", |r| r.text.contains(&student.student_id)).await;
            let review_id = entry_of(&queue, &student).unwrap()["review_id"].as_str().unwrap().to_string();
            let decide = format!("/v1/student-reviews/{review_id}/decision");
            let body = json!({"decision": "return", "reason": "请核对姓名"});
            app.post_json_as(&head_teacher.token, &decide, &body).await.assert_status(200);
            app.poll_as(&head_teacher.token, "/v1/student-reviews", |r| !r.text.contains(&student.student_id)).await;
        } else {
            assert_eq!((ok, exhausted), (0, 30), "the fourth round is refused whole");
            let next = answers[0].body["next_attempt_at"].as_str().unwrap().to_string();
            assert!(next.ends_with("T16:00:00Z"), "China midnight: {next}");
        }
    }
    let sql = "SELECT CAST(count(*) AS TEXT) FROM events WHERE aggregate_type = 'student' AND aggregate_id = $1
                 AND event_type = 'Submitted'";
    let counted = app.query_texts(sql, &[student.student_id.as_str()]).await;
    assert_eq!(counted, vec![Some("3".to_string())]);
    assert_eq!(me(app, &student).await["submissions_left_today"], json!(0));
}
both_stores!(thirty_concurrent_submissions_count_exactly_three_a_day, settings());

async fn a_student_gets_a_copy_of_their_data_and_can_be_forgotten(app: &mut TestApp) {
    let applied = record();
    let registered = StudentRecord { class: "4班".into(), ..applied.clone() };
    let student = ready(app, &applied, RegistryEntry::Found(registered)).await;
    let head_teacher = app.school_staff(SCHOOL, Some((8, "3班"))).await;
    let auditor = app.staff_member("auditor").await;
    let analyst = app.staff_member("analyst").await;
    submit(app, &student).await.assert_status(200);
    let queue = app.poll_as(&head_teacher.token, "/v1/student-reviews", |r| r.text.contains(&student.student_id)).await;
    let review_id = entry_of(&queue, &student).unwrap()["review_id"].as_str().unwrap().to_string();

    // The copy: the student and application, the events with their actors, the materials.
    let export = app.get_as(&student.token, "/v1/student/me/export").await;
    export.assert_status(200);
    assert_eq!(export.headers["content-type"], "application/zip");
    let files = unzip(&export.bytes);
    let held: Value = serde_json::from_slice(&files["student.json"]).unwrap();
    assert_eq!((&held["student_number"], &held["personal"]["name"]), (&json!(student.number), &json!(applied.name)));
    let events: Value = serde_json::from_slice(&files["events/student.json"]).unwrap();
    let types: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert!(types.contains(&"Registered") && types.contains(&"SentToHeadTeacher"), "{types:?}");
    assert!(files.contains_key("materials/household_register.jpg"), "{:?}", files.keys());

    // Deletion with the password; no cooling-off in this test: erased at once.
    let deletion = "/v1/student/me/deletion";
    app.post_json_as(&student.token, deletion, &json!({"password": "Wrong#pass99"}))
        .await
        .assert_problem(401, "login_failed");
    let deleted = app.post_json_as(&student.token, deletion, &json!({"password": student.password})).await;
    deleted.assert_status(202);
    app.get_as(&student.token, "/v1/student/me").await.assert_problem(401, "unauthenticated");
    let login = json!({"login": student.pass_id, "password": student.password});
    app.post_json("/v1/student-sessions", &login).await.assert_problem(401, "login_failed");

    // Every reader shows `[erased]`; the events stay and hold nothing readable.
    let audited = app.audit_events(&auditor.token, "student", &student.student_id).await;
    audited.assert_status(200);
    assert!(audited.text.contains("[erased]") && audited.text.contains("\"Erased\""), "{}", audited.text);
    for secret in [&applied.name, &applied.id_number, &student.guardian_mobile, &student.mobile, &student.number] {
        assert!(!audited.text.contains(secret.as_str()), "{secret} is still readable: {}", audited.text);
    }
    app.poll_as(&head_teacher.token, "/v1/student-reviews", |r| !r.text.contains(&student.student_id)).await;
    app.get_as(&head_teacher.token, &format!("/v1/student-reviews/{review_id}/materials/household_register"))
        .await
        .assert_problem(404, "review_not_found");
    // The analyst table keeps its counts.
    let rows = app.poll_as(&analyst.token, "/v1/analytics/student-verifications", |r| r.text.contains(SCHOOL)).await;
    assert_eq!(rows.body[0]["submitted"], json!(1), "{}", rows.text);

    // The student number registers anew, with a new pass ID.
    let again = register(app, &student.number).await;
    assert_eq!(again.student_id, student.student_id);
    assert_ne!(again.pass_id, student.pass_id);
    let fresh = me(app, &again).await;
    assert_eq!((&fresh["status"], &fresh["application"]["personal"]), (&json!("draft"), &Value::Null), "{fresh}");
    app.post_json("/v1/student-sessions", &login).await.assert_problem(401, "login_failed");
}
both_stores!(
    a_student_gets_a_copy_of_their_data_and_can_be_forgotten,
    settings().env("SHENFEN_DELETION_COOLING_OFF_DAYS", "0")
);

async fn a_students_deletion_waits_and_a_login_withdraws_it(app: &mut TestApp) {
    let applied = record();
    let student = ready(app, &applied, RegistryEntry::Found(applied.clone())).await;
    let deletion = "/v1/student/me/deletion";
    app.delete_as(&student.token, deletion).await.assert_problem(409, "no_deletion_pending");
    let asked = app.post_json_as(&student.token, deletion, &json!({"password": student.password})).await;
    asked.assert_status(202);
    let due = chrono::DateTime::parse_from_rfc3339(&asked.str("effective_at")).unwrap().with_timezone(&Utc);
    assert!(due > Utc::now() + Duration::days(14), "the cooling-off period: {due}");
    app.delete_as(&student.token, deletion).await.assert_status(204);
    app.post_json_as(&student.token, deletion, &json!({"password": student.password})).await.assert_status(202);
    let login = json!({"login": student.number, "password": student.password});
    app.post_json("/v1/student-sessions", &login).await.assert_status(201);
    app.delete_as(&student.token, deletion).await.assert_problem(409, "no_deletion_pending");
    assert_eq!(me(app, &student).await["application"]["personal"]["name"], json!(applied.name));
}
both_stores!(a_students_deletion_waits_and_a_login_withdraws_it, settings());

/// A restored database backup from before a student's erasure: the start-up journal replay
/// destroys the key again and applies the erasure the restored stream lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_students_erasure_survives_the_restore_of_a_backup_taken_before_it() {
    shenfen_tests::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
    let settings = settings().env("SHENFEN_DELETION_COOLING_OFF_DAYS", "0");
    let mut app = TestApp::spawn(shenfen_tests::Store::Sqlite, settings).await;
    let auditor = app.staff_member("auditor").await;
    let applied = record();
    let student = ready(&app, &applied, RegistryEntry::Found(applied.clone())).await;

    app.backup_sqlite().await;
    let deletion = json!({"password": student.password});
    app.post_json_as(&student.token, "/v1/student/me/deletion", &deletion).await.assert_status(202);

    app.restore_sqlite().await;
    let restored = app.audit_events(&auditor.token, "student", &student.student_id).await;
    restored.assert_status(200);
    assert!(restored.text.contains("[erased]") && restored.text.contains("\"Erased\""), "{}", restored.text);
    for secret in [&applied.name, &applied.id_number, &student.guardian_mobile] {
        assert!(!restored.text.contains(secret.as_str()), "{secret} readable again: {}", restored.text);
    }
    app.get_as(&student.token, "/v1/student/me").await.assert_problem(401, "unauthenticated");
    let login = json!({"login": student.pass_id, "password": student.password});
    app.post_json("/v1/student-sessions", &login).await.assert_problem(401, "login_failed");
}
