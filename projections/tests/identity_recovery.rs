//! The identity process manager finishes a step interrupted between the two aggregates, and
//! replaying it changes nothing: run on a real SQLite store.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use shenfen_domain::account::{Account, AccountCommand, AccountEvent, RealNameStatus, Registration};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::contact::{Email, Mobile};
use shenfen_domain::shared::document::{check_char, DocumentNumber, DocumentType};
use shenfen_domain::shared::name::PersonName;
use shenfen_domain::shared::validity::Validity;
use shenfen_domain::verification::{AuthorityAnswer, Verification, VerificationCommand};
use shenfen_projections::db::Db;
use shenfen_projections::identity::IdentityProcess;
use shenfen_projections::runner;
use shenfen_projections::store::CommandBus;

fn meta() -> EventMetadata {
    EventMetadata {
        actor: Actor::System { id: "test".into() },
        request_id: "r".into(),
        at: Utc.with_ymd_and_hms(2026, 5, 10, 1, 0, 0).single().unwrap_or_default(),
    }
}

#[tokio::test]
async fn a_verified_name_reaches_the_account_after_a_restart_and_only_once() {
    let path = std::env::temp_dir().join(format!("shenfen-identity-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = Db::open(&format!("sqlite://{}", path.display()), 4).await.expect("open sqlite");
    let commits = shenfen_projections::commits::Commits::new(&db);
    let accounts: Arc<CommandBus<Account>> = Arc::new(CommandBus::new(&db, (), commits.clone()));
    let verifications: Arc<CommandBus<Verification>> = Arc::new(CommandBus::new(&db, (), commits.clone()));

    let now = meta().at;
    let today = NaiveDate::from_ymd_opt(2026, 5, 10).expect("date");
    let base = "11010519800101123";
    let number = DocumentNumber::parse(DocumentType::ResidentIdCard, &format!("{base}{}", check_char(base)), today)
        .expect("number");
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let registration = Registration {
        document_type: DocumentType::ResidentIdCard,
        document_number: number,
        name: PersonName::parse("张叁").expect("name"),
        validity: Validity::parse("20y", start, DocumentType::ResidentIdCard, None, today).expect("validity"),
        email: Email::parse("a@example.com").expect("email"),
        mobile: Mobile::parse("13800138000").expect("mobile"),
        password_hash: "H".into(),
        now,
    };
    accounts.execute("acc", AccountCommand::Register(registration), &meta()).await.expect("register");
    let start_attempt = VerificationCommand::StartAttempt {
        account_id: "acc".into(),
        attempt_id: "a1".into(),
        name: PersonName::parse("张三").expect("name"),
        validity: None,
        abandon_before: now - chrono::Duration::minutes(2),
        now,
    };
    verifications.execute("acc", start_attempt, &meta()).await.expect("start");
    let answer = VerificationCommand::RecordAnswer { attempt_id: "a1".into(), answer: AuthorityAnswer::Passed, now };
    verifications.execute("acc", answer, &meta()).await.expect("answer");

    // The process stopped here: the account has not heard of the pass yet.
    let account = accounts.load("acc").await.expect("load");
    assert_eq!(account.name.as_ref().map(|n| n.as_str()), Some("张叁"));
    assert_eq!(account.real_name_status, RealNameStatus::Unverified);

    // A restart runs the process manager from its checkpoint.
    let process = Arc::new(IdentityProcess { accounts: accounts.clone(), verifications: verifications.clone() });
    runner::catch_up(&db, process.clone(), 100, |_| {}).await.expect("catch up");
    let (account, sequence) = accounts.load_versioned("acc").await.expect("load");
    assert_eq!(account.name.as_ref().map(|n| n.as_str()), Some("张三"));
    assert_eq!(account.real_name_status, RealNameStatus::Verified);
    let history = shenfen_projections::audit::history(&db, "account", "acc").await.expect("history");
    assert!(
        history.iter().any(|e| e.event_type == "ResubmissionRequired"),
        "the name change tells downstream services"
    );

    // Replaying the same events (a crash before the checkpoint) adds nothing.
    shenfen_projections::exec!(
        &db,
        "UPDATE projection_checkpoints SET transaction_id = 0, position = 0 WHERE projection = $1",
        IdentityProcess::NAME
    )
    .expect("reset checkpoint");
    runner::catch_up(&db, process, 100, |_| {}).await.expect("catch up again");
    let (_, again) = accounts.load_versioned("acc").await.expect("load");
    assert_eq!(again, sequence, "no event was written twice");
    let events: Vec<AccountEvent> = shenfen_projections::audit::history(&db, "account", "acc")
        .await
        .expect("history")
        .into_iter()
        .map(|e| serde_json::from_value(e.payload).expect("decode"))
        .collect();
    assert_eq!(events.iter().filter(|e| matches!(e, AccountEvent::ResubmissionRequired { .. })).count(), 1);
    db.close().await;
    let _ = std::fs::remove_file(&path);
}
