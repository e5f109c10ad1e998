//! Given/when/then tests of the code channel.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;

type Fx = TestFramework<CodeChannel>;

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 10, h, m, s).single().unwrap_or_default()
}

fn issued(t: DateTime<Utc>, hash: &str) -> CodeEvent {
    CodeEvent::Issued {
        channel: Channel::Sms,
        code_hash: hash.into(),
        issued_at: t,
        expires_at: t + Duration::hours(24),
    }
}

fn issue(t: DateTime<Utc>, hash: &str) -> CodeCommand {
    CodeCommand::Issue(IssueCode { channel: Channel::Sms, code_hash: hash.into(), now: t, ttl: Duration::hours(24) })
}

fn consume(t: DateTime<Utc>, hash: &str, who: &str) -> CodeCommand {
    CodeCommand::Consume(ConsumeCode { code_hash: hash.into(), claimant: who.into(), now: t })
}

#[tokio::test]
async fn a_first_code_is_issued() {
    Fx::with(())
        .given_no_previous_events()
        .when_async(issue(at(1, 0, 0), "h"))
        .await
        .then_expect_events(vec![issued(at(1, 0, 0), "h")]);
}

#[tokio::test]
async fn a_second_code_within_a_minute_is_rate_limited() {
    Fx::with(())
        .given(vec![issued(at(1, 0, 0), "h")])
        .when_async(issue(at(1, 0, 59), "h2"))
        .await
        .then_expect_error(CodeError::RateLimited { retry_at: at(1, 1, 0) });
}

#[tokio::test]
async fn a_second_code_after_a_minute_is_issued() {
    Fx::with(())
        .given(vec![issued(at(1, 0, 0), "h")])
        .when_async(issue(at(1, 1, 0), "h2"))
        .await
        .then_expect_events(vec![issued(at(1, 1, 0), "h2")]);
}

#[tokio::test]
async fn the_eleventh_code_of_a_china_day_waits_for_the_next_day() {
    // 10 codes between 00:00 and 00:10 China time (16:00 UTC the day before).
    let start = Utc.with_ymd_and_hms(2026, 5, 9, 16, 0, 0).single().unwrap_or_default();
    let events = (0..10).map(|i| issued(start + Duration::minutes(i), "h")).collect();
    let next_day = Utc.with_ymd_and_hms(2026, 5, 10, 16, 0, 0).single().unwrap_or_default();
    Fx::with(())
        .given(events)
        .when_async(issue(start + Duration::hours(3), "h"))
        .await
        .then_expect_error(CodeError::RateLimited { retry_at: next_day });
}

#[tokio::test]
async fn the_right_code_is_consumed_once() {
    Fx::with(())
        .given(vec![issued(at(1, 0, 0), "h")])
        .when_async(consume(at(1, 5, 0), "h", "acc"))
        .await
        .then_expect_events(vec![CodeEvent::Consumed { claimant: "acc".into(), at: at(1, 5, 0) }]);
}

#[tokio::test]
async fn consuming_again_for_the_same_claimant_is_a_no_op_and_for_another_is_refused() {
    let given = vec![issued(at(1, 0, 0), "h"), CodeEvent::Consumed { claimant: "acc".into(), at: at(1, 5, 0) }];
    Fx::with(()).given(given.clone()).when_async(consume(at(1, 6, 0), "h", "acc")).await.then_expect_events(vec![]);
    Fx::with(())
        .given(given)
        .when_async(consume(at(1, 6, 0), "h", "other"))
        .await
        .then_expect_error(CodeError::Invalid);
}

#[tokio::test]
async fn a_wrong_code_is_recorded_and_the_sixth_entry_is_refused_even_when_right() {
    Fx::with(())
        .given(vec![issued(at(1, 0, 0), "h")])
        .when_async(consume(at(1, 1, 0), "wrong", "acc"))
        .await
        .then_expect_events(vec![CodeEvent::WrongEntry { at: at(1, 1, 0) }]);
    let mut given = vec![issued(at(1, 0, 0), "h")];
    given.extend((0..5).map(|_| CodeEvent::WrongEntry { at: at(1, 1, 0) }));
    Fx::with(()).given(given).when_async(consume(at(1, 2, 0), "h", "acc")).await.then_expect_error(CodeError::Invalid);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    Fx::with(())
        .given(vec![issued(at(1, 0, 0), "h")])
        .when_async(consume(at(1, 0, 0) + Duration::hours(24), "h", "acc"))
        .await
        .then_expect_error(CodeError::Invalid);
}

#[tokio::test]
async fn only_the_latest_code_is_live() {
    Fx::with(())
        .given(vec![issued(at(1, 0, 0), "old"), issued(at(1, 2, 0), "new")])
        .when_async(consume(at(1, 3, 0), "old", "acc"))
        .await
        .then_expect_events(vec![CodeEvent::WrongEntry { at: at(1, 3, 0) }]);
}

#[tokio::test]
async fn no_code_at_all_is_refused() {
    Fx::with(())
        .given_no_previous_events()
        .when_async(consume(at(1, 0, 0), "h", "acc"))
        .await
        .then_expect_error(CodeError::Invalid);
}
