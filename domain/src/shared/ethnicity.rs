//! Ethnicity (民族), part of the profile a resident-ID-card holder completes on first login.
//!
//! The wire value is the two-digit code of GB/T 3304: the 56 groups `01`–`56`, plus `97`
//! (其他, other) and `98` (外国血统中国籍人士, foreign-born Chinese citizens).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Every ethnicity code of GB/T 3304 with its Chinese name, in code order.
pub const ETHNICITIES: &[(&str, &str)] = &[
    ("01", "汉族"),
    ("02", "蒙古族"),
    ("03", "回族"),
    ("04", "藏族"),
    ("05", "维吾尔族"),
    ("06", "苗族"),
    ("07", "彝族"),
    ("08", "壮族"),
    ("09", "布依族"),
    ("10", "朝鲜族"),
    ("11", "满族"),
    ("12", "侗族"),
    ("13", "瑶族"),
    ("14", "白族"),
    ("15", "土家族"),
    ("16", "哈尼族"),
    ("17", "哈萨克族"),
    ("18", "傣族"),
    ("19", "黎族"),
    ("20", "傈僳族"),
    ("21", "佤族"),
    ("22", "畲族"),
    ("23", "高山族"),
    ("24", "拉祜族"),
    ("25", "水族"),
    ("26", "东乡族"),
    ("27", "纳西族"),
    ("28", "景颇族"),
    ("29", "柯尔克孜族"),
    ("30", "土族"),
    ("31", "达斡尔族"),
    ("32", "仫佬族"),
    ("33", "羌族"),
    ("34", "布朗族"),
    ("35", "撒拉族"),
    ("36", "毛南族"),
    ("37", "仡佬族"),
    ("38", "锡伯族"),
    ("39", "阿昌族"),
    ("40", "普米族"),
    ("41", "塔吉克族"),
    ("42", "怒族"),
    ("43", "乌孜别克族"),
    ("44", "俄罗斯族"),
    ("45", "鄂温克族"),
    ("46", "德昂族"),
    ("47", "保安族"),
    ("48", "裕固族"),
    ("49", "京族"),
    ("50", "塔塔尔族"),
    ("51", "独龙族"),
    ("52", "鄂伦春族"),
    ("53", "赫哲族"),
    ("54", "门巴族"),
    ("55", "珞巴族"),
    ("56", "基诺族"),
    ("97", "其他"),
    ("98", "外国血统中国籍人士"),
];

/// Whether `code` is one of the two-digit codes in [`ETHNICITIES`].
pub fn is_valid_ethnicity(code: &str) -> bool {
    ethnicity_name(code).is_some()
}

/// The Chinese name of an ethnicity code (`"01"` → `汉族`).
pub fn ethnicity_name(code: &str) -> Option<&'static str> {
    ETHNICITIES.iter().find(|(c, _)| *c == code).map(|(_, name)| *name)
}

/// A validated ethnicity, held as its GB/T 3304 code. Serialises as the plain two-digit code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Ethnicity(String);

/// A code that is not in GB/T 3304.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ethnicity must be a two-digit GB/T 3304 code (01 to 56, 97 or 98)")]
pub struct EthnicityError;

impl EthnicityError {
    /// The stable API code: `invalid_ethnicity`.
    pub fn code(&self) -> &'static str {
        "invalid_ethnicity"
    }
}

impl Ethnicity {
    /// Accepts a two-digit code of [`ETHNICITIES`] (surrounding white space ignored).
    pub fn parse(code: &str) -> Result<Ethnicity, EthnicityError> {
        let code = code.trim();
        if is_valid_ethnicity(code) {
            Ok(Ethnicity(code.to_string()))
        } else {
            Err(EthnicityError)
        }
    }

    /// The two-digit code.
    pub fn code(&self) -> &str {
        &self.0
    }

    /// The Chinese name.
    pub fn name_zh(&self) -> &'static str {
        ethnicity_name(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Ethnicity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Ethnicity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ethnicity::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn there_are_fifty_six_groups_plus_other_and_foreign_born() {
        assert_eq!(ETHNICITIES.len(), 58);
        for (i, (code, _)) in ETHNICITIES.iter().take(56).enumerate() {
            assert_eq!(*code, format!("{:02}", i + 1));
        }
        assert_eq!(ethnicity_name("01"), Some("汉族"));
        assert_eq!(ethnicity_name("56"), Some("基诺族"));
        assert_eq!(ethnicity_name("97"), Some("其他"));
        assert_eq!(ethnicity_name("98"), Some("外国血统中国籍人士"));
    }

    #[test]
    fn only_the_two_digit_codes_are_valid() {
        assert!(is_valid_ethnicity("01"));
        assert!(is_valid_ethnicity("98"));
        for code in ["", "1", "00", "57", "96", "99", "汉族", "001"] {
            assert!(!is_valid_ethnicity(code), "{code}");
        }
    }

    #[test]
    fn an_ethnicity_travels_as_its_code() {
        let e = Ethnicity::parse("05").unwrap();
        assert_eq!(e.name_zh(), "维吾尔族");
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"05\"");
        assert_eq!(serde_json::from_str::<Ethnicity>("\"05\"").unwrap(), e);
        assert!(serde_json::from_str::<Ethnicity>("\"57\"").is_err());
        assert_eq!(Ethnicity::parse("57").unwrap_err().code(), "invalid_ethnicity");
    }
}
