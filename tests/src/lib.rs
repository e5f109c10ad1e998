//! The end-to-end test harness: starts the real server binary (`shenfen-server`, the same code
//! as `shenfen`) as a child process against a fresh SQLite file or a throw-away PostgreSQL
//! server, records what the webhook notifier sends, and offers typed request helpers.
//!
//! A test builds a [`TestApp`] with [`TestApp::spawn_sqlite`] or [`TestApp::spawn_postgres`]
//! (or [`TestApp::spawn`] with [`Settings`]), talks to it over HTTP, and reads verification
//! codes and reset links with [`TestApp::wait_for_message`]. Every value that must be unique
//! (document numbers, mobiles, e-mail addresses) comes from the generators below, so tests never
//! collide even when they share a database.
//!
//! For real-name verification the server's identity authority is the reference registry,
//! written from [`Settings::identities`] into the test directory before the server starts, or a
//! [`FakeAuthority`] on loopback for the `http:URL` adapter ([`Settings::http_authority`]).
//! Staff members are made with the real `staff add` command ([`TestApp::staff_member`]) or
//! through the API ([`TestApp::create_staff`]); manual-review applications are multipart forms
//! built by hand ([`ReviewApplication`], [`MultipartForm`]) with real JPEGs made from
//! [`TINY_JPEG`]. Calendar rules are checked against [`is_working_day`], which reads the spec's
//! holiday calendar (`data/cn-calendar.csv`), not the server's copy.
//!
//! Analytics read models are updated asynchronously: [`TestApp::poll_as`] asks again until the
//! expected figures appear, and [`parse_csv`] reads their `Accept: text/csv` answers. Audit
//! scenarios tag requests with [`TestApp::send_with_request_id`], read streams with
//! [`TestApp::audit_events`] and [`TestApp::audit_state`], and alter the log behind the server's
//! back with [`TestApp::execute_sql`].
#![allow(clippy::unwrap_used)]
#![allow(clippy::missing_panics_doc)]

mod app;
mod binary;
mod calendar;
pub mod contract;
mod fakes;
pub mod faults;
mod generate;
mod messages;
mod multipart;
mod registry;
mod response;
mod settings;
mod wait;

pub use app::*;
pub use binary::*;
pub use calendar::*;
pub use fakes::*;
pub use generate::*;
pub use messages::*;
pub use multipart::*;
pub use registry::*;
pub use response::*;
pub use settings::*;
pub use shenfen_test_postgres::{pg_ctl, postgres_bin_dir, start_postgres};
pub use wait::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(crate) fn the_check_character_of_the_standard_example_is_x() {
        assert_eq!(gb11643_check_char("11010519491231002"), 'X');
    }

    #[test]
    pub(crate) fn generated_resident_numbers_are_valid_and_unique() {
        let numbers: Vec<String> = (0..2000).map(|_| resident_id_number()).collect();
        for n in &numbers {
            assert_eq!(n.len(), 18);
            assert_eq!(gb11643_check_char(&n[..17]), n.chars().last().unwrap());
            assert!(chrono::NaiveDate::parse_from_str(&n[6..14], "%Y%m%d").is_ok(), "{n}");
        }
        let unique: std::collections::HashSet<&String> = numbers.iter().collect();
        assert_eq!(unique.len(), numbers.len());
    }

    #[test]
    pub(crate) fn padded_jpegs_have_the_size_asked_for_and_keep_the_jpeg_markers() {
        for size in [400, 65_000, 190 * 1024 - 1, 190 * 1024, 1024 * 1024 + 1] {
            let jpeg = jpeg_of_size(size);
            assert_eq!(jpeg.len(), size);
            assert_eq!(&jpeg[..4], &[0xFF, 0xD8, 0xFF, 0xFE]);
            assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
        }
        assert_ne!(labelled_jpeg("front"), labelled_jpeg("front"));
    }

    #[test]
    pub(crate) fn the_calendar_knows_holidays_and_adjusted_working_weekends() {
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(!is_working_day(day("2026-10-01")), "National Day");
        assert!(is_working_day(day("2026-10-10")), "an adjusted working Saturday");
        assert!(!is_working_day(day("2026-11-21")), "an ordinary Saturday");
        assert!(is_working_day(day("2027-03-01")), "a Monday of a year without data");
        // 2026-09-30 (Wed) + 7 working days: 10-08, 09, 10 (Sat, working), 12, 13, 14, 15.
        assert_eq!(working_days_between(day("2026-09-30"), day("2026-10-15")), 7);
        assert_eq!(working_days_between(day("2026-09-30"), day("2026-10-14")), 6);
        assert_eq!(review_period(day("2026-11-23")), (day("2026-09-01"), day("2026-12-31")));
        assert_eq!(review_period(day("2027-08-31")), (day("2027-01-01"), day("2027-08-31")));
    }

    #[test]
    pub(crate) fn masking_keeps_the_first_two_and_last_two_characters() {
        assert_eq!(masked("11010519491231002X"), "11**************2X");
    }

    #[test]
    pub(crate) fn csv_parsing_handles_quotes_commas_and_line_ends() {
        let rows = parse_csv("day,reason\r\n2026-01-05,\"a, \"\"b\"\"\"\n2026-01-06,\n");
        assert_eq!(rows, vec![vec!["day", "reason"], vec!["2026-01-05", "a, \"b\""], vec!["2026-01-06", ""]]);
        assert!(parse_csv("").is_empty());
    }
}
