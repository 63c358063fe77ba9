//! The OpenPGP keys the image trusts, loaded as apt's gpgv call sees them, and the check
//! of a signature against them with apt's outcomes (good, `NO_PUBKEY`, `BADSIG`).

use std::fs;
use std::io;
use std::path::Path;

use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::packet::{PublicKey, PublicSubkey, Signature};
use pgp::types::KeyDetails;

use crate::sources::SignedBy;
use crate::{Error, Result};

/// Bound on one keyring file: Debian's whole archive keyring is under 100 kB; a keyring
/// is read into memory and parsed, so a hostile one must not be unbounded.
const MAX_KEYRING_SIZE: u64 = 16 << 20;

/// The armor line that starts each key block of a `.asc` file.
const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";

/// A set of public keys (primary keys with their subkeys).
#[derive(Debug, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    /// apt's `W:` lines about keyrings it could not use (missing or unreadable files).
    pub warnings: Vec<String>,
}

impl Keyring {
    /// The keys a source may be signed by: its `Signed-By`, else the global keyrings
    /// (`/etc/apt/trusted.gpg` and `/etc/apt/trusted.gpg.d/*.{gpg,asc}`).
    pub fn for_source(root: &Path, signed_by: &SignedBy) -> Result<Keyring> {
        match signed_by {
            SignedBy::Trusted => Keyring::trusted(root),
            SignedBy::Files(files) => {
                let mut ring = Keyring::default();
                for file in files {
                    ring.add_file(root, file);
                }
                Ok(ring)
            }
            SignedBy::Fingerprints(fprs) => {
                let mut ring = Keyring::trusted(root)?;
                ring.keys
                    .retain(|k| fprs.iter().any(|f| key_matches_fingerprint(k, f)));
                Ok(ring)
            }
            SignedBy::Inline(armored) => {
                Keyring::from_bytes(armored.as_bytes(), Path::new("Signed-By"))
            }
        }
    }

    /// `/etc/apt/trusted.gpg` and `/etc/apt/trusted.gpg.d/*.{gpg,asc}` in name order.
    fn trusted(root: &Path) -> Result<Keyring> {
        let mut ring = Keyring::default();
        let legacy = Path::new("/etc/apt/trusted.gpg");
        if root.join("etc/apt/trusted.gpg").is_file() {
            ring.add_file(root, legacy);
        }
        let dir = root.join("etc/apt/trusted.gpg.d");
        let mut names: Vec<String> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(dir, e)),
        };
        names.retain(|n| n.ends_with(".gpg") || n.ends_with(".asc"));
        names.sort();
        for name in names {
            ring.add_file(root, &Path::new("/etc/apt/trusted.gpg.d").join(name));
        }
        Ok(ring)
    }

    /// Adds the keys of `file` (a path inside the image); a missing, unreadable or
    /// unparseable file is a warning, as apt gives, and adds nothing.
    fn add_file(&mut self, root: &Path, file: &Path) {
        let host = root.join(file.strip_prefix("/").unwrap_or(file));
        let unreadable = |e: io::Error| Error::BadKeyring {
            file: file.to_path_buf(),
            why: e.to_string(),
        };
        let parsed = read_keyring_file(&host)
            .map_err(unreadable)
            .and_then(|data| Keyring::from_bytes(&data, file));
        match parsed {
            Ok(more) => self.keys.extend(more.keys),
            Err(e) => self.warnings.push(e.to_string()),
        }
    }

    /// The keys of a binary keyring or of one or more armored key blocks; `name` is
    /// for messages. Keys rpgp cannot parse are skipped, as gpg skips unusable keys.
    pub fn from_bytes(data: &[u8], name: &Path) -> Result<Keyring> {
        let bad = |why: String| Error::BadKeyring {
            file: name.to_path_buf(),
            why,
        };
        let mut keys = Vec::new();
        match std::str::from_utf8(data)
            .ok()
            .filter(|t| t.contains(ARMOR_BEGIN))
        {
            Some(text) => {
                for block in text.split(ARMOR_BEGIN).skip(1) {
                    let block = format!("{ARMOR_BEGIN}{block}");
                    let (parsed, _) = SignedPublicKey::from_armor_many(block.as_bytes())
                        .map_err(|e| bad(e.to_string()))?;
                    keys.extend(parsed.filter_map(|k| k.ok()));
                }
            }
            None => {
                let parsed =
                    SignedPublicKey::from_bytes_many(data).map_err(|e| bad(e.to_string()))?;
                keys.extend(parsed.filter_map(|k| k.ok()));
            }
        }
        if keys.is_empty() && !data.is_empty() {
            return Err(bad("no usable OpenPGP public key in it".into()));
        }
        Ok(Keyring {
            keys,
            warnings: Vec::new(),
        })
    }

    /// Whether no key was found.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// apt's rule: the data is good when at least one signature verifies with a trusted
    /// key. Otherwise a signature by a known key that fails is `BADSIG`, and a signature
    /// by no known key is `NO_PUBKEY`.
    pub fn verify(&self, signatures: &[&Signature], data: &[u8]) -> Result<()> {
        let mut failure = None;
        for sig in signatures {
            let issuers = issuer_ids(sig);
            let candidates = self.signing_keys(sig);
            if candidates.is_empty() {
                failure.get_or_insert(Error::NoPubkey {
                    key_id: issuers.first().cloned().unwrap_or_default(),
                });
                continue;
            }
            if candidates.iter().any(|k| k.verify(sig, data)) {
                return Ok(());
            }
            let key_id = candidates[0].key_id();
            failure = Some(Error::BadSig { key_id });
        }
        Err(failure.unwrap_or(Error::NoPubkey {
            key_id: String::new(),
        }))
    }

    /// The keys and subkeys (with a valid binding) that `sig` names as its issuer.
    fn signing_keys(&self, sig: &Signature) -> Vec<KeyRef<'_>> {
        let mut out = Vec::new();
        for key in &self.keys {
            if is_issuer(sig, &key.primary_key) {
                out.push(KeyRef::Primary(&key.primary_key));
            }
            for sub in &key.public_subkeys {
                if is_issuer(sig, &sub.key) && sub.verify_bindings(&key.primary_key).is_ok() {
                    out.push(KeyRef::Sub(&sub.key));
                }
            }
        }
        out
    }
}

/// A primary key or a subkey that may have made a signature.
enum KeyRef<'a> {
    Primary(&'a PublicKey),
    Sub(&'a PublicSubkey),
}

impl KeyRef<'_> {
    fn verify(&self, sig: &Signature, data: &[u8]) -> bool {
        match self {
            KeyRef::Primary(k) => sig.verify(*k, data).is_ok(),
            KeyRef::Sub(k) => sig.verify(*k, data).is_ok(),
        }
    }

    fn key_id(&self) -> String {
        let id = match self {
            KeyRef::Primary(k) => k.legacy_key_id(),
            KeyRef::Sub(k) => k.legacy_key_id(),
        };
        id.to_string().to_ascii_uppercase()
    }
}

fn read_keyring_file(path: &Path) -> io::Result<Vec<u8>> {
    let len = fs::metadata(path)?.len();
    if len > MAX_KEYRING_SIZE {
        return Err(io::Error::other(format!(
            "larger than {MAX_KEYRING_SIZE} bytes"
        )));
    }
    fs::read(path)
}

/// Whether `key` is the one `sig` names (by issuer fingerprint or long key ID).
fn is_issuer(sig: &Signature, key: &impl KeyDetails) -> bool {
    let fpr = key.fingerprint();
    let id = key.legacy_key_id();
    sig.issuer_fingerprint().iter().any(|f| **f == fpr)
        || sig.issuer_key_id().iter().any(|k| **k == id)
}

/// The signature's issuer key IDs as apt prints them (16 upper-case hex digits).
fn issuer_ids(sig: &Signature) -> Vec<String> {
    let from_fpr = sig.issuer_fingerprint().into_iter().map(|f| {
        let hex = format!("{f:X}");
        hex[hex.len().saturating_sub(16)..].to_string()
    });
    let from_id = sig
        .issuer_key_id()
        .into_iter()
        .map(|k| k.to_string().to_ascii_uppercase());
    from_id.chain(from_fpr).collect()
}

/// `Signed-By` fingerprint rule, as the host's apt 2.6 applies it: the fingerprint of
/// the primary key or of any of its subkeys, with or without apt's `!` suffix, selects
/// the key (the signature check then still matches the issuer exactly).
fn key_matches_fingerprint(key: &SignedPublicKey, wanted: &str) -> bool {
    let wanted = wanted.strip_suffix('!').unwrap_or(wanted);
    let hex = |k: &dyn KeyDetails| format!("{:X}", k.fingerprint());
    hex(&key.primary_key) == wanted || key.public_subkeys.iter().any(|s| hex(&s.key) == wanted)
}
