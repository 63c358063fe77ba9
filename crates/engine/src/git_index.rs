//! Reads what kiln needs of a git work tree's index (`.git/index`): each tracked path and
//! the mode its author committed (100644, 100755, 120000 for a symlink).
//!
//! The format (versions 2 to 4) is parsed here rather than through gix: kiln needs only
//! the entries' paths and modes, ~150 lines, while gix-index brings a dozen gix crates
//! (object, hash, features, fs, ...) into every build. Every length and offset is checked
//! against the file, so a corrupt or hostile index is an error, never a panic.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Largest index kiln reads. It is read whole: a repository of a million files has an
/// index of ~100 MiB, so 512 MiB only stops a file meant to exhaust memory.
const MAX_INDEX_BYTES: u64 = 512 << 20;

/// Fixed part of an entry before its hash: ctime, mtime, dev, ino, mode, uid, gid, size
/// (ten big-endian u32).
const STAT_BYTES: usize = 40;
/// Offset of the mode within the stat data.
const MODE_OFFSET: usize = 24;
/// The flag bit saying an entry (v3+) has a second, extended flags word.
const EXTENDED_FLAG: u16 = 0x4000;

/// Why the git index of a build context's work tree could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitIndexError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is larger than {MAX_INDEX_BYTES} bytes, the most kiln reads")]
    TooLarge,
    #[error("it is not a git index (no DIRC signature)")]
    NotAnIndex,
    #[error("index version {0} is not one kiln reads (2, 3 or 4)")]
    Version(u32),
    #[error("it is cut short or corrupt at byte {0}")]
    Corrupt(usize),
    #[error(
        "it is a split index (core.splitIndex), which kiln does not read; run `git update-index --no-split-index` in the repository"
    )]
    Split,
}

/// One tracked path and its git mode (`0o100644`, `0o100755`, `0o120000`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Work-tree-relative, `/`-separated, as git stores it.
    pub path: Vec<u8>,
    pub mode: u32,
}

/// A git work tree found at or above a directory.
#[derive(Debug)]
pub(crate) struct WorkTree {
    /// The work tree's top directory (canonical).
    pub top: PathBuf,
    /// Its git directory (`.git`, or where a `.git` file points for a worktree or
    /// submodule).
    pub git_dir: PathBuf,
}

impl WorkTree {
    /// The work tree holding `dir` (canonical), if any: the nearest ancestor with a `.git`
    /// directory or `gitdir:` file.
    pub(crate) fn containing(dir: &Path) -> Option<Self> {
        dir.ancestors().find_map(|top| {
            let dot_git = top.join(".git");
            let git_dir = if dot_git.is_dir() {
                dot_git
            } else {
                linked_git_dir(&dot_git, top)?
            };
            Some(Self {
                top: top.to_owned(),
                git_dir,
            })
        })
    }

    /// The path of the index file.
    pub(crate) fn index_path(&self) -> PathBuf {
        self.git_dir.join("index")
    }

    /// The index's entries; none when the repository has no index yet (nothing added).
    pub(crate) fn entries(&self) -> Result<Vec<IndexEntry>, GitIndexError> {
        let file = match std::fs::File::open(self.index_path()) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        file.take(MAX_INDEX_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_INDEX_BYTES {
            return Err(GitIndexError::TooLarge);
        }
        parse(&bytes, self.hash_len())
    }

    /// The object hash's length: SHA-256 repositories say so in their config.
    fn hash_len(&self) -> usize {
        let common = std::fs::read_to_string(self.git_dir.join("commondir"))
            .map(|dir| self.git_dir.join(dir.trim()))
            .unwrap_or_else(|_| self.git_dir.clone());
        let config = std::fs::read_to_string(common.join("config")).unwrap_or_default();
        let sha256 = config.lines().any(|line| {
            let line: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            line.eq_ignore_ascii_case("objectformat=sha256")
        });
        if sha256 { 32 } else { 20 }
    }
}

/// The git directory a `.git` file (`gitdir: <path>`) points to, relative to `top`.
fn linked_git_dir(dot_git: &Path, top: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dot_git).ok()?;
    let target = text.strip_prefix("gitdir:")?.trim();
    let dir = top.join(target);
    dir.is_dir().then_some(dir)
}

/// A cursor over the index bytes whose reads fail, naming the offset, past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], GitIndexError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(GitIndexError::Corrupt(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, GitIndexError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u16(&mut self) -> Result<u16, GitIndexError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Up to (not including) the next NUL, which is consumed.
    fn until_nul(&mut self) -> Result<&'a [u8], GitIndexError> {
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(GitIndexError::Corrupt(self.at))?;
        self.at += len + 1;
        Ok(&rest[..len])
    }

    /// Version 4's prefix length: git's offset varint (each continuation adds one).
    fn varint(&mut self) -> Result<usize, GitIndexError> {
        let start = self.at;
        let mut byte = self.take(1)?[0];
        let mut value = usize::from(byte & 0x7f);
        while byte & 0x80 != 0 {
            byte = self.take(1)?[0];
            value = value
                .checked_add(1)
                .and_then(|v| v.checked_mul(128))
                .map(|v| v | usize::from(byte & 0x7f))
                .ok_or(GitIndexError::Corrupt(start))?;
        }
        Ok(value)
    }
}

/// Parses an index of `hash_len`-byte object names.
pub(crate) fn parse(bytes: &[u8], hash_len: usize) -> Result<Vec<IndexEntry>, GitIndexError> {
    let mut cur = Cursor { bytes, at: 0 };
    if cur.take(4).map_err(|_| GitIndexError::NotAnIndex)? != b"DIRC" {
        return Err(GitIndexError::NotAnIndex);
    }
    let version = cur.u32()?;
    if !(2..=4).contains(&version) {
        return Err(GitIndexError::Version(version));
    }
    let count = cur.u32()?;
    let mut entries = Vec::new();
    let mut previous: Vec<u8> = Vec::new();
    for _ in 0..count {
        let entry = parse_entry(&mut cur, version, hash_len, &previous)?;
        previous.clone_from(&entry.path);
        entries.push(entry);
    }
    check_extensions(&mut cur, hash_len)?;
    Ok(entries)
}

fn parse_entry(
    cur: &mut Cursor<'_>,
    version: u32,
    hash_len: usize,
    previous: &[u8],
) -> Result<IndexEntry, GitIndexError> {
    let start = cur.at;
    let stat = cur.take(STAT_BYTES)?;
    let m = &stat[MODE_OFFSET..MODE_OFFSET + 4];
    let mode = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
    cur.take(hash_len)?;
    let flags = cur.u16()?;
    if version >= 3 && flags & EXTENDED_FLAG != 0 {
        cur.u16()?;
    }
    let path = if version == 4 {
        let strip = cur.varint()?;
        let keep = previous
            .len()
            .checked_sub(strip)
            .ok_or(GitIndexError::Corrupt(start))?;
        let mut path = previous[..keep].to_vec();
        path.extend_from_slice(cur.until_nul()?);
        path
    } else {
        let path = cur.until_nul()?.to_vec();
        // 1 to 8 NULs pad the entry to a multiple of 8 bytes; one is already read.
        let len = cur.at - start;
        cur.take((8 - len % 8) % 8)?;
        path
    };
    Ok(IndexEntry { path, mode })
}

/// Walks the extensions after the entries up to the trailing checksum, refusing a split
/// index (its entries live in another file).
fn check_extensions(cur: &mut Cursor<'_>, hash_len: usize) -> Result<(), GitIndexError> {
    let end = cur
        .bytes
        .len()
        .checked_sub(hash_len)
        .filter(|&end| end >= cur.at)
        .ok_or(GitIndexError::Corrupt(cur.at))?;
    while cur.at < end {
        let signature = cur.take(4)?;
        if signature == b"link" {
            return Err(GitIndexError::Split);
        }
        let size = cur.u32()?;
        cur.take(usize::try_from(size).map_err(|_| GitIndexError::Corrupt(cur.at))?)?;
    }
    if cur.at != end {
        return Err(GitIndexError::Corrupt(cur.at));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// Runs git in `dir`; the tests need the git command line.
    pub(crate) fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c"])
            .arg("init.defaultBranch=main")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git is installed");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    /// A git work tree holding `files` (path, content), all added; the `executable` ones
    /// are 100755 in the index.
    pub(crate) fn repo(files: &[(&str, &str)], executable: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        git(p, &["init", "-q"]);
        for (path, body) in files {
            std::fs::create_dir_all(p.join(path).parent().unwrap()).unwrap();
            std::fs::write(p.join(path), body).unwrap();
        }
        git(p, &["add", "."]);
        if !executable.is_empty() {
            let mut args = vec!["update-index", "--chmod=+x"];
            args.extend_from_slice(executable);
            git(p, &args);
        }
        dir
    }

    fn repo_with(version: &str) -> tempfile::TempDir {
        let dir = repo(
            &[
                ("plain.txt", "a"),
                ("deep/er/still/run.sh", "#!/bin/sh"),
                ("deep/er/x.txt", "x"),
            ],
            &["deep/er/still/run.sh"],
        );
        let p = dir.path();
        // An intent-to-add entry carries the v3 extended flags word.
        std::fs::write(p.join("later.txt"), "l").unwrap();
        git(p, &["add", "-N", "later.txt"]);
        git(p, &["update-index", "--index-version", version]);
        dir
    }

    fn modes(dir: &Path) -> Vec<(String, u32)> {
        let tree = WorkTree::containing(&dir.canonicalize().unwrap()).unwrap();
        tree.entries()
            .unwrap()
            .into_iter()
            .map(|e| (String::from_utf8(e.path).unwrap(), e.mode))
            .collect()
    }

    #[test]
    fn every_index_version_gives_paths_and_committed_modes() {
        for version in ["2", "3", "4"] {
            let repo = repo_with(version);
            assert_eq!(
                modes(repo.path()),
                vec![
                    ("deep/er/still/run.sh".to_owned(), 0o100755),
                    ("deep/er/x.txt".to_owned(), 0o100644),
                    ("later.txt".to_owned(), 0o100644),
                    ("plain.txt".to_owned(), 0o100644),
                ],
                "index version {version}"
            );
        }
    }

    #[test]
    fn a_subdirectory_finds_the_work_tree_above_it() {
        let repo = repo_with("2");
        let sub = repo.path().join("deep/er").canonicalize().unwrap();
        let tree = WorkTree::containing(&sub).unwrap();
        assert_eq!(tree.top, repo.path().canonicalize().unwrap());
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        for version in ["2", "4"] {
            let repo = repo_with(version);
            let bytes = std::fs::read(repo.path().join(".git/index")).unwrap();
            // Cut inside the entries: an error. Cut in the extensions: the checksum is
            // not verified (git refuses such an index itself), so only no panic.
            let entries_end = bytes.windows(9).position(|w| w == b"plain.txt").unwrap() + 9;
            for len in 0..bytes.len() {
                let parsed = parse(&bytes[..len], 20);
                assert!(
                    len >= entries_end || parsed.is_err(),
                    "v{version} cut at {len}"
                );
            }
            for at in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[at] ^= 0xff;
                let _ = parse(&bad, 20);
            }
        }
    }

    #[test]
    fn a_split_index_is_refused_with_what_to_do() {
        let repo = repo_with("2");
        git(repo.path(), &["update-index", "--split-index"]);
        let tree = WorkTree::containing(&repo.path().canonicalize().unwrap()).unwrap();
        let err = tree.entries().unwrap_err();
        assert!(err.to_string().contains("--no-split-index"), "{err}");
    }

    #[test]
    fn a_repository_with_nothing_added_has_no_entries() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        let tree = WorkTree::containing(&dir.path().canonicalize().unwrap()).unwrap();
        assert!(tree.entries().unwrap().is_empty());
    }
}
