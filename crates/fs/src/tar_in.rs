//! Applying a layer tar to a working tree, with OCI whiteouts.
//!
//! Untrusted names are handled the way containerd's applier does, but entirely
//! inside the virtual tree: a name is cleaned lexically with `..` stopping at the
//! root (so `../../etc/x` and `/etc/x` both land on `/etc/x`); symlinks met in the
//! *parent* components are followed, resolved inside the tree; the final
//! component is never followed (an entry replaces a symlink, it does not write
//! through it); hard-link targets are cleaned the same way and must name an
//! existing non-directory. Later duplicates win. Device nodes and fifos are kept
//! as metadata only.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use crate::error::{FsError, Result};
use crate::node::{FileType, Timestamp, Xattrs};
use crate::tar_out::{OPAQUE, WHITEOUT, dev_join};
use crate::tree::{Follow, Ino, Tree};

/// Longest entry name accepted, as Linux `PATH_MAX`.
const PATH_MAX: usize = 4096;

/// What [`Tree::apply_layer`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Entries applied (whiteouts included).
    pub entries: u64,
    pub whiteouts: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
}

impl Tree {
    /// Applies a layer tar stream to this tree with OCI whiteout semantics
    /// (`.wh.NAME` removes NAME, `.wh..wh..opq` hides everything in its directory
    /// that this layer did not create). Contents are streamed, never held whole.
    ///
    /// Untrusted names are treated as containerd does, inside the virtual tree:
    /// names are cleaned with `..` stopping at the root (`../../etc/x` and
    /// `/etc/x` both mean `/etc/x`); symlinks in parent components are followed
    /// within the tree; the final component is never followed (an entry replaces
    /// a symlink rather than writing through it); hard-link targets are cleaned
    /// the same way and must name an existing non-directory; later duplicates
    /// win; devices and fifos are metadata only. Missing parents are created
    /// 0755 root:root. Names over 4096 bytes, nesting deeper than
    /// [`crate::MAX_DEPTH`], ids over 32 bits and unknown entry types are errors
    /// naming the entry. Directory mtimes end as the layer says (or unchanged).
    pub fn apply_layer(&mut self, reader: impl Read) -> Result<LayerStats> {
        // Each layer gets a disk quota of its own (the default): unpacking a base image
        // of many large layers is not one step's writing, but one layer that expands
        // without end (a decompression bomb) is still stopped.
        let step_quota = self.replace_disk_quota(crate::DiskQuota::default());
        let result = self.apply_layer_inner(reader);
        self.set_disk_quota(step_quota);
        result
    }

    fn apply_layer_inner(&mut self, reader: impl Read) -> Result<LayerStats> {
        let mut archive = tar::Archive::new(reader);
        let mut ap = Applier {
            tree: self,
            dir_times: BTreeMap::new(),
            unpacked: HashSet::new(),
            stats: LayerStats::default(),
        };
        for entry in archive.entries()? {
            let mut entry = entry?;
            ap.entry(&mut entry)?;
        }
        ap.finish()
    }
}

struct Applier<'t> {
    tree: &'t mut Tree,
    /// Directory mtimes to restore at the end: creating entries inside a directory
    /// must not change its time unless the layer says so.
    dir_times: BTreeMap<Ino, Timestamp>,
    /// Cleaned paths created by this layer, which an opaque marker must keep.
    unpacked: HashSet<Vec<u8>>,
    stats: LayerStats,
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timestamp,
    xattrs: Xattrs,
}

impl Applier<'_> {
    fn finish(self) -> Result<LayerStats> {
        for (ino, t) in self.dir_times {
            self.tree.set_times(ino, None, Some(t))?;
        }
        Ok(self.stats)
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let ty = e.header().entry_type();
        if ty.is_pax_global_extensions() {
            return Ok(());
        }
        let raw = e.path_bytes().into_owned();
        let err = |reason: String| FsError::layer(&raw, reason);
        if raw.len() > PATH_MAX {
            return Err(err("name longer than 4096 bytes".into()));
        }
        self.stats.entries += 1;
        let comps = clean(&raw);
        let Some((name, parents)) = comps.split_last() else {
            return self.root_entry(e, &raw);
        };
        let name = name.to_vec();
        if let Some(target) = name.strip_prefix(WHITEOUT) {
            self.stats.whiteouts += 1;
            return self
                .whiteout(parents, &name, target)
                .map_err(|x| err(x.to_string()));
        }
        let dir = self.make_parents(parents).map_err(|x| err(x.to_string()))?;
        let meta = read_meta(e).map_err(|x| err(x.to_string()))?;
        let path = join(&comps);
        self.create(e, dir, &name, meta).map_err(|x| match x {
            FsError::Layer { .. } => x,
            other => err(other.to_string()),
        })?;
        self.unpacked.insert(path);
        Ok(())
    }

    fn root_entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<()> {
        if !e.header().entry_type().is_dir() {
            return Err(FsError::layer(
                raw,
                "entry would replace the root directory",
            ));
        }
        let meta = read_meta(e).map_err(|x| FsError::layer(raw, x.to_string()))?;
        let root = self.tree.root();
        self.set_meta(root, meta, true)
    }

    /// Resolves (creating as 0755 root:root where missing) the parent directories,
    /// following symlinks inside the tree.
    fn make_parents(&mut self, parents: &[Vec<u8>]) -> Result<Ino> {
        let mut cur = self.tree.root();
        let mut path = Vec::new();
        for comp in parents {
            path = join_one(&path, comp);
            cur = match self.tree.resolve(cur, comp, Follow::Yes) {
                Ok(next) => next,
                Err(FsError::NotFound) if self.tree.lookup(cur, comp).is_err() => {
                    self.note_dir(cur)?;
                    let d = self.tree.mkdir(cur, comp, 0o755, 0, 0)?;
                    self.unpacked.insert(path.clone());
                    d
                }
                Err(e) => return Err(e),
            };
            if self.tree.metadata(cur)?.file_type != FileType::Directory {
                return Err(FsError::NotDir);
            }
        }
        Ok(cur)
    }

    fn whiteout(&mut self, parents: &[Vec<u8>], name: &[u8], target: &[u8]) -> Result<()> {
        let dir = match self.resolve_dir(parents) {
            Ok(d) => d,
            Err(FsError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        if name == OPAQUE {
            return self.opaque(dir, parents);
        }
        if target.starts_with(WHITEOUT) {
            // Other `.wh..wh.` names are aufs bookkeeping with no meaning here.
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(FsError::Invalid);
        }
        match self.tree.lookup(dir, target) {
            Ok(_) => {
                self.note_dir(dir)?;
                self.tree.remove_all(dir, target)
            }
            Err(FsError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn resolve_dir(&mut self, parents: &[Vec<u8>]) -> Result<Ino> {
        let mut cur = self.tree.root();
        for comp in parents {
            cur = self.tree.resolve(cur, comp, Follow::Yes)?;
        }
        if self.tree.metadata(cur)?.file_type != FileType::Directory {
            return Err(FsError::NotDir);
        }
        Ok(cur)
    }

    /// Hides everything in `dir` that this layer did not itself create.
    fn opaque(&mut self, dir: Ino, parents: &[Vec<u8>]) -> Result<()> {
        let prefix = join(parents);
        for entry in self.tree.readdir(dir)? {
            if !self.unpacked.contains(&join_one(&prefix, &entry.name)) {
                self.note_dir(dir)?;
                self.tree.remove_all(dir, &entry.name)?;
            }
        }
        Ok(())
    }

    fn create<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        dir: Ino,
        name: &[u8],
        meta: Meta,
    ) -> Result<()> {
        let ty = e.header().entry_type();
        let existing = match self.tree.lookup(dir, name) {
            Ok(i) => Some(i),
            Err(FsError::NotFound) => None,
            Err(x) => return Err(x),
        };
        if ty.is_hard_link() {
            return self.hard_link(e, dir, name, existing);
        }
        if let Some(ex) = existing {
            let ex_dir = self.tree.metadata(ex)?.file_type == FileType::Directory;
            if ty.is_dir() && ex_dir {
                return self.set_meta(ex, meta, true);
            }
            self.note_dir(dir)?;
            self.tree.remove_all(dir, name)?;
        }
        self.note_dir(dir)?;
        let ino = if ty.is_dir() {
            self.tree.mkdir(dir, name, meta.mode, meta.uid, meta.gid)?
        } else if ty.is_file() || ty.is_contiguous() || ty.is_gnu_sparse() || ty.as_byte() == 0 {
            let f = self
                .tree
                .create_file(dir, name, meta.mode, meta.uid, meta.gid)?;
            self.stats.bytes += self.tree.write_from(f, &mut *e)?;
            f
        } else if ty.is_symlink() {
            let target = e.link_name_bytes().ok_or(FsError::NotFound)?.into_owned();
            self.tree.symlink(dir, name, &target, meta.uid, meta.gid)?
        } else if ty.is_character_special() || ty.is_block_special() || ty.is_fifo() {
            let (kind, rdev) = device(e, ty)?;
            self.tree
                .mknod(dir, name, kind, meta.mode, rdev, meta.uid, meta.gid)?
        } else {
            return Err(FsError::layer(
                &e.path_bytes(),
                format!("unsupported entry type {:?}", ty),
            ));
        };
        let is_dir = ty.is_dir();
        self.set_meta(ino, meta, is_dir)
    }

    fn hard_link<R: Read>(
        &mut self,
        e: &tar::Entry<'_, R>,
        dir: Ino,
        name: &[u8],
        existing: Option<Ino>,
    ) -> Result<()> {
        let raw = e.link_name_bytes().ok_or(FsError::NotFound)?.into_owned();
        let comps = clean(&raw);
        let Some((tname, tparents)) = comps.split_last() else {
            return Err(FsError::layer(
                &e.path_bytes(),
                "hard link to the root directory",
            ));
        };
        let tdir = self.resolve_dir(tparents)?;
        let target = self.tree.lookup(tdir, tname)?;
        if self.tree.metadata(target)?.file_type == FileType::Directory {
            return Err(FsError::layer(&e.path_bytes(), "hard link to a directory"));
        }
        if existing == Some(target) {
            return Ok(());
        }
        self.note_dir(dir)?;
        if existing.is_some() {
            self.tree.remove_all(dir, name)?;
        }
        self.tree.link(target, dir, name)
    }

    fn set_meta(&mut self, ino: Ino, meta: Meta, is_dir: bool) -> Result<()> {
        self.tree.chmod(ino, meta.mode)?;
        self.tree.chown(ino, Some(meta.uid), Some(meta.gid))?;
        self.tree.set_xattrs(ino, meta.xattrs)?;
        if is_dir {
            self.dir_times.insert(ino, meta.mtime);
        } else {
            self.tree
                .set_times(ino, Some(meta.mtime), Some(meta.mtime))?;
        }
        Ok(())
    }

    /// Remembers a directory's mtime before this layer first changes its entries.
    fn note_dir(&mut self, dir: Ino) -> Result<()> {
        if !self.dir_times.contains_key(&dir) {
            let t = self.tree.metadata(dir)?.mtime;
            self.dir_times.insert(dir, t);
        }
        Ok(())
    }
}

fn device<R: Read>(e: &tar::Entry<'_, R>, ty: tar::EntryType) -> Result<(FileType, u64)> {
    if ty.is_fifo() {
        return Ok((FileType::Fifo, 0));
    }
    let h = e.header();
    let major = h.device_major()?.unwrap_or(0);
    let minor = h.device_minor()?.unwrap_or(0);
    let kind = if ty.is_character_special() {
        FileType::CharDevice
    } else {
        FileType::BlockDevice
    };
    Ok((kind, dev_join(u64::from(major), u64::from(minor))))
}

fn read_meta<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<Meta> {
    let h = e.header();
    let id = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| FsError::Layer {
            entry: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            reason: format!("{what} {v} out of range"),
        })
    };
    let mode = h.mode()? & 0o7777;
    let uid = id(h.uid()?, "uid")?;
    let gid = id(h.gid()?, "gid")?;
    let mut mtime = Timestamp::from_secs(i64::try_from(h.mtime()?).unwrap_or(i64::MAX));
    let mut xattrs = Xattrs::new();
    if let Some(pax) = e.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                mtime = parse_time(ext.value_bytes()).ok_or(FsError::Invalid)?;
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.insert(name.to_vec(), ext.value_bytes().to_vec());
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// Parses a PAX time: `[-]seconds[.fraction]`.
fn parse_time(v: &[u8]) -> Option<Timestamp> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sec: i64 = whole.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nsec: u32 = digits.parse().ok()?;
    Some(match (neg, nsec) {
        (false, _) => Timestamp { sec, nsec },
        (true, 0) => Timestamp { sec: -sec, nsec: 0 },
        (true, n) => Timestamp {
            sec: -sec - 1,
            nsec: 1_000_000_000 - n,
        },
    })
}

/// Lexically cleans an entry name: empty and `.` components dropped, `..` removes
/// the previous component and stops at the root.
fn clean(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn join_one(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut p = prefix.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_clamps_at_root() {
        let c = |s: &str| String::from_utf8(join(&clean(s.as_bytes()))).unwrap();
        assert_eq!(c("../../etc/passwd"), "etc/passwd");
        assert_eq!(c("/abs//x/./y/"), "abs/x/y");
        assert_eq!(c("a/../../b"), "b");
        assert_eq!(c("./"), "");
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_time(b"12"), Some(Timestamp::from_secs(12)));
        assert_eq!(
            parse_time(b"1.5"),
            Some(Timestamp {
                sec: 1,
                nsec: 500_000_000
            })
        );
        assert_eq!(
            parse_time(b"-1.25"),
            Some(Timestamp {
                sec: -2,
                nsec: 750_000_000
            })
        );
        assert_eq!(parse_time(b"x"), None);
    }
}
