//! Facts about a person that are not documents: gender (性别), part of the profile that holders
//! of travel permits and residence permits complete on first login.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A person's gender as recorded on their documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    /// 男.
    Male,
    /// 女.
    Female,
}

impl Gender {
    /// Both genders.
    pub const ALL: [Gender; 2] = [Gender::Male, Gender::Female];

    /// The wire name: `male` or `female`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }

    /// The gender with the given wire name (surrounding white space ignored).
    pub fn parse(s: &str) -> Result<Gender, GenderError> {
        match s.trim() {
            "male" => Ok(Gender::Male),
            "female" => Ok(Gender::Female),
            _ => Err(GenderError),
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gender that is neither `male` nor `female`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gender must be male or female")]
pub struct GenderError;

impl GenderError {
    /// The stable API code: `invalid_gender`.
    pub fn code(&self) -> &'static str {
        "invalid_gender"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn genders_have_snake_case_wire_names() {
        for g in [Gender::Male, Gender::Female] {
            assert_eq!(Gender::parse(g.as_str()), Ok(g));
            assert_eq!(serde_json::to_string(&g).unwrap(), format!("\"{g}\""));
        }
        assert_eq!(Gender::parse("unknown"), Err(GenderError));
        assert_eq!(GenderError.code(), "invalid_gender");
    }
}
