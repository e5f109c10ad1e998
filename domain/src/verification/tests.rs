//! Given/when/then tests of the verification stream, with the China-time boundaries.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::account::RealNameStatus;
use crate::shared::document::DocumentType;
use crate::shared::name::PersonName;
use crate::shared::validity::Validity;

type Fx = TestFramework<Verification>;

/// An instant given in China Standard Time.
fn cst(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap_or_default() - Duration::hours(8)
}

fn name() -> PersonName {
    PersonName::parse("张三").expect("name")
}

fn validity() -> Validity {
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
    Validity::parse("20y", start, DocumentType::ResidentIdCard, None, start).expect("validity")
}

fn photos() -> Photos {
    Photos { front: "f".into(), back: "b".into(), handheld: "h".into() }
}

fn start(id: &str, at: DateTime<Utc>) -> VerificationCommand {
    VerificationCommand::StartAttempt(StartAttempt {
        account_id: "acc".into(),
        attempt_id: id.into(),
        name: name(),
        validity: None,
        abandon_before: at - Duration::minutes(2),
        now: at,
    })
}

fn started(id: &str, at: DateTime<Utc>) -> VerificationEvent {
    VerificationEvent::AttemptStarted {
        account_id: "acc".into(),
        attempt_id: id.into(),
        name: name(),
        validity: None,
        at,
    }
}

fn failed(id: &str, at: DateTime<Utc>) -> Vec<VerificationEvent> {
    vec![started(id, at), VerificationEvent::AttemptFailed { attempt_id: id.into(), reason: "mismatch".into(), at }]
}

fn three_failures(day_at: impl Fn(u32) -> DateTime<Utc>) -> Vec<VerificationEvent> {
    (0..3).flat_map(|i| failed(&format!("a{i}"), day_at(i))).collect()
}

fn apply(id: &str, doc: DocumentType, at: DateTime<Utc>) -> VerificationCommand {
    VerificationCommand::Apply(Apply {
        account_id: "acc".into(),
        review_id: id.into(),
        request: ReviewRequest { document_type: doc, name: name(), validity: validity(), photos: photos() },
        due_by: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
        now: at,
    })
}

fn submitted(id: &str, at: DateTime<Utc>) -> VerificationEvent {
    VerificationEvent::ApplicationSubmitted {
        account_id: "acc".into(),
        review_id: id.into(),
        document_type: DocumentType::Other,
        name: name(),
        validity: validity(),
        photos: photos(),
        due_by: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
        at,
    }
}

fn rejected(id: &str, at: DateTime<Utc>) -> VerificationEvent {
    VerificationEvent::ApplicationRejected { review_id: id.into(), reviewer: "r1".into(), reason: "blurry".into(), at }
}

#[tokio::test]
async fn an_attempt_is_recorded_before_the_authority_is_called() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    Fx::with(())
        .given_no_previous_events()
        .when_async(start("a1", at))
        .await
        .then_expect_events(vec![started("a1", at)]);
}

#[tokio::test]
async fn the_fourth_attempt_of_a_china_day_is_refused_until_midnight() {
    let given = three_failures(|i| cst(2026, 5, 10, 9 + i, 0, 0));
    Fx::with(())
        .given(given)
        .when_async(start("a4", cst(2026, 5, 10, 23, 59, 59)))
        .await
        .then_expect_error(VerificationError::DailyAttemptsExhausted { next_attempt_at: cst(2026, 5, 11, 0, 0, 0) });
}

#[tokio::test]
async fn at_midnight_china_time_the_attempts_are_back() {
    let given = three_failures(|i| cst(2026, 5, 10, 21 + i, 0, 0));
    let at = cst(2026, 5, 11, 0, 0, 0);
    Fx::with(()).given(given).when_async(start("a4", at)).await.then_expect_events(vec![started("a4", at)]);
}

#[tokio::test]
async fn an_unavailable_authority_does_not_use_up_an_attempt() {
    let mut given = three_failures(|i| cst(2026, 5, 10, 9, i, 0));
    given.truncate(4); // two failures
    given.push(started("a3", cst(2026, 5, 10, 10, 0, 0)));
    given.push(VerificationEvent::AttemptVoided {
        attempt_id: "a3".into(),
        reason: "authority_unavailable".into(),
        at: cst(2026, 5, 10, 10, 0, 0),
    });
    let at = cst(2026, 5, 10, 11, 0, 0);
    Fx::with(()).given(given).when_async(start("a4", at)).await.then_expect_events(vec![started("a4", at)]);
}

#[tokio::test]
async fn only_one_attempt_is_in_flight_and_an_abandoned_one_is_voided() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    Fx::with(())
        .given(vec![started("a1", at)])
        .when_async(start("a2", at + Duration::seconds(5)))
        .await
        .then_expect_error(VerificationError::AttemptInProgress);
    let later = at + Duration::minutes(5);
    Fx::with(()).given(vec![started("a1", at)]).when_async(start("a2", later)).await.then_expect_events(vec![
        VerificationEvent::AttemptVoided { attempt_id: "a1".into(), reason: "abandoned".into(), at: later },
        started("a2", later),
    ]);
}

#[tokio::test]
async fn answers_are_recorded_for_the_attempt_in_flight_only() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    Fx::with(())
        .given(vec![started("a1", at)])
        .when_async(VerificationCommand::RecordAnswer(RecordAnswer {
            attempt_id: "a1".into(),
            answer: AuthorityAnswer::Passed,
            now: at,
        }))
        .await
        .then_expect_events(vec![VerificationEvent::AttemptPassed {
            attempt_id: "a1".into(),
            name: name(),
            validity: None,
            at,
        }]);
    Fx::with(())
        .given_no_previous_events()
        .when_async(VerificationCommand::RecordAnswer(RecordAnswer {
            attempt_id: "a1".into(),
            answer: AuthorityAnswer::Passed,
            now: at,
        }))
        .await
        .then_expect_error(VerificationError::NoSuchAttempt);
}

#[tokio::test]
async fn an_id_card_needs_a_failed_attempt_before_manual_review() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    Fx::with(())
        .given_no_previous_events()
        .when_async(apply("r1", DocumentType::ResidentIdCard, at))
        .await
        .then_expect_error(VerificationError::VerificationRequiredFirst);
    let result = Fx::with(())
        .given(failed("a1", at))
        .when_async(apply("r1", DocumentType::ResidentIdCard, at))
        .await
        .inspect_result();
    assert!(matches!(result.as_deref(), Ok([VerificationEvent::ApplicationSubmitted { .. }])));
}

#[tokio::test]
async fn an_other_document_may_apply_at_once_and_then_nothing_else_while_pending() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    let result =
        Fx::with(()).given_no_previous_events().when_async(apply("r1", DocumentType::Other, at)).await.inspect_result();
    assert!(result.is_ok());
    Fx::with(())
        .given(vec![submitted("r1", at)])
        .when_async(start("a1", at))
        .await
        .then_expect_error(VerificationError::ManualReviewPending);
    Fx::with(())
        .given(vec![submitted("r1", at)])
        .when_async(apply("r2", DocumentType::Other, at))
        .await
        .then_expect_error(VerificationError::ManualReviewPending);
}

#[tokio::test]
async fn the_fourth_application_of_a_period_waits_for_the_first_of_september() {
    let given = vec![
        submitted("r1", cst(2026, 1, 1, 0, 0, 0)),
        rejected("r1", cst(2026, 1, 2, 0, 0, 0)),
        submitted("r2", cst(2026, 3, 1, 0, 0, 0)),
        rejected("r2", cst(2026, 3, 2, 0, 0, 0)),
        submitted("r3", cst(2026, 5, 1, 0, 0, 0)),
        rejected("r3", cst(2026, 5, 2, 0, 0, 0)),
    ];
    Fx::with(())
        .given(given.clone())
        .when_async(apply("r4", DocumentType::Other, cst(2026, 8, 31, 23, 59, 59)))
        .await
        .then_expect_error(VerificationError::PeriodQuotaExhausted {
            next_period_start: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap_or_default(),
        });
    let result = Fx::with(())
        .given(given)
        .when_async(apply("r4", DocumentType::Other, cst(2026, 9, 1, 0, 0, 0)))
        .await
        .inspect_result();
    assert!(result.is_ok());
}

#[tokio::test]
async fn the_autumn_period_ends_on_the_thirty_first_of_december() {
    let given = vec![
        submitted("r1", cst(2026, 9, 1, 0, 0, 0)),
        rejected("r1", cst(2026, 9, 2, 0, 0, 0)),
        submitted("r2", cst(2026, 10, 1, 0, 0, 0)),
        rejected("r2", cst(2026, 10, 2, 0, 0, 0)),
        submitted("r3", cst(2026, 11, 1, 0, 0, 0)),
        rejected("r3", cst(2026, 11, 2, 0, 0, 0)),
    ];
    Fx::with(())
        .given(given.clone())
        .when_async(apply("r4", DocumentType::Other, cst(2026, 12, 31, 23, 59, 59)))
        .await
        .then_expect_error(VerificationError::PeriodQuotaExhausted {
            next_period_start: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default(),
        });
    let result = Fx::with(())
        .given(given)
        .when_async(apply("r4", DocumentType::Other, cst(2027, 1, 1, 0, 0, 0)))
        .await
        .inspect_result();
    assert!(result.is_ok());
}

#[tokio::test]
async fn one_reviewer_claims_and_only_they_decide() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    let claim = |who: &str| {
        VerificationCommand::Claim(ClaimApplication {
            review_id: "r1".into(),
            reviewer: who.into(),
            reviewer_account: None,
            now: at,
        })
    };
    Fx::with(()).given(vec![submitted("r1", at)]).when_async(claim("rev1")).await.then_expect_events(vec![
        VerificationEvent::ApplicationClaimed { review_id: "r1".into(), reviewer: "rev1".into(), at },
    ]);
    let claimed = vec![
        submitted("r1", at),
        VerificationEvent::ApplicationClaimed { review_id: "r1".into(), reviewer: "rev1".into(), at },
    ];
    Fx::with(())
        .given(claimed.clone())
        .when_async(claim("rev2"))
        .await
        .then_expect_error(VerificationError::AlreadyClaimed);
    let decide = |who: &str, approve: bool, reason: Option<&str>| {
        let decision = if approve {
            Decision::Approve
        } else {
            Decision::Reject { reason: reason.unwrap_or_default().to_string() }
        };
        VerificationCommand::Decide(DecideApplication {
            review_id: "r1".into(),
            reviewer: who.into(),
            decision,
            now: at,
        })
    };
    Fx::with(())
        .given(claimed.clone())
        .when_async(decide("rev2", true, None))
        .await
        .then_expect_error(VerificationError::NotClaimedByYou);
    Fx::with(())
        .given(claimed.clone())
        .when_async(decide("rev1", false, Some("  ")))
        .await
        .then_expect_error(VerificationError::ReasonRequired);
    Fx::with(()).given(claimed).when_async(decide("rev1", true, None)).await.then_expect_events(vec![
        VerificationEvent::ApplicationApproved {
            review_id: "r1".into(),
            reviewer: "rev1".into(),
            reason: None,
            name: name(),
            validity: validity(),
            at,
        },
    ]);
}

#[tokio::test]
async fn a_reviewer_never_claims_their_own_account() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    Fx::with(())
        .given(vec![submitted("r1", at)])
        .when_async(VerificationCommand::Claim(ClaimApplication {
            review_id: "r1".into(),
            reviewer: "rev1".into(),
            reviewer_account: Some("acc".into()),
            now: at,
        }))
        .await
        .then_expect_error(VerificationError::OwnAccount);
}

#[test]
fn a_failure_after_an_approval_never_revokes_it() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    let mut state = Verification::default();
    for event in [
        submitted("r1", at),
        VerificationEvent::ApplicationClaimed { review_id: "r1".into(), reviewer: "rev1".into(), at },
        VerificationEvent::ApplicationApproved {
            review_id: "r1".into(),
            reviewer: "rev1".into(),
            reason: None,
            name: name(),
            validity: validity(),
            at,
        },
    ]
    .into_iter()
    .chain(failed("a1", at + Duration::days(1)))
    {
        cqrs_es::Aggregate::apply(&mut state, event);
    }
    assert_eq!(state.status, RealNameStatus::ManualReviewApproved);
    assert!(state.is_proven());
}

#[test]
fn quotas_count_the_attempt_in_flight_and_reset_at_midnight_and_on_the_first_of_september() {
    let mut state = Verification::default();
    for event in
        failed("a1", cst(2026, 8, 31, 23, 0, 0)).into_iter().chain([started("a2", cst(2026, 8, 31, 23, 30, 0))])
    {
        cqrs_es::Aggregate::apply(&mut state, event);
    }
    let q = state.quotas(cst(2026, 8, 31, 23, 59, 59));
    assert_eq!(q.attempts_left_today, 1);
    assert_eq!(q.period_end, NaiveDate::from_ymd_opt(2026, 8, 31).unwrap_or_default());
    let q = state.quotas(cst(2026, 9, 1, 0, 0, 0));
    assert_eq!(q.attempts_left_today, 3, "attempts count on the China day they started");
    assert_eq!(q.period_start, NaiveDate::from_ymd_opt(2026, 9, 1).unwrap_or_default());
}

#[test]
fn every_reregistration_resets_the_stream_once_even_with_nothing_to_undo() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    let reset = |source: &str, generation| {
        VerificationCommand::Reset(Reset { source: source.into(), generation, claim_id: None, now: at })
    };
    Fx::with(()).given_no_previous_events().when(reset("account#7", Some(1))).then_expect_events(vec![
        VerificationEvent::Reset { source: "account#7".into(), at, generation: Some(1), claim_id: None },
    ]);
    Fx::with(())
        .given(vec![VerificationEvent::Reset { source: "account#7".into(), at, generation: Some(1), claim_id: None }])
        .when(reset("account#7", Some(1)))
        .then_expect_events(vec![]);
}

#[test]
fn an_answer_awaited_when_the_stream_is_reset_is_not_recorded() {
    let at = cst(2026, 5, 10, 9, 0, 0);
    Fx::with(())
        .given(vec![
            started("a1", at),
            VerificationEvent::Reset { source: "account#7".into(), at, generation: Some(1), claim_id: None },
        ])
        .when(VerificationCommand::RecordAnswer(RecordAnswer {
            attempt_id: "a1".into(),
            answer: AuthorityAnswer::Passed,
            now: at,
        }))
        .then_expect_error(VerificationError::NoSuchAttempt);
}
