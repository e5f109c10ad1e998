//! The account (账号): one stream per identity document.
//!
//! Invariants, each decided by [`Account::handle`] from the stream's own events:
//! - a document is registered once; a second `Register` is refused (`document_already_registered`)
//!   unless the stream only holds a legacy import, which a new registration supersedes;
//! - a legacy account can neither log in nor reset its password;
//! - after `LOCKOUT_THRESHOLD` consecutive failed logins the account is locked for the
//!   configured duration, and while locked even the right password is refused. Failures are
//!   events, so parallel guesses are counted one by one through optimistic concurrency;
//! - the document number never changes; the name changes only through verification;
//! - a password change ends every other session; a reset or a re-registration ends all;
//! - reset secrets are single use, expire, allow 5 wrong entries, and are rate limited
//!   (once a minute, 10 a day per account).
//!
//! Password hashing and verification happen outside (they are slow and need no state but the
//! stored hash): commands carry the outcome and the hash it was checked against, and the
//! aggregate refuses with `StaleCredentials` when the hash changed in between.

mod aggregate;
mod commands;
mod errors;
mod events;
mod state;

pub use commands::*;
pub use errors::*;
pub use events::*;
pub use state::*;

#[cfg(test)]
mod tests;
