//! The build context: a host directory opened once as a capability (`cap_std::fs::Dir`)
//! and read only through it, filtered by `.dockerignore`.
//!
//! Every path here comes from a Dockerfile and is untrusted: sources are cleaned to
//! context-relative paths, a path that climbs out of the context is an error, and a
//! symlink inside the context is copied as a link (its target is just bytes), never
//! followed out of the context.

use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest as _, Sha256};

use crate::git_index::GitIndexError;
use crate::host_modes::{ContextRules, HostFs};
use crate::parents::{ParentsSpec, join_rel};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot open build context {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid .dockerignore pattern {pattern:?}: {why}")]
    BadIgnore {
        path: String,
        line: usize,
        pattern: String,
        why: globset::ErrorKind,
    },
    #[error(
        "{path}:{line}: illegal exclusion pattern: \"!\" (an exception must name what it re-includes)"
    )]
    EmptyException { path: String, line: usize },
    #[error("source {0:?} is outside the build context")]
    Outside(String),
    #[error("source {0:?} not found in the build context (is it excluded by .dockerignore?)")]
    NotFound(String),
    #[error("invalid source pattern {pattern:?}: {why}")]
    BadPattern {
        pattern: String,
        why: globset::ErrorKind,
    },
    #[error(
        "source {path:?} in the build context is a {kind}: kiln copies only regular files, directories and symlinks (remove it or add it to .dockerignore)"
    )]
    Special { path: String, kind: &'static str },
    #[error("{path} is a {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error(
        "{path} is larger than {limit} bytes, the most kiln reads of a Dockerfile or ignore file"
    )]
    TooLarge { path: String, limit: u64 },
    #[error(
        "reading the git index {path} (kiln takes the build context's file modes from it on a host without Unix modes, and checks its names on a case-insensitive one): {source}"
    )]
    GitIndex {
        path: PathBuf,
        source: GitIndexError,
    },
    #[error(
        "{first:?} and {second:?} in the build context differ only in case: git tracks both, but this host's file system is case-insensitive and holds only one, so the image would differ from a Linux build (rename one of them)"
    )]
    CaseClash { first: String, second: String },
    #[error(
        "reading {path:?} from the build context: this host's file API could not name the path ({source}); Wine stops at 260 characters (MAX_PATH) counting the context's own path: move the context nearer the drive root or shorten the names"
    )]
    PathTooLong {
        path: String,
        source: std::io::Error,
    },
    #[error("reading {path:?} from the build context: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A missing file as [`ContextError::NotFound`] naming `source`; other errors as they are.
fn not_found(err: ContextError, source: &str) -> ContextError {
    match err {
        ContextError::Io { source: io, .. } if io.kind() == std::io::ErrorKind::NotFound => {
            ContextError::NotFound(source.to_owned())
        }
        other => other,
    }
}

fn io_err(path: &str) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| {
        let path = path.to_owned();
        if is_path_too_long(&source) {
            ContextError::PathTooLong { path, source }
        } else {
            ContextError::Io { path, source }
        }
    }
}

/// Whether a Windows host refused a context path for its length. cap-std resolves each
/// opened directory's full name (`GetFinalPathNameByHandleW`); Windows itself answers for
/// any length, but Wine (8 and its current source) asks its NT layer with a MAX_PATH
/// buffer and fails with ERROR_MORE_DATA beyond ~260 characters. Unnamed, that reads as
/// "More data available", which tells the user nothing.
#[cfg(windows)]
fn is_path_too_long(err: &std::io::Error) -> bool {
    const ERROR_FILENAME_EXCED_RANGE: i32 = 206;
    const ERROR_MORE_DATA: i32 = 234;
    matches!(
        err.raw_os_error(),
        Some(ERROR_FILENAME_EXCED_RANGE | ERROR_MORE_DATA)
    )
}

#[cfg(not(windows))]
fn is_path_too_long(_err: &std::io::Error) -> bool {
    false
}

/// Kind of a context entry, with what the copy needs to recreate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File { size: u64 },
    Dir,
    Symlink { target: Vec<u8> },
}

/// One file, directory or symlink of the context, by its context-relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Context-relative, `/`-separated, no leading `/`; empty for the context root.
    pub rel: String,
    pub kind: EntryKind,
    /// Unix permission bits (0o7777); on hosts without them, the rule of
    /// [`crate::host_modes`].
    pub mode: u32,
    /// uid:gid the entry keeps without `--chown`: root for the context (host owners never
    /// reach the image), the source's own in another stage.
    pub owner: (u32, u32),
}

/// A source named by `COPY`/`ADD`: the matched top entry and, for a directory, every
/// entry below it (sorted, `.dockerignore` applied).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub top: Entry,
    pub children: Vec<Entry>,
}

/// One `.dockerignore` rule.
#[derive(Debug)]
struct Rule {
    matcher: GlobMatcher,
    /// The cleaned pattern, for [`IgnoreRules::may_include_below`].
    pattern: String,
    exclude: bool,
}

/// `.dockerignore` rules with Docker's semantics: the last matching rule wins, `!` marks
/// an exception, and a rule matching a directory also matches everything below it.
#[derive(Debug, Default)]
pub(crate) struct IgnoreRules {
    rules: Vec<Rule>,
}

impl IgnoreRules {
    pub(crate) fn parse(text: &str, file: &str) -> Result<Self, ContextError> {
        let mut rules = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclude, pattern) = match line.strip_prefix('!') {
                // BuildKit refuses a bare `!`: it would re-include nothing.
                Some("") => {
                    return Err(ContextError::EmptyException {
                        path: file.to_owned(),
                        line: index + 1,
                    });
                }
                Some(rest) => (false, rest.trim()),
                None => (true, line),
            };
            let cleaned = clean_rel(pattern).unwrap_or_default();
            if cleaned.is_empty() {
                continue;
            }
            let matcher = compile_glob(&cleaned).map_err(|why| ContextError::BadIgnore {
                path: file.to_owned(),
                line: index + 1,
                pattern: pattern.to_owned(),
                why,
            })?;
            rules.push(Rule {
                matcher,
                pattern: cleaned,
                exclude,
            });
        }
        Ok(Self { rules })
    }

    /// `COPY --exclude` patterns: the same matching, every pattern excluding.
    pub(crate) fn exclusions(patterns: &[String]) -> Result<Self, ContextError> {
        let text = patterns.join("\n");
        Self::parse(&text, "--exclude")
    }

    /// Whether `rel` (or one of its parent directories) is excluded.
    pub(crate) fn is_excluded(&self, rel: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            if rule.exclude == excluded {
                continue;
            }
            if matches_self_or_parent(&rule.matcher, rel) {
                excluded = rule.exclude;
            }
        }
        excluded
    }

    /// Whether an exception could re-include something below the directory `dir`: then
    /// the walk descends into `dir` even when it is excluded, as BuildKit's does
    /// (`docs` then `!docs/keep/README.md` keeps that file and its parents).
    pub(crate) fn may_include_below(&self, dir: &str) -> bool {
        self.rules
            .iter()
            .any(|rule| !rule.exclude && could_match_below(&rule.pattern, dir))
    }
}

/// Whether `pattern` could match a path strictly below `dir`, comparing component by
/// component (`**` matches any number of them).
fn could_match_below(pattern: &str, dir: &str) -> bool {
    let mut parts = pattern.split('/');
    for comp in dir.split('/') {
        match parts.next() {
            None => return false,
            Some("**") => return true,
            Some(part) => {
                if !compile_glob(part).is_ok_and(|m| m.is_match(comp)) {
                    return false;
                }
            }
        }
    }
    parts.next().is_some()
}

/// What the CopyIgnoredFile check asks of the rules (the check lives in the Dockerfile
/// crate; the rules stay here).
impl kiln_dockerfile::lint::IgnoreRules for IgnoreRules {
    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| !r.exclude)
    }

    fn excludes_root(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.exclude && matches!(r.pattern.as_str(), "*" | "**" | "**/*"))
    }

    fn is_excluded(&self, rel: &str) -> bool {
        IgnoreRules::is_excluded(self, rel)
    }
}

/// Whether `rel` or one of its parent directories matches.
pub(crate) fn matches_self_or_parent(matcher: &GlobMatcher, rel: &str) -> bool {
    let mut path = rel;
    loop {
        if matcher.is_match(path) {
            return true;
        }
        match path.rfind('/') {
            Some(i) => path = &path[..i],
            None => return false,
        }
    }
}

/// The longest pattern compiled (a path's limit on Linux, PATH_MAX): globset panics when
/// the regex it builds is over the regex crate's size limit, which a 1 MB `.dockerignore`
/// line reached. (Braces, which could nest groups past the regex parser's limit, are
/// literal: see `compile_glob`.)
const MAX_GLOB_BYTES: usize = 4096;

/// Compiles a Docker pattern (Go `filepath.Match` plus `**`): `*` and `?` never cross `/`,
/// and `{a,b}` is the literal text, as in Go's matcher and BuildKit's pattern matcher
/// (globset would read it as alternation).
/// The error is only its kind: the callers show the pattern as written, not as cleaned.
pub(crate) fn compile_glob(pattern: &str) -> Result<GlobMatcher, globset::ErrorKind> {
    if pattern.len() > MAX_GLOB_BYTES {
        return Err(globset::ErrorKind::Regex(format!(
            "longer than {MAX_GLOB_BYTES} bytes (MAX_GLOB_BYTES)"
        )));
    }
    GlobBuilder::new(&literal_braces(pattern))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| e.kind().clone())
}

/// `pattern` with each `{` and `}` outside a `[...]` class escaped, so that globset
/// matches them as themselves. An escaped character and a class's members pass as they
/// are; a `]` first in a class is a member, as in Go's and globset's syntax.
fn literal_braces(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                if let Some(neg) = chars.next_if(|&n| n == '!' || n == '^') {
                    out.push(neg);
                }
                if let Some(bracket) = chars.next_if(|&n| n == ']') {
                    out.push(bracket);
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' | '}' if !in_class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Cleans a context path lexically: `.` and empty parts dropped, `..` applied, leading
/// `/` ignored (the context is the root). Returns `None` if it climbs above the root.
pub(crate) fn clean_rel(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

pub(crate) fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The build context directory, opened once.
pub(crate) struct Context {
    dir: Dir,
    ignore: IgnoreRules,
    /// Where modes come from and which names this host refuses.
    rules: ContextRules,
}

impl Context {
    /// The `.dockerignore` rules the context applies.
    pub(crate) fn ignore(&self) -> &IgnoreRules {
        &self.ignore
    }

    /// Opens `path` and reads its `.dockerignore` (or `ignore_file` when given, as
    /// BuildKit's `<Dockerfile>.dockerignore`).
    pub(crate) fn open(path: &Path, ignore_file: Option<&Path>) -> Result<Self, ContextError> {
        let dir = open_dir(path)?;
        let host = HostFs::probe(&dir);
        Self::open_on(dir, path, ignore_file, host)
    }

    /// Opens the context at `path` as if on `host` (tests simulate other hosts).
    #[cfg(test)]
    pub(crate) fn open_as(path: &Path, host: HostFs) -> Result<Self, ContextError> {
        Self::open_on(open_dir(path)?, path, None, host)
    }

    fn open_on(
        dir: Dir,
        path: &Path,
        ignore_file: Option<&Path>,
        host: HostFs,
    ) -> Result<Self, ContextError> {
        let rules = ContextRules::read(path, host)?;
        let ignore = match ignore_file {
            Some(file) => {
                let text = read_build_file(file)?;
                IgnoreRules::parse(&text, &file.display().to_string())?
            }
            None => match dir.open_with(".dockerignore", &nonblocking_read()) {
                Ok(f) => {
                    let text = read_bounded(f.into_std(), ".dockerignore")?;
                    IgnoreRules::parse(&text, ".dockerignore")?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
                Err(e) => return Err(io_err(".dockerignore")(e)),
            },
        };
        Ok(Self { dir, ignore, rules })
    }

    /// Resolves one `COPY` source (a path or a wildcard pattern) to the entries it names.
    /// A pattern may match nothing (BuildKit allows an empty wildcard: `COPY foo nomatch* /`
    /// copies foo); a plain path must exist.
    pub(crate) fn resolve(&self, source: &str) -> Result<Vec<Source>, ContextError> {
        let rel = clean_rel(source).ok_or_else(|| ContextError::Outside(source.to_owned()))?;
        let tops = if has_glob_meta(&rel) {
            self.glob(&rel)?
        } else {
            if !rel.is_empty()
                && self.ignore.is_excluded(&rel)
                && !self.ignore.may_include_below(&rel)
            {
                return Err(ContextError::NotFound(source.to_owned()));
            }
            vec![self.entry(&rel, true).map_err(|e| not_found(e, source))?]
        };
        tops.into_iter()
            .map(|top| {
                let mut children = Vec::new();
                if top.kind == EntryKind::Dir {
                    self.walk(&top.rel, &mut children)?;
                }
                Ok(Source { top, children })
            })
            .collect()
    }

    /// A `COPY --parents` source: for each pivot directory it names, the entries below
    /// it that its pattern selects, with the directories between (see [`ParentsSpec`]).
    pub(crate) fn resolve_parents(&self, source: &str) -> Result<Vec<Source>, ContextError> {
        let spec = ParentsSpec::parse(source)?;
        let bases = if has_glob_meta(&spec.base) {
            self.glob(&spec.base)?
        } else {
            vec![
                self.entry(&spec.base, true)
                    .map_err(|e| not_found(e, source))?,
            ]
        };
        let mut out = Vec::new();
        for base in bases.into_iter().filter(|b| b.kind == EntryKind::Dir) {
            let walked = self.parents_walk(&base.rel, &spec.prefix)?;
            let children = spec.select(&base.rel, walked);
            if spec.required && children.is_empty() {
                return Err(ContextError::NotFound(source.to_owned()));
            }
            out.push(Source {
                top: base,
                children,
            });
        }
        Ok(out)
    }

    /// The entries from the pivot `base` down to `base/prefix` (each one on the way) and,
    /// when that is a directory, everything below it; empty if the path is missing or
    /// ignored.
    fn parents_walk(&self, base: &str, prefix: &str) -> Result<Vec<Entry>, ContextError> {
        let mut out = Vec::new();
        let mut at = base.to_owned();
        for comp in prefix.split('/').filter(|c| !c.is_empty()) {
            at = join_rel(&at, comp);
            if self.ignore.is_excluded(&at) && !self.ignore.may_include_below(&at) {
                return Ok(Vec::new());
            }
            let entry = match self.entry(&at, false) {
                Ok(entry) => entry,
                Err(ContextError::Special { .. }) => return Ok(Vec::new()),
                Err(e) => match not_found(e, "") {
                    ContextError::NotFound(_) => return Ok(Vec::new()),
                    other => return Err(other),
                },
            };
            let is_dir = entry.kind == EntryKind::Dir;
            out.push(entry);
            if !is_dir {
                return Ok(out);
            }
        }
        self.walk(&at, &mut out)?;
        Ok(out)
    }

    /// Every non-ignored entry matching a wildcard pattern, sorted. A symlink that matches
    /// is followed (inside the context), as BuildKit follows a source's links.
    fn glob(&self, pattern: &str) -> Result<Vec<Entry>, ContextError> {
        let matcher = compile_glob(pattern).map_err(|why| ContextError::BadPattern {
            pattern: pattern.to_owned(),
            why,
        })?;
        // Walk only below the longest literal prefix of the pattern.
        let literal: Vec<&str> = pattern
            .split('/')
            .take_while(|p| !has_glob_meta(p))
            .collect();
        let base = literal.join("/");
        let depth = pattern.split('/').count();
        let mut all = Vec::new();
        if self
            .entry(&base, false)
            .is_ok_and(|e| e.kind == EntryKind::Dir)
        {
            self.walk_limited(&base, &mut all, Some(depth))?;
        }
        all.into_iter()
            .filter(|e| matcher.is_match(&e.rel))
            .map(|e| match e.kind {
                EntryKind::Symlink { .. } => self.entry(&e.rel, true),
                _ => Ok(e),
            })
            .collect()
    }

    fn walk(&self, rel: &str, out: &mut Vec<Entry>) -> Result<(), ContextError> {
        self.walk_limited(rel, out, None)
    }

    /// Appends the entries below `rel` in sorted order, skipping ignored ones.
    fn walk_limited(
        &self,
        rel: &str,
        out: &mut Vec<Entry>,
        max_depth: Option<usize>,
    ) -> Result<(), ContextError> {
        let depth = if rel.is_empty() {
            0
        } else {
            rel.split('/').count()
        };
        if max_depth.is_some_and(|m| depth >= m) {
            return Ok(());
        }
        let at = if rel.is_empty() { "." } else { rel };
        let mut names = Vec::new();
        for item in self.dir.read_dir(at).map_err(io_err(rel))? {
            let item = item.map_err(io_err(rel))?;
            let name = item.file_name();
            let name = name.to_str().ok_or_else(|| ContextError::Io {
                path: format!("{rel}/{}", name.to_string_lossy()),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "file name is not valid UTF-8",
                ),
            })?;
            names.push(name.to_owned());
        }
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if self.ignore.is_excluded(&child) {
                self.walk_excluded(&child, out, max_depth)?;
                continue;
            }
            // FIFOs, sockets and devices inside a copied directory are skipped, as
            // BuildKit's context transfer never reads them and an unprivileged copy
            // cannot recreate them; opening a FIFO would block the build forever.
            let entry = match self.entry(&child, false) {
                Err(ContextError::Special { .. }) => continue,
                other => other?,
            };
            let is_dir = entry.kind == EntryKind::Dir;
            out.push(entry);
            if is_dir {
                self.walk_limited(&child, out, max_depth)?;
            }
        }
        Ok(())
    }

    /// An excluded `rel`: if it is a directory an exception may re-include entries of,
    /// those entries and the directory holding them.
    fn walk_excluded(
        &self,
        rel: &str,
        out: &mut Vec<Entry>,
        max_depth: Option<usize>,
    ) -> Result<(), ContextError> {
        if !self.ignore.may_include_below(rel) {
            return Ok(());
        }
        let Ok(entry) = self.entry(rel, false) else {
            return Ok(());
        };
        if entry.kind != EntryKind::Dir {
            return Ok(());
        }
        let mut inner = Vec::new();
        self.walk_limited(rel, &mut inner, max_depth)?;
        if !inner.is_empty() {
            out.push(entry);
            out.append(&mut inner);
        }
        Ok(())
    }

    /// Stats one entry. A top-level source that is a symlink is followed (as BuildKit
    /// does), but only inside the context: cap-std refuses a target outside it.
    fn entry(&self, rel: &str, follow: bool) -> Result<Entry, ContextError> {
        self.entry_after(rel, follow, 0)
    }

    /// [`Context::entry`] after `hops` checked-out links were followed to reach `rel`.
    fn entry_after(&self, rel: &str, follow: bool, hops: u32) -> Result<Entry, ContextError> {
        self.rules.check_case(rel)?;
        let at = if rel.is_empty() { "." } else { rel };
        let meta = if follow {
            self.dir.metadata(at)
        } else {
            self.dir.symlink_metadata(at)
        }
        .map_err(|source| {
            if follow && is_escape(&source) {
                ContextError::Outside(rel.to_owned())
            } else {
                io_err(rel)(source)
            }
        })?;
        let kind = if meta.is_symlink() {
            let target = self.dir.read_link_contents(at).map_err(io_err(rel))?;
            EntryKind::Symlink {
                target: path_bytes(&target),
            }
        } else if meta.is_dir() {
            EntryKind::Dir
        } else if meta.is_file() || is_socket(&meta) {
            // A socket is sent by BuildKit's context transfer as an empty regular file.
            EntryKind::File { size: meta.len() }
        } else {
            return Err(ContextError::Special {
                path: rel.to_owned(),
                kind: special_kind(&meta),
            });
        };
        let kind = match kind {
            EntryKind::File { size } if self.rules.is_checked_out_link(rel) => {
                match self.checked_out_link(rel, size)? {
                    Some(target) if follow => return self.follow_link(rel, &target, hops),
                    Some(target) => EntryKind::Symlink { target },
                    None => EntryKind::File { size },
                }
            }
            other => other,
        };
        Ok(Entry {
            rel: rel.to_owned(),
            mode: self.rules.mode(&meta, &kind, rel),
            kind,
            owner: (0, 0),
        })
    }

    /// A symlink git checked out as a file holding its target (a host that cannot make
    /// links): the link it stands for, as a Linux checkout has it.
    fn checked_out_link(&self, rel: &str, size: u64) -> Result<Option<Vec<u8>>, ContextError> {
        if size > MAX_LINK_TARGET {
            return Ok(None);
        }
        let mut target = Vec::new();
        self.open_file(rel)?
            .into_std()
            .take(MAX_LINK_TARGET)
            .read_to_end(&mut target)
            .map_err(io_err(rel))?;
        Ok(Some(target))
    }

    /// The entry a checked-out link `rel` points to, as the host would follow a real one:
    /// inside the context only. It keeps the target's path, the file whose content is
    /// copied (the link's own file holds only the target's name), so a directory
    /// destination names the copy after the target, not the link.
    fn follow_link(&self, rel: &str, target: &[u8], hops: u32) -> Result<Entry, ContextError> {
        let outside = || ContextError::Outside(rel.to_owned());
        let target = std::str::from_utf8(target).map_err(|_| outside())?;
        if hops >= MAX_LINK_HOPS || target.starts_with('/') {
            return Err(outside());
        }
        let parent = rel.rsplit_once('/').map_or("", |(dir, _)| dir);
        let resolved = clean_rel(&join_rel(parent, target)).ok_or_else(outside)?;
        self.entry_after(&resolved, true, hops + 1)
    }

    /// Opens a regular file of the context for reading. The open never blocks (a FIFO
    /// swapped in after the walk opens at once with `O_NONBLOCK`) and anything but a
    /// regular file is refused before a byte is read.
    pub(crate) fn open_file(&self, rel: &str) -> Result<cap_std::fs::File, ContextError> {
        let file = self
            .dir
            .open_with(rel, &nonblocking_read())
            .map_err(io_err(rel))?;
        let meta = file.metadata().map_err(io_err(rel))?;
        if !meta.is_file() {
            return Err(ContextError::Special {
                path: rel.to_owned(),
                kind: special_kind(&meta),
            });
        }
        Ok(file)
    }

    /// The content of a file of the context: an empty one for a socket (BuildKit copies
    /// it as an empty regular file), else [`Context::open_file`]'s.
    pub(crate) fn open_content(&self, rel: &str) -> Result<Box<dyn Read + '_>, ContextError> {
        if self.dir.metadata(rel).is_ok_and(|m| is_socket(&m)) {
            return Ok(Box::new(std::io::empty()));
        }
        Ok(Box::new(self.open_file(rel)?.into_std()))
    }

    /// A digest of what the sources would copy (paths, kinds, modes, contents), for the
    /// step's cache key. Host timestamps and owners are deliberately left out.
    pub(crate) fn digest_sources(&self, sources: &[Source]) -> Result<[u8; 32], ContextError> {
        let mut hasher = Sha256::new();
        for source in sources {
            for entry in std::iter::once(&source.top).chain(&source.children) {
                hasher.update(entry.rel.as_bytes());
                hasher.update([0]);
                hasher.update(entry.mode.to_le_bytes());
                match &entry.kind {
                    EntryKind::Dir => hasher.update(b"d"),
                    EntryKind::Symlink { target } => {
                        hasher.update(b"l");
                        hasher.update((target.len() as u64).to_le_bytes());
                        hasher.update(target);
                    }
                    EntryKind::File { .. } => {
                        hasher.update(b"f");
                        self.hash_file(&entry.rel, &mut hasher)?;
                    }
                }
            }
        }
        Ok(hasher.finalize().into())
    }

    fn hash_file(&self, rel: &str, hasher: &mut Sha256) -> Result<(), ContextError> {
        let mut file = self.open_content(rel)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = 0u64;
        let mut inner = Sha256::new();
        loop {
            let n = file.read(&mut buf).map_err(io_err(rel))?;
            if n == 0 {
                break;
            }
            len += n as u64;
            inner.update(&buf[..n]);
        }
        hasher.update(len.to_le_bytes());
        hasher.update(inner.finalize());
        Ok(())
    }
}

/// Longest symlink target read from a file standing for a link: Linux's PATH_MAX, the
/// longest target a Linux checkout could create. A larger file is taken as a file.
const MAX_LINK_TARGET: u64 = 4096;

/// Most checked-out links followed in a row, Linux's MAXSYMLINKS: links that point at
/// each other in a cycle end here instead of recursing forever.
const MAX_LINK_HOPS: u32 = 40;

/// Opens the context directory as a capability.
fn open_dir(path: &Path) -> Result<Dir, ContextError> {
    Dir::open_ambient_dir(path, ambient_authority()).map_err(|source| ContextError::Open {
        path: path.to_owned(),
        source,
    })
}

/// Largest Dockerfile or ignore file kiln reads. Both are read whole and parsed in
/// memory; real ones are a few KiB, so 16 MiB only stops a file meant to exhaust memory.
pub(crate) const MAX_BUILD_FILE: u64 = 16 << 20;

/// Reads a file that drives the build (the Dockerfile, an ignore file) from the host:
/// never blocks (opened `O_NONBLOCK`), refuses anything but a regular file, and reads at
/// most [`MAX_BUILD_FILE`] bytes.
pub fn read_build_file(path: &Path) -> Result<String, ContextError> {
    let shown = path.display().to_string();
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc_nonblock());
    }
    let file = options.open(path).map_err(io_err(&shown))?;
    read_bounded(file, &shown)
}

/// Reads an opened build file: a regular file of at most [`MAX_BUILD_FILE`] UTF-8 bytes.
fn read_bounded(file: std::fs::File, shown: &str) -> Result<String, ContextError> {
    let meta = file.metadata().map_err(io_err(shown))?;
    if !meta.is_file() {
        return Err(ContextError::NotRegular {
            path: shown.to_owned(),
            kind: special_kind(&cap_std::fs::Metadata::from_just_metadata(meta)),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_BUILD_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(shown))?;
    if bytes.len() as u64 > MAX_BUILD_FILE {
        return Err(ContextError::TooLarge {
            path: shown.to_owned(),
            limit: MAX_BUILD_FILE,
        });
    }
    String::from_utf8(bytes).map_err(|e| ContextError::Io {
        path: shown.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// Read-only open options that cannot block on a FIFO. `O_NONBLOCK` has no effect on
/// reads of regular files, the only kind [`Context::open_file`] goes on to read.
fn nonblocking_read() -> cap_std::fs::OpenOptions {
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        options.custom_flags(libc_nonblock());
    }
    options
}

/// `O_NONBLOCK`'s value on this host.
#[cfg(unix)]
fn libc_nonblock() -> i32 {
    libc::O_NONBLOCK
}

/// What kind of special file `meta` describes, for error messages.
fn special_kind(meta: &cap_std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use cap_std::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "FIFO (named pipe)";
        }
        if t.is_socket() {
            return "Unix socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device node";
        }
    }
    let _ = meta;
    "special file"
}

#[cfg(unix)]
fn is_socket(meta: &cap_std::fs::Metadata) -> bool {
    use cap_std::fs::FileTypeExt;
    meta.file_type().is_socket()
}

#[cfg(not(unix))]
fn is_socket(_meta: &cap_std::fs::Metadata) -> bool {
    false
}

fn is_escape(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::PermissionDenied
        || err.to_string().contains("outside of the filesystem")
}

fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().replace('\\', "/").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_are_literal_as_in_go_patterns() {
        let m = |p: &str, path: &str| compile_glob(p).unwrap().is_match(path);
        assert!(m("{a,b}.txt", "{a,b}.txt"));
        assert!(!m("{a,b}.txt", "a.txt"));
        assert!(m("*{a,b}.txt", "x{a,b}.txt"));
        assert!(m("x/{a}", "x/{a}"));
        // Inside a class and after a backslash, a brace is already itself.
        assert!(m("[{]a", "{a") && m("[]{]a", "]a") && m("[!{]a", "ba") && !m("[!{]a", "{a"));
        assert!(m("\\{a\\}", "{a}"));
        // 1,000 nested groups made globset panic when braces were alternation.
        let nested = "{a,".repeat(1000) + &"}".repeat(1000);
        assert!(m(&nested, &nested));
        assert!(compile_glob(&"a".repeat(MAX_GLOB_BYTES + 1)).is_err());
    }

    fn ctx(files: &[(&str, &str)], ignore: &str) -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        if !ignore.is_empty() {
            std::fs::write(dir.path().join(".dockerignore"), ignore).unwrap();
        }
        let c = Context::open(dir.path(), None).unwrap();
        (dir, c)
    }

    fn rels(sources: &[Source]) -> Vec<String> {
        sources
            .iter()
            .flat_map(|s| std::iter::once(&s.top).chain(&s.children))
            .map(|e| e.rel.clone())
            .collect()
    }

    #[test]
    fn clean_rel_clamps_and_rejects_escapes() {
        assert_eq!(clean_rel("./a//b/../c").as_deref(), Some("a/c"));
        assert_eq!(clean_rel("/a").as_deref(), Some("a"));
        assert_eq!(clean_rel("a/../..").as_deref(), None);
        assert_eq!(clean_rel("../../etc/passwd"), None);
    }

    #[test]
    fn copy_outside_the_context_fails_cleanly() {
        let (_d, c) = ctx(&[("a.txt", "a")], "");
        let err = c.resolve("../../etc/passwd").unwrap_err();
        assert!(matches!(err, ContextError::Outside(_)), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn symlink_out_of_the_context_is_not_followed() {
        let (d, c) = ctx(&[("a.txt", "a")], "");
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", d.path().join("evildir")).unwrap();
        assert!(c.resolve("evil").is_err());
        assert!(c.resolve("evildir/passwd").is_err());
        // Inside a copied directory, the link is kept as a link, not followed.
        let all = c.resolve(".").unwrap();
        let evil = all[0].children.iter().find(|e| e.rel == "evil").unwrap();
        assert_eq!(
            evil.kind,
            EntryKind::Symlink {
                target: b"/etc/passwd".to_vec()
            }
        );
    }

    #[test]
    fn dockerignore_with_exceptions_and_parents() {
        let (_d, c) = ctx(
            &[
                ("keep.txt", "k"),
                ("secret.env", "s"),
                ("logs/a.log", "a"),
                ("logs/important.log", "i"),
                ("node_modules/x/y.js", "y"),
                ("src/main.rs", "m"),
                ("src/gen/out.tmp", "t"),
            ],
            "# comment\n*.env\nlogs\n!logs/important.log\nnode_modules\n**/*.tmp\n",
        );
        let all = rels(&c.resolve(".").unwrap());
        assert_eq!(
            all,
            vec![
                "",
                ".dockerignore",
                "keep.txt",
                "logs",
                "logs/important.log",
                "src",
                "src/gen",
                "src/main.rs"
            ]
        );
        assert!(c.ignore.is_excluded("logs/a.log"));
        assert!(!c.ignore.is_excluded("logs/important.log"));
        assert!(matches!(
            c.resolve("secret.env"),
            Err(ContextError::NotFound(_))
        ));
    }

    #[test]
    fn wildcards_do_not_cross_directories() {
        let (_d, c) = ctx(
            &[
                ("a.txt", ""),
                ("b.txt", ""),
                ("sub/c.txt", ""),
                ("d.md", ""),
            ],
            "",
        );
        assert_eq!(rels(&c.resolve("*.txt").unwrap()), vec!["a.txt", "b.txt"]);
        assert_eq!(rels(&c.resolve("sub/*.txt").unwrap()), vec!["sub/c.txt"]);
        // An empty wildcard is no error (BuildKit's AllowEmptyWildcard); a missing name is.
        assert!(c.resolve("*.nope").unwrap().is_empty());
        assert!(matches!(c.resolve("nope"), Err(ContextError::NotFound(_))));
    }

    #[test]
    fn digest_tracks_content_and_mode_not_time() {
        let (d, c) = ctx(&[("a.txt", "one")], "");
        let s = c.resolve("a.txt").unwrap();
        let first = c.digest_sources(&s).unwrap();
        let f = std::fs::File::options()
            .write(true)
            .open(d.path().join("a.txt"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(c.digest_sources(&s).unwrap(), first);
        std::fs::write(d.path().join("a.txt"), "two").unwrap();
        assert_ne!(c.digest_sources(&s).unwrap(), first);
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_skipped_in_walks_and_refused_by_name() {
        let (d, c) = ctx(&[("a.txt", "a")], "");
        let fifo = std::ffi::CString::new(d.path().join("pipe").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let _sock = std::os::unix::net::UnixListener::bind(d.path().join("sock")).unwrap();
        // A socket is an empty regular file, as BuildKit sends it; the FIFO is skipped.
        assert_eq!(rels(&c.resolve(".").unwrap()), vec!["", "a.txt", "sock"]);
        let sock = c.resolve("sock").unwrap();
        assert_eq!(sock[0].top.kind, EntryKind::File { size: 0 });
        let mut body = Vec::new();
        c.open_content("sock")
            .unwrap()
            .read_to_end(&mut body)
            .unwrap();
        assert!(body.is_empty());
        assert!(c.digest_sources(&sock).is_ok());
        let err = c.resolve("pipe").unwrap_err();
        assert!(matches!(err, ContextError::Special { .. }), "{err}");
        assert!(err.to_string().contains("FIFO"), "{err}");
        // Opening never blocks, even on a FIFO no one writes to.
        assert!(matches!(
            c.open_file("pipe"),
            Err(ContextError::Special { .. })
        ));
    }

    #[test]
    fn an_exception_reincludes_a_file_of_an_excluded_directory() {
        let (_d, c) = ctx(
            &[
                ("docs/a.md", "a"),
                ("docs/keep/README.md", "r"),
                ("docs/keep/other.md", "o"),
                ("docs/skip/x.md", "x"),
                ("src/main.rs", "m"),
            ],
            "docs\n!docs/keep/README.md\n",
        );
        assert_eq!(
            rels(&c.resolve(".").unwrap()),
            vec![
                "",
                ".dockerignore",
                "docs",
                "docs/keep",
                "docs/keep/README.md",
                "src",
                "src/main.rs"
            ]
        );
        // Named directly, the excluded directory holds what the exception keeps.
        assert_eq!(
            rels(&c.resolve("docs").unwrap()),
            vec!["docs", "docs/keep", "docs/keep/README.md"]
        );
        assert!(matches!(
            c.resolve("docs/a.md"),
            Err(ContextError::NotFound(_))
        ));
        let anywhere = IgnoreRules::parse("a\n!**/keep\n", "i").unwrap();
        assert!(anywhere.may_include_below("a/x"));
        let rules = IgnoreRules::parse("b\n!b/*/c\n", "i").unwrap();
        assert!(rules.may_include_below("b/q"));
        assert!(!rules.may_include_below("b/q/c"));
        let only = IgnoreRules::parse("x\n!y/z\n", "i").unwrap();
        assert!(!only.may_include_below("x"));
    }

    #[test]
    fn a_bare_exception_is_an_error() {
        let err = IgnoreRules::parse("*.tmp\n!\n", ".dockerignore").unwrap_err();
        assert!(
            matches!(err, ContextError::EmptyException { line: 2, .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("illegal exclusion pattern: \"!\""),
            "{err}"
        );
    }

    /// A host without Unix modes, as Windows is.
    #[cfg(unix)]
    const NO_MODES: HostFs = HostFs {
        unix_modes: false,
        case_insensitive: false,
    };

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A git work tree holding `ctx/` with a committed-executable script, a plain file, an
    /// untracked file and a symlink.
    #[cfg(unix)]
    fn committed_context() -> tempfile::TempDir {
        let repo = tempfile::tempdir().unwrap();
        let p = repo.path();
        crate::git_index::tests::git(p, &["init", "-q"]);
        std::fs::create_dir_all(p.join("ctx/bin")).unwrap();
        std::fs::write(p.join("ctx/greeting.txt"), "hi").unwrap();
        std::fs::write(p.join("ctx/bin/run.sh"), "#!/bin/sh").unwrap();
        chmod(&p.join("ctx/bin/run.sh"), 0o755);
        std::os::unix::fs::symlink("bin/run.sh", p.join("ctx/link")).unwrap();
        crate::git_index::tests::git(p, &["add", "."]);
        std::fs::write(p.join("ctx/untracked.txt"), "u").unwrap();
        repo
    }

    #[cfg(unix)]
    fn modes_of(c: &Context) -> Vec<(String, u32)> {
        let all = c.resolve(".").unwrap();
        std::iter::once(&all[0].top)
            .chain(&all[0].children)
            .map(|e| (e.rel.clone(), e.mode))
            .collect()
    }

    #[cfg(unix)]
    #[test]
    fn without_unix_modes_the_git_index_gives_the_executable_bit() {
        let repo = committed_context();
        let ctx = repo.path().join("ctx");
        let linux = Context::open(&ctx, None).unwrap();
        let digest_linux = linux.digest_sources(&linux.resolve(".").unwrap()).unwrap();
        // What Windows shows: no modes (every file looks executable), links as files.
        for file in ["greeting.txt", "bin/run.sh", "untracked.txt"] {
            chmod(&ctx.join(file), 0o777);
        }
        std::fs::remove_file(ctx.join("link")).unwrap();
        std::fs::write(ctx.join("link"), "bin/run.sh").unwrap();
        let windows = Context::open_as(&ctx, NO_MODES).unwrap();
        assert_eq!(
            modes_of(&windows),
            vec![
                ("".to_owned(), 0o755),
                ("bin".to_owned(), 0o755),
                ("bin/run.sh".to_owned(), 0o755),
                ("greeting.txt".to_owned(), 0o644),
                ("link".to_owned(), 0o777),
                ("untracked.txt".to_owned(), 0o644),
            ]
        );
        let sources = windows.resolve(".").unwrap();
        assert_eq!(windows.digest_sources(&sources).unwrap(), digest_linux);
        // A link named as a source is followed, as the host follows a real one.
        let followed = windows.resolve("link").unwrap();
        assert_eq!(followed[0].top.rel, "bin/run.sh");
        assert_eq!(followed[0].top.kind, EntryKind::File { size: 9 });
        assert_eq!(followed[0].top.mode, 0o755);
    }

    #[cfg(unix)]
    #[test]
    fn without_git_files_are_0644_and_directories_0755() {
        let (d, _) = ctx(&[("sub/a.sh", "a"), ("b.txt", "b")], "");
        chmod(&d.path().join("sub/a.sh"), 0o700);
        let windows = Context::open_as(d.path(), NO_MODES).unwrap();
        assert_eq!(
            modes_of(&windows),
            vec![
                ("".to_owned(), 0o755),
                ("b.txt".to_owned(), 0o644),
                ("sub".to_owned(), 0o755),
                ("sub/a.sh".to_owned(), 0o644),
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn checked_out_links_in_a_cycle_or_leaving_the_context_are_refused() {
        let repo = tempfile::tempdir().unwrap();
        let p = repo.path();
        crate::git_index::tests::git(p, &["init", "-q"]);
        std::os::unix::fs::symlink("b", p.join("a")).unwrap();
        std::os::unix::fs::symlink("a", p.join("b")).unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", p.join("up")).unwrap();
        crate::git_index::tests::git(p, &["add", "."]);
        for (name, target) in [("a", "b"), ("b", "a"), ("up", "../../etc/passwd")] {
            std::fs::remove_file(p.join(name)).unwrap();
            std::fs::write(p.join(name), target).unwrap();
        }
        let windows = Context::open_as(p, NO_MODES).unwrap();
        for name in ["a", "up"] {
            let err = windows.resolve(name).unwrap_err();
            assert!(matches!(err, ContextError::Outside(_)), "{name}: {err}");
        }
    }

    #[test]
    fn a_case_insensitive_host_refuses_names_git_tracks_in_two_cases() {
        let repo = crate::git_index::tests::repo(
            &[("README", "upper"), ("readme", "lower"), ("other.txt", "o")],
            &[],
        );
        let p = repo.path();
        let host = HostFs {
            unix_modes: cfg!(unix),
            case_insensitive: true,
        };
        let c = Context::open_as(p, host).unwrap();
        let err = c.resolve(".").unwrap_err();
        assert!(matches!(err, ContextError::CaseClash { .. }), "{err}");
        assert!(
            err.to_string().contains("\"README\" and \"readme\""),
            "{err}"
        );
        assert!(c.resolve("other.txt").is_ok());
    }

    #[test]
    fn bad_ignore_pattern_names_file_and_line() {
        let err = IgnoreRules::parse("ok\n[unclosed\n", ".dockerignore").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with(".dockerignore:2:"), "{msg}");
    }
}
