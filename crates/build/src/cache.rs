//! The step cache: which layer a step produced, keyed by everything that determines it.
//!
//! A [`CacheKey`] chains the parent step's key with the step's canonical instruction and
//! inputs (ARG/ENV values it sees, source digests, mount specs). Secret *values* are never
//! part of a key: a secret mount contributes only its id, target and mode.
//!
//! Records are small JSON files written to a temp file and renamed into place, so a crash
//! or a concurrent build never leaves a half record. Builds hold a shared lock on the
//! cache; `kiln prune` takes it exclusively.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

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
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A step's cache key: sha256 over the parent key and the step's canonical inputs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of a stage's starting point (a base image's manifest digest, or `scratch`).
    pub fn root(base: &str, platform: &str) -> Self {
        KeyBuilder::new(None)
            .field("base", base)
            .field("platform", platform)
            .finish()
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CacheKey({})", &self.to_hex()[..16])
    }
}

/// Builds a key from named fields; lengths are framed so no two field lists collide.
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn new(parent: Option<CacheKey>) -> Self {
        let mut h = Sha256::new();
        h.update(b"kiln-step-v1\0");
        if let Some(p) = parent {
            h.update(p.0);
        }
        Self(h)
    }

    pub fn field(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
        self
    }

    pub fn finish(self) -> CacheKey {
        CacheKey(self.0.finalize().into())
    }
}

/// What a cached step produced: the layer it added (if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Digest of the compressed layer blob in the cache's blob store; `None` for a step
    /// that changed no file.
    pub layer: Option<LayerRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
}

/// The on-disk cache directory.
pub struct Cache {
    root: PathBuf,
    _lock: File,
}

impl Cache {
    /// Opens (creating) the cache at `root` and takes a shared lock for this build.
    pub fn open(root: &Path) -> Result<Self, CacheError> {
        let steps = root.join("steps");
        fs::create_dir_all(&steps).map_err(io_at(&steps))?;
        let lock = lock_file(root, FileExt::lock_shared)?;
        Ok(Self {
            root: root.to_owned(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn record_path(&self, key: CacheKey) -> PathBuf {
        self.root
            .join("steps")
            .join(format!("{}.json", key.to_hex()))
    }

    pub fn get(&self, key: CacheKey) -> Result<Option<StepRecord>, CacheError> {
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
    pub fn put(&self, key: CacheKey, record: &StepRecord) -> Result<(), CacheError> {
        let path = self.record_path(key);
        let dir = self.root.join("steps");
        let bytes = serde_json::to_vec(record).map_err(|e| CacheError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
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
    pub fn forget_layer(&self, layer_digest: &str) {
        let dir = self.root.join("steps");
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

/// Opens `root/lock` and takes the lock `how` (shared for builds, exclusive for prune).
fn lock_file(root: &Path, how: fn(&File) -> std::io::Result<()>) -> Result<File, CacheError> {
    let path = root.join("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_at(&path))?;
    how(&lock).map_err(io_at(&path))?;
    Ok(lock)
}

/// Deletes everything in the cache at `root`, waiting for running builds to finish.
pub fn prune(root: &Path) -> Result<u64, CacheError> {
    if !root.exists() {
        return Ok(0);
    }
    let lock_path = root.join("lock");
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
    fn keys_frame_their_fields() {
        let a = KeyBuilder::new(None).field("a", "bc").finish();
        let b = KeyBuilder::new(None).field("ab", "c").finish();
        assert_ne!(a, b);
        let p = CacheKey::root("scratch", "linux/amd64");
        assert_ne!(
            KeyBuilder::new(Some(p)).field("run", "x").finish(),
            KeyBuilder::new(None).field("run", "x").finish()
        );
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
        };
        cache.put(key, &rec).unwrap();
        assert_eq!(cache.get(key).unwrap(), Some(rec));
        fs::write(cache.record_path(key), b"{not json").unwrap();
        let err = cache.get(key).unwrap_err().to_string();
        assert!(err.contains("kiln prune"), "{err}");
        // No temp files are left behind by put.
        let leftovers = fs::read_dir(dir.path().join("steps")).unwrap().count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn prune_empties_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cache = Cache::open(dir.path()).unwrap();
            cache
                .put(CacheKey::root("a", "b"), &StepRecord { layer: None })
                .unwrap();
        }
        assert!(prune(dir.path()).unwrap() > 0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1); // only the lock file
    }
}
