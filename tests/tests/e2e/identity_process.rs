//! The identity process manager on real stores, driven directly (no server): it finishes a
//! step interrupted between the two aggregates, replaying it changes nothing, a process
//! manager that runs behind carries every event as it happened, and proof given before a
//! re-registration never reaches the re-registered account.

use std::sync::Arc;

use crate::common::{meta, now, registration};
use chrono::NaiveDate;
use shenfen_domain::account::{Account, AccountCommand, AccountEvent, RealNameStatus};
use shenfen_domain::shared::document::DocumentType;
use shenfen_domain::shared::name::PersonName;
use shenfen_domain::shared::validity::Validity;
use shenfen_domain::verification::{AuthorityAnswer, Photos, Verification, VerificationCommand};
use shenfen_projections::chain::ChainKey;
use shenfen_projections::commits::Commits;
use shenfen_projections::db::Db;
use shenfen_projections::identity::IdentityProcess;
use shenfen_projections::runner;
use shenfen_projections::store::CommandBus;

fn name(text: &str) -> PersonName {
    PersonName::parse(text).expect("name")
}

struct Stores {
    db: Db,
    accounts: Arc<CommandBus<Account>>,
    verifications: Arc<CommandBus<Verification>>,
    process: Arc<IdentityProcess>,
    keyring: Arc<shenfen_projections::pii::Keyring>,
}

impl Stores {
    fn new(db: Db) -> Stores {
        let commits = Commits::new(&db, ChainKey::derive(&[0u8; 32]));
        let accounts = Arc::new(CommandBus::new(&db, (), commits.clone()));
        let keyring = commits.keyring().clone();
        let verifications = Arc::new(CommandBus::new(&db, (), commits));
        let process = Arc::new(IdentityProcess { accounts: accounts.clone(), verifications: verifications.clone() });
        Stores { db, accounts, verifications, process, keyring }
    }

    async fn account(&self, command: AccountCommand) {
        self.accounts.execute("acc", command, &meta()).await.expect("account command");
    }

    async fn verification(&self, command: VerificationCommand) {
        self.verifications.execute("acc", command, &meta()).await.expect("verification command");
    }

    /// A real-name attempt with this name and the authority's answer.
    async fn attempt(&self, id: &str, as_name: &str, answer: AuthorityAnswer) {
        self.verification(VerificationCommand::StartAttempt(shenfen_domain::verification::StartAttempt {
            account_id: "acc".into(),
            attempt_id: id.into(),
            name: name(as_name),
            validity: None,
            abandon_before: now() - chrono::Duration::minutes(2),
            now: now(),
        }))
        .await;
        self.verification(VerificationCommand::RecordAnswer(shenfen_domain::verification::RecordAnswer {
            attempt_id: id.into(),
            answer,
            now: now(),
        }))
        .await;
    }

    /// Runs the process manager from its checkpoint until it has handled every event.
    async fn run_process_manager(&self) {
        runner::catch_up(&self.db, Some(self.keyring.clone()), self.process.clone(), 100, |_| {})
            .await
            .expect("catch up");
    }

    async fn account_events(&self) -> Vec<AccountEvent> {
        let mut events = shenfen_projections::audit::history(&self.db, "account", "acc").await.expect("history");
        shenfen_projections::audit::open(&self.keyring, &mut events).await.expect("open");
        events.into_iter().map(|e| serde_json::from_value(e.payload).expect("decode")).collect()
    }
}

async fn a_verified_name_reaches_the_account_after_a_restart_and_only_once(db: Db) {
    let s = Stores::new(db);
    s.account(AccountCommand::Register(registration("张叁"))).await;
    s.attempt("a1", "张三", AuthorityAnswer::Passed).await;

    // The process stopped here: the account has not heard of the pass yet.
    let account = s.accounts.load("acc").await.expect("load");
    assert_eq!(account.name.as_ref().map(|n| n.as_str()), Some("张叁"));
    assert_eq!(account.real_name_status, RealNameStatus::Unverified);

    // A restart runs the process manager from its checkpoint.
    s.run_process_manager().await;
    let (account, sequence) = s.accounts.load_versioned("acc").await.expect("load");
    assert_eq!(account.name.as_ref().map(|n| n.as_str()), Some("张三"));
    assert_eq!(account.real_name_status, RealNameStatus::Verified);
    let resubmissions = |events: &[AccountEvent]| {
        events.iter().filter(|e| matches!(e, AccountEvent::ResubmissionRequired { .. })).count()
    };
    assert_eq!(resubmissions(&s.account_events().await), 1, "the name change tells downstream services");

    // Replaying the same events (a crash before the checkpoint) adds nothing.
    shenfen_projections::exec!(
        &s.db,
        "UPDATE projection_checkpoints SET transaction_id = 0, position = 0 WHERE projection = $1",
        IdentityProcess::NAME
    )
    .expect("reset checkpoint");
    s.run_process_manager().await;
    let (_, again) = s.accounts.load_versioned("acc").await.expect("load");
    assert_eq!(again, sequence, "no event was written twice");
    assert_eq!(resubmissions(&s.account_events().await), 1);
}

async fn a_process_manager_that_runs_behind_carries_every_event_as_it_happened(db: Db) {
    let s = Stores::new(db);
    s.account(AccountCommand::Register(registration("张叁"))).await;
    // Five verification events are written before the process manager runs: a failed
    // attempt, an application, its claim and its approval under another name.
    s.attempt("a1", "张叁", AuthorityAnswer::Failed { reason: "name_mismatch".into() }).await;
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let today = NaiveDate::from_ymd_opt(2026, 5, 10).expect("date");
    let request = shenfen_domain::verification::ReviewRequest {
        document_type: DocumentType::ResidentIdCard,
        name: name("张三"),
        validity: Validity::parse("20y", start, DocumentType::ResidentIdCard, None, today).expect("validity"),
        photos: Photos { front: "f".into(), back: "b".into(), handheld: "h".into() },
    };
    s.verification(VerificationCommand::Apply(shenfen_domain::verification::Apply {
        account_id: "acc".into(),
        review_id: "rev1".into(),
        request,
        due_by: today + chrono::Duration::days(9),
        now: now(),
    }))
    .await;
    s.verification(VerificationCommand::Claim(shenfen_domain::verification::ClaimApplication {
        review_id: "rev1".into(),
        reviewer: "r1".into(),
        reviewer_account: None,
        now: now(),
    }))
    .await;
    s.verification(VerificationCommand::Decide(shenfen_domain::verification::DecideApplication {
        review_id: "rev1".into(),
        reviewer: "r1".into(),
        decision: shenfen_domain::verification::Decision::Approve,
        now: now(),
    }))
    .await;

    s.run_process_manager().await;

    let account = s.accounts.load("acc").await.expect("load");
    assert_eq!(account.name.as_ref().map(|n| n.as_str()), Some("张三"), "the approved name reached the account");
    assert_eq!(account.real_name_status, RealNameStatus::ManualReviewApproved);
    let events = s.account_events().await;
    let carried: Vec<(i64, RealNameStatus)> = events
        .iter()
        .filter_map(|e| match e {
            AccountEvent::RealNameStatusChanged { status, verification_sequence, .. } => {
                Some((*verification_sequence, *status))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        carried,
        vec![
            (2, RealNameStatus::Failed),
            (3, RealNameStatus::ManualReviewPending),
            (5, RealNameStatus::ManualReviewApproved)
        ],
        "each event is carried with its own sequence and the status it made"
    );
    assert_eq!(
        events.iter().filter(|e| matches!(e, AccountEvent::ResubmissionRequired { .. })).count(),
        1,
        "the approved name change tells downstream services"
    );
}

async fn proof_given_before_a_reregistration_never_reaches_the_new_registrant(db: Db) {
    let s = Stores::new(db);
    s.account(AccountCommand::Register(registration("张叁"))).await;
    s.attempt("a1", "张叁", AuthorityAnswer::Passed).await;
    // Someone registers the document again before the process manager has run.
    s.account(AccountCommand::Reregister(registration("李四"))).await;

    let account = s.accounts.load("acc").await.expect("load");
    let verification = s.verifications.load("acc").await.expect("load");
    assert!(verification.is_proven(), "the stream still holds the earlier holder's pass");
    assert!(!verification.proves(&account), "the business gate does not count it for the new registrant");

    s.run_process_manager().await;

    let account = s.accounts.load("acc").await.expect("load");
    let verification = s.verifications.load("acc").await.expect("load");
    assert_eq!(account.name.as_ref().map(|n| n.as_str()), Some("李四"), "the earlier holder's name stays out");
    assert_eq!(account.real_name_status, RealNameStatus::Unverified);
    assert!(!verification.proves(&account), "identity must be proven again");
    assert_eq!(verification.generation, account.generation, "the reset reached the verification stream");

    // The new registrant proves their own identity.
    s.attempt("a2", "李四", AuthorityAnswer::Passed).await;
    s.run_process_manager().await;
    let account = s.accounts.load("acc").await.expect("load");
    let verification = s.verifications.load("acc").await.expect("load");
    assert_eq!(account.real_name_status, RealNameStatus::Verified);
    assert!(verification.proves(&account));
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn on_sqlite() {
                    super::$scenario(crate::common::sqlite(stringify!($scenario)).await).await;
                }

                #[tokio::test]
                async fn on_postgres() {
                    let (_server, _, db) = crate::common::postgres().await;
                    super::$scenario(db).await;
                }
            }
        )*
    };
}

on_both_stores!(
    a_verified_name_reaches_the_account_after_a_restart_and_only_once,
    a_process_manager_that_runs_behind_carries_every_event_as_it_happened,
    proof_given_before_a_reregistration_never_reaches_the_new_registrant,
);
