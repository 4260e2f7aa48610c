//! File contents on disk, so memory stays flat whatever the file sizes.
//!
//! Every content is an immutable blob under `<root>/blobs/<key>`; new content (an upload, a seeded file)
//! is written to `<root>/tmp/` while its checksums are computed, then renamed into place. Replacing a
//! file's content makes a new blob, so a download that has the old one open keeps reading it. The root
//! is a temporary directory (removed with the emulator) unless `--data-dir` names one to keep.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::Checksums;
use crate::util;

/// A stored content: its key under `blobs/` and its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub key: String,
    pub len: u64,
}

pub(crate) struct Store {
    root: PathBuf,
    /// Owns (and on drop removes) the directory when it is temporary.
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

impl Store {
    /// A fresh temporary directory, removed when the store is dropped.
    pub fn temporary() -> io::Result<Self> {
        let temp = tempfile::Builder::new().prefix("drive-emulator-").tempdir()?;
        let root = temp.path().to_path_buf();
        Self::prepare(&root)?;
        Ok(Self { root, _temp: Some(temp) })
    }

    /// A directory that outlives the emulator (created if missing).
    pub fn at(dir: &Path) -> io::Result<Self> {
        Self::prepare(dir)?;
        Ok(Self { root: dir.to_path_buf(), _temp: None })
    }

    fn prepare(root: &Path) -> io::Result<()> {
        std::fs::create_dir_all(root.join("blobs"))?;
        // Partial uploads of an earlier run cannot be resumed (sessions are not kept).
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(tmp)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn is_persistent(&self) -> bool {
        self._temp.is_none()
    }

    /// Removes a temporary store's directory now. Used when the emulator stops or is dropped: server
    /// threads may still hold the state (so `Drop` would come late, or never before the process exits).
    pub fn cleanup_guard(&self) -> CleanupGuard {
        CleanupGuard(self._temp.as_ref().map(|t| t.path().to_path_buf()))
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join("blobs").join(key)
    }

    /// A writer for new content; nothing is visible until [`BlobWriter::commit`].
    pub fn writer(&self) -> io::Result<BlobWriter> {
        let tmp = self.root.join("tmp").join(util::random_token(24));
        let file = File::create(&tmp)?;
        Ok(BlobWriter {
            file,
            tmp: Some(tmp),
            blobs: self.root.join("blobs"),
            md5: md5::Md5::default(),
            sha1: sha1::Sha1::default(),
            sha256: sha2::Sha256::default(),
            len: 0,
        })
    }

    /// Stores `content` at once (seeding, small conversions).
    pub fn put(&self, content: &[u8]) -> io::Result<(Blob, Checksums)> {
        let mut w = self.writer()?;
        w.write(content)?;
        w.commit()
    }

    /// The whole content (exports of Workspace files, test helpers: small things).
    pub fn read(&self, blob: &Blob) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(blob.len).unwrap_or(0));
        File::open(self.path(&blob.key))?.read_to_end(&mut out)?;
        Ok(out)
    }

    pub fn remove(&self, blob: &Blob) {
        if let Err(e) = std::fs::remove_file(self.path(&blob.key))
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, key = %blob.key, "cannot remove a blob");
        }
    }
}

/// Deletes a temporary store's directory when dropped (nothing for a `--data-dir`).
#[derive(Debug)]
pub struct CleanupGuard(Option<PathBuf>);

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot remove the emulator's temporary directory");
        }
    }
}

/// Content being written: appended in order, hashed on the way.
pub(crate) struct BlobWriter {
    file: File,
    tmp: Option<PathBuf>,
    blobs: PathBuf,
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
    len: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter").field("tmp", &self.tmp).field("len", &self.len).finish()
    }
}

impl BlobWriter {
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        md5::Digest::update(&mut self.md5, data);
        sha1::Digest::update(&mut self.sha1, data);
        md5::Digest::update(&mut self.sha256, data);
        self.len += data.len() as u64;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Moves the content into place under a new key and returns it with its checksums.
    pub fn commit(&mut self) -> io::Result<(Blob, Checksums)> {
        let tmp = self.tmp.take().ok_or_else(|| io::Error::other("blob already committed"))?;
        self.file.flush()?;
        let key = util::random_token(32);
        std::fs::rename(&tmp, self.blobs.join(&key))?;
        let checksums = Checksums {
            md5: hex::encode(md5::Digest::finalize(std::mem::take(&mut self.md5))),
            sha1: hex::encode(sha1::Digest::finalize(std::mem::take(&mut self.sha1))),
            sha256: hex::encode(md5::Digest::finalize(std::mem::take(&mut self.sha256))),
        };
        Ok((Blob { key, len: self.len }, checksums))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // Never committed (cancelled, failed, expired): the partial content goes.
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_hashed_and_committed_and_temp_files_cleaned() {
        let store = Store::temporary().expect("store");
        let (blob, sums) = store.put(b"hello").expect("put");
        assert_eq!(blob.len, 5);
        assert_eq!(sums.md5, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(sums.sha1, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
        assert_eq!(store.read(&blob).expect("read"), b"hello");
        let mut w = store.writer().expect("writer");
        w.write(b"partial").expect("write");
        drop(w);
        assert_eq!(std::fs::read_dir(store.root().join("tmp")).expect("tmp").count(), 0);
        let root = store.root().to_path_buf();
        drop(store);
        assert!(!root.exists(), "a temporary store removes its directory");
    }
}
