//! Given/when/then tests of support cases, and the 24-working-hour reply rule.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;

use super::*;
use crate::calendar::WorkingCalendar;
use crate::shared::contact::{Email, Mobile};
use crate::shared::document::{DocumentNumber, DocumentType};
use crate::shared::name::PersonName;

type Fx = TestFramework<SupportCase>;

/// An instant given in China Standard Time.
fn cst(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap_or_default() - Duration::hours(8)
}

fn applicant() -> Applicant {
    let today = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap_or_default();
    Applicant {
        name: PersonName::parse("王五").expect("name"),
        document_type: DocumentType::ResidentIdCard,
        document_number: DocumentNumber::parse(DocumentType::ResidentIdCard, "11010519491231002X", today)
            .expect("number"),
        mobile: Mobile::parse("13900139000").expect("mobile"),
        email: Email::parse("wangwu@example.com").expect("email"),
    }
}

fn text(s: &str) -> CaseText {
    CaseText::parse(s, MAX_DESCRIPTION_CHARS).expect("text")
}

fn opened_at() -> DateTime<Utc> {
    cst(2026, 5, 12, 10, 0)
}

fn open() -> SupportCaseCommand {
    SupportCaseCommand::Open(OpenCase {
        kind: CaseKind::ContactChange,
        applicant: applicant(),
        description: text("手机号已停用，无法找回密码"),
        photo_handheld: "ab".repeat(32),
        account_id: "acc".into(),
        reply_due_by: cst(2026, 5, 13, 10, 0),
        now: opened_at(),
    })
}

fn opened() -> SupportCaseEvent {
    SupportCaseEvent::Opened {
        kind: CaseKind::ContactChange,
        applicant: applicant(),
        description: text("手机号已停用，无法找回密码"),
        photo_handheld: "ab".repeat(32),
        account_id: "acc".into(),
        reply_due_by: cst(2026, 5, 13, 10, 0),
        at: opened_at(),
    }
}

fn replied(at: DateTime<Utc>) -> SupportCaseEvent {
    SupportCaseEvent::Replied {
        message: text("已为您核查，请按邮件指引操作。"), agent: "agent-1".into(), at
    }
}

fn reply(at: DateTime<Utc>) -> SupportCaseCommand {
    SupportCaseCommand::Reply(ReplyToCase {
        message: text("已为您核查，请按邮件指引操作。"),
        agent: "agent-1".into(),
        now: at,
    })
}

fn folded(events: Vec<SupportCaseEvent>) -> SupportCase {
    let mut case = SupportCase::default();
    for event in events {
        case.apply(event);
    }
    case
}

// -- the aggregate -------------------------------------------------------------------------------

#[tokio::test]
async fn a_support_case_is_opened_with_what_the_person_gave_and_its_due_instant() {
    Fx::with(()).given_no_previous_events().when_async(open()).await.then_expect_events(vec![opened()]);
}

#[tokio::test]
async fn a_support_case_is_opened_only_once() {
    Fx::with(()).given(vec![opened()]).when_async(open()).await.then_expect_error(SupportCaseError::AlreadyOpen);
}

#[tokio::test]
async fn a_support_case_that_was_never_opened_cannot_be_replied_to() {
    Fx::with(())
        .given_no_previous_events()
        .when_async(reply(cst(2026, 5, 12, 11, 0)))
        .await
        .then_expect_error(SupportCaseError::NotFound);
}

#[tokio::test]
async fn every_reply_to_a_support_case_is_recorded_with_its_agent() {
    let first = cst(2026, 5, 12, 11, 0);
    Fx::with(()).given(vec![opened()]).when_async(reply(first)).await.then_expect_events(vec![replied(first)]);
    let second = cst(2026, 5, 12, 12, 0);
    Fx::with(())
        .given(vec![opened(), replied(first)])
        .when_async(reply(second))
        .await
        .then_expect_events(vec![replied(second)]);
}

#[test]
fn an_open_support_case_is_overdue_only_after_its_due_instant_and_never_once_replied() {
    let case = folded(vec![opened()]);
    let due = cst(2026, 5, 13, 10, 0);
    assert_eq!(case.status(), Some(CaseStatus::Open));
    assert!(!case.overdue_at(due));
    assert!(case.overdue_at(due + Duration::seconds(1)));
    let case = folded(vec![opened(), replied(due + Duration::hours(1))]);
    assert_eq!(case.status(), Some(CaseStatus::Replied));
    assert!(!case.overdue_at(due + Duration::days(30)));
    assert_eq!(SupportCase::default().status(), None);
    assert!(!SupportCase::default().overdue_at(due));
}

#[test]
fn a_stored_support_case_opening_still_decodes() {
    let stored = serde_json::json!({"Opened": {
        "kind": "account_check",
        "applicant": {
            "name": "王五",
            "document_type": "resident_id_card",
            "document_number": "11010519491231002X",
            "mobile": "13900139000",
            "email": "wangwu@example.com",
        },
        "description": "提示该用户已注册",
        "photo_handheld": "ab".repeat(32),
        "account_id": "acc",
        "reply_due_by": "2026-05-13T02:00:00Z",
        "at": "2026-05-12T02:00:00Z",
    }});
    let event: SupportCaseEvent = serde_json::from_value(stored).expect("decodes");
    let SupportCaseEvent::Opened { kind, applicant: who, description, reply_due_by, .. } = event else {
        panic!("not an opening")
    };
    assert_eq!((kind, who, description.as_str()), (CaseKind::AccountCheck, applicant(), "提示该用户已注册"));
    assert_eq!(reply_due_by, cst(2026, 5, 13, 10, 0));
}

// -- values and ids ------------------------------------------------------------------------------

#[test]
fn support_case_text_is_trimmed_and_bounded_in_characters() {
    assert_eq!(CaseText::parse("  请核查  ", 10).map(|t| t.as_str().to_string()), Ok("请核查".to_string()));
    assert_eq!(CaseText::parse(" \n ", 10).map_err(|e| e.code()), Err("required"));
    let long = "核".repeat(MAX_DESCRIPTION_CHARS);
    assert!(CaseText::parse(&long, MAX_DESCRIPTION_CHARS).is_ok(), "2000 characters, 6000 bytes");
    let longer = format!("{long}x");
    assert_eq!(CaseText::parse(&longer, MAX_DESCRIPTION_CHARS).map_err(|e| e.code()), Err("too_long"));
    assert_eq!(format!("{:?}", text("手机号 13900139000")), "CaseText(15 chars)");
}

#[test]
fn support_case_ids_and_references_to_them_have_one_shape() {
    let id = format!("spc_{}", "0123456789abcdef".repeat(2));
    assert!(is_case_id(&id));
    assert!(!is_case_id(&id.to_uppercase()) && !is_case_id("spc_123") && !is_case_id(&id.replace("spc_", "scr_")));
    assert!(names_a_case(&id) && names_a_case("spc_nonsense") && names_a_case(" spc_1"));
    assert!(!names_a_case("mail-1024/handheld.jpg"));
    for kind in CaseKind::ALL {
        assert_eq!(CaseKind::parse(kind.as_str()), Some(kind));
    }
    for status in CaseStatus::ALL {
        assert_eq!(CaseStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(CaseKind::parse("other"), None);
}

// -- 24 working hours ----------------------------------------------------------------------------

#[test]
fn a_support_case_opened_on_a_working_day_is_due_24_hours_later_within_the_week() {
    let cal = WorkingCalendar::shipped();
    // Tuesday 12 May 2026, 10:00 → Wednesday 10:00.
    assert_eq!(reply_due_by(&cal, cst(2026, 5, 12, 10, 0)), cst(2026, 5, 13, 10, 0));
    // From a working day's midnight: the whole day counts.
    assert_eq!(reply_due_by(&cal, cst(2026, 5, 11, 0, 0)), cst(2026, 5, 12, 0, 0));
    // Rounded up to the whole second.
    let odd = cst(2026, 5, 12, 10, 0) + Duration::milliseconds(1_234);
    assert_eq!(reply_due_by(&cal, odd), cst(2026, 5, 13, 10, 0) + Duration::seconds(2));
    let whole = cst(2026, 5, 12, 10, 0) + Duration::seconds(7);
    assert_eq!(reply_due_by(&cal, whole), cst(2026, 5, 13, 10, 0) + Duration::seconds(7));
}

#[test]
fn a_support_case_opened_before_a_weekend_is_due_after_it() {
    let cal = WorkingCalendar::shipped();
    // Friday 15 May 2026, 10:00: 14 hours on Friday, 10 on Monday.
    assert_eq!(reply_due_by(&cal, cst(2026, 5, 15, 10, 0)), cst(2026, 5, 18, 10, 0));
    // Friday 23:30: half an hour on Friday, 23.5 hours on Monday.
    assert_eq!(reply_due_by(&cal, cst(2026, 5, 15, 23, 30)), cst(2026, 5, 18, 23, 30));
}

#[test]
fn a_support_case_opened_on_a_weekend_starts_counting_at_the_next_working_days_midnight() {
    let cal = WorkingCalendar::shipped();
    // Saturday 16 May 2026, 15:00: Monday 00:00 + 24 hours.
    assert_eq!(reply_due_by(&cal, cst(2026, 5, 16, 15, 0)), cst(2026, 5, 19, 0, 0));
    // Sunday a minute before midnight: the same.
    assert_eq!(reply_due_by(&cal, cst(2026, 5, 17, 23, 59)), cst(2026, 5, 19, 0, 0));
}

#[test]
fn a_support_case_opened_before_golden_week_is_due_after_it() {
    let cal = WorkingCalendar::shipped();
    // Wednesday 30 Sep 2026, 15:00: 9 hours, then 1–7 Oct are holidays, then 15 hours of
    // Thursday 8 Oct.
    assert_eq!(reply_due_by(&cal, cst(2026, 9, 30, 15, 0)), cst(2026, 10, 8, 15, 0));
    // 2025: Tuesday 30 Sep, 20:00: 4 hours, 1–8 Oct off, 20 hours of Thursday 9 Oct.
    assert_eq!(reply_due_by(&cal, cst(2025, 9, 30, 20, 0)), cst(2025, 10, 9, 20, 0));
}

#[test]
fn a_support_case_opened_during_golden_week_starts_counting_when_it_ends() {
    let cal = WorkingCalendar::shipped();
    // Saturday 3 Oct 2026 (a holiday): Thursday 8 Oct 00:00 + 24 hours.
    assert_eq!(reply_due_by(&cal, cst(2026, 10, 3, 11, 0)), cst(2026, 10, 9, 0, 0));
    // National Day itself, 1 Oct 2026, 00:00: the same.
    assert_eq!(reply_due_by(&cal, cst(2026, 10, 1, 0, 0)), cst(2026, 10, 9, 0, 0));
}

#[test]
fn adjusted_working_weekends_count_for_support_cases() {
    let cal = WorkingCalendar::shipped();
    // Friday 9 Oct 2026, 12:00: 12 hours, then Saturday 10 Oct is a working day.
    assert_eq!(reply_due_by(&cal, cst(2026, 10, 9, 12, 0)), cst(2026, 10, 10, 12, 0));
    // Thursday 24 Sep 2026, 18:00: 6 hours, Mid-autumn 25–27 Sep off, 18 hours of Monday 28 Sep.
    assert_eq!(reply_due_by(&cal, cst(2026, 9, 24, 18, 0)), cst(2026, 9, 28, 18, 0));
}

#[test]
fn a_support_case_in_a_year_without_calendar_data_counts_monday_to_friday() {
    let cal = WorkingCalendar::shipped();
    // Friday 4 Jan 2030, 09:00 → Monday 7 Jan, 09:00.
    assert_eq!(reply_due_by(&cal, cst(2030, 1, 4, 9, 0)), cst(2030, 1, 7, 9, 0));
}
