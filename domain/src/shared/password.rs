//! The password policy: what a new password must look like before it is hashed.
//!
//! 8 to 32 characters; at least one ASCII digit, one ASCII letter and one special character from
//! `# % * - _ ! @ $ &`; no other character. Beyond the seed, a password may not contain the
//! holder's document number (case-insensitively) and may not be one of the common passwords
//! shipped in `common-passwords.txt` (compared case-insensitively).
//!
//! Errors never include the password. Hashing (Argon2id) happens outside the domain.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The fewest characters a password may have.
pub const MIN_CHARS: usize = 8;
/// The most characters a password may have.
pub const MAX_CHARS: usize = 32;
/// The special characters a password may (and must, at least once) contain.
pub const SPECIALS: &str = "#%*-_!@$&";

/// The shipped list of common passwords, one per line (`#` starts a comment line).
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Why a password was refused. All variants but [`Mismatch`](PasswordError::Mismatch) have the
/// API code `weak_password`, with a sub-reason in [`reason`](PasswordError::reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than 8 characters.
    #[error("a password has at least {MIN_CHARS} characters")]
    TooShort,
    /// More than 32 characters.
    #[error("a password has at most {MAX_CHARS} characters")]
    TooLong,
    /// No ASCII digit.
    #[error("a password contains at least one digit")]
    MissingDigit,
    /// No ASCII letter.
    #[error("a password contains at least one letter")]
    MissingLetter,
    /// None of `# % * - _ ! @ $ &`.
    #[error("a password contains at least one of # % * - _ ! @ $ &")]
    MissingSpecial,
    /// A character other than ASCII letters, digits and `# % * - _ ! @ $ &`.
    #[error("a password may contain only letters, digits and # % * - _ ! @ $ &")]
    ForbiddenCharacter,
    /// The password contains the document number.
    #[error("a password may not contain the document number")]
    ContainsDocumentNumber,
    /// The password is on the list of common passwords.
    #[error("this password is too common: choose another")]
    TooCommon,
    /// The confirmation differs from the password.
    #[error("the two passwords do not match")]
    Mismatch,
}

impl PasswordError {
    /// The stable API code: `password_mismatch` for a mismatch, `weak_password` otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            PasswordError::Mismatch => "password_mismatch",
            _ => "weak_password",
        }
    }

    /// The sub-reason: `too_short`, `too_long`, `missing_digit`, `missing_letter`,
    /// `missing_special`, `forbidden_character`, `contains_document_number`, `too_common`
    /// (or `password_mismatch`).
    pub fn reason(&self) -> &'static str {
        match self {
            PasswordError::TooShort => "too_short",
            PasswordError::TooLong => "too_long",
            PasswordError::MissingDigit => "missing_digit",
            PasswordError::MissingLetter => "missing_letter",
            PasswordError::MissingSpecial => "missing_special",
            PasswordError::ForbiddenCharacter => "forbidden_character",
            PasswordError::ContainsDocumentNumber => "contains_document_number",
            PasswordError::TooCommon => "too_common",
            PasswordError::Mismatch => "password_mismatch",
        }
    }
}

/// Checks a new password against the policy. `document_number` is the holder's, when known.
///
/// The checks run in a fixed order (length, characters, composition, document number, common
/// list), so the reason given is always the first rule broken.
pub fn check_policy(password: &str, document_number: Option<&str>) -> Result<(), PasswordError> {
    let length = password.chars().count();
    if length < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if length > MAX_CHARS {
        return Err(PasswordError::TooLong);
    }
    if !password.chars().all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c)) {
        return Err(PasswordError::ForbiddenCharacter);
    }
    if !password.bytes().any(|b| b.is_ascii_digit()) {
        return Err(PasswordError::MissingDigit);
    }
    if !password.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(PasswordError::MissingLetter);
    }
    if !password.chars().any(|c| SPECIALS.contains(c)) {
        return Err(PasswordError::MissingSpecial);
    }
    if let Some(number) = document_number.map(str::trim).filter(|n| !n.is_empty()) {
        if password.to_ascii_lowercase().contains(&number.to_ascii_lowercase()) {
            return Err(PasswordError::ContainsDocumentNumber);
        }
    }
    if is_common(password) {
        return Err(PasswordError::TooCommon);
    }
    Ok(())
}

/// Checks that the confirmation repeats the password exactly.
pub fn confirm(password: &str, confirmation: &str) -> Result<(), PasswordError> {
    if password == confirmation {
        Ok(())
    } else {
        Err(PasswordError::Mismatch)
    }
}

/// Whether `password` is on the shipped list of common passwords (case-insensitively).
pub fn is_common(password: &str) -> bool {
    common_passwords().contains(&password.to_lowercase())
}

/// The shipped list, lower-cased, built on first use.
fn common_passwords() -> &'static HashSet<String> {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reason(password: &str) -> Option<&'static str> {
        check_policy(password, None).err().map(|e| e.reason())
    }

    #[test]
    fn a_password_with_digit_letter_and_special_is_accepted() {
        assert_eq!(check_policy("Tiger#Lake42", None), Ok(()));
        assert_eq!(check_policy("a1&bcdefg", Some("11010519491231002X")), Ok(()));
        for special in SPECIALS.chars() {
            assert_eq!(check_policy(&format!("Zebra9{special}x"), None), Ok(()), "{special}");
        }
    }

    #[test]
    fn a_password_shorter_than_eight_characters_is_too_short() {
        assert_eq!(reason("Tg#Lk42"), Some("too_short"));
        assert_eq!(check_policy("Tg#Lak42", None), Ok(()));
    }

    #[test]
    fn a_password_longer_than_thirty_two_characters_is_too_long() {
        let ok = format!("Tiger#Lake42{}", "x".repeat(20));
        assert_eq!(ok.len(), 32);
        assert_eq!(check_policy(&ok, None), Ok(()));
        assert_eq!(reason(&format!("{ok}x")), Some("too_long"));
    }

    #[test]
    fn a_password_without_a_digit_is_refused() {
        assert_eq!(reason("Tiger#Lake"), Some("missing_digit"));
    }

    #[test]
    fn a_password_without_a_letter_is_refused() {
        assert_eq!(reason("8317#5290"), Some("missing_letter"));
    }

    #[test]
    fn a_password_without_a_special_character_is_refused() {
        assert_eq!(reason("TigerLake42"), Some("missing_special"));
    }

    #[test]
    fn a_password_with_any_other_character_is_refused() {
        for p in ["Tiger Lake#42", "Tiger+Lake#42", "Tiger.Lake#42", "老虎Lake#42", "Tigér#Lake42", "Tiger＃Lake42"]
        {
            assert_eq!(reason(p), Some("forbidden_character"), "{p}");
        }
    }

    #[test]
    fn a_password_containing_the_document_number_is_refused() {
        let err = check_policy("ab#11010519491231002x", Some("11010519491231002X")).unwrap_err();
        assert_eq!(err.reason(), "contains_document_number");
        assert_eq!(err.code(), "weak_password");
        assert_eq!(
            check_policy("Pw#h12345678", Some("H12345678")).map_err(|e| e.reason()),
            Err("contains_document_number")
        );
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for p in [
            "Password1!",
            "P@ssw0rd",
            "Passw0rd!",
            "Qwerty123!",
            "Abc123456!",
            "Admin@123",
            "1qaz@WSX",
            "Aa123456!",
            "pASSWORD1!",
            "ADMIN@123",
        ] {
            let err = check_policy(p, None).unwrap_err();
            assert_eq!(err.reason(), "too_common", "{p}");
            assert_eq!(err.code(), "weak_password");
        }
    }

    #[test]
    fn the_common_password_list_is_substantial() {
        assert!(common_passwords().len() >= 300);
        assert!(!common_passwords().iter().any(|p| p.starts_with('#') || p.is_empty()));
    }

    #[test]
    fn a_confirmation_must_repeat_the_password_exactly() {
        assert_eq!(confirm("Tiger#Lake42", "Tiger#Lake42"), Ok(()));
        let err = confirm("Tiger#Lake42", "tiger#Lake42").unwrap_err();
        assert_eq!(err.code(), "password_mismatch");
        assert_eq!(err, PasswordError::Mismatch);
    }
}
