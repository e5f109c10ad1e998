//! Use cases: the steps between a validated request and the commands it issues, for the
//! handlers that do more than one thing (store photos then apply; record an attempt, call the
//! authority, record its answer; consume a code then register). They take validated values
//! and answer domain values; handlers parse requests and shape answers.

pub mod erasure;
pub mod export;
pub mod identity;
pub mod password;
pub mod profile;
pub mod registration;
pub mod retention;
pub mod review;
pub mod sessions;
pub mod students;
pub mod support_cases;

use shenfen_domain::verification::Verification;
use shenfen_projections::identity::IdentityProcess;
use shenfen_projections::quotas::Quotas;
use shenfen_projections::review_queue::ReviewQueue;
use shenfen_projections::store::Committed;

use crate::startup::AppState;

/// Waits until a verification command's events are reflected where the holder and reviewers
/// read: the quotas and the review queue, and the account (name, status) once the identity
/// process manager has carried it over — each of them only if it wants one of the events.
pub async fn settle_verification(state: &AppState, committed: &Committed<Verification>) {
    state.caught_up_after(committed, &[Quotas::NAME, ReviewQueue::NAME, IdentityProcess::NAME]).await;
}

/// The housekeeping rounds, every `SHENFEN_HOUSEKEEPING_SECONDS`: erasures that fell due, then
/// photos past their retention, then the claimants of claims that ended that long ago.
pub async fn run_housekeeping(state: std::sync::Arc<crate::startup::AppState>) {
    let every = std::time::Duration::from_secs(state.settings.housekeeping_seconds.max(1));
    loop {
        let now = state.clock.now();
        erasure::erase_due(&state, now).await;
        students::erase_due(&state, now).await;
        if let Err(e) = retention::delete_due(&state, now).await {
            tracing::error!(code = %e.code, "deleting photos past their retention failed; tried again next round");
        }
        if let Err(e) = retention::forget_claimants(&state, now).await {
            tracing::error!(code = %e.code, "forgetting claimants past their retention failed; tried again next round");
        }
        tokio::time::sleep(every).await;
    }
}
