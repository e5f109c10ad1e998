//! Shenfen's domain: aggregates, commands, events, value objects and ports. No I/O.
//!
//! Two aggregates live here today:
//! - [`account::Account`], one stream per identity document. Its id is a keyed hash of the
//!   document (computed by the caller through [`ids`]), so a second registration of the same
//!   document lands on the same stream and is refused by the aggregate itself: uniqueness is
//!   enforced by the event store's `(aggregate_type, aggregate_id, sequence)` key, never by a
//!   read model that can lag. Credentials, sessions, lockout and password resets are all
//!   decided here, so concurrent requests cannot get past a rule.
//! - [`code::CodeChannel`], one stream per (purpose, mobile): verification codes, their
//!   rate limits and their wrong-entry counts.
//! - [`verification::Verification`], one stream per account: real-name attempts and
//!   manual-review applications, with their quotas.
//! - [`claim::Claim`], one stream per re-registration claim: a claimant's proof that they are
//!   the holder of a document whose account is in use, reviewed before anything changes.
//! - [`staff::Staff`], one stream per staff member.
//! - [`support_case::SupportCase`], one stream per support case: what someone who cannot help
//!   themselves wrote to support, and the agents' replies.
//! - [`student::Student`], one stream per student number (its id a keyed hash of the number,
//!   as an account's is of its document): the student's login, application, submissions with
//!   their daily quota, the registry's comparison and the school staff's decisions; and
//!   [`student::pass::PassIdOwner`], one stream per pass ID, which makes a pass ID unique and
//!   finds its student at login.
//!
//! Time and secrets never come from inside `handle`/`apply`: commands carry the instant and
//! the already-hashed secrets, so every rule is a pure function of events and command.

pub mod account;
pub mod calendar;
pub mod claim;
pub mod code;
pub mod ids;
pub mod kind;
pub mod lockout;
pub mod metadata;
pub mod ports;
pub mod shared;
pub mod staff;
pub mod student;
pub mod support_case;
pub mod time;
pub mod verification;

/// The version of an aggregate's state as `apply` builds it. Bump it whenever `apply` changes
/// what it makes of an event: stored snapshots of another version (or of another shape of the
/// state) are then ignored and rebuilt from the events.
pub trait StateVersion {
    const STATE_VERSION: u32;
}

impl StateVersion for account::Account {
    const STATE_VERSION: u32 = 2;
}

impl StateVersion for code::CodeChannel {
    const STATE_VERSION: u32 = 1;
}

impl StateVersion for verification::Verification {
    const STATE_VERSION: u32 = 2;
}

impl StateVersion for claim::Claim {
    const STATE_VERSION: u32 = 2;
}

impl StateVersion for staff::Staff {
    const STATE_VERSION: u32 = 2;
}

impl StateVersion for support_case::SupportCase {
    const STATE_VERSION: u32 = 1;
}

impl StateVersion for student::Student {
    const STATE_VERSION: u32 = 1;
}

impl StateVersion for student::pass::PassIdOwner {
    const STATE_VERSION: u32 = 1;
}

/// When the key that seals a stream's personal data may be taken from a cache rather than read
/// from the store: under the same epoch as when it was cached. A stream whose subject can be
/// erased and then written again (an account: its document registers anew) names an epoch
/// that the erasure changes, so that no process seals the new holder's data under the erased
/// holder's key. `None` (the default): the key is read from the store for every command.
pub trait KeyEpoch {
    fn key_epoch(&self) -> Option<u64> {
        None
    }
}

impl KeyEpoch for account::Account {
    /// The identity generation, which every erasure advances; never cached for a stream with
    /// no holder (erased, or not registered yet).
    fn key_epoch(&self) -> Option<u64> {
        (self.exists() && !self.erased).then_some(u64::from(self.generation))
    }
}

// The verification stream shares its account's subject, and is reset to a new generation only
// after the account's erasure, by a process manager: its key is read for every command.
impl KeyEpoch for verification::Verification {}
impl KeyEpoch for code::CodeChannel {}
impl KeyEpoch for claim::Claim {}
impl KeyEpoch for staff::Staff {}
impl KeyEpoch for support_case::SupportCase {}
impl KeyEpoch for student::Student {}
impl KeyEpoch for student::pass::PassIdOwner {}
