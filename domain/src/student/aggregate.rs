//! The student stream's decisions: `handle` dispatches each command to one private fn;
//! `apply` folds the events (see [`state`](super::state)).

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use crate::account::{Checked, NewSession, PasswordCheck};
use crate::time::{cst_date, cst_midnight};

use super::commands::*;
use super::errors::StudentError;
use super::events::{Actor, Enrolment, RegistryError, StudentEvent};
use super::state::{InFlight, Student, StudentStatus};
use super::values::ClassName;

type Sink = EventSink<Student>;
type Decided = Result<(), StudentError>;

/// Live sessions per student: a new one beyond this ends the oldest.
pub const MAX_STUDENT_SESSIONS: usize = 10;

/// The fields of the application that differ from the registry's record: `name`, `id_number`
/// (not compared when a minor uses the guardian's), `birth_date`, `school_code`, `grade`,
/// `class`. Text is compared after Unicode NFKC and trimming, ID numbers case-blind.
pub fn differences(student: &Student, record: &RegistryRecord) -> Vec<String> {
    let mut differ = Vec::new();
    let same_text = |a: &str, b: &str| ClassName::normalise(a) == ClassName::normalise(b);
    if let Some(p) = &student.personal {
        if !same_text(&p.name, &record.name) {
            differ.push("name");
        }
        if !p.minor_uses_guardian_id {
            let same = match (&p.id_number, &record.id_number) {
                (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
                (None, None) => true,
                _ => false,
            };
            if !same {
                differ.push("id_number");
            }
        }
        if p.birth_date.trim() != record.birth_date.format("%Y-%m-%d").to_string() {
            differ.push("birth_date");
        }
    }
    if let Some(e) = &student.enrolment {
        if e.school_code.trim() != record.school_code.trim() {
            differ.push("school_code");
        }
        if e.grade != record.grade {
            differ.push("grade");
        }
        if !same_text(&e.class, &record.class) {
            differ.push("class");
        }
    }
    differ.into_iter().map(String::from).collect()
}

impl Student {
    fn registered(&self) -> Result<(), StudentError> {
        if self.exists() {
            Ok(())
        } else {
            Err(StudentError::NotFound)
        }
    }

    /// Edits are closed while a review runs, and once approved (a change of enrolment then goes
    /// through reconfirmation).
    fn editable(&self) -> Result<(), StudentError> {
        self.registered()?;
        if self.status == StudentStatus::PendingHeadTeacher || self.in_flight.is_some() {
            return Err(StudentError::Pending);
        }
        if self.status == StudentStatus::Approved {
            return Err(StudentError::AlreadyApproved);
        }
        Ok(())
    }

    async fn register(&mut self, c: Register, sink: &Sink) -> Decided {
        if self.exists() {
            return Err(StudentError::AlreadyRegistered);
        }
        let Register { student_number, pass_id, mobile, password_hash, education_identity, consent, now } = c;
        let event = StudentEvent::Registered {
            student_number: student_number.as_str().to_string(),
            pass_id: pass_id.as_str().to_string(),
            mobile,
            password_hash,
            education_identity,
            consent,
            at: now,
        };
        sink.write(event, self).await;
        Ok(())
    }

    /// Checks a password checked outside (see [`Checked`]); a wrong one counts as a failed
    /// login (and may lock). Returns what the command does when it was right.
    async fn prove<T>(
        &mut self,
        checked: Checked<T>,
        now: DateTime<Utc>,
        sink: &Sink,
    ) -> Result<Option<T>, StudentError> {
        self.registered()?;
        if let Some(until) = self.lockout.locked_at(now) {
            return Err(StudentError::Locked { until });
        }
        if self.password_hash.as_deref() != Some(checked.checked_hash.as_str()) {
            return Err(StudentError::StaleCredentials);
        }
        match checked.check {
            PasswordCheck::Right(then) => Ok(Some(then)),
            PasswordCheck::Wrong => {
                sink.write(StudentEvent::LoginFailed { at: now }, self).await;
                if self.lockout.must_lock(checked.lockout.threshold) {
                    let until = now + checked.lockout.duration;
                    sink.write(StudentEvent::Locked { at: now, until }, self).await;
                }
                Ok(None)
            }
        }
    }

    async fn log_in(&mut self, c: LogIn, sink: &Sink) -> Decided {
        let LogIn { password, now } = c;
        let Some(NewSession { session_id, token_hash, expires_at }) = self.prove(password, now, sink).await? else {
            return Ok(());
        };
        // Logging in withdraws a pending deletion, as for accounts.
        if self.deletion_effective_at.is_some() {
            sink.write(StudentEvent::DeletionCancelled { at: now }, self).await;
        }
        let live: Vec<String> =
            self.sessions.iter().filter(|s| s.expires_at > now).map(|s| s.session_id.clone()).collect();
        for oldest in live.iter().take((live.len() + 1).saturating_sub(MAX_STUDENT_SESSIONS)) {
            sink.write(StudentEvent::SessionEnded { session_id: oldest.clone(), at: now }, self).await;
        }
        sink.write(StudentEvent::SessionStarted { session_id, token_hash, expires_at, at: now }, self).await;
        Ok(())
    }

    async fn request_deletion(&mut self, c: RequestDeletion, sink: &Sink) -> Decided {
        let RequestDeletion { password, now } = c;
        if let Some(effective_at) = self.prove(password, now, sink).await? {
            sink.write(StudentEvent::DeletionRequested { effective_at, at: now }, self).await;
        }
        Ok(())
    }

    async fn cancel_deletion(&mut self, c: CancelDeletion, sink: &Sink) -> Decided {
        self.registered()?;
        if self.deletion_effective_at.is_none() {
            return Err(StudentError::NoDeletionPending);
        }
        sink.write(StudentEvent::DeletionCancelled { at: c.now }, self).await;
        Ok(())
    }

    /// Erases the student once their deletion fell due (refused otherwise: a withdrawn or
    /// carried-out deletion erases nothing).
    async fn erase(&mut self, c: Erase, sink: &Sink) -> Decided {
        let due = self.exists() && (c.reapplied || self.deletion_effective_at.is_some_and(|at| at <= c.now));
        if !due {
            return Err(StudentError::NoDeletionPending);
        }
        sink.write(StudentEvent::Erased { key_version: c.key_version, at: c.now }, self).await;
        Ok(())
    }

    async fn end_session(&mut self, c: EndSession, sink: &Sink) -> Decided {
        self.registered()?;
        if !self.sessions.iter().any(|s| s.session_id == c.session_id) {
            return Err(StudentError::SessionNotFound);
        }
        sink.write(StudentEvent::SessionEnded { session_id: c.session_id, at: c.now }, self).await;
        Ok(())
    }

    async fn edit(&mut self, c: Edit, sink: &Sink) -> Decided {
        self.editable()?;
        let Edit { personal, enrolment, guardian, now } = c;
        // The minor flag is checked against the application as it will be.
        let after_personal = personal.as_ref().or(self.personal.as_ref());
        let after_guardian = guardian.as_ref().or(self.guardian.as_ref());
        if let (Some(p), Some(g)) = (after_personal, after_guardian) {
            let shares = p.id_number.as_deref().is_some_and(|id| id.trim().eq_ignore_ascii_case(g.id_number.trim()));
            if shares && !p.minor_uses_guardian_id {
                return Err(StudentError::MinorFlagRequired);
            }
        }
        if let Some(personal) = personal.filter(|p| Some(p) != self.personal.as_ref()) {
            sink.write(StudentEvent::PersonalEntered { personal, at: now }, self).await;
        }
        if let Some(enrolment) = enrolment.filter(|e| Some(e) != self.enrolment.as_ref()) {
            let stage = enrolment.grade.stage();
            sink.write(StudentEvent::EnrolmentEntered { enrolment, stage, at: now }, self).await;
        }
        if let Some(guardian) = guardian.filter(|g| Some(g) != self.guardian.as_ref()) {
            sink.write(StudentEvent::GuardianEntered { guardian, at: now }, self).await;
        }
        Ok(())
    }

    async fn attach_materials(&mut self, c: AttachMaterials, sink: &Sink) -> Decided {
        self.editable()?;
        let Some(enrolment) = &self.enrolment else {
            return Err(StudentError::EnrolmentRequired);
        };
        let stage = enrolment.grade.stage();
        if c.materials.iter().any(|(m, _)| !stage.materials().contains(m)) {
            return Err(StudentError::MaterialWrongForStage);
        }
        for (material, digest) in c.materials {
            sink.write(StudentEvent::MaterialAttached { material, digest, at: c.now }, self).await;
        }
        Ok(())
    }

    async fn verify_guardian(&mut self, c: VerifyGuardian, sink: &Sink) -> Decided {
        self.registered()?;
        let Some(guardian) = &self.guardian else {
            return Err(StudentError::GuardianMobileMissing);
        };
        // The code proves the mobile it was sent to, and only that one: a guardian's mobile
        // changed since is not verified by it.
        if guardian.mobile != c.mobile {
            return Err(StudentError::StaleCredentials);
        }
        let VerifyGuardian { mobile, consent_version, now } = c;
        sink.write(StudentEvent::GuardianVerified { mobile, consent_version, at: now }, self).await;
        Ok(())
    }

    /// Records a counted submission, once every rule allows it.
    async fn submission(
        &mut self,
        submission_id: String,
        school_filed: bool,
        abandon_before: DateTime<Utc>,
        now: DateTime<Utc>,
        sink: &Sink,
    ) -> Decided {
        if let Some(flight) = self.in_flight.clone() {
            if flight.at >= abandon_before {
                return Err(StudentError::Pending);
            }
            self.void(flight, "abandoned", now, sink).await;
        }
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(StudentError::Incomplete { missing });
        }
        if !self.guardian_is_verified() {
            return Err(StudentError::GuardianNotVerified);
        }
        if !school_filed {
            return Err(StudentError::SchoolNotFiled);
        }
        self.quota_left(now)?;
        sink.write(StudentEvent::Submitted { submission_id, reconfirming_from: None, at: now }, self).await;
        Ok(())
    }

    /// Refuses a submission when the China day's counted submissions are used up.
    fn quota_left(&self, now: DateTime<Utc>) -> Decided {
        let today = cst_date(now);
        if self.submissions_on(today) >= DAILY_SUBMISSIONS {
            let tomorrow = today.succ_opt().unwrap_or(today);
            return Err(StudentError::DailySubmissionsExhausted { next_attempt_at: cst_midnight(tomorrow) });
        }
        Ok(())
    }

    /// Voids a submission (it counts nothing); a reconfirmation's changed enrolment is put
    /// back.
    async fn void(&mut self, flight: InFlight, reason: &str, now: DateTime<Utc>, sink: &Sink) {
        let InFlight { submission_id, reconfirming_from, .. } = flight;
        sink.write(StudentEvent::SubmissionVoided { submission_id, reason: reason.into(), at: now }, self).await;
        if let Some(enrolment) = reconfirming_from {
            let stage = enrolment.grade.stage();
            sink.write(StudentEvent::EnrolmentEntered { enrolment, stage, at: now }, self).await;
        }
    }

    async fn submit(&mut self, c: Submit, sink: &Sink) -> Decided {
        let Submit { submission_id, school_filed, abandon_before, now } = c;
        self.registered()?;
        match self.status {
            StudentStatus::PendingHeadTeacher => return Err(StudentError::Pending),
            StudentStatus::Approved => return Err(StudentError::AlreadyApproved),
            StudentStatus::RegistryFailed if !self.school_acted => return Err(StudentError::SchoolActionRequired),
            _ => {}
        }
        self.submission(submission_id, school_filed, abandon_before, now, sink).await
    }

    /// The outcome of a comparison with `answer` (never "unavailable": callers void or refuse).
    async fn compare(
        &mut self,
        answer: RegistryAnswer,
        review_id: String,
        submitted_at: DateTime<Utc>,
        due_by: NaiveDate,
        now: DateTime<Utc>,
        sink: &Sink,
    ) {
        let school_code = self.enrolment.as_ref().map(|e| e.school_code.clone()).unwrap_or_default();
        let event = match answer {
            RegistryAnswer::Found(record) => {
                let differences = differences(self, &record);
                if differences.is_empty() {
                    StudentEvent::AutoApproved { at: now }
                } else {
                    // The class the student applied for is the one whose head teacher reviews.
                    let (grade, class) = match &self.enrolment {
                        Some(Enrolment { grade, class, .. }) => (*grade, class.clone()),
                        None => (record.grade, record.class.clone()),
                    };
                    StudentEvent::SentToHeadTeacher {
                        review_id,
                        differences,
                        school_code,
                        grade,
                        class,
                        head_teacher_mobile: record.head_teacher_mobile,
                        submitted_at,
                        due_by,
                        at: now,
                    }
                }
            }
            RegistryAnswer::NotFound => {
                StudentEvent::RegistryFailed { error: RegistryError::StudentNumberNotInRegistry, school_code, at: now }
            }
            RegistryAnswer::SchoolNotSynced | RegistryAnswer::Unavailable => {
                StudentEvent::RegistryFailed { error: RegistryError::SchoolNotSynced, school_code, at: now }
            }
        };
        sink.write(event, self).await;
    }

    async fn record_registry_answer(&mut self, c: RecordRegistryAnswer, sink: &Sink) -> Decided {
        let RecordRegistryAnswer { submission_id, answer, review_id, due_by, now } = c;
        let Some(flight) = self.in_flight.clone().filter(|f| f.submission_id == submission_id) else {
            return Err(StudentError::NoSuchSubmission);
        };
        if answer == RegistryAnswer::Unavailable {
            self.void(flight, "registry_unavailable", now, sink).await;
            return Ok(());
        }
        self.compare(answer, review_id, flight.at, due_by, now, sink).await;
        Ok(())
    }

    async fn decide(&mut self, c: Decide, sink: &Sink) -> Decided {
        let Decide { review_id, staff_id, scope, decision, now } = c;
        let Some(review) = self.review.as_ref().filter(|r| r.review_id == review_id) else {
            return Err(if self.status == StudentStatus::PendingHeadTeacher || self.exists() {
                StudentError::NotPending
            } else {
                StudentError::ReviewNotFound
            });
        };
        if !matches!(scope, Scope::HeadTeacher { .. })
            || !scope.covers(&review.school_code, review.grade, &review.class)
        {
            return Err(StudentError::OutOfScope);
        }
        let by = Actor { staff_id, role: scope.role().to_string() };
        let event = match decision {
            Decision::Approve { reason } => StudentEvent::HeadTeacherApproved { review_id, by, reason, at: now },
            Decision::Return { reason } if reason.trim().is_empty() => return Err(StudentError::ReasonRequired),
            Decision::Return { reason } => StudentEvent::Returned { review_id, by, reason, at: now },
        };
        sink.write(event, self).await;
        Ok(())
    }

    async fn recompare(&mut self, c: Recompare, sink: &Sink) -> Decided {
        let Recompare { staff_id, scope, link, answer, review_id, due_by, now } = c;
        self.registered()?;
        let Some(enrolment) = &self.enrolment else {
            return Err(StudentError::OutOfScope);
        };
        if !matches!(scope, Scope::SchoolAdmin { .. }) || !scope.covers(&enrolment.school_code, enrolment.grade, "") {
            return Err(StudentError::OutOfScope);
        }
        if !matches!(self.status, StudentStatus::RegistryFailed | StudentStatus::PendingHeadTeacher) {
            return Err(StudentError::NotPending);
        }
        if answer == RegistryAnswer::Unavailable {
            return Err(StudentError::RegistryUnavailable);
        }
        let by = Actor { staff_id, role: scope.role().to_string() };
        let event = match link {
            Some(number) => StudentEvent::RegistryLinked { by, student_number: number.as_str().to_string(), at: now },
            None => StudentEvent::RegistryRefreshed { by, at: now },
        };
        sink.write(event, self).await;
        self.compare(answer, review_id, now, due_by, now, sink).await;
        Ok(())
    }

    async fn reconfirm(&mut self, c: Reconfirm, sink: &Sink) -> Decided {
        let Reconfirm { enrolment, school_filed, submission_id, semester_start, now } = c;
        self.registered()?;
        if !self.reconfirmation_due(semester_start) {
            return Err(StudentError::ReconfirmationNotDue);
        }
        match enrolment.filter(|e| Some(e) != self.enrolment.as_ref()) {
            None => sink.write(StudentEvent::Reconfirmed { at: now }, self).await,
            Some(enrolment) => {
                // A changed enrolment is a submission like any: counted, then compared (the
                // registry decides; a new stage's materials are not asked for again).
                let stage = enrolment.grade.stage();
                if !school_filed {
                    return Err(StudentError::SchoolNotFiled);
                }
                self.quota_left(now)?;
                if self.in_flight.is_some() {
                    return Err(StudentError::Pending);
                }
                let reconfirming_from = self.enrolment.clone();
                sink.write(StudentEvent::EnrolmentEntered { enrolment, stage, at: now }, self).await;
                sink.write(StudentEvent::Submitted { submission_id, reconfirming_from, at: now }, self).await;
            }
        }
        Ok(())
    }
}

impl Aggregate for Student {
    const TYPE: &'static str = "student";
    type Command = StudentCommand;
    type Event = StudentEvent;
    type Error = StudentError;
    type Services = ();

    async fn handle(&mut self, command: StudentCommand, _: &(), sink: &Sink) -> Decided {
        match command {
            StudentCommand::Register(c) => self.register(c, sink).await,
            StudentCommand::LogIn(c) => self.log_in(c, sink).await,
            StudentCommand::EndSession(c) => self.end_session(c, sink).await,
            StudentCommand::Edit(c) => self.edit(c, sink).await,
            StudentCommand::AttachMaterials(c) => self.attach_materials(c, sink).await,
            StudentCommand::VerifyGuardian(c) => self.verify_guardian(c, sink).await,
            StudentCommand::Submit(c) => self.submit(c, sink).await,
            StudentCommand::RecordRegistryAnswer(c) => self.record_registry_answer(c, sink).await,
            StudentCommand::Decide(c) => self.decide(c, sink).await,
            StudentCommand::Recompare(c) => self.recompare(c, sink).await,
            StudentCommand::Reconfirm(c) => self.reconfirm(c, sink).await,
            StudentCommand::RequestDeletion(c) => self.request_deletion(c, sink).await,
            StudentCommand::CancelDeletion(c) => self.cancel_deletion(c, sink).await,
            StudentCommand::Erase(c) => self.erase(c, sink).await,
        }
    }

    fn apply(&mut self, event: StudentEvent) {
        self.apply_event(event);
    }
}
