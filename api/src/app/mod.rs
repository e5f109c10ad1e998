//! Use cases: the steps between a validated request and the commands it issues, for the
//! handlers that do more than one thing (store photos then apply; record an attempt, call the
//! authority, record its answer; consume a code then register). They take validated values
//! and answer domain values; handlers parse requests and shape answers.

pub mod erasure;
pub mod identity;
pub mod password;
pub mod profile;
pub mod registration;
pub mod review;
pub mod sessions;
pub mod support_cases;

use shenfen_projections::identity::IdentityProcess;
use shenfen_projections::log::Position;
use shenfen_projections::quotas::Quotas;
use shenfen_projections::review_queue::ReviewQueue;

use crate::startup::AppState;

/// Waits until a verification event is reflected where the holder and reviewers read: the
/// quotas and the review queue, and the account (name, status) once the identity process
/// manager has carried it over.
pub async fn settle_verification(state: &AppState, position: Option<Position>) {
    state.caught_up(position, &[Quotas::NAME, ReviewQueue::NAME, IdentityProcess::NAME]).await;
}
