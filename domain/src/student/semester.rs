//! Semester starts (`SHENFEN_SEMESTER_STARTS`, month-days in China time): on each, approved
//! students whose approval is older must reconfirm their enrolment.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::time::{cst_date, cst_midnight};

/// The month-days on which semesters start, e.g. `03-01,09-01`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semesters {
    starts: Vec<(u32, u32)>,
}

/// A month-day that is not `MM-DD`, or none at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("semester starts are month-days MM-DD separated by commas (e.g. 03-01,09-01), not `{0}`")]
pub struct SemestersError(pub String);

impl Semesters {
    /// Parses `03-01,09-01`. 29 February is refused (it would start a semester once in 4 years).
    pub fn parse(text: &str) -> Result<Semesters, SemestersError> {
        let mut starts = Vec::new();
        for part in text.split(',').map(str::trim) {
            let bad = || SemestersError(part.to_string());
            let (m, d) = part.split_once('-').ok_or_else(bad)?;
            let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
            // 2023 is not a leap year: 02-29 does not make a date.
            NaiveDate::from_ymd_opt(2023, m, d).ok_or_else(bad)?;
            starts.push((m, d));
        }
        if starts.is_empty() {
            return Err(SemestersError(text.to_string()));
        }
        starts.sort_unstable();
        starts.dedup();
        Ok(Semesters { starts })
    }

    /// The start (China midnight) of the semester in course at `now`: the latest start day at
    /// or before today, this year or last.
    pub fn current_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = cst_date(now);
        [today.year(), today.year() - 1]
            .into_iter()
            .flat_map(|y| self.starts.iter().rev().filter_map(move |(m, d)| NaiveDate::from_ymd_opt(y, *m, *d)))
            .find(|start| *start <= today)
            .map(cst_midnight)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn cst(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap_or_default() - Duration::hours(8)
    }

    #[test]
    fn the_semester_in_course_starts_at_china_midnight_of_the_latest_start_day() {
        let semesters = Semesters::parse("03-01, 09-01").unwrap_or_else(|_| unreachable!());
        assert_eq!(semesters.current_start(cst(2026, 9, 1, 0, 0)), Some(cst(2026, 9, 1, 0, 0)));
        assert_eq!(semesters.current_start(cst(2026, 8, 31, 23, 59)), Some(cst(2026, 3, 1, 0, 0)));
        assert_eq!(semesters.current_start(cst(2027, 2, 28, 12, 0)), Some(cst(2026, 9, 1, 0, 0)));
        assert_eq!(semesters.current_start(cst(2027, 1, 5, 12, 0)), Some(cst(2026, 9, 1, 0, 0)));
    }

    #[test]
    fn bad_month_days_are_refused() {
        assert!(Semesters::parse("").is_err());
        assert!(Semesters::parse("13-01").is_err());
        assert!(Semesters::parse("02-29").is_err());
        assert!(Semesters::parse("0301").is_err());
    }
}
