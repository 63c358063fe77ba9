//! Release files: verifying their signature (InRelease, or Release + Release.gpg) and
//! reading what they promise about the indexes (sizes, SHA256, by-hash).
//!
//! `Valid-Until` is not checked: a kiln step's clock is the build's SOURCE_DATE_EPOCH (so
//! builds are reproducible), which says nothing about whether a Release is stale; checking
//! it against that clock would reject or accept Releases arbitrarily.

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature};

use crate::keyring::Keyring;
use crate::{Error, Result};

/// One file the Release lists under `SHA256:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to `dists/<suite>/` (`main/binary-amd64/Packages.xz`).
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// A parsed Release file.
#[derive(Debug, Clone, Default)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// `Acquire-By-Hash: yes`: indexes may be fetched from `by-hash/SHA256/<hash>`.
    pub acquire_by_hash: bool,
    pub entries: Vec<Entry>,
}

impl Release {
    /// Parses the (already verified) Release text; `url` names it in errors.
    pub fn parse(text: &str, url: &str) -> Result<Release> {
        let malformed = |what: String| Error::MalformedRelease {
            url: url.to_string(),
            what,
        };
        let mut paragraphs =
            kiln_deb::control::parse_paragraphs(text, url).map_err(|e| malformed(e.to_string()))?;
        if paragraphs.len() != 1 {
            return Err(malformed(format!(
                "{} paragraphs instead of one",
                paragraphs.len()
            )));
        }
        let p = paragraphs.remove(0);
        let words = |name: &str| {
            p.get(name).map_or_else(Vec::new, |v| {
                v.split_whitespace().map(str::to_string).collect()
            })
        };
        let sha256 = p
            .get("SHA256")
            .ok_or_else(|| malformed("no SHA256 hashes (only weak security information)".into()))?;
        Ok(Release {
            suite: p.get("Suite").map(str::to_string),
            codename: p.get("Codename").map(str::to_string),
            components: words("Components"),
            architectures: words("Architectures"),
            acquire_by_hash: p
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes")),
            entries: parse_entries(sha256).map_err(malformed)?,
        })
    }

    /// The entry for `path`, if listed.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }
}

/// The lines of a `SHA256:` field: `<hash> <size> <path>`.
fn parse_entries(field: &str) -> std::result::Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for line in kiln_deb::control::value_lines(field) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [hash, size, path] = parts[..] else {
            return Err(format!("bad SHA256 line '{line}'"));
        };
        let valid_hash = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        let size = size
            .parse()
            .ok()
            .filter(|_| valid_hash)
            .ok_or_else(|| format!("bad SHA256 line '{line}'"))?;
        out.push(Entry {
            path: path.to_string(),
            size,
            sha256: hash.to_ascii_lowercase(),
        });
    }
    Ok(out)
}

/// Verifies an InRelease (cleartext-signed) file and returns the signed text (with
/// `\n` line ends). Anything outside the signed part is refused by the parser.
pub fn verify_inrelease(data: &[u8], keyring: &Keyring, uri: &str, suite: &str) -> Result<String> {
    let msg = parse_cleartext(data, uri, suite)?;
    let signed = msg.signed_text();
    let sigs: Vec<_> = msg.signatures().iter().collect();
    if sigs.is_empty() {
        return Err(Error::NotSigned {
            uri: uri.to_string(),
            suite: suite.to_string(),
            file: "InRelease",
        });
    }
    keyring.verify(&sigs, signed.as_bytes())?;
    Ok(signed.replace("\r\n", "\n"))
}

/// The signed text of an InRelease without checking its signature: for a source
/// marked `trusted=yes`, whose signature apt does not require.
pub fn inrelease_text(data: &[u8], uri: &str, suite: &str) -> Result<String> {
    Ok(parse_cleartext(data, uri, suite)?
        .signed_text()
        .replace("\r\n", "\n"))
}

fn parse_cleartext(data: &[u8], uri: &str, suite: &str) -> Result<CleartextSignedMessage> {
    let unreadable = |why: String| Error::BadSignatureData {
        uri: uri.to_string(),
        suite: suite.to_string(),
        why,
    };
    let text = std::str::from_utf8(data).map_err(|e| unreadable(e.to_string()))?;
    let (msg, _) =
        CleartextSignedMessage::from_string(text).map_err(|e| unreadable(e.to_string()))?;
    Ok(msg)
}

/// Verifies a Release file against its detached Release.gpg (armored or binary, one or
/// more signatures).
pub fn verify_detached(
    release: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    uri: &str,
    suite: &str,
) -> Result<()> {
    let unreadable = |why: String| Error::BadSignatureData {
        uri: uri.to_string(),
        suite: suite.to_string(),
        why,
    };
    let (parsed, _) =
        DetachedSignature::from_reader_many(signature).map_err(|e| unreadable(e.to_string()))?;
    let parsed: Vec<DetachedSignature> = parsed.filter_map(|s| s.ok()).collect();
    if parsed.is_empty() {
        return Err(unreadable("no signature in Release.gpg".into()));
    }
    let sigs: Vec<_> = parsed.iter().map(|d| &d.signature).collect();
    keyring.verify(&sigs, release)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "Origin: Debian\nSuite: stable\nCodename: bookworm\n\
Architectures: amd64 arm64\nComponents: main contrib\nAcquire-By-Hash: yes\nSHA256:\n \
0000000000000000000000000000000000000000000000000000000000000001 12 main/binary-amd64/Packages\n \
00000000000000000000000000000000000000000000000000000000000000AB 7 main/binary-amd64/Packages.xz\n";

    #[test]
    fn release_fields_and_hashes() {
        let r = Release::parse(RELEASE, "u").unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert_eq!(r.suite.as_deref(), Some("stable"));
        assert_eq!(r.components, ["main", "contrib"]);
        assert_eq!(r.architectures, ["amd64", "arm64"]);
        assert!(r.acquire_by_hash);
        let xz = r.entry("main/binary-amd64/Packages.xz").unwrap();
        assert_eq!(xz.size, 7);
        assert!(xz.sha256.ends_with("ab"));
        assert!(r.entry("main/binary-arm64/Packages").is_none());
    }

    #[test]
    fn weak_or_malformed_releases_fail() {
        assert!(Release::parse("Suite: x\nMD5Sum:\n 00 1 a\n", "u").is_err());
        assert!(Release::parse("SHA256:\n zz 1 a\n", "u").is_err());
        assert!(
            Release::parse(
                "SHA256:\n 0000000000000000000000000000000000000000000000000000000000000001 x a\n",
                "u"
            )
            .is_err()
        );
    }
}
