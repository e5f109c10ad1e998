//! Staff members (工作人员): one stream per username, with a role, an Argon2id password hash,
//! sessions, and the same lockout as accounts.
//!
//! A staff member's sessions live in the stream, so a request is authenticated against the
//! stream itself: disabling a member, changing their role, their password change or their
//! logout ends their sessions at once, in every process, without waiting for a read model.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::account::{Checked, NewSession, PasswordCheck, Session};
use crate::kind::ErrorKind;
use crate::lockout::Lockout;

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reviewer,
    Support,
    Auditor,
    Analyst,
    HeadTeacher,
    SchoolAdmin,
    Admin,
    /// A downstream service reading the identity-changes feed.
    Service,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::Reviewer,
        Role::Support,
        Role::Auditor,
        Role::Analyst,
        Role::HeadTeacher,
        Role::SchoolAdmin,
        Role::Admin,
        Role::Service,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Support => "support",
            Role::Auditor => "auditor",
            Role::Analyst => "analyst",
            Role::HeadTeacher => "head_teacher",
            Role::SchoolAdmin => "school_admin",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Whether a username is acceptable: 3–32 lower-case letters, digits, `.`, `_` or `-`.
pub fn valid_username(username: &str) -> bool {
    (3..=32).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Where a school staff member works: a school admin their school, a head teacher also their
/// grade and class (as the registry writes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolScope {
    pub school_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<crate::student::Grade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

/// Commands on a staff member.
#[derive(Debug, Clone, PartialEq)]
pub enum StaffCommand {
    Create(CreateStaff),
    LogIn(StaffLogIn),
    EndSession(EndStaffSession),
    Disable(Disable),
    Enable(Enable),
    ChangeRole(ChangeRole),
    ChangePassword(ChangeStaffPassword),
}

/// Creates a staff member.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStaff {
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    /// The staff member's own applicant account, if they have one (they never review it).
    pub account_id: Option<String>,
    /// A head teacher's or school admin's school (and class).
    pub school: Option<SchoolScope>,
    pub created_by: String,
    pub now: DateTime<Utc>,
}

/// A staff login attempt: a session to start if the password was right.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffLogIn {
    pub password: Checked<NewSession>,
    pub now: DateTime<Utc>,
}

/// Ends one session (logout).
#[derive(Debug, Clone, PartialEq)]
pub struct EndStaffSession {
    pub session_id: String,
    pub now: DateTime<Utc>,
}

/// An admin disables the member: every session ends, no login until enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct Disable {
    pub by: String,
    pub now: DateTime<Utc>,
}

/// An admin enables the member again.
#[derive(Debug, Clone, PartialEq)]
pub struct Enable {
    pub by: String,
    pub now: DateTime<Utc>,
}

/// An admin changes the member's role: every session ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRole {
    pub role: Role,
    /// A head teacher's or school admin's school (and class); `None` for other roles.
    pub school: Option<SchoolScope>,
    pub by: String,
    pub now: DateTime<Utc>,
}

/// The member changes their password, proving the current one; their other sessions end.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeStaffPassword {
    pub password: Checked<crate::account::NewPassword>,
    pub now: DateTime<Utc>,
}

/// Live sessions per staff member: a new one beyond this ends the oldest.
pub const MAX_STAFF_SESSIONS: usize = 10;

/// Events of a staff stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StaffEvent {
    Created {
        username: String,
        role: Role,
        password_hash: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        school: Option<SchoolScope>,
        created_by: String,
        at: DateTime<Utc>,
    },
    SessionStarted {
        session_id: String,
        token_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    LoginFailed {
        at: DateTime<Utc>,
    },
    Locked {
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    SessionEnded {
        session_id: String,
        at: DateTime<Utc>,
    },
    /// Every session but `kept` (if any) ended.
    SessionsRevoked {
        kept: Option<String>,
        at: DateTime<Utc>,
    },
    Disabled {
        by: String,
        at: DateTime<Utc>,
    },
    Enabled {
        by: String,
        at: DateTime<Utc>,
    },
    RoleChanged {
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        school: Option<SchoolScope>,
        by: String,
        at: DateTime<Utc>,
    },
    PasswordChanged {
        password_hash: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for StaffEvent {
    fn event_type(&self) -> String {
        match self {
            StaffEvent::Created { .. } => "Created",
            StaffEvent::SessionStarted { .. } => "SessionStarted",
            StaffEvent::LoginFailed { .. } => "LoginFailed",
            StaffEvent::Locked { .. } => "Locked",
            StaffEvent::SessionEnded { .. } => "SessionEnded",
            StaffEvent::SessionsRevoked { .. } => "SessionsRevoked",
            StaffEvent::Disabled { .. } => "Disabled",
            StaffEvent::Enabled { .. } => "Enabled",
            StaffEvent::RoleChanged { .. } => "RoleChanged",
            StaffEvent::PasswordChanged { .. } => "PasswordChanged",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// A refused staff command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StaffError {
    #[error("this username is taken")]
    UsernameTaken,
    #[error("no such staff member")]
    NotFound,
    #[error("locked until {until}")]
    Locked { until: DateTime<Utc> },
    #[error("the credentials changed meanwhile")]
    StaleCredentials,
    #[error("this staff member is disabled")]
    Disabled,
    #[error("no such session")]
    SessionNotFound,
}

impl StaffError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            StaffError::UsernameTaken => "username_taken",
            StaffError::NotFound | StaffError::Disabled => "login_failed",
            StaffError::Locked { .. } => "account_locked",
            StaffError::StaleCredentials => "conflict_retry",
            StaffError::SessionNotFound => "unauthenticated",
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StaffError::UsernameTaken => ErrorKind::Conflict,
            StaffError::Locked { .. } => ErrorKind::Locked,
            StaffError::StaleCredentials => ErrorKind::Retry,
            StaffError::NotFound | StaffError::Disabled | StaffError::SessionNotFound => ErrorKind::Unauthenticated,
        }
    }
}

/// A staff member's state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Staff {
    pub username: Option<String>,
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    pub account_id: Option<String>,
    #[serde(default)]
    pub school: Option<SchoolScope>,
    pub lockout: Lockout,
    #[serde(default)]
    pub sessions: Vec<Session>,
    #[serde(default)]
    pub disabled: bool,
}

impl Staff {
    /// The live session with this token hash, if the member is enabled.
    pub fn session_by_token(&self, token_hash: &str, now: DateTime<Utc>) -> Option<&Session> {
        if self.disabled || self.username.is_none() {
            return None;
        }
        self.sessions.iter().find(|s| s.token_hash == token_hash && s.expires_at > now)
    }

    /// Where this member may act on students: a head teacher with a school, grade and class
    /// their class, a school admin with a school their school; anyone else nowhere.
    pub fn student_scope(&self) -> Option<crate::student::Scope> {
        let school = self.school.as_ref()?;
        match self.role? {
            Role::HeadTeacher => {
                let class = crate::student::ClassName::parse(school.class.as_deref()?).ok()?;
                Some(crate::student::Scope::HeadTeacher {
                    school_code: school.school_code.clone(),
                    grade: school.grade?,
                    class,
                })
            }
            Role::SchoolAdmin => Some(crate::student::Scope::SchoolAdmin { school_code: school.school_code.clone() }),
            _ => None,
        }
    }

    fn exists(&self) -> Result<(), StaffError> {
        if self.username.is_none() {
            return Err(StaffError::NotFound);
        }
        Ok(())
    }

    /// Checks a password checked outside (see [`Checked`]); a wrong one counts as a failed
    /// login. Returns what the command does when it was right.
    async fn prove<T>(
        &mut self,
        checked: Checked<T>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<Option<T>, StaffError> {
        self.exists()?;
        if self.disabled {
            return Err(StaffError::Disabled);
        }
        if let Some(until) = self.lockout.locked_at(now) {
            return Err(StaffError::Locked { until });
        }
        if self.password_hash.as_deref() != Some(checked.checked_hash.as_str()) {
            return Err(StaffError::StaleCredentials);
        }
        match checked.check {
            PasswordCheck::Right(then) => Ok(Some(then)),
            PasswordCheck::Wrong => {
                sink.write(StaffEvent::LoginFailed { at: now }, self).await;
                if self.lockout.must_lock(checked.lockout.threshold) {
                    let until = now + checked.lockout.duration;
                    sink.write(StaffEvent::Locked { at: now, until }, self).await;
                }
                Ok(None)
            }
        }
    }

    async fn revoke_all(&mut self, now: DateTime<Utc>, sink: &EventSink<Self>) {
        if !self.sessions.is_empty() {
            sink.write(StaffEvent::SessionsRevoked { kept: None, at: now }, self).await;
        }
    }
}

impl Aggregate for Staff {
    const TYPE: &'static str = "staff";
    type Command = StaffCommand;
    type Event = StaffEvent;
    type Error = StaffError;
    type Services = ();

    async fn handle(&mut self, command: StaffCommand, _: &(), sink: &EventSink<Self>) -> Result<(), StaffError> {
        match command {
            StaffCommand::Create(c) => {
                if self.username.is_some() {
                    return Err(StaffError::UsernameTaken);
                }
                let CreateStaff { username, role, password_hash, account_id, school, created_by, now } = c;
                let event =
                    StaffEvent::Created { username, role, password_hash, account_id, school, created_by, at: now };
                sink.write(event, self).await;
            }
            StaffCommand::LogIn(c) => {
                let now = c.now;
                if let Some(session) = self.prove(c.password, now, sink).await? {
                    let live: Vec<String> =
                        self.sessions.iter().filter(|s| s.expires_at > now).map(|s| s.session_id.clone()).collect();
                    for oldest in live.iter().take((live.len() + 1).saturating_sub(MAX_STAFF_SESSIONS)) {
                        sink.write(StaffEvent::SessionEnded { session_id: oldest.clone(), at: now }, self).await;
                    }
                    let NewSession { session_id, token_hash, expires_at } = session;
                    sink.write(StaffEvent::SessionStarted { session_id, token_hash, expires_at, at: now }, self).await;
                }
            }
            StaffCommand::EndSession(c) => {
                self.exists()?;
                if !self.sessions.iter().any(|s| s.session_id == c.session_id) {
                    return Err(StaffError::SessionNotFound);
                }
                sink.write(StaffEvent::SessionEnded { session_id: c.session_id, at: c.now }, self).await;
            }
            StaffCommand::Disable(c) => {
                self.exists()?;
                if !self.disabled {
                    sink.write(StaffEvent::Disabled { by: c.by, at: c.now }, self).await;
                }
                self.revoke_all(c.now, sink).await;
            }
            StaffCommand::Enable(c) => {
                self.exists()?;
                if self.disabled {
                    sink.write(StaffEvent::Enabled { by: c.by, at: c.now }, self).await;
                }
            }
            StaffCommand::ChangeRole(c) => {
                self.exists()?;
                if self.role != Some(c.role) || self.school != c.school {
                    let event = StaffEvent::RoleChanged { role: c.role, school: c.school, by: c.by, at: c.now };
                    sink.write(event, self).await;
                }
                self.revoke_all(c.now, sink).await;
            }
            StaffCommand::ChangePassword(c) => {
                let now = c.now;
                if let Some(change) = self.prove(c.password, now, sink).await? {
                    let event = StaffEvent::PasswordChanged { password_hash: change.new_password_hash, at: now };
                    sink.write(event, self).await;
                    if self.sessions.iter().any(|s| s.session_id != change.keep_session) {
                        let event = StaffEvent::SessionsRevoked { kept: Some(change.keep_session), at: now };
                        sink.write(event, self).await;
                    }
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: StaffEvent) {
        match event {
            StaffEvent::Created { username, role, password_hash, account_id, school, .. } => {
                self.account_id = account_id;
                self.school = school;
                self.username = Some(username);
                self.role = Some(role);
                self.password_hash = Some(password_hash);
            }
            StaffEvent::SessionStarted { session_id, token_hash, expires_at, at } => {
                self.lockout.cleared();
                self.sessions.retain(|s| s.expires_at > at);
                self.sessions.push(Session { session_id, token_hash, expires_at });
            }
            StaffEvent::LoginFailed { at } => {
                self.lockout.failed(at);
            }
            StaffEvent::Locked { until, .. } => self.lockout.locked(until),
            StaffEvent::SessionEnded { session_id, .. } => self.sessions.retain(|s| s.session_id != session_id),
            StaffEvent::SessionsRevoked { kept, .. } => self.sessions.retain(|s| Some(&s.session_id) == kept.as_ref()),
            StaffEvent::Disabled { .. } => self.disabled = true,
            StaffEvent::Enabled { .. } => self.disabled = false,
            StaffEvent::RoleChanged { role, school, .. } => {
                self.role = Some(role);
                self.school = school;
            }
            StaffEvent::PasswordChanged { password_hash, .. } => {
                self.password_hash = Some(password_hash);
                self.lockout.cleared();
            }
        }
    }
}

#[cfg(test)]
mod tests;
