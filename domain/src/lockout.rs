//! Brute-force protection shared by accounts and staff (as Keycloak does it): after
//! `threshold` consecutive failed logins the login is locked for a while; while locked even the
//! right password is refused; a success, or a failure after the lock expired, starts the count
//! again. Failures are events of the stream, so parallel guesses are counted one by one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The lockout state folded from login events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Lockout {
    pub consecutive_failures: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

impl Lockout {
    /// The lock in force at `now`, if any.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }

    /// Whether the failures counted so far (including one just applied) call for a lock.
    pub fn must_lock(&self, threshold: u32) -> bool {
        self.consecutive_failures >= threshold
    }

    /// Applies a failed login at `at`.
    pub fn failed(&mut self, at: DateTime<Utc>) {
        if self.locked_until.is_some_and(|until| at >= until) {
            *self = Lockout::default();
        }
        self.consecutive_failures += 1;
    }

    /// Applies a lock.
    pub fn locked(&mut self, until: DateTime<Utc>) {
        self.locked_until = Some(until);
    }

    /// Applies a success (or a credential reset).
    pub fn cleared(&mut self) {
        *self = Lockout::default();
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn failures_count_until_the_threshold_and_restart_after_the_lock_expires() {
        let t = Utc.with_ymd_and_hms(2026, 5, 10, 1, 0, 0).single().unwrap_or_default();
        let mut lockout = Lockout::default();
        for _ in 0..5 {
            lockout.failed(t);
        }
        assert!(lockout.must_lock(5));
        lockout.locked(t + Duration::minutes(15));
        assert_eq!(lockout.locked_at(t + Duration::minutes(14)), Some(t + Duration::minutes(15)));
        assert_eq!(lockout.locked_at(t + Duration::minutes(15)), None);
        lockout.failed(t + Duration::minutes(16));
        assert_eq!(lockout.consecutive_failures, 1);
        assert!(!lockout.must_lock(5));
    }
}
