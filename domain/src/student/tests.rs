//! Given/when/then tests of the student stream, with the China-day and semester boundaries.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::account::{Checked, Consent, LockoutPolicy, NewSession, PasswordCheck};

type Fx = TestFramework<Student>;

/// An instant given in China Standard Time.
fn cst(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap_or_default() - Duration::hours(8)
}

fn t0() -> DateTime<Utc> {
    cst(2026, 9, 14, 10, 0, 0)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn grade(g: i64) -> Grade {
    Grade::new(g).unwrap_or_else(|_| unreachable!())
}

fn registered() -> StudentEvent {
    StudentEvent::Registered {
        student_number: "L123456789012345678".into(),
        pass_id: "P90000000001".into(),
        mobile: "13800138000".into(),
        password_hash: "hash".into(),
        education_identity: EducationIdentity::Student,
        consent: Consent { agreement_version: "2026-01".into(), accepted_at: t0() },
        at: t0(),
    }
}

fn personal() -> Personal {
    Personal {
        name: "李小明".into(),
        id_number: Some("110105201003070021".into()),
        minor_uses_guardian_id: false,
        birth_date: "2010-03-07".into(),
        email: None,
    }
}

fn enrolment(g: i64) -> Enrolment {
    Enrolment { school_code: "3201001".into(), grade: grade(g), class: "3班".into() }
}

fn guardian() -> Guardian {
    Guardian {
        name: "李大明".into(),
        id_number: "110105198001010016".into(),
        mobile: "13900139000".into(),
        address: "南京市玄武区".into(),
    }
}

/// A complete grade-8 application with the guardian verified.
fn ready() -> Vec<StudentEvent> {
    vec![
        registered(),
        StudentEvent::PersonalEntered { personal: personal(), at: t0() },
        StudentEvent::EnrolmentEntered { enrolment: enrolment(8), stage: Stage::Junior, at: t0() },
        StudentEvent::GuardianEntered { guardian: guardian(), at: t0() },
        StudentEvent::MaterialAttached { material: Material::HouseholdRegister, digest: "d".into(), at: t0() },
        StudentEvent::GuardianVerified { mobile: "13900139000".into(), consent_version: "g1".into(), at: t0() },
    ]
}

fn record() -> RegistryRecord {
    RegistryRecord {
        name: "李小明".into(),
        id_number: Some("110105201003070021".into()),
        birth_date: date(2010, 3, 7),
        school_code: "3201001".into(),
        grade: grade(8),
        class: "３班".into(),
        head_teacher_mobile: "13700137000".into(),
    }
}

fn submit(id: &str, at: DateTime<Utc>) -> StudentCommand {
    StudentCommand::Submit(Submit {
        submission_id: id.into(),
        school_filed: true,
        abandon_before: at - commands::abandon_after(),
        now: at,
    })
}

fn answer(id: &str, answer: RegistryAnswer, at: DateTime<Utc>) -> StudentCommand {
    StudentCommand::RecordRegistryAnswer(RecordRegistryAnswer {
        submission_id: id.into(),
        answer,
        review_id: "r1".into(),
        due_by: date(2026, 9, 16),
        now: at,
    })
}

fn submitted(id: &str, at: DateTime<Utc>) -> StudentEvent {
    StudentEvent::Submitted { submission_id: id.into(), reconfirming_from: None, at }
}

fn sent(at: DateTime<Utc>) -> StudentEvent {
    StudentEvent::SentToHeadTeacher {
        review_id: "r1".into(),
        differences: vec!["name".into()],
        school_code: "3201001".into(),
        grade: grade(8),
        class: "3班".into(),
        head_teacher_mobile: "13700137000".into(),
        submitted_at: at,
        due_by: date(2026, 9, 16),
        at,
    }
}

fn head_teacher(class: &str) -> Scope {
    Scope::HeadTeacher {
        school_code: "3201001".into(),
        grade: grade(8),
        class: ClassName::parse(class).unwrap_or_else(|_| unreachable!()),
    }
}

fn admin(school: &str) -> Scope {
    Scope::SchoolAdmin { school_code: school.into() }
}

fn failed_registry(at: DateTime<Utc>) -> StudentEvent {
    StudentEvent::RegistryFailed { error: RegistryError::StudentNumberNotInRegistry, school_code: "3201001".into(), at }
}

fn state_after(events: Vec<StudentEvent>) -> Student {
    let mut student = Student::default();
    for e in events {
        student.apply_event(e);
    }
    student
}

fn with(mut events: Vec<StudentEvent>, more: Vec<StudentEvent>) -> Vec<StudentEvent> {
    events.extend(more);
    events
}

/// The registration that [`registered`] records.
fn register() -> StudentCommand {
    StudentCommand::Register(Register {
        student_number: StudentNumber::parse("L123456789012345678").unwrap_or_else(|_| unreachable!()),
        pass_id: PassId::parse("P90000000001").unwrap_or_else(|| unreachable!()),
        mobile: "13800138000".into(),
        password_hash: "hash".into(),
        education_identity: EducationIdentity::Student,
        consent: Consent { agreement_version: "2026-01".into(), accepted_at: t0() },
        now: t0(),
    })
}

#[test]
fn a_student_number_registers_once() {
    let register = register();
    Fx::with(()).given_no_previous_events().when(register.clone()).then_expect_events(vec![registered()]);
    Fx::with(()).given(vec![registered()]).when(register).then_expect_error(StudentError::AlreadyRegistered);
}

#[test]
fn five_wrong_passwords_lock_the_login_as_for_accounts() {
    let policy = LockoutPolicy { threshold: 5, duration: Duration::minutes(15) };
    let wrong = StudentCommand::LogIn(LogIn {
        password: Checked { checked_hash: "hash".into(), lockout: policy, check: PasswordCheck::Wrong },
        now: t0(),
    });
    let four_failures: Vec<StudentEvent> =
        std::iter::once(registered()).chain((0..4).map(|_| StudentEvent::LoginFailed { at: t0() })).collect();
    Fx::with(()).given(four_failures.clone()).when(wrong).then_expect_events(vec![
        StudentEvent::LoginFailed { at: t0() },
        StudentEvent::Locked { at: t0(), until: t0() + Duration::minutes(15) },
    ]);
    let locked = with(
        four_failures,
        vec![
            StudentEvent::LoginFailed { at: t0() },
            StudentEvent::Locked { at: t0(), until: t0() + Duration::minutes(15) },
        ],
    );
    let right = StudentCommand::LogIn(LogIn {
        password: Checked {
            checked_hash: "hash".into(),
            lockout: policy,
            check: PasswordCheck::Right(NewSession {
                session_id: "s".into(),
                token_hash: "t".into(),
                expires_at: t0() + Duration::hours(2),
            }),
        },
        now: t0() + Duration::minutes(14),
    });
    Fx::with(())
        .given(locked)
        .when(right)
        .then_expect_error(StudentError::Locked { until: t0() + Duration::minutes(15) });
}

#[test]
fn the_personal_id_equal_to_the_guardians_needs_the_minor_flag() {
    let guardians_id = Personal { id_number: Some(guardian().id_number), ..personal() };
    let edit = |p: Personal| {
        StudentCommand::Edit(Edit { personal: Some(p), enrolment: None, guardian: Some(guardian()), now: t0() })
    };
    Fx::with(())
        .given(vec![registered()])
        .when(edit(guardians_id.clone()))
        .then_expect_error(StudentError::MinorFlagRequired);
    let flagged = Personal { minor_uses_guardian_id: true, ..guardians_id };
    Fx::with(()).given(vec![registered()]).when(edit(flagged.clone())).then_expect_events(vec![
        StudentEvent::PersonalEntered { personal: flagged, at: t0() },
        StudentEvent::GuardianEntered { guardian: guardian(), at: t0() },
    ]);
}

#[test]
fn materials_follow_the_stage_of_the_grade() {
    let attach =
        |m: Material| StudentCommand::AttachMaterials(AttachMaterials { materials: vec![(m, "d".into())], now: t0() });
    Fx::with(())
        .given(vec![registered()])
        .when(attach(Material::HouseholdRegister))
        .then_expect_error(StudentError::EnrolmentRequired);
    let senior =
        vec![registered(), StudentEvent::EnrolmentEntered { enrolment: enrolment(10), stage: Stage::Senior, at: t0() }];
    Fx::with(())
        .given(senior.clone())
        .when(attach(Material::HouseholdRegister))
        .then_expect_error(StudentError::MaterialWrongForStage);
    Fx::with(()).given(senior.clone()).when(attach(Material::IdFront)).then_expect_events(vec![
        StudentEvent::MaterialAttached { material: Material::IdFront, digest: "d".into(), at: t0() },
    ]);
    let nine =
        vec![registered(), StudentEvent::EnrolmentEntered { enrolment: enrolment(9), stage: Stage::Junior, at: t0() }];
    Fx::with(()).given(nine).when(attach(Material::IdBack)).then_expect_error(StudentError::MaterialWrongForStage);
    // A senior student still lacks the back of the card.
    let front = with(
        senior,
        vec![StudentEvent::MaterialAttached { material: Material::IdFront, digest: "d".into(), at: t0() }],
    );
    assert!(state_after(front).missing().contains(&"materials.id_back".to_string()));
}

#[test]
fn a_submission_needs_a_complete_application_a_verified_guardian_and_a_filed_school() {
    let incomplete = vec![registered(), StudentEvent::PersonalEntered { personal: personal(), at: t0() }];
    let missing = state_after(incomplete.clone()).missing();
    assert!(missing.contains(&"enrolment.grade".to_string()) && missing.contains(&"guardian.mobile".to_string()));
    Fx::with(()).given(incomplete).when(submit("s1", t0())).then_expect_error(StudentError::Incomplete { missing });

    let mut unverified = ready();
    unverified.pop();
    Fx::with(()).given(unverified).when(submit("s1", t0())).then_expect_error(StudentError::GuardianNotVerified);

    // A guardian mobile changed after its verification is not verified.
    let changed = with(
        ready(),
        vec![StudentEvent::GuardianEntered {
            guardian: Guardian { mobile: "13900139001".into(), ..guardian() },
            at: t0(),
        }],
    );
    Fx::with(()).given(changed).when(submit("s1", t0())).then_expect_error(StudentError::GuardianNotVerified);

    let unfiled = StudentCommand::Submit(Submit {
        submission_id: "s1".into(),
        school_filed: false,
        abandon_before: t0() - Duration::seconds(30),
        now: t0(),
    });
    Fx::with(()).given(ready()).when(unfiled).then_expect_error(StudentError::SchoolNotFiled);
    Fx::with(()).given(ready()).when(submit("s1", t0())).then_expect_events(vec![submitted("s1", t0())]);
}

#[test]
fn every_field_equal_approves_at_once_after_nfkc() {
    let given = with(ready(), vec![submitted("s1", t0())]);
    Fx::with(())
        .given(given)
        .when(answer("s1", RegistryAnswer::Found(record()), t0()))
        .then_expect_events(vec![StudentEvent::AutoApproved { at: t0() }]);
}

#[test]
fn a_difference_goes_to_the_head_teacher_of_the_class_applied_for() {
    let given = with(ready(), vec![submitted("s1", t0())]);
    let transfer = RegistryRecord { name: "李晓明".into(), ..record() };
    Fx::with(())
        .given(given)
        .when(answer("s1", RegistryAnswer::Found(transfer), t0()))
        .then_expect_events(vec![sent(t0())]);
}

#[test]
fn a_minor_using_the_guardians_id_is_not_compared_on_it() {
    let minor = Personal { id_number: None, minor_uses_guardian_id: true, ..personal() };
    let mut events = ready();
    events.push(StudentEvent::PersonalEntered { personal: minor, at: t0() });
    let student = state_after(events);
    assert!(student.missing().is_empty());
    assert!(differences(&student, &RegistryRecord { id_number: None, ..record() }).is_empty());
    assert!(differences(&student, &record()).is_empty(), "the ID number is skipped");
    let other_birth = RegistryRecord { birth_date: date(2010, 3, 8), ..record() };
    assert_eq!(differences(&student, &other_birth), vec!["birth_date".to_string()]);
}

#[test]
fn no_record_or_an_unsynchronised_school_fails_and_waits_for_the_school() {
    let given = with(ready(), vec![submitted("s1", t0())]);
    Fx::with(())
        .given(given.clone())
        .when(answer("s1", RegistryAnswer::NotFound, t0()))
        .then_expect_events(vec![failed_registry(t0())]);
    Fx::with(()).given(given.clone()).when(answer("s1", RegistryAnswer::SchoolNotSynced, t0())).then_expect_events(
        vec![StudentEvent::RegistryFailed {
            error: RegistryError::SchoolNotSynced,
            school_code: "3201001".into(),
            at: t0(),
        }],
    );
    let failed = with(given, vec![failed_registry(t0())]);
    let later = t0() + Duration::minutes(5);
    Fx::with(()).given(failed.clone()).when(submit("s2", later)).then_expect_error(StudentError::SchoolActionRequired);
    let refreshed = with(
        failed,
        vec![
            StudentEvent::RegistryRefreshed {
                by: Actor { staff_id: "a".into(), role: "school_admin".into() },
                at: later,
            },
            failed_registry(later),
        ],
    );
    Fx::with(()).given(refreshed).when(submit("s2", later)).then_expect_events(vec![submitted("s2", later)]);
}

#[test]
fn an_unavailable_registry_voids_the_submission_which_counts_nothing() {
    let given = with(ready(), vec![submitted("s1", t0())]);
    Fx::with(()).given(given.clone()).when(answer("s1", RegistryAnswer::Unavailable, t0())).then_expect_events(vec![
        StudentEvent::SubmissionVoided { submission_id: "s1".into(), reason: "registry_unavailable".into(), at: t0() },
    ]);
    let voided = with(
        given,
        vec![StudentEvent::SubmissionVoided {
            submission_id: "s1".into(),
            reason: "registry_unavailable".into(),
            at: t0(),
        }],
    );
    let student = state_after(voided);
    assert_eq!(student.submissions_left(t0()), 3);
    assert_eq!(student.status, StudentStatus::Draft);
}

#[test]
fn a_submission_in_flight_refuses_a_second_until_it_is_abandoned() {
    let given = with(ready(), vec![submitted("s1", t0())]);
    Fx::with(())
        .given(given.clone())
        .when(submit("s2", t0() + Duration::seconds(29)))
        .then_expect_error(StudentError::Pending);
    let later = t0() + Duration::seconds(31);
    Fx::with(()).given(given).when(submit("s2", later)).then_expect_events(vec![
        StudentEvent::SubmissionVoided { submission_id: "s1".into(), reason: "abandoned".into(), at: later },
        submitted("s2", later),
    ]);
}

/// Three returned submissions between `from` and the given instants.
fn three_returns(at: impl Fn(u32) -> DateTime<Utc>) -> Vec<StudentEvent> {
    let by = Actor { staff_id: "ht".into(), role: "head_teacher".into() };
    let mut events = ready();
    for i in 0..3 {
        events.push(submitted(&format!("s{i}"), at(i)));
        events.push(sent(at(i)));
        events.push(StudentEvent::Returned {
            review_id: "r1".into(),
            by: by.clone(),
            reason: "照片不清".into(),
            at: at(i),
        });
    }
    events
}

#[test]
fn three_counted_submissions_per_china_day() {
    // 16:00 UTC is midnight in China: the fourth on the same China day is refused until then.
    let day = |i: u32| cst(2026, 9, 14, 9 + i, 0, 0);
    let given = three_returns(day);
    Fx::with(())
        .given(given.clone())
        .when(submit("s4", cst(2026, 9, 14, 23, 59, 59)))
        .then_expect_error(StudentError::DailySubmissionsExhausted { next_attempt_at: cst(2026, 9, 15, 0, 0, 0) });
    let midnight = cst(2026, 9, 15, 0, 0, 0);
    Fx::with(()).given(given).when(submit("s4", midnight)).then_expect_events(vec![submitted("s4", midnight)]);
}

#[test]
fn only_the_head_teacher_of_the_class_decides_and_a_return_needs_a_reason() {
    let pending = with(ready(), vec![submitted("s1", t0()), sent(t0())]);
    let decide = |scope: Scope, decision: Decision| {
        StudentCommand::Decide(Decide { review_id: "r1".into(), staff_id: "ht".into(), scope, decision, now: t0() })
    };
    let approve = Decision::Approve { reason: None };
    Fx::with(())
        .given(pending.clone())
        .when(decide(head_teacher("4班"), approve.clone()))
        .then_expect_error(StudentError::OutOfScope);
    Fx::with(())
        .given(pending.clone())
        .when(decide(admin("3201001"), approve.clone()))
        .then_expect_error(StudentError::OutOfScope);
    Fx::with(())
        .given(pending.clone())
        .when(decide(head_teacher("3班"), Decision::Return { reason: " ".into() }))
        .then_expect_error(StudentError::ReasonRequired);
    let by = Actor { staff_id: "ht".into(), role: "head_teacher".into() };
    Fx::with(()).given(pending.clone()).when(decide(head_teacher(" ３班"), approve.clone())).then_expect_events(vec![
        StudentEvent::HeadTeacherApproved { review_id: "r1".into(), by: by.clone(), reason: None, at: t0() },
    ]);
    let decided =
        with(pending, vec![StudentEvent::HeadTeacherApproved { review_id: "r1".into(), by, reason: None, at: t0() }]);
    Fx::with(()).given(decided).when(decide(head_teacher("3班"), approve)).then_expect_error(StudentError::NotPending);
}

#[test]
fn only_an_admin_of_the_school_refreshes_or_links() {
    let failed = with(ready(), vec![submitted("s1", t0()), failed_registry(t0())]);
    let recompare = |scope: Scope, link: Option<&str>, answer: RegistryAnswer| {
        StudentCommand::Recompare(Recompare {
            staff_id: "adm".into(),
            scope,
            link: link.map(|l| StudentNumber::parse(l).unwrap_or_else(|_| unreachable!())),
            answer,
            review_id: "r2".into(),
            due_by: date(2026, 9, 16),
            now: t0(),
        })
    };
    let found = RegistryAnswer::Found(record());
    Fx::with(())
        .given(failed.clone())
        .when(recompare(admin("3209999"), None, found.clone()))
        .then_expect_error(StudentError::OutOfScope);
    Fx::with(())
        .given(failed.clone())
        .when(recompare(head_teacher("3班"), None, found.clone()))
        .then_expect_error(StudentError::OutOfScope);
    Fx::with(())
        .given(failed.clone())
        .when(recompare(admin("3201001"), None, RegistryAnswer::Unavailable))
        .then_expect_error(StudentError::RegistryUnavailable);
    let by = Actor { staff_id: "adm".into(), role: "school_admin".into() };
    Fx::with(())
        .given(failed)
        .when(recompare(admin("3201001"), Some("L123456789012345679"), found))
        .then_expect_events(vec![
            StudentEvent::RegistryLinked { by, student_number: "L123456789012345679".into(), at: t0() },
            StudentEvent::AutoApproved { at: t0() },
        ]);
}

#[test]
fn an_approval_before_the_semester_start_asks_for_reconfirmation() {
    let approved = with(ready(), vec![submitted("s1", t0()), StudentEvent::AutoApproved { at: t0() }]);
    let student = state_after(approved.clone());
    let march = cst(2027, 3, 1, 0, 0, 0);
    assert_eq!(student.status_at(Some(cst(2026, 9, 1, 0, 0, 0))), StudentStatus::Approved);
    assert_eq!(student.status_at(Some(march)), StudentStatus::ReconfirmationRequired);
    let reconfirm = |enrolment: Option<Enrolment>, start| {
        StudentCommand::Reconfirm(Reconfirm {
            enrolment,
            school_filed: true,
            submission_id: "s2".into(),
            semester_start: start,
            now: march,
        })
    };
    Fx::with(())
        .given(approved.clone())
        .when(reconfirm(None, Some(cst(2026, 9, 1, 0, 0, 0))))
        .then_expect_error(StudentError::ReconfirmationNotDue);
    Fx::with(())
        .given(approved.clone())
        .when(reconfirm(None, Some(march)))
        .then_expect_events(vec![StudentEvent::Reconfirmed { at: march }]);
    assert_eq!(
        state_after(with(approved.clone(), vec![StudentEvent::Reconfirmed { at: march }])).status_at(Some(march)),
        StudentStatus::Approved
    );
    let moved = Enrolment { class: "4班".into(), ..enrolment(8) };
    let resubmitted =
        StudentEvent::Submitted { submission_id: "s2".into(), reconfirming_from: Some(enrolment(8)), at: march };
    Fx::with(()).given(approved.clone()).when(reconfirm(Some(moved.clone()), Some(march))).then_expect_events(vec![
        StudentEvent::EnrolmentEntered { enrolment: moved.clone(), stage: Stage::Junior, at: march },
        resubmitted.clone(),
    ]);
    // Into high school: the registry decides; the new stage's materials are not asked for.
    let senior = Enrolment { grade: grade(10), ..enrolment(8) };
    let into_senior = reconfirm(Some(senior), Some(march));
    assert!(Fx::with(()).given(approved.clone()).when(into_senior).inspect_result().is_ok());
    // The registry unavailable: the submission counts nothing and the old enrolment is back.
    let in_flight = with(
        approved,
        vec![StudentEvent::EnrolmentEntered { enrolment: moved, stage: Stage::Junior, at: march }, resubmitted],
    );
    Fx::with(()).given(in_flight).when(answer("s2", RegistryAnswer::Unavailable, march)).then_expect_events(vec![
        StudentEvent::SubmissionVoided { submission_id: "s2".into(), reason: "registry_unavailable".into(), at: march },
        StudentEvent::EnrolmentEntered { enrolment: enrolment(8), stage: Stage::Junior, at: march },
    ]);
}

#[test]
fn the_timeline_names_who_acted() {
    let by = Actor { staff_id: "ht".into(), role: "head_teacher".into() };
    let events = with(
        ready(),
        vec![
            submitted("s1", t0()),
            sent(t0()),
            StudentEvent::Returned { review_id: "r1".into(), by, reason: "照片不清".into(), at: t0() },
        ],
    );
    let steps: Vec<(&str, &str)> = events.iter().filter_map(step).map(|s| (s.status, s.actor_role)).collect();
    assert_eq!(
        steps,
        vec![
            ("draft", "student"),
            ("submitted", "student"),
            ("pending_head_teacher", "system"),
            ("returned", "head_teacher"),
        ]
    );
}

fn checked<T>(check: PasswordCheck<T>) -> Checked<T> {
    let lockout = LockoutPolicy { threshold: 5, duration: Duration::minutes(15) };
    Checked { checked_hash: "hash".into(), lockout, check }
}

#[test]
fn a_deletion_waits_for_its_day_a_login_withdraws_it_and_the_erased_number_registers_anew() {
    let due = t0() + Duration::days(15);
    let request =
        StudentCommand::RequestDeletion(RequestDeletion { password: checked(PasswordCheck::Right(due)), now: t0() });
    let requested = StudentEvent::DeletionRequested { effective_at: due, at: t0() };
    Fx::with(()).given(vec![registered()]).when(request).then_expect_events(vec![requested.clone()]);
    let wrong = StudentCommand::RequestDeletion(RequestDeletion { password: checked(PasswordCheck::Wrong), now: t0() });
    Fx::with(()).given(vec![registered()]).when(wrong).then_expect_events(vec![StudentEvent::LoginFailed { at: t0() }]);

    let pending = vec![registered(), requested];
    let erase = |at| StudentCommand::Erase(Erase { key_version: 1, reapplied: false, now: at });
    Fx::with(())
        .given(pending.clone())
        .when(erase(due - Duration::seconds(1)))
        .then_expect_error(StudentError::NoDeletionPending);
    Fx::with(())
        .given(pending.clone())
        .when(erase(due))
        .then_expect_events(vec![StudentEvent::Erased { key_version: 1, at: due }]);
    let session = NewSession { session_id: "s".into(), token_hash: "t".into(), expires_at: t0() + Duration::hours(2) };
    let login = StudentCommand::LogIn(LogIn { password: checked(PasswordCheck::Right(session)), now: t0() });
    Fx::with(()).given(pending.clone()).when(login).then_expect_events(vec![
        StudentEvent::DeletionCancelled { at: t0() },
        StudentEvent::SessionStarted {
            session_id: "s".into(),
            token_hash: "t".into(),
            expires_at: t0() + Duration::hours(2),
            at: t0(),
        },
    ]);
    // The journal's erasure of a restored store applies whatever the stream says.
    let reapply = StudentCommand::Erase(Erase { key_version: 1, reapplied: true, now: t0() });
    Fx::with(())
        .given(vec![registered()])
        .when(reapply)
        .then_expect_events(vec![StudentEvent::Erased { key_version: 1, at: t0() }]);
    Fx::with(())
        .given(vec![registered()])
        .when(StudentCommand::CancelDeletion(CancelDeletion { now: t0() }))
        .then_expect_error(StudentError::NoDeletionPending);

    // Erased: nothing of the holder stays, the number registers anew.
    let erased = with(
        with(ready(), vec![StudentEvent::DeletionRequested { effective_at: due, at: t0() }]),
        vec![StudentEvent::Erased { key_version: 1, at: due }],
    );
    let state = state_after(erased.clone());
    assert!(!state.exists() && state.personal.is_none() && state.password_hash.is_none() && state.sessions.is_empty());
    let again = register();
    Fx::with(()).given(erased.clone()).when(again).then_expect_events(vec![registered()]);
    let reborn = state_after(with(erased, vec![registered()]));
    assert!(reborn.exists() && !reborn.erased && reborn.generation == 1 && reborn.personal.is_none());
}

#[test]
fn a_guardian_code_verifies_only_the_mobile_it_was_sent_to() {
    let given = vec![registered(), StudentEvent::GuardianEntered { guardian: guardian(), at: t0() }];
    let verify = |mobile: &str| {
        StudentCommand::VerifyGuardian(VerifyGuardian {
            mobile: mobile.into(),
            consent_version: "g1".into(),
            now: t0(),
        })
    };
    Fx::with(()).given(given.clone()).when(verify("13900139001")).then_expect_error(StudentError::StaleCredentials);
    Fx::with(()).given(given).when(verify("13900139000")).then_expect_events(vec![StudentEvent::GuardianVerified {
        mobile: "13900139000".into(),
        consent_version: "g1".into(),
        at: t0(),
    }]);
}

#[test]
fn a_linked_registry_record_is_the_one_asked_from_then_on() {
    let failed = with(ready(), vec![submitted("s1", t0()), failed_registry(t0())]);
    assert_eq!(state_after(failed.clone()).registry_number(), Some("L123456789012345678"));
    let by = Actor { staff_id: "adm".into(), role: "school_admin".into() };
    let linked =
        with(failed, vec![StudentEvent::RegistryLinked { by, student_number: "L123456789012345679".into(), at: t0() }]);
    assert_eq!(state_after(linked).registry_number(), Some("L123456789012345679"));
}
