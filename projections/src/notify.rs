//! The NOTIFY protocol between the processes that share a PostgreSQL database.
//!
//! Every process listens on `shenfen_events`. A process that committed events says so
//! (`TOKEN TX POS`, sent by the appender after the commit) and the others wake their runners;
//! a process that starts listening greets the others (`TOKEN hello`), they answer (`TOKEN
//! here`), and every listener announces itself every [`HEARTBEAT`]. A NOTIFY is itself a
//! transaction with its own commit record, so commits are only announced while another
//! process is known to be listening: [`Peers`] tracks that.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::commits::Commits;
use crate::log::Position;

/// How often a listening process announces itself to the others (one small transaction).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a process counts as present after its last NOTIFY (five heartbeats).
pub const PEER_GRACE: Duration = Duration::from_secs(10);
/// How long after its listener connects a process notifies regardless: it greets the others
/// when it starts listening and they answer at once, and should a greeting or an answer be
/// lost, every peer still announces itself within a [`HEARTBEAT`].
pub const GREETING_GRACE: Duration = Duration::from_secs(3);

/// Whether other processes listen on the database, as far as this one can tell.
#[derive(Debug, Default)]
pub struct Peers {
    state: Mutex<PeerState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PeerState {
    /// Since when this process's own listener has been connected (`None`: it is not).
    listening_since: Option<Instant>,
    /// When another process was last heard from.
    heard: Option<Instant>,
}

impl Peers {
    /// Whether commits must be announced with a NOTIFY: unless this process has been listening
    /// for [`GREETING_GRACE`] and heard no other process for [`PEER_GRACE`]. Without a
    /// listener of its own it cannot tell, and notifies.
    pub fn notify_needed(&self) -> bool {
        self.needed_at(Instant::now())
    }

    fn needed_at(&self, now: Instant) -> bool {
        let state = self.state.lock().map(|s| *s).unwrap_or_default();
        let recent = |at: Instant| now.saturating_duration_since(at) < PEER_GRACE;
        match state.listening_since {
            None => true,
            Some(since) => now.saturating_duration_since(since) < GREETING_GRACE || state.heard.is_some_and(recent),
        }
    }

    /// This process's listener is connected (from `now`).
    pub fn listening(&self, now: Instant) {
        if let Ok(mut s) = self.state.lock() {
            s.listening_since = Some(now);
        }
    }

    /// This process's listener lost its connection.
    pub fn deaf(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.listening_since = None;
        }
    }

    /// Another process was heard from at `now`.
    pub fn heard(&self, now: Instant) {
        if let Ok(mut s) = self.state.lock() {
            s.heard = Some(now);
        }
    }
}

/// Wakes this process's runners whenever another process commits events (this process's own
/// commits wake them directly), and keeps [`Peers`] up to date: the
/// listener greets the others when it connects (they answer at once), announces this process
/// every [`HEARTBEAT`], and any NOTIFY from another process shows that one is there.
pub(crate) async fn listen(pool: sqlx::PgPool, commits: Arc<Commits>) {
    let peers = commits.peers().clone();
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if listener.listen("shenfen_events").await.is_ok() {
                    peers.listening(Instant::now());
                    announce(&pool, Notice::Hello).await;
                    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
                    loop {
                        tokio::select! {
                            _ = heartbeat.tick() => announce(&pool, Notice::Here).await,
                            // `try_recv` (not `recv`, which reconnects silently): a lost
                            // connection may have lost notices, so it ends this listener.
                            received = listener.try_recv() => {
                                let Ok(Some(notification)) = received else { break };
                                let (token, notice) = parse_payload(notification.payload());
                                if token == process_token() {
                                    continue;
                                }
                                peers.heard(Instant::now());
                                let kind = match notice {
                                    Some(Notice::Here) => "here",
                                    Some(Notice::Hello) => {
                                        announce(&pool, Notice::Here).await;
                                        "hello"
                                    }
                                    Some(Notice::Committed(at)) => {
                                        commits.foreign(Some(at));
                                        "committed"
                                    }
                                    None => {
                                        commits.foreign(None);
                                        "committed"
                                    }
                                };
                                metrics::counter!("shenfen_peer_notices_total", "notice" => kind).increment(1);
                            }
                        }
                    }
                }
                peers.deaf();
                // Commits announced while the connection was down are lost: catch up now.
                commits.foreign(None);
                tracing::warn!("LISTEN connection lost; reconnecting");
            }
            Err(err) => tracing::warn!(error = %err, "LISTEN connection failed; projections fall back to polling"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Sends `notice` on `shenfen_events`; a failure only costs the others a poll.
async fn announce(pool: &sqlx::PgPool, notice: Notice) {
    if let Err(err) = send(pool, notice).await {
        tracing::debug!(error = %err, "NOTIFY failed");
    }
}

/// A random name of this process, carried by its NOTIFYs so that it can ignore its own.
pub fn process_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| format!("{:032x}", rand::random::<u128>()))
}

/// Sends `notice` from this process on `shenfen_events`, answering the error.
pub(crate) async fn send(pool: &sqlx::PgPool, notice: Notice) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify('shenfen_events', $1)")
        .bind(payload(process_token(), notice))
        .execute(pool)
        .await
        .map(|_| ())
}

/// What a NOTIFY on `shenfen_events` says, after the sender's process token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The sender committed events, up to this position.
    Committed(Position),
    /// The sender has just started listening (others answer with a [`Notice::Here`]).
    Hello,
    /// The sender is there (its heartbeat, or an answer to a hello).
    Here,
}

/// The payload of a NOTIFY: `TOKEN TX POS`, `TOKEN hello` or `TOKEN here`.
pub fn payload(token: &str, notice: Notice) -> String {
    match notice {
        Notice::Committed(at) => format!("{token} {} {}", at.tx, at.pos),
        Notice::Hello => format!("{token} hello"),
        Notice::Here => format!("{token} here"),
    }
}

/// Reads a payload: the sender's token and what it says. Anything else after the token —
/// nothing at all is what processes of earlier versions send after a commit — counts as a
/// commit at an unknown position (`None`).
pub fn parse_payload(payload: &str) -> (&str, Option<Notice>) {
    let mut parts = payload.split_whitespace();
    let token = parts.next().unwrap_or_default();
    let notice = match (parts.next(), parts.next()) {
        (Some("here"), None) => Some(Notice::Here),
        (Some("hello"), None) => Some(Notice::Hello),
        (Some(tx), Some(pos)) => match (tx.parse(), pos.parse()) {
            (Ok(tx), Ok(pos)) => Some(Notice::Committed(Position { tx, pos })),
            _ => None,
        },
        _ => None,
    };
    (token, notice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_process_stops_notifying_after_the_grace_period() {
        let peers = Peers::default();
        let t0 = Instant::now();
        assert!(peers.needed_at(t0), "without a listener it cannot tell");
        peers.listening(t0);
        assert!(peers.needed_at(t0 + Duration::from_secs(1)), "peers answer the greeting");
        assert!(!peers.needed_at(t0 + GREETING_GRACE + Duration::from_secs(1)));
        peers.heard(t0 + Duration::from_secs(40));
        assert!(peers.needed_at(t0 + Duration::from_secs(41)));
        assert!(peers.needed_at(t0 + Duration::from_secs(40) + PEER_GRACE - Duration::from_millis(1)));
        assert!(!peers.needed_at(t0 + Duration::from_secs(40) + PEER_GRACE + Duration::from_secs(1)));
        peers.deaf();
        assert!(peers.needed_at(t0 + Duration::from_secs(200)), "a lost listener means notifying again");
    }

    #[test]
    fn payloads_round_trip() {
        for notice in [Notice::Committed(Position { tx: 781, pos: 12 }), Notice::Hello, Notice::Here] {
            assert_eq!(parse_payload(&payload("abc", notice)), ("abc", Some(notice)));
        }
        assert_eq!(parse_payload("abc 1 x"), ("abc", None));
        assert_eq!(parse_payload("abc what"), ("abc", None));
        assert_eq!(parse_payload("abc"), ("abc", None), "an earlier version's commit notice");
    }
}
