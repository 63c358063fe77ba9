//! Writing archive entries into a root as dpkg does, without ever leaving the root:
//! symlinks met on the way are followed as if the root were `/` (Debian's merged /usr
//! puts `/bin/sh` behind the `/bin -> usr/bin` link), never outside it.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::archive::{DataEntry, EntryKind};
use crate::{Error, Result};

/// Symlinks followed while resolving one path, as Linux's MAXSYMLINKS: a loop of links
/// in a hostile image ends here.
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Suffix of a file being extracted before its rename into place, as dpkg's.
pub const NEW_SUFFIX: &str = ".dpkg-new";

/// Where `path` (absolute inside the root) is on the host: every component but the last
/// resolved through symlinks relative to the root, `..` stopping at the root.
pub fn resolve(root: &Path, path: &str) -> Result<PathBuf> {
    let mut parts: VecDeque<String> = split(path);
    let Some(last) = parts.pop_back() else {
        return Ok(root.to_path_buf());
    };
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = parts.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let host = join(root, &resolved).join(&part);
        match fs::read_link(&host) {
            Ok(target) => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(Error::io(
                        host,
                        io::Error::other("too many levels of symbolic links"),
                    ));
                }
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for (i, t) in split(&target).into_iter().enumerate() {
                    parts.insert(i, t);
                }
            }
            Err(_) => resolved.push(part),
        }
    }
    if last == ".." {
        resolved.pop();
        return Ok(join(root, &resolved));
    }
    Ok(join(root, &resolved).join(last))
}

fn split(path: &str) -> VecDeque<String> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// Names of the image's users and groups (`/etc/passwd`, `/etc/group`): dpkg gives a
/// file the owner named in the archive when the image knows the name, else its number.
#[derive(Debug, Default)]
pub struct Owners {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

impl Owners {
    pub fn load(root: &Path) -> Owners {
        Owners {
            users: read_ids(&root.join("etc/passwd")),
            groups: read_ids(&root.join("etc/group")),
        }
    }

    /// The uid of the image's user `name`.
    pub fn user(&self, name: &str) -> Option<u32> {
        self.users.get(name).copied()
    }

    /// The gid of the image's group `name`.
    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }

    /// The uid and gid an entry gets.
    pub fn of(&self, entry: &DataEntry) -> (u32, u32) {
        let uid = entry.user.as_ref().and_then(|u| self.users.get(u)).copied();
        let gid = entry
            .group
            .as_ref()
            .and_then(|g| self.groups.get(g))
            .copied();
        (uid.unwrap_or(entry.uid), gid.unwrap_or(entry.gid))
    }
}

/// `name:x:id:...` lines into a map (unreadable files give none: numbers are used).
fn read_ids(path: &Path) -> HashMap<String, u32> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

/// Extracts one entry to `host` as dpkg does: an existing directory (or symlink to one)
/// is kept; anything else is written to `<host>.dpkg-new` with its mtime, given owner,
/// then mode (after chown, which clears setuid), and renamed over `host` unless
/// `keep_new` (conffiles wait as `.dpkg-new` for configure).
pub fn extract(
    entry: &DataEntry,
    content: &mut dyn Read,
    host: &Path,
    link_host: Option<&Path>,
    owner: (u32, u32),
    keep_new: bool,
) -> Result<()> {
    if matches!(entry.kind, EntryKind::Directory) {
        return make_directory(entry, host, owner);
    }
    if fs::symlink_metadata(host).is_ok_and(|m| m.is_dir()) {
        return Err(Error::io(
            host,
            io::Error::other("trying to overwrite a directory with a non-directory"),
        ));
    }
    let tmp = new_path(host);
    remove_if_present(&tmp)?;
    let io_err = |e| Error::io(&tmp, e);
    match &entry.kind {
        EntryKind::File => {
            let mut file = fs::File::create(&tmp).map_err(io_err)?;
            io::copy(content, &mut file).map_err(io_err)?;
            let when =
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.mtime.max(0) as u64);
            file.set_modified(when).map_err(io_err)?;
        }
        EntryKind::Symlink { target } => symlink(target, &tmp).map_err(io_err)?,
        EntryKind::HardLink { .. } => {
            let target = link_host
                .ok_or_else(|| Error::io(&tmp, io::Error::other("hard link target missing")))?;
            fs::hard_link(target, &tmp).map_err(io_err)?;
        }
        other => {
            return Err(Error::Unsupported {
                what: format!("creating {other:?} at {} (WASI has no mknod)", entry.path),
            });
        }
    }
    if !matches!(entry.kind, EntryKind::HardLink { .. }) {
        set_metadata(entry, &tmp, owner)?;
    }
    if keep_new {
        return Ok(());
    }
    fs::rename(&tmp, host).map_err(|e| Error::io(host, e))
}

fn make_directory(entry: &DataEntry, host: &Path, owner: (u32, u32)) -> Result<()> {
    if fs::metadata(host).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    if fs::symlink_metadata(host).is_ok() {
        return Err(Error::io(
            host,
            io::Error::other("trying to overwrite a non-directory with a directory"),
        ));
    }
    fs::create_dir(host).map_err(|e| Error::io(host, e))?;
    set_metadata(entry, host, owner)
}

/// Owner, then mode (dpkg's order: chown clears setuid). A file's mtime was set when
/// it was written.
fn set_metadata(entry: &DataEntry, path: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    let text = path.to_string_lossy();
    let symlink = matches!(entry.kind, EntryKind::Symlink { .. });
    let current = kiln_abi::stat(&text, false).map_err(|e| Error::io(path, e))?;
    if (current.uid, current.gid) != (uid, gid) {
        kiln_abi::chown(&text, Some(uid), Some(gid), false).map_err(|e| Error::io(path, e))?;
    }
    if symlink {
        return Ok(());
    }
    kiln_abi::chmod(&text, entry.mode, true).map_err(|e| Error::io(path, e))
}

/// `<path>.dpkg-new`.
pub fn new_path(path: &Path) -> PathBuf {
    with_suffix(path, NEW_SUFFIX)
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes a file or symlink; absent is fine.
pub fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// `std::fs::soft_link` is the one stable symlink call that also exists on WASI
/// (`std::os::wasi::fs` is unstable); it is deprecated only in favour of per-OS names.
#[allow(deprecated)]
fn symlink(target: &str, path: &Path) -> io::Result<()> {
    fs::soft_link(target, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink as link;

    #[test]
    fn resolution_never_leaves_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        link("usr/bin", root.join("bin")).unwrap();
        link("/etc", root.join("abs")).unwrap();
        link("../../../../..", root.join("up")).unwrap();
        link("loop2", root.join("loop1")).unwrap();
        link("loop1", root.join("loop2")).unwrap();
        assert_eq!(resolve(root, "/bin/sh").unwrap(), root.join("usr/bin/sh"));
        assert_eq!(
            resolve(root, "/abs/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve(root, "/up/etc/shadow").unwrap(),
            root.join("etc/shadow")
        );
        assert_eq!(resolve(root, "/../../x").unwrap(), root.join("x"));
        // The last component is never followed: unpack replaces the link itself.
        assert_eq!(resolve(root, "/bin").unwrap(), root.join("bin"));
        let err = resolve(root, "/loop1/x").unwrap_err().to_string();
        assert!(err.contains("too many levels of symbolic links"), "{err}");
    }
}
