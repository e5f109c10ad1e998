//! Identity documents (证件): the document types an account can be registered with, and
//! validated document numbers.
//!
//! A [`DocumentNumber`] is built only by [`DocumentNumber::parse`], which applies the format of
//! its [`DocumentType`]:
//!
//! | type | format |
//! | --- | --- |
//! | `resident_id_card` | 17 digits + check character (0–9 or X), GB 11643 mod 11-2; digits 7–14 a real birth date not after today; a GB/T 2260 province code first |
//! | `hk_macau_permit` | H or M, then 8 digits (the 2 renewal-count digits on the card are not entered) |
//! | `taiwan_permit` | 8 digits (the 2 renewal-count digits are not entered) |
//! | `hmt_residence_permit` | like the resident ID card, with prefix 810000, 820000 or 830000 |
//! | `other` | 4–32 letters or digits |
//!
//! Numbers are normalised before they are checked: surrounding white space is trimmed,
//! full-width digits and letters typed with a Chinese input method become ASCII, and letters are
//! upper-cased (so `x` becomes `X` and `h12345678` becomes `H12345678`). The stored number is
//! therefore the same however it was typed, which is what makes "a document is registered once"
//! hold.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};

use super::mask::mask_document;
use super::person::Gender;

/// The kinds of identity document an account can be registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    /// 居民身份证: the mainland resident identity card.
    ResidentIdCard,
    /// 港澳居民来往内地通行证: the Hong Kong and Macau residents' mainland travel permit.
    HkMacauPermit,
    /// 五年有效期台湾居民来往大陆通行证: the Taiwan residents' five-year mainland travel permit.
    TaiwanPermit,
    /// 港澳台居民居住证: the residence permit for Hong Kong, Macau and Taiwan residents.
    HmtResidencePermit,
    /// 其他: any other document; accepted at registration, verified by manual review only.
    Other,
}

impl DocumentType {
    /// Every document type, in the order forms list them.
    pub const ALL: [DocumentType; 5] = [
        DocumentType::ResidentIdCard,
        DocumentType::HkMacauPermit,
        DocumentType::TaiwanPermit,
        DocumentType::HmtResidencePermit,
        DocumentType::Other,
    ];

    /// The wire name (`resident_id_card`, `hk_macau_permit`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            DocumentType::ResidentIdCard => "resident_id_card",
            DocumentType::HkMacauPermit => "hk_macau_permit",
            DocumentType::TaiwanPermit => "taiwan_permit",
            DocumentType::HmtResidencePermit => "hmt_residence_permit",
            DocumentType::Other => "other",
        }
    }

    /// The type with the given wire name (surrounding white space ignored).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The Chinese name of the document, as printed on forms.
    pub fn label_zh(&self) -> &'static str {
        match self {
            DocumentType::ResidentIdCard => "居民身份证",
            DocumentType::HkMacauPermit => "港澳居民来往内地通行证",
            DocumentType::TaiwanPermit => "五年有效期台湾居民来往大陆通行证",
            DocumentType::HmtResidencePermit => "港澳台居民居住证",
            DocumentType::Other => "其他",
        }
    }

    /// Whether the identity authority checks this document (real-name verification first,
    /// manual review after a failure): every type but `other`, which goes to manual review at
    /// once (source document 001, 港澳台申请人实名核验问题).
    pub fn auto_verifiable(&self) -> bool {
        !matches!(self, DocumentType::Other)
    }

    /// Whether numbers of this type are 18 characters that embed a birth date and a checksum.
    pub fn has_embedded_birth_date(&self) -> bool {
        matches!(self, DocumentType::ResidentIdCard | DocumentType::HmtResidencePermit)
    }
}

impl fmt::Display for DocumentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Province-level codes of GB/T 2260 that can start a resident identity card number.
const PROVINCE_CODES: [&str; 35] = [
    "11", "12", "13", "14", "15", // 北京 天津 河北 山西 内蒙古
    "21", "22", "23", // 辽宁 吉林 黑龙江
    "31", "32", "33", "34", "35", "36", "37", // 上海 江苏 浙江 安徽 福建 江西 山东
    "41", "42", "43", "44", "45", "46", // 河南 湖北 湖南 广东 广西 海南
    "50", "51", "52", "53", "54", // 重庆 四川 贵州 云南 西藏
    "61", "62", "63", "64", "65", // 陕西 甘肃 青海 宁夏 新疆
    "71", "81", "82", "83", // 台湾 香港 澳门 (83: Taiwan residence permits)
];

/// The six-digit prefixes of residence permits for Hong Kong, Macau and Taiwan residents.
const RESIDENCE_PERMIT_PREFIXES: [&str; 3] = ["810000", "820000", "830000"];

/// GB 11643 weights of the first 17 digits.
const CHECK_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check characters indexed by the weighted sum modulo 11.
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

const EXPECT_18: &str = "18 characters: 17 digits followed by a digit or X";
const EXPECT_HK_MACAU: &str = "9 characters: H or M followed by 8 digits";
const EXPECT_TAIWAN: &str = "8 digits";
const EXPECT_OTHER: &str = "4 to 32 letters or digits";

/// The GB 11643 (ISO 7064 mod 11-2) check character of the first 17 digits of an 18-character
/// identity number.
///
/// `first17` must be 17 ASCII digits; anything else gives a meaningless result (non-digits
/// count as 0 and characters after the 17th are ignored). [`DocumentNumber::parse`] checks the
/// shape before it calls this.
pub fn check_char(first17: &str) -> char {
    let sum: u32 = first17.chars().zip(CHECK_WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap_or(0) * w).sum();
    // `sum % 11` is always a valid index into the 11 check characters.
    CHECK_CHARS[(sum % 11) as usize]
}

/// Why a document number was refused. Every variant has the API code
/// `invalid_document_number`; some carry a [`hint`](DocumentError::hint) as well.
///
/// Messages never repeat the number itself: it is personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Nothing but white space was entered.
    #[error("the document number is empty")]
    Empty,
    /// The number does not have the shape of its document type.
    #[error("a {doc_type} number must be {expected}")]
    BadFormat {
        /// The document type the number was checked against.
        doc_type: DocumentType,
        /// What the number should look like.
        expected: &'static str,
    },
    /// The first two digits are not a province code.
    #[error("{code} is not a province code (GB/T 2260)")]
    UnknownProvince {
        /// The two digits found.
        code: String,
    },
    /// A residence-permit number whose prefix is not 810000, 820000 or 830000.
    #[error("a hmt_residence_permit number starts with 810000 (Hong Kong), 820000 (Macau) or 830000 (Taiwan)")]
    ResidencePermitPrefix,
    /// A residence-permit number (prefix 810000, 820000 or 830000) entered as a resident
    /// identity card.
    #[error("this is a residence-permit number (prefix 810000, 820000 or 830000): choose the document type hmt_residence_permit")]
    ResidencePermitNumberAsIdCard,
    /// Digits 7–14 are not a calendar date.
    #[error("the birth date in the number (digits 7 to 14) is not a real date")]
    InvalidBirthDate,
    /// Digits 7–14 are a date after today.
    #[error("the birth date in the number (digits 7 to 14) is in the future")]
    BirthDateInFuture,
    /// The check character does not match the first 17 digits.
    #[error("the last character of the number does not match its check digit: please check the number")]
    ChecksumMismatch,
    /// A permit number was entered with the two renewal-count digits printed after it.
    #[error("enter only the {expected} characters of the {doc_type} number: the two renewal-count digits printed after it on the card are not entered")]
    PermitRenewalDigits {
        /// The permit type.
        doc_type: DocumentType,
        /// How many characters the number has without the renewal count.
        expected: usize,
    },
    /// An `other` number that is a valid number of another document type: it must be
    /// registered as that type (so that nobody can hold someone's ID number as `other`).
    #[error("this is a valid {actual} number: choose that document type, not other")]
    WrongDocumentType {
        /// The type the number is valid for.
        actual: DocumentType,
    },
}

impl DocumentError {
    /// The stable API code: `wrong_document_type` for an `other` number of another type,
    /// `invalid_document_number` for everything else.
    pub fn code(&self) -> &'static str {
        match self {
            DocumentError::WrongDocumentType { .. } => "wrong_document_type",
            _ => "invalid_document_number",
        }
    }

    /// A machine-readable hint for the client, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            DocumentError::PermitRenewalDigits { .. } => Some("permit_renewal_digits_not_entered"),
            DocumentError::ResidencePermitNumberAsIdCard => Some("use_hmt_residence_permit"),
            DocumentError::WrongDocumentType { actual } => Some(actual.as_str()),
            _ => None,
        }
    }
}

/// A validated identity-document number, normalised (trimmed, ASCII, upper-case).
///
/// It serialises as a plain string. It does not remember its [`DocumentType`]: the type
/// travels beside it. `Debug` prints the masked form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DocumentNumber(String);

impl DocumentNumber {
    /// Checks `raw` against the format of `doc_type`; `today` (China Standard Time) bounds the
    /// embedded birth date of 18-character numbers.
    pub fn parse(doc_type: DocumentType, raw: &str, today: NaiveDate) -> Result<DocumentNumber, DocumentError> {
        let number = normalise(raw);
        if number.is_empty() {
            return Err(DocumentError::Empty);
        }
        match doc_type {
            DocumentType::ResidentIdCard | DocumentType::HmtResidencePermit => {
                check_eighteen(doc_type, &number, today)?;
            }
            DocumentType::HkMacauPermit => {
                let bad = DocumentError::BadFormat { doc_type, expected: EXPECT_HK_MACAU };
                let rest = number.strip_prefix('H').or_else(|| number.strip_prefix('M')).ok_or_else(|| bad.clone())?;
                if !all_digits(rest) {
                    return Err(bad);
                }
                match rest.len() {
                    8 => {}
                    10 => return Err(DocumentError::PermitRenewalDigits { doc_type, expected: 9 }),
                    _ => return Err(bad),
                }
            }
            DocumentType::TaiwanPermit => {
                let bad = DocumentError::BadFormat { doc_type, expected: EXPECT_TAIWAN };
                if !all_digits(&number) {
                    return Err(bad);
                }
                match number.len() {
                    8 => {}
                    10 => return Err(DocumentError::PermitRenewalDigits { doc_type, expected: 8 }),
                    _ => return Err(bad),
                }
            }
            DocumentType::Other => {
                if !is_other_shape(&number) {
                    return Err(DocumentError::BadFormat { doc_type, expected: EXPECT_OTHER });
                }
                let of_another_type = infer_types(&number)
                    .into_iter()
                    .filter(|t| *t != DocumentType::Other)
                    .find(|t| DocumentNumber::parse(*t, &number, today).is_ok());
                if let Some(actual) = of_another_type {
                    return Err(DocumentError::WrongDocumentType { actual });
                }
            }
        }
        Ok(DocumentNumber(number))
    }

    /// The normalised number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalised number, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The masked form shown to anyone but the holder (`22**************47`).
    pub fn masked(&self) -> String {
        mask_document(&self.0)
    }

    /// The birth date embedded in an 18-character number (resident identity card, residence
    /// permit): digits 7–14. `None` for other shapes.
    ///
    /// The number does not know its type: an `other` number that happens to have the same
    /// shape also gives a date. Use [`birth_date_for`](Self::birth_date_for) when the type is
    /// at hand.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        if !is_eighteen_shape(&self.0) {
            return None;
        }
        embedded_date(&self.0)
    }

    /// The embedded birth date if `doc_type` is one that embeds it, `None` otherwise.
    pub fn birth_date_for(&self, doc_type: DocumentType) -> Option<NaiveDate> {
        if doc_type.has_embedded_birth_date() {
            self.birth_date()
        } else {
            None
        }
    }

    /// The gender encoded in an 18-character number (the 17th digit: odd for male, even for
    /// female). `None` for other shapes.
    pub fn gender(&self) -> Option<Gender> {
        if !is_eighteen_shape(&self.0) {
            return None;
        }
        let digit = self.0.as_bytes().get(16).map(|b| b.wrapping_sub(b'0'))?;
        Some(if digit % 2 == 1 { Gender::Male } else { Gender::Female })
    }

    /// The candidate document types of a number, judged by its format alone, best first:
    /// an 18-character number with prefix 810000/820000/830000 is a residence permit, any other
    /// 18-character number a resident identity card; H or M and 8 digits a Hong Kong/Macau
    /// permit; 8 digits a Taiwan permit; and `other` last whenever the number is 4–32 letters
    /// or digits. Used at login, where the type may be left out.
    pub fn infer_types(raw: &str) -> Vec<DocumentType> {
        infer_types(raw)
    }
}

impl fmt::Debug for DocumentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentNumber({})", mask_document(&self.0))
    }
}

impl<'de> Deserialize<'de> for DocumentNumber {
    /// Stored numbers were validated when they were first parsed; on the way back in only their
    /// shape is checked (4–32 upper-case letters or digits), since the date rules depend on the
    /// day they were entered.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s == super::ERASED || (is_other_shape(&s) && !s.bytes().any(|b| b.is_ascii_lowercase())) {
            Ok(DocumentNumber(s))
        } else {
            Err(serde::de::Error::custom("not a normalised document number"))
        }
    }
}

/// The candidate document types of a number, judged by its format alone, best first.
/// See [`DocumentNumber::infer_types`].
pub fn infer_types(raw: &str) -> Vec<DocumentType> {
    let number = normalise(raw);
    let mut types = Vec::new();
    if is_eighteen_shape(&number) {
        if RESIDENCE_PERMIT_PREFIXES.iter().any(|p| number.starts_with(p)) {
            types.push(DocumentType::HmtResidencePermit);
        } else {
            types.push(DocumentType::ResidentIdCard);
        }
    }
    if number.len() == 9 && (number.starts_with('H') || number.starts_with('M')) && all_digits(&number[1..]) {
        types.push(DocumentType::HkMacauPermit);
    }
    if number.len() == 8 && all_digits(&number) {
        types.push(DocumentType::TaiwanPermit);
    }
    if is_other_shape(&number) {
        types.push(DocumentType::Other);
    }
    types
}

/// Trims, maps full-width ASCII letters and digits (typed with a Chinese input method) to
/// ASCII, and upper-cases ASCII letters.
fn normalise(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| match c {
            '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => {
                // Full-width forms sit at a fixed offset (0xFEE0) from their ASCII twins.
                char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
            }
            _ => c,
        })
        .collect::<String>()
        .to_ascii_uppercase()
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// 17 ASCII digits followed by a digit or `X`.
fn is_eighteen_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 18 && b[..17].iter().all(u8::is_ascii_digit) && (b[17].is_ascii_digit() || b[17] == b'X')
}

/// 4–32 ASCII letters or digits.
fn is_other_shape(s: &str) -> bool {
    (4..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The date in digits 7–14 of an 18-character number, if it is a calendar date.
fn embedded_date(s: &str) -> Option<NaiveDate> {
    let year: i32 = s.get(6..10)?.parse().ok()?;
    let month: u32 = s.get(10..12)?.parse().ok()?;
    let day: u32 = s.get(12..14)?.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// The rules shared by resident identity cards and residence permits.
fn check_eighteen(doc_type: DocumentType, number: &str, today: NaiveDate) -> Result<(), DocumentError> {
    if !is_eighteen_shape(number) {
        return Err(DocumentError::BadFormat { doc_type, expected: EXPECT_18 });
    }
    let is_permit_prefix = RESIDENCE_PERMIT_PREFIXES.iter().any(|p| number.starts_with(p));
    if doc_type == DocumentType::HmtResidencePermit {
        if !is_permit_prefix {
            return Err(DocumentError::ResidencePermitPrefix);
        }
    } else {
        // Login infers the type from the prefix, so a resident ID card may not use a
        // residence-permit prefix: it could never be found again.
        if is_permit_prefix {
            return Err(DocumentError::ResidencePermitNumberAsIdCard);
        }
        let province = &number[..2];
        if !PROVINCE_CODES.contains(&province) {
            return Err(DocumentError::UnknownProvince { code: province.to_string() });
        }
    }
    let birth = embedded_date(number).ok_or(DocumentError::InvalidBirthDate)?;
    if birth > today {
        return Err(DocumentError::BirthDateInFuture);
    }
    let last = number.chars().last().unwrap_or_default();
    if check_char(&number[..17]) != last {
        return Err(DocumentError::ChecksumMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
