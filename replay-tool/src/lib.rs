//! `shenfen-replay`, the auditors' replay tool, as a library (the binary in `main.rs` is a thin
//! clap front end; the benchmark calls [`rebuild`] in-process).
//!
//! It works on either store (`sqlite://PATH` or `postgres://…`), never through the server, and
//! reads the log only with keyset-paginated queries (never cqrs-es's `stream_all_events`,
//! which can stop early without an error).
//!
//! | verb | module | what it does |
//! | --- | --- | --- |
//! | `rebuild [--projection NAME] [--restart]` | [`rebuild`] | replays the log into fresh copies of a read model's tables and swaps them in at the end; resumable |
//! | `history TYPE ID [--json]` | [`history`] | every event of one stream, readable (secrets redacted) |
//! | `state TYPE ID --as-of INSTANT` | [`history`] | the stream's state folded up to an instant, as JSON (secrets redacted) |
//! | `verify` | [`verify`] | checks every stream's keyed hash chain and the seal of the log, names the first broken link of each stream |
//! | `stuck [--payload]` | [`stuck`] | the projections stopped at an event they cannot apply, with that event |
//! | `export --format jsonl [--output FILE]` | [`export`] | every event in global order, one JSON object per line |
//!
//! Exit codes a script can rely on ([`exit`]): `0` success (for `verify`: every chain intact),
//! `1` error (bad arguments, database unreachable, anything unexpected), `2` `verify` found at
//! least one broken chain (or the seal does not hold), `3` `history`/`state` of a stream that
//! has no events, `4` `stuck` found a stuck projection.

pub mod export;
pub mod history;
pub mod progress;
pub mod rebuild;
pub mod stuck;
pub mod verify;

use std::path::Path;

use shenfen_projections::db::{Db, DbError};

/// The exit codes of `shenfen-replay`.
pub mod exit {
    /// Success; for `verify`, every chain is intact.
    pub const OK: u8 = 0;
    /// An error: bad arguments, database unreachable, anything unexpected.
    pub const ERROR: u8 = 1;
    /// `verify` found at least one broken chain.
    pub const BROKEN_CHAIN: u8 = 2;
    /// `history` or `state` of a stream that has no events.
    pub const NO_EVENTS: u8 = 3;
    /// `stuck` found at least one projection stopped at an event.
    pub const STUCK: u8 = 4;
}

/// Why a replay-tool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the SQLite database {0} does not exist")]
    MissingDatabase(String),
    #[error("opening the database: {0}")]
    Open(#[from] DbError),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Audit(#[from] shenfen_projections::audit::AuditError),
    #[error("projection: {0}")]
    Projection(#[from] shenfen_projections::runner::ProjectionError),
    #[error("unknown projection {name} (read models: {known})")]
    UnknownProjection { name: String, known: String },
    #[error("another process is rebuilding {0} (its checkpoint moved under this one)")]
    ConcurrentRebuild(String),
    #[error("another shenfen-replay rebuild is running on this database")]
    RebuildLocked,
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a rebuild task failed: {0}")]
    Task(String),
    #[error("cannot open personal data for the rebuild: {0}")]
    Keys(String),
}

/// Opens the database behind `url` (applying any pending migrations, like the server does).
///
/// A `sqlite://` URL must name an existing file: an auditor who mistypes a path gets an error,
/// not a new empty database.
pub async fn open(url: &str) -> Result<Db, ReplayError> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let file = path.split('?').next().unwrap_or(path);
        if !file.starts_with(':') && !Path::new(file).exists() {
            return Err(ReplayError::MissingDatabase(file.to_string()));
        }
    }
    Ok(Db::open(url, 16).await?)
}

/// The number of events in the log (for progress bars).
pub async fn event_count(db: &Db) -> Result<u64, sqlx::Error> {
    let row: Option<(i64,)> = shenfen_projections::fetch_optional!(db, (i64,), "SELECT count(*) FROM events")?;
    Ok(row.map_or(0, |r| r.0.max(0) as u64))
}
