//! Contact details: the mainland mobile number that receives codes, and the e-mail address that
//! receives password-reset links.
//!
//! - [`Mobile`]: 11 ASCII digits, `1[3-9]` then 9 digits (`invalid_mobile`).
//! - [`Email`]: ordinary syntax, at most 254 characters (`invalid_email`). Full-width `．`, `。`
//!   or `＠` get the hint `use_ascii_dot_and_at`; a `qq.com` address whose local part is not all
//!   digits (an alias) gets `qq_local_part_digits_only`. The domain is lower-cased; the local
//!   part is kept as typed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::mask::{mask_email, mask_mobile};

/// A mainland mobile number: 11 digits, `1[3-9]` then 9 digits. Serialises as a plain string;
/// `Debug` prints the masked form.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Mobile(String);

/// A mobile number that is not 11 digits of the form `1[3-9]xxxxxxxxx`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a mobile number is 11 digits starting with 13 to 19")]
pub struct MobileError;

impl MobileError {
    /// The stable API code: `invalid_mobile`.
    pub fn code(&self) -> &'static str {
        "invalid_mobile"
    }
}

impl Mobile {
    /// Trims surrounding white space and checks the mainland pattern `1[3-9]\d{9}`.
    pub fn parse(raw: &str) -> Result<Mobile, MobileError> {
        let s = raw.trim();
        let b = s.as_bytes();
        let valid = b.len() == 11 && b.iter().all(u8::is_ascii_digit) && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
        if valid {
            Ok(Mobile(s.to_string()))
        } else {
            Err(MobileError)
        }
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 11 digits, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The masked form shown as a destination (`138****0000`).
    pub fn masked(&self) -> String {
        mask_mobile(&self.0)
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.masked())
    }
}

impl<'de> Deserialize<'de> for Mobile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s == super::ERASED {
            return Ok(Mobile(s));
        }
        Mobile::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The most characters an e-mail address may have (RFC 5321 path limit less the brackets).
pub const EMAIL_MAX_CHARS: usize = 254;
/// The most characters of an e-mail local part (RFC 5321).
const LOCAL_MAX_CHARS: usize = 64;
/// The most characters of one domain label (RFC 1035).
const LABEL_MAX_CHARS: usize = 63;

/// An e-mail address of ordinary syntax, domain lower-cased. Serialises as a plain string;
/// `Debug` prints the masked form.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why an e-mail address was refused. Every variant has the API code `invalid_email`; some carry
/// a [`hint`](EmailError::hint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// A full-width `．`, `。` or `＠`.
    #[error("use the English dot (.) and at sign (@), not the full-width ．, 。 or ＠")]
    FullWidthPunctuation,
    /// More than 254 characters.
    #[error("an e-mail address has at most {EMAIL_MAX_CHARS} characters")]
    TooLong,
    /// Not exactly one `@`.
    #[error("an e-mail address has exactly one @")]
    MissingAt,
    /// The part before `@` is empty, too long, or has a character or dot out of place.
    #[error("the part before @ is not valid")]
    InvalidLocalPart,
    /// The part after `@` is not a domain name with a top-level domain of letters.
    #[error("the part after @ is not a valid domain")]
    InvalidDomain,
    /// A `qq.com` address whose local part is not all digits.
    #[error("for qq.com the part before @ is the QQ number: digits only, no alias")]
    QqLocalPartDigitsOnly,
}

impl EmailError {
    /// The stable API code: always `invalid_email`.
    pub fn code(&self) -> &'static str {
        "invalid_email"
    }

    /// A machine-readable hint for the client, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            EmailError::FullWidthPunctuation => Some("use_ascii_dot_and_at"),
            EmailError::QqLocalPartDigitsOnly => Some("qq_local_part_digits_only"),
            _ => None,
        }
    }
}

impl Email {
    /// Trims surrounding white space, checks the syntax, and lower-cases the domain.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let s = raw.trim();
        if s.contains(['．', '。', '＠']) {
            return Err(EmailError::FullWidthPunctuation);
        }
        if s.chars().count() > EMAIL_MAX_CHARS {
            return Err(EmailError::TooLong);
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::MissingAt);
        };
        if !is_valid_local_part(local) {
            return Err(EmailError::InvalidLocalPart);
        }
        let domain = domain.to_ascii_lowercase();
        if !is_valid_domain(&domain) {
            return Err(EmailError::InvalidDomain);
        }
        if domain == "qq.com" && !local.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmailError::QqLocalPartDigitsOnly);
        }
        Ok(Email(format!("{local}@{domain}")))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The part before `@`, as typed.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(local, _)| local)
    }

    /// The part after `@`, lower-case.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    /// The masked form shown as a destination (`a***@qq.com`).
    pub fn masked(&self) -> String {
        mask_email(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s == super::ERASED {
            return Ok(Email(s));
        }
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// RFC 5322 dot-atom: atext characters separated by single dots.
fn is_valid_local_part(local: &str) -> bool {
    const ATEXT_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= LOCAL_MAX_CHARS
        && local.split('.').all(|atom| {
            !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c))
        })
}

/// At least two labels of letters, digits and inner hyphens; the last (the top-level domain)
/// letters only, at least two.
fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= LABEL_MAX_CHARS
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_mainland_mobile_number_is_accepted() {
        assert_eq!(Mobile::parse(" 13800000000 ").unwrap().as_str(), "13800000000");
        for raw in ["13912345678", "15012345678", "19912345678", "16612345678", "17012345678"] {
            assert!(Mobile::parse(raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn mobile_numbers_of_another_shape_are_refused() {
        for raw in [
            "",
            "1380000000",
            "138000000000",
            "12800000000",
            "11800000000",
            "23800000000",
            "138 0000 0000",
            "+8613800000000",
            "1380000000a",
            "１３８００００００００",
            "138-0000-0000",
        ] {
            let err = Mobile::parse(raw).unwrap_err();
            assert_eq!(err.code(), "invalid_mobile", "{raw}");
        }
    }

    #[test]
    fn a_mobile_serialises_as_a_plain_string_and_debugs_masked() {
        let m = Mobile::parse("13800000000").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"13800000000\"");
        assert_eq!(serde_json::from_str::<Mobile>("\"13800000000\"").unwrap(), m);
        assert!(serde_json::from_str::<Mobile>("\"12800000000\"").is_err());
        assert_eq!(format!("{m:?}"), "Mobile(138****0000)");
        assert_eq!(m.masked(), "138****0000");
    }

    #[test]
    fn ordinary_email_addresses_are_accepted_with_the_domain_lower_cased() {
        assert_eq!(Email::parse(" Alice@Example.COM ").unwrap().as_str(), "Alice@example.com");
        for raw in [
            "a.b-c+tag@mail.example.edu.cn",
            "123456@qq.com",
            "x@163.com",
            "first_last@sub-domain.org",
            "o'brien@example.ie",
            "user@vip.qq.com",
        ] {
            assert!(Email::parse(raw).is_ok(), "{raw}");
        }
        let e = Email::parse("Alice@Example.COM").unwrap();
        assert_eq!(e.local_part(), "Alice");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn full_width_dots_and_at_signs_are_refused_with_a_hint() {
        for raw in ["alice＠example.com", "alice@example．com", "alice@example。com", "123456@qq。com"] {
            let err = Email::parse(raw).unwrap_err();
            assert_eq!(err, EmailError::FullWidthPunctuation, "{raw}");
            assert_eq!(err.code(), "invalid_email");
            assert_eq!(err.hint(), Some("use_ascii_dot_and_at"));
        }
    }

    #[test]
    fn a_qq_com_address_must_be_the_qq_number() {
        assert!(Email::parse("10001@QQ.com").is_ok());
        for raw in ["alice@qq.com", "12345.6@qq.com", "12345+tag@qq.com"] {
            let err = Email::parse(raw).unwrap_err();
            assert_eq!(err, EmailError::QqLocalPartDigitsOnly, "{raw}");
            assert_eq!(err.code(), "invalid_email");
            assert_eq!(err.hint(), Some("qq_local_part_digits_only"));
        }
    }

    #[test]
    fn malformed_email_addresses_are_refused() {
        for raw in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@@example.com",
            "a@b@example.com",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "al ice@example.com",
            "alice@example",
            "alice@example.c",
            "alice@example.c0m",
            "alice@-example.com",
            "alice@example-.com",
            "alice@exa_mple.com",
            "alice@example..com",
            "alice@.example.com",
            "alice@example.com.",
            "张三@example.com",
            "alice@例子.中国",
            "alice(x)@example.com",
        ] {
            let err = Email::parse(raw).unwrap_err();
            assert_eq!(err.code(), "invalid_email", "{raw}");
            assert_eq!(err.hint(), None, "{raw}");
        }
    }

    #[test]
    fn an_email_address_is_at_most_254_characters() {
        let label = "a".repeat(60);
        let domain = format!("{label}.{label}.{label}.{label}.com");
        let ok = format!("{}@{domain}", "b".repeat(254 - 1 - domain.len()));
        assert_eq!(ok.len(), 254);
        assert!(Email::parse(&ok).is_ok());
        let too_long = format!("b{ok}");
        assert_eq!(Email::parse(&too_long), Err(EmailError::TooLong));
    }

    #[test]
    fn an_email_serialises_as_a_plain_string_and_debugs_masked() {
        let e = Email::parse("123456@qq.com").unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"123456@qq.com\"");
        assert_eq!(serde_json::from_str::<Email>("\"123456@qq.com\"").unwrap(), e);
        assert_eq!(format!("{e:?}"), "Email(1***@qq.com)");
    }
}
