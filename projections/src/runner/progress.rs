//! Where the running projections stand, for read-your-writes waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::checkpoint;
use crate::commits::Commits;
use crate::db::Db;
use crate::log::Position;

/// Handle on running projections: their progress, for read-your-writes waits.
#[derive(Clone)]
pub struct Progress {
    pub(super) db: Db,
    pub(super) commits: Arc<Commits>,
    pub(super) local: Arc<HashMap<&'static str, watch::Receiver<Position>>>,
}

impl Progress {
    /// Waits until every projection in `names` has applied `position`, at most `timeout`.
    /// Returns whether they caught up.
    pub async fn wait_for(&self, names: &[&'static str], position: Position, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // The runners here (those that lead) may not want the events at `position`: make them
        // all read that far anyway, at once.
        for name in names {
            self.commits.chase(name, position);
        }
        for name in names {
            if !self.wait_one(name, position, deadline).await {
                metrics::counter!("shenfen_read_your_writes_timeouts_total", "projection" => *name).increment(1);
                return false;
            }
        }
        true
    }

    /// Those of `names` worth waiting for after a command whose events are `kinds`: a read
    /// model that wants none of them cannot change with the command. (Waiting for it anyway
    /// costs up to a second when it leads in another process, which writes a position reached
    /// through unwanted events only that often.)
    pub fn wanting(&self, names: &[&'static str], kinds: &[crate::log::EventKind<'_>]) -> Vec<&'static str> {
        names.iter().copied().filter(|name| self.commits.wants_any(name, kinds)).collect()
    }

    async fn wait_one(&self, name: &'static str, position: Position, deadline: Instant) -> bool {
        let mut local = self.local.get(name).cloned();
        loop {
            if let Some(rx) = &local {
                if *rx.borrow() >= position {
                    return true;
                }
            }
            // The projection may run in another process: its checkpoint row tells.
            if checkpoint::read(&self.db, name).await.is_ok_and(|c| c >= position) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let nap = (deadline - now).min(Duration::from_millis(25));
            match &mut local {
                Some(rx) => {
                    if let Ok(Err(_)) = tokio::time::timeout(nap, rx.changed()).await {
                        local = None;
                    }
                }
                None => tokio::time::sleep(nap).await,
            }
        }
    }
}
