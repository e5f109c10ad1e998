//! The identity process manager: carries verification outcomes to the account, and account
//! re-registrations to the verification stream.
//!
//! It runs on the projection runner like every read model, so it resumes from its checkpoint
//! after a crash: a step interrupted between the two aggregates is finished on restart. Its
//! commands are idempotent (the account records the verification sequence it has applied;
//! the verification stream records the reset sources it has applied), so replaying an event
//! does nothing twice.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use shenfen_domain::account::{Account, AccountCommand, AccountEvent};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::verification::{Verification, VerificationCommand, VerificationEvent};

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
        (e.aggregate_type == "account" && e.event_type == "Reregistered")
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
        let id = e.aggregate_id.as_str();
        if e.aggregate_type == <Verification as cqrs_es::Aggregate>::TYPE {
            let event = VerificationEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
            let (name, validity) = match event {
                VerificationEvent::AttemptPassed { name, validity, .. } => (Some(name), validity),
                VerificationEvent::ApplicationApproved { name, validity, .. } => (Some(name), Some(validity)),
                VerificationEvent::AttemptFailed { .. }
                | VerificationEvent::ApplicationSubmitted { .. }
                | VerificationEvent::ApplicationRejected { .. }
                | VerificationEvent::Reset { .. } => (None, None),
                _ => return Ok(()),
            };
            let (state, sequence) = match self.verifications.load_versioned(id).await {
                Ok(loaded) => loaded,
                Err(err) => return failed(err),
            };
            let command = AccountCommand::RecordIdentity {
                verification_sequence: sequence.max(e.sequence),
                status: state.status,
                name,
                validity,
                now: e.at(),
            };
            if let Err(err) = self.accounts.execute(id, command, &Self::meta(e)).await {
                return failed(err);
            }
        } else if e.aggregate_type == <Account as cqrs_es::Aggregate>::TYPE {
            let event = AccountEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
            if let AccountEvent::Reregistered { at, .. } = event {
                let command = VerificationCommand::Reset { source: format!("account#{}", e.sequence), now: at };
                if let Err(err) = self.verifications.execute(id, command, &Self::meta(e)).await {
                    return failed(err);
                }
            }
        }
        Ok(())
    }
}
