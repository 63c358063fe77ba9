//! The package table C's resolver reads: every version of every package the stored
//! Packages indexes offer, with where to download it and how to check it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kiln_deb::control::{self, Paragraph};
use kiln_deb::version::Version;

use crate::sources::{self, Kind, Source};
use crate::{Error, Result, lists};

/// Bound on one stored Packages file: Debian's largest (main, amd64) is about 50 MB
/// uncompressed; the whole file is parsed in memory, so a hostile mirror must not be
/// able to make it unbounded. `update` applies the same bound when decompressing.
pub const MAX_INDEX_SIZE: u64 = 256 << 20;

/// One version of a package in one index.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub package: String,
    pub version: Version,
    pub architecture: String,
    /// The archive root it is downloaded from (`Source::uri`).
    pub base_uri: String,
    /// The suite of the source whose index listed it (`bookworm`).
    pub suite: String,
    /// The component of that index (`main`), empty for a flat repository.
    pub component: String,
    /// `Filename:` relative to `base_uri` (`pool/main/c/curl/curl_7.88.1-10_amd64.deb`).
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// The whole paragraph (`Depends`, `Provides`, `Priority`, `Multi-Arch`...).
    pub paragraph: Paragraph,
}

impl Candidate {
    /// A field by name (case-insensitive), as written in the index.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.paragraph.get(name)
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
    /// Loads the lists `update` stored for the image's `deb` sources, for `arch` (the
    /// native architecture, or a source's own `arch=` list). A list that was never
    /// downloaded (or was removed with `rm -rf /var/lib/apt/lists/*`) adds nothing.
    pub fn load(root: &Path, arch: &str) -> Result<Packages> {
        let mut table = Packages::default();
        for src in sources::load(root)?.iter().filter(|s| s.kind == Kind::Deb) {
            for index in index_files(src, arch) {
                let file = lists::dir(root).join(lists::file_name(&index.url));
                if let Some(text) = read_index(&file)? {
                    table.add_index(&text, &file, src, &index.component)?;
                }
            }
        }
        Ok(table)
    }

    /// Adds every paragraph of one Packages file listed by `src`.
    pub fn add_index(
        &mut self,
        text: &str,
        file: &Path,
        src: &Source,
        component: &str,
    ) -> Result<()> {
        let bad = |what: String| Error::MalformedIndex {
            file: file.to_path_buf(),
            what,
        };
        let paragraphs = control::parse_paragraphs(text, &file.display().to_string())
            .map_err(|e| bad(e.to_string()))?;
        for p in paragraphs {
            let c = candidate(p, src, component).map_err(bad)?;
            self.by_name.entry(c.package.clone()).or_default().push(c);
        }
        Ok(())
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

/// One binary Packages index a source has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// As apt prints it: `bookworm/main amd64 Packages`.
    pub what: String,
    /// Its uncompressed URL (the lists/ file is named after it).
    pub url: String,
    /// `main`, `contrib`...; empty for a flat repository.
    pub component: String,
}

/// Each binary Packages index `src` has for `native` (or for its own `arch=` list).
pub fn index_files(src: &Source, native: &str) -> Vec<IndexFile> {
    let archs = src
        .architectures
        .clone()
        .unwrap_or_else(|| vec![native.to_string()]);
    let dist = lists::dist_url(src);
    if src.components.is_empty() {
        let what = format!("{} Packages", src.suite);
        let url = format!("{dist}Packages");
        return vec![IndexFile {
            what,
            url,
            component: String::new(),
        }];
    }
    let mut out = Vec::new();
    for comp in &src.components {
        for arch in &archs {
            out.push(IndexFile {
                what: format!("{}/{comp} {arch} Packages", src.suite),
                url: format!("{dist}{}", lists::packages_path(comp, arch)),
                component: comp.clone(),
            });
        }
    }
    out
}

/// The stored index, or `None` when there is none.
fn read_index(file: &PathBuf) -> Result<Option<String>> {
    let len = match fs::metadata(file) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(file, e)),
    };
    if len > MAX_INDEX_SIZE {
        let what = format!("larger than {MAX_INDEX_SIZE} bytes");
        return Err(Error::MalformedIndex {
            file: file.clone(),
            what,
        });
    }
    let bytes = fs::read(file).map_err(|e| Error::io(file, e))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// One paragraph as a candidate; the error names what is missing or malformed.
fn candidate(
    p: Paragraph,
    src: &Source,
    component: &str,
) -> std::result::Result<Candidate, String> {
    let package = p
        .get("Package")
        .ok_or("a paragraph has no Package field")?
        .trim()
        .to_string();
    let need = |f: &str| {
        p.get(f)
            .map(|v| v.trim().to_string())
            .ok_or(format!("package {package} has no {f} field"))
    };
    let version: Version = need("Version")?
        .parse()
        .map_err(|e| format!("package {package}: {e}"))?;
    let (architecture, filename, sha256) =
        (need("Architecture")?, need("Filename")?, need("SHA256")?);
    let size = need("Size")?
        .parse()
        .map_err(|_| format!("package {package} has a bad Size"))?;
    if filename.split('/').any(|c| c == "..") || filename.starts_with('/') {
        return Err(format!(
            "package {package} has an unsafe Filename {filename}"
        ));
    }
    Ok(Candidate {
        package,
        version,
        architecture,
        base_uri: src.uri.clone(),
        suite: src.suite.clone(),
        component: component.to_string(),
        filename,
        size,
        sha256: sha256.to_ascii_lowercase(),
        paragraph: p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        let text = "deb http://h:1/debian bookworm main\n";
        sources::parse_list(text, Path::new("/etc/apt/sources.list"))
            .unwrap()
            .remove(0)
    }

    const INDEX: &str = "Package: curl\nVersion: 7.88.1-10+deb12u5\nArchitecture: amd64\n\
Depends: libc6 (>= 2.34), libcurl4 (= 7.88.1-10+deb12u5)\nFilename: pool/main/c/curl/curl_7.88.1-10+deb12u5_amd64.deb\n\
Size: 315000\nSHA256: ABCDEF\n\nPackage: curl\nVersion: 7.74.0-1\nArchitecture: amd64\n\
Filename: pool/main/c/curl/curl_7.74.0-1_amd64.deb\nSize: 1\nSHA256: 00\n";

    #[test]
    fn paragraphs_become_candidates() {
        let mut t = Packages::default();
        t.add_index(INDEX, Path::new("x"), &source(), "main")
            .unwrap();
        let curl = t.versions("curl");
        assert_eq!(curl.len(), 2);
        assert_eq!(curl[0].version.to_string(), "7.88.1-10+deb12u5");
        assert!(curl[0].version > curl[1].version);
        assert_eq!(
            curl[0].url(),
            "http://h:1/debian/pool/main/c/curl/curl_7.88.1-10+deb12u5_amd64.deb"
        );
        assert_eq!(curl[0].sha256, "abcdef");
        assert_eq!(
            curl[0].field("depends"),
            Some("libc6 (>= 2.34), libcurl4 (= 7.88.1-10+deb12u5)")
        );
        assert!(t.versions("wget").is_empty());
    }

    #[test]
    fn hostile_paragraphs_are_refused() {
        let mut t = Packages::default();
        let escape = INDEX.replace("pool/main/c/curl/curl_7.74.0-1", "../../etc/passwd");
        assert!(
            t.add_index(&escape, Path::new("x"), &source(), "main")
                .unwrap_err()
                .to_string()
                .contains("unsafe Filename")
        );
        let no_size = "Package: a\nVersion: 1\nArchitecture: all\nFilename: p/a.deb\nSHA256: 00\n";
        assert!(
            t.add_index(no_size, Path::new("x"), &source(), "main")
                .is_err()
        );
    }

    #[test]
    fn index_urls_per_component_and_arch() {
        let mut src = source();
        src.components.push("contrib".into());
        let files = index_files(&src, "arm64");
        assert_eq!(files[1].what, "bookworm/contrib arm64 Packages");
        assert_eq!(files[1].component, "contrib");
        assert_eq!(
            files[1].url,
            "http://h:1/debian/dists/bookworm/contrib/binary-arm64/Packages"
        );
    }
}
