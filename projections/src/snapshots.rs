//! Snapshot writers: keep aggregate load time flat by storing a snapshot of a stream every
//! [`EVERY`] events, outside the command path (a command never waits for one). One writer per
//! aggregate type runs on the projection runner; writing is idempotent (a snapshot only moves
//! forward), so a replayed event is harmless.

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use shenfen_domain::StateVersion;

use crate::db::DbTx;
use crate::log::{EventKind, StoredEvent};
use crate::runner::{Projection, ProjectionError};
use crate::store::{BusError, CommandBus};

/// A snapshot is written when a stream's sequence is a multiple of this.
pub const EVERY: i64 = 100;

/// The snapshot writer of aggregate type `A`.
pub struct SnapshotWriter<A: Aggregate> {
    bus: Arc<CommandBus<A>>,
    name: &'static str,
}

impl<A: Aggregate> SnapshotWriter<A> {
    /// A writer named `name` (its checkpoint key) loading through `bus`.
    pub fn new(bus: Arc<CommandBus<A>>, name: &'static str) -> Self {
        SnapshotWriter { bus, name }
    }
}

#[async_trait]
impl<A> Projection for SnapshotWriter<A>
where
    A: Aggregate + StateVersion + shenfen_domain::KeyEpoch + Clone + 'static,
    A::Command: Clone + Send + Sync,
    A::Services: Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == A::TYPE && e.sequence % EVERY == 0
    }

    async fn apply(&self, _: &mut DbTx, _: &StoredEvent) -> Result<(), ProjectionError> {
        Ok(())
    }

    fn is_process_manager(&self) -> bool {
        true
    }

    async fn handle(&self, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != A::TYPE || e.sequence % EVERY != 0 {
            return Ok(());
        }
        match self.bus.write_snapshot(&e.aggregate_id).await {
            Ok(()) | Err(BusError::Domain(_)) => Ok(()),
            Err(err) => Err(ProjectionError::Command(err.to_string())),
        }
    }
}
