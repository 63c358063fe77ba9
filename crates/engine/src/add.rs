//! What `ADD` does beyond `COPY`: local tar archives are unpacked, and URLs are
//! downloaded (through the build's network policy) and checked against `--checksum`.
//!
//! Archive entries are untrusted: every name is cleaned relative to the destination and an
//! entry that would climb out of it is an error; links are recreated inside the virtual
//! tree (their targets are just bytes there); device nodes are skipped.

use std::io::{BufRead, BufReader, Read, Write};

use kiln_fs::{FileType, Follow, Timestamp, Tree};
use sha2::{Digest as _, Sha256};

use crate::context::clean_rel;
use crate::copy::{Placement, mkdir_p, normalize_abs};
use crate::error::StepError;

/// Why an `ADD` could not unpack or download its source. URLs are shown with any
/// password replaced by `****`.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("ADD: {0:?} archives are not supported; use a plain, gzip or zstd tar")]
    UnsupportedArchive(Archive),
    #[error("ADD: reading the archive: {0}")]
    Archive(std::io::Error),
    #[error("ADD: archive entry {0:?} points outside the destination")]
    EntryOutside(String),
    #[error("ADD: {path}: {source}")]
    Entry {
        path: String,
        source: kiln_fs::FsError,
    },
    #[error("ADD: {kind} {path} has no target")]
    NoLinkTarget { kind: &'static str, path: String },
    #[error("ADD: hard link target {0:?} points outside")]
    LinkOutside(String),
    #[error("ADD: invalid URL: {0}")]
    BadUrl(url::ParseError),
    #[error("ADD {url}: only http and https URLs can be downloaded")]
    Scheme { url: String },
    #[error("ADD {url}: the build has no network (--network=none)")]
    NoNetwork { url: String },
    #[error("ADD {url}: host {host:?} is not in --allow-host")]
    HostNotAllowed { url: String, host: String },
    #[error("ADD {url}: {source}")]
    Http { url: String, source: ureq::Error },
    #[error("ADD {url}: server answered {status}")]
    Status {
        url: String,
        status: ureq::http::StatusCode,
    },
    #[error("ADD {url}: redirect ({status}) without a Location")]
    NoLocation {
        url: String,
        status: ureq::http::StatusCode,
    },
    #[error("ADD {url}: invalid redirect location: {source}")]
    BadRedirect {
        url: String,
        source: url::ParseError,
    },
    #[error("ADD {url}: more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects { url: String },
    #[error("ADD {url}: {source}")]
    Download { url: String, source: std::io::Error },
    #[error(
        "ADD {url}: the download is larger than ADD's fixed limit of {} GiB; fetch it in a RUN step (curl) instead",
        MAX_DOWNLOAD >> 30
    )]
    TooLarge { url: String },
    #[error("ADD: spooling the download to a temp file: {0}")]
    Spool(std::io::Error),
    #[error("ADD --checksum: checksum requires HTTP(S) or Git sources ({0:?} is neither)")]
    ChecksumNeedsUrl(String),
    #[error("ADD --checksum: checksum can't be specified for multiple sources")]
    ChecksumSeveral,
    #[error("ADD --checksum={0}: only sha256:HEX is supported")]
    ChecksumAlgorithm(String),
    #[error("ADD {url}: checksum mismatch: expected sha256:{want}, got sha256:{got}")]
    Checksum {
        url: String,
        want: String,
        got: String,
    },
}

/// Largest download ADD accepts. The body is spooled to a temp file, never held in
/// memory, so this bounds the host disk a URL can fill; real ADD sources are far smaller.
const MAX_DOWNLOAD: u64 = 8 << 30;

/// Compression of an archive, judged by its magic bytes, as BuildKit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    Tar,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

/// Sniffs the first bytes of a file: `Some` if ADD should unpack it.
pub(crate) fn sniff(head: &[u8]) -> Option<Archive> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Archive::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Archive::Zstd)
    } else if head.starts_with(b"BZh") {
        Some(Archive::Bzip2)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Archive::Xz)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Archive::Tar)
    } else {
        None
    }
}

/// Whether a compressed file really holds a tar (a lone `.gz` file is copied as is).
fn holds_tar(kind: Archive, head: &[u8]) -> bool {
    let mut inner = Vec::new();
    let _ = match kind {
        Archive::Tar => return true,
        Archive::Gzip => flate2::read::GzDecoder::new(head)
            .take(512)
            .read_to_end(&mut inner),
        Archive::Zstd => match zstd::stream::read::Decoder::new(head) {
            Ok(d) => d.take(512).read_to_end(&mut inner),
            Err(_) => return false,
        },
        Archive::Bzip2 | Archive::Xz => return true,
    };
    inner.len() >= 262 && &inner[257..262] == b"ustar"
}

/// Reads enough of `reader` to sniff it; returns the head and a reader over everything.
pub(crate) fn peek(reader: impl Read) -> Result<(Vec<u8>, impl Read), AddError> {
    let mut buf = BufReader::with_capacity(64 * 1024, reader);
    let head = buf.fill_buf().map_err(AddError::Archive)?.to_vec();
    Ok((head, buf))
}

/// The archive kind if `head` starts an archive ADD unpacks.
pub(crate) fn unpackable(head: &[u8]) -> Option<Archive> {
    sniff(head).filter(|k| holds_tar(*k, head))
}

/// Unpacks a tar stream (compressed as `kind`) into the directory `dest` of `tree`.
pub(crate) fn unpack(
    tree: &mut Tree,
    reader: impl Read,
    kind: Archive,
    dest: &str,
    how: &Placement,
) -> Result<u64, AddError> {
    let reader: Box<dyn Read> = match kind {
        Archive::Tar => Box::new(reader),
        Archive::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Archive::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(reader).map_err(AddError::Archive)?)
        }
        Archive::Bzip2 | Archive::Xz => return Err(AddError::UnsupportedArchive(kind)),
    };
    let dest = normalize_abs(dest);
    mkdir_p(tree, &dest, how).map_err(entry_err(&dest))?;
    let mut archive = tar::Archive::new(reader);
    let mut count = 0;
    for entry in archive.entries().map_err(AddError::Archive)? {
        let mut entry = entry.map_err(AddError::Archive)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(rel) = clean_rel(&raw) else {
            return Err(AddError::EntryOutside(raw));
        };
        if rel.is_empty() {
            continue;
        }
        let path = format!("{}/{rel}", dest.trim_end_matches('/'));
        place_entry(tree, &mut entry, &path, &dest, how)?;
        count += 1;
    }
    Ok(count)
}

fn entry_err(path: &str) -> impl Fn(kiln_fs::FsError) -> AddError + '_ {
    move |source| AddError::Entry {
        path: path.to_owned(),
        source,
    }
}

fn place_entry(
    tree: &mut Tree,
    entry: &mut tar::Entry<'_, impl Read>,
    path: &str,
    dest: &str,
    how: &Placement,
) -> Result<(), AddError> {
    let header = entry.header();
    let kind = header.entry_type();
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let mtime = Timestamp::from_secs(header.mtime().unwrap_or(0) as i64);
    // BuildKit keeps the archive's owners unless --chown was given.
    let (uid, gid) = how.owner.unwrap_or((
        header.uid().unwrap_or(0) as u32,
        header.gid().unwrap_or(0) as u32,
    ));
    let at = entry_err(path);
    if kind.is_dir() {
        let ino = mkdir_p(tree, path, how).map_err(&at)?;
        tree.chmod(ino, mode).map_err(&at)?;
        tree.chown(ino, Some(uid), Some(gid)).map_err(&at)?;
        return tree.set_times(ino, None, Some(mtime)).map_err(&at);
    }
    let parent = path
        .rsplit_once('/')
        .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
    mkdir_p(tree, parent, how).map_err(&at)?;
    let (dir, name) = tree
        .resolve_parent(tree.root(), path.as_bytes())
        .map_err(&at)?;
    if let Ok(old) = tree.lookup(dir, &name)
        && tree.metadata(old).map_err(&at)?.file_type != FileType::Directory
    {
        tree.unlink(dir, &name).map_err(&at)?;
    }
    let ino = if kind.is_symlink() {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| AddError::NoLinkTarget {
                kind: "symlink",
                path: path.to_owned(),
            })?;
        tree.symlink(dir, &name, &target, uid, gid).map_err(&at)?
    } else if kind.is_hard_link() {
        let target = entry
            .link_name_bytes()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .ok_or_else(|| AddError::NoLinkTarget {
                kind: "hard link",
                path: path.to_owned(),
            })?;
        let rel = clean_rel(&target).ok_or_else(|| AddError::LinkOutside(target.clone()))?;
        let src = format!("{}/{rel}", dest.trim_end_matches('/'));
        let ino = tree
            .resolve(tree.root(), src.as_bytes(), Follow::No)
            .map_err(&at)?;
        tree.link(ino, dir, &name).map_err(&at)?;
        return Ok(());
    } else if kind.is_file() || kind == tar::EntryType::Continuous || kind.is_gnu_sparse() {
        // A GNU sparse file reads back with its holes as zeros (the tar crate expands
        // them), as Go's archive/tar gives BuildKit; the step's disk quota bounds it.
        let ino = tree.create_file(dir, &name, mode, uid, gid).map_err(&at)?;
        tree.write_from(ino, entry).map_err(&at)?;
        ino
    } else {
        // Devices, fifos and unknown types: an unprivileged unpack skips them.
        return Ok(());
    };
    if !kind.is_symlink() {
        tree.chmod(ino, mode).map_err(&at)?;
    }
    tree.set_times(ino, None, Some(mtime)).map_err(&at)
}

/// Redirects ADD follows for one URL. Go's HTTP client (BuildKit's) stops after 10 as
/// well; a longer chain is a loop or an attempt to wear the build out.
const MAX_REDIRECTS: u32 = 10;

/// How long ADD waits for a connection and for the response head. A host that never
/// answers must not hang the build; the body itself is bounded by [`MAX_DOWNLOAD`].
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Why a URL may not be fetched: checked for the URL ADD names and for every redirect.
fn check_url(url: &url::Url, network: &crate::engine::Network) -> Result<(), AddError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AddError::Scheme { url: redacted(url) });
    }
    if !network.enabled {
        return Err(AddError::NoNetwork { url: redacted(url) });
    }
    // The host the connection really goes to (after any `user:pass@`), compared
    // case-insensitively as RUN's network policy does.
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !network.allowed_hosts.is_empty()
        && !network
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    {
        return Err(AddError::HostNotAllowed {
            url: redacted(url),
            host: host.to_owned(),
        });
    }
    Ok(())
}

/// A URL for messages: any password in it is replaced by `****`.
fn redacted(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("****"));
    }
    shown.to_string()
}

fn parse_url(url: &str) -> Result<url::Url, AddError> {
    url::Url::parse(url).map_err(AddError::BadUrl)
}

/// Fetches `url`, following at most [`MAX_REDIRECTS`] redirects itself so that every
/// hop is checked against the network policy before it is connected to.
fn fetch(
    url: &str,
    network: &crate::engine::Network,
    timeout: Option<std::time::Duration>,
) -> Result<ureq::http::Response<ureq::Body>, AddError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        // `--step-timeout` bounds the whole download, redirects and body included: a
        // server that stops sending must not hold the build forever.
        .timeout_global(timeout)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .build()
        .into();
    let mut current = parse_url(url)?;
    for _ in 0..=MAX_REDIRECTS {
        check_url(&current, network)?;
        let response = agent
            .get(current.as_str())
            .call()
            .map_err(|source| AddError::Http {
                url: redacted(&current),
                source,
            })?;
        let status = response.status();
        if !status.is_redirection() {
            if !status.is_success() {
                return Err(AddError::Status {
                    url: redacted(&current),
                    status,
                });
            }
            return Ok(response);
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AddError::NoLocation {
                url: redacted(&current),
                status,
            })?;
        current = current
            .join(location)
            .map_err(|source| AddError::BadRedirect {
                url: redacted(&current),
                source,
            })?;
    }
    Err(AddError::TooManyRedirects {
        url: redacted(&parse_url(url)?),
    })
}

/// Downloads `url` into a temp file (bounded size), verifying `checksum` (`sha256:HEX`).
/// Returns the file and the content's sha256 as hex.
pub(crate) fn download(
    url: &str,
    checksum: Option<&str>,
    network: &crate::engine::Network,
    limits: &crate::sandbox::StepLimits,
) -> Result<(std::fs::File, String), StepError> {
    let started = std::time::Instant::now();
    let timed_out = || limits.timeout.is_some_and(|t| started.elapsed() >= t);
    let shown = redacted(&parse_url(url)?);
    let response = fetch(url, network, limits.timeout).map_err(|e| {
        if timed_out() {
            limits.timed_out()
        } else {
            e.into()
        }
    })?;
    let mut body = response.into_body();
    let mut reader = body.as_reader().take(MAX_DOWNLOAD + 1);
    let mut file = tempfile::tempfile().map_err(AddError::Spool)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            if timed_out() {
                limits.timed_out()
            } else {
                StepError::Add(AddError::Download {
                    url: shown.clone(),
                    source: e,
                })
            }
        })?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_DOWNLOAD {
            return Err(AddError::TooLarge { url: shown }.into());
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(AddError::Spool)?;
    }
    let digest = hex::encode(hasher.finalize());
    if let Some(want) = checksum {
        let want_hex = want
            .strip_prefix("sha256:")
            .ok_or_else(|| AddError::ChecksumAlgorithm(want.to_owned()))?;
        if !want_hex.eq_ignore_ascii_case(&digest) {
            return Err(AddError::Checksum {
                url: shown,
                want: want_hex.to_owned(),
                got: digest,
            }
            .into());
        }
    }
    use std::io::Seek;
    file.rewind().map_err(AddError::Spool)?;
    Ok((file, digest))
}

/// `--checksum` verifies one download, so it needs exactly one source, a URL (BuildKit
/// refuses it otherwise, with these words).
pub(crate) fn check_checksum_sources(
    checksum: Option<&str>,
    sources: &[String],
) -> Result<(), AddError> {
    if checksum.is_none() {
        return Ok(());
    }
    match sources {
        [one] if is_url(one) => Ok(()),
        [one] => Err(AddError::ChecksumNeedsUrl(one.clone())),
        _ => Err(AddError::ChecksumSeveral),
    }
}

/// The file name ADD gives a download: the URL's last non-empty path segment.
pub(crate) fn url_file_name(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut segs| segs.rfind(|s| !s.is_empty()).map(str::to_owned))
        })
        .unwrap_or_else(|| "index.html".to_owned())
}

pub(crate) fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_fs::Store;

    fn how() -> Placement {
        Placement {
            owner: None,
            chmod: None,
            mtime: Timestamp::EPOCH,
        }
    }

    fn tar_of(entries: &[(&str, &[u8])], link: Option<(&str, &str)>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o640);
            h.set_uid(7);
            h.set_cksum();
            b.append_data(&mut h, path, *body).unwrap();
        }
        if let Some((name, target)) = link {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, target).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn read(tree: &mut Tree, path: &str) -> Vec<u8> {
        let ino = tree
            .resolve(tree.root(), path.as_bytes(), Follow::Yes)
            .unwrap();
        let mut v = Vec::new();
        tree.open_read(ino).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn unpacks_plain_and_gzip_tars_keeping_modes_and_owners() {
        let tar = tar_of(
            &[("app/a.txt", b"A"), ("b.txt", b"B")],
            Some(("app/l", "/etc")),
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        for (bytes, kind) in [(tar.clone(), Archive::Tar), (gz, Archive::Gzip)] {
            assert_eq!(unpackable(&bytes), Some(kind));
            let store = Store::temp().unwrap();
            let mut t = Tree::new(&store);
            assert_eq!(unpack(&mut t, &bytes[..], kind, "/opt", &how()).unwrap(), 3);
            assert_eq!(read(&mut t, "/opt/app/a.txt"), b"A");
            let ino = t.resolve(t.root(), b"/opt/b.txt", Follow::No).unwrap();
            let m = t.metadata(ino).unwrap();
            assert_eq!((m.mode, m.uid), (0o640, 7));
            let l = t.resolve(t.root(), b"/opt/app/l", Follow::No).unwrap();
            assert_eq!(t.readlink(l).unwrap(), b"/etc");
        }
    }

    #[test]
    fn entries_climbing_out_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        // The tar crate refuses to write `..`; write the raw name bytes.
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../../etc/pwn");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let store = Store::temp().unwrap();
        let mut t = Tree::new(&store);
        let err = unpack(&mut t, &bytes[..], Archive::Tar, "/opt", &how()).unwrap_err();
        assert!(matches!(&err, AddError::EntryOutside(_)), "{err}");
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(t.resolve(t.root(), b"/etc/pwn", Follow::No).is_err());
    }

    #[test]
    fn plain_files_and_lone_gzip_files_are_not_archives() {
        assert_eq!(unpackable(b"hello world"), None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"just some text, not a tar").unwrap();
        assert_eq!(unpackable(&gz.finish().unwrap()), None);
    }

    fn net(hosts: &[&str]) -> crate::engine::Network {
        crate::engine::Network {
            enabled: true,
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn check(url: &str, network: &crate::engine::Network) -> Result<(), String> {
        check_url(&url::Url::parse(url).unwrap(), network).map_err(|e| e.to_string())
    }

    #[test]
    fn allow_host_checks_the_real_host_case_insensitively() {
        let only = net(&["Example.COM"]);
        assert!(check("https://example.com/x", &only).is_ok());
        assert!(check("https://EXAMPLE.com:8443/x?a=b", &only).is_ok());
        let err = check("http://example.com:x@127.0.0.1/", &only).unwrap_err();
        assert!(
            err.contains("host \"127.0.0.1\" is not in --allow-host"),
            "{err}"
        );
        assert!(err.contains("example.com:****@"), "{err}");
        assert!(check("http://[::1]/", &net(&["::1"])).is_ok());
        assert!(check("https://a.example.com/", &only).is_err());
        assert!(check("ftp://example.com/", &net(&[])).is_err());
        let none = crate::engine::Network {
            enabled: false,
            allowed_hosts: Vec::new(),
        };
        assert!(
            check("https://example.com/", &none)
                .unwrap_err()
                .contains("--network=none")
        );
    }

    #[test]
    fn url_names() {
        assert_eq!(
            url_file_name("https://h/x/tool.tar.gz?sig=1"),
            "tool.tar.gz"
        );
        assert_eq!(url_file_name("http://h/"), "index.html");
        assert_eq!(url_file_name("http://h"), "index.html");
        assert!(is_url("https://x") && !is_url("file.txt"));
    }
}
