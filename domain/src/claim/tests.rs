//! Given/when/then tests of re-registration claims.

use chrono::TimeZone;
use cqrs_es::test::TestFramework;

use super::*;
use crate::verification::Decision;

type Fx = TestFramework<Claim>;

fn t(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, d, h, 0, 0).single().unwrap_or_default()
}

fn name() -> PersonName {
    PersonName::parse("李四").expect("name")
}

fn validity() -> Validity {
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
    Validity::parse("20y", start, DocumentType::ResidentIdCard, None, start).expect("validity")
}

fn opened() -> ClaimEvent {
    ClaimEvent::Opened {
        account_id: "acc".into(),
        document_type: DocumentType::ResidentIdCard,
        claimed: Claimed {
            name: name(),
            validity: validity(),
            email: Email::parse("a@example.com").expect("email"),
            mobile: Mobile::parse("13900139000").expect("mobile"),
            password_hash: "H".into(),
        },
        token_hash: "tok".into(),
        expires_at: t(1, 0) + Duration::days(CLAIM_DAYS),
        at: t(1, 0),
    }
}

fn proof(at: DateTime<Utc>) -> ClaimCommand {
    ClaimCommand::SubmitProof(SubmitProof {
        review_id: "rvc".into(),
        request: ReviewRequest {
            document_type: DocumentType::ResidentIdCard,
            name: name(),
            validity: validity(),
            photos: Photos { front: "f".into(), back: "b".into(), handheld: "h".into() },
        },
        due_by: NaiveDate::from_ymd_opt(2026, 5, 12).unwrap_or_default(),
        now: at,
    })
}

fn submitted() -> ClaimEvent {
    ClaimEvent::ProofSubmitted {
        account_id: "acc".into(),
        review_id: "rvc".into(),
        document_type: DocumentType::ResidentIdCard,
        name: name(),
        validity: validity(),
        photos: Photos { front: "f".into(), back: "b".into(), handheld: "h".into() },
        due_by: NaiveDate::from_ymd_opt(2026, 5, 12).unwrap_or_default(),
        at: t(2, 0),
    }
}

#[test]
fn a_claim_without_proof_expires_after_thirty_days_and_its_token_dies() {
    let mut claim = Claim::default();
    claim.apply(opened());
    let day_29 = t(1, 0) + Duration::days(29);
    assert_eq!(claim.status_at(day_29), Some(ClaimStatus::ProofRequired));
    assert!(claim.token_alive("tok", day_29));
    let day_30 = t(1, 0) + Duration::days(30);
    assert_eq!(claim.status_at(day_30), Some(ClaimStatus::Expired));
    assert!(!claim.token_alive("tok", day_30));
    assert!(!claim.token_alive("other", day_29));
}

#[tokio::test]
async fn proof_is_refused_after_expiry_or_refusal() {
    Fx::with(())
        .given(vec![opened()])
        .when_async(proof(t(1, 0) + Duration::days(31)))
        .await
        .then_expect_error(ClaimError::NotOpen);
    Fx::with(())
        .given(vec![opened(), ClaimEvent::Refused { at: t(1, 5) }])
        .when_async(proof(t(2, 0)))
        .await
        .then_expect_error(ClaimError::NotOpen);
}

#[tokio::test]
async fn the_holder_may_refuse_an_open_claim_once() {
    Fx::with(())
        .given(vec![opened(), submitted()])
        .when_async(ClaimCommand::Refuse(Refuse { now: t(3, 0) }))
        .await
        .then_expect_events(vec![ClaimEvent::Refused { at: t(3, 0) }]);
    Fx::with(())
        .given(vec![opened(), ClaimEvent::Refused { at: t(3, 0) }])
        .when_async(ClaimCommand::Refuse(Refuse { now: t(3, 1) }))
        .await
        .then_expect_error(ClaimError::NotOpen);
}

#[tokio::test]
async fn only_the_claiming_reviewer_decides_and_never_on_the_account_itself() {
    Fx::with(())
        .given(vec![opened(), submitted()])
        .when_async(ClaimCommand::ClaimReview(ClaimApplication {
            review_id: "rvc".into(),
            reviewer: "r1".into(),
            reviewer_account: Some("acc".into()),
            now: t(3, 0),
        }))
        .await
        .then_expect_error(ClaimError::OwnAccount);
    let claimed = ClaimEvent::ReviewClaimed { review_id: "rvc".into(), reviewer: "r1".into(), at: t(3, 0) };
    Fx::with(())
        .given(vec![opened(), submitted(), claimed.clone()])
        .when_async(ClaimCommand::Decide(DecideApplication {
            review_id: "rvc".into(),
            reviewer: "r2".into(),
            decision: Decision::Approve,
            now: t(3, 1),
        }))
        .await
        .then_expect_error(ClaimError::NotClaimedByYou);
    Fx::with(())
        .given(vec![opened(), submitted(), claimed])
        .when_async(ClaimCommand::Decide(DecideApplication {
            review_id: "rvc".into(),
            reviewer: "r1".into(),
            decision: Decision::Approve,
            now: t(3, 1),
        }))
        .await
        .then_expect_events(vec![ClaimEvent::Approved {
            review_id: "rvc".into(),
            reviewer: "r1".into(),
            reason: None,
            name: name(),
            validity: validity(),
            at: t(3, 1),
        }]);
}

#[tokio::test]
async fn a_proofs_photos_are_deleted_once_its_review_ended_the_retention_period_ago() {
    let delete =
        |now| ClaimCommand::DeletePhotos(DeletePhotos { review_id: "rvc".into(), retention: Duration::days(180), now });
    let rejected = ClaimEvent::Rejected {
        review_id: "rvc".into(),
        reviewer: "r".into(),
        reason: "照片不清晰".into(),
        at: t(3, 0),
    };
    let deleted = ClaimEvent::ProofPhotosDeleted { review_id: "rvc".into(), at: t(3, 0) + Duration::days(180) };
    // Pending: kept, however long.
    Fx::with(())
        .given(vec![opened(), submitted()])
        .when_async(delete(t(3, 0) + Duration::days(400)))
        .await
        .then_expect_events(vec![]);
    // Decided: kept for the retention period, to the second, then deleted once.
    let given = || vec![opened(), submitted(), rejected.clone()];
    let day_before = t(3, 0) + Duration::days(180) - Duration::seconds(1);
    Fx::with(()).given(given()).when_async(delete(day_before)).await.then_expect_events(vec![]);
    Fx::with(())
        .given(given())
        .when_async(delete(t(3, 0) + Duration::days(180)))
        .await
        .then_expect_events(vec![deleted.clone()]);
    let mut done = given();
    done.push(deleted);
    Fx::with(()).given(done).when_async(delete(t(3, 0) + Duration::days(200))).await.then_expect_events(vec![]);
    // Withdrawn by the holder's refusal: counted from the refusal.
    Fx::with(())
        .given(vec![opened(), submitted(), ClaimEvent::Refused { at: t(4, 0) }])
        .when_async(delete(t(4, 0) + Duration::days(180)))
        .await
        .then_expect_events(vec![ClaimEvent::ProofPhotosDeleted {
            review_id: "rvc".into(),
            at: t(4, 0) + Duration::days(180),
        }]);
    Fx::with(()).given(vec![opened()]).when_async(delete(t(9, 0))).await.then_expect_error(ClaimError::ReviewNotFound);
}

#[tokio::test]
async fn the_claimant_is_forgotten_once_the_claim_ended_the_retention_period_ago() {
    let retention = Duration::days(180);
    let forget = |now| ClaimCommand::Forget(Forget { key_version: 1, retention, now });
    let forgotten = |at| ClaimEvent::Forgotten { key_version: 1, at };
    // Open or under review: kept.
    Fx::with(())
        .given(vec![opened(), submitted()])
        .when_async(forget(t(3, 0) + Duration::days(400)))
        .await
        .then_expect_events(vec![]);
    // Rejected: from the decision, to the second.
    let rejected =
        ClaimEvent::Rejected { review_id: "rvc".into(), reviewer: "r".into(), reason: "不符".into(), at: t(3, 0) };
    let given = || vec![opened(), submitted(), rejected.clone()];
    Fx::with(())
        .given(given())
        .when_async(forget(t(3, 0) + retention - Duration::seconds(1)))
        .await
        .then_expect_events(vec![]);
    Fx::with(())
        .given(given())
        .when_async(forget(t(3, 0) + retention))
        .await
        .then_expect_events(vec![forgotten(t(3, 0) + retention)]);
    // Expired without proof: from the expiry.
    let expiry = t(1, 0) + Duration::days(CLAIM_DAYS);
    Fx::with(())
        .given(vec![opened()])
        .when_async(forget(expiry + retention))
        .await
        .then_expect_events(vec![forgotten(expiry + retention)]);
    Fx::with(()).given(vec![opened()]).when_async(forget(expiry + Duration::days(10))).await.then_expect_events(vec![]);
    // Once: forgotten, the claim keeps no claimant and no live token.
    let mut claim = Claim::default();
    for event in [opened(), ClaimEvent::Refused { at: t(2, 0) }, forgotten(t(2, 0) + retention)] {
        cqrs_es::Aggregate::apply(&mut claim, event);
    }
    assert!(claim.forgotten && claim.claimed.is_none() && !claim.token_alive("tok", t(2, 0)));
    let mut events = vec![opened(), ClaimEvent::Refused { at: t(2, 0) }, forgotten(t(2, 0) + retention)];
    Fx::with(())
        .given(std::mem::take(&mut events))
        .when_async(forget(t(2, 0) + retention * 2))
        .await
        .then_expect_events(vec![]);
}
