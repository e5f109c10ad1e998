//! Everything below the binaries that touches the database: opening a store of either
//! backend ([`db`]), the cqrs-es event store and command bus ([`store`]), reading the log in
//! global order ([`log`]), the catch-up projection runner ([`runner`]), the read models
//! ([`account_view`], [`quotas`], [`review_queue`], [`claims`], [`photo_refs`],
//! [`support_cases`], [`students`]), the
//! [`identity`] process manager, and the outbox of messages ([`outbox`]).

pub mod account_view;
pub mod analytics;
pub mod append;
pub mod audit;
pub mod chain;
pub mod checkpoint;
pub mod claims;
pub mod commits;
pub mod db;
pub mod deletions;
pub mod feed;
pub mod handover;
pub mod identity;
pub mod log;
pub mod master_keys;
pub mod notify;
pub mod outbox;
pub mod photo_refs;
pub mod pii;
pub mod quotas;
pub mod reanchor;
pub mod review_queue;
pub mod runner;
pub mod seal;
pub mod snapshots;
pub mod store;
pub mod students;
pub mod support_cases;

use std::sync::Arc;

/// Every read model, in one list (the replay tool rebuilds the same). The server also runs
/// the [`identity`] process manager, which issues commands and is therefore not a read model.
pub fn read_models() -> Vec<Arc<dyn runner::Projection>> {
    vec![
        Arc::new(account_view::AccountView),
        Arc::new(quotas::Quotas),
        Arc::new(review_queue::ReviewQueue),
        Arc::new(analytics::Analytics::new()),
        Arc::new(photo_refs::PhotoRefs),
        Arc::new(claims::Claims),
        Arc::new(feed::IdentityChanges),
        Arc::new(deletions::PendingDeletions),
        Arc::new(support_cases::SupportCases),
        Arc::new(students::Students),
    ]
}
