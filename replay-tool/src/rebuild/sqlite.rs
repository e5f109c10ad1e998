//! The SQLite side of a rebuild: the paged reader of the live log, and the swap of the
//! rebuilt tables from the sidecar file into the live database.

use shenfen_projections::db::Db;
use shenfen_projections::log::{self, Position};
use shenfen_projections::runner::Projection;
use sqlx::{Connection, Executor, SqlitePool};

use crate::ReplayError;

use super::Reader;

/// The SQLite reader: keyset pages of `batch_size` with [`log::read_for_projections`].
pub(super) async fn read_pages(
    live: &Db,
    mut after: Position,
    batch_size: i64,
    stop_after: Option<u64>,
    reader: &mut Reader<'_>,
) -> Result<(), sqlx::Error> {
    while stop_after.is_none_or(|n| reader.read < n) {
        let events = log::read_for_projections(live, after, batch_size).await?;
        let Some(last) = events.last() else { break };
        after = last.position();
        if !reader.dispatch(events).await {
            break;
        }
    }
    Ok(())
}

pub(super) async fn swap_sqlite(
    live: &SqlitePool,
    sidecar: &std::path::Path,
    projection: &dyn Projection,
    at: Position,
) -> Result<(), ReplayError> {
    let mut conn = live.acquire().await?;
    sqlx::query("ATTACH DATABASE $1 AS rebuild")
        .bind(sidecar.to_string_lossy().into_owned())
        .execute(&mut *conn)
        .await?;
    let swapped = async {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for &t in projection.tables() {
            let columns: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_table_info($1, 'rebuild') ORDER BY cid")
                    .bind(t)
                    .fetch_all(&mut *tx)
                    .await?;
            let columns = columns.into_iter().map(|(c,)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
            tx.execute(format!("DELETE FROM main.{t}").as_str()).await?;
            tx.execute(format!("INSERT INTO main.{t} ({columns}) SELECT {columns} FROM rebuild.{t}").as_str()).await?;
        }
        sqlx::query(
            "INSERT INTO main.projection_checkpoints (projection, transaction_id, position, updated_at)
             VALUES ($1, $2, $3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             ON CONFLICT (projection) DO UPDATE SET transaction_id = excluded.transaction_id,
                 position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(projection.name())
        .bind(at.tx)
        .bind(at.pos)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
    .await;
    // Never hand the connection back to the pool with the sidecar attached.
    let detached = sqlx::query("DETACH DATABASE rebuild").execute(&mut *conn).await;
    if detached.is_err() {
        let _ = conn.close().await;
    }
    swapped?;
    Ok(())
}
