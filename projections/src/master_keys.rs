//! The master keys that wrap the data subjects' keys ([`Keyring`](crate::pii::Keyring)), and
//! how they are rotated.
//!
//! Until a master key file exists, the one master key is derived from the server's secret key
//! file (id [`DERIVED`]). That file also keys the hash chain, the tokens and the derived ids,
//! so it cannot itself be replaced; the master key can. The master key file
//! (`SHENFEN_MASTER_KEY_FILE`, `./data/master.keys` by default) holds one key per line, 64 hex
//! digits: the first wraps every new subject key, the others are earlier ones, still used to
//! unwrap keys wrapped under them. Each subject key row names the master it is wrapped under
//! (`subject_keys.master`), and `master_keys` lists the masters in use, so a server started
//! without one of them refuses to start instead of failing on every read.
//!
//! Rotating (the README has the steps): `shenfen-replay master-key new` puts a new key first in
//! the file; every server is restarted with it; `shenfen-replay master-key rewrap` wraps every
//! subject key again under it (in batches, resumable) and marks the earlier masters retired;
//! their lines may then be removed from the file. No event, snapshot or sealed value changes:
//! only the wrapping of the subject keys does.

use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::chain::ChainKey;

/// The id of the master key derived from the secret key file.
pub const DERIVED: &str = "secret";

/// One master key and its id (a digest of it: the key itself is never stored).
#[derive(Clone)]
pub struct Master {
    pub id: String,
    pub(crate) key: [u8; 32],
}

/// The master keys a process holds: the current one first.
#[derive(Clone)]
pub struct MasterKeys {
    keys: Vec<Master>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|m| &m.id)).finish()
    }
}

/// Why the master key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("reading the master key file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("the master key file {0}, line {1}, is not 64 hex digits")]
    Malformed(String, usize),
}

fn derived(chain: &ChainKey) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(chain.bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(b"shenfen subject-key wrapping v1");
    mac.finalize().into_bytes().into()
}

fn id_of(key: &[u8; 32]) -> String {
    let digest = Sha256::new().chain_update(b"shenfen master key id\n").chain_update(key).finalize();
    format!("m-{}", &hex::encode(digest)[..16])
}

impl MasterKeys {
    /// Only the master derived from the secret key file.
    pub fn derived(chain: &ChainKey) -> MasterKeys {
        MasterKeys { keys: vec![Master { id: DERIVED.into(), key: derived(chain) }] }
    }

    /// The keys of the master key file at `path`, the first current, then the derived one; the
    /// derived one alone when the file does not exist.
    pub fn load(chain: &ChainKey, path: &Path) -> Result<MasterKeys, MasterKeyError> {
        let mut keys = Self::read(path)?;
        keys.push(Master { id: DERIVED.into(), key: derived(chain) });
        Ok(MasterKeys { keys })
    }

    fn read(path: &Path) -> Result<Vec<Master>, MasterKeyError> {
        let shown = || path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(MasterKeyError::Io(shown(), e)),
        };
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                let key: [u8; 32] = hex::decode(line.trim())
                    .ok()
                    .and_then(|k| k.try_into().ok())
                    .ok_or_else(|| MasterKeyError::Malformed(shown(), i + 1))?;
                Ok(Master { id: id_of(&key), key })
            })
            .collect()
    }

    /// Puts a new random key first in the file at `path` (created if missing, readable by its
    /// owner only), keeping the others; its id.
    pub fn add_new(path: &Path) -> Result<String, MasterKeyError> {
        let io = |e| MasterKeyError::Io(path.display().to_string(), e);
        let existing = Self::read(path)?;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let mut text = hex::encode(key) + "\n";
        for m in &existing {
            text.push_str(&hex::encode(m.key));
            text.push('\n');
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
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
            let mut file = options.open(&tmp).map_err(io)?;
            file.write_all(text.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(id_of(&key))
    }

    /// The key new subject keys are wrapped under.
    pub fn current(&self) -> &Master {
        &self.keys[0]
    }

    /// The key with `id`, if this process has it.
    pub fn get(&self, id: &str) -> Option<&Master> {
        self.keys.iter().find(|m| m.id == id)
    }

    /// The ids held, the current first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|m| m.id.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_goes_first_and_the_earlier_ones_and_the_derived_one_stay() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("master.keys");
        let chain = ChainKey::derive(&[3; 32]);
        assert_eq!(MasterKeys::load(&chain, &path).map(|m| m.current().id.clone()).ok(), Some(DERIVED.into()));
        let first = MasterKeys::add_new(&path).unwrap_or_else(|e| panic!("{e}"));
        let second = MasterKeys::add_new(&path).unwrap_or_else(|e| panic!("{e}"));
        let keys = MasterKeys::load(&chain, &path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.ids(), vec![second.as_str(), first.as_str(), DERIVED]);
        std::fs::write(&path, "not hex\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(MasterKeys::load(&chain, &path), Err(MasterKeyError::Malformed(_, 1))));
    }
}
