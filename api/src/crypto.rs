//! Secrets: the operator key, password hashing off the async runtime, random tokens and codes.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::{Rng, RngCore};
use tokio::sync::Semaphore;

/// Reads the key file, creating it (32 random bytes, mode 0600) when missing.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.exists() {
        let key = std::fs::read(path).with_context(|| format!("reading the key file {}", path.display()))?;
        anyhow::ensure!(key.len() >= 32, "the key file {} holds fewer than 32 bytes", path.display());
        return Ok(key);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut key = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(&key).context("writing the key")?;
        file.sync_all().context("syncing the key")?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("installing the key file {}", path.display()))?;
    tracing::info!(path = %path.display(), "created a new secret key");
    Ok(key)
}

/// Argon2id hashing and verification on the blocking pool, at most one per core at a time so
/// that logins queue instead of starving the async runtime.
#[derive(Clone)]
pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
}

impl PasswordHashing {
    /// A hasher with one slot per available core.
    pub fn new() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let dummy = Argon2::default()
            .hash_password(b"shenfen dummy password #1", &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(PasswordHashing { permits: Arc::new(Semaphore::new(cores)), dummy_hash: Arc::new(dummy) })
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(f).await.context("hashing task failed")
    }

    /// The Argon2id (PHC string) hash of `password`, with the crate's default parameters
    /// (m = 19 MiB, t = 2, p = 1).
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await?
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    }

    /// Whether `password` matches `hash`.
    pub async fn verify(&self, password: String, hash: String) -> anyhow::Result<bool> {
        self.blocking(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
    }

    /// Spends the time of one verification, so that an unknown account answers as slowly as
    /// a wrong password.
    pub async fn verify_dummy(&self, password: String) -> anyhow::Result<()> {
        let hash = self.dummy_hash.as_ref().clone();
        self.verify(password, hash).await.map(|_| ())
    }
}

/// A random URL-safe token with 256 bits of entropy.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random 6-digit code.
pub fn random_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// Random hex of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new session token: `s1.` + the account id's 32 hex digits + `.` + 256 random bits. The
/// token names its account, so a request is authenticated against the account stream itself
/// (where only the token's SHA-256 is stored), with no read model to wait for.
pub fn session_token(account_id: &str) -> String {
    format!("s1.{}.{}", account_id.replace('-', ""), random_token())
}

/// The account id a session token names.
pub fn account_of_session_token(token: &str) -> Option<String> {
    let rest = token.strip_prefix("s1.")?;
    let (h, secret) = rest.split_once('.')?;
    if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() < 32 {
        return None;
    }
    Some(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_token_names_its_account_and_nothing_else_parses() {
        let id = "14c493ae-d7f9-744d-bd64-6a34a7556058";
        let token = session_token(id);
        assert_eq!(account_of_session_token(&token).as_deref(), Some(id));
        assert_eq!(account_of_session_token("s1.14c493aed7f9744dbd646a34a7556058.short"), None);
        assert_eq!(account_of_session_token(&random_token()), None);
        assert_ne!(session_token(id), session_token(id));
    }
}
