//! `apt-get update`: for every source, the signed Release, then its Packages indexes,
//! stored under `/var/lib/apt/lists` with apt's names and progress lines.
//!
//! Not done as apt does: no If-Modified-Since (the Release is always downloaded; an
//! unchanged one prints `Hit:` and costs nothing more), no pdiffs, and the lists lock is
//! a file only (WASI has no fcntl locks; a kiln step is the only writer of its tree).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::archives::size_to_str;
use crate::fetch::{self, Compression, Digested, Transport};
use crate::index::{self, MAX_INDEX_SIZE};
use crate::keyring::Keyring;
use crate::release::{self, Entry, Release};
use crate::sources::{self, Kind, Source};
use crate::{Error, Result, lists};

/// Bound on an InRelease, Release or Release.gpg: Debian's largest InRelease is about
/// 150 kB, Ubuntu's under 300 kB; each is held in memory.
const MAX_RELEASE_SIZE: u64 = 32 << 20;

/// The compressions tried for an index, in apt's order of preference.
const COMPRESSIONS: [Compression; 3] = [Compression::Xz, Compression::Gz, Compression::None];

/// What the front end decides.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The native architecture (`dpkg --print-architecture` of the image).
    pub arch: String,
    /// `-q` count: 2 or more prints nothing but the messages (as apt-get -qq).
    pub quiet: u8,
}

/// A line apt prints after the transfers (`W: ...` or `E: ...`).
#[derive(Debug)]
pub enum Message {
    Warning(String),
    Error(Error),
}

/// What an update did.
#[derive(Debug, Default)]
pub struct UpdateReport {
    /// Bytes downloaded (apt's `Fetched N kB`).
    pub fetched: u64,
    /// Warnings and errors in the order apt prints them.
    pub messages: Vec<Message>,
}

impl UpdateReport {
    /// Whether apt-get would exit 100.
    pub fn failed(&self) -> bool {
        self.messages.iter().any(|m| matches!(m, Message::Error(_)))
    }

    /// Writes the `W:`/`E:` lines as apt does after `Reading package lists...`.
    pub fn print(&self, w: &mut dyn Write) -> io::Result<()> {
        for m in &self.messages {
            match m {
                Message::Warning(t) => writeln!(w, "W: {t}")?,
                Message::Error(e) => writeln!(w, "E: {e}")?,
            }
        }
        Ok(())
    }
}

/// Runs `apt-get update` on the image at `root`, writing apt's progress lines to `out`.
/// `Err` is for what stops apt before any transfer (sources, lists directory); failures
/// of single sources are in the report's messages.
pub fn run(
    root: &Path,
    opts: &Options,
    net: &mut dyn Transport,
    out: &mut dyn Write,
) -> Result<UpdateReport> {
    prepare_lists(root)?;
    let all = sources::load(root)?;
    let started = Instant::now();
    let mut run = Run {
        root,
        opts,
        net,
        out,
        n: 0,
        keep: BTreeSet::new(),
        report: UpdateReport::default(),
        index_failed: false,
        fetch_failed: false,
    };
    let mut seen = BTreeSet::new();
    for src in all.iter().filter(|s| s.kind == Kind::Deb) {
        if seen.insert((
            src.uri.clone(),
            src.suite.clone(),
            src.components.clone(),
            src.architectures.clone(),
        )) {
            run.source(src)?;
        }
    }
    remove_stale(root, &run.keep)?;
    let Run {
        mut report,
        index_failed,
        fetch_failed,
        out,
        ..
    } = run;
    // apt's closing line: an error after a bad index, a warning after a failed transfer.
    if index_failed {
        report.messages.push(Message::Error(Error::SomeFailed));
    } else if fetch_failed {
        report
            .messages
            .push(Message::Warning(Error::SomeFailed.to_string()));
    }
    if opts.quiet < 2 {
        finish_lines(out, report.fetched, started).map_err(|e| Error::io("stdout", e))?;
    }
    Ok(report)
}

fn finish_lines(out: &mut dyn Write, fetched: u64, started: Instant) -> io::Result<()> {
    if fetched > 0 {
        let secs = started.elapsed().as_secs_f64();
        let rate = fetched as f64 / secs.max(0.001);
        writeln!(
            out,
            "Fetched {}B in {}s ({}B/s)",
            size_to_str(fetched),
            secs as u64,
            size_to_str(rate as u64)
        )?;
    }
    // Without a terminal (a build step's stdout) apt ends the line without `Done`.
    writeln!(out, "Reading package lists...")
}

/// `lists/`, `lists/partial/` (0700) and `lists/auxfiles/` (0755), both owned by `_apt`
/// when the image has it, and `lists/lock` (0640), as apt 2.6 leaves them.
fn prepare_lists(root: &Path) -> Result<()> {
    let lists = lists::dir(root);
    fs::create_dir_all(&lists).map_err(|e| Error::io(&lists, e))?;
    let lock = lists.join("lock");
    let existed = lock.exists();
    let opened = fs::OpenOptions::new().append(true).create(true).open(&lock);
    opened.map_err(|e| Error::lock_failed(&lock, &e))?;
    if !existed {
        set_mode(&lock, 0o640)?;
    }
    for (name, mode) in [("partial", 0o700), ("auxfiles", 0o755)] {
        let dir = lists.join(name);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        set_mode(&dir, mode)?;
        if let Some(uid) = apt_user(root) {
            kiln_abi::chown(&path_str(&dir), Some(uid), None, false)
                .map_err(|e| Error::io(&dir, e))?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    kiln_abi::chmod(&path_str(path), mode, false).map_err(|e| Error::io(path, e))
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The uid of `_apt` in the image's /etc/passwd (apt downloads as that user).
fn apt_user(root: &Path) -> Option<u32> {
    let passwd = fs::read_to_string(root.join("etc/passwd")).ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"_apt"))
            .then(|| f.get(2)?.parse().ok())
            .flatten()
    })
}

/// Removes the files of `lists/` no current source owns (apt's clean after update).
fn remove_stale(root: &Path, keep: &BTreeSet<String>) -> Result<()> {
    let dir = lists::dir(root);
    let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && name != "lock" && !keep.contains(&name) {
            fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// The state of one update run.
struct Run<'a> {
    root: &'a Path,
    opts: &'a Options,
    net: &'a mut dyn Transport,
    out: &'a mut dyn Write,
    /// apt's item counter (`Get:3`).
    n: usize,
    /// File names under lists/ that belong to a current source.
    keep: BTreeSet<String>,
    report: UpdateReport,
    /// An index failed its checks (apt: `E: Some index files failed ...`).
    index_failed: bool,
    /// A transfer failed (apt: the same words, as a warning).
    fetch_failed: bool,
}

/// One source being updated, with the names apt prints for it.
struct Repo<'s> {
    src: &'s Source,
    /// The URI as apt prints it (no trailing `/`).
    uri: String,
    /// `<uri> <suite>`, the head of its progress lines.
    desc: String,
    /// Where its Release files are (`<uri>dists/<suite>/`).
    dist: String,
    keyring: Keyring,
}

impl Repo<'_> {
    fn not_signed(&self, file: &'static str) -> Message {
        Message::Error(Error::NotSigned {
            uri: self.uri.clone(),
            suite: self.src.suite.clone(),
            file,
        })
    }
}

/// The signed Release of a source and the file names it was stored under.
struct Verified {
    release: Release,
    files: Vec<(String, Vec<u8>)>,
}

impl Run<'_> {
    fn line(&mut self, text: &str) -> Result<()> {
        if self.opts.quiet < 2 {
            writeln!(self.out, "{text}").map_err(|e| Error::io("stdout", e))?;
        }
        Ok(())
    }

    fn next(&mut self) -> usize {
        self.n += 1;
        self.n
    }

    fn source(&mut self, src: &Source) -> Result<()> {
        let uri = src.uri.trim_end_matches('/').to_string();
        let desc = format!("{uri} {}", src.suite);
        let dist = lists::dist_url(src);
        for f in ["InRelease", "Release", "Release.gpg"] {
            self.keep.insert(lists::file_name(&format!("{dist}{f}")));
        }
        // A source that fails keeps its old lists, as apt keeps them.
        for index in index::index_files(src, &self.opts.arch) {
            self.keep.insert(lists::file_name(&index.url));
        }
        // Only an inline Signed-By key that does not parse fails here: that source alone.
        let keyring = match Keyring::for_source(self.root, &src.signed_by) {
            Ok(k) => k,
            Err(e) => {
                self.report.messages.push(Message::Error(e));
                return Ok(());
            }
        };
        let warnings = keyring.warnings.iter().map(|w| Message::Warning(w.clone()));
        self.report.messages.extend(warnings);
        let repo = Repo {
            src,
            uri,
            desc,
            dist,
            keyring,
        };
        let Some(verified) = self.release(&repo)? else {
            return Ok(());
        };
        for (name, data) in &verified.files {
            let path = lists::dir(self.root).join(name);
            fs::write(&path, data).map_err(|e| Error::io(&path, e))?;
        }
        for index::IndexFile { what, url, .. } in index::index_files(src, &self.opts.arch) {
            self.index(&repo, &verified.release, &what, &url)?;
        }
        Ok(())
    }

    /// InRelease, else Release + Release.gpg; `None` when the source failed (reported).
    fn release(&mut self, r: &Repo) -> Result<Option<Verified>> {
        let url = format!("{}InRelease", r.dist);
        let n = self.next();
        match fetch::get_bounded(self.net, &url, MAX_RELEASE_SIZE) {
            Ok(data) => {
                let name = lists::file_name(&url);
                self.got(n, &format!("{} InRelease", r.desc), &data, &name)?;
                let text =
                    match release::verify_inrelease(&data, &r.keyring, &r.src.uri, &r.src.suite) {
                        Ok(text) => text,
                        Err(e) => match release::inrelease_text(&data, &r.src.uri, &r.src.suite) {
                            Ok(text) if r.src.trusted => text,
                            _ => return self.signature_failed(n, r, "InRelease", e),
                        },
                    };
                let files = vec![(name, data)];
                Ok(self
                    .parsed(&text, &url)
                    .map(|release| Verified { release, files }))
            }
            Err(e) if is_not_found(&e) => {
                self.line(&format!("Ign:{n} {} InRelease", r.desc))?;
                self.detached_release(r)
            }
            Err(e) => {
                self.transfer_failed(n, &format!("{} InRelease", r.desc), e)?;
                Ok(None)
            }
        }
    }

    fn detached_release(&mut self, r: &Repo) -> Result<Option<Verified>> {
        let url = format!("{}Release", r.dist);
        let n = self.next();
        let data = match fetch::get_bounded(self.net, &url, MAX_RELEASE_SIZE) {
            Ok(data) => data,
            Err(e) if is_not_found(&e) => {
                self.line(&format!(
                    "Err:{n} {} Release\n  {}",
                    r.desc,
                    fetch_reason(&e)
                ))?;
                let before = lists::dir(self.root).join(lists::file_name(&url)).exists()
                    || lists::dir(self.root)
                        .join(lists::file_name(&format!("{}InRelease", r.dist)))
                        .exists();
                let e = Error::NoReleaseFile {
                    uri: r.uri.clone(),
                    suite: r.src.suite.clone(),
                    before,
                };
                self.report.messages.push(Message::Error(e));
                return Ok(None);
            }
            Err(e) => {
                return self
                    .transfer_failed(n, &format!("{} Release", r.desc), e)
                    .map(|_| None);
            }
        };
        let name = lists::file_name(&url);
        self.got(n, &format!("{} Release", r.desc), &data, &name)?;
        let mut files = vec![(name, data)];
        let sig_url = format!("{}Release.gpg", r.dist);
        let n = self.next();
        match fetch::get_bounded(self.net, &sig_url, MAX_RELEASE_SIZE) {
            Ok(sig) => {
                let sig_name = lists::file_name(&sig_url);
                self.got(n, &format!("{} Release.gpg", r.desc), &sig, &sig_name)?;
                let checked = release::verify_detached(
                    &files[0].1,
                    &sig,
                    &r.keyring,
                    &r.src.uri,
                    &r.src.suite,
                );
                if let (Err(e), false) = (checked, r.src.trusted) {
                    return self.signature_failed(n, r, "Release", e);
                }
                files.push((sig_name, sig));
            }
            Err(e) if is_not_found(&e) => {
                self.line(&format!("Ign:{n} {} Release.gpg", r.desc))?;
                if !r.src.trusted {
                    self.report.messages.push(r.not_signed("Release"));
                    return Ok(None);
                }
            }
            Err(e) => {
                return self
                    .transfer_failed(n, &format!("{} Release.gpg", r.desc), e)
                    .map(|_| None);
            }
        }
        let text = String::from_utf8_lossy(&files[0].1).into_owned();
        Ok(self
            .parsed(&text, &url)
            .map(|release| Verified { release, files }))
    }

    /// The verified Release, parsed; a malformed one fails this source only (reported).
    fn parsed(&mut self, text: &str, url: &str) -> Option<Release> {
        Release::parse(text, url)
            .map_err(|e| self.report.messages.push(Message::Error(e)))
            .ok()
    }

    /// `Get:` (new content) or `Hit:` (same as stored) for a Release file.
    fn got(&mut self, n: usize, what: &str, data: &[u8], name: &str) -> Result<()> {
        let stored = fs::read(lists::dir(self.root).join(name)).ok();
        if stored.as_deref() == Some(data) {
            return self.line(&format!("Hit:{n} {what}"));
        }
        self.report.fetched += data.len() as u64;
        self.line(&format!(
            "Get:{n} {what} [{}B]",
            size_to_str(data.len() as u64)
        ))
    }

    /// apt's handling of a bad signature: `Err:` line, `W: GPG error: ...`, then
    /// `E: The repository ... is not signed.`
    fn signature_failed(
        &mut self,
        n: usize,
        r: &Repo,
        file: &'static str,
        e: Error,
    ) -> Result<Option<Verified>> {
        self.line(&format!("Err:{n} {} {file}\n  {e}", r.desc))?;
        self.report.messages.push(Message::Warning(format!(
            "GPG error: {} {file}: {e}",
            r.desc
        )));
        self.report.messages.push(r.not_signed(file));
        Ok(None)
    }

    /// A transfer that got no usable answer: apt warns and goes on (`W: Failed to fetch`).
    fn transfer_failed(&mut self, n: usize, what: &str, e: Error) -> Result<()> {
        self.line(&format!("Err:{n} {what}\n  {}", fetch_reason(&e)))?;
        self.report.messages.push(Message::Warning(e.to_string()));
        self.fetch_failed = true;
        Ok(())
    }

    /// One Packages index: skipped when the stored copy matches the Release, else
    /// downloaded (compressed, by hash when offered), checked, decompressed, stored.
    fn index(&mut self, r: &Repo, release: &Release, what: &str, url: &str) -> Result<()> {
        let path = url.strip_prefix(r.dist.as_str()).unwrap_or(url);
        let name = lists::file_name(url);
        let Some((how, entry)) = COMPRESSIONS.iter().find_map(|c| {
            release
                .entry(&format!("{path}{}", c.suffix()))
                .map(|e| (*c, e))
        }) else {
            let desc = format!("{} InRelease", r.desc);
            self.report
                .messages
                .push(Message::Warning(skip_message(release, path, &desc)));
            return Ok(());
        };
        let target = lists::dir(self.root).join(&name);
        let plain = release.entry(path);
        if plain.is_some_and(|p| stored_matches(&target, p)) {
            return Ok(());
        }
        let n = self.next();
        let shown = format!("{} {what}", r.uri);
        let plain_url = format!("{url}{}", how.suffix());
        let partial = lists::dir(self.root)
            .join("partial")
            .join(lists::file_name(&plain_url));
        let mut remote = plain_url.clone();
        let mut got = Err(Error::Fetch {
            url: remote.clone(),
            why: "404  Not Found".into(),
        });
        if release.acquire_by_hash {
            remote = by_hash_url(&r.dist, path, entry);
            got = fetch::download_to(self.net, &remote, &partial, MAX_INDEX_SIZE);
        }
        // No by-hash copy (or none offered): apt prints `Ign:` and takes the plain name.
        if got.as_ref().is_err_and(is_not_found) {
            if release.acquire_by_hash {
                self.line(&format!("Ign:{n} {shown}"))?;
            }
            remote = plain_url;
            got = fetch::download_to(self.net, &remote, &partial, MAX_INDEX_SIZE);
        }
        // An index the Release lists but the mirror does not serve is an error in apt
        // (unlike an unreachable Release), named by its uncompressed URL.
        let got = match got {
            Ok(d) => d,
            Err(e) => {
                self.line(&format!("Err:{n} {shown}\n  {}", fetch_reason(&e)))?;
                let why = fetch_reason(&e);
                self.report.messages.push(Message::Error(Error::Fetch {
                    url: url.to_string(),
                    why,
                }));
                self.index_failed = true;
                return Ok(());
            }
        };
        self.report.fetched += got.size;
        self.line(&format!("Get:{n} {shown} [{}B]", size_to_str(got.size)))?;
        let checked = check(&remote, entry, &got)
            .and_then(|()| self.store(&partial, &target, how, plain, url));
        // partial/ is left empty as apt leaves it; a download that failed may be absent.
        let _ = fs::remove_file(&partial);
        if let Err(e) = checked {
            self.line(&format!("Err:{n} {shown}\n  {}", err_block(&e)))?;
            self.report.messages.push(Message::Error(e));
            self.index_failed = true;
        }
        Ok(())
    }

    /// Decompresses the checked download into its lists/ name (through partial/).
    fn store(
        &mut self,
        partial: &Path,
        target: &Path,
        how: Compression,
        plain: Option<&Entry>,
        url: &str,
    ) -> Result<()> {
        let tmp: PathBuf = partial.with_extension("kiln-unpacked");
        let got = fetch::decompress_to(partial, &tmp, how, MAX_INDEX_SIZE, url);
        let checked = got.and_then(|d| plain.map_or(Ok(()), |p| check(url, p, &d)));
        if let Err(e) = checked {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, target).map_err(|e| Error::io(target, e))
    }
}

/// Whether a fetch failed with 404 (apt tries the next file: Release after InRelease).
fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Fetch { why, .. } if why.starts_with("404"))
}

/// The lines apt prints under `Err:` for a failed index: the error's text after the
/// URL, each continuation line one space less indented than in the `E:` line.
fn err_block(e: &Error) -> String {
    let text = e.to_string();
    let reason = text.split_once("  ").map_or(text.as_str(), |(_, r)| r);
    reason
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The reason part apt prints on the indented line after `Err:`.
fn fetch_reason(e: &Error) -> String {
    match e {
        Error::Fetch { why, .. } => why.clone(),
        other => other.to_string(),
    }
}

/// apt's warning for an index the Release does not list.
fn skip_message(release: &Release, path: &str, desc: &str) -> String {
    let mut parts = path.split('/');
    let (comp, arch) = (
        parts.next().unwrap_or(""),
        parts
            .next()
            .and_then(|b| b.strip_prefix("binary-"))
            .unwrap_or(""),
    );
    if !release.components.is_empty() && !release.components.iter().any(|c| c == comp) {
        format!(
            "Skipping acquire of configured file '{path}' as repository '{desc}' doesn't have the component '{comp}' (component misspelt in sources.list?)"
        )
    } else {
        format!(
            "Skipping acquire of configured file '{path}' as repository '{desc}' doesn't support architecture '{arch}'"
        )
    }
}

/// The `by-hash/SHA256/<hash>` URL beside an index: a mirror updating meanwhile cannot
/// hand out a file of another Release.
fn by_hash_url(dist: &str, path: &str, entry: &Entry) -> String {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let sep = if dir.is_empty() { "" } else { "/" };
    format!("{dist}{dir}{sep}by-hash/SHA256/{}", entry.sha256)
}

/// Size and SHA256 as the Release promises, else apt's hash-sum mismatch.
fn check(url: &str, entry: &Entry, got: &Digested) -> Result<()> {
    if got.size == entry.size && got.sha256 == entry.sha256 {
        return Ok(());
    }
    Err(Error::HashSumMismatch {
        url: url.to_string(),
        expected_sha256: entry.sha256.clone(),
        expected_size: entry.size,
        got_sha256: got.sha256.clone(),
        got_size: got.size,
    })
}

/// Whether the stored index already has the size and SHA256 the Release lists.
fn stored_matches(path: &Path, entry: &Entry) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    if meta.len() != entry.size {
        return false;
    }
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let mut data = Vec::new();
    Read::by_ref(&mut file)
        .take(MAX_INDEX_SIZE)
        .read_to_end(&mut data)
        .is_ok()
        && fetch::sha256_hex(&data) == entry.sha256
}
