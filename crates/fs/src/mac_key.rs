//! A random HMAC-SHA256 key private to one cache directory, kept in a 0600 file beside
//! what it protects (the runtime's compiled modules, the engine's keyed digests of secret
//! values). Whoever cannot read the file cannot forge or check a MAC made with it.
//!
//! The file is created once: random bytes written to a private temp file in the same
//! directory and linked into place without replacing, so concurrent first users agree on
//! one key and nobody reads a half-written one. A file of the wrong length is an error,
//! never silently replaced: the operator should look at it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ring::hmac;

/// Length of the key: HMAC-SHA256's output size, which gives it full strength (a longer
/// key adds nothing).
pub const MAC_KEY_LEN: usize = 32;

/// Length of a MAC (HMAC-SHA256's output).
pub const MAC_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no random bytes for a new key: {source}", path.display())]
    Random {
        path: PathBuf,
        source: getrandom::Error,
    },
    #[error("{} is not a {MAC_KEY_LEN}-byte key: delete it to start afresh", path.display())]
    Length { path: PathBuf },
    #[error("{} vanished while it was created", path.display())]
    Vanished { path: PathBuf },
}

/// An HMAC-SHA256 key loaded from (or created in) its file.
#[derive(Clone)]
pub struct MacKey(hmac::Key);

/// Never the key.
impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

impl MacKey {
    /// The key in the file at `path`, creating the file on first use.
    pub fn load_or_create(path: &Path) -> Result<MacKey, KeyError> {
        let bytes = match read(path)? {
            Some(bytes) => bytes,
            None => create(path)?,
        };
        Ok(MacKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes[..])))
    }

    /// The MAC of `parts`, concatenated.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(part);
        }
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Whether `tag` is the MAC of `data` (compared in constant time).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.0, data, tag).is_ok()
    }
}

type KeyBytes = zeroize::Zeroizing<[u8; MAC_KEY_LEN]>;

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a new random key to `path`, or reads the one a concurrent user wrote first.
fn create(path: &Path) -> Result<KeyBytes, KeyError> {
    let mut bytes = KeyBytes::default();
    getrandom::fill(&mut bytes[..]).map_err(|source| KeyError::Random {
        path: path.to_owned(),
        source,
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // tempfile creates its files with mode 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_at(dir))?;
    tmp.write_all(&bytes[..]).map_err(io_at(path))?;
    tmp.as_file().sync_all().map_err(io_at(path))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(bytes),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            read(path)?.ok_or_else(|| KeyError::Vanished {
                path: path.to_owned(),
            })
        }
        Err(e) => Err(io_at(path)(e.error)),
    }
}

/// The key in `path`; `None` if there is no such file. Reads one byte past the key's
/// length at most, so a huge file is refused without being read.
fn read(path: &Path) -> Result<Option<KeyBytes>, KeyError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at(path)(e)),
    };
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(MAC_KEY_LEN + 1));
    file.take(MAC_KEY_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(io_at(path))?;
    if buf.len() != MAC_KEY_LEN {
        return Err(KeyError::Length {
            path: path.to_owned(),
        });
    }
    let mut bytes = KeyBytes::default();
    bytes.copy_from_slice(&buf);
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_key_is_created_private_and_read_back_the_same() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = MacKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap().len(), MAC_KEY_LEN);
        let b = MacKey::load_or_create(&path).unwrap();
        let tag = a.sign(&[b"ab", b"c"]);
        assert_eq!(b.sign(&[b"a", b"bc"]), tag, "parts are concatenated");
        assert!(b.verify(b"abc", &tag));
        assert!(!b.verify(b"abd", &tag));
        assert_eq!(format!("{a:?}"), "MacKey(..)");
        // No temp file is left beside the key.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_the_file_s_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, [0x0b; MAC_KEY_LEN]).unwrap();
        // The value Python's `hmac` module gives for this key and message.
        let tag = MacKey::load_or_create(&path).unwrap().sign(&[b"Hi There"]);
        assert_eq!(
            hex::encode(tag),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }

    #[test]
    fn a_key_file_of_the_wrong_length_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 5, MAC_KEY_LEN + 1, 1 << 20] {
            let path = dir.path().join(format!("k{len}"));
            std::fs::write(&path, vec![1; len]).unwrap();
            let err = MacKey::load_or_create(&path).unwrap_err();
            assert!(matches!(err, KeyError::Length { .. }), "{err}");
            assert!(err.to_string().contains("delete it"), "{err}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), len as u64);
        }
    }

    #[test]
    fn an_unwritable_directory_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("k");
        let err = MacKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, KeyError::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
