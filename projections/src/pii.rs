//! Personal data in the log, sealed under its data subject's key (crypto-shredding).
//!
//! Every string held under a personal member name ([`PERSONAL`]: names, document and permit
//! numbers, mobiles, e-mails, openids, birth dates, a support case's description), wherever it
//! sits in an event payload or a snapshot, is stored as `enc:VERSION:BASE64` — ChaCha20-Poly1305
//! under a key of its own data subject (the stream's id: an account and its verification stream
//! share the account's key; a claim, a support case, a staff member have their own), with the
//! subject and the key version as associated data, so a sealed value cannot be moved to another
//! subject. The hash chain covers what is stored, the sealed text.
//!
//! Subject keys live in `subject_keys`, outside the events, each wrapped (ChaCha20-Poly1305
//! again) by a master key ([`master_keys`](crate::master_keys): derived from the server's key
//! file until a master key file is made, and rotated with `shenfen-replay master-key`). Erasing a subject destroys its
//! keys: its sealed values can never be opened again, and every reader gets [`ERASED`] in their
//! place, while the events, their hashes and their non-personal members (types, dates,
//! statuses, which the analyst tables count) stay. A subject registered again after an erasure
//! gets the next key version.
//!
//! Values written before sealing existed (plain strings) are read as they are: opening only
//! touches `enc:` values.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::Value;

pub use shenfen_domain::shared::ERASED;

use crate::db::Db;
use crate::master_keys::MasterKeys;

/// The member names that hold personal data, wherever they appear.
pub const PERSONAL: [&str; 17] = [
    "name",
    "document_number",
    "own_document_number",
    "mobile",
    "email",
    "openid",
    "wechat_openid",
    "birth_date",
    "local_id_number",
    "permit_number",
    "description",
    "destination",
    // A support agent's reply, which may name the person.
    "message",
    // A student's and their guardian's.
    "id_number",
    "address",
    "student_number",
    "head_teacher_mobile",
];

/// The prefix of a sealed value.
const SEALED: &str = "enc:";

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("subject keys: {0}")]
    Store(#[from] sqlx::Error),
    #[error("a subject key does not unwrap: the key file is not the one it was wrapped with")]
    Unwrap,
    #[error(
        "subject keys are wrapped under the master key(s) {0:?}, which this process does not hold \
         (SHENFEN_MASTER_KEY_FILE must list them until `shenfen-replay master-key rewrap` has run)"
    )]
    MissingMasters(Vec<String>),
}

/// Keys by subject and version (`None`: erased), with when they were read.
type KeyCache = HashMap<(String, u32), (Option<[u8; 32]>, Instant)>;

/// How long a key read from the store is used without reading it again: how long another
/// process may still open what an erasure in this one destroyed.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

/// How many keys read are kept (see [`Keyring::keep`]).
const READ_CACHE_MAX: usize = 200_000;

/// How many subjects' write keys are kept before the stale ones are dropped.
const WRITE_CACHE_MAX: usize = 100_000;

/// The subject keys: made on first write, unwrapped with the master key, destroyed on erasure.
pub struct Keyring {
    db: Db,
    masters: MasterKeys,
    /// Keys read lately (see [`KEY_CACHE_TTL`]).
    cache: Mutex<KeyCache>,
    /// Keys sealed with lately, by subject, with the epoch they were read under (see
    /// [`KeyEpoch`](shenfen_domain::KeyEpoch)).
    write_cache: Mutex<HashMap<String, WriteKey>>,
}

/// A subject's current key as cached for sealing: its epoch, version, key and when it was read.
type WriteKey = (u64, u32, [u8; 32], Instant);

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring")
    }
}

/// What [`Keyring::rewrap`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Subject keys wrapped again under the current master.
    pub keys: u64,
    /// Masters no key is wrapped under any more, now marked retired.
    pub retired: Vec<String>,
}

impl Keyring {
    /// The keyring of the server's key file at `path`, with only the master derived from it.
    pub fn from_key_file(db: &Db, path: &std::path::Path) -> Result<Keyring, crate::chain::KeyError> {
        Ok(Keyring::for_chain(db, &crate::chain::ChainKey::from_key_file(path)?))
    }

    /// The keyring with only the master derived from the chain key.
    pub fn for_chain(db: &Db, key: &crate::chain::ChainKey) -> Keyring {
        Keyring::new(db, MasterKeys::derived(key))
    }

    /// The keyring over `db` with these master keys (the first wraps new subject keys).
    pub fn new(db: &Db, masters: MasterKeys) -> Keyring {
        Keyring { db: db.clone(), masters, cache: Mutex::new(HashMap::new()), write_cache: Mutex::new(HashMap::new()) }
    }

    fn aad(subject: &str, version: u32) -> Vec<u8> {
        format!("{subject}\u{0}{version}").into_bytes()
    }

    /// `key` wrapped under the current master, and that master's id.
    fn wrap(&self, subject: &str, version: u32, key: &[u8; 32]) -> (Vec<u8>, &str) {
        let master = self.masters.current();
        (seal_bytes(&master.key, &Self::aad(subject, version), key), &master.id)
    }

    fn unwrap_key(&self, subject: &str, version: u32, wrapped: &[u8], master: &str) -> Result<[u8; 32], KeyError> {
        let master = self.masters.get(master).ok_or_else(|| KeyError::MissingMasters(vec![master.to_string()]))?;
        let plain = open_bytes(&master.key, &Self::aad(subject, version), wrapped).ok_or(KeyError::Unwrap)?;
        plain.try_into().map_err(|_| KeyError::Unwrap)
    }

    /// Records the current master as in use, and checks that every master keys are still
    /// wrapped under is held: a server missing one refuses to start.
    pub async fn check_masters(&self) -> Result<(), KeyError> {
        crate::exec!(
            &self.db,
            "INSERT INTO master_keys (id, first_used_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &self.masters.current().id,
            Utc::now()
        )?;
        let in_use: Vec<(String,)> =
            crate::fetch_all!(&self.db, (String,), "SELECT id FROM master_keys WHERE retired_at IS NULL ORDER BY id")?;
        let missing: Vec<String> =
            in_use.into_iter().map(|r| r.0).filter(|id| self.masters.get(id).is_none()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(KeyError::MissingMasters(missing))
        }
    }

    /// Wraps every live subject key again under the current master, `batch` at a time (each
    /// batch one statement per key, compare-and-set, so a key erased meanwhile stays erased),
    /// then marks retired the masters no key is wrapped under any more. Resumable: keys already
    /// under the current master are not touched.
    pub async fn rewrap(&self, batch: i64) -> Result<Rewrapped, KeyError> {
        self.check_masters().await?;
        let current = self.masters.current().id.clone();
        let mut done = Rewrapped::default();
        loop {
            let rows: Vec<(String, i64, Vec<u8>, String)> = crate::fetch_all!(
                &self.db,
                (String, i64, Vec<u8>, String),
                "SELECT subject, version, wrapped, master FROM subject_keys
                  WHERE wrapped IS NOT NULL AND master <> $1 LIMIT $2",
                &current,
                batch
            )?;
            if rows.is_empty() {
                break;
            }
            for (subject, version, wrapped, master) in rows {
                let key = self.unwrap_key(&subject, version as u32, &wrapped, &master)?;
                let (again, under) = self.wrap(&subject, version as u32, &key);
                done.keys += crate::exec!(
                    &self.db,
                    "UPDATE subject_keys SET wrapped = $1, master = $2
                      WHERE subject = $3 AND version = $4 AND wrapped = $5",
                    again,
                    under,
                    &subject,
                    version,
                    wrapped
                )?;
            }
        }
        let earlier: Vec<(String,)> = crate::fetch_all!(
            &self.db,
            (String,),
            "SELECT id FROM master_keys m WHERE retired_at IS NULL AND id <> $1
                AND NOT EXISTS (SELECT 1 FROM subject_keys k WHERE k.wrapped IS NOT NULL AND k.master = m.id)",
            &current
        )?;
        for (id,) in earlier {
            crate::exec!(&self.db, "UPDATE master_keys SET retired_at = $1 WHERE id = $2", Utc::now(), &id)?;
            done.retired.push(id);
        }
        Ok(done)
    }

    async fn rows(&self, subject: &str) -> Result<Vec<(i64, Option<Vec<u8>>, String)>, KeyError> {
        Ok(crate::fetch_all!(
            &self.db,
            (i64, Option<Vec<u8>>, String),
            "SELECT version, wrapped, master FROM subject_keys WHERE subject = $1 ORDER BY version",
            subject
        )?)
    }

    /// The key to seal new values of `subject` with: its live key, or a new version when it
    /// has none (never written, or erased). Read from the store every time, so a key another
    /// process erased is never written with.
    ///
    /// The key is also kept as read (see [`KEY_CACHE_TTL`]): what is sealed with it now is
    /// opened moments later by the projections.
    ///
    /// `new_stream` (the subject's stream is empty) tries to make version 1 first, which is
    /// what a new subject needs, with one statement instead of a read and then a write; a
    /// subject that has keys after all (the version is taken) is read as usual.
    async fn current(&self, subject: &str, new_stream: bool) -> Result<(u32, [u8; 32]), KeyError> {
        if new_stream {
            if let Some(key) = self.make(subject, 1).await? {
                return Ok((1, key));
            }
        }
        loop {
            let rows = self.rows(subject).await?;
            match rows.last() {
                Some((version, Some(wrapped), master)) => {
                    let version = *version as u32;
                    let key = self.unwrap_key(subject, version, wrapped, master)?;
                    self.keep(subject, version, Some(key));
                    return Ok((version, key));
                }
                last => {
                    let version = last.map_or(1, |(v, _, _)| *v as u32 + 1);
                    // Another process may make the same version at once: then its key is the
                    // one, read on the next turn; when this one went in, it is.
                    if let Some(key) = self.make(subject, version).await? {
                        return Ok((version, key));
                    }
                }
            }
        }
    }

    /// Makes key `version` of `subject`, unless that version exists (`None`).
    async fn make(&self, subject: &str, version: u32) -> Result<Option<[u8; 32]>, KeyError> {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let (wrapped, master) = self.wrap(subject, version, &key);
        let made = crate::exec!(
            &self.db,
            "INSERT INTO subject_keys (subject, version, wrapped, created_at, master) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (subject, version) DO NOTHING",
            subject,
            i64::from(version),
            wrapped,
            Utc::now(),
            master
        )?;
        if made != 1 {
            return Ok(None);
        }
        self.keep(subject, version, Some(key));
        Ok(Some(key))
    }

    /// Keeps a key as read now (`None`: erased or missing), in a cache of at most
    /// [`READ_CACHE_MAX`] keys: when full, the stale ones are dropped, and if that is not
    /// enough, all (a reader of many subjects, like a rebuild, refills it as it goes).
    fn keep(&self, subject: &str, version: u32, key: Option<[u8; 32]>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= READ_CACHE_MAX {
                cache.retain(|_, (_, read_at)| read_at.elapsed() < KEY_CACHE_TTL);
                if cache.len() >= READ_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert((subject.to_string(), version), (key, Instant::now()));
        }
    }

    /// The key of `subject` at `version` if it is cached and fresh (holding `None`: erased).
    fn kept<'a>(cache: &'a KeyCache, subject: &str, version: u32) -> Option<&'a Option<[u8; 32]>> {
        let (key, read_at) = cache.get(&(subject.to_string(), version))?;
        (read_at.elapsed() < KEY_CACHE_TTL).then_some(key)
    }

    /// Reads, with one query, every key the sealed values of `events` need and the cache does
    /// not hold (PostgreSQL; on SQLite they are read one by one as they are opened): a reader
    /// of many subjects' events — a rebuild, a runner catching up — makes one round trip per
    /// batch instead of one per subject.
    pub async fn prefetch(&self, events: &[crate::log::StoredEvent]) -> Result<(), KeyError> {
        let Db::Postgres(pool) = &self.db else { return Ok(()) };
        // A set: a batch names the same subjects many times over.
        let mut wanted: std::collections::HashSet<(&str, u32)> = std::collections::HashSet::new();
        if let Ok(cache) = self.cache.lock() {
            let mut versions = Vec::new();
            for event in events {
                versions.clear();
                sealed_versions(&event.payload, &mut versions);
                for &version in &versions {
                    let pair = (event.aggregate_id.as_str(), version);
                    if !wanted.contains(&pair) && Self::kept(&cache, pair.0, version).is_none() {
                        wanted.insert(pair);
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut subjects: Vec<&str> = wanted.iter().map(|(s, _)| *s).collect();
        subjects.sort_unstable();
        subjects.dedup();
        let rows: Vec<(String, i64, Option<Vec<u8>>, String)> = sqlx::query_as(
            "SELECT subject, version, wrapped, master FROM subject_keys WHERE subject = ANY($1::text[])",
        )
        .bind(&subjects)
        .fetch_all(pool)
        .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for (subject, version, wrapped, master) in &rows {
            let version = *version as u32;
            let key = match wrapped {
                Some(wrapped) => Some(self.unwrap_key(subject, version, wrapped, master)?),
                None => None,
            };
            found.insert((subject.as_str(), version), key);
        }
        for (subject, version) in wanted {
            self.keep(subject, version, found.get(&(subject, version)).copied().flatten());
        }
        Ok(())
    }

    /// What seals values of `subject` under its current key (made now if it has none),
    /// without going back to the store.
    pub async fn sealer(&self, subject: &str) -> Result<Sealer, KeyError> {
        let (version, key) = self.current(subject, false).await?;
        Ok(Sealer { subject: subject.to_string(), version, key })
    }

    /// [`current`](Self::current), from the write cache when `epoch` is the one it was read under.
    async fn current_under(
        &self,
        subject: &str,
        epoch: Option<u64>,
        new_stream: bool,
    ) -> Result<(u32, [u8; 32]), KeyError> {
        let Some(epoch) = epoch else { return self.current(subject, new_stream).await };
        let cached = self.write_cache.lock().ok().and_then(|c| c.get(subject).copied());
        if let Some((_, version, key, _)) =
            cached.filter(|(at, _, _, read_at)| *at == epoch && read_at.elapsed() < KEY_CACHE_TTL)
        {
            return Ok((version, key));
        }
        let (version, key) = self.current(subject, new_stream).await?;
        if let Ok(mut cache) = self.write_cache.lock() {
            if cache.len() >= WRITE_CACHE_MAX {
                cache.retain(|_, (_, _, _, read_at)| read_at.elapsed() < KEY_CACHE_TTL);
            }
            cache.insert(subject.to_string(), (epoch, version, key, Instant::now()));
        }
        Ok((version, key))
    }

    /// The key of `subject` at `version`, `None` when it was erased (or never existed).
    async fn key(&self, subject: &str, version: u32) -> Result<Option<[u8; 32]>, KeyError> {
        let cached = self.cache.lock().ok().and_then(|c| Self::kept(&c, subject, version).copied());
        if let Some(key) = cached {
            return Ok(key);
        }
        let row: Option<(Option<Vec<u8>>, String)> = crate::fetch_optional!(
            &self.db,
            (Option<Vec<u8>>, String),
            "SELECT wrapped, master FROM subject_keys WHERE subject = $1 AND version = $2",
            subject,
            i64::from(version)
        )?;
        let key = match row {
            Some((Some(wrapped), master)) => Some(self.unwrap_key(subject, version, &wrapped, &master)?),
            _ => None,
        };
        self.keep(subject, version, key);
        Ok(key)
    }

    /// The newest key version of `subject` (0: none yet).
    pub async fn latest_version(&self, subject: &str) -> Result<u32, KeyError> {
        Ok(self.rows(subject).await?.last().map_or(0, |(v, _, _)| *v as u32))
    }

    /// Destroys the keys of `subject` up to version `up_to`: what was sealed under them reads
    /// as [`ERASED`] from now on, in this process at once and in others once they next read
    /// the key (they cache a key they have read). Keys made later (a new registration of the
    /// same document) stay.
    /// Returns how many live keys it destroyed.
    pub async fn erase(&self, subject: &str, up_to: u32, at: DateTime<Utc>) -> Result<u64, KeyError> {
        let destroyed = crate::exec!(
            &self.db,
            "UPDATE subject_keys SET wrapped = NULL, erased_at = $2
              WHERE subject = $1 AND version <= $3 AND wrapped IS NOT NULL",
            subject,
            at,
            i64::from(up_to)
        )?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|(s, _), _| s != subject);
        }
        if let Ok(mut cache) = self.write_cache.lock() {
            cache.remove(subject);
        }
        Ok(destroyed)
    }

    /// Seals every personal value in `value` under `subject`'s current key.
    pub async fn seal(&self, subject: &str, value: &mut Value) -> Result<(), KeyError> {
        self.seal_all(subject, None, false, std::slice::from_mut(value)).await
    }

    /// Seals the personal values of every one of `values` (one command's events) under
    /// `subject`'s current key: read from the store, or with `epoch` (the stream's
    /// [`KeyEpoch`](shenfen_domain::KeyEpoch)) from what this process read under the same epoch
    /// within [`KEY_CACHE_TTL`]. `new_stream`: the subject's stream is empty so far (see
    /// [`current`](Self::current)).
    pub async fn seal_all(
        &self,
        subject: &str,
        epoch: Option<u64>,
        new_stream: bool,
        values: &mut [Value],
    ) -> Result<(), KeyError> {
        if !values.iter().any(has_personal) {
            return Ok(());
        }
        let (version, key) = self.current_under(subject, epoch, new_stream).await?;
        for value in values {
            seal_with(value, subject, version, &key);
        }
        Ok(())
    }

    /// Opens the personal data of events read from the log, each under its stream's subject.
    pub async fn open_events(&self, events: &mut [crate::log::StoredEvent]) -> Result<(), KeyError> {
        self.prefetch(events).await?;
        for event in events.iter_mut() {
            self.open(&event.aggregate_id, &mut event.payload).await?;
        }
        Ok(())
    }

    /// Opens every sealed value in `value`; a value whose key was erased becomes [`ERASED`].
    pub async fn open(&self, subject: &str, value: &mut Value) -> Result<(), KeyError> {
        let mut versions = Vec::new();
        sealed_versions(value, &mut versions);
        if versions.is_empty() {
            return Ok(());
        }
        let mut keys = HashMap::new();
        for version in versions {
            keys.insert(version, self.key(subject, version).await?);
        }
        open_with(value, subject, &keys);
        Ok(())
    }
}

/// One subject's current key, ready to seal with (see [`Keyring::sealer`]).
pub struct Sealer {
    subject: String,
    version: u32,
    key: [u8; 32],
}

impl Sealer {
    /// Seals every plain personal value in `value`.
    pub fn seal(&self, value: &mut Value) {
        seal_with(value, &self.subject, self.version, &self.key);
    }
}

/// What [`redact_personal`] puts in place of a personal value.
pub const REDACTED: &str = "[redacted]";

/// Replaces every value under a personal member name, sealed or plain, with [`REDACTED`]: a
/// log (or part of it) fit to hand to a third party without the keys.
pub fn redact_personal(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if PERSONAL.contains(&k.as_str()) && !v.is_null() {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact_personal(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_personal),
        _ => {}
    }
}

fn seal_bytes(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 encrypts any message"));
    let mut out = nonce.to_vec();
    out.extend(sealed);
    out
}

fn open_bytes(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, body) = sealed.split_at(12);
    ChaCha20Poly1305::new(Key::from_slice(key)).decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad }).ok()
}

/// Whether `value` holds a plain string under a personal member name.
pub fn has_plain_personal(value: &Value) -> bool {
    has_personal(value)
}

fn has_personal(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            (PERSONAL.contains(&k.as_str()) && v.as_str().is_some_and(|s| !s.starts_with(SEALED))) || has_personal(v)
        }),
        Value::Array(items) => items.iter().any(has_personal),
        _ => false,
    }
}

fn seal_with(value: &mut Value, subject: &str, version: u32, key: &[u8; 32]) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if PERSONAL.contains(&k.as_str()) && !s.starts_with(SEALED) => {
                        let sealed = seal_bytes(key, &Keyring::aad(subject, version), s.as_bytes());
                        *s = format!("{SEALED}{version}:{}", URL_SAFE_NO_PAD.encode(sealed));
                    }
                    other => seal_with(other, subject, version, key),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| seal_with(v, subject, version, key)),
        _ => {}
    }
}

/// `(version, bytes)` of a sealed string.
fn parse_sealed(s: &str) -> Option<(u32, Vec<u8>)> {
    let version = sealed_version(s)?;
    let (_, body) = s.strip_prefix(SEALED)?.split_once(':')?;
    Some((version, URL_SAFE_NO_PAD.decode(body).ok()?))
}

/// The key version a sealed string names (its body is not decoded).
fn sealed_version(s: &str) -> Option<u32> {
    s.strip_prefix(SEALED)?.split_once(':')?.0.parse().ok()
}

fn sealed_versions(value: &Value, out: &mut Vec<u32>) {
    match value {
        Value::String(s) => {
            if let Some(version) = sealed_version(s) {
                if !out.contains(&version) {
                    out.push(version);
                }
            }
        }
        Value::Object(map) => map.values().for_each(|v| sealed_versions(v, out)),
        Value::Array(items) => items.iter().for_each(|v| sealed_versions(v, out)),
        _ => {}
    }
}

fn open_with(value: &mut Value, subject: &str, keys: &HashMap<u32, Option<[u8; 32]>>) {
    match value {
        Value::String(s) => {
            if let Some((version, body)) = parse_sealed(s) {
                let opened = keys
                    .get(&version)
                    .copied()
                    .flatten()
                    .and_then(|key| open_bytes(&key, &Keyring::aad(subject, version), &body))
                    .and_then(|plain| String::from_utf8(plain).ok());
                *s = opened.unwrap_or_else(|| ERASED.to_string());
            }
        }
        Value::Object(map) => map.values_mut().for_each(|v| open_with(v, subject, keys)),
        Value::Array(items) => items.iter_mut().for_each(|v| open_with(v, subject, keys)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn keys(key: Option<[u8; 32]>) -> HashMap<u32, Option<[u8; 32]>> {
        HashMap::from([(1, key)])
    }

    #[test]
    fn personal_members_are_sealed_anywhere_and_open_to_what_they_were() {
        let plain = json!({"Registered": {"name": "张三", "document_type": "resident_id_card",
            "applicant": {"mobile": "13800138000"}, "emails": [{"email": "a@b.cn"}], "at": "2026-01-01T00:00:00Z"}});
        let mut sealed = plain.clone();
        seal_with(&mut sealed, "acc_1", 1, &KEY);
        let text = sealed.to_string();
        for secret in ["张三", "13800138000", "a@b.cn"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(sealed["Registered"]["document_type"], "resident_id_card");
        let mut opened = sealed.clone();
        open_with(&mut opened, "acc_1", &keys(Some(KEY)));
        assert_eq!(opened, plain);
    }

    #[test]
    fn without_the_key_or_for_another_subject_a_value_reads_as_erased() {
        let mut sealed = json!({"name": "张三"});
        seal_with(&mut sealed, "acc_1", 1, &KEY);
        let mut erased = sealed.clone();
        open_with(&mut erased, "acc_1", &keys(None));
        assert_eq!(erased, json!({"name": ERASED}));
        let mut moved = sealed.clone();
        open_with(&mut moved, "acc_2", &keys(Some(KEY)));
        assert_eq!(moved, json!({"name": ERASED}));
    }

    #[test]
    fn the_key_versions_a_value_needs_are_read_without_decoding_it() {
        let mut value = json!({"name": "张三", "nested": [{"mobile": "13800138000"}], "at": "enc:x"});
        seal_with(&mut value, "acc_1", 3, &KEY);
        let mut versions = Vec::new();
        sealed_versions(&value, &mut versions);
        assert_eq!(versions, vec![3], "one version, named once; a plain `enc:x` is not sealed");
        assert_eq!(sealed_version("enc:12:AAAA"), Some(12));
        assert_eq!(sealed_version("enc:"), None);
        assert_eq!(sealed_version("plain"), None);
    }

    #[test]
    fn plain_values_of_old_events_are_read_as_they_are() {
        let mut old = json!({"name": "张三", "mobile": null});
        open_with(&mut old, "acc_1", &keys(Some(KEY)));
        assert_eq!(old, json!({"name": "张三", "mobile": null}));
        assert!(!has_personal(&json!({"mobile": null, "at": "x"})));
    }
}
