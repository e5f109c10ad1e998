//! When a case's reply is due: 24 working hours after it was opened.

use chrono::{DateTime, Duration, SubsecRound, Timelike, Utc};

use crate::calendar::WorkingCalendar;

/// Working hours within which staff reply to a case (工作日24小时内回复).
pub const REPLY_WORKING_HOURS: u32 = 24;

/// The instant a case opened at `opened_at` must be replied to by: [`REPLY_WORKING_HOURS`]
/// hours on working days (China Standard Time) after it. Hours of weekends and holidays do not
/// count, so a case opened on Friday at 10:00 is due on Monday at 10:00, and one opened on a
/// holiday starts counting at the next working day's 00:00. The instant is rounded up to the
/// whole second, so that every store keeps it exactly.
pub fn reply_due_by(calendar: &WorkingCalendar, opened_at: DateTime<Utc>) -> DateTime<Utc> {
    let due = calendar.add_working_hours(opened_at, REPLY_WORKING_HOURS);
    if due.nanosecond() == 0 {
        due
    } else {
        due.trunc_subsecs(0) + Duration::seconds(1)
    }
}
