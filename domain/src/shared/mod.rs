//! Value objects shared by every aggregate: identity documents and their validity, names,
//! passwords, contact details, ethnicity, gender, and the masks that keep personal data out of
//! places it does not belong.
//!
//! Every value here is a newtype with a private field, built by a `parse` function that applies
//! the rules of `spec/domain.md`: an invalid document number, name, mobile or e-mail address
//! cannot exist as a value. Each error type has a stable `code()` (the API's `code`).
//!
//! `Debug` on the types that hold personal data prints a masked form, so a stray `{:?}` in a
//! log line does not leak a document number, name or contact detail.

/// What a personal value reads as once its data subject was erased (its key destroyed): the
/// value types below accept it back from the store, and only from there.
pub const ERASED: &str = "[erased]";

pub mod contact;
pub mod document;
pub mod ethnicity;
pub mod mask;
pub mod name;
pub mod password;
pub mod person;
pub mod validity;

pub use contact::{Email, EmailError, Mobile, MobileError};
pub use document::{DocumentError, DocumentNumber, DocumentType};
pub use ethnicity::{is_valid_ethnicity, Ethnicity, EthnicityError, ETHNICITIES};
pub use mask::{mask_document, mask_email, mask_mobile};
pub use name::{NameError, PersonName};
pub use password::{check_policy, confirm, PasswordError};
pub use person::{Gender, GenderError};
pub use validity::{Validity, ValidityError, ValidityPeriod};
