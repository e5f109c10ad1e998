//! Personal names (姓名), as on the identity document.
//!
//! A [`PersonName`] is NFC-normalised and trimmed, 2–50 characters long (counted in Unicode
//! scalar values after NFC, so a rare character outside the Basic Multilingual Plane counts
//! once), and made only of:
//! - CJK ideographs of every block: the Unified Ideographs, Extension A, Extensions B to I
//!   (U+20000–U+323AF, the 生僻字 outside the BMP), the compatibility ideographs, and `〇`
//!   (U+3007, which the 通用规范汉字表 lists as a character and which does occur in names);
//! - Latin letters: ASCII, Latin-1, Latin Extended-A and -B, Latin Extended Additional
//!   (Vietnamese);
//! - the middle dot `·` (U+00B7) between two parts, for minority and transliterated names;
//! - single spaces between two parts.
//!
//! Everything else — digits, control characters, symbols, other punctuation including the
//! look-alikes of the middle dot — is refused with `invalid_name`. Names are stored and returned
//! exactly as normalised: characters outside the BMP are never replaced or split.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use unicode_normalization::UnicodeNormalization;

/// The middle dot of minority and transliterated names (U+00B7).
pub const MIDDLE_DOT: char = '\u{00B7}';

/// Characters people type instead of the middle dot; refused with a hint.
const MIDDLE_DOT_LOOK_ALIKES: [char; 8] = [
    '\u{30FB}', // ・ katakana middle dot
    '\u{FF65}', // ･ half-width katakana middle dot
    '\u{2022}', // • bullet
    '\u{2027}', // ‧ hyphenation point
    '\u{22C5}', // ⋅ dot operator
    '\u{2219}', // ∙ bullet operator
    '\u{FF0E}', // ． full-width full stop
    '.',
];

/// A validated personal name. Serialises as a plain string; `Debug` masks all but the first
/// character.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PersonName(String);

/// Why a name was refused. Every variant has the API code `invalid_name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Fewer than 2 characters after trimming.
    #[error("a name has at least {min} characters", min = PersonName::MIN_CHARS)]
    TooShort,
    /// More than 50 characters.
    #[error("a name has at most {max} characters", max = PersonName::MAX_CHARS)]
    TooLong,
    /// A digit, control character, symbol or punctuation mark.
    #[error("a name may contain only Chinese characters, Latin letters, the middle dot · and single spaces")]
    ForbiddenCharacter,
    /// A look-alike of the middle dot (`・`, `•`, `.`, ...).
    #[error("use the middle dot · (U+00B7) between the parts of a name")]
    LookAlikeMiddleDot,
    /// Two spaces in a row.
    #[error("parts of a name are separated by a single space")]
    ConsecutiveSpaces,
    /// A middle dot at either end, next to a space or next to another dot.
    #[error("the middle dot · goes between two parts of a name")]
    MisplacedMiddleDot,
}

impl NameError {
    /// The stable API code: always `invalid_name`.
    pub fn code(&self) -> &'static str {
        "invalid_name"
    }

    /// The sub-reason, for clients that want to say more.
    pub fn reason(&self) -> &'static str {
        match self {
            NameError::TooShort => "too_short",
            NameError::TooLong => "too_long",
            NameError::ForbiddenCharacter => "forbidden_character",
            NameError::LookAlikeMiddleDot => "look_alike_middle_dot",
            NameError::ConsecutiveSpaces => "consecutive_spaces",
            NameError::MisplacedMiddleDot => "misplaced_middle_dot",
        }
    }

    /// A machine-readable hint for the client, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            NameError::LookAlikeMiddleDot => Some("use_middle_dot_u00b7"),
            _ => None,
        }
    }
}

impl PersonName {
    /// The fewest characters a name may have.
    pub const MIN_CHARS: usize = 2;
    /// The most characters a name may have.
    pub const MAX_CHARS: usize = 50;

    /// Normalises `raw` to NFC, trims it, and checks it against the rules of this module.
    pub fn parse(raw: &str) -> Result<PersonName, NameError> {
        let normalised: String = raw.nfc().collect();
        let name = normalised.trim();
        let mut prev: Option<char> = None;
        for c in name.chars() {
            if c == ' ' {
                match prev {
                    Some(' ') => return Err(NameError::ConsecutiveSpaces),
                    Some(MIDDLE_DOT) => return Err(NameError::MisplacedMiddleDot),
                    _ => {}
                }
            } else if c == MIDDLE_DOT {
                if matches!(prev, None | Some(' ' | MIDDLE_DOT)) {
                    return Err(NameError::MisplacedMiddleDot);
                }
            } else if MIDDLE_DOT_LOOK_ALIKES.contains(&c) {
                return Err(NameError::LookAlikeMiddleDot);
            } else if !is_name_letter(c) {
                return Err(NameError::ForbiddenCharacter);
            }
            prev = Some(c);
        }
        if prev == Some(MIDDLE_DOT) {
            return Err(NameError::MisplacedMiddleDot);
        }
        let count = name.chars().count();
        if count < Self::MIN_CHARS {
            return Err(NameError::TooShort);
        }
        if count > Self::MAX_CHARS {
            return Err(NameError::TooLong);
        }
        Ok(PersonName(name.to_string()))
    }

    /// The name, exactly as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The number of characters (Unicode scalar values).
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    /// The name with every character but the first replaced by `*` (`李*`, `欧**`).
    pub fn masked(&self) -> String {
        self.0.chars().enumerate().map(|(i, c)| if i == 0 { c } else { '*' }).collect()
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.masked())
    }
}

impl<'de> Deserialize<'de> for PersonName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s == super::ERASED {
            return Ok(PersonName(s));
        }
        PersonName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A letter a name may be made of: a CJK ideograph or a Latin letter.
fn is_name_letter(c: char) -> bool {
    is_cjk_ideograph(c) || is_latin_letter(c)
}

/// CJK ideographs in every block, including the supplementary planes.
pub fn is_cjk_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x3007                  // 〇 ideographic number zero
        | 0x3400..=0x4DBF       // Extension A
        | 0x4E00..=0x9FFF       // Unified Ideographs
        | 0xF900..=0xFAFF       // Compatibility Ideographs
        | 0x20000..=0x2A6DF     // Extension B
        | 0x2A700..=0x2EE5F     // Extensions C, D, E, F, I
        | 0x2F800..=0x2FA1F     // Compatibility Ideographs Supplement
        | 0x30000..=0x323AF     // Extensions G, H
    )
}

/// Latin letters: ASCII, Latin-1 (without × and ÷), Latin Extended-A/-B and Latin Extended
/// Additional.
fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c as u32,
            0x00C0..=0x00D6 | 0x00D8..=0x00F6 | 0x00F8..=0x024F | 0x1E00..=0x1EFF
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_chinese_name_is_accepted() {
        assert_eq!(PersonName::parse("  张三 ").unwrap().as_str(), "张三");
        assert_eq!(PersonName::parse("欧阳娜娜").unwrap().char_count(), 4);
    }

    #[test]
    fn a_name_with_an_extension_b_character_round_trips_through_json_byte_for_byte() {
        for raw in ["李𠮷", "𠈌𠮷", "王𪚥", "陈𬌗𫖮", "赵\u{30000}\u{31350}"] {
            let name = PersonName::parse(raw).unwrap();
            assert_eq!(name.as_str().as_bytes(), raw.as_bytes());
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json.as_bytes(), format!("\"{raw}\"").as_bytes());
            let back: PersonName = serde_json::from_str(&json).unwrap();
            assert_eq!(back.as_str().as_bytes(), raw.as_bytes());
        }
        // A character outside the BMP counts as one character.
        assert_eq!(PersonName::parse("李𠮷").unwrap().char_count(), 2);
    }

    #[test]
    fn an_escaped_surrogate_pair_in_json_becomes_the_same_rare_character() {
        let back: PersonName = serde_json::from_str("\"\\u674e\\ud842\\udfb7\"").unwrap();
        assert_eq!(back.as_str(), "李𠮷");
    }

    #[test]
    fn a_name_with_a_middle_dot_is_accepted() {
        assert_eq!(PersonName::parse("阿沛·阿旺晋美").unwrap().as_str(), "阿沛·阿旺晋美");
        assert_eq!(PersonName::parse("买买提·艾力").unwrap().char_count(), 6);
    }

    #[test]
    fn a_misplaced_middle_dot_is_refused() {
        for raw in ["·阿旺", "阿旺·", "阿··旺", "阿· 旺", "阿 ·旺"] {
            assert_eq!(PersonName::parse(raw), Err(NameError::MisplacedMiddleDot), "{raw}");
        }
    }

    #[test]
    fn look_alikes_of_the_middle_dot_are_refused_with_a_hint() {
        for raw in ["阿沛・阿旺", "阿沛•阿旺", "阿沛.阿旺", "阿沛．阿旺"] {
            let err = PersonName::parse(raw).unwrap_err();
            assert_eq!(err, NameError::LookAlikeMiddleDot, "{raw}");
            assert_eq!(err.code(), "invalid_name");
            assert_eq!(err.hint(), Some("use_middle_dot_u00b7"));
        }
    }

    #[test]
    fn latin_names_with_single_spaces_are_accepted() {
        assert_eq!(PersonName::parse("CHAN Tai Man").unwrap().as_str(), "CHAN Tai Man");
        assert!(PersonName::parse("Nguyễn Văn An").is_ok());
        assert!(PersonName::parse("José Müller").is_ok());
        assert!(PersonName::parse("陈 Tai Man").is_ok());
    }

    #[test]
    fn double_spaces_are_refused() {
        assert_eq!(PersonName::parse("CHAN  Tai Man"), Err(NameError::ConsecutiveSpaces));
    }

    #[test]
    fn names_with_digits_or_symbols_are_refused() {
        for raw in [
            "张三1",
            "张三３",
            "张@三",
            "张三!",
            "张-三",
            "O'Brien",
            "张\t三",
            "张\u{0}三",
            "张三😀",
            "张\u{3000}三",
            "张三_",
            "Tai×Man",
            "张三,",
            "张三。",
            "李?",
            "李\u{FFFD}",
            "张\u{200B}三",
        ] {
            let err = PersonName::parse(raw).unwrap_err();
            assert_eq!(err.code(), "invalid_name", "{raw:?}");
        }
    }

    #[test]
    fn names_are_two_to_fifty_characters() {
        assert_eq!(PersonName::parse("李"), Err(NameError::TooShort));
        assert_eq!(PersonName::parse(" 李 "), Err(NameError::TooShort));
        assert_eq!(PersonName::parse(""), Err(NameError::TooShort));
        assert!(PersonName::parse(&"李".repeat(50)).is_ok());
        assert_eq!(PersonName::parse(&"李".repeat(51)), Err(NameError::TooLong));
        assert!(PersonName::parse(&"𠮷".repeat(50)).is_ok());
    }

    #[test]
    fn names_are_normalised_to_nfc() {
        // "e" followed by a combining acute accent becomes the precomposed "é".
        let name = PersonName::parse("Jose\u{301} Li").unwrap();
        assert_eq!(name.as_str(), "Jos\u{e9} Li");
    }

    #[test]
    fn an_invalid_name_in_json_is_refused_and_debug_is_masked() {
        assert!(serde_json::from_str::<PersonName>("\"张三1\"").is_err());
        let name = PersonName::parse("欧阳娜娜").unwrap();
        assert_eq!(format!("{name:?}"), "PersonName(欧***)");
    }
}
