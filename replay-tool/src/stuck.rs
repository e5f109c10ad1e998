//! `stuck`: the projections that stopped at an event they cannot apply (see
//! [`checkpoint::stuck`](shenfen_projections::checkpoint::stuck)), with that event, so that an operator can see what is wrong with it and
//! fix the cause (usually by deploying code that reads it). Nothing is skipped or changed.

use shenfen_projections::checkpoint::Stuck;
use shenfen_projections::db::Db;
use shenfen_projections::log::{self, Position, StoredEvent};

use crate::ReplayError;

/// A stuck projection and the event it stopped at (or, when its error names no event, the
/// first event of the batch that fails).
#[derive(Debug, Clone)]
pub struct Found {
    pub stuck: Stuck,
    pub event: Option<StoredEvent>,
}

/// Every stuck projection, with its event.
pub async fn find(db: &Db) -> Result<Vec<Found>, ReplayError> {
    let mut found = Vec::new();
    for stuck in shenfen_projections::checkpoint::stuck(db).await? {
        let at = Position { tx: stuck.tx, pos: stuck.pos };
        // The event at `at` is the first one after the position just before it.
        let from = if stuck.exact { Position { tx: at.tx, pos: at.pos - 1 } } else { at };
        let next = log::read_after(db, from, 1).await?.into_iter().next();
        let event = next.filter(|e| !stuck.exact || e.pos == at.pos);
        found.push(Found { stuck, event });
    }
    Ok(found)
}
