//! Host directories (bind mounts), reached only through a `cap_std::fs::Dir` and only
//! one already-resolved component path at a time: kiln resolves every symlink itself in
//! the step's namespace, so a host symlink can never lead outside the mounted directory.

use std::io::Read;
use std::path::PathBuf;

use cap_std::fs::{Dir, Metadata};
use kiln_fs::{FileType, Ino, Timestamp, Tree};

use crate::error::Errno;

pub(crate) fn rel_path(comps: &[Vec<u8>]) -> PathBuf {
    let mut p = PathBuf::from(".");
    for c in comps {
        p.push(os_name(c));
    }
    p
}

#[cfg(unix)]
fn os_name(c: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(c).to_owned()
}

#[cfg(not(unix))]
fn os_name(c: &[u8]) -> std::ffi::OsString {
    String::from_utf8_lossy(c).into_owned().into()
}

#[cfg(unix)]
fn name_bytes(n: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    n.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn name_bytes(n: &std::ffi::OsStr) -> Vec<u8> {
    n.to_string_lossy().into_owned().into_bytes()
}

pub(crate) fn file_type(m: &Metadata) -> FileType {
    let t = m.file_type();
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else {
        FileType::Regular
    }
}

/// Permission bits as the host has them (Unix), or a sensible stand-in elsewhere.
pub(crate) fn mode(m: &Metadata) -> u32 {
    #[cfg(unix)]
    {
        use cap_std::fs::MetadataExt;
        m.mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        match (m.is_dir(), m.permissions().readonly()) {
            (true, _) => 0o755,
            (false, true) => 0o444,
            (false, false) => 0o644,
        }
    }
}

pub(crate) fn mtime(m: &Metadata) -> Timestamp {
    m.modified()
        .ok()
        .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Timestamp {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        })
        .unwrap_or_default()
}

pub(crate) fn metadata(dir: &Dir, rel: &[Vec<u8>]) -> Result<Metadata, Errno> {
    if rel.is_empty() {
        return dir.dir_metadata().map_err(Errno::from);
    }
    dir.symlink_metadata(rel_path(rel)).map_err(Errno::from)
}

pub(crate) fn read_link(dir: &Dir, rel: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
    let target = dir.read_link_contents(rel_path(rel)).map_err(Errno::from)?;
    Ok(name_bytes(target.as_os_str()))
}

pub(crate) fn read_dir(dir: &Dir, rel: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, FileType)>, Errno> {
    let iter = if rel.is_empty() {
        dir.entries()
    } else {
        dir.read_dir(rel_path(rel))
    }
    .map_err(Errno::from)?;
    let mut out = Vec::new();
    for entry in iter {
        let entry = entry.map_err(Errno::from)?;
        let ft = entry.file_type().map_err(Errno::from)?;
        let t = if ft.is_dir() {
            FileType::Directory
        } else if ft.is_symlink() {
            FileType::Symlink
        } else {
            FileType::Regular
        };
        out.push((name_bytes(&entry.file_name()), t));
    }
    out.sort();
    Ok(out)
}

pub(crate) fn open_file(dir: &Dir, rel: &[Vec<u8>]) -> Result<cap_std::fs::File, Errno> {
    dir.open(rel_path(rel)).map_err(Errno::from)
}

/// Copies a host directory into `tree` under `at`, streaming file contents.
pub(crate) fn copy_into_tree(dir: &Dir, tree: &mut Tree, at: Ino) -> Result<(), Errno> {
    copy_level(dir, &mut Vec::new(), tree, at, 0)
}

fn copy_level(
    dir: &Dir,
    rel: &mut Vec<Vec<u8>>,
    tree: &mut Tree,
    at: Ino,
    depth: usize,
) -> Result<(), Errno> {
    if depth > 256 {
        return Err(Errno::LOOP);
    }
    for (name, ft) in read_dir(dir, rel)? {
        rel.push(name.clone());
        let meta = metadata(dir, rel)?;
        let m = mode(&meta);
        match ft {
            FileType::Directory => {
                let ino = tree.mkdir(at, &name, m, 0, 0)?;
                copy_level(dir, rel, tree, ino, depth + 1)?;
                tree.set_times(ino, None, Some(mtime(&meta)))?;
            }
            FileType::Symlink => {
                let target = read_link(dir, rel)?;
                tree.symlink(at, &name, &target, 0, 0)?;
            }
            _ => {
                let ino = tree.create_file(at, &name, m, 0, 0)?;
                let file = open_file(dir, rel)?;
                tree.write_from(ino, file.take(u64::MAX))?;
                tree.set_times(ino, None, Some(mtime(&meta)))?;
            }
        }
        rel.pop();
    }
    Ok(())
}
