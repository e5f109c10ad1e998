//! The hand-over process manager: an approved re-registration claim hands the account to the
//! claimant (`AccountCommand::HandOver`: the claimant's credentials, contacts, and the name and
//! validity the reviewer approved; every session ends, WeChat is unbound). The identity
//! process manager then resets the verification stream to the new generation, approved.
//!
//! It runs on the projection runner, so an approval is carried over even if the process died
//! right after it; the hand-over is idempotent (the account records the claims it applied).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use shenfen_domain::account::{Account, AccountCommand, Registration};
use shenfen_domain::claim::{Claim, ClaimEvent};
use shenfen_domain::metadata::{Actor, EventMetadata};

use crate::db::DbTx;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};
use crate::store::{BusError, CommandBus};

/// The process manager.
pub struct HandOver {
    pub accounts: Arc<CommandBus<Account>>,
    pub claims: Arc<CommandBus<Claim>>,
}

impl HandOver {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "handover_process";
}

fn failed<E: std::error::Error>(err: BusError<E>) -> Result<(), ProjectionError> {
    match err {
        BusError::Domain(_) => Ok(()),
        other => Err(ProjectionError::Command(other.to_string())),
    }
}

#[async_trait]
impl Projection for HandOver {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == "claim" && e.event_type == "Approved"
    }

    async fn apply(&self, _: &mut DbTx, _: &StoredEvent) -> Result<(), ProjectionError> {
        Ok(())
    }

    fn is_process_manager(&self) -> bool {
        true
    }

    async fn handle(&self, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != <Claim as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event = ClaimEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
        let ClaimEvent::Approved { name, validity, at, .. } = event else { return Ok(()) };
        let claim = match self.claims.load(&e.aggregate_id).await {
            Ok(claim) => claim,
            Err(err) => return failed(err),
        };
        let (Some(account_id), Some(claimed)) = (claim.account_id, claim.claimed) else { return Ok(()) };
        let account = match self.accounts.load(&account_id).await {
            Ok(account) => account,
            Err(err) => return failed(err),
        };
        let (Some(document_type), Some(document_number)) = (account.document_type, account.document_number) else {
            return Ok(());
        };
        let registration = Registration {
            document_type,
            document_number,
            name,
            validity,
            email: claimed.email,
            mobile: claimed.mobile,
            password_hash: claimed.password_hash,
            // Accepted with the claim (its re-registration request), not recorded here.
            consent: None,
            now: at,
        };
        let request_id = e.metadata.get("request_id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let meta = EventMetadata { actor: Actor::System { id: Self::NAME.into() }, request_id, at };
        let command = AccountCommand::HandOver(shenfen_domain::account::HandOver {
            claim_id: e.aggregate_id.clone(),
            registration,
        });
        match self.accounts.execute(&account_id, command, &meta).await {
            Ok(_) => Ok(()),
            Err(err) => failed(err),
        }
    }
}
