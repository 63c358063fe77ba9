//! The on-disk cache of compiled modules. A `.cwasm` file is native code that wasmtime
//! maps executable, so whoever can write the cache directory could otherwise run code
//! inside kiln. Every file therefore carries an HMAC-SHA256 under a random per-cache key
//! (a 0600 file next to the modules), computed over the module digest, the engine's
//! compatibility hash and the compiled bytes. A file is read whole into memory, its MAC
//! verified, and only that same buffer is deserialised, so there is no window between
//! check and use. A file that fails verification is ignored (and overwritten by a fresh
//! compilation); it is never deserialised.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use kiln_fs::{MAC_LEN, MacKey};
use wasmtime::{Engine, Module};

use crate::error::RuntimeError;

/// Name of the key file inside the cache directory.
const KEY_FILE: &str = "cache.key";
/// Largest cached file read back. Modules are at most 512 MiB of wasm
/// (`run::MAX_MODULE_BYTES`); compiled code is a few times larger at worst. Anything
/// bigger was not written by kiln and is not read into memory.
const MAX_CACHED_BYTES: u64 = 4 << 30;

/// The verified disk cache of one runtime.
pub(crate) struct DiskCache {
    dir: PathBuf,
    key: MacKey,
    compat: String,
}

impl DiskCache {
    /// Opens the cache in `dir` (created if needed), creating its key on first use.
    pub(crate) fn open(dir: &Path, compat: String) -> Result<DiskCache, RuntimeError> {
        let err = |path: &Path, e: std::io::Error| RuntimeError::Cache {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        let key_path = dir.join(KEY_FILE);
        let key = MacKey::load_or_create(&key_path).map_err(RuntimeError::CacheKey)?;
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            key,
            compat,
        })
    }

    fn path(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hex::encode(digest), self.compat))
    }

    /// What a file for `digest` starts with after its MAC: the digest and the engine's
    /// compatibility hash, so a valid file copied under another name is still refused.
    fn header(&self, digest: &[u8; 32]) -> Vec<u8> {
        let mut h = Vec::with_capacity(32 + 1 + self.compat.len());
        h.extend_from_slice(digest);
        h.push(self.compat.len() as u8);
        h.extend_from_slice(self.compat.as_bytes());
        h
    }

    /// The cached module for `digest`, if a file for it exists and verifies.
    pub(crate) fn load(&self, engine: &Engine, digest: &[u8; 32]) -> Option<Module> {
        let bytes = read_bounded(&self.path(digest))?;
        let (tag, signed) = bytes.split_at_checked(MAC_LEN)?;
        if !self.key.verify(signed, tag) {
            return None;
        }
        let code = signed.strip_prefix(self.header(digest).as_slice())?;
        // SAFETY: `code` lies inside the buffer whose MAC was just verified under this
        // cache's secret key, after a header binding it to this module digest and this
        // engine's compatibility hash: these are bytes this runtime's engine serialised.
        // They are deserialised from memory, so a later change to the file cannot matter.
        unsafe { Module::deserialize(engine, code) }.ok()
    }

    /// Writes `module` to the cache (temp file, then rename): MAC, header, code.
    pub(crate) fn store(&self, digest: &[u8; 32], module: &Module) -> std::io::Result<()> {
        let mut signed = self.header(digest);
        signed.extend_from_slice(&module.serialize().map_err(std::io::Error::other)?);
        let tag = self.key.sign(&[&signed]);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(&tag)?;
        tmp.write_all(&signed)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(digest)).map_err(|e| e.error)?;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn file_for(&self, digest: &[u8; 32]) -> PathBuf {
        self.path(digest)
    }
}

/// Reads a whole cache file, or `None` if it is missing, unreadable or too large.
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > MAX_CACHED_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_CACHED_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= MAX_CACHED_BYTES).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module (func (export "_start")))"#;

    fn compiled(engine: &Engine) -> Module {
        Module::new(engine, wat::parse_str(WAT).unwrap()).unwrap()
    }

    /// Overwrites `range` of the file with 0xCC (int3 on x86: executing it traps).
    fn corrupt(path: &Path, range: std::ops::Range<usize>) {
        let mut bytes = std::fs::read(path).unwrap();
        let end = range.end.min(bytes.len());
        bytes[range.start..end].fill(0xCC);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_stored_module_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = DiskCache::open(dir.path(), "c0".into()).unwrap();
        cache.store(&[1; 32], &compiled(&engine)).unwrap();
        assert!(cache.load(&engine, &[1; 32]).is_some());
        assert!(cache.load(&engine, &[2; 32]).is_none());
    }

    #[test]
    fn corrupted_bytes_are_never_deserialised() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = DiskCache::open(dir.path(), "c0".into()).unwrap();
        cache.store(&[1; 32], &compiled(&engine)).unwrap();
        let path = cache.file_for(&[1; 32]);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        corrupt(&path, len / 2..len / 2 + 64);
        assert!(cache.load(&engine, &[1; 32]).is_none());
    }

    #[test]
    fn a_valid_file_under_another_name_or_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = DiskCache::open(dir.path(), "c0".into()).unwrap();
        cache.store(&[1; 32], &compiled(&engine)).unwrap();
        std::fs::copy(cache.file_for(&[1; 32]), cache.file_for(&[2; 32])).unwrap();
        assert!(cache.load(&engine, &[2; 32]).is_none());
        // Another cache's key (a file planted from elsewhere) does not verify either.
        let other = tempfile::tempdir().unwrap();
        let foreign = DiskCache::open(other.path(), "c0".into()).unwrap();
        foreign.store(&[3; 32], &compiled(&engine)).unwrap();
        std::fs::copy(foreign.file_for(&[3; 32]), cache.file_for(&[3; 32])).unwrap();
        assert!(cache.load(&engine, &[3; 32]).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        DiskCache::open(dir.path(), "c0".into()).unwrap();
        let key_path = dir.path().join(KEY_FILE);
        let first = std::fs::read(&key_path).unwrap();
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        DiskCache::open(dir.path(), "c0".into()).unwrap();
        assert_eq!(std::fs::read(&key_path).unwrap(), first);
        assert_eq!(first.len(), kiln_fs::MAC_KEY_LEN);
    }
}
