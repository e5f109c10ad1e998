//! The identity process manager: carries verification outcomes to the account, and account
//! re-registrations to the verification stream.
//!
//! It runs on the projection runner like every read model, so it resumes from its checkpoint
//! after a crash: a step interrupted between the two aggregates is finished on restart. Its
//! commands are idempotent (the account records the verification sequence it has applied;
//! the verification stream the generation it was reset to), so replaying an event does
//! nothing twice.
//!
//! Each event is carried as it happened: its own sequence, its own name and validity, and the
//! verification stream's status and generation folded up to that event — never the stream's
//! head, which a runner that is behind (after a restart, a retried batch) would pair with an
//! older event's data. The generation keeps proof given before a re-registration from ever
//! reaching the re-registered account.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use shenfen_domain::account::{Account, AccountCommand, AccountEvent, IdentityOutcome};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::verification::{Reset, Verification, VerificationCommand, VerificationEvent};

use crate::db::DbTx;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};
use crate::store::{BusError, CommandBus};

/// The process manager.
pub struct IdentityProcess {
    pub accounts: Arc<CommandBus<Account>>,
    pub verifications: Arc<CommandBus<Verification>>,
}

impl IdentityProcess {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "identity_process";

    fn meta(event: &StoredEvent) -> EventMetadata {
        let request_id = event.metadata.get("request_id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        EventMetadata { actor: Actor::System { id: Self::NAME.into() }, request_id, at: event.at() }
    }

    /// Carries one verification event to the account.
    async fn carry_outcome(&self, e: &StoredEvent, event: VerificationEvent) -> Result<(), ProjectionError> {
        let (name, validity) = match event {
            VerificationEvent::AttemptPassed { name, validity, .. } => (Some(name), validity),
            VerificationEvent::ApplicationApproved { name, validity, .. } => (Some(name), Some(validity)),
            VerificationEvent::AttemptFailed { .. }
            | VerificationEvent::ApplicationSubmitted { .. }
            | VerificationEvent::ApplicationRejected { .. }
            | VerificationEvent::Reset { .. } => (None, None),
            VerificationEvent::AttemptStarted { .. }
            | VerificationEvent::AttemptVoided { .. }
            | VerificationEvent::ApplicationClaimed { .. }
            | VerificationEvent::ApplicationWithdrawn { .. }
            | VerificationEvent::ApplicationPhotosDeleted { .. } => return Ok(()),
        };
        let then = match self.verifications.load_at(&e.aggregate_id, e.sequence).await {
            Ok(loaded) => loaded.state,
            Err(err) => return failed(err),
        };
        let outcome = IdentityOutcome {
            verification_sequence: e.sequence,
            generation: then.generation,
            status: then.status,
            name,
            validity,
            now: e.at(),
        };
        match self.accounts.execute(&e.aggregate_id, AccountCommand::RecordIdentity(outcome), &Self::meta(e)).await {
            Ok(_) => Ok(()),
            Err(err) => failed(err),
        }
    }

    /// Carries a re-registration to the verification stream.
    async fn carry_reregistration(&self, e: &StoredEvent, event: AccountEvent) -> Result<(), ProjectionError> {
        // An erasure starts a generation too: nothing the erased holder proved reaches whoever
        // registers the document next.
        let (at, generation, claim_id) = match event {
            AccountEvent::Reregistered { at, generation, claim_id, .. } => (at, generation, claim_id),
            AccountEvent::Erased { at, generation, .. } => (at, Some(generation), None),
            _ => return Ok(()),
        };
        let source = format!("account#{}", e.sequence);
        let command = VerificationCommand::Reset(Reset { source, generation, claim_id, now: at });
        match self.verifications.execute(&e.aggregate_id, command, &Self::meta(e)).await {
            Ok(_) => Ok(()),
            Err(err) => failed(err),
        }
    }
}

fn failed<E: std::error::Error>(err: BusError<E>) -> Result<(), ProjectionError> {
    match err {
        // The aggregate refused: nothing to carry over.
        BusError::Domain(_) => Ok(()),
        other => Err(ProjectionError::Command(other.to_string())),
    }
}

#[async_trait]
impl Projection for IdentityProcess {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        (e.aggregate_type == "account" && matches!(e.event_type, "Reregistered" | "Erased"))
            || (e.aggregate_type == "verification"
                && matches!(
                    e.event_type,
                    "AttemptPassed"
                        | "AttemptFailed"
                        | "ApplicationSubmitted"
                        | "ApplicationApproved"
                        | "ApplicationRejected"
                        | "Reset"
                ))
    }

    async fn apply(&self, _: &mut DbTx, _: &StoredEvent) -> Result<(), ProjectionError> {
        Ok(())
    }

    fn is_process_manager(&self) -> bool {
        true
    }

    async fn handle(&self, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type == <Verification as cqrs_es::Aggregate>::TYPE {
            let event = VerificationEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
            self.carry_outcome(e, event).await
        } else if e.aggregate_type == <Account as cqrs_es::Aggregate>::TYPE {
            let event = AccountEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
            self.carry_reregistration(e, event).await
        } else {
            Ok(())
        }
    }
}
