//! Secrets: the operator key, password hashing off the async runtime, random tokens and codes.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::{Rng, RngCore};

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

/// The commits of this process: the chain key derived from the secret key file, and the data
/// subjects' keyring under the master keys of the master key file. Refuses when a master that
/// subject keys are still wrapped under is missing from the file.
pub async fn commits(
    db: &shenfen_projections::db::Db,
    settings: &crate::config::Settings,
) -> anyhow::Result<std::sync::Arc<shenfen_projections::commits::Commits>> {
    use shenfen_projections::chain::ChainKey;
    use shenfen_projections::master_keys::MasterKeys;
    let chain = ChainKey::derive(&load_or_create_key(&settings.secret_key_file)?);
    let masters = MasterKeys::load(&chain, &settings.master_key_file)?;
    let keyring = shenfen_projections::pii::Keyring::new(db, masters);
    keyring.check_masters().await?;
    let write_timeout = std::time::Duration::from_millis(settings.write_timeout_ms);
    Ok(shenfen_projections::commits::Commits::with_keyring(db, chain, keyring, write_timeout))
}

/// Argon2id hashing and verification on dedicated threads, one per core, each keeping its
/// own 19 MiB working memory between jobs (no allocation and no page faults per hash). Logins
/// queue for a thread instead of starving the async runtime.
#[derive(Clone)]
pub struct PasswordHashing {
    jobs: std::sync::mpsc::Sender<Job>,
    dummy_hash: Arc<String>,
    /// Hashes and verifications asked for and not answered yet.
    pending: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a job as pending while it lives.
struct Pending(Arc<std::sync::atomic::AtomicUsize>);

impl Pending {
    fn new(counter: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Pending(counter.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

enum Job {
    Hash { password: String, reply: tokio::sync::oneshot::Sender<anyhow::Result<String>> },
    Verify { password: String, hash: String, reply: tokio::sync::oneshot::Sender<bool> },
}

/// Verifies `password` against a PHC string, hashing into `blocks` (grown when the stored
/// parameters need more). Compares in constant time.
pub fn verify_with(password: &[u8], phc: &str, blocks: &mut Vec<argon2::Block>) -> bool {
    use argon2::{Algorithm, Params, Version};
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let version = parsed.version.and_then(|v| Version::try_from(v).ok()).unwrap_or(Version::V0x13);
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let context = Argon2::new(algorithm, version, params);
    if context.hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..needed]).is_err() {
        return false;
    }
    argon2::password_hash::Output::new(&out).is_ok_and(|actual| actual == expected)
}

/// Hashes `password` (Argon2id with the crate's default parameters and a fresh salt) into
/// `blocks` (grown when too small), answering the PHC string `Argon2::default().hash_password`
/// would. The crate's own `hash_password` allocates and zeroes its 19 MiB on every call, which
/// on this path costs a page fault per 4 KiB, a third again of the hash itself.
pub fn hash_with(password: &[u8], blocks: &mut Vec<argon2::Block>) -> anyhow::Result<String> {
    use argon2::password_hash::{Output, ParamsString};
    use argon2::{Algorithm, Params, Version};
    let params = Params::default();
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf).map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?;
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, argon2::Block::default());
    }
    let context = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(context.hash_password_into_with_memory(password, salt_bytes, out, &mut blocks[..needed])?)
    })
    .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

fn worker(jobs: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>) {
    let mut blocks = vec![argon2::Block::default(); argon2::Params::default().block_count()];
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(Job::Hash { password, reply }) => {
                let _ = reply.send(hash_with(password.as_bytes(), &mut blocks));
            }
            Ok(Job::Verify { password, hash, reply }) => {
                let _ = reply.send(verify_with(password.as_bytes(), &hash, &mut blocks));
            }
            Err(_) => return,
        }
    }
}

impl PasswordHashing {
    /// A hasher with one thread per available core.
    pub fn new() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let (tx, rx) = std::sync::mpsc::channel();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        // Each hashing thread stays on a core of its own: a hash works over 19 MiB, and a
        // thread moved to another core by the scheduler (which happens whenever the other
        // work of the server wakes up) leaves what it had in that core's caches behind.
        let core_ids = core_affinity::get_core_ids().unwrap_or_default();
        for i in 0..cores {
            let rx = rx.clone();
            let core = (core_ids.len() >= cores).then(|| core_ids[i]);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    worker(&rx)
                })
                .context("starting a hashing thread")?;
        }
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let dummy = Argon2::default()
            .hash_password(b"shenfen dummy password #1", &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(PasswordHashing { jobs: tx, dummy_hash: Arc::new(dummy), pending: Default::default() })
    }

    /// The Argon2id (PHC string) hash of `password`, with the crate's default parameters
    /// (m = 19 MiB, t = 2, p = 1).
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _pending = Pending::new(&self.pending);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs.send(Job::Hash { password, reply }).map_err(|_| anyhow::anyhow!("hashing threads stopped"))?;
        answer.await.context("hashing thread failed")?
    }

    /// Whether `password` matches `hash`.
    pub async fn verify(&self, password: String, hash: String) -> anyhow::Result<bool> {
        let _pending = Pending::new(&self.pending);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job::Verify { password, hash, reply })
            .map_err(|_| anyhow::anyhow!("hashing threads stopped"))?;
        answer.await.context("hashing thread failed")
    }

    /// How many hashes and verifications are queued or running: other logins that will
    /// commit soon.
    pub fn pending(&self) -> usize {
        self.pending.load(std::sync::atomic::Ordering::Relaxed)
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

/// A new session token of an account holder: `s1.` + the account id's 32 hex digits + `.` +
/// 256 random bits. The token names its account, so a request is authenticated against the
/// account stream itself (where only the token's SHA-256 is stored), with no read model to
/// wait for.
pub fn session_token(account_id: &str) -> String {
    token_naming("s1.", account_id)
}

/// The account id a session token names.
pub fn account_of_session_token(token: &str) -> Option<String> {
    named_by("s1.", token)
}

/// A new staff session token: `st1.` + the staff id's 32 hex digits + `.` + 256 random bits,
/// checked against the staff member's own stream like a holder's.
pub fn staff_token(staff_id: &str) -> String {
    token_naming("st1.", staff_id)
}

/// The staff id a staff token names.
pub fn staff_of_token(token: &str) -> Option<String> {
    named_by("st1.", token)
}

/// A new student session token: `su1.` + the student id's 32 hex digits + `.` + 256 random
/// bits, checked against the student's own stream.
pub fn student_token(student_id: &str) -> String {
    token_naming("su1.", student_id)
}

/// The student id a student token names.
pub fn student_of_token(token: &str) -> Option<String> {
    named_by("su1.", token)
}

/// A new claim token (`c1.`): it reaches only the re-registration claim it names.
pub fn claim_token(claim_hex: &str) -> String {
    format!("c1.{claim_hex}.{}", random_token())
}

/// The claim id (`clm_` + 48 hex digits) a claim token names.
pub fn claim_of_token(token: &str) -> Option<String> {
    let rest = token.strip_prefix("c1.")?;
    let (h, secret) = rest.split_once('.')?;
    (h.len() == 48 && h.bytes().all(|b| b.is_ascii_hexdigit()) && secret.len() >= 32).then(|| format!("clm_{h}"))
}

fn token_naming(prefix: &str, id: &str) -> String {
    format!("{prefix}{}.{}", id.replace('-', ""), random_token())
}

fn named_by(prefix: &str, token: &str) -> Option<String> {
    let rest = token.strip_prefix(prefix)?;
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
    fn verification_with_reused_memory_agrees_with_the_crate() {
        use argon2::PasswordVerifier;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let phc = Argon2::default().hash_password(b"Zq7#mountain", &salt).expect("hash").to_string();
        let mut blocks = Vec::new();
        assert!(verify_with(b"Zq7#mountain", &phc, &mut blocks));
        assert!(!verify_with(b"Zq7#mountaiN", &phc, &mut blocks));
        assert!(!verify_with(b"Zq7#mountain", "not a hash", &mut blocks));
        let parsed = PasswordHash::new(&phc).expect("parse");
        assert!(Argon2::default().verify_password(b"Zq7#mountain", &parsed).is_ok());
    }

    #[test]
    fn hashing_with_reused_memory_answers_what_the_crate_would() {
        use argon2::PasswordVerifier;
        let mut blocks = Vec::new();
        let phc = hash_with(b"Zq7#mountain", &mut blocks).expect("hash");
        let parsed = PasswordHash::new(&phc).expect("parse");
        assert!(Argon2::default().verify_password(b"Zq7#mountain", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"Zq7#mountaiN", &parsed).is_err());
        // The same shape as the crate's own: algorithm, version, parameters, salt and hash.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let crate_phc = Argon2::default().hash_password(b"Zq7#mountain", &salt).expect("hash").to_string();
        let fields = |p: &str| p.split('$').take(4).map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(fields(&phc), fields(&crate_phc));
        // Reused memory from an earlier hash gives a hash that verifies all the same.
        let again = hash_with(b"another #2 password", &mut blocks).expect("hash");
        assert!(verify_with(b"another #2 password", &again, &mut blocks));
        assert_ne!(phc, hash_with(b"Zq7#mountain", &mut blocks).expect("hash"), "a fresh salt each time");
    }

    #[tokio::test]
    async fn the_hashing_threads_hash_and_verify() {
        let hashing = PasswordHashing::new().expect("threads");
        let hash = hashing.hash("Zq7#mountain".into()).await.expect("hash");
        assert!(hashing.verify("Zq7#mountain".into(), hash.clone()).await.expect("verify"));
        assert!(!hashing.verify("wrong".into(), hash).await.expect("verify"));
    }

    #[test]
    fn a_session_token_names_its_account_and_nothing_else_parses() {
        let id = "14c493ae-d7f9-744d-bd64-6a34a7556058";
        let token = session_token(id);
        assert_eq!(account_of_session_token(&token).as_deref(), Some(id));
        assert_eq!(account_of_session_token("s1.14c493aed7f9744dbd646a34a7556058.short"), None);
        assert_eq!(account_of_session_token(&random_token()), None);
        assert_ne!(session_token(id), session_token(id));
        assert_eq!(staff_of_token(&staff_token(id)).as_deref(), Some(id));
        assert_eq!(staff_of_token(&token), None, "an account token is not a staff token");
        assert_eq!(account_of_session_token(&staff_token(id)), None);
        let claim = "14c493aed7f9744dbd646a34a75560580123456789abcdef";
        assert_eq!(claim_of_token(&claim_token(claim)), Some(format!("clm_{claim}")));
        assert_eq!(claim_of_token(&token), None);
    }
}
