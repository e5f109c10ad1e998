use chrono::{Duration, TimeZone};
use cqrs_es::test::TestFramework;

use super::*;

fn t(m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 10, 1, m, 0).single().unwrap_or_default()
}

fn created() -> StaffEvent {
    StaffEvent::Created {
        username: "rev1".into(),
        role: Role::Reviewer,
        password_hash: "H".into(),
        account_id: None,
        school: None,
        created_by: "cli".into(),
        at: t(0),
    }
}

fn login(ok: bool) -> StaffCommand {
    let session = NewSession { session_id: "s".into(), token_hash: "th".into(), expires_at: t(50) };
    let check = if ok { PasswordCheck::Right(session) } else { PasswordCheck::Wrong };
    let lockout = crate::account::LockoutPolicy { threshold: 5, duration: Duration::minutes(15) };
    StaffCommand::LogIn(StaffLogIn { password: Checked { checked_hash: "H".into(), lockout, check }, now: t(1) })
}

#[tokio::test]
async fn a_username_is_created_once() {
    TestFramework::<Staff>::with(())
        .given(vec![created()])
        .when_async(StaffCommand::Create(CreateStaff {
            username: "rev1".into(),
            role: Role::Admin,
            password_hash: "H2".into(),
            account_id: None,
            school: None,
            created_by: "cli".into(),
            now: t(1),
        }))
        .await
        .then_expect_error(StaffError::UsernameTaken);
}

#[tokio::test]
async fn staff_log_in_and_are_locked_after_five_failures() {
    TestFramework::<Staff>::with(()).given(vec![created()]).when_async(login(true)).await.then_expect_events(vec![
        StaffEvent::SessionStarted { session_id: "s".into(), token_hash: "th".into(), expires_at: t(50), at: t(1) },
    ]);
    let mut given = vec![created()];
    given.extend((0..4).map(|_| StaffEvent::LoginFailed { at: t(0) }));
    TestFramework::<Staff>::with(())
        .given(given)
        .when_async(login(false))
        .await
        .then_expect_events(vec![StaffEvent::LoginFailed { at: t(1) }, StaffEvent::Locked { at: t(1), until: t(16) }]);
}

#[tokio::test]
async fn disabling_or_a_new_role_ends_every_session_and_a_disabled_member_cannot_sign_in() {
    let session =
        StaffEvent::SessionStarted { session_id: "s".into(), token_hash: "th".into(), expires_at: t(50), at: t(1) };
    TestFramework::<Staff>::with(())
        .given(vec![created(), session.clone()])
        .when_async(StaffCommand::Disable(Disable { by: "admin".into(), now: t(2) }))
        .await
        .then_expect_events(vec![
            StaffEvent::Disabled { by: "admin".into(), at: t(2) },
            StaffEvent::SessionsRevoked { kept: None, at: t(2) },
        ]);
    TestFramework::<Staff>::with(())
        .given(vec![created(), session])
        .when_async(StaffCommand::ChangeRole(ChangeRole {
            role: Role::Auditor,
            school: None,
            by: "admin".into(),
            now: t(2),
        }))
        .await
        .then_expect_events(vec![
            StaffEvent::RoleChanged { role: Role::Auditor, school: None, by: "admin".into(), at: t(2) },
            StaffEvent::SessionsRevoked { kept: None, at: t(2) },
        ]);
    TestFramework::<Staff>::with(())
        .given(vec![created(), StaffEvent::Disabled { by: "admin".into(), at: t(0) }])
        .when_async(login(true))
        .await
        .then_expect_error(StaffError::Disabled);
}

#[test]
fn usernames_and_roles_parse() {
    assert!(valid_username("rev.one_2"));
    assert!(!valid_username("Rev"));
    assert_eq!(Role::parse("head_teacher"), Some(Role::HeadTeacher));
    assert_eq!(Role::parse("root"), None);
}

#[test]
fn a_school_staff_members_scope_needs_their_school_and_for_a_head_teacher_their_class() {
    let member = |role: Role, school: Option<SchoolScope>| Staff { role: Some(role), school, ..Staff::default() };
    let grade = crate::student::Grade::new(8).ok();
    let class = SchoolScope { school_code: "3201001".into(), grade, class: Some("3班".into()) };
    let school_only = SchoolScope { school_code: "3201001".into(), grade: None, class: None };
    let head_teacher = member(Role::HeadTeacher, Some(class.clone())).student_scope();
    assert!(head_teacher.is_some_and(|s| s.covers("3201001", grade.unwrap_or_else(|| unreachable!()), "３班")));
    assert_eq!(member(Role::HeadTeacher, Some(school_only.clone())).student_scope(), None);
    assert!(matches!(
        member(Role::SchoolAdmin, Some(school_only)).student_scope(),
        Some(crate::student::Scope::SchoolAdmin { .. })
    ));
    assert_eq!(member(Role::Reviewer, Some(class)).student_scope(), None);
    assert_eq!(member(Role::SchoolAdmin, None).student_scope(), None);
}
