//! The student's own values: the student number (学生号 / 全国学籍号), the generated pass ID
//! (通行证ID), the grade and its school stage, the class as the registry writes it, and the
//! materials each stage asks for.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::shared::document::check_char;

/// The student number was not `G` + an 18-character resident ID number with a valid GB 11643
/// check character, nor `L` or `J` + 18 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a student number is G followed by an 18-character resident ID number, or L or J followed by 18 digits")]
pub struct StudentNumberError;

impl StudentNumberError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        "invalid_student_number"
    }
}

/// A student number: `G` + resident ID number (valid check character), or `L`/`J` + 18 digits.
/// Personal data (a `G` number contains an ID number): `Debug` prints it masked.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StudentNumber(String);

impl StudentNumber {
    /// Parses `raw` (surrounding white space ignored, a lower-case prefix or `x` accepted).
    pub fn parse(raw: &str) -> Result<StudentNumber, StudentNumberError> {
        let number = raw.trim().to_ascii_uppercase();
        let (prefix, rest) = number.split_at_checked(1).ok_or(StudentNumberError)?;
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        // ASCII first: the split below is by bytes.
        let valid = rest.len() == 18
            && rest.is_ascii()
            && match prefix {
                "G" => {
                    let (first17, check) = rest.split_at(17);
                    digits(first17) && check.starts_with(check_char(first17))
                }
                "L" | "J" => digits(rest),
                _ => false,
            };
        if valid {
            Ok(StudentNumber(number))
        } else {
            Err(StudentNumberError)
        }
    }

    /// A value read back from the store (possibly `[erased]`), taken as it is.
    pub fn from_stored(stored: String) -> StudentNumber {
        StudentNumber(stored)
    }

    /// The normalised number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first two and last two characters, the rest starred.
    pub fn masked(&self) -> String {
        crate::shared::mask_document(&self.0)
    }
}

impl fmt::Debug for StudentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StudentNumber({})", self.masked())
    }
}

/// A pass ID (通行证ID): `P` followed by 11 digits, generated at registration. It never equals
/// nor contains the student's mobile number or student number ([`PassId::admissible`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PassId(String);

impl PassId {
    /// The pass ID made of `digits` (the caller's random source gives 11 of them), if it is
    /// admissible for this student; `None` asks for another draw.
    pub fn admissible(digits: &str, mobile: &str, student_number: &StudentNumber) -> Option<PassId> {
        if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id = format!("P{digits}");
        let number = student_number.as_str();
        let number_digits = &number[1..];
        let clashes = digits == mobile
            || id.contains(mobile)
            || id.contains(number)
            || number_digits.contains(digits)
            || mobile.contains(digits);
        (!clashes).then_some(PassId(id))
    }

    /// Whether `raw` has the shape of a pass ID (so a login can tell it from a student number).
    pub fn looks_like(raw: &str) -> bool {
        let raw = raw.trim();
        raw.len() == 12 && raw.starts_with(['P', 'p']) && raw[1..].bytes().all(|b| b.is_ascii_digit())
    }

    /// A pass ID as typed by a user (upper-cased), when it has the shape of one.
    pub fn parse(raw: &str) -> Option<PassId> {
        PassId::looks_like(raw).then(|| PassId(raw.trim().to_ascii_uppercase()))
    }

    /// A value read back from the store.
    pub fn from_stored(stored: String) -> PassId {
        PassId(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The school stage, which follows from the grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Grades 1–6 (小学).
    Primary,
    /// Grades 7–9 (初中).
    Junior,
    /// Grades 10–12 (高中).
    Senior,
}

impl Stage {
    /// The identity materials this stage asks for: a household-register page up to grade 9,
    /// both sides of the ID card in high school.
    pub fn materials(&self) -> &'static [Material] {
        match self {
            Stage::Primary | Stage::Junior => &[Material::HouseholdRegister],
            Stage::Senior => &[Material::IdFront, Material::IdBack],
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Primary => "primary",
            Stage::Junior => "junior",
            Stage::Senior => "senior",
        }
    }
}

/// A grade outside 1–12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the grade is a whole number from 1 to 12")]
pub struct GradeError;

impl GradeError {
    pub fn code(&self) -> &'static str {
        "invalid_grade"
    }
}

/// A grade, 1–12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Grade(u8);

impl Grade {
    pub fn new(grade: i64) -> Result<Grade, GradeError> {
        u8::try_from(grade).ok().filter(|g| (1..=12).contains(g)).map(Grade).ok_or(GradeError)
    }

    pub fn get(&self) -> u8 {
        self.0
    }

    /// The stage: 1–6 primary, 7–9 junior, 10–12 senior.
    pub fn stage(&self) -> Stage {
        match self.0 {
            1..=6 => Stage::Primary,
            7..=9 => Stage::Junior,
            _ => Stage::Senior,
        }
    }
}

impl TryFrom<u8> for Grade {
    type Error = GradeError;
    fn try_from(g: u8) -> Result<Grade, GradeError> {
        Grade::new(i64::from(g))
    }
}

impl From<Grade> for u8 {
    fn from(g: Grade) -> u8 {
        g.0
    }
}

/// A class as the registry writes it (e.g. `3班`); two classes are the same when their
/// [`ClassName::key`]s are (Unicode NFKC, trimmed), so a full-width `３班` is `3班`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassName(String);

/// An empty class or one over 32 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the class is 1 to 32 characters, as the registry writes it")]
pub struct ClassError;

impl ClassError {
    pub fn code(&self) -> &'static str {
        "invalid_class"
    }
}

impl ClassName {
    pub fn parse(raw: &str) -> Result<ClassName, ClassError> {
        let key = Self::normalise(raw);
        if key.is_empty() || key.chars().count() > 32 || key.chars().any(char::is_control) {
            return Err(ClassError);
        }
        Ok(ClassName(key))
    }

    /// NFKC, then trimmed: the form classes are compared (and scoped) in.
    pub fn normalise(raw: &str) -> String {
        raw.nfkc().collect::<String>().trim().to_string()
    }

    /// Whether `other` (as any source writes it) names this class.
    pub fn same_as(&self, other: &str) -> bool {
        self.0 == Self::normalise(other)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One kind of identity material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Material {
    /// A household-register page (户口本), grades 1–9.
    HouseholdRegister,
    /// The ID card's front, grades 10–12.
    IdFront,
    /// The ID card's back, grades 10–12.
    IdBack,
}

impl Material {
    pub const ALL: [Material; 3] = [Material::HouseholdRegister, Material::IdFront, Material::IdBack];

    /// The wire name (also the multipart part's name).
    pub fn as_str(&self) -> &'static str {
        match self {
            Material::HouseholdRegister => "household_register",
            Material::IdFront => "id_front",
            Material::IdBack => "id_back",
        }
    }

    pub fn parse(s: &str) -> Option<Material> {
        Material::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g_number(first17: &str) -> String {
        format!("G{first17}{}", check_char(first17))
    }

    #[test]
    fn a_g_number_needs_the_id_numbers_check_character() {
        let good = g_number("11010520100307002");
        assert!(StudentNumber::parse(&good).is_ok());
        let last = good.chars().last().unwrap_or('0');
        let wrong = if last == '0' { '1' } else { '0' };
        let bad = format!("{}{wrong}", &good[..18]);
        assert_eq!(StudentNumber::parse(&bad), Err(StudentNumberError));
    }

    #[test]
    fn l_and_j_numbers_are_18_digits() {
        assert!(StudentNumber::parse("L123456789012345678").is_ok());
        assert!(StudentNumber::parse(" j123456789012345678 ").is_ok());
        assert!(StudentNumber::parse("L12345678901234567").is_err());
        assert!(StudentNumber::parse("L12345678901234567X").is_err());
        assert!(StudentNumber::parse("K123456789012345678").is_err());
        assert!(StudentNumber::parse("").is_err());
        assert!(StudentNumber::parse("学123456789012345678").is_err());
        // 18 bytes after the G, not 18 characters: refused, not a panic.
        assert!(StudentNumber::parse("G1234567890123456é").is_err());
    }

    #[test]
    fn a_pass_id_never_holds_the_mobile_or_the_student_number() {
        let number = StudentNumber::parse("L123456789012345678").unwrap_or_else(|_| unreachable!());
        assert!(PassId::admissible("13800138000", "13800138000", &number).is_none());
        assert!(PassId::admissible("34567890123", "13800138000", &number).is_none(), "inside the student number");
        let id = PassId::admissible("90000000001", "13800138000", &number);
        assert_eq!(id.map(|p| p.as_str().to_string()), Some("P90000000001".to_string()));
        assert!(PassId::admissible("9000", "13800138000", &number).is_none());
    }

    #[test]
    fn the_stage_follows_the_grade() {
        let stage = |g| Grade::new(g).map(|g| g.stage());
        assert_eq!(stage(1), Ok(Stage::Primary));
        assert_eq!(stage(6), Ok(Stage::Primary));
        assert_eq!(stage(7), Ok(Stage::Junior));
        assert_eq!(stage(9), Ok(Stage::Junior));
        assert_eq!(stage(10), Ok(Stage::Senior));
        assert_eq!(stage(12), Ok(Stage::Senior));
        assert_eq!(stage(0), Err(GradeError));
        assert_eq!(stage(13), Err(GradeError));
    }

    #[test]
    fn classes_compare_after_nfkc_and_trimming() {
        let class = ClassName::parse(" 3班 ").unwrap_or_else(|_| unreachable!());
        assert!(class.same_as("３班"));
        assert!(!class.same_as("4班"));
        assert!(ClassName::parse("  ").is_err());
    }
}
