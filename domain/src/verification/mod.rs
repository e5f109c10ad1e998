//! Real-name verification (实名核验) and manual review (人工审核): one stream per account,
//! with the same id as the account.
//!
//! Invariants, all decided from this stream's own events so they hold under concurrency:
//! - at most 3 counted real-name attempts per China-Standard-Time day. An attempt is recorded
//!   (`AttemptStarted`) *before* the identity authority is called, so the authority is called
//!   at most once per counted attempt; only one attempt is in flight at a time; an answer of
//!   "unavailable" voids the attempt (`AttemptVoided`), which then does not count; an attempt
//!   left in flight by a crash is voided when the next one starts;
//! - no attempt and no new application while a manual review is pending;
//! - manual review is possible after a failed attempt, or at once for a document type the
//!   authority cannot check; at most 3 applications per period (1 Jan – 31 Aug,
//!   1 Sep – 31 Dec, China time); a resubmission after a rejection counts as a new one;
//! - one reviewer claims an application; only that reviewer decides; a rejection needs a
//!   reason; a reviewer never claims their own account's application;
//! - a failed attempt after an approval (or a pass) never revokes it.
//!
//! A verified or approved name flows to the account through the identity process manager
//! (see `shenfen_projections::identity`), which is checkpointed like every projection, so a
//! step interrupted between the two aggregates is finished after a restart.

mod aggregate;
mod commands;
mod errors;
mod events;
pub mod review;
mod state;

pub use commands::*;
pub use errors::*;
pub use events::*;
pub use state::*;

#[cfg(test)]
mod tests;
