//! Content-addressed storage of photos under `SHENFEN_BLOB_DIR`: a file's name is its
//! SHA-256. A blob is written to a temporary file of its own (unique per write, so concurrent
//! uploads of the same photo never share one), synced, renamed into place and its directory
//! synced, so a crash never leaves a partial file under a digest name. A file already there is
//! trusted only when its content has its digest (otherwise it is written again), and is read
//! back only then. Blobs that no event references are deleted after a grace period by
//! [`BlobStore::sweep`], so uploads whose command was refused cannot fill the disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use sha2::{Digest, Sha256};
use shenfen_projections::db::Db;
use shenfen_projections::photo_refs::PhotoRefs;

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Blobs deleted because no event references them.
    pub unreferenced: usize,
    /// Temporary files left by interrupted writes, deleted.
    pub temporary: usize,
}

fn is_digest(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// Whether the file at `path` holds exactly the content of `digest`.
fn holds(path: &Path, digest: &str) -> bool {
    std::fs::read(path).is_ok_and(|bytes| hex::encode(Sha256::digest(&bytes)) == digest)
}

impl BlobStore {
    /// A store in `dir` (created if missing).
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the blob directory {}", dir.display()))?;
        Ok(BlobStore { dir: dir.to_path_buf() })
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        is_digest(digest).then(|| self.dir.join(&digest[..2]).join(digest))
    }

    /// Stores `bytes`; returns their SHA-256 (hex).
    pub async fn put(&self, bytes: Vec<u8>) -> anyhow::Result<String> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.put_blocking(&bytes)).await.context("blob task")?
    }

    fn put_blocking(&self, bytes: &[u8]) -> anyhow::Result<String> {
        use std::io::Write;
        let digest = hex::encode(Sha256::digest(bytes));
        let path = self.path(&digest).context("digest")?;
        if holds(&path, &digest) {
            // Stored before (perhaps for an upload that was refused): its grace period starts
            // again, so the sweeper cannot take it while the command now using it commits.
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(SystemTime::now()))
                .context("touching a blob")?;
            return Ok(digest);
        }
        let dir = path.parent().context("blob parent")?;
        if !dir.exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            sync_dir(&self.dir)?;
        }
        let tmp = dir.join(format!(".{digest}.{}.{}.tmp", std::process::id(), crate::crypto::random_hex(8)));
        let written = (|| {
            let mut file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            file.write_all(bytes).context("writing a blob")?;
            file.sync_all().context("syncing a blob")?;
            std::fs::rename(&tmp, &path).context("installing a blob")
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        sync_dir(dir)?;
        Ok(digest)
    }

    /// Reads a blob by digest; `None` when it is missing or its content does not have its
    /// digest (a damaged file is never served).
    pub async fn get(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(path) = self.path(digest) else { return Ok(None) };
        match tokio::fs::read(&path).await {
            Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == digest => Ok(Some(bytes)),
            Ok(_) => {
                tracing::error!(digest, "a stored photo does not match its digest");
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("reading a blob"),
        }
    }

    /// Deletes one blob (an erased subject's photo); a missing one is already gone.
    pub async fn delete(&self, digest: &str) -> anyhow::Result<()> {
        let Some(path) = self.path(digest) else { return Ok(()) };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("deleting a blob"),
        }
    }

    /// Deletes the blobs older than `grace` that no event references, and temporary files
    /// older than `grace`. Does nothing while the `photo_refs` read model has applications
    /// still to read (it would not know their photos yet).
    pub async fn sweep(&self, db: &Db, grace: Duration) -> anyhow::Result<Swept> {
        if !PhotoRefs::caught_up(db).await.context("checking photo_refs")? {
            tracing::info!("photo_refs is behind: the blob sweep waits");
            return Ok(Swept::default());
        }
        let store = self.clone();
        let (candidates, temporary) =
            tokio::task::spawn_blocking(move || store.old_files(grace)).await.context("blob task")??;
        let mut swept = Swept { unreferenced: 0, temporary: 0 };
        for path in temporary {
            if std::fs::remove_file(&path).is_ok() {
                swept.temporary += 1;
            }
        }
        for (digest, path) in candidates {
            if PhotoRefs::is_referenced(db, &digest).await.context("reading photo_refs")? {
                continue;
            }
            // Touched since it was listed: an upload is using it again.
            let touched = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() < grace);
            if !touched && std::fs::remove_file(&path).is_ok() {
                swept.unreferenced += 1;
            }
        }
        Ok(swept)
    }

    /// The blobs and the temporary files not modified within `grace`.
    fn old_files(&self, grace: Duration) -> anyhow::Result<OldFiles> {
        let old = |path: &Path| {
            std::fs::metadata(path).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().unwrap_or_default() >= grace)
        };
        let (mut blobs, mut temporary) = (Vec::new(), Vec::new());
        for shard in std::fs::read_dir(&self.dir).with_context(|| format!("listing {}", self.dir.display()))? {
            let shard = shard.context("listing the blob directory")?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&shard).with_context(|| format!("listing {}", shard.display()))? {
                let path = entry.context("listing a blob shard")?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
                if is_digest(&name) && old(&path) {
                    blobs.push((name, path));
                } else if name.starts_with('.') && name.ends_with(".tmp") && old(&path) {
                    temporary.push(path);
                }
            }
        }
        Ok((blobs, temporary))
    }
}

/// Files old enough to sweep: blobs as (digest, path), and temporary files.
type OldFiles = (Vec<(String, PathBuf)>, Vec<PathBuf>);

/// Sweeps the blob store every so often (a quarter of the grace period, at least a second and
/// at most an hour) until the process ends.
pub async fn run_sweeper(store: BlobStore, db: Db, grace: Duration) {
    let every = (grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        tokio::time::sleep(every).await;
        match store.sweep(&db, grace).await {
            Ok(swept) => {
                metrics::counter!("shenfen_blobs_swept_total").increment(swept.unreferenced as u64);
                if swept.unreferenced + swept.temporary > 0 {
                    tracing::info!(
                        unreferenced = swept.unreferenced,
                        temporary = swept.temporary,
                        "deleted photos no event references"
                    );
                }
            }
            Err(err) => tracing::warn!(error = format!("{err:#}"), "blob sweep failed"),
        }
    }
}

/// Whether `bytes` is a JPEG, judged by decoding its header (markers up to the frame header),
/// not by a name or a declared type.
pub fn is_jpeg(bytes: &[u8]) -> bool {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().is_ok() && decoder.info().is_some_and(|i| i.width > 0 && i.height > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real 1×1 baseline JPEG.
    pub const TINY_JPEG: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01,
        0x00, 0x00, 0xFF, 0xDB, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07, 0x07, 0x09,
        0x09, 0x08, 0x0A, 0x0C, 0x14, 0x0D, 0x0C, 0x0B, 0x0B, 0x0C, 0x19, 0x12, 0x13, 0x0F, 0x14, 0x1D, 0x1A, 0x1F,
        0x1E, 0x1D, 0x1A, 0x1C, 0x1C, 0x20, 0x24, 0x2E, 0x27, 0x20, 0x22, 0x2C, 0x23, 0x1C, 0x1C, 0x28, 0x37, 0x29,
        0x2C, 0x30, 0x31, 0x34, 0x34, 0x34, 0x1F, 0x27, 0x39, 0x3D, 0x38, 0x32, 0x3C, 0x2E, 0x33, 0x34, 0x32, 0xFF,
        0xC0, 0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xC4, 0x00, 0x1F, 0x00, 0x00,
        0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,
        0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0xFF, 0xC4, 0x00, 0xB5, 0x10, 0x00, 0x02, 0x01, 0x03,
        0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7D, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11,
        0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08,
        0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18,
        0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67,
        0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
        0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9,
        0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9,
        0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8,
        0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01,
        0x00, 0x00, 0x3F, 0x00, 0xD2, 0xCF, 0x20, 0xFF, 0xD9,
    ];

    #[test]
    fn a_jpeg_is_recognised_by_its_content() {
        assert!(is_jpeg(TINY_JPEG));
        assert!(!is_jpeg(b"\x89PNG\r\n\x1a\n not a jpeg"));
        assert!(!is_jpeg(&TINY_JPEG[..4]), "a bare SOI marker is not a JPEG");
        assert!(!is_jpeg(b""));
    }

    #[tokio::test]
    async fn blobs_are_stored_by_digest_and_read_back() {
        let dir = std::env::temp_dir().join(format!("shenfen-blobs-{}", std::process::id()));
        let store = BlobStore::open(&dir).expect("open");
        let digest = store.put(TINY_JPEG.to_vec()).await.expect("put");
        assert_eq!(digest, hex::encode(Sha256::digest(TINY_JPEG)));
        assert_eq!(store.get(&digest).await.expect("get").as_deref(), Some(TINY_JPEG));
        assert_eq!(store.get("../etc/passwd").await.expect("get"), None);
        let leftovers = std::fs::read_dir(dir.join(&digest[..2])).expect("dir").count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn concurrent_uploads_of_one_photo_each_store_it_whole() {
        let dir = std::env::temp_dir().join(format!("shenfen-blobs-concurrent-{}", std::process::id()));
        let store = BlobStore::open(&dir).expect("open");
        let bytes: Vec<u8> = TINY_JPEG.iter().copied().cycle().take(150_000).collect();
        let puts = (0..16).map(|_| store.put(bytes.clone()));
        let digests = futures::future::join_all(puts).await;
        let digest = hex::encode(Sha256::digest(&bytes));
        assert!(digests.iter().all(|d| d.as_ref().is_ok_and(|d| *d == digest)), "{digests:?}");
        assert_eq!(store.get(&digest).await.expect("get").as_deref(), Some(bytes.as_slice()));
        let files = std::fs::read_dir(dir.join(&digest[..2])).expect("dir").count();
        assert_eq!(files, 1, "one file, no temporary leftovers");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_damaged_blob_is_never_served_and_is_repaired_by_the_next_upload() {
        let dir = std::env::temp_dir().join(format!("shenfen-blobs-damaged-{}", std::process::id()));
        let store = BlobStore::open(&dir).expect("open");
        let digest = store.put(TINY_JPEG.to_vec()).await.expect("put");
        let path = dir.join(&digest[..2]).join(&digest);
        std::fs::write(&path, &TINY_JPEG[..40]).expect("truncate the blob");
        assert_eq!(store.get(&digest).await.expect("get"), None, "a partial file is not served");
        assert_eq!(store.put(TINY_JPEG.to_vec()).await.expect("put again"), digest);
        assert_eq!(std::fs::read(&path).expect("read"), TINY_JPEG, "the file was written again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
