//! Everything below the binaries that touches the database: opening a store of either
//! backend ([`db`]), the cqrs-es event store and command bus ([`store`]), reading the log in
//! global order ([`log`]), the catch-up projection runner ([`runner`]), the read models
//! ([`account_view`], [`sessions`]) and the outbox of messages ([`outbox`]).

pub mod account_view;
pub mod db;
pub mod log;
pub mod outbox;
pub mod runner;
pub mod sessions;
pub mod store;

use std::sync::Arc;

/// Every projection the server runs, in one list (the replay tool rebuilds the same).
pub fn all_projections() -> Vec<Arc<dyn runner::Projection>> {
    vec![Arc::new(account_view::AccountView), Arc::new(sessions::Sessions)]
}
