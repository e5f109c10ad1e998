//! Support cases: opening one (the photo stored, the case and its acknowledgement committed
//! together), a support agent's reply (the reply and its e-mail committed together), and
//! checking a case named as the evidence of a support change.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use shenfen_domain::metadata::Actor;
use shenfen_domain::support_case::{
    self, Applicant, CaseKind, CaseText, OpenCase, ReplyToCase, SupportCase, SupportCaseCommand, SupportCaseError,
    CASE_ID_PREFIX,
};
use shenfen_projections::outbox::NewMessage;
use shenfen_projections::store::CommitOptions;
use shenfen_projections::support_cases::SupportCases;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Ctx, StaffMember};
use crate::startup::AppState;

/// The acknowledgement's notifier purpose.
pub const RECEIVED: &str = "support_case_received";
/// A reply's notifier purpose.
pub const REPLY: &str = "support_case_reply";
/// How long a case's message is tried before it is given up.
const MESSAGE_DAYS: i64 = 7;

/// A case form as validated: its kind, who wrote, their description, and the handheld photo
/// (a real JPEG under 190 KB).
pub struct CaseForm {
    pub kind: CaseKind,
    pub applicant: Applicant,
    pub description: CaseText,
    pub photo_handheld: Vec<u8>,
}

/// An opened case.
pub struct Opened {
    pub case_id: String,
    pub reply_due_by: DateTime<Utc>,
}

fn email(to: &str, purpose: &str, body: &serde_json::Value, now: DateTime<Utc>) -> NewMessage {
    NewMessage {
        channel: "email".into(),
        destination: to.into(),
        purpose: purpose.into(),
        body: body.to_string(),
        created_at: now,
        expires_at: now + Duration::days(MESSAGE_DAYS),
    }
}

/// Stores the photo and opens the case, due 24 working hours from now; its acknowledgement to
/// the e-mail given is queued in the same commit.
pub async fn open(state: &AppState, ctx: &Ctx, form: CaseForm) -> ApiResult<Opened> {
    let CaseForm { kind, applicant, description, photo_handheld } = form;
    let photo_handheld = state.blobs.put(photo_handheld).await.map_err(ApiError::internal)?;
    let case_id = format!("{CASE_ID_PREFIX}{}", crate::crypto::random_hex(16));
    let reply_due_by = support_case::reply_due_by(&state.calendar, ctx.now);
    let account_id = shenfen_domain::ids::account_id(&state.key, applicant.document_type, &applicant.document_number);
    let ack = email(
        applicant.email.as_str(),
        RECEIVED,
        &json!({"case_id": case_id, "kind": kind.as_str(), "reply_due_by": reply_due_by}),
        ctx.now,
    );
    let command = SupportCaseCommand::Open(OpenCase {
        kind,
        applicant,
        description,
        photo_handheld,
        account_id,
        reply_due_by,
        now: ctx.now,
    });
    let committed = state
        .support_cases
        .execute_sending(&case_id, command, &ctx.meta(Actor::Anonymous), vec![ack], "Opened")
        .await?;
    state.outbox_wake.notify_one();
    state.caught_up_after(&committed, &[SupportCases::NAME]).await;
    tracing::info!(case_id = %case_id, kind = kind.as_str(), "support case opened");
    Ok(Opened { case_id, reply_due_by })
}

/// A support agent replies to case `case_id`; the reply goes to the case's e-mail in the same
/// commit.
pub async fn reply(
    state: &AppState,
    ctx: &Ctx,
    staff: &StaffMember,
    case_id: &str,
    message: CaseText,
) -> ApiResult<()> {
    let current = state.support_cases.load_current(case_id).await?;
    let to = current.loaded.state.applicant.as_ref().map(|a| a.email.as_str().to_string());
    let Some(to) = to else { return Err(SupportCaseError::NotFound.into()) };
    let sent = email(&to, REPLY, &json!({"case_id": case_id, "message": message.as_str()}), ctx.now);
    let command = SupportCaseCommand::Reply(ReplyToCase { message, agent: staff.staff_id.clone(), now: ctx.now });
    let options = CommitOptions { messages: vec![sent], messages_with: Some("Replied"), ..CommitOptions::default() };
    let committed = state
        .support_cases
        .execute_with(case_id, Some(current), &|_: &SupportCase| true, command, &ctx.meta(staff.actor()), options)
        .await?;
    state.outbox_wake.notify_one();
    state.caught_up_after(&committed, &[SupportCases::NAME]).await;
    tracing::info!(staff_id = %staff.staff_id, case_id = %case_id, "support case replied to");
    Ok(())
}

/// What is wrong with `evidence` as the evidence of a support change of `account_id`, when it
/// names a support case (see [`support_case::names_a_case`]): `unknown_case` when no such case
/// was opened, `case_of_another_account` when the case names another document's account.
/// `None` when it is fine, or names no case.
pub async fn evidence_problem(state: &AppState, evidence: &str, account_id: &str) -> ApiResult<Option<&'static str>> {
    let evidence = evidence.trim();
    if !support_case::names_a_case(evidence) {
        return Ok(None);
    }
    if !support_case::is_case_id(evidence) {
        return Ok(Some("unknown_case"));
    }
    let case = state.support_cases.load(evidence).await?;
    Ok(match case.account_id.as_deref() {
        None => Some("unknown_case"),
        Some(named) if named != account_id => Some("case_of_another_account"),
        Some(_) => None,
    })
}
