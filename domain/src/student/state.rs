//! The student's state as folded from the events, and what readers ask of it: the status, the
//! missing fields, the submissions left, the progress timeline.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::account::Session;
use crate::lockout::Lockout;
use crate::time::cst_date;

use super::commands::DAILY_SUBMISSIONS;
use super::events::{Actor, EducationIdentity, Enrolment, Guardian, Personal, RegistryError, StudentEvent};
use super::values::Material;

/// Where a student's verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudentStatus {
    #[default]
    Draft,
    Approved,
    PendingHeadTeacher,
    Returned,
    RegistryFailed,
    /// Read, never stored: an approval older than the current semester's start.
    ReconfirmationRequired,
}

impl StudentStatus {
    /// Every status.
    pub const ALL: [StudentStatus; 6] = [
        StudentStatus::Draft,
        StudentStatus::Approved,
        StudentStatus::PendingHeadTeacher,
        StudentStatus::Returned,
        StudentStatus::RegistryFailed,
        StudentStatus::ReconfirmationRequired,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            StudentStatus::Draft => "draft",
            StudentStatus::Approved => "approved",
            StudentStatus::PendingHeadTeacher => "pending_head_teacher",
            StudentStatus::Returned => "returned",
            StudentStatus::RegistryFailed => "registry_failed",
            StudentStatus::ReconfirmationRequired => "reconfirmation_required",
        }
    }
}

/// A submission recorded and waiting for the registry's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub submission_id: String,
    pub at: DateTime<Utc>,
    /// A reconfirmation's enrolment before it: restored if the submission is voided.
    #[serde(default)]
    pub reconfirming_from: Option<Enrolment>,
}

/// The head teacher's review in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub review_id: String,
    pub school_code: String,
    pub grade: super::values::Grade,
    pub class: String,
    pub differences: Vec<String>,
    pub submitted_at: DateTime<Utc>,
    pub due_by: NaiveDate,
}

/// A student's state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Student {
    pub student_number: Option<String>,
    pub pass_id: Option<String>,
    pub mobile: Option<String>,
    pub password_hash: Option<String>,
    pub education_identity: Option<EducationIdentity>,
    pub lockout: Lockout,
    pub sessions: Vec<Session>,
    pub personal: Option<Personal>,
    pub enrolment: Option<Enrolment>,
    pub guardian: Option<Guardian>,
    /// Material digests by kind.
    pub materials: Vec<(Material, String)>,
    /// The guardian mobile that was verified, and the consent's text version.
    pub guardian_verified: Option<(String, String)>,
    pub status: StudentStatus,
    pub in_flight: Option<InFlight>,
    /// China days of the counted submissions (voided ones removed).
    pub submissions: Vec<(String, NaiveDate)>,
    pub review: Option<Review>,
    pub return_reason: Option<String>,
    pub registry_error: Option<RegistryError>,
    /// A school admin refreshed or linked since the registry last failed.
    pub school_acted: bool,
    /// The registry record a school admin linked the application to (手动关联学籍): asked from
    /// then on instead of the registered student number.
    #[serde(default)]
    pub linked_number: Option<String>,
    /// When the student was last approved or reconfirmed.
    pub approved_at: Option<DateTime<Utc>>,
    /// When the pending deletion falls due.
    #[serde(default)]
    pub deletion_effective_at: Option<DateTime<Utc>>,
    /// The current holder of the student number was erased (until it registers anew).
    #[serde(default)]
    pub erased: bool,
    /// How many times the student number was erased: a registration after an erasure starts a
    /// new generation.
    #[serde(default)]
    pub generation: u32,
}

impl Student {
    /// Whether the student number is registered (and not erased).
    pub fn exists(&self) -> bool {
        self.student_number.is_some() && !self.erased
    }

    /// The live session with this token hash.
    pub fn session_by_token(&self, token_hash: &str, now: DateTime<Utc>) -> Option<&Session> {
        self.sessions.iter().find(|s| s.token_hash == token_hash && s.expires_at > now)
    }

    /// The status as read at `now`, given the start of the semester in course (the latest
    /// `SHENFEN_SEMESTER_STARTS` day at or before now, China time): an approval from before it
    /// reads as `reconfirmation_required`.
    pub fn status_at(&self, semester_start: Option<DateTime<Utc>>) -> StudentStatus {
        if self.reconfirmation_due(semester_start) {
            StudentStatus::ReconfirmationRequired
        } else {
            self.status
        }
    }

    /// Whether an approved student must reconfirm for the semester that started then.
    pub fn reconfirmation_due(&self, semester_start: Option<DateTime<Utc>>) -> bool {
        self.status == StudentStatus::Approved
            && matches!((self.approved_at, semester_start), (Some(approved), Some(start)) if approved < start)
    }

    /// Whether the guardian's current mobile is the verified one.
    pub fn guardian_is_verified(&self) -> bool {
        match (&self.guardian, &self.guardian_verified) {
            (Some(g), Some((mobile, _))) => &g.mobile == mobile,
            _ => false,
        }
    }

    /// The materials the enrolled stage asks for.
    pub fn required_materials(&self) -> &'static [Material] {
        self.enrolment.as_ref().map(|e| e.grade.stage().materials()).unwrap_or(&[])
    }

    /// The student number the registry is asked about: the one a school admin linked, else the
    /// registered one.
    pub fn registry_number(&self) -> Option<&str> {
        self.linked_number.as_deref().or(self.student_number.as_deref())
    }

    /// The names of the attached materials the stage asks for.
    pub fn material_names(&self) -> Vec<&'static str> {
        let required = self.required_materials();
        Material::ALL
            .into_iter()
            .filter(|m| required.contains(m) && self.materials.iter().any(|(k, _)| k == m))
            .map(|m| m.as_str())
            .collect()
    }

    /// The digest of an attached material, if the stage asks for it.
    pub fn material(&self, material: Material) -> Option<&str> {
        self.materials.iter().find(|(k, _)| *k == material).map(|(_, d)| d.as_str())
    }

    /// What a submission still lacks, as `section.field` paths.
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        match &self.personal {
            None => missing.extend(["personal.name", "personal.birth_date", "personal.id_number"].map(String::from)),
            Some(p) => {
                if p.id_number.is_none() && !p.minor_uses_guardian_id {
                    missing.push("personal.id_number".into());
                }
            }
        }
        if self.enrolment.is_none() {
            missing.extend(["enrolment.school_code", "enrolment.grade", "enrolment.class"].map(String::from));
        }
        if self.guardian.is_none() {
            missing.extend(
                ["guardian.name", "guardian.id_number", "guardian.mobile", "guardian.address"].map(String::from),
            );
        }
        if self.enrolment.is_none() {
            missing.push("materials".into());
        }
        for m in self.required_materials() {
            if self.material(*m).is_none() {
                missing.push(format!("materials.{}", m.as_str()));
            }
        }
        missing
    }

    /// Counted submissions on the China day of `now`.
    pub fn submissions_on(&self, day: NaiveDate) -> usize {
        self.submissions.iter().filter(|(_, d)| *d == day).count()
    }

    /// Counted submissions left on the China day of `now`.
    pub fn submissions_left(&self, now: DateTime<Utc>) -> usize {
        DAILY_SUBMISSIONS.saturating_sub(self.submissions_on(cst_date(now)))
    }

    pub(super) fn apply_event(&mut self, event: StudentEvent) {
        match event {
            StudentEvent::Registered { student_number, pass_id, mobile, password_hash, education_identity, .. } => {
                if self.erased {
                    *self = Student { generation: self.generation, ..Student::default() };
                }
                self.student_number = Some(student_number);
                self.pass_id = Some(pass_id);
                self.mobile = Some(mobile);
                self.password_hash = Some(password_hash);
                self.education_identity = Some(education_identity);
            }
            StudentEvent::SessionStarted { session_id, token_hash, expires_at, at } => {
                self.lockout.cleared();
                self.sessions.retain(|s| s.expires_at > at);
                self.sessions.push(Session { session_id, token_hash, expires_at });
            }
            StudentEvent::LoginFailed { at } => self.lockout.failed(at),
            StudentEvent::Locked { until, .. } => self.lockout.locked(until),
            StudentEvent::SessionEnded { session_id, .. } => self.sessions.retain(|s| s.session_id != session_id),
            StudentEvent::PersonalEntered { personal, .. } => self.personal = Some(personal),
            // Materials of another stage stay held (a restored enrolment finds them again); only
            // the stage's own are shown and asked for.
            StudentEvent::EnrolmentEntered { enrolment, .. } => self.enrolment = Some(enrolment),
            StudentEvent::GuardianEntered { guardian, .. } => self.guardian = Some(guardian),
            StudentEvent::MaterialAttached { material, digest, .. } => {
                self.materials.retain(|(m, _)| *m != material);
                self.materials.push((material, digest));
            }
            StudentEvent::GuardianVerified { mobile, consent_version, .. } => {
                self.guardian_verified = Some((mobile, consent_version));
            }
            StudentEvent::Submitted { submission_id, reconfirming_from, at } => {
                self.submissions.push((submission_id.clone(), cst_date(at)));
                self.in_flight = Some(InFlight { submission_id, at, reconfirming_from });
            }
            StudentEvent::SubmissionVoided { submission_id, .. } => {
                self.submissions.retain(|(id, _)| *id != submission_id);
                if self.in_flight.as_ref().is_some_and(|f| f.submission_id == submission_id) {
                    self.in_flight = None;
                }
            }
            StudentEvent::AutoApproved { at } | StudentEvent::HeadTeacherApproved { at, .. } => {
                self.settle(StudentStatus::Approved);
                self.approved_at = Some(at);
            }
            StudentEvent::SentToHeadTeacher {
                review_id,
                differences,
                school_code,
                grade,
                class,
                submitted_at,
                due_by,
                ..
            } => {
                self.settle(StudentStatus::PendingHeadTeacher);
                self.review = Some(Review { review_id, school_code, grade, class, differences, submitted_at, due_by });
            }
            StudentEvent::RegistryFailed { error, .. } => {
                // A failure of the student's own submission waits for the school; one that a
                // school admin's refresh or link met leaves the student free to submit again.
                let from_student = self.in_flight.is_some();
                self.settle(StudentStatus::RegistryFailed);
                self.registry_error = Some(error);
                if from_student {
                    self.school_acted = false;
                }
            }
            StudentEvent::Returned { reason, .. } => {
                self.settle(StudentStatus::Returned);
                self.return_reason = Some(reason);
            }
            StudentEvent::RegistryRefreshed { .. } => self.school_acted = true,
            StudentEvent::RegistryLinked { student_number, .. } => {
                self.school_acted = true;
                self.linked_number = Some(student_number);
            }
            StudentEvent::Reconfirmed { at } => self.approved_at = Some(at),
            StudentEvent::DeletionRequested { effective_at, .. } => self.deletion_effective_at = Some(effective_at),
            StudentEvent::DeletionCancelled { .. } => self.deletion_effective_at = None,
            StudentEvent::Erased { .. } => {
                // Nothing of the holder stays in the state: a snapshot or a cached copy holds no
                // personal data, and the student number may register anew.
                *self = Student { erased: true, generation: self.generation + 1, ..Student::default() };
            }
        }
    }

    /// A comparison or decision ended the flight and any review; a new status holds.
    fn settle(&mut self, status: StudentStatus) {
        self.in_flight = None;
        self.review = None;
        self.return_reason = None;
        self.registry_error = None;
        self.status = status;
    }
}

/// One step of the progress timeline (实名认证进度).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub status: &'static str,
    pub actor_role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The timeline step an event makes, if any: registration, each submission, each outcome and
/// decision, each school action and reconfirmation.
pub fn step(event: &StudentEvent) -> Option<Step> {
    let role = |a: &Actor| if a.role == "school_admin" { "school_admin" } else { "head_teacher" };
    let (status, actor_role, reason) = match event {
        StudentEvent::Registered { .. } => ("draft", "student", None),
        StudentEvent::Submitted { .. } => ("submitted", "student", None),
        StudentEvent::SubmissionVoided { reason, .. } => ("submission_voided", "system", Some(reason.clone())),
        StudentEvent::AutoApproved { .. } => ("approved", "system", None),
        StudentEvent::SentToHeadTeacher { .. } => ("pending_head_teacher", "system", None),
        StudentEvent::RegistryFailed { error, .. } => ("registry_failed", "system", Some(error.as_str().to_string())),
        StudentEvent::HeadTeacherApproved { by, reason, .. } => ("approved", role(by), reason.clone()),
        StudentEvent::Returned { by, reason, .. } => ("returned", role(by), Some(reason.clone())),
        StudentEvent::RegistryRefreshed { by, .. } => ("registry_refreshed", role(by), None),
        StudentEvent::RegistryLinked { by, .. } => ("registry_linked", role(by), None),
        StudentEvent::Reconfirmed { .. } => ("approved", "student", None),
        _ => return None,
    };
    Some(Step { at: event.at(), status, actor_role, reason })
}
