//! `account_view`: one row per account, for operators and analysts. Holds only masked
//! document numbers and contact (PIPL).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shenfen_domain::account::{Account, AccountEvent, RealNameStatus};
use shenfen_domain::shared::mask::{mask_document, mask_email, mask_mobile};

use crate::db::{Db, DbTx};
use crate::log::{EventKind, StoredEvent};
use crate::runner::{BulkApply, Projection, ProjectionError};

/// The projection.
pub struct AccountView;

impl AccountView {
    /// The projection's name.
    pub const NAME: &'static str = "account_view";
}

#[async_trait]
impl Projection for AccountView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        e.aggregate_type == "account"
            && matches!(
                e.event_type,
                "Registered"
                    | "LegacyImported"
                    | "Reregistered"
                    | "ProfileCompleted"
                    | "ProfileEdited"
                    | "WechatBound"
                    | "WechatUnbound"
                    | "RealNameStatusChanged"
                    | "VerifiedIdentityApplied"
                    | "ContactChangedBySupport"
                    | "CorrectedBySupport"
                    | "Erased"
            )
    }

    fn tables(&self) -> &'static [&'static str] {
        &["account_view"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_batch(tx, &[e]).await
    }

    /// Loads the rows the batch touches, folds the events over them in memory, and writes the
    /// changed rows back with multi-row upserts: a few statements per batch, not one per event.
    async fn apply_batch(&self, tx: &mut DbTx, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        let events: Vec<&StoredEvent> =
            events.iter().copied().filter(|e| e.aggregate_type == <Account as cqrs_es::Aggregate>::TYPE).collect();
        let mut ids: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows: HashMap<String, Option<ViewRow>> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            for row in load_rows(tx, chunk).await? {
                rows.insert(row.account_id.clone(), Some(row));
            }
        }
        let mut changed: Vec<String> = Vec::new();
        for e in &events {
            let event = AccountEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
            let row = rows.entry(e.aggregate_id.clone()).or_insert(None);
            if fold(row, &e.aggregate_id, event, e.at()) {
                changed.push(e.aggregate_id.clone());
            }
        }
        changed.sort_unstable();
        changed.dedup();
        let dirty: Vec<&ViewRow> = changed.iter().filter_map(|id| rows.get(id).and_then(Option::as_ref)).collect();
        for chunk in dirty.chunks(CHUNK) {
            store_rows(tx, chunk).await?;
        }
        Ok(())
    }

    fn bulk(&self, max_rows: usize) -> Option<Box<dyn BulkApply>> {
        Some(Box::new(Bulk { rows: HashMap::new(), dirty: 0, max_rows: max_rows.max(1), complete: None }))
    }
}

/// The rebuild mode: rows stay in memory across batches (up to about `max_rows`, beyond which
/// the clean ones are dropped) and the changed ones are written only at a flush.
struct Bulk {
    rows: HashMap<String, Cached>,
    /// How many of `rows` are dirty.
    dirty: usize,
    max_rows: usize,
    /// Whether every row of the table is in `rows`, so that an account not in `rows` has no
    /// row: true when the table was found empty and nothing has been dropped since. Checked at
    /// the first batch.
    complete: Option<bool>,
}

/// One account in memory: its row (none yet), whether it changed since the last flush, and
/// whether the table has a row for it.
struct Cached {
    row: Option<ViewRow>,
    dirty: bool,
    stored: bool,
}

impl Bulk {
    /// Drops the clean rows.
    fn evict(&mut self) {
        let before = self.rows.len();
        self.rows.retain(|_, c| c.dirty);
        if self.rows.len() != before {
            self.complete = Some(false);
        }
    }
}

#[async_trait]
impl BulkApply for Bulk {
    async fn apply(&mut self, db: &Db, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        let events: Vec<&StoredEvent> =
            events.iter().copied().filter(|e| e.aggregate_type == <Account as cqrs_es::Aggregate>::TYPE).collect();
        if self.complete.is_none() {
            let any = crate::fetch_optional!(db, (String,), "SELECT account_id FROM account_view LIMIT 1")?;
            self.complete = Some(any.is_none());
        }
        if self.rows.len() > self.max_rows {
            self.evict();
        }
        let mut missing: Vec<&str> =
            events.iter().map(|e| e.aggregate_id.as_str()).filter(|id| !self.rows.contains_key(*id)).collect();
        missing.sort_unstable();
        missing.dedup();
        if self.complete != Some(true) {
            for chunk in missing.chunks(CHUNK) {
                for row in load_rows_from(db, chunk).await? {
                    self.rows.insert(row.account_id.clone(), Cached { row: Some(row), dirty: false, stored: true });
                }
            }
        }
        for id in missing {
            self.rows.entry(id.to_string()).or_insert(Cached { row: None, dirty: false, stored: false });
        }
        for e in events {
            let event = AccountEvent::deserialize(&e.payload).map_err(|err| ProjectionError::decode(e, err))?;
            let Some(cached) = self.rows.get_mut(e.aggregate_id.as_str()) else { continue };
            if fold(&mut cached.row, &e.aggregate_id, event, e.at()) && !cached.dirty {
                cached.dirty = true;
                self.dirty += 1;
            }
        }
        Ok(())
    }

    fn dirty(&self) -> usize {
        self.dirty
    }

    /// Rows the table does not have yet are written with `COPY … FROM STDIN` on PostgreSQL,
    /// the others with the multi-row upsert.
    async fn flush(&mut self, tx: &mut DbTx) -> Result<(), ProjectionError> {
        let mut fresh: Vec<&ViewRow> = Vec::new();
        let mut known: Vec<&ViewRow> = Vec::new();
        for cached in self.rows.values().filter(|c| c.dirty) {
            if let Some(row) = &cached.row {
                if cached.stored {
                    known.push(row)
                } else {
                    fresh.push(row)
                }
            }
        }
        fresh.sort_unstable_by(|a, b| a.account_id.cmp(&b.account_id));
        known.sort_unstable_by(|a, b| a.account_id.cmp(&b.account_id));
        if let DbTx::Postgres(c) = tx {
            copy_rows(c, &fresh).await?;
            fresh.clear();
        }
        for chunk in fresh.chunks(CHUNK).chain(known.chunks(CHUNK)) {
            store_rows(tx, chunk).await?;
        }
        Ok(())
    }

    fn flushed(&mut self) {
        for cached in self.rows.values_mut() {
            if cached.dirty && cached.row.is_some() {
                cached.stored = true;
            }
            cached.dirty = false;
        }
        self.dirty = 0;
        if self.rows.len() > self.max_rows {
            self.evict();
        }
    }
}

/// Rows per statement (13 parameters each, within both backends' limits).
const CHUNK: usize = 500;

const COLUMNS: &str = "account_id, document_type, document_number_masked, name, profile_complete, real_name_status, \
     legacy, email_masked, mobile_masked, wechat_bound, registered_at, updated_at, gender";

/// A whole row, as folded in memory.
#[derive(Debug, Clone, sqlx::FromRow)]
struct ViewRow {
    account_id: String,
    document_type: String,
    document_number_masked: String,
    name: String,
    profile_complete: bool,
    real_name_status: String,
    legacy: bool,
    email_masked: Option<String>,
    mobile_masked: Option<String>,
    wechat_bound: bool,
    registered_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    gender: Option<String>,
}

fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn load_rows(tx: &mut DbTx, ids: &[&str]) -> Result<Vec<ViewRow>, sqlx::Error> {
    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!("SELECT {COLUMNS} FROM account_view WHERE account_id IN ({})", list.join(", "));
    match tx {
        DbTx::Postgres(c) => {
            let mut q = sqlx::query_as::<_, ViewRow>(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(&mut **c).await
        }
        DbTx::Sqlite(c) => {
            let mut q = sqlx::query_as::<_, ViewRow>(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(&mut **c).await
        }
    }
}

/// Like [`load_rows`], on the pool.
async fn load_rows_from(db: &Db, ids: &[&str]) -> Result<Vec<ViewRow>, sqlx::Error> {
    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!("SELECT {COLUMNS} FROM account_view WHERE account_id IN ({})", list.join(", "));
    match db {
        Db::Postgres(p) => {
            let mut q = sqlx::query_as::<_, ViewRow>(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(p).await
        }
        Db::Sqlite(p) => {
            let mut q = sqlx::query_as::<_, ViewRow>(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(p).await
        }
    }
}

macro_rules! bind_row {
    ($q:expr, $r:expr) => {
        $q.bind(&$r.account_id)
            .bind(&$r.document_type)
            .bind(&$r.document_number_masked)
            .bind(&$r.name)
            .bind($r.profile_complete)
            .bind(&$r.real_name_status)
            .bind($r.legacy)
            .bind(&$r.email_masked)
            .bind(&$r.mobile_masked)
            .bind($r.wechat_bound)
            .bind($r.registered_at)
            .bind($r.updated_at)
            .bind(&$r.gender)
    };
}

async fn store_rows(tx: &mut DbTx, rows: &[&ViewRow]) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO account_view ({COLUMNS}) VALUES {}
         ON CONFLICT (account_id) DO UPDATE SET document_type = excluded.document_type,
             document_number_masked = excluded.document_number_masked, name = excluded.name,
             profile_complete = excluded.profile_complete, real_name_status = excluded.real_name_status,
             legacy = excluded.legacy, email_masked = excluded.email_masked, mobile_masked = excluded.mobile_masked,
             wechat_bound = excluded.wechat_bound, registered_at = excluded.registered_at,
             updated_at = excluded.updated_at, gender = excluded.gender",
        placeholders(rows.len(), 13)
    );
    match tx {
        DbTx::Postgres(c) => {
            let mut q = sqlx::query(&sql);
            for r in rows {
                q = bind_row!(q, r);
            }
            q.execute(&mut **c).await?;
        }
        DbTx::Sqlite(c) => {
            let mut q = sqlx::query(&sql);
            for r in rows {
                q = bind_row!(q, r);
            }
            q.execute(&mut **c).await?;
        }
    }
    Ok(())
}

/// Writes rows the table does not have with one `COPY … FROM STDIN (FORMAT binary)`, encoding
/// every value as sqlx binds it.
async fn copy_rows(conn: &mut sqlx::PgConnection, rows: &[&ViewRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    fn text(buf: &mut Vec<u8>, value: Option<&str>) {
        match value {
            Some(v) => {
                buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
                buf.extend_from_slice(v.as_bytes());
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    fn boolean(buf: &mut Vec<u8>, value: bool) {
        buf.extend_from_slice(&1i32.to_be_bytes());
        buf.push(u8::from(value));
    }
    fn timestamp(buf: &mut Vec<u8>, value: DateTime<Utc>) -> Result<(), sqlx::Error> {
        let epoch = DateTime::<Utc>::from_timestamp(PG_EPOCH_SECONDS, 0).unwrap_or_default();
        let micros = (value - epoch)
            .num_microseconds()
            .ok_or_else(|| sqlx::Error::Encode(format!("{value} is out of PostgreSQL's range").into()))?;
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&micros.to_be_bytes());
        Ok(())
    }
    const FLUSH_AT: usize = 1 << 20;
    let mut copy = conn.copy_in_raw(&format!("COPY account_view ({COLUMNS}) FROM STDIN (FORMAT binary)")).await?;
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 4096);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for r in rows {
        buf.extend_from_slice(&13i16.to_be_bytes());
        text(&mut buf, Some(&r.account_id));
        text(&mut buf, Some(&r.document_type));
        text(&mut buf, Some(&r.document_number_masked));
        text(&mut buf, Some(&r.name));
        boolean(&mut buf, r.profile_complete);
        text(&mut buf, Some(&r.real_name_status));
        boolean(&mut buf, r.legacy);
        text(&mut buf, r.email_masked.as_deref());
        text(&mut buf, r.mobile_masked.as_deref());
        boolean(&mut buf, r.wechat_bound);
        timestamp(&mut buf, r.registered_at)?;
        timestamp(&mut buf, r.updated_at)?;
        text(&mut buf, r.gender.as_deref());
        if buf.len() >= FLUSH_AT {
            copy.send(std::mem::replace(&mut buf, Vec::with_capacity(FLUSH_AT + 4096))).await?;
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf).await?;
    copy.finish().await?;
    Ok(())
}

/// PostgreSQL's epoch (2000-01-01) in Unix seconds.
const PG_EPOCH_SECONDS: i64 = 946_684_800;

/// Applies one event to an account's row; returns whether the row changed.
fn fold(row: &mut Option<ViewRow>, id: &str, event: AccountEvent, at: DateTime<Utc>) -> bool {
    let unverified = RealNameStatus::Unverified.as_str().to_string();
    match event {
        AccountEvent::Registered { document_type, document_number, name, email, mobile, registered_at, .. } => {
            let gender = row.as_ref().and_then(|r| r.gender.clone());
            *row = Some(ViewRow {
                account_id: id.to_string(),
                document_type: document_type.as_str().into(),
                document_number_masked: mask_document(document_number.as_str()),
                name: name.as_str().into(),
                profile_complete: false,
                real_name_status: unverified,
                legacy: false,
                email_masked: Some(mask_email(email.as_str())),
                mobile_masked: Some(mask_mobile(mobile.as_str())),
                wechat_bound: false,
                registered_at,
                updated_at: at,
                gender,
            });
            return true;
        }
        AccountEvent::LegacyImported { document_type, document_number, name, registered_at } => {
            if row.is_some() {
                return false;
            }
            *row = Some(ViewRow {
                account_id: id.to_string(),
                document_type: document_type.as_str().into(),
                document_number_masked: mask_document(document_number.as_str()),
                name: name.as_str().into(),
                profile_complete: false,
                real_name_status: unverified,
                legacy: true,
                email_masked: None,
                mobile_masked: None,
                wechat_bound: false,
                registered_at,
                updated_at: at,
                gender: None,
            });
            return true;
        }
        _ => {}
    }
    let Some(r) = row.as_mut() else { return false };
    match event {
        AccountEvent::Reregistered { name, email, mobile, .. } => {
            r.name = name.as_str().into();
            r.email_masked = Some(mask_email(email.as_str()));
            r.mobile_masked = Some(mask_mobile(mobile.as_str()));
            r.real_name_status = unverified;
            r.legacy = false;
        }
        AccountEvent::ProfileCompleted { profile, .. } => {
            r.profile_complete = true;
            r.gender = profile.gender.map(|g| g.as_str().to_string());
        }
        AccountEvent::ProfileEdited { email: Some(email), .. } => r.email_masked = Some(mask_email(email.as_str())),
        AccountEvent::WechatBound { .. } => r.wechat_bound = true,
        AccountEvent::WechatUnbound { .. } => r.wechat_bound = false,
        AccountEvent::RealNameStatusChanged { status, .. } => r.real_name_status = status.as_str().into(),
        AccountEvent::VerifiedIdentityApplied { name: Some(name), .. } => r.name = name.as_str().into(),
        AccountEvent::ContactChangedBySupport { mobile, email, .. } if mobile.is_some() || email.is_some() => {
            if let Some(mobile) = mobile {
                r.mobile_masked = Some(mask_mobile(mobile.as_str()));
            }
            if let Some(email) = email {
                r.email_masked = Some(mask_email(email.as_str()));
            }
        }
        // Nothing of the person stays in the row (the document may register again).
        AccountEvent::Erased { .. } => {
            let erased = shenfen_domain::shared::ERASED.to_string();
            *r = ViewRow {
                name: erased.clone(),
                document_number_masked: erased,
                profile_complete: false,
                real_name_status: unverified,
                email_masked: None,
                mobile_masked: None,
                wechat_bound: false,
                gender: None,
                ..r.clone()
            };
        }
        AccountEvent::CorrectedBySupport { gender, name, .. } if gender.is_some() || name.is_some() => {
            if let Some(name) = name {
                r.name = name.as_str().into();
            }
            if let Some(gender) = gender {
                r.gender = Some(gender.as_str().into());
            }
        }
        _ => return false,
    }
    r.updated_at = at;
    true
}
