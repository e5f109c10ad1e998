//! Event metadata: who caused an event, through which request, and when.
//!
//! cqrs-es stores metadata as a `HashMap<String, String>`; these are the keys we write.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// Nobody signed in (registration, login, password reset).
    Anonymous,
    /// The account holder.
    Account { id: String },
    /// A staff member acting in a role.
    Staff { id: String, role: String },
    /// Shenfen itself (imports, scheduled work).
    System { id: String },
    /// The claimant of a re-registration claim (with the claim token), named by the claim.
    Claimant { id: String },
    /// A student (student token), named by the student id.
    Student { id: String },
}

impl Actor {
    /// The actor's kind as written to metadata.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Anonymous => "anonymous",
            Actor::Account { .. } => "account",
            Actor::Staff { .. } => "staff",
            Actor::System { .. } => "system",
            Actor::Claimant { .. } => "claimant",
            Actor::Student { .. } => "student",
        }
    }
}

/// The facts recorded beside every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    pub actor: Actor,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

impl EventMetadata {
    /// The metadata map stored with each event.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        map.insert("actor_kind".to_string(), self.actor.kind().to_string());
        match &self.actor {
            Actor::Account { id } | Actor::System { id } | Actor::Claimant { id } | Actor::Student { id } => {
                map.insert("actor_id".to_string(), id.clone());
            }
            Actor::Staff { id, role } => {
                map.insert("actor_id".to_string(), id.clone());
                map.insert("actor_role".to_string(), role.clone());
            }
            Actor::Anonymous => {}
        }
        map.insert("request_id".to_string(), self.request_id.clone());
        map.insert("at".to_string(), self.at.to_rfc3339_opts(SecondsFormat::Micros, true));
        map
    }
}
