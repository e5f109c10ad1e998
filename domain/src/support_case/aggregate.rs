//! The support case's decisions: `handle` dispatches each command to one private fn; `apply`
//! folds the events (see [`state`](super::state)).

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use super::commands::*;
use super::errors::SupportCaseError;
use super::events::SupportCaseEvent;
use super::state::SupportCase;

type Sink = EventSink<SupportCase>;
type Decided = Result<(), SupportCaseError>;

impl SupportCase {
    async fn open(&mut self, c: OpenCase, sink: &Sink) -> Decided {
        if self.is_opened() {
            return Err(SupportCaseError::AlreadyOpen);
        }
        let OpenCase { kind, applicant, description, photo_handheld, account_id, reply_due_by, now } = c;
        let event = SupportCaseEvent::Opened {
            kind,
            applicant,
            description,
            photo_handheld,
            account_id,
            reply_due_by,
            at: now,
        };
        sink.write(event, self).await;
        Ok(())
    }

    async fn reply(&mut self, c: ReplyToCase, sink: &Sink) -> Decided {
        if !self.is_opened() {
            return Err(SupportCaseError::NotFound);
        }
        let ReplyToCase { message, agent, now } = c;
        sink.write(SupportCaseEvent::Replied { message, agent, at: now }, self).await;
        Ok(())
    }
}

impl Aggregate for SupportCase {
    const TYPE: &'static str = "support_case";
    type Command = SupportCaseCommand;
    type Event = SupportCaseEvent;
    type Error = SupportCaseError;
    type Services = ();

    async fn handle(&mut self, command: SupportCaseCommand, _: &(), sink: &Sink) -> Decided {
        match command {
            SupportCaseCommand::Open(c) => self.open(c, sink).await,
            SupportCaseCommand::Reply(c) => self.reply(c, sink).await,
        }
    }

    fn apply(&mut self, event: SupportCaseEvent) {
        self.apply_event(event);
    }
}
