//! The image's package sources: `/etc/apt/sources.list`, `sources.list.d/*.list` (one-line
//! form) and `sources.list.d/*.sources` (deb822 form), read as apt reads them.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Binary packages (`deb`) or source packages (`deb-src`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deb,
    DebSrc,
}

/// Which keys may sign a source's Release (`signed-by=` / `Signed-By:`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignedBy {
    /// Any key of the global trusted keyrings (`/etc/apt/trusted.gpg{,.d/*}`).
    #[default]
    Trusted,
    /// Only the keys in these keyring files (absolute paths inside the image).
    Files(Vec<PathBuf>),
    /// Only the trusted keys with these fingerprints (upper-case hex, no spaces; a
    /// trailing `!` means that exact subkey).
    Fingerprints(Vec<String>),
    /// An armored public key block written inline in a `.sources` stanza.
    Inline(String),
}

/// One (type, URI, suite) with its components, as apt expands a line or stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub kind: Kind,
    /// The archive root, always ending in `/` (`http://deb.debian.org/debian/`).
    pub uri: String,
    /// The suite (`bookworm`), or a flat repository's path when it ends in `/`.
    pub suite: String,
    /// Empty for a flat repository (suite ending in `/`).
    pub components: Vec<String>,
    /// `arch=`/`Architectures:`; `None` means the native architecture.
    pub architectures: Option<Vec<String>>,
    pub signed_by: SignedBy,
    /// `trusted=yes`: an unsigned or unverifiable Release is accepted.
    pub trusted: bool,
    /// The file it came from, for messages.
    pub file: PathBuf,
}

/// Every enabled source of the image under `root` (`/` in a guest), in apt's file order.
pub fn load(root: &Path) -> Result<Vec<Source>> {
    let _ = root;
    Err(Error::MalformedList {
        file: PathBuf::from("/etc/apt/sources.list"),
        line: 0,
        what: "not implemented yet".into(),
    })
}

/// Parses the one-line format (`deb [opts] uri suite comp...`).
pub fn parse_list(text: &str, file: &Path) -> Result<Vec<Source>> {
    let _ = text;
    Err(Error::MalformedList {
        file: file.to_path_buf(),
        line: 0,
        what: "not implemented yet".into(),
    })
}

/// Parses the deb822 format (`Types:`, `URIs:`, `Suites:`, `Components:`...).
pub fn parse_sources(text: &str, file: &Path) -> Result<Vec<Source>> {
    let _ = text;
    Err(Error::MalformedSources {
        file: file.to_path_buf(),
        stanza: 0,
        what: "not implemented yet".into(),
    })
}
