//! Verification codes (验证码), one [`CodeChannel`] stream per (purpose, mobile).
//!
//! Invariants, all decided from the stream's own events so they hold under concurrency:
//! - a new code at most once a minute and at most 10 per China-Standard-Time day;
//! - only the latest code is live; it expires after its time-to-live (24 h by default);
//! - at most 5 wrong entries per code, then it is dead;
//! - a code is used once: consuming it records who used it (the claimant, e.g. the account
//!   id being registered). Consuming again for the same claimant is a no-op, so a retried
//!   request (a double click) is not refused, while any other claimant is.
//!
//! The code itself never enters an event: events carry a keyed hash of it.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::kind::ErrorKind;
use crate::time::{cst_date, cst_midnight};

/// How often a new code may be sent.
pub const RESEND_INTERVAL_SECONDS: i64 = 60;
/// How many codes a day.
pub const CODES_PER_DAY: usize = 10;
/// Wrong entries allowed per code.
pub const MAX_WRONG_ENTRIES: u32 = 5;

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Register,
    ResetPassword,
    GuardianConsent,
    ChangeContact,
    /// A student's registration, to the registering mobile.
    StudentRegister,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 5] = [
        Purpose::Register,
        Purpose::ResetPassword,
        Purpose::GuardianConsent,
        Purpose::ChangeContact,
        Purpose::StudentRegister,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::ResetPassword => "reset_password",
            Purpose::GuardianConsent => "guardian_consent",
            Purpose::ChangeContact => "change_contact",
            Purpose::StudentRegister => "student_register",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How a code is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Wechat,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 2] = [Channel::Sms, Channel::Wechat];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Wechat => "wechat",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Commands on a code channel.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeCommand {
    Issue(IssueCode),
    Consume(ConsumeCode),
}

/// Send a new code (already generated and hashed by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct IssueCode {
    pub channel: Channel,
    pub code_hash: String,
    pub ttl: Duration,
    pub now: DateTime<Utc>,
}

/// Use the live code for `claimant`. A wrong code is recorded, not refused: the outcome is
/// read from the events (`Consumed` or `WrongEntry`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeCode {
    pub code_hash: String,
    pub claimant: String,
    pub now: DateTime<Utc>,
}

/// Events of a code channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CodeEvent {
    Issued { channel: Channel, code_hash: String, issued_at: DateTime<Utc>, expires_at: DateTime<Utc> },
    WrongEntry { at: DateTime<Utc> },
    Consumed { claimant: String, at: DateTime<Utc> },
}

impl DomainEvent for CodeEvent {
    fn event_type(&self) -> String {
        match self {
            CodeEvent::Issued { .. } => "Issued",
            CodeEvent::WrongEntry { .. } => "WrongEntry",
            CodeEvent::Consumed { .. } => "Consumed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a code command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodeError {
    #[error("a new code may be requested at {retry_at}")]
    RateLimited { retry_at: DateTime<Utc> },
    #[error("the verification code is wrong, used or expired")]
    Invalid,
}

impl CodeError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::RateLimited { .. } => "code_rate_limited",
            CodeError::Invalid => "invalid_verification_code",
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CodeError::RateLimited { .. } => ErrorKind::RateLimited,
            CodeError::Invalid => ErrorKind::Invalid,
        }
    }
}

/// The latest code of a channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveCode {
    pub code_hash: String,
    pub expires_at: DateTime<Utc>,
    pub wrong_entries: u32,
    pub consumed_by: Option<String>,
}

/// One (purpose, mobile) channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeChannel {
    /// Issue instants of recent codes (pruned to the last two days).
    pub issued: Vec<DateTime<Utc>>,
    pub latest: Option<LiveCode>,
}

impl CodeChannel {
    fn issue(&self, now: DateTime<Utc>) -> Result<(), CodeError> {
        if let Some(last) = self.issued.last() {
            let next = *last + Duration::seconds(RESEND_INTERVAL_SECONDS);
            if now < next {
                return Err(CodeError::RateLimited { retry_at: next });
            }
        }
        let today = cst_date(now);
        let today_count = self.issued.iter().filter(|t| cst_date(**t) == today).count();
        if today_count >= CODES_PER_DAY {
            let tomorrow = today.succ_opt().unwrap_or(today);
            return Err(CodeError::RateLimited { retry_at: cst_midnight(tomorrow) });
        }
        Ok(())
    }
}

impl Aggregate for CodeChannel {
    const TYPE: &'static str = "code_channel";
    type Command = CodeCommand;
    type Event = CodeEvent;
    type Error = CodeError;
    type Services = ();

    async fn handle(&mut self, command: CodeCommand, _: &(), sink: &EventSink<Self>) -> Result<(), CodeError> {
        match command {
            CodeCommand::Issue(IssueCode { channel, code_hash, ttl, now }) => {
                self.issue(now)?;
                let event = CodeEvent::Issued { channel, code_hash, issued_at: now, expires_at: now + ttl };
                sink.write(event, self).await;
                Ok(())
            }
            CodeCommand::Consume(ConsumeCode { code_hash, claimant, now }) => {
                let Some(live) = &self.latest else { return Err(CodeError::Invalid) };
                if live.expires_at <= now || live.wrong_entries >= MAX_WRONG_ENTRIES {
                    return Err(CodeError::Invalid);
                }
                match &live.consumed_by {
                    Some(by) if *by == claimant && live.code_hash == code_hash => Ok(()),
                    Some(_) => Err(CodeError::Invalid),
                    None if live.code_hash == code_hash => {
                        sink.write(CodeEvent::Consumed { claimant, at: now }, self).await;
                        Ok(())
                    }
                    None => {
                        sink.write(CodeEvent::WrongEntry { at: now }, self).await;
                        Ok(())
                    }
                }
            }
        }
    }

    fn apply(&mut self, event: CodeEvent) {
        match event {
            CodeEvent::Issued { code_hash, issued_at, expires_at, .. } => {
                self.issued.retain(|t| issued_at - *t < Duration::days(2));
                self.issued.push(issued_at);
                self.latest = Some(LiveCode { code_hash, expires_at, wrong_entries: 0, consumed_by: None });
            }
            CodeEvent::WrongEntry { .. } => {
                if let Some(live) = &mut self.latest {
                    live.wrong_entries += 1;
                }
            }
            CodeEvent::Consumed { claimant, .. } => {
                if let Some(live) = &mut self.latest {
                    live.consumed_by = Some(claimant);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
