//! Personal information (PIPL): the log holds personal data only sealed under its data
//! subject's key, yet every reader that may see it (the holder, support, auditors) does.

use serde_json::json;
use shenfen_tests::{both_stores, Identity, Settings, TestApp};

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

    // Auditors read the events opened.
    let auditor = app.staff_member("auditor").await;
    let audited = app.audit_events(&auditor.token, "account", &account.account_id).await;
    audited.assert_status(200);
    assert!(audited.text.contains(&on_record.name), "{}", audited.text);
}
both_stores!(
    no_name_document_mobile_or_email_is_stored_in_plain_text,
    Settings::with_identities(vec![Identity::resident("赵敏")])
);
