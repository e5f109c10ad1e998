//! Support cases (客服邮件): one stream per case, opened by anyone who cannot help themselves —
//! the registration says "该用户已注册" and the account must be checked (`account_check`), or the
//! registered mobile or e-mail has changed and a reset cannot reach the holder
//! (`contact_change`). Source document 001 has people e-mail support with their name, document,
//! mobile, e-mail and a photo of themselves holding the document; they get an automatic reply,
//! and staff answer within 24 hours on working days.
//!
//! Invariants, decided from the stream's own events:
//! - a case is opened once, with everything the person gave (the photo as its digest: the
//!   bytes live in the blob store) and the instant its reply is due, [`reply_due_by`]: 24
//!   working hours (China Standard Time, the working-day calendar) after it was opened;
//! - only an opened case is replied to; every reply is kept, with the agent who wrote it. The
//!   first reply settles the case (`replied`): it is no longer overdue.
//!
//! A case never changes an account by itself: a support agent who acts on it names the case as
//! the evidence of the change (`evidence_ref`), which the account records.

mod aggregate;
mod commands;
mod due;
mod errors;
mod events;
mod state;

pub use commands::*;
pub use due::*;
pub use errors::*;
pub use events::*;
pub use state::*;

#[cfg(test)]
mod tests;
