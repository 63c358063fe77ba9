//! The OpenPGP keys the image trusts, loaded as apt's gpgv call would see them.

use std::path::Path;

use crate::sources::SignedBy;
use crate::{Error, Result};

/// A set of public keys (primary keys with their subkeys).
#[derive(Debug, Default)]
pub struct Keyring {
    keys: Vec<()>,
}

impl Keyring {
    /// The keys a source may be signed by: its `Signed-By`, else the global keyrings
    /// (`/etc/apt/trusted.gpg` and `/etc/apt/trusted.gpg.d/*.{gpg,asc}`).
    pub fn for_source(root: &Path, signed_by: &SignedBy) -> Result<Keyring> {
        let _ = (root, signed_by);
        Err(Error::BadKeyring {
            file: root.join("etc/apt/trusted.gpg.d"),
            why: "not implemented yet".into(),
        })
    }

    /// Whether no key was found.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
