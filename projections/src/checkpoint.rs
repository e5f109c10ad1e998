//! Checkpoints: where each projection stands in the log (`projection_checkpoints`), moved only
//! by compare-and-set on the old position, and where a projection is stuck. The runner and the
//! replay tool's rebuild read, create and advance them here and nowhere else.

use chrono::{DateTime, Utc};

use crate::db::{Db, DbTx};
use crate::log::{self, Position, StoredEvent};
use crate::runner::{Projection, ProjectionError};

/// The checkpoint of one projection (the start of the log when it has none yet).
pub async fn read(db: &Db, name: &str) -> Result<Position, sqlx::Error> {
    Ok(find(db, name).await?.unwrap_or_default())
}

/// The checkpoint of one projection, `None` when it has none.
pub async fn find(db: &Db, name: &str) -> Result<Option<Position>, sqlx::Error> {
    crate::fetch_optional!(
        db,
        Position,
        "SELECT transaction_id AS tx, position AS pos FROM projection_checkpoints WHERE projection = $1",
        name
    )
}

/// Creates the checkpoint of a projection, at the start of the log, unless it has one.
pub async fn ensure(db: &Db, name: &str) -> Result<(), sqlx::Error> {
    crate::exec!(
        db,
        "INSERT INTO projection_checkpoints (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING",
        name
    )?;
    Ok(())
}

const ADVANCE: &str =
    "UPDATE projection_checkpoints SET transaction_id = $1, position = $2, updated_at = CURRENT_TIMESTAMP
  WHERE projection = $3 AND transaction_id = $4 AND position = $5";

/// Moves the checkpoint of `name` from `from` to `to` inside `tx`. `false`: it was not at
/// `from` (another runner moved it), and nothing changed.
pub async fn advance_in(tx: &mut DbTx, name: &str, from: Position, to: Position) -> Result<bool, sqlx::Error> {
    Ok(crate::exec!(tx tx, ADVANCE, to.tx, to.pos, name, from.tx, from.pos)? == 1)
}

/// Moves the checkpoint of `name` from `from` to `to` on its own (a position reached through
/// events the projection does not want). `false`: it was not at `from`.
pub async fn advance(db: &Db, name: &str, from: Position, to: Position) -> Result<bool, sqlx::Error> {
    Ok(crate::exec!(db, ADVANCE, to.tx, to.pos, name, from.tx, from.pos)? == 1)
}

/// Applies a batch of events the projection wants and moves its checkpoint from `from` to `to`
/// (the batch's last event), in one transaction. The checkpoint is claimed first: on SQLite
/// that takes the write lock before any read-model write, and a runner that lost a race
/// affects no row. `false`: the checkpoint was not at `from`, and nothing was applied.
pub async fn apply_batch(
    db: &Db,
    projection: &dyn Projection,
    from: Position,
    to: Position,
    wanted: &[&StoredEvent],
) -> Result<bool, ProjectionError> {
    let mut tx = db.begin().await?;
    // A read model is made again from the log: its batch need not wait for the disk.
    tx.commit_asynchronously().await?;
    if !advance_in(&mut tx, projection.name(), from, to).await? {
        return Ok(false);
    }
    projection.apply_batch(&mut tx, wanted).await?;
    tx.commit().await?;
    Ok(true)
}

/// Most events counted by [`lag`]; a projection further behind reports this.
pub const LAG_CAP: i64 = 100_000;

/// How many events a projection has still to read: those readable after its checkpoint, in the
/// order it reads them (up to [`LAG_CAP`]). Zero means caught up with everything committed.
pub async fn lag(db: &Db, name: &str) -> Result<i64, sqlx::Error> {
    log::unread(db, read(db, name).await?, LAG_CAP).await
}

/// A projection that stopped at one event: where, since when, why (see [`stuck`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stuck {
    pub projection: String,
    pub since: DateTime<Utc>,
    /// The event it fails on (`exact`), or, when the error names none, the position after
    /// which the batch that fails starts.
    pub tx: i64,
    pub pos: i64,
    pub exact: bool,
    pub error: String,
}

/// The projections that are stuck now.
pub async fn stuck(db: &Db) -> Result<Vec<Stuck>, sqlx::Error> {
    crate::fetch_all!(
        db,
        Stuck,
        "SELECT projection, stuck_since AS since, stuck_tx AS tx, stuck_pos AS pos, stuck_exact AS exact,
                stuck_error AS error
           FROM projection_checkpoints WHERE stuck_since IS NOT NULL ORDER BY projection"
    )
}

/// Records that `name` is stuck at `at` (the event itself when `exact`), with the error as
/// operators may see it; `stuck_since` keeps the first time.
pub async fn mark_stuck(db: &Db, name: &str, at: Position, exact: bool, error: &str) -> Result<(), sqlx::Error> {
    crate::exec!(
        db,
        "UPDATE projection_checkpoints SET stuck_since = COALESCE(stuck_since, $1), stuck_tx = $2, stuck_pos = $3,
                stuck_exact = $4, stuck_error = $5 WHERE projection = $6",
        Utc::now(),
        at.tx,
        at.pos,
        exact,
        error,
        name
    )?;
    Ok(())
}

/// `name` moved past the event it was stuck at.
pub async fn clear_stuck(db: &Db, name: &str) -> Result<(), sqlx::Error> {
    crate::exec!(
        db,
        "UPDATE projection_checkpoints SET stuck_since = NULL, stuck_tx = NULL, stuck_pos = NULL, stuck_exact = NULL,
                stuck_error = NULL WHERE projection = $1",
        name
    )?;
    Ok(())
}
