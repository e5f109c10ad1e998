//! The PostgreSQL side of a rebuild: the COPY reader of the live log, and the swap of the
//! rebuilt tables into the live schema.

use shenfen_projections::log::{self, Position};
use shenfen_projections::runner::Projection;
use sqlx::{Connection, Executor, PgPool};

use crate::ReplayError;

use super::{Reader, SCHEMA};

/// Events per COPY statement of the PostgreSQL reader.
const COPY_PAGE: u64 = 50_000;

/// The PostgreSQL reader: pages of [`COPY_PAGE`] events with [`log::copy_for_projections`],
/// streamed into batches of `batch_size`, on a connection of its own (a COPY left unfinished,
/// because an applier failed, closes it rather than handing it back to the pool).
pub(super) async fn read_copy(
    pool: &PgPool,
    mut after: Position,
    batch_size: i64,
    stop_after: Option<u64>,
    decode: log::Decode,
    reader: &mut Reader<'_>,
) -> Result<(), sqlx::Error> {
    let batch_size = batch_size.clamp(1, i64::from(i32::MAX)) as usize;
    let mut conn = pool.acquire().await?.detach();
    loop {
        let limit = COPY_PAGE.min(stop_after.map_or(u64::MAX, |n| n.saturating_sub(reader.read)));
        if limit == 0 {
            break;
        }
        let mut page = log::copy_for_projections(&mut conn, after, limit as i64).await?.decoding_only(decode.clone());
        let mut batch = Vec::with_capacity(batch_size);
        let mut got = 0u64;
        while let Some(event) = page.next().await? {
            got += 1;
            after = event.position();
            batch.push(event);
            if batch.len() == batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                if !reader.dispatch(full).await {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() && !reader.dispatch(batch).await {
            return Ok(());
        }
        if got < limit {
            break;
        }
    }
    conn.close().await
}

/// The part of an index definition that does not name it or its table: whether it is unique,
/// and what follows `USING`.
pub(super) fn index_shape(definition: &str) -> (bool, &str) {
    let unique = definition.starts_with("CREATE UNIQUE INDEX");
    let rest = definition.split_once(" USING ").map_or(definition, |(_, rest)| rest);
    (unique, rest)
}

pub(super) async fn swap_postgres(
    live: &PgPool,
    schema: &str,
    projection: &dyn Projection,
    at: Position,
) -> Result<(), ReplayError> {
    let mut tx = live.begin().await?;
    // Waits for a running server's batch on these tables, but not forever.
    tx.execute("SET LOCAL lock_timeout = '60s'").await?;
    for &t in projection.tables() {
        const INDEXES: &str = "SELECT indexname::text, indexdef FROM pg_indexes
                                WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname";
        let old: Vec<(String, String)> = sqlx::query_as(INDEXES).bind(schema).bind(t).fetch_all(&mut *tx).await?;
        let mut new: Vec<(String, String)> = sqlx::query_as(INDEXES).bind(SCHEMA).bind(t).fetch_all(&mut *tx).await?;
        // Written to the WAL now, once, before the live table is locked.
        tx.execute(format!("ALTER TABLE {SCHEMA}.{t} SET LOGGED").as_str()).await?;
        tx.execute(format!("DROP TABLE {schema}.{t}").as_str()).await?;
        tx.execute(format!("ALTER TABLE {SCHEMA}.{t} SET SCHEMA {schema}").as_str()).await?;
        // `LIKE … INCLUDING ALL` names indexes after their columns; give them their migration
        // names back, so that later migrations find them.
        for (old_name, old_def) in &old {
            let Some(i) = new.iter().position(|(_, def)| index_shape(def) == index_shape(old_def)) else { continue };
            let (new_name, _) = new.remove(i);
            if new_name != *old_name {
                tx.execute(format!("ALTER INDEX {schema}.\"{new_name}\" RENAME TO \"{old_name}\"").as_str()).await?;
            }
        }
    }
    sqlx::query(&format!(
        "INSERT INTO {schema}.projection_checkpoints (projection, transaction_id, position, updated_at)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (projection) DO UPDATE SET transaction_id = excluded.transaction_id,
             position = excluded.position, updated_at = excluded.updated_at"
    ))
    .bind(projection.name())
    .bind(at.tx)
    .bind(at.pos)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("DELETE FROM {SCHEMA}.projection_checkpoints WHERE projection = $1"))
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_shapes_ignore_the_index_and_table_names() {
        let old = "CREATE INDEX review_queue_pending ON public.review_queue USING btree (due_by, submitted_at) WHERE (status = 'pending'::text)";
        let new = "CREATE INDEX review_queue_due_by_submitted_at_idx ON shenfen_rebuild.review_queue USING btree (due_by, submitted_at) WHERE (status = 'pending'::text)";
        assert_eq!(index_shape(old), index_shape(new));
        let unique = "CREATE UNIQUE INDEX x ON public.review_queue USING btree (due_by, submitted_at) WHERE (status = 'pending'::text)";
        assert_ne!(index_shape(old), index_shape(unique));
    }
}
