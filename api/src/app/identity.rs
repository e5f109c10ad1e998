//! Real-name verification against the identity authority.
//!
//! The attempt is recorded on the verification stream before the authority is called (so the
//! authority is asked at most once per counted attempt, and the quota is enforced by the
//! stream), then the answer is recorded. The request runs to its end even when its client
//! hangs up (`startup::run_to_completion`); an attempt left in flight by a crash counts as
//! abandoned after [`ABANDON_AFTER_SECONDS`] and is not counted.

use std::time::Duration;

use shenfen_domain::ports::IdentityQuery;
use shenfen_domain::shared::{DocumentNumber, DocumentType, PersonName, Validity};
use shenfen_domain::verification::{AuthorityAnswer, RecordAnswer, StartAttempt, VerificationCommand};

use crate::error::ApiResult;
use crate::extract::{Ctx, Holder};
use crate::startup::AppState;

/// How long an attempt may stay in flight before it counts as abandoned (a process that died
/// between calling the authority and recording its answer); well above the authority's
/// timeout.
pub const ABANDON_AFTER_SECONDS: i64 = 30;
/// How long the authority is waited for; then it counts as unavailable.
const AUTHORITY_TIMEOUT: Duration = Duration::from_secs(10);

/// What to ask the authority, validated: the account's document, and the name and validity to
/// verify.
pub struct AttemptInput {
    pub document_type: DocumentType,
    pub document_number: DocumentNumber,
    pub name: PersonName,
    /// A corrected validity, recorded with the attempt.
    pub corrected_validity: Option<Validity>,
    /// The validity the authority is asked about (the corrected one, else the registered one).
    pub validity: Option<Validity>,
}

/// Records an attempt, asks the authority and records its answer; answers it with the
/// attempts left today.
pub async fn attempt(
    state: &AppState,
    ctx: &Ctx,
    holder: &Holder,
    input: AttemptInput,
) -> ApiResult<(AuthorityAnswer, u32)> {
    let attempt_id = uuid::Uuid::new_v4().to_string();
    let start = VerificationCommand::StartAttempt(StartAttempt {
        account_id: holder.account_id.clone(),
        attempt_id: attempt_id.clone(),
        name: input.name.clone(),
        validity: input.corrected_validity,
        abandon_before: ctx.now - chrono::Duration::seconds(ABANDON_AFTER_SECONDS),
        now: ctx.now,
    });
    state.verifications.execute(&holder.account_id, start, &ctx.meta(holder.actor())).await?;
    let query = IdentityQuery {
        document_type: input.document_type,
        document_number: input.document_number,
        name: input.name,
        validity: input.validity,
    };
    let answer = tokio::time::timeout(AUTHORITY_TIMEOUT, state.authority.check(&query))
        .await
        .unwrap_or(AuthorityAnswer::Unavailable);
    metrics::counter!("shenfen_authority_answers_total", "result" => match &answer {
        AuthorityAnswer::Passed => "passed",
        AuthorityAnswer::Failed { .. } => "failed",
        AuthorityAnswer::Unavailable => "unavailable",
    })
    .increment(1);
    let record =
        VerificationCommand::RecordAnswer(RecordAnswer { attempt_id, answer: answer.clone(), now: state.clock.now() });
    let committed = state.verifications.execute(&holder.account_id, record, &ctx.meta(holder.actor())).await?;
    let left = committed.state.quotas(ctx.now).attempts_left_today;
    super::settle_verification(state, &committed).await;
    tracing::info!(account_id = %holder.account_id, result = ?committed.events.first().map(|e| e.name()), "real-name attempt");
    Ok((answer, left))
}
