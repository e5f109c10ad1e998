//! Pass-ID ownership: one stream per pass ID, naming the student it was given to. The event
//! store's key makes a pass ID given at most once (a registration that draws a taken one draws
//! again), and a login by pass ID finds the student without waiting for a read model.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::kind::ErrorKind;

/// Gives the pass ID to a student.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignPassId {
    pub student_id: String,
    pub now: DateTime<Utc>,
}

/// Events of a pass-ID stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PassIdEvent {
    Assigned { student_id: String, at: DateTime<Utc> },
}

impl DomainEvent for PassIdEvent {
    fn event_type(&self) -> String {
        "Assigned".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The pass ID was given to another student already.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("this pass ID is taken")]
pub struct PassIdTaken;

impl PassIdTaken {
    pub fn code(&self) -> &'static str {
        "conflict_retry"
    }

    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Retry
    }
}

/// Who holds a pass ID.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PassIdOwner {
    pub student_id: Option<String>,
}

impl Aggregate for PassIdOwner {
    const TYPE: &'static str = "student_pass_id";
    type Command = AssignPassId;
    type Event = PassIdEvent;
    type Error = PassIdTaken;
    type Services = ();

    async fn handle(&mut self, c: AssignPassId, _: &(), sink: &EventSink<Self>) -> Result<(), PassIdTaken> {
        match &self.student_id {
            Some(owner) if *owner == c.student_id => Ok(()),
            Some(_) => Err(PassIdTaken),
            None => {
                sink.write(PassIdEvent::Assigned { student_id: c.student_id, at: c.now }, self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: PassIdEvent) {
        let PassIdEvent::Assigned { student_id, .. } = event;
        self.student_id = Some(student_id);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;

    #[test]
    fn a_pass_id_is_given_once() {
        let at = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).single().unwrap_or_default();
        let assign = |id: &str| AssignPassId { student_id: id.into(), now: at };
        let assigned = PassIdEvent::Assigned { student_id: "s1".into(), at };
        TestFramework::<PassIdOwner>::with(())
            .given_no_previous_events()
            .when(assign("s1"))
            .then_expect_events(vec![assigned.clone()]);
        TestFramework::<PassIdOwner>::with(())
            .given(vec![assigned.clone()])
            .when(assign("s2"))
            .then_expect_error(PassIdTaken);
        TestFramework::<PassIdOwner>::with(()).given(vec![assigned]).when(assign("s1")).then_expect_events(vec![]);
    }
}
