//! China time and the working-day calendar, read from the spec's data (not the server's copy).

/// The State Council holiday calendar (copied from the spec): `date,kind,holiday`, kind
/// `holiday` or `working_day`.
pub(crate) const CN_CALENDAR: &str = include_str!("../data/cn-calendar.csv");

/// Today in China Standard Time (UTC+8).
pub fn china_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// The next midnight in China Standard Time, as an instant.
pub fn next_china_midnight() -> chrono::DateTime<chrono::Utc> {
    let tomorrow = china_today().succ_opt().unwrap();
    tomorrow.and_hms_opt(0, 0, 0).unwrap().and_utc() - chrono::Duration::hours(8)
}

/// Whether `date` is a working day: listed days as the calendar says, the rest Monday–Friday
/// (also for years the calendar does not cover).
pub fn is_working_day(date: chrono::NaiveDate) -> bool {
    use chrono::Datelike;
    let key = date.format("%Y-%m-%d").to_string();
    for line in CN_CALENDAR.lines().skip(1) {
        let mut fields = line.split(',');
        if fields.next() == Some(key.as_str()) {
            return fields.next() == Some("working_day");
        }
    }
    !matches!(date.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun)
}

/// Working days after `from` up to and including `to`.
pub fn working_days_between(from: chrono::NaiveDate, to: chrono::NaiveDate) -> u32 {
    from.iter_days().skip(1).take_while(|d| *d <= to).filter(|d| is_working_day(*d)).count() as u32
}

/// The manual-review period holding `date`: 1 Jan – 31 Aug or 1 Sep – 31 Dec.
pub fn review_period(date: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
    use chrono::Datelike;
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(date.year(), m, d).unwrap();
    if date.month() <= 8 {
        (day(1, 1), day(8, 31))
    } else {
        (day(9, 1), day(12, 31))
    }
}
