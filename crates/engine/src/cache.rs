//! The step cache: which layer a step produced, keyed by everything that determines it.
//!
//! A [`CacheKey`] chains the parent step's key with the step's canonical instruction and
//! inputs (ARG/ENV values it sees, source digests, mount specs). Secret *values* are never
//! part of a key, nor their plain hashes (a short token's sha256 can be brute-forced
//! offline): a secret mount contributes its id, target and mode, and a keyed digest
//! (HMAC-SHA256 under [`SecretKey`], a random key private to this cache directory) of the
//! value it was given. The digest is also kept in the step record and must match for a
//! hit, so a build with a different value never replays an earlier value's result.
//!
//! Records are small JSON files written to a temp file and renamed into place, so a crash
//! or a concurrent build never leaves a half record. Builds hold a shared lock on the
//! cache; `kiln prune` takes it exclusively.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::sync::OnceLock;

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cache record {path} is corrupt ({why}); run `kiln prune` to reset the cache")]
    Corrupt { path: PathBuf, why: String },
    #[error("the cache's secret key: {0}")]
    SecretKey(#[source] kiln_fs::KeyError),
    /// A kiln-fs failure under the cache: sweeping the file store's temp files, or
    /// writing a cache mount's tree as a tar.
    #[error("cache directory {path}: {source}")]
    Fs {
        path: PathBuf,
        source: kiln_fs::FsError,
    },
    /// A step's inputs could not be written for hashing (a bug: they are plain data).
    #[error("computing a step's cache key: {0}")]
    Key(serde_json::Error),
    /// A `--cache-from` could not be read, or a layer it names could not be fetched.
    #[error(transparent)]
    Remote(#[from] crate::cache_remote::CacheTransferError),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A step's cache key: sha256 over the parent key and the step's inputs
/// ([`crate::inputs::StepInputs::key`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CacheKey([u8; 32]);

/// Hashed before a root key, so no root collides with a step's key.
const ROOT_VERSION: &[u8] = b"kiln-root-v2\0";

impl CacheKey {
    /// The key of a stage's starting point (a base image's manifest digest, or `scratch`).
    pub(crate) fn root(base: &str, platform: &str) -> Self {
        let mut h = Sha256::new();
        h.update(ROOT_VERSION);
        // Lengths frame the two strings, so ("ab", "c") and ("a", "bc") differ.
        for part in [base, platform] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        Self::from_digest(h.finalize().into())
    }

    pub(crate) fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CacheKey({})", &self.to_hex()[..16])
    }
}

/// A key inside another step's inputs (a `COPY --from` stage) is its hex.
impl Serialize for CacheKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// What a cached step produced: the layer it added (if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    /// Digest of the compressed layer blob in the cache's blob store; `None` for a step
    /// that changed no file.
    pub layer: Option<LayerRef>,
    /// Keyed digests ([`SecretKey::digest`]) of the secrets the step mounted, by id. A
    /// record is a hit only if they equal the digests of this build's values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

/// The random key of one cache directory, for keyed digests of secret values. Without it
/// a digest cannot be checked against guesses, so a record reveals nothing about a value.
pub(crate) struct SecretKey(kiln_fs::MacKey);

impl SecretKey {
    /// HMAC-SHA256 of the secret `id` (its length first, so ids and values cannot trade
    /// bytes) and its `value`, as hex.
    pub(crate) fn digest(&self, id: &str, value: &[u8]) -> String {
        let len = (id.len() as u64).to_le_bytes();
        hex::encode(self.0.sign(&[&len, id.as_bytes(), value]))
    }

    /// The key itself, for MACs of the cache's own files (`base_cache`).
    pub(crate) fn mac_key(&self) -> &kiln_fs::MacKey {
        &self.0
    }

    /// Loads the key at `root/secret-key`, creating it on first use (0600, written once
    /// so concurrent builds agree on one key).
    fn load_or_create(root: &Path) -> Result<Self, CacheError> {
        let path = crate::places::CacheLayout::new(root).secret_key();
        kiln_fs::MacKey::load_or_create(&path)
            .map(Self)
            .map_err(CacheError::SecretKey)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRef {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
}

/// A shared hold on the cache lock; the lock is released when the last handle drops.
#[derive(Clone)]
pub(crate) struct CacheLock {
    _file: std::sync::Arc<File>,
}

/// The on-disk cache directory.
pub(crate) struct Cache {
    root: PathBuf,
    lock: CacheLock,
    /// Loaded on first use: by a build with secrets, or one that keeps a base image's
    /// filesystem (`base_cache`).
    secret_key: OnceLock<SecretKey>,
    /// `--cache-from` caches, asked in order when this one has no record, and the blob
    /// layout their layers are fetched into.
    imported: Vec<crate::cache_remote::RemoteCache>,
    blobs: Option<kiln_oci::Layout>,
    /// Every record this build hit or wrote, for `--cache-to`.
    used: std::sync::Mutex<Vec<(CacheKey, StepRecord)>>,
}

impl Cache {
    /// Opens (creating) the cache at `root` and takes a shared lock for this build. When
    /// no other process holds the lock, temp files left by killed or crashed builds are
    /// swept first (see [`sweep_temp`]).
    pub(crate) fn open(root: &Path) -> Result<Self, CacheError> {
        let steps = crate::places::CacheLayout::new(root).steps();
        fs::create_dir_all(&steps).map_err(io_at(&steps))?;
        let lock = open_lock(root)?;
        let lock_path = crate::places::CacheLayout::new(root).lock();
        // Only a process alone with the cache may sweep: builds hold the lock shared, and
        // a running build's temp files must not vanish under it. `try`: never wait for
        // the others to finish, just skip the sweep this time.
        if FileExt::try_lock_exclusive(&lock).map_err(io_at(&lock_path))? {
            sweep_temp(root)?;
        }
        // Converts an exclusive lock to shared, or waits for `kiln prune` to finish.
        FileExt::lock_shared(&lock).map_err(io_at(&lock_path))?;
        Ok(Self {
            root: root.to_owned(),
            lock: CacheLock {
                _file: std::sync::Arc::new(lock),
            },
            secret_key: OnceLock::new(),
            imported: Vec::new(),
            blobs: None,
            used: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Makes `imported` (read from `--cache-from`) the caches asked when this one has no
    /// record; their layers are fetched into `blobs` when a step hits them.
    pub(crate) fn import(
        &mut self,
        imported: Vec<crate::cache_remote::RemoteCache>,
        blobs: kiln_oci::Layout,
    ) {
        self.imported = imported;
        self.blobs = Some(blobs);
    }

    /// The records this build hit or wrote, in order.
    pub(crate) fn used(&self) -> Vec<(CacheKey, StepRecord)> {
        self.used.lock().map(|u| u.clone()).unwrap_or_default()
    }

    fn note_used(&self, key: CacheKey, record: &StepRecord) {
        if let Ok(mut used) = self.used.lock() {
            used.push((key, record.clone()));
        }
    }

    /// A handle that keeps this build's shared lock after the `Cache` is gone (exports
    /// still write through the file store).
    pub(crate) fn lock(&self) -> CacheLock {
        self.lock.clone()
    }

    /// The cache's secret key (created on first use).
    pub(crate) fn secret_key(&self) -> Result<&SecretKey, CacheError> {
        if let Some(key) = self.secret_key.get() {
            return Ok(key);
        }
        let key = SecretKey::load_or_create(&self.root)?;
        Ok(self.secret_key.get_or_init(|| key))
    }

    fn record_path(&self, key: CacheKey) -> PathBuf {
        crate::places::CacheLayout::new(&self.root)
            .steps()
            .join(format!("{}.json", key.to_hex()))
    }

    /// The record of `key`: this cache's, else the first imported cache's (its layer
    /// fetched now, the record then kept here).
    pub(crate) fn get(&self, key: CacheKey) -> Result<Option<StepRecord>, CacheError> {
        let mut found = self.get_local(key)?;
        if found.is_none()
            && let Some(blobs) = &self.blobs
        {
            for remote in &self.imported {
                if let Some(record) = remote.get(key, blobs)? {
                    self.put(key, &record)?;
                    found = Some(record);
                    break;
                }
            }
        }
        if let Some(record) = &found {
            self.note_used(key, record);
        }
        Ok(found)
    }

    fn get_local(&self, key: CacheKey) -> Result<Option<StepRecord>, CacheError> {
        let path = self.record_path(key);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| CacheError::Corrupt {
                        path,
                        why: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Stores a record atomically: temp file in the same directory, fsync, rename.
    pub(crate) fn put(&self, key: CacheKey, record: &StepRecord) -> Result<(), CacheError> {
        self.note_used(key, record);
        let path = self.record_path(key);
        let dir = crate::places::CacheLayout::new(&self.root).steps();
        let bytes = serde_json::to_vec(record).map_err(|e| CacheError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
        // A step rerun (`--no-cache`, or a record another build just wrote) often
        // records exactly what is there: rewriting it would cost a sync for nothing.
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_at(&dir))?;
        tmp.write_all(&bytes).map_err(io_at(&path))?;
        tmp.as_file().sync_all().map_err(io_at(&path))?;
        tmp.persist(&path).map_err(|e| io_at(&path)(e.error))?;
        Ok(())
    }
}

impl Cache {
    /// Drops every record that names `layer_digest` (used when the leak guard rejects a
    /// layer: it must not be reused by a later build).
    pub(crate) fn forget_layer(&self, layer_digest: &str) {
        let dir = crate::places::CacheLayout::new(&self.root).steps();
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let names_it = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<StepRecord>(&b).ok())
                .and_then(|r| r.layer)
                .is_some_and(|l| l.digest == layer_digest);
            if names_it {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// Opens (creating) `root/lock`, unlocked.
fn open_lock(root: &Path) -> Result<File, CacheError> {
    let path = crate::places::CacheLayout::new(root).lock();
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_at(&path))
}

/// Opens `root/lock` and takes the lock `how` (exclusive for prune).
fn lock_file(root: &Path, how: fn(&File) -> std::io::Result<()>) -> Result<File, CacheError> {
    let lock = open_lock(root)?;
    how(&lock).map_err(io_at(&crate::places::CacheLayout::new(root).lock()))?;
    Ok(lock)
}

/// Name prefix of `tempfile`'s named temp files (step records, cache mount tars, the
/// secret key are written through them in their own directory).
const TEMPFILE_PREFIX: &str = ".tmp";

/// Name prefix of the OCI layout's temp files (`kiln-oci`'s blob writer).
const LAYOUT_TEMP_PREFIX: &str = ".kiln-tmp-";

/// Deletes the temp files a build killed mid-write left in the cache: the file store's
/// `files/tmp/`, and named temp files in `steps/`, `mounts/`, `bases/`, `blobs/` and
/// the root.
/// They can hold anything a step wrote (a secret value a guard would have rejected
/// included), and nothing refers to them. The caller must hold the lock exclusively.
/// Returns how many were removed.
pub(crate) fn sweep_temp(root: &Path) -> Result<usize, CacheError> {
    let layout = crate::places::CacheLayout::new(root);
    let files = layout.files();
    let mut removed = if files.join("tmp").is_dir() {
        kiln_fs::Store::open(&files)
            .and_then(|store| store.sweep_temp())
            .map_err(|source| CacheError::Fs {
                path: files.clone(),
                source,
            })?
    } else {
        0
    };
    for (dir, prefix) in [
        (root.to_owned(), TEMPFILE_PREFIX),
        (layout.steps(), TEMPFILE_PREFIX),
        (layout.mounts(), TEMPFILE_PREFIX),
        (layout.bases(), TEMPFILE_PREFIX),
        (layout.blobs(), LAYOUT_TEMP_PREFIX),
    ] {
        removed += remove_prefixed(&dir, prefix)?;
    }
    Ok(removed)
}

/// Removes the plain files in `dir` (not below) whose name starts with `prefix`.
fn remove_prefixed(dir: &Path, prefix: &str) -> Result<usize, CacheError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_at(dir)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io_at(dir))?;
        let is_temp = entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(prefix.as_bytes());
        if !is_temp || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&entry.path())(e)),
        }
    }
    Ok(removed)
}

/// Deletes everything in the cache at `root`, waiting for running builds to finish.
pub fn prune(root: &Path) -> Result<u64, CacheError> {
    if !root.exists() {
        return Ok(0);
    }
    let lock_path = crate::places::CacheLayout::new(root).lock();
    let _lock = lock_file(root, FileExt::lock_exclusive)?;
    let mut freed = 0;
    for entry in fs::read_dir(root).map_err(io_at(root))? {
        let entry = entry.map_err(io_at(root))?;
        let path = entry.path();
        if path == lock_path {
            continue;
        }
        freed += dir_size(&path);
        let removed = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(io_at(&path))?;
    }
    Ok(freed)
}

fn dir_size(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_keys_frame_their_parts() {
        assert_ne!(CacheKey::root("ab", "c"), CacheKey::root("a", "bc"));
        assert_eq!(
            CacheKey::root("scratch", "linux/amd64"),
            CacheKey::root("scratch", "linux/amd64")
        );
        assert_ne!(
            CacheKey::root("scratch", "linux/amd64"),
            CacheKey::root("scratch", "linux/arm64")
        );
        // Inside other inputs a key is its hex, never the raw bytes.
        let key = CacheKey::root("scratch", "");
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", key.to_hex()));
    }

    #[test]
    fn put_get_roundtrip_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let key = CacheKey::root("scratch", "linux/amd64");
        assert_eq!(cache.get(key).unwrap(), None);
        let rec = StepRecord {
            layer: Some(LayerRef {
                digest: "sha256:00".into(),
                diff_id: "sha256:11".into(),
                size: 3,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            }),
            secrets: BTreeMap::from([("s".into(), "00ff".into())]),
        };
        cache.put(key, &rec).unwrap();
        assert_eq!(cache.get(key).unwrap(), Some(rec));
        fs::write(cache.record_path(key), b"{not json").unwrap();
        let err = cache.get(key).unwrap_err().to_string();
        assert!(err.contains("kiln prune"), "{err}");
        // No temp files are left behind by put.
        let leftovers = fs::read_dir(crate::places::CacheLayout::new(dir.path()).steps())
            .unwrap()
            .count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn secret_key_is_private_stable_and_keyed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = Cache::open(dir.path()).unwrap();
        let d1 = a.secret_key().unwrap().digest("s", b"hunter2");
        let mode = fs::metadata(crate::places::CacheLayout::new(dir.path()).secret_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The same cache gives the same digest; it is neither the value nor its sha256.
        let b = Cache::open(dir.path()).unwrap();
        assert_eq!(b.secret_key().unwrap().digest("s", b"hunter2"), d1);
        assert_ne!(d1, hex::encode(Sha256::digest(b"hunter2")));
        assert_ne!(a.secret_key().unwrap().digest("s", b"hunter3"), d1);
        assert_ne!(a.secret_key().unwrap().digest("t", b"hunter2"), d1);
        // Another cache has another key, so the digest of the same value differs.
        let other = tempfile::tempdir().unwrap();
        let c = Cache::open(other.path()).unwrap();
        assert_ne!(c.secret_key().unwrap().digest("s", b"hunter2"), d1);
        // A truncated key file is reported, not silently replaced.
        fs::write(
            crate::places::CacheLayout::new(other.path()).secret_key(),
            b"short",
        )
        .unwrap();
        let d = Cache::open(other.path()).unwrap();
        let err = d.secret_key().err().unwrap();
        assert!(matches!(err, CacheError::SecretKey(_)), "{err}");
        assert!(err.to_string().contains("secret-key"), "{err}");
    }

    #[test]
    fn secret_digests_keep_their_format() {
        // Records written before still match: the same HMAC-SHA256 of the id's length,
        // the id and the value, in hex (the value Python's `hmac` module gives).
        let dir = tempfile::tempdir().unwrap();
        let key: Vec<u8> = (0..32).collect();
        fs::write(
            crate::places::CacheLayout::new(dir.path()).secret_key(),
            key,
        )
        .unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert_eq!(
            cache.secret_key().unwrap().digest("s", b"hunter2"),
            "798a39f4ec0709ad5d4ce44d1108f06c12abc1b6fdba7a3d02b5228c2f3afb69"
        );
    }

    #[test]
    fn open_sweeps_leftover_temp_files_only_when_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let leftovers = [
            "files/tmp/.put-abc",
            "steps/.tmpAbC12",
            "mounts/.tmpXyZ34",
            "blobs/.kiln-tmp-q1",
            ".tmpKey",
        ];
        let kept = [
            "steps/0011.json",
            "blobs/oci-layout",
            "mounts/ab.tar",
            "lock",
        ];
        let plant = || {
            for rel in leftovers.iter().chain(&kept) {
                let p = root.join(rel);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, b"x").unwrap();
            }
        };
        // Another build holds the cache (and is writing these): nothing may be swept.
        let other = Cache::open(root).unwrap();
        plant();
        let second = Cache::open(root).unwrap();
        for rel in leftovers.iter().chain(&kept) {
            assert!(
                root.join(rel).exists(),
                "{rel} was swept under a running build"
            );
        }
        drop((other, second));
        // Alone: the temp files go, everything else stays.
        let _alone = Cache::open(root).unwrap();
        for rel in leftovers {
            assert!(!root.join(rel).exists(), "{rel} was not swept");
        }
        for rel in kept {
            assert!(root.join(rel).exists(), "{rel} was removed");
        }
    }

    #[test]
    fn a_file_store_that_cannot_open_is_a_typed_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = crate::places::CacheLayout::new(dir.path()).files();
        fs::create_dir_all(files.join("tmp")).unwrap();
        // The store's blob directory is a plain file: the store cannot open to sweep.
        fs::write(files.join("blobs"), b"x").unwrap();
        let err = sweep_temp(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CacheError::Fs { path, source: kiln_fs::FsError::Store { .. } } if *path == files),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("cache directory "), "{err}");
    }

    #[test]
    fn prune_empties_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cache = Cache::open(dir.path()).unwrap();
            cache
                .put(
                    CacheKey::root("a", "b"),
                    &StepRecord {
                        layer: None,
                        secrets: BTreeMap::new(),
                    },
                )
                .unwrap();
        }
        assert!(prune(dir.path()).unwrap() > 0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1); // only the lock file
    }
}
