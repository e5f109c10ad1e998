//! Document validity (证件有效期): a period and a start date. The end date is computed, never
//! typed in: start + the period's years, same month and day, with 29 February mapping to
//! 28 February when the end year is not a leap year.
//!
//! [`Validity::parse`] also applies the rules that depend on the holder and on today: a start in
//! the future (or before the holder's birth) is `invalid_validity`; `long_term` on a resident
//! identity card needs the holder to be at least 46 on the start date
//! (`long_term_not_allowed`); a document whose end date is already past is `document_expired`
//! (a document is still valid on its end date).

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::document::DocumentType;

/// The age a resident identity card holder must have reached on the start date for a
/// `long_term` card.
pub const LONG_TERM_MIN_AGE: i32 = 46;

/// How long a document is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidityPeriod {
    /// 5 years.
    #[serde(rename = "5y")]
    FiveYears,
    /// 10 years.
    #[serde(rename = "10y")]
    TenYears,
    /// 20 years.
    #[serde(rename = "20y")]
    TwentyYears,
    /// 长期: no end date.
    LongTerm,
}

impl ValidityPeriod {
    /// Every period.
    pub const ALL: [ValidityPeriod; 4] =
        [ValidityPeriod::FiveYears, ValidityPeriod::TenYears, ValidityPeriod::TwentyYears, ValidityPeriod::LongTerm];

    /// The wire name: `5y`, `10y`, `20y` or `long_term`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ValidityPeriod::FiveYears => "5y",
            ValidityPeriod::TenYears => "10y",
            ValidityPeriod::TwentyYears => "20y",
            ValidityPeriod::LongTerm => "long_term",
        }
    }

    /// The period with the given wire name (surrounding white space ignored).
    pub fn parse(s: &str) -> Option<ValidityPeriod> {
        let s = s.trim();
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The number of years, `None` for `long_term`.
    pub fn years(&self) -> Option<i32> {
        match self {
            ValidityPeriod::FiveYears => Some(5),
            ValidityPeriod::TenYears => Some(10),
            ValidityPeriod::TwentyYears => Some(20),
            ValidityPeriod::LongTerm => None,
        }
    }
}

impl fmt::Display for ValidityPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a validity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidityError {
    /// The period is not `5y`, `10y`, `20y` or `long_term`.
    #[error("the validity period must be 5y, 10y, 20y or long_term")]
    UnknownPeriod,
    /// The start date is after today.
    #[error("the validity start date is in the future")]
    StartInFuture,
    /// The start date is before the holder's birth date.
    #[error("the validity start date is before the holder's birth date")]
    StartBeforeBirth,
    /// A long-term resident identity card for a holder younger than 46 on the start date (or
    /// whose birth date is unknown).
    #[error("a long-term resident identity card is issued only to holders aged {LONG_TERM_MIN_AGE} or over on the start date")]
    LongTermNotAllowed,
    /// The end date is already past.
    #[error("the document expired on {end}")]
    Expired {
        /// The computed end date.
        end: NaiveDate,
    },
}

impl ValidityError {
    /// The stable API code: `invalid_validity`, `long_term_not_allowed` or `document_expired`.
    pub fn code(&self) -> &'static str {
        match self {
            ValidityError::UnknownPeriod | ValidityError::StartInFuture | ValidityError::StartBeforeBirth => {
                "invalid_validity"
            }
            ValidityError::LongTermNotAllowed => "long_term_not_allowed",
            ValidityError::Expired { .. } => "document_expired",
        }
    }
}

/// A document's validity: its period and start date. Serialises as
/// `{"period": "10y", "start": "2020-01-31"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Validity {
    period: ValidityPeriod,
    start: NaiveDate,
}

impl Validity {
    /// Checks a validity entered for a document.
    ///
    /// `birth_date` is the holder's (from the number for the 18-character types, from the
    /// profile otherwise, `None` when unknown); `today` is the current date in China Standard
    /// Time.
    pub fn parse(
        period: &str,
        start: NaiveDate,
        doc_type: DocumentType,
        birth_date: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Validity, ValidityError> {
        let period = ValidityPeriod::parse(period).ok_or(ValidityError::UnknownPeriod)?;
        Self::check(period, start, doc_type, birth_date, today)
    }

    /// Like [`parse`](Self::parse), for a period that is already typed.
    pub fn check(
        period: ValidityPeriod,
        start: NaiveDate,
        doc_type: DocumentType,
        birth_date: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Validity, ValidityError> {
        if start > today {
            return Err(ValidityError::StartInFuture);
        }
        if birth_date.is_some_and(|birth| start < birth) {
            return Err(ValidityError::StartBeforeBirth);
        }
        if period == ValidityPeriod::LongTerm && doc_type == DocumentType::ResidentIdCard {
            let old_enough = birth_date.is_some_and(|birth| age_on(birth, start) >= LONG_TERM_MIN_AGE);
            if !old_enough {
                return Err(ValidityError::LongTermNotAllowed);
            }
        }
        let validity = Validity { period, start };
        if let Some(end) = validity.end() {
            if end < today {
                return Err(ValidityError::Expired { end });
            }
        }
        Ok(validity)
    }

    /// The period.
    pub fn period(&self) -> ValidityPeriod {
        self.period
    }

    /// The start date.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// The end date: start + the period's years, same month and day (29 February becomes
    /// 28 February in a common year). `None` for `long_term`.
    pub fn end(&self) -> Option<NaiveDate> {
        add_years(self.start, self.period.years()?)
    }

    /// Whether the document has expired on `today` (it is still valid on its end date).
    pub fn is_expired_on(&self, today: NaiveDate) -> bool {
        self.end().is_some_and(|end| end < today)
    }
}

/// `date` + `years`, same month and day; 29 February becomes 28 February in a common year.
pub fn add_years(date: NaiveDate, years: i32) -> Option<NaiveDate> {
    let year = date.year().checked_add(years)?;
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), date.day().saturating_sub(1)))
}

/// Age in whole years on `on` of someone born on `birth`. Someone born on 29 February has a
/// birthday on 1 March in common years (the day after 28 February).
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years - 1
    } else {
        years
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    const TODAY: (i32, u32, u32) = (2026, 5, 1);

    fn today() -> NaiveDate {
        d(TODAY.0, TODAY.1, TODAY.2)
    }

    fn id_card(period: &str, start: NaiveDate, birth: NaiveDate) -> Result<Validity, ValidityError> {
        Validity::parse(period, start, DocumentType::ResidentIdCard, Some(birth), today())
    }

    #[test]
    fn periods_have_their_wire_names() {
        for p in ValidityPeriod::ALL {
            assert_eq!(ValidityPeriod::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(ValidityPeriod::parse("15y"), None);
    }

    #[test]
    fn the_end_date_is_the_same_month_and_day_years_later() {
        let v = id_card("10y", d(2020, 3, 15), d(1990, 1, 1)).unwrap();
        assert_eq!(v.end(), Some(d(2030, 3, 15)));
        let v = id_card("5y", d(2023, 12, 31), d(1990, 1, 1)).unwrap();
        assert_eq!(v.end(), Some(d(2028, 12, 31)));
        let v = id_card("20y", d(2010, 6, 1), d(1980, 1, 1)).unwrap();
        assert_eq!(v.end(), Some(d(2030, 6, 1)));
    }

    #[test]
    fn the_twenty_ninth_of_february_ends_on_the_twenty_eighth_in_a_common_year() {
        let v = id_card("10y", d(2024, 2, 29), d(1990, 1, 1)).unwrap();
        assert_eq!(v.end(), Some(d(2034, 2, 28)));
        let v = id_card("5y", d(2024, 2, 29), d(1990, 1, 1)).unwrap();
        assert_eq!(v.end(), Some(d(2029, 2, 28)));
        // 2008 + 20 = 2028 is a leap year: the day stays.
        let v = id_card("20y", d(2008, 2, 29), d(1970, 1, 1)).unwrap();
        assert_eq!(v.end(), Some(d(2028, 2, 29)));
    }

    #[test]
    fn a_long_term_card_has_no_end_date() {
        let v = id_card("long_term", d(2000, 1, 1), d(1950, 1, 1)).unwrap();
        assert_eq!(v.end(), None);
        assert!(!v.is_expired_on(d(2100, 1, 1)));
    }

    #[test]
    fn a_holder_exactly_forty_six_on_the_start_date_may_have_a_long_term_card() {
        assert!(id_card("long_term", d(2016, 6, 15), d(1970, 6, 15)).is_ok());
    }

    #[test]
    fn a_holder_a_day_short_of_forty_six_may_not_have_a_long_term_card() {
        let err = id_card("long_term", d(2016, 6, 14), d(1970, 6, 15)).unwrap_err();
        assert_eq!(err, ValidityError::LongTermNotAllowed);
        assert_eq!(err.code(), "long_term_not_allowed");
    }

    #[test]
    fn a_holder_born_on_the_twenty_ninth_of_february_turns_forty_six_on_the_first_of_march() {
        assert!(id_card("long_term", d(2018, 2, 28), d(1972, 2, 29)).is_err());
        assert!(id_card("long_term", d(2018, 3, 1), d(1972, 2, 29)).is_ok());
    }

    #[test]
    fn long_term_on_a_resident_id_card_needs_a_birth_date() {
        let r = Validity::parse("long_term", d(2016, 1, 1), DocumentType::ResidentIdCard, None, today());
        assert_eq!(r, Err(ValidityError::LongTermNotAllowed));
    }

    #[test]
    fn the_age_rule_applies_only_to_resident_id_cards() {
        let r = Validity::parse("long_term", d(2020, 1, 1), DocumentType::Other, Some(d(2000, 1, 1)), today());
        assert!(r.is_ok());
    }

    #[test]
    fn an_expired_document_is_refused() {
        let err = id_card("5y", d(2021, 4, 30), d(1990, 1, 1)).unwrap_err();
        assert_eq!(err, ValidityError::Expired { end: d(2026, 4, 30) });
        assert_eq!(err.code(), "document_expired");
    }

    #[test]
    fn a_document_ending_today_is_still_valid() {
        assert!(id_card("5y", d(2021, 5, 1), d(1990, 1, 1)).is_ok());
    }

    #[test]
    fn a_start_date_in_the_future_is_refused() {
        let err = id_card("10y", d(2026, 5, 2), d(1990, 1, 1)).unwrap_err();
        assert_eq!(err, ValidityError::StartInFuture);
        assert_eq!(err.code(), "invalid_validity");
    }

    #[test]
    fn a_start_date_before_birth_is_refused() {
        let err = id_card("10y", d(2019, 1, 1), d(2020, 1, 1)).unwrap_err();
        assert_eq!(err.code(), "invalid_validity");
    }

    #[test]
    fn an_unknown_period_is_refused() {
        let err = id_card("15y", d(2020, 1, 1), d(1990, 1, 1)).unwrap_err();
        assert_eq!(err, ValidityError::UnknownPeriod);
        assert_eq!(err.code(), "invalid_validity");
    }

    #[test]
    fn a_validity_serialises_with_period_and_start() {
        let v = id_card("10y", d(2020, 1, 31), d(1990, 1, 1)).unwrap();
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"period":"10y","start":"2020-01-31"}"#);
        assert_eq!(serde_json::from_str::<Validity>(&json).unwrap(), v);
    }
}
