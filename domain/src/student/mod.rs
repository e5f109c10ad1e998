//! Student identity verification (学生身份认证): one stream per student number.
//!
//! A student registers with their student number and a mobile code and gets a generated pass
//! ID. They fill an application — personal information, enrolment (school by registry code,
//! grade, class), guardian — attach the materials their school stage asks for, have the
//! guardian's mobile confirmed with a code and consent, and submit. A submission is counted
//! (3 per China day) and recorded *before* the student registry (学籍库) is asked; the answer
//! then decides: every compared field equal → approved at once; a difference → the class's head
//! teacher reviews it within two working days; no record or an unsynchronised school →
//! `registry_failed`, which only a school admin's refresh or link unblocks. An unavailable
//! registry voids the submission: it counts nothing. Approved students reconfirm their
//! enrolment each semester.
//!
//! The quota, the in-flight submission and the review are all in the stream, so concurrent
//! submissions are serialised by the event store's optimistic concurrency: the count is exact.

mod aggregate;
mod commands;
mod errors;
mod events;
pub mod pass;
mod semester;
mod state;
pub mod values;

pub use aggregate::{differences, MAX_STUDENT_SESSIONS};
pub use commands::*;
pub use errors::StudentError;
pub use events::*;
pub use semester::{Semesters, SemestersError};
pub use state::{step, InFlight, Review, Step, Student, StudentStatus};
pub use values::{ClassName, Grade, Material, PassId, Stage, StudentNumber};

#[cfg(test)]
mod tests;
