use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::error::{FsError, Result};

/// A sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Content-addressed blob store on disk: `blobs/<2 hex>/<64 hex>`, written through a
/// temp file in `tmp/` and renamed into place once hashed, so a killed process never
/// leaves a half-written blob under a digest name (and one a system crash cut short is
/// rewritten: see [`Store::put`]). Only contents that become part of a snapshot
/// (so of a layer) are ever written under a name; a crash in the middle of that can
/// leave a `tmp/` file behind, which [`Store::sweep_temp`] removes. Data being written
/// by a step (spill files) is anonymous: unlinked from creation, it vanishes with the
/// process however that ends.
pub struct Store {
    blobs: PathBuf,
    tmp: PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("blobs", &self.blobs).finish()
    }
}

fn store_err(path: &Path) -> impl FnOnce(io::Error) -> FsError + '_ {
    move |source| FsError::Store {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens (creating if needed) a store rooted at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<Store>> {
        Self::open_inner(path.as_ref(), None)
    }

    /// A store in a fresh temporary directory, removed when the store is dropped.
    pub fn temp() -> Result<Arc<Store>> {
        let dir = tempfile::Builder::new()
            .prefix("kiln-store-")
            .tempdir()
            .map_err(store_err(&std::env::temp_dir()))?;
        let path = dir.path().to_path_buf();
        Self::open_inner(&path, Some(dir))
    }

    fn open_inner(root: &Path, owned: Option<tempfile::TempDir>) -> Result<Arc<Store>> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blobs).map_err(store_err(&blobs))?;
        fs::create_dir_all(&tmp).map_err(store_err(&tmp))?;
        Ok(Arc::new(Store {
            blobs,
            tmp,
            _owned: owned,
        }))
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.blobs.join(&hex[..2]).join(hex)
    }

    /// Streams `reader` into the store; returns its digest and length.
    pub fn put(&self, mut reader: impl Read) -> Result<(Digest, u64)> {
        let mut tmp = tempfile::Builder::new()
            .prefix(PUT_PREFIX)
            .tempfile_in(&self.tmp)
            .map_err(store_err(&self.tmp))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 128 * 1024];
        let mut len = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FsError::Io(e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(store_err(tmp.path()))?;
            len += n as u64;
        }
        let digest = Digest(hasher.finalize().into());
        let dest = self.blob_path(&digest);
        // Not synced: a build's blobs are a working area shared for deduplication, and a
        // sync per small file past the inline budget cost more than the copy itself. A
        // blob cut short by a system crash is caught by its length and written again.
        // What outlives the build and refers to blobs (an encoded snapshot kept between
        // builds) syncs them first: `Snapshot::sync_blobs`.
        if !fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == len) {
            if let Some(dir) = dest.parent() {
                fs::create_dir_all(dir).map_err(store_err(dir))?;
            }
            if let Err(e) = tmp.persist(&dest) {
                // Another writer may have stored the same blob meanwhile (on
                // Windows, replacing an open file fails): that is success.
                if !dest.is_file() {
                    return Err(store_err(&dest)(e.error));
                }
            }
        }
        Ok((digest, len))
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(store_err(&path))
    }

    /// Flushes stored blobs to disk (`put` does not: see there), for blobs something
    /// outside this process will refer to. On Linux one `syncfs` of the store's
    /// filesystem: a base image's thousands of blobs took seconds one `fsync` at a time,
    /// each its own journal commit. Elsewhere, or if `syncfs` fails, blob by blob, each
    /// opened for writing because Windows flushes only a writable handle.
    pub(crate) fn sync_blobs<'a>(
        &self,
        digests: impl IntoIterator<Item = &'a Digest>,
    ) -> Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let dir = File::open(&self.blobs).map_err(store_err(&self.blobs))?;
            // SAFETY: syncfs takes any open descriptor; `dir` outlives the call.
            if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
                return Ok(());
            }
        }
        for digest in digests {
            let path = self.blob_path(digest);
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.sync_all())
                .map_err(store_err(&path))?;
        }
        Ok(())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// An anonymous temp file in the store's directory, for file contents that are
    /// being written and are too large to keep in memory. `tempfile_in` unlinks it at
    /// creation (`O_TMPFILE` on Linux, delete-on-close on Windows), so no name ever
    /// points at data a step wrote, and a killed process leaves nothing behind.
    pub(crate) fn spill_file(&self) -> Result<File> {
        tempfile::tempfile_in(&self.tmp).map_err(store_err(&self.tmp))
    }

    /// Deletes every file left in the store's temp directory by processes that ended
    /// in the middle of a [`Store::put`] (killed, crashed, or an older kiln whose spill
    /// files had names). Returns how many were removed. Call it only while no other
    /// process uses the store (kiln holds the cache lock exclusively): a live writer's
    /// temp file would be deleted under it.
    pub fn sweep_temp(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp).map_err(store_err(&self.tmp))? {
            let entry = entry.map_err(store_err(&self.tmp))?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let gone = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(store_err(&path)(e)),
            }
        }
        Ok(removed)
    }
}

/// Name prefix of the temp files [`Store::put`] writes before renaming them to a digest.
const PUT_PREFIX: &str = ".put-";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let store = Store::temp().unwrap();
        let (d1, n1) = store.put(&b"hello"[..]).unwrap();
        let (d2, _) = store.put(&b"hello"[..]).unwrap();
        assert_eq!(d1, d2);
        assert_eq!(n1, 5);
        assert_eq!(d1, Digest::of(b"hello"));
        let mut s = String::new();
        store
            .open_blob(&d1)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hello");
        assert!(store.contains(&d1));
        assert!(!store.contains(&Digest::of(b"other")));
        assert_eq!(Digest::from_hex(&d1.to_hex()), Some(d1));
    }

    #[test]
    fn a_blob_cut_short_is_written_again() {
        let store = Store::temp().unwrap();
        let (d, _) = store.put(&b"whole content"[..]).unwrap();
        // What an unsynced blob can look like after a system crash: its name, no data.
        fs::write(store.blob_path(&d), b"").unwrap();
        store.put(&b"whole content"[..]).unwrap();
        assert_eq!(fs::read(store.blob_path(&d)).unwrap(), b"whole content");
    }

    #[test]
    fn spill_files_have_no_name() {
        let store = Store::temp().unwrap();
        let mut f = store.spill_file().unwrap();
        f.write_all(b"secret-spill-data").unwrap();
        assert_eq!(fs::read_dir(&store.tmp).unwrap().count(), 0);
    }

    #[test]
    fn sweep_removes_leftover_temp_files() {
        let store = Store::temp().unwrap();
        // What a process killed inside `put` leaves: a named temp file.
        fs::write(store.tmp.join(".put-abc123"), b"half a blob").unwrap();
        fs::write(store.tmp.join(".tmpXYZ"), b"an old kiln's spill file").unwrap();
        let (d, _) = store.put(&b"kept"[..]).unwrap();
        assert_eq!(store.sweep_temp().unwrap(), 2);
        assert_eq!(fs::read_dir(&store.tmp).unwrap().count(), 0);
        assert!(store.contains(&d), "sweeping must not touch stored blobs");
        assert_eq!(store.sweep_temp().unwrap(), 0);
    }

    #[test]
    fn no_temp_files_left_behind() {
        let store = Store::temp().unwrap();
        store.put(&b"x"[..]).unwrap();
        store.put(&b"x"[..]).unwrap();
        assert_eq!(fs::read_dir(&store.tmp).unwrap().count(), 0);
    }
}
