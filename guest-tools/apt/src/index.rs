//! The package table C's resolver reads: every version of every package the stored
//! Packages indexes offer, with where to download it and how to check it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

/// One version of a package in one index.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// The archive root it is downloaded from (`Source::uri`).
    pub base_uri: String,
    /// `Filename:` relative to `base_uri` (`pool/main/c/curl/curl_7.88.1-10_amd64.deb`).
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// Every field of the paragraph, in file order (`Depends`, `Provides`, `Priority`...).
    pub fields: Vec<(String, String)>,
}

impl Candidate {
    /// A field by name (case-insensitive), as written in the index.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Where to download the .deb.
    pub fn url(&self) -> String {
        format!("{}{}", self.base_uri, self.filename)
    }
}

/// Every package version in the stored lists, by package name.
#[derive(Debug, Default)]
pub struct Packages {
    by_name: BTreeMap<String, Vec<Candidate>>,
}

impl Packages {
    /// Loads the lists `update` stored for the image's sources, for `arch` (the native
    /// architecture) and `all`.
    pub fn load(root: &Path, arch: &str) -> Result<Packages> {
        let _ = arch;
        Err(Error::MalformedIndex {
            file: root.join(crate::lists::LISTS_DIR),
            what: "not implemented yet".into(),
        })
    }

    /// Every version of `name` (in index order), empty when unknown.
    pub fn versions(&self, name: &str) -> &[Candidate] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every package name with its versions, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Candidate])> {
        self.by_name.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}
