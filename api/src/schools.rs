//! The school catalogue (`SHENFEN_SCHOOL_CATALOGUE`): CSV `school_code,school_name,region,filed`,
//! `filed` being `true` when the school is filed (已在平台备案) on the platform. Students choose
//! their school from it by code — never free text — and only a filed school takes submissions.
//! Unset, the demo catalogue shipped in `api/data/schools.csv` is used.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

const DEMO_CATALOGUE: &str = include_str!("../data/schools.csv");

/// How many schools a search returns at most.
pub const SEARCH_LIMIT: usize = 20;

/// One school.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct School {
    pub school_code: String,
    pub school_name: String,
    pub region: String,
    pub filed: bool,
}

/// The catalogue, in file order.
#[derive(Debug, Clone, Default)]
pub struct SchoolCatalogue {
    schools: Vec<School>,
}

fn folded(s: &str) -> String {
    s.nfkc().collect::<String>().trim().to_lowercase()
}

impl SchoolCatalogue {
    /// The catalogue at `path`, or the shipped demo one.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<SchoolCatalogue> {
        match path {
            Some(path) => {
                let csv = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the school catalogue {}", path.display()))?;
                SchoolCatalogue::parse(&csv)
            }
            None => SchoolCatalogue::parse(DEMO_CATALOGUE),
        }
    }

    /// Parses the CSV text; codes must be unique and `filed` `true` or `false`.
    pub fn parse(csv: &str) -> anyhow::Result<SchoolCatalogue> {
        #[derive(Deserialize)]
        struct Row {
            school_code: String,
            school_name: String,
            region: String,
            filed: String,
        }
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let mut schools: Vec<School> = Vec::new();
        for (i, row) in reader.deserialize::<Row>().enumerate() {
            let line = i + 2;
            let row = row.with_context(|| format!("school catalogue line {line}"))?;
            let filed = match row.filed.trim() {
                "true" => true,
                "false" => false,
                other => anyhow::bail!("school catalogue line {line}: filed is `true` or `false`, not `{other}`"),
            };
            let code = row.school_code.trim().to_string();
            anyhow::ensure!(!code.is_empty(), "school catalogue line {line}: empty school_code");
            anyhow::ensure!(
                !schools.iter().any(|s| s.school_code == code),
                "school catalogue line {line}: school_code {code} twice"
            );
            schools.push(School {
                school_code: code,
                school_name: row.school_name.trim().to_string(),
                region: row.region.trim().to_string(),
                filed,
            });
        }
        Ok(SchoolCatalogue { schools })
    }

    /// The school with this code.
    pub fn get(&self, code: &str) -> Option<&School> {
        let code = code.trim();
        self.schools.iter().find(|s| s.school_code == code)
    }

    /// Schools whose name contains `q` or whose code starts with it (NFKC, case-blind), at
    /// most [`SEARCH_LIMIT`], exact code first.
    pub fn search(&self, q: &str) -> Vec<School> {
        let q = folded(q);
        let mut found: Vec<&School> = self
            .schools
            .iter()
            .filter(|s| s.school_code.to_lowercase().starts_with(&q) || folded(&s.school_name).contains(&q))
            .collect();
        found.sort_by_key(|s| s.school_code.to_lowercase() != q);
        found.into_iter().take(SEARCH_LIMIT).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schools_are_found_by_name_or_code_and_the_filed_flag_is_read() {
        let catalogue = SchoolCatalogue::parse(DEMO_CATALOGUE).expect("demo catalogue");
        let by_name: Vec<String> = catalogue.search("鼓楼").into_iter().map(|s| s.school_code).collect();
        assert_eq!(by_name, vec!["3201002"]);
        assert_eq!(catalogue.search("3201").len(), 3);
        assert_eq!(catalogue.search("３２０１００３")[0].school_code, "3201003");
        assert!(!catalogue.get("3201003").map(|s| s.filed).unwrap_or(true));
        assert!(catalogue.get("9999999").is_none());
    }

    #[test]
    fn a_bad_catalogue_is_refused_with_its_line() {
        let bad = "school_code,school_name,region,filed\n1,A,R,yes\n";
        let err = SchoolCatalogue::parse(bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 2"), "{err}");
        let twice = "school_code,school_name,region,filed\n1,A,R,true\n1,B,R,false\n";
        assert!(SchoolCatalogue::parse(twice).is_err());
    }

    #[test]
    fn a_search_returns_at_most_twenty() {
        let mut csv = String::from("school_code,school_name,region,filed\n");
        for i in 0..30 {
            csv.push_str(&format!("{i:03},第{i}中学,R,true\n"));
        }
        let catalogue = SchoolCatalogue::parse(&csv).expect("csv");
        assert_eq!(catalogue.search("中学").len(), SEARCH_LIMIT);
    }
}
