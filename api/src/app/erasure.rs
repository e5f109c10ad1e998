//! Account deletion (注销) and erasure (PIPL art. 47): the request with the password and its
//! cooling-off period, and the erasure once it falls due — the account stream's `Erased`
//! event, then the data subject's key destroyed (every personal value of the account and its
//! verification stream reads as `[erased]` from then on), the snapshots and the ID photos
//! deleted. What is counted (the analyst tables) stays; the document may register again.
//!
//! The erasure's side effects run twice on purpose: at once, by whoever erased, and by the
//! [`ErasureProcess`] process manager, which runs from its checkpoint after every `Erased`
//! event, so a crash between the event and the key's destruction cannot leave the key alive.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use shenfen_domain::account::{
    Account, AccountCommand, AccountError, AccountEvent, CancelDeletion, Erase, ReapplyErasure, RequestDeletion,
};
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::verification::Photos;
use shenfen_projections::db::{Db, DbTx};
use shenfen_projections::deletions::PendingDeletions;
use shenfen_projections::log::{EventKind, StoredEvent};
use shenfen_projections::pii::Keyring;
use shenfen_projections::runner::{Projection, ProjectionError};
use shenfen_projections::store::{BusError, CommandBus};

use crate::app::password;
use crate::blobs::BlobStore;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Ctx, Holder};
use crate::startup::AppState;

/// Asks for the holder's deletion with their password; returns when it falls due. With no
/// cooling-off period the account is erased before this returns.
pub async fn request(state: &AppState, ctx: &Ctx, holder: &Holder, current: String) -> ApiResult<DateTime<Utc>> {
    let effective_at = ctx.now + chrono::Duration::days(i64::from(state.settings.deletion_cooling_off_days));
    let account = holder.account();
    let checked = password::check_current(state, ctx, account, current, || async { Ok(effective_at) }).await?;
    let command = AccountCommand::RequestDeletion(RequestDeletion { password: checked, now: ctx.now });
    let committed = state
        .accounts
        .execute_from(&holder.account_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    password::refused(&committed.events)?;
    let due = committed.state.deletion_effective_at.unwrap_or(effective_at);
    if due <= ctx.now {
        erase(state, &holder.account_id, ctx.now).await?;
    }
    Ok(due)
}

/// Withdraws the holder's pending deletion.
pub async fn cancel(state: &AppState, ctx: &Ctx, holder: &Holder) -> ApiResult<()> {
    let command = AccountCommand::CancelDeletion(CancelDeletion { now: ctx.now });
    state
        .accounts
        .execute_from(&holder.account_id, Some(holder.loaded.clone()), command, &ctx.meta(holder.actor()))
        .await?;
    Ok(())
}

/// Erases an account whose deletion fell due (nothing when it was withdrawn or is done).
pub async fn erase(state: &AppState, account_id: &str, now: DateTime<Utc>) -> ApiResult<()> {
    let meta = EventMetadata { actor: Actor::System { id: "erasure".into() }, request_id: String::new(), at: now };
    let key_version = state.keyring().latest_version(account_id).await.map_err(ApiError::internal)?;
    let command = AccountCommand::Erase(Erase { key_version, now });
    match state.accounts.execute(account_id, command, &meta).await {
        Ok(_) => {}
        Err(BusError::Domain(AccountError::NoDeletionPending)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let journal = journal_path(&state.settings.secret_key_file);
    forget(state.keyring(), &state.db, &state.blobs, &journal, account_id, key_version, now)
        .await
        .map_err(ApiError::internal)?;
    // This process's copies of the streams are folded again (with nothing left to open).
    let _ = state.accounts.load_uncached(account_id).await;
    let _ = state.verifications.load_uncached(account_id).await;
    Ok(())
}

/// The erasure's side effects, each idempotent: the subject's keys destroyed, the snapshots of
/// its streams and its ID photos deleted; and the same for the support cases about it.
async fn forget(
    keyring: &Keyring,
    db: &Db,
    blobs: &BlobStore,
    journal: &Path,
    account_id: &str,
    key_version: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    destroy_keys(keyring, journal, account_id, key_version, now).await?;
    shenfen_projections::exec!(
        db,
        "DELETE FROM aggregate_snapshots WHERE aggregate_id = $1 AND aggregate_type IN ('account', 'verification')",
        account_id
    )?;
    let stream = shenfen_projections::audit::history(db, "verification", account_id).await?;
    // The photos only (the rest of the event is sealed, its key destroyed).
    let submitted = stream.iter().filter_map(|e| e.payload.get("ApplicationSubmitted")?.get("photos").cloned());
    for photos in submitted.filter_map(|p| serde_json::from_value::<Photos>(p).ok()) {
        for digest in photos.digests() {
            blobs.delete(digest).await?;
        }
    }
    // The support cases about the account, opened by its holder (or by someone claiming to be):
    // their own keys and their photos. Read from the read model, which has them all unless a
    // case was opened in the instant before the erasure.
    for case_id in shenfen_projections::support_cases::about(db, account_id).await? {
        let version = keyring.latest_version(&case_id).await?;
        destroy_keys(keyring, journal, &case_id, version, now).await?;
        let stream = shenfen_projections::audit::history(db, "support_case", &case_id).await?;
        let photos = stream.iter().filter_map(|e| e.payload.get("Opened")?.get("photo_handheld")?.as_str());
        for digest in photos {
            blobs.delete(digest).await?;
        }
    }
    Ok(())
}

/// Destroys `subject`'s keys up to `key_version`, journalled first (see [`journal_path`]).
pub async fn destroy_keys(
    keyring: &Keyring,
    journal: &Path,
    subject: &str,
    key_version: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    record(journal, subject, key_version, now)?;
    keyring.erase(subject, key_version, now).await?;
    Ok(())
}

/// Erases the deletions that fell due at `now` (a failed one is tried again next round).
pub async fn erase_due(state: &AppState, now: DateTime<Utc>) {
    match PendingDeletions::due(&state.db, now, 100).await {
        Ok(due) => {
            for account_id in due {
                if let Err(e) = erase(state, &account_id, now).await {
                    tracing::error!(code = %e.code, "an erasure failed; it is tried again");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "reading the due deletions failed"),
    }
}

/// The erasure journal beside the key file: one JSON line per erasure (`{subject,
/// key_version, at}`), kept and backed up with the key file, not in the database, so that an
/// erasure survives the restore of a database backup taken before it ([`replay_journal`]).
pub fn journal_path(secret_key_file: &Path) -> PathBuf {
    secret_key_file.with_file_name("erasures.log")
}

/// Appends an erasure to the journal (once: a line already there is not written again).
fn record(journal: &Path, subject: &str, key_version: u32, at: DateTime<Utc>) -> anyhow::Result<()> {
    use std::io::Write;
    let line = serde_json::json!({"subject": subject, "key_version": key_version, "at": at}).to_string();
    let known = std::fs::read_to_string(journal).unwrap_or_default();
    if known.lines().any(|l| erasure_of(l).is_some_and(|(s, v, _)| s == subject && v == key_version)) {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(journal)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn erasure_of(line: &str) -> Option<(String, u32, DateTime<Utc>)> {
    let v: Value = serde_json::from_str(line).ok()?;
    let subject = v.get("subject")?.as_str()?.to_string();
    let version = u32::try_from(v.get("key_version")?.as_u64()?).ok()?;
    let at = v.get("at")?.as_str()?.parse().ok()?;
    Some((subject, version, at))
}

/// Destroys again every key the journal names (at start-up): after a database backup from
/// before an erasure is restored, the erased subject's keys are back in `subject_keys`, and
/// this destroys them before anything is served. Where it found a key alive, the restored
/// account stream lacks its `Erased` event too (its password and sessions would be back): the
/// erasure is applied again (`Erased` with `restored_from`), which ends the sessions and makes
/// the side effects run again. Returns how many erasures were replayed.
pub async fn replay_journal(
    keyring: &Keyring,
    accounts: &CommandBus<Account>,
    students: &CommandBus<shenfen_domain::student::Student>,
    journal: &Path,
) -> anyhow::Result<usize> {
    let Ok(text) = std::fs::read_to_string(journal) else { return Ok(0) };
    let mut replayed = 0;
    for (subject, key_version, at) in text.lines().filter_map(erasure_of) {
        if keyring.erase(&subject, key_version, at).await? > 0 {
            let account = accounts.load_uncached(&subject).await?.state;
            if account.exists() && !account.erased {
                let now = Utc::now();
                let meta = EventMetadata {
                    actor: Actor::System { id: "erasure-journal".into() },
                    request_id: String::new(),
                    at: now,
                };
                let command = AccountCommand::ReapplyErasure(ReapplyErasure { key_version, erased_at: at, now });
                accounts.execute(&subject, command, &meta).await?;
                tracing::warn!(account_id = %subject, "an erasure missing from the restored database was applied again");
            }
            let student = students.load_uncached(&subject).await?.state;
            if student.exists() {
                let now = Utc::now();
                let meta = EventMetadata {
                    actor: Actor::System { id: "erasure-journal".into() },
                    request_id: String::new(),
                    at: now,
                };
                let erase = shenfen_domain::student::Erase { key_version, reapplied: true, now };
                students.execute(&subject, shenfen_domain::student::StudentCommand::Erase(erase), &meta).await?;
                tracing::warn!(student_id = %subject, "a student erasure missing from the restored database was applied again");
            }
        }
        replayed += 1;
    }
    Ok(replayed)
}

/// Carries out the erasure's side effects after every `Erased` event (see the module doc).
pub struct ErasureProcess {
    pub keyring: Arc<Keyring>,
    pub db: Db,
    pub blobs: BlobStore,
    pub journal: PathBuf,
}

#[async_trait]
impl Projection for ErasureProcess {
    fn name(&self) -> &'static str {
        "erasure"
    }

    fn wants(&self, e: EventKind<'_>) -> bool {
        (e.aggregate_type == <Account as cqrs_es::Aggregate>::TYPE
            || e.aggregate_type == <shenfen_domain::student::Student as cqrs_es::Aggregate>::TYPE)
            && e.event_type == "Erased"
    }

    async fn apply(&self, _: &mut DbTx, _: &StoredEvent) -> Result<(), ProjectionError> {
        Ok(())
    }

    fn is_process_manager(&self) -> bool {
        true
    }

    async fn handle(&self, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type == <shenfen_domain::student::Student as cqrs_es::Aggregate>::TYPE {
            let Ok(shenfen_domain::student::StudentEvent::Erased { key_version, .. }) =
                serde_json::from_value(e.payload.clone())
            else {
                return Ok(());
            };
            return crate::app::students::forget(
                &self.keyring,
                &self.db,
                &self.blobs,
                &self.journal,
                &e.aggregate_id,
                key_version,
                e.at(),
            )
            .await
            .map_err(|err| ProjectionError::Command(err.to_string()));
        }
        let Ok(AccountEvent::Erased { key_version, .. }) = serde_json::from_value(e.payload.clone()) else {
            return Ok(());
        };
        forget(&self.keyring, &self.db, &self.blobs, &self.journal, &e.aggregate_id, key_version, e.at())
            .await
            .map_err(|err| ProjectionError::Command(err.to_string()))
    }
}
