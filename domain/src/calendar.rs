//! The working-day calendar (工作日): Chinese public holidays and the adjusted working weekends
//! (调休) of the State Council notices, kept as data (`domain/data/cn-calendar.csv`, one row per
//! holiday date and per weekend date that is a working day).
//!
//! A year with no rows falls back to Monday–Friday; [`WorkingCalendar::covers`] tells callers,
//! so the service can warn and export a metric until an operator adds the year.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};

use crate::time::{cst_date, cst_midnight};

/// The calendar shipped with Shenfen.
pub const SHIPPED_CSV: &str = include_str!("../data/cn-calendar.csv");

/// What a listed date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    Holiday,
    WorkingDay,
}

/// A malformed calendar row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("calendar line {line}: {message}")]
pub struct CalendarError {
    pub line: usize,
    pub message: String,
}

/// Holidays and adjusted working days by date.
#[derive(Debug, Clone, Default)]
pub struct WorkingCalendar {
    days: HashMap<NaiveDate, DayKind>,
    years: BTreeSet<i32>,
}

impl WorkingCalendar {
    /// Parses `date,kind,holiday` rows (`kind` is `holiday` or `working_day`; header optional).
    pub fn parse(csv: &str) -> Result<Self, CalendarError> {
        let mut calendar = WorkingCalendar::default();
        for (index, line) in csv.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("date,") {
                continue;
            }
            let mut fields = line.split(',');
            let err = |message: &str| CalendarError { line: line_no, message: message.to_string() };
            let date = fields
                .next()
                .and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok())
                .ok_or_else(|| err("bad date"))?;
            let kind = match fields.next().map(str::trim) {
                Some("holiday") => DayKind::Holiday,
                Some("working_day") => DayKind::WorkingDay,
                _ => return Err(err("kind must be holiday or working_day")),
            };
            calendar.days.insert(date, kind);
            calendar.years.insert(date.year());
        }
        Ok(calendar)
    }

    /// The shipped calendar.
    pub fn shipped() -> Self {
        // The shipped file is tested below; an error would be a build defect.
        Self::parse(SHIPPED_CSV).unwrap_or_default()
    }

    /// Adds (or overrides) the days of `other`, e.g. a year an operator added.
    pub fn extend(&mut self, other: WorkingCalendar) {
        self.days.extend(other.days);
        self.years.extend(other.years);
    }

    /// Whether the calendar has data for `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// The years it has data for.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.days.get(&date) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::WorkingDay) => true,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The `n`th working day after `date` (not counting `date` itself).
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            day = day.succ_opt().unwrap_or(day);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// Working days from `from` (exclusive) to `to` (inclusive); 0 when `to <= from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = day.succ_opt().unwrap_or(to);
            if self.is_working_day(day) {
                count += 1;
            }
        }
        count
    }

    /// The instant `hours` working hours after `from`: only the hours of working days, in China
    /// Standard Time, count. Time on a weekend or holiday stands still, so from a non-working day
    /// the count starts at the next working day's 00:00; `hours` that end exactly at a working
    /// day's end give the next midnight.
    pub fn add_working_hours(&self, from: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
        let mut left = Duration::hours(i64::from(hours));
        let mut at = from;
        // A calendar cannot hold ten years without a working day (unlisted dates are Monday to
        // Friday); the bound only keeps a corrupted one from looping forever.
        for _ in 0..3660 {
            let day = cst_date(at);
            let end_of_day = cst_midnight(day.succ_opt().unwrap_or(day));
            if self.is_working_day(day) {
                let rest = end_of_day - at;
                if left <= rest {
                    return at + left;
                }
                left -= rest;
            }
            at = end_of_day;
        }
        at + left
    }
}

/// The promised decision time of a manual review, in working days.
pub const REVIEW_WORKING_DAYS: u32 = 7;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn the_shipped_calendar_parses_and_covers_2025_and_2026() {
        let cal = WorkingCalendar::parse(SHIPPED_CSV).expect("shipped calendar parses");
        assert!(cal.covers(2025) && cal.covers(2026));
    }

    #[test]
    fn spring_festival_2026_pushes_the_due_date_past_the_holiday() {
        let cal = WorkingCalendar::shipped();
        // Submitted Monday 9 Feb: 10–13 Feb, then Saturday 14 Feb (an adjusted working day),
        // then the holiday 15–23 Feb, then 24 and 25 Feb.
        assert!(cal.is_working_day(d(2026, 2, 14)), "adjusted working Saturday");
        assert!(!cal.is_working_day(d(2026, 2, 16)));
        assert_eq!(cal.add_working_days(d(2026, 2, 9), 7), d(2026, 2, 25));
    }

    #[test]
    fn national_day_2026_with_its_adjusted_weekends() {
        let cal = WorkingCalendar::shipped();
        // Submitted Wednesday 30 Sep: 1–7 Oct are holidays, Saturday 10 Oct is a working day.
        assert!(!cal.is_working_day(d(2026, 10, 1)));
        assert!(cal.is_working_day(d(2026, 10, 10)));
        // 8 (Thu), 9 (Fri), 10 (Sat, working), 12, 13, 14, 15.
        assert_eq!(cal.add_working_days(d(2026, 9, 30), 7), d(2026, 10, 15));
        // Sunday 20 Sep 2026 is a working day.
        assert!(cal.is_working_day(d(2026, 9, 20)));
    }

    #[test]
    fn spring_festival_2025_and_its_working_sundays() {
        let cal = WorkingCalendar::shipped();
        assert!(cal.is_working_day(d(2025, 1, 26)), "Sunday 26 Jan 2025 is a working day");
        // Submitted Friday 24 Jan 2025: 26 Jan (Sun, working), 27 Jan, then 28 Jan–4 Feb off,
        // 5, 6, 7 Feb, 8 Feb (Sat, working), 10 Feb.
        assert_eq!(cal.add_working_days(d(2025, 1, 24), 7), d(2025, 2, 10));
    }

    #[test]
    fn a_year_without_data_falls_back_to_monday_to_friday() {
        let cal = WorkingCalendar::shipped();
        assert!(!cal.covers(2030));
        // Friday 4 Jan 2030 + 7 working days = Tuesday 15 Jan 2030.
        assert_eq!(cal.add_working_days(d(2030, 1, 4), 7), d(2030, 1, 15));
        assert_eq!(cal.working_days_between(d(2030, 1, 4), d(2030, 1, 15)), 7);
    }

    #[test]
    fn an_operator_file_adds_a_year() {
        let mut cal = WorkingCalendar::shipped();
        cal.extend(WorkingCalendar::parse("date,kind,holiday\n2030-01-01,holiday,New Year's Day\n").expect("file"));
        assert!(cal.covers(2030) && cal.covers(2026));
        assert!(!cal.is_working_day(d(2030, 1, 1)));
    }

    #[test]
    fn malformed_rows_are_refused_with_their_line() {
        let err = WorkingCalendar::parse("date,kind,holiday\n2026-13-01,holiday,x\n").expect_err("bad date");
        assert_eq!(err.line, 2);
    }
}
