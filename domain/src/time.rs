//! Calendar rules in China Standard Time (UTC+8, no daylight saving).

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// China Standard Time.
pub fn cst() -> FixedOffset {
    // 8 hours is always a valid offset.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()))
}

/// The calendar date of `at` in China Standard Time.
pub fn cst_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&cst()).date_naive()
}

/// The instant at which the given China-Standard-Time date begins.
pub fn cst_midnight(date: NaiveDate) -> DateTime<Utc> {
    let local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    (local - chrono::Duration::hours(8)).and_utc()
}

/// The manual-review period containing `date`: 1 Jan – 31 Aug or 1 Sep – 31 Dec.
pub fn review_period(date: NaiveDate) -> (NaiveDate, NaiveDate) {
    use chrono::Datelike;
    let y = date.year();
    let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or(date);
    if date.month() <= 8 {
        (ymd(y, 1, 1), ymd(y, 8, 31))
    } else {
        (ymd(y, 9, 1), ymd(y, 12, 31))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_cst_day_starts_at_sixteen_hundred_utc_the_day_before() {
        let at = Utc.with_ymd_and_hms(2026, 2, 28, 15, 59, 59).single().unwrap_or_default();
        assert_eq!(cst_date(at), NaiveDate::from_ymd_opt(2026, 2, 28).unwrap_or_default());
        let at = Utc.with_ymd_and_hms(2026, 2, 28, 16, 0, 0).single().unwrap_or_default();
        assert_eq!(cst_date(at), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default());
        assert_eq!(cst_midnight(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default()), at);
    }

    #[test]
    fn review_periods_split_at_the_first_of_september() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap_or_default();
        assert_eq!(review_period(d(8, 31)), (d(1, 1), d(8, 31)));
        assert_eq!(review_period(d(9, 1)), (d(9, 1), d(12, 31)));
        assert_eq!(review_period(d(12, 31)), (d(9, 1), d(12, 31)));
        assert_eq!(review_period(d(1, 1)), (d(1, 1), d(8, 31)));
    }
}
