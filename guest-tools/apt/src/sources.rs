//! The image's package sources: `/etc/apt/sources.list`, `sources.list.d/*.list` (one-line
//! form) and `sources.list.d/*.sources` (deb822 form), read as apt reads them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kiln_deb::control::{self, Comments, Paragraph};

use crate::{Error, Result};

/// Bound on the sources one image may declare: each costs at least one download per
/// update, and a hostile `.sources` could otherwise multiply Types x URIs x Suites.
pub const MAX_SOURCES: usize = 4096;

/// Bound on one sources file: real ones are a few kB; apt itself has no limit, but the
/// whole file is held in memory.
const MAX_FILE_SIZE: u64 = 4 << 20;

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

/// Every enabled source of the image under `root` (`/` in a guest): `sources.list`
/// first, then `sources.list.d/` in name order, as apt reads them.
pub fn load(root: &Path) -> Result<Vec<Source>> {
    let mut all = Vec::new();
    for file in source_files(root)? {
        let shown = Path::new("/").join(file.strip_prefix(root).unwrap_or(&file));
        let text = read_small(&file)?;
        let found = if file.extension().is_some_and(|e| e == "sources") {
            parse_sources(&text, &shown)?
        } else {
            parse_list(&text, &shown)?
        };
        all.extend(found);
        if all.len() > MAX_SOURCES {
            return Err(Error::MalformedList {
                file: shown,
                line: 0,
                what: format!("more than {MAX_SOURCES} sources"),
            });
        }
    }
    Ok(all)
}

/// `sources.list` (when present) and the `*.list`/`*.sources` files of `sources.list.d`
/// whose names apt accepts (letters, digits, `_`, `-`, `.`), sorted by name.
fn source_files(root: &Path) -> Result<Vec<PathBuf>> {
    let main = root.join("etc/apt/sources.list");
    let mut files: Vec<PathBuf> = main.is_file().then_some(main).into_iter().collect();
    let dir = root.join("etc/apt/sources.list.d");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".list") || n.ends_with(".sources"))
        .filter(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        })
        .collect();
    names.sort();
    files.extend(
        names
            .into_iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file()),
    );
    Ok(files)
}

fn read_small(path: &Path) -> Result<String> {
    let len = fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len > MAX_FILE_SIZE {
        let e = io::Error::other(format!("larger than {MAX_FILE_SIZE} bytes"));
        return Err(Error::io(path, e));
    }
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parses the one-line format (`deb [opts] uri suite comp...`); `#` starts a comment.
pub fn parse_list(text: &str, file: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let malformed = |what: &str| Error::MalformedList {
            file: file.to_path_buf(),
            line: i + 1,
            what: what.to_string(),
        };
        out.push(parse_line(line, file).map_err(malformed)?);
    }
    Ok(out)
}

/// One non-empty line; the error is apt's reason word (`URI`, `Suite`, `Component`...).
fn parse_line(line: &str, file: &Path) -> std::result::Result<Source, &'static str> {
    let (kind, rest) = line.split_once(char::is_whitespace).ok_or("Type")?;
    let kind = parse_kind(kind).ok_or("Type")?;
    let (options, rest) = split_options(rest.trim_start())?;
    let mut words = rest.split_whitespace();
    let uri = words.next().ok_or("URI")?;
    let suite = words.next().ok_or("Suite")?.to_string();
    let components: Vec<String> = words.map(str::to_string).collect();
    check_suite_components(&suite, &components)?;
    let mut src = Source {
        kind,
        uri: normalize_uri(uri).ok_or("URI parse")?,
        suite,
        components,
        architectures: None,
        signed_by: SignedBy::Trusted,
        trusted: false,
        file: file.to_path_buf(),
    };
    for (key, value) in options {
        apply_option(&mut src, key, value)?;
    }
    Ok(src)
}

fn parse_kind(word: &str) -> Option<Kind> {
    match word {
        "deb" => Some(Kind::Deb),
        "deb-src" => Some(Kind::DebSrc),
        _ => None,
    }
}

/// A flat repository (`suite/`) takes no components; any other suite needs one.
fn check_suite_components(
    suite: &str,
    components: &[String],
) -> std::result::Result<(), &'static str> {
    match (suite.ends_with('/'), components.is_empty()) {
        (true, false) => Err("absolute Suite Component"),
        (false, true) => Err("Component"),
        _ => Ok(()),
    }
}

/// The `key=value` pairs of a `[...]` options block.
type Options<'a> = Vec<(&'a str, &'a str)>;

/// Splits a leading `[k=v k2=v2]` block off `rest`.
fn split_options(rest: &str) -> std::result::Result<(Options<'_>, &str), &'static str> {
    let Some(inner) = rest.strip_prefix('[') else {
        return Ok((Vec::new(), rest));
    };
    let (inner, after) = inner.split_once(']').ok_or("Options")?;
    let mut options = Vec::new();
    for word in inner.split_whitespace() {
        options.push(word.split_once('=').ok_or("Options")?);
    }
    Ok((options, after))
}

/// `arch=`, `signed-by=`, `trusted=`; options apt knows but kiln has no use for
/// (`lang=`, `target=`, `pdiffs=`, `by-hash=`...) are accepted and ignored as apt would
/// for an index it does not fetch.
fn apply_option(src: &mut Source, key: &str, value: &str) -> std::result::Result<(), &'static str> {
    let list = || {
        value
            .split(',')
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    };
    match key {
        "arch" => src.architectures = Some(list()),
        "signed-by" => src.signed_by = signed_by_list(list()),
        "trusted" => src.trusted = yes(value).ok_or("Options")?,
        _ => {}
    }
    Ok(())
}

/// Absolute paths are keyring files; anything else is a key fingerprint.
fn signed_by_list(items: Vec<String>) -> SignedBy {
    if items.iter().all(|i| i.starts_with('/')) {
        SignedBy::Files(items.into_iter().map(PathBuf::from).collect())
    } else {
        SignedBy::Fingerprints(
            items
                .iter()
                .map(|f| f.replace(' ', "").to_ascii_uppercase())
                .collect(),
        )
    }
}

fn yes(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "with" | "on" | "enable" => Some(true),
        "no" | "false" | "without" | "off" | "disable" => Some(false),
        _ => None,
    }
}

/// A URI apt accepts (`scheme:` something), with the trailing `/` apt adds.
fn normalize_uri(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.is_empty()
        || rest.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    Some(if uri.ends_with('/') {
        uri.to_string()
    } else {
        format!("{uri}/")
    })
}

/// Parses the deb822 format (`Types:`, `URIs:`, `Suites:`, `Components:`...); a stanza
/// with `Enabled: no` yields nothing.
pub fn parse_sources(text: &str, file: &Path) -> Result<Vec<Source>> {
    let what = file.display().to_string();
    let stanzas = control::parse_paragraphs_with(text, &what, Comments::Allowed).map_err(|e| {
        Error::MalformedSources {
            file: file.to_path_buf(),
            stanza: 0,
            what: e.to_string(),
        }
    })?;
    let mut out = Vec::new();
    for (i, stanza) in stanzas.iter().enumerate() {
        let malformed = |what: &str| Error::MalformedSources {
            file: file.to_path_buf(),
            stanza: i + 1,
            what: what.to_string(),
        };
        out.extend(parse_stanza(stanza, file).map_err(malformed)?);
        if out.len() > MAX_SOURCES {
            return Err(malformed("too many sources"));
        }
    }
    Ok(out)
}

/// One stanza, expanded to every Types x URIs x Suites combination.
fn parse_stanza(p: &Paragraph, file: &Path) -> std::result::Result<Vec<Source>, &'static str> {
    if let Some(v) = p.get("Enabled")
        && !yes(v.trim()).ok_or("Enabled")?
    {
        return Ok(Vec::new());
    }
    let words = |name: &str| -> Vec<String> {
        p.get(name).map_or_else(Vec::new, |v| {
            v.split_whitespace().map(str::to_string).collect()
        })
    };
    let kinds = words("Types")
        .iter()
        .map(|t| parse_kind(t))
        .collect::<Option<Vec<_>>>()
        .ok_or("Type")?;
    let (uris, suites, components) = (words("URIs"), words("Suites"), words("Components"));
    if kinds.is_empty() {
        return Err("Type");
    }
    if uris.is_empty() {
        return Err("URI");
    }
    if suites.is_empty() {
        return Err("Suite");
    }
    let architectures = p.get("Architectures").map(|_| words("Architectures"));
    let signed_by = p
        .get("Signed-By")
        .map_or(SignedBy::Trusted, stanza_signed_by);
    let trusted = p
        .get("Trusted")
        .map_or(Some(false), |v| yes(v.trim()))
        .ok_or("Trusted")?;
    let mut out = Vec::new();
    for kind in &kinds {
        for uri in &uris {
            for suite in &suites {
                check_suite_components(suite, &components)?;
                out.push(Source {
                    kind: *kind,
                    uri: normalize_uri(uri).ok_or("URI parse")?,
                    suite: suite.clone(),
                    components: components.clone(),
                    architectures: architectures.clone(),
                    signed_by: signed_by.clone(),
                    trusted,
                    file: file.to_path_buf(),
                });
            }
        }
    }
    Ok(out)
}

/// `Signed-By:` holds an inline armored key (multi-line, ` .` for blank lines), or
/// keyring paths and fingerprints separated by spaces or commas.
fn stanza_signed_by(value: &str) -> SignedBy {
    if value.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        let lines: Vec<&str> = control::value_lines(value)
            .map(|l| if l == "." { "" } else { l })
            .collect();
        return SignedBy::Inline(lines.join("\n") + "\n");
    }
    let items = value
        .split([' ', ',', '\n', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    signed_by_list(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Result<Vec<Source>> {
        parse_list(text, Path::new("/etc/apt/sources.list"))
    }

    #[test]
    fn one_line_entries_with_options() {
        let got = list(
            "# comment\n\ndeb http://deb.debian.org/debian bookworm main contrib # trailing\n\
             deb-src [arch=amd64,arm64 signed-by=/usr/share/keyrings/k.gpg trusted=yes] http://h:8/d/ sid main\n",
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].kind, Kind::Deb);
        assert_eq!(got[0].uri, "http://deb.debian.org/debian/");
        assert_eq!(got[0].suite, "bookworm");
        assert_eq!(got[0].components, ["main", "contrib"]);
        assert_eq!(got[0].signed_by, SignedBy::Trusted);
        assert!(!got[0].trusted);
        assert_eq!(got[1].kind, Kind::DebSrc);
        assert_eq!(got[1].uri, "http://h:8/d/");
        assert_eq!(
            got[1].architectures,
            Some(vec!["amd64".to_string(), "arm64".to_string()])
        );
        assert_eq!(
            got[1].signed_by,
            SignedBy::Files(vec![PathBuf::from("/usr/share/keyrings/k.gpg")])
        );
        assert!(got[1].trusted);
    }

    #[test]
    fn signed_by_fingerprints_and_flat_repositories() {
        let got = list("deb [signed-by=a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0] https://r/x ./\n")
            .unwrap();
        assert_eq!(
            got[0].signed_by,
            SignedBy::Fingerprints(vec!["A1B2C3D4E5F6A7B8C9D0A1B2C3D4E5F6A7B8C9D0".into()])
        );
        assert_eq!(got[0].suite, "./");
        assert!(got[0].components.is_empty());
    }

    #[test]
    fn malformed_lines_fail_as_apt_says() {
        let err = list("deb http://h/d\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "Malformed entry 1 in list file /etc/apt/sources.list (Suite)"
        );
        let err = list("\ndeb http://h/d bookworm\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "Malformed entry 2 in list file /etc/apt/sources.list (Component)"
        );
        let err = list("deb http://h/d ./ main\n").unwrap_err().to_string();
        assert!(err.ends_with("(absolute Suite Component)"), "{err}");
        assert!(list("rpm http://h/d x main\n").is_err());
        assert!(list("deb [arch=amd64 http://h/d x main\n").is_err());
        assert!(list("deb nouri x main\n").is_err());
    }

    const SOURCES: &str = "\
# Debian's default since trixie
Types: deb deb-src
URIs: http://deb.debian.org/debian http://m/debian/
Suites: bookworm bookworm-updates
Components: main
Architectures: arm64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://off/
Suites: x
Components: main
Enabled: no

Types: deb
URIs: http://inline/
Suites: s
Components: c
Trusted: yes
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL
 -----END PGP PUBLIC KEY BLOCK-----
";

    #[test]
    fn deb822_stanzas_expand_and_disable() {
        let got =
            parse_sources(SOURCES, Path::new("/etc/apt/sources.list.d/debian.sources")).unwrap();
        assert_eq!(got.len(), 2 * 2 * 2 + 1);
        assert_eq!(got[0].kind, Kind::Deb);
        assert_eq!(
            (got[0].uri.as_str(), got[0].suite.as_str()),
            ("http://deb.debian.org/debian/", "bookworm")
        );
        assert_eq!(
            (got[3].uri.as_str(), got[3].suite.as_str()),
            ("http://m/debian/", "bookworm-updates")
        );
        assert_eq!(got[4].kind, Kind::DebSrc);
        assert_eq!(got[0].architectures, Some(vec!["arm64".to_string()]));
        let keyring = PathBuf::from("/usr/share/keyrings/debian-archive-keyring.gpg");
        assert_eq!(got[0].signed_by, SignedBy::Files(vec![keyring]));
        let inline = &got[8];
        assert_eq!(inline.uri, "http://inline/");
        assert!(inline.trusted);
        assert_eq!(
            inline.signed_by,
            SignedBy::Inline("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGPL\n-----END PGP PUBLIC KEY BLOCK-----\n".into())
        );
    }

    #[test]
    fn deb822_missing_fields_name_the_stanza() {
        let file = Path::new("/etc/apt/sources.list.d/x.sources");
        let err = parse_sources(
            "Types: deb\nURIs: http://h/\nSuites: s\nComponents: c\n\nTypes: deb\nSuites: s\n",
            file,
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "Malformed entry 2 in sources file /etc/apt/sources.list.d/x.sources (URI)"
        );
    }

    #[test]
    fn load_reads_files_in_apts_order() {
        let root = std::env::temp_dir().join(format!("kiln-apt-sources-{}", std::process::id()));
        let d = root.join("etc/apt/sources.list.d");
        fs::create_dir_all(&d).unwrap();
        fs::write(root.join("etc/apt/sources.list"), "deb http://a/ s main\n").unwrap();
        fs::write(
            d.join("b.sources"),
            "Types: deb\nURIs: http://b/\nSuites: s\nComponents: main\n",
        )
        .unwrap();
        fs::write(d.join("a.list"), "deb http://c/ s main\n").unwrap();
        fs::write(d.join("ignored.list.save"), "deb http://z/ s main\n").unwrap();
        let uris: Vec<String> = load(&root).unwrap().into_iter().map(|s| s.uri).collect();
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(uris, ["http://a/", "http://c/", "http://b/"]);
    }
}
