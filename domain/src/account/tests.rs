//! Given/when/then tests of the account aggregate, one or more per command.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::shared::contact::{Email, Mobile};
use crate::shared::document::{check_char, DocumentNumber, DocumentType};
use crate::shared::ethnicity::Ethnicity;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;
use crate::shared::Gender;

type Fx = TestFramework<Account>;

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 10, h, m, s).single().unwrap_or_default()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 5, 10).unwrap_or_default()
}

fn number() -> DocumentNumber {
    let base = "11010519800101123";
    let full = format!("{base}{}", check_char(base));
    DocumentNumber::parse(DocumentType::ResidentIdCard, &full, today()).expect("valid number")
}

fn name(s: &str) -> PersonName {
    PersonName::parse(s).expect("valid name")
}

fn validity() -> Validity {
    Validity::parse(
        "20y",
        NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default(),
        DocumentType::ResidentIdCard,
        None,
        today(),
    )
    .expect("valid validity")
}

fn registered() -> AccountEvent {
    AccountEvent::Registered {
        document_type: DocumentType::ResidentIdCard,
        document_number: number(),
        name: name("张三"),
        validity: validity(),
        email: Email::parse("123456@qq.com").expect("email"),
        mobile: Mobile::parse("13800138000").expect("mobile"),
        password_hash: "H1".into(),
        registered_at: t(0, 0, 0),
        consent: None,
    }
}

fn registration(hash: &str, at: DateTime<Utc>) -> Registration {
    Registration {
        document_type: DocumentType::ResidentIdCard,
        document_number: number(),
        name: name("张三"),
        validity: validity(),
        email: Email::parse("123456@qq.com").expect("email"),
        mobile: Mobile::parse("13800138000").expect("mobile"),
        password_hash: hash.into(),
        now: at,
        consent: None,
    }
}

fn session(id: &str) -> NewSession {
    NewSession { session_id: id.into(), token_hash: format!("tok-{id}"), expires_at: t(12, 0, 0) }
}

/// A password checked against `H1`: right (then `then`) or wrong.
fn checked<T>(then: Option<T>) -> Checked<T> {
    let check = match then {
        Some(then) => PasswordCheck::Right(then),
        None => PasswordCheck::Wrong,
    };
    Checked {
        checked_hash: "H1".into(),
        lockout: LockoutPolicy { threshold: 5, duration: Duration::minutes(15) },
        check,
    }
}

fn login(matched: bool, at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::LogIn(LogIn { password: checked(matched.then(|| session("s1"))), now: at })
}

fn eth(code: &str) -> Ethnicity {
    Ethnicity::parse(code).expect("an ethnicity code")
}

fn profile(ethnicity: &str) -> Profile {
    Profile { ethnicity: eth(ethnicity), gender: None, birth_date: None, local_id_number: None, permit_number: None }
}

fn started(id: &str, at: DateTime<Utc>) -> AccountEvent {
    let s = session(id);
    AccountEvent::SessionStarted { session_id: s.session_id, token_hash: s.token_hash, expires_at: s.expires_at, at }
}

fn legacy() -> AccountEvent {
    AccountEvent::LegacyImported {
        document_type: DocumentType::ResidentIdCard,
        document_number: number(),
        name: name("张三"),
        registered_at: Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).single().unwrap_or_default(),
    }
}

#[tokio::test]
async fn a_new_document_registers() {
    Fx::with(())
        .given_no_previous_events()
        .when_async(AccountCommand::Register(registration("H1", t(0, 0, 0))))
        .await
        .then_expect_events(vec![registered()]);
}

#[tokio::test]
async fn registration_is_refused_when_the_document_is_taken() {
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::Register(registration("H2", t(1, 0, 0))))
        .await
        .then_expect_error(AccountError::AlreadyRegistered);
}

#[tokio::test]
async fn a_legacy_document_may_register_again() {
    let result = Fx::with(())
        .given(vec![legacy()])
        .when_async(AccountCommand::Register(registration("H1", t(0, 0, 0))))
        .await
        .inspect_result();
    assert!(matches!(result.as_deref(), Ok([AccountEvent::Registered { .. }])));
}

#[tokio::test]
async fn a_legacy_account_cannot_log_in_or_reset() {
    Fx::with(())
        .given(vec![legacy()])
        .when_async(login(true, t(1, 0, 0)))
        .await
        .then_expect_error(AccountError::LegacyMustReregister);
    Fx::with(())
        .given(vec![legacy()])
        .when_async(AccountCommand::RequestPasswordReset(RequestPasswordReset {
            reset_id: "r".into(),
            name: name("张三"),
            now: t(1, 0, 0),
        }))
        .await
        .then_expect_error(AccountError::LegacyMustReregister);
}

#[tokio::test]
async fn importing_a_legacy_account_twice_is_refused() {
    Fx::with(())
        .given(vec![legacy()])
        .when_async(AccountCommand::ImportLegacy(ImportLegacy {
            document_type: DocumentType::ResidentIdCard,
            document_number: number(),
            name: name("张三"),
            registered_at: t(0, 0, 0),
            now: t(0, 0, 0),
        }))
        .await
        .then_expect_error(AccountError::AlreadyRegistered);
}

#[tokio::test]
async fn the_right_password_starts_a_session() {
    Fx::with(())
        .given(vec![registered()])
        .when_async(login(true, t(1, 0, 0)))
        .await
        .then_expect_events(vec![started("s1", t(1, 0, 0))]);
}

#[tokio::test]
async fn a_wrong_password_is_counted() {
    Fx::with(())
        .given(vec![registered()])
        .when_async(login(false, t(1, 0, 0)))
        .await
        .then_expect_events(vec![AccountEvent::LoginFailed { at: t(1, 0, 0) }]);
}

#[tokio::test]
async fn the_fifth_consecutive_failure_locks_the_account() {
    let mut given = vec![registered()];
    given.extend((0..4).map(|i| AccountEvent::LoginFailed { at: t(1, 0, i) }));
    Fx::with(()).given(given).when_async(login(false, t(1, 1, 0))).await.then_expect_events(vec![
        AccountEvent::LoginFailed { at: t(1, 1, 0) },
        AccountEvent::Locked { at: t(1, 1, 0), until: t(1, 16, 0) },
    ]);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let mut given = vec![registered()];
    given.extend((0..4).map(|i| AccountEvent::LoginFailed { at: t(1, 0, i) }));
    given.push(started("s0", t(1, 0, 30)));
    Fx::with(())
        .given(given)
        .when_async(login(false, t(1, 1, 0)))
        .await
        .then_expect_events(vec![AccountEvent::LoginFailed { at: t(1, 1, 0) }]);
}

#[tokio::test]
async fn while_locked_even_the_right_password_is_refused() {
    Fx::with(())
        .given(vec![registered(), AccountEvent::Locked { at: t(1, 0, 0), until: t(1, 15, 0) }])
        .when_async(login(true, t(1, 14, 59)))
        .await
        .then_expect_error(AccountError::Locked { until: t(1, 15, 0) });
}

#[tokio::test]
async fn after_the_lock_expires_the_right_password_works() {
    Fx::with(())
        .given(vec![registered(), AccountEvent::Locked { at: t(1, 0, 0), until: t(1, 15, 0) }])
        .when_async(login(true, t(1, 15, 0)))
        .await
        .then_expect_events(vec![started("s1", t(1, 15, 0))]);
}

#[tokio::test]
async fn a_login_checked_against_an_old_hash_must_be_retried() {
    Fx::with(())
        .given(vec![registered(), AccountEvent::PasswordChanged { password_hash: "H2".into(), at: t(0, 30, 0) }])
        .when_async(login(true, t(1, 0, 0)))
        .await
        .then_expect_error(AccountError::StaleCredentials);
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    Fx::with(())
        .given(vec![registered(), started("s1", t(1, 0, 0))])
        .when_async(AccountCommand::EndSession(EndSession { session_id: "s1".into(), now: t(2, 0, 0) }))
        .await
        .then_expect_events(vec![AccountEvent::SessionEnded { session_id: "s1".into(), at: t(2, 0, 0) }]);
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::EndSession(EndSession { session_id: "s1".into(), now: t(2, 0, 0) }))
        .await
        .then_expect_error(AccountError::SessionNotFound);
}

fn update(profile: ProfileInput) -> AccountCommand {
    AccountCommand::UpdateProfile(UpdateProfile { profile, validity: None, now: t(2, 0, 0) })
}

#[tokio::test]
async fn a_resident_card_profile_needs_only_the_ethnicity() {
    Fx::with(())
        .given(vec![registered()])
        .when_async(update(ProfileInput { ethnicity: Some(eth("01")), ..Default::default() }))
        .await
        .then_expect_events(vec![AccountEvent::ProfileCompleted { profile: profile("01"), at: t(2, 0, 0) }]);
    Fx::with(())
        .given(vec![registered()])
        .when_async(update(ProfileInput::default()))
        .await
        .then_expect_error(AccountError::MissingProfileFields(vec!["ethnicity"]));
}

#[tokio::test]
async fn a_permit_profile_lists_every_missing_field() {
    let permit = AccountEvent::Registered {
        document_type: DocumentType::HmtResidencePermit,
        document_number: DocumentNumber::parse(
            DocumentType::HmtResidencePermit,
            &format!("81000019900101123{}", check_char("81000019900101123")),
            today(),
        )
        .expect("valid permit"),
        name: name("陈大文"),
        validity: validity(),
        email: Email::parse("a@example.com").expect("email"),
        mobile: Mobile::parse("13900139000").expect("mobile"),
        password_hash: "H1".into(),
        registered_at: t(0, 0, 0),
        consent: None,
    };
    Fx::with(())
        .given(vec![permit])
        .when_async(update(ProfileInput {
            ethnicity: Some(eth("01")),
            gender: Some(Gender::Male),
            ..Default::default()
        }))
        .await
        .then_expect_error(AccountError::MissingProfileFields(vec!["birth_date", "local_id_number", "permit_number"]));
}

#[tokio::test]
async fn after_completion_the_gender_is_not_modifiable_but_the_ethnicity_is() {
    let completed = AccountEvent::ProfileCompleted {
        profile: Profile { gender: Some(Gender::Male), ..profile("01") },
        at: t(1, 0, 0),
    };
    Fx::with(())
        .given(vec![registered(), completed.clone()])
        .when_async(update(ProfileInput { gender: Some(Gender::Female), ..Default::default() }))
        .await
        .then_expect_error(AccountError::FieldNotModifiable("gender"));
    Fx::with(())
        .given(vec![registered(), completed])
        .when_async(update(ProfileInput { ethnicity: Some(eth("02")), ..Default::default() }))
        .await
        .then_expect_events(vec![
            AccountEvent::ProfileEdited { ethnicity: Some(eth("02")), validity: None, email: None, at: t(2, 0, 0) },
            AccountEvent::ResubmissionRequired { reason: "profile_edited".into(), at: t(2, 0, 0) },
        ]);
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    Fx::with(())
        .given(vec![registered(), started("s1", t(1, 0, 0)), started("s2", t(1, 1, 0))])
        .when_async(AccountCommand::ChangePassword(ChangePassword {
            password: checked(Some(NewPassword { new_password_hash: "H2".into(), keep_session: "s2".into() })),
            now: t(2, 0, 0),
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::PasswordChanged { password_hash: "H2".into(), at: t(2, 0, 0) },
            AccountEvent::SessionsRevoked { kept: Some("s2".into()), at: t(2, 0, 0) },
        ]);
}

fn reset_requested() -> AccountEvent {
    AccountEvent::PasswordResetRequested { reset_id: "r1".into(), at: t(3, 0, 0) }
}

fn secret_issued(at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::ResetSecretIssued {
        reset_id: "r1".into(),
        method: ResetMethod::Sms,
        secret_hash: "S".into(),
        expires_at: at + Duration::hours(24),
        at,
    }
}

#[tokio::test]
async fn a_reset_needs_the_right_name() {
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::RequestPasswordReset(RequestPasswordReset {
            reset_id: "r1".into(),
            name: name("李四"),
            now: t(3, 0, 0),
        }))
        .await
        .then_expect_error(AccountError::NotFound);
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::RequestPasswordReset(RequestPasswordReset {
            reset_id: "r1".into(),
            name: name("张三"),
            now: t(3, 0, 0),
        }))
        .await
        .then_expect_events(vec![reset_requested()]);
}

fn issue(method: ResetMethod, at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::IssueResetSecret(IssueResetSecret {
        reset_id: "r1".into(),
        method,
        secret_hash: "S".into(),
        ttl: Duration::hours(24),
        now: at,
    })
}

#[tokio::test]
async fn wechat_recovery_needs_a_binding() {
    Fx::with(())
        .given(vec![registered(), reset_requested()])
        .when_async(issue(ResetMethod::Wechat, t(3, 1, 0)))
        .await
        .then_expect_error(AccountError::MethodNotAvailable);
    let result = Fx::with(())
        .given(vec![registered(), AccountEvent::WechatBound { openid: "o1".into(), at: t(2, 0, 0) }, reset_requested()])
        .when_async(issue(ResetMethod::Wechat, t(3, 1, 0)))
        .await
        .inspect_result();
    assert!(matches!(result.as_deref(), Ok([AccountEvent::ResetSecretIssued { method: ResetMethod::Wechat, .. }])));
}

#[tokio::test]
async fn reset_secrets_are_sent_at_most_once_a_minute() {
    Fx::with(())
        .given(vec![registered(), reset_requested(), secret_issued(t(3, 1, 0))])
        .when_async(issue(ResetMethod::Sms, t(3, 1, 59)))
        .await
        .then_expect_error(AccountError::RateLimited { retry_at: t(3, 2, 0) });
}

fn complete(secret: &str, at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::CompletePasswordReset(CompletePasswordReset {
        reset_id: "r1".into(),
        secret_hash: secret.into(),
        new_password_hash: Some("H9".into()),
        now: at,
    })
}

#[tokio::test]
async fn the_right_secret_resets_the_password_and_ends_all_sessions() {
    Fx::with(())
        .given(vec![registered(), started("s1", t(1, 0, 0)), reset_requested(), secret_issued(t(3, 1, 0))])
        .when_async(complete("S", t(3, 5, 0)))
        .await
        .then_expect_events(vec![
            AccountEvent::PasswordReset { reset_id: "r1".into(), password_hash: "H9".into(), at: t(3, 5, 0) },
            AccountEvent::SessionsRevoked { kept: None, at: t(3, 5, 0) },
        ]);
}

#[tokio::test]
async fn a_wrong_secret_is_recorded_and_a_used_one_is_refused() {
    Fx::with(())
        .given(vec![registered(), reset_requested(), secret_issued(t(3, 1, 0))])
        .when_async(complete("X", t(3, 5, 0)))
        .await
        .then_expect_events(vec![AccountEvent::ResetSecretRejected { reset_id: "r1".into(), at: t(3, 5, 0) }]);
    let done = AccountEvent::PasswordReset { reset_id: "r1".into(), password_hash: "H9".into(), at: t(3, 5, 0) };
    Fx::with(())
        .given(vec![registered(), reset_requested(), secret_issued(t(3, 1, 0)), done])
        .when_async(complete("S", t(3, 6, 0)))
        .await
        .then_expect_error(AccountError::InvalidOrExpiredSecret);
}

#[tokio::test]
async fn five_wrong_entries_or_expiry_kill_the_secret() {
    let mut given = vec![registered(), reset_requested(), secret_issued(t(3, 1, 0))];
    given.extend((0..5).map(|_| AccountEvent::ResetSecretRejected { reset_id: "r1".into(), at: t(3, 2, 0) }));
    Fx::with(())
        .given(given)
        .when_async(complete("S", t(3, 5, 0)))
        .await
        .then_expect_error(AccountError::InvalidOrExpiredSecret);
    Fx::with(())
        .given(vec![registered(), reset_requested(), secret_issued(t(3, 1, 0))])
        .when_async(complete("S", t(3, 1, 0) + Duration::hours(24)))
        .await
        .then_expect_error(AccountError::InvalidOrExpiredSecret);
}

#[tokio::test]
async fn reregistration_supersedes_credentials_and_ends_sessions() {
    Fx::with(())
        .given(vec![registered(), started("s1", t(1, 0, 0))])
        .when_async(AccountCommand::Reregister(registration("H7", t(4, 0, 0))))
        .await
        .then_expect_events(vec![
            AccountEvent::Reregistered {
                name: name("张三"),
                validity: validity(),
                email: Email::parse("123456@qq.com").expect("email"),
                mobile: Mobile::parse("13800138000").expect("mobile"),
                password_hash: "H7".into(),
                at: t(4, 0, 0),
                generation: Some(1),
                claim_id: None,
                consent: None,
            },
            AccountEvent::SessionsRevoked { kept: None, at: t(4, 0, 0) },
            AccountEvent::ResubmissionRequired { reason: "reregistered".into(), at: t(4, 0, 0) },
        ]);
    Fx::with(())
        .given_no_previous_events()
        .when_async(AccountCommand::Reregister(registration("H7", t(4, 0, 0))))
        .await
        .then_expect_error(AccountError::NotFound);
}

#[tokio::test]
async fn wechat_binds_and_unbinds() {
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::BindWechat(BindWechat {
            password: checked(Some("o1".to_string())),
            now: t(2, 0, 0),
        }))
        .await
        .then_expect_events(vec![AccountEvent::WechatBound { openid: "o1".into(), at: t(2, 0, 0) }]);
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::UnbindWechat(UnbindWechat { now: t(2, 0, 0) }))
        .await
        .then_expect_error(AccountError::WechatNotBound);
}

#[test]
fn stored_events_of_version_one_still_deserialize() {
    // A fixture of the stored shape: renaming a field or variant breaks this test.
    let json = r#"{"LoginFailed":{"at":"2026-05-10T01:00:00Z"}}"#;
    let event: AccountEvent = serde_json::from_str(json).expect("v1 shape");
    assert_eq!(event, AccountEvent::LoginFailed { at: t(1, 0, 0) });
    let json = r#"{"SessionsRevoked":{"kept":null,"at":"2026-05-10T01:00:00Z"}}"#;
    assert!(serde_json::from_str::<AccountEvent>(json).is_ok());
}

#[test]
fn a_profile_keeps_its_ethnicity_as_the_plain_code() {
    // Profiles were stored with the ethnicity as a string before it became a value type.
    let json = r#"{"ProfileCompleted":{"profile":{"ethnicity":"01"},"at":"2026-05-10T01:00:00Z"}}"#;
    let event: AccountEvent = serde_json::from_str(json).expect("stored shape");
    assert_eq!(event, AccountEvent::ProfileCompleted { profile: profile("01"), at: t(1, 0, 0) });
    assert_eq!(serde_json::to_string(&event).expect("serialise"), json, "written as it was read");
    let with_nulls = r#"{"ProfileCompleted":{"profile":{"ethnicity":"01","gender":null},"at":"2026-05-10T01:00:00Z"}}"#;
    assert_eq!(serde_json::from_str::<AccountEvent>(with_nulls).expect("stored shape"), event);
    let json = r#"{"ProfileEdited":{"ethnicity":"56","at":"2026-05-10T01:00:00Z"}}"#;
    let event: AccountEvent = serde_json::from_str(json).expect("stored shape");
    assert_eq!(
        event,
        AccountEvent::ProfileEdited { ethnicity: Some(eth("56")), validity: None, email: None, at: t(1, 0, 0) }
    );
    let unknown = r#"{"ProfileEdited":{"ethnicity":"57","at":"2026-05-10T01:00:00Z"}}"#;
    assert!(serde_json::from_str::<AccountEvent>(unknown).is_err(), "a code outside GB/T 3304 is refused");
}

#[tokio::test]
async fn a_wrong_current_password_is_a_failed_login_and_locks_at_the_threshold() {
    let mut given = vec![registered(), started("s1", t(1, 0, 0))];
    given.extend((0..4).map(|_| AccountEvent::LoginFailed { at: t(1, 1, 0) }));
    Fx::with(())
        .given(given)
        .when_async(AccountCommand::ChangePassword(ChangePassword { password: checked(None), now: t(2, 0, 0) }))
        .await
        .then_expect_events(vec![
            AccountEvent::LoginFailed { at: t(2, 0, 0) },
            AccountEvent::Locked { at: t(2, 0, 0), until: t(2, 15, 0) },
        ]);
}

#[tokio::test]
async fn an_eleventh_session_ends_the_oldest() {
    let mut given = vec![registered()];
    given.extend((0..10).map(|i| started(&format!("s{i}"), t(1, i, 0))));
    let mut ten = session("s10");
    ten.expires_at = t(12, 0, 0);
    let login = AccountCommand::LogIn(LogIn { password: checked(Some(ten)), now: t(2, 0, 0) });
    let result = Fx::with(()).given(given).when_async(login).await.inspect_result();
    let events = result.unwrap_or_default();
    assert_eq!(events.first(), Some(&AccountEvent::SessionEnded { session_id: "s0".into(), at: t(2, 0, 0) }));
    assert!(matches!(events.get(1), Some(AccountEvent::SessionStarted { .. })));
}

#[tokio::test]
async fn a_fourth_pending_reset_withdraws_the_oldest() {
    let mut given = vec![registered()];
    given.extend((0..3).map(|i| AccountEvent::PasswordResetRequested { reset_id: format!("r{i}"), at: t(1, i, 0) }));
    Fx::with(())
        .given(given)
        .when_async(AccountCommand::RequestPasswordReset(RequestPasswordReset {
            reset_id: "r3".into(),
            name: name("张三"),
            now: t(2, 0, 0),
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::ResetWithdrawn { reset_id: "r0".into(), at: t(2, 0, 0) },
            AccountEvent::PasswordResetRequested { reset_id: "r3".into(), at: t(2, 0, 0) },
        ]);
}

fn support_action(agent: &str) -> SupportAction {
    SupportAction { agent: agent.into(), reason: "邮件 #1".into(), evidence_ref: "mail-1".into() }
}

#[tokio::test]
async fn a_contact_change_needs_a_second_agent_and_ends_pending_resets() {
    let requested = AccountEvent::ContactChangeRequested {
        request_id: "scr1".into(),
        mobile: Some(Mobile::parse("13900139000").expect("mobile")),
        email: None,
        by: support_action("agent-1"),
        at: t(1, 0, 0),
    };
    let reset = AccountEvent::PasswordResetRequested { reset_id: "r1".into(), at: t(1, 1, 0) };
    Fx::with(())
        .given(vec![registered(), requested.clone()])
        .when_async(AccountCommand::ApproveContactChange(ApproveContactChange {
            request_id: "scr1".into(),
            approver: "agent-1".into(),
            now: t(2, 0, 0),
        }))
        .await
        .then_expect_error(AccountError::SameAgent);
    Fx::with(())
        .given(vec![registered(), requested, reset])
        .when_async(AccountCommand::ApproveContactChange(ApproveContactChange {
            request_id: "scr1".into(),
            approver: "agent-2".into(),
            now: t(2, 0, 0),
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::ContactChangedBySupport {
                mobile: Some(Mobile::parse("13900139000").expect("mobile")),
                email: None,
                by: support_action("agent-1"),
                at: t(2, 0, 0),
                request_id: Some("scr1".into()),
                approved_by: Some("agent-2".into()),
            },
            AccountEvent::ResetWithdrawn { reset_id: "r1".into(), at: t(2, 0, 0) },
        ]);
}

#[tokio::test]
async fn correcting_a_verified_name_tells_downstream_services() {
    let verified = AccountEvent::RealNameStatusChanged {
        status: RealNameStatus::Verified,
        verification_sequence: 2,
        at: t(1, 0, 0),
    };
    Fx::with(())
        .given(vec![registered(), verified])
        .when_async(AccountCommand::SupportCorrect(SupportCorrect {
            gender: None,
            name: Some(name("张叁")),
            by: support_action("agent-1"),
            now: t(2, 0, 0),
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::CorrectedBySupport {
                gender: None,
                name: Some(name("张叁")),
                by: support_action("agent-1"),
                at: t(2, 0, 0),
            },
            AccountEvent::ResubmissionRequired { reason: "name_corrected".into(), at: t(2, 0, 0) },
        ]);
    // Verified or not: every change of identity information is told.
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::SupportCorrect(SupportCorrect {
            gender: None,
            name: Some(name("张叁")),
            by: support_action("agent-1"),
            now: t(2, 0, 0),
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::CorrectedBySupport {
                gender: None,
                name: Some(name("张叁")),
                by: support_action("agent-1"),
                at: t(2, 0, 0),
            },
            AccountEvent::ResubmissionRequired { reason: "name_corrected".into(), at: t(2, 0, 0) },
        ]);
}

#[tokio::test]
async fn a_deletion_falls_due_after_its_cooling_off_and_a_login_withdraws_it() {
    let due = t(9, 0, 0);
    let requested = AccountEvent::DeletionRequested { effective_at: due, at: t(1, 0, 0) };
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::RequestDeletion(RequestDeletion { password: checked(Some(due)), now: t(1, 0, 0) }))
        .await
        .then_expect_events(vec![requested.clone()]);
    // Before it falls due, nothing is erased.
    Fx::with(())
        .given(vec![registered(), requested.clone()])
        .when_async(AccountCommand::Erase(Erase { key_version: 1, now: t(8, 59, 59) }))
        .await
        .then_expect_error(AccountError::NoDeletionPending);
    // A login withdraws it.
    let session = NewSession { session_id: "s1".into(), token_hash: "T1".into(), expires_at: t(20, 0, 0) };
    Fx::with(())
        .given(vec![registered(), requested.clone()])
        .when_async(AccountCommand::LogIn(LogIn { password: checked(Some(session)), now: t(2, 0, 0) }))
        .await
        .then_expect_events(vec![
            AccountEvent::SessionStarted {
                session_id: "s1".into(),
                token_hash: "T1".into(),
                expires_at: t(20, 0, 0),
                at: t(2, 0, 0),
            },
            AccountEvent::DeletionCancelled { at: t(2, 0, 0) },
        ]);
    Fx::with(())
        .given(vec![registered()])
        .when_async(AccountCommand::CancelDeletion(CancelDeletion { now: t(2, 0, 0) }))
        .await
        .then_expect_error(AccountError::NoDeletionPending);
}

#[tokio::test]
async fn an_erased_account_keeps_nothing_of_the_person_and_its_document_registers_again() {
    let requested = AccountEvent::DeletionRequested { effective_at: t(9, 0, 0), at: t(1, 0, 0) };
    Fx::with(())
        .given(vec![registered(), requested.clone()])
        .when_async(AccountCommand::Erase(Erase { key_version: 1, now: t(9, 0, 0) }))
        .await
        .then_expect_events(vec![AccountEvent::Erased {
            generation: 1,
            key_version: 1,
            at: t(9, 0, 0),
            restored_from: None,
        }]);

    let mut erased = Account::default();
    for event in [
        registered(),
        requested,
        AccountEvent::Erased { generation: 1, key_version: 1, at: t(9, 0, 0), restored_from: None },
    ] {
        cqrs_es::Aggregate::apply(&mut erased, event);
    }
    assert!(erased.erased && !erased.exists() && erased.name.is_none() && erased.email.is_none());
    assert_eq!(erased.generation, 1);
    Fx::with(())
        .given(vec![
            registered(),
            AccountEvent::DeletionRequested { effective_at: t(9, 0, 0), at: t(1, 0, 0) },
            AccountEvent::Erased { generation: 1, key_version: 1, at: t(9, 0, 0), restored_from: None },
        ])
        .when_async(AccountCommand::Register(registration("H2", t(10, 0, 0))))
        .await
        .then_expect_events(vec![AccountEvent::Registered {
            document_type: DocumentType::ResidentIdCard,
            document_number: number(),
            name: name("张三"),
            validity: validity(),
            email: Email::parse("123456@qq.com").expect("email"),
            mobile: Mobile::parse("13800138000").expect("mobile"),
            password_hash: "H2".into(),
            registered_at: t(10, 0, 0),
            consent: None,
        }]);
}

#[test]
fn erased_values_read_back_from_the_store() {
    let stored = serde_json::json!({"Registered": {
        "document_type": "resident_id_card", "document_number": "[erased]", "name": "[erased]",
        "validity": {"period": "20y", "start": "2020-01-01"}, "email": "[erased]", "mobile": "[erased]",
        "password_hash": "H1", "registered_at": "2026-05-10T00:00:00Z"}});
    let event: AccountEvent = serde_json::from_value(stored).expect("an erased event decodes");
    let AccountEvent::Registered { name, .. } = event else { panic!("not Registered") };
    assert_eq!(name.as_str(), crate::shared::ERASED);
    assert_eq!(name.masked().chars().count(), crate::shared::ERASED.chars().count());
}

#[tokio::test]
async fn an_erasure_a_restored_backup_lacks_is_applied_again_and_only_once() {
    let reapply =
        || AccountCommand::ReapplyErasure(ReapplyErasure { key_version: 1, erased_at: t(9, 0, 0), now: t(12, 0, 0) });
    // The backup predates the deletion request: no deletion pending, erased all the same.
    Fx::with(()).given(vec![registered()]).when_async(reapply()).await.then_expect_events(vec![AccountEvent::Erased {
        generation: 1,
        key_version: 1,
        at: t(12, 0, 0),
        restored_from: Some(t(9, 0, 0)),
    }]);
    let erased = AccountEvent::Erased { generation: 1, key_version: 1, at: t(9, 0, 0), restored_from: None };
    Fx::with(()).given(vec![registered(), erased]).when_async(reapply()).await.then_expect_events(vec![]);
    Fx::with(()).given(vec![]).when_async(reapply()).await.then_expect_events(vec![]);
}
