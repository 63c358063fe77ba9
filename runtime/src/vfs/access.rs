//! Who a process is and what the step filesystem lets it do: the Unix permission checks
//! Linux makes (owner, group, other bits; root's `CAP_DAC_OVERRIDE`, `CAP_FOWNER` and
//! `CAP_CHOWN`; sticky directories). Root is the overwhelming majority of build steps,
//! so every check returns before reading any metadata when the process is root.

use std::sync::Arc;

use kiln_fs::{FileType, Ino};

use super::{Node, OpenOptions, SharedTree, Stat, Vfs};
use crate::error::Errno;

/// The ids a process runs with (Dockerfile `USER`, as BuildKit's executor resolves it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups as `getgroups(2)` reports them: sorted, unique, the primary
    /// group included (BuildKit always adds it).
    groups: Arc<[u32]>,
}

impl Identity {
    /// uid 0, gid 0, no other group.
    pub fn root() -> Identity {
        Identity::new(0, 0, Vec::new())
    }

    /// `uid:gid` with the supplementary groups `groups` (order and repeats do not matter;
    /// `gid` is added).
    pub fn new(uid: u32, gid: u32, mut groups: Vec<u32>) -> Identity {
        groups.push(gid);
        groups.sort_unstable();
        groups.dedup();
        Identity {
            uid,
            gid,
            groups: groups.into(),
        }
    }

    /// The supplementary groups (sorted, primary included).
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    pub(crate) fn is_root(&self) -> bool {
        self.uid == 0
    }

    fn in_group(&self, gid: u32) -> bool {
        self.groups.binary_search(&gid).is_ok()
    }

    /// The three permission bits of `st` that apply to this identity (Linux looks at the
    /// first class that matches: owner, then group, then other).
    fn bits_for(&self, st: &Stat) -> u32 {
        if st.uid == self.uid {
            (st.mode >> 6) & 7
        } else if self.in_group(st.gid) {
            (st.mode >> 3) & 7
        } else {
            st.mode & 7
        }
    }

    /// `access(2)` for `want` (a mask of [`R`], [`W`], [`X`]). Root may read and write
    /// anything and search any directory, but executes a file only when some x bit is
    /// set, as `CAP_DAC_OVERRIDE` allows.
    pub(crate) fn may(&self, st: &Stat, want: u32) -> bool {
        if self.is_root() {
            return want & X == 0 || st.file_type == FileType::Directory || st.mode & 0o111 != 0;
        }
        self.bits_for(st) & want == want
    }

    /// [`Identity::may`] as the errno a path call returns.
    pub(crate) fn check(&self, st: &Stat, want: u32) -> Result<(), Errno> {
        if self.may(st, want) {
            Ok(())
        } else {
            Err(Errno::ACCES)
        }
    }

    /// May this identity change the mode, times or owner of `st` (the owner or root)?
    pub(crate) fn owns(&self, st: &Stat) -> Result<(), Errno> {
        if self.is_root() || st.uid == self.uid {
            Ok(())
        } else {
            Err(Errno::PERM)
        }
    }

    /// The mode `chmod` really sets: a non-root caller outside the file's group loses
    /// the setgid bit of a non-directory, as on Linux.
    pub(crate) fn chmod_mode(&self, st: &Stat, mode: u32) -> Result<u32, Errno> {
        self.owns(st)?;
        let keeps_setgid = self.is_root() || st.is_dir() || self.in_group(st.gid);
        Ok(if keeps_setgid { mode } else { mode & !0o2000 })
    }

    /// `chown` without `CAP_CHOWN`: only the owner, keeping the owner, giving the file
    /// to one of its own groups.
    pub(crate) fn check_chown(
        &self,
        st: &Stat,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(), Errno> {
        if self.is_root() {
            return Ok(());
        }
        let uid_ok = uid.is_none_or(|u| u == st.uid);
        let gid_ok = gid.is_none_or(|g| g == st.gid || self.in_group(g));
        if st.uid == self.uid && uid_ok && gid_ok {
            Ok(())
        } else {
            Err(Errno::PERM)
        }
    }

    /// Removing or replacing `child` in the sticky directory `dir` (`/tmp`) is for the
    /// owner of either, or root (`EPERM` otherwise).
    pub(crate) fn check_sticky(&self, dir: &Stat, child: &Stat) -> Result<(), Errno> {
        if self.is_root() || dir.mode & 0o1000 == 0 || self.uid == dir.uid || self.uid == child.uid
        {
            Ok(())
        } else {
            Err(Errno::PERM)
        }
    }
}

/// The checks the path operations of [`Vfs`] make, each a no-op for root where Linux
/// lets root through, so the common case reads no metadata.
impl Vfs {
    /// Walking through `dir` needs search (x) permission on it.
    pub(super) fn check_search(&self, dir: &Node) -> Result<(), Errno> {
        if self.id.is_root() {
            return if dir.is_dir() {
                Ok(())
            } else {
                Err(Errno::NOTDIR)
            };
        }
        let st = dir.stat().map_err(|_| Errno::NOTDIR)?;
        if !st.is_dir() {
            return Err(Errno::NOTDIR);
        }
        self.id.check(&st, X)
    }

    /// Opening an existing `node` needs r to read and w to write or truncate it.
    pub(super) fn check_open(&self, node: &Node, opts: &OpenOptions) -> Result<(), Errno> {
        if self.id.is_root() {
            return Ok(());
        }
        let read = if opts.read { R } else { 0 };
        let write = if opts.write || opts.truncate || opts.append {
            W
        } else {
            0
        };
        self.id.check(&node.stat()?, read | write)
    }

    /// Listing `dir` needs read permission on it.
    pub(super) fn check_list(&self, dir: &Node) -> Result<(), Errno> {
        if self.id.is_root() {
            return Ok(());
        }
        self.id.check(&dir.stat()?, R)
    }

    /// Adding an entry to directory `dir` of `tree` needs w and x on it.
    pub(super) fn check_dir_write(&self, tree: &SharedTree, dir: Ino) -> Result<(), Errno> {
        if self.id.is_root() {
            return Ok(());
        }
        self.id.check(&tree_stat(tree, dir)?, W | X)
    }

    /// Removing (or replacing) `name` in `dir`: w and x on the directory and, in a sticky
    /// directory, owning the directory or the entry. A missing entry is left to the
    /// operation itself to report.
    pub(super) fn check_remove(
        &self,
        tree: &SharedTree,
        dir: Ino,
        name: &[u8],
    ) -> Result<(), Errno> {
        if self.id.is_root() {
            return Ok(());
        }
        let dir_st = tree_stat(tree, dir)?;
        self.id.check(&dir_st, W | X)?;
        let child = tree.lock().lookup(dir, name);
        match child {
            Ok(ino) => self.id.check_sticky(&dir_st, &tree_stat(tree, ino)?),
            Err(_) => Ok(()),
        }
    }

    /// Renaming `from` to `to` (each a directory and a name): removing the one, replacing
    /// the other, and moving a directory to another parent rewrites its `..`, so it needs
    /// write permission itself.
    pub(super) fn check_rename(
        &self,
        tree: &SharedTree,
        from: (Ino, &[u8]),
        to: (Ino, &[u8]),
    ) -> Result<(), Errno> {
        if self.id.is_root() {
            return Ok(());
        }
        self.check_remove(tree, from.0, from.1)?;
        self.check_remove(tree, to.0, to.1)?;
        let moved = tree.lock().lookup(from.0, from.1);
        match moved {
            Ok(ino) if from.0 != to.0 => {
                let st = tree_stat(tree, ino)?;
                if st.is_dir() {
                    self.id.check(&st, W)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether this process may execute the file `st` describes.
    pub(crate) fn may_exec(&self, st: &Stat) -> bool {
        self.id.may(st, X)
    }

    /// Setting times: the owner, or (as `touch` of a file one may write) write access.
    pub(crate) fn check_times(&self, st: &Stat) -> Result<(), Errno> {
        self.id.owns(st).or_else(|_| self.id.check(st, W))
    }
}

fn tree_stat(tree: &SharedTree, ino: Ino) -> Result<Stat, Errno> {
    Ok(Stat::from_meta(tree.lock().metadata(ino)?, 0))
}

/// Read permission.
pub(crate) const R: u32 = 4;
/// Write permission.
pub(crate) const W: u32 = 2;
/// Execute (search, for a directory) permission.
pub(crate) const X: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_fs::Timestamp;

    fn st(file_type: FileType, mode: u32, uid: u32, gid: u32) -> Stat {
        Stat {
            dev: 1,
            ino: 2,
            file_type,
            mode,
            uid,
            gid,
            nlink: 1,
            size: 0,
            atime: Timestamp::EPOCH,
            mtime: Timestamp::EPOCH,
            ctime: Timestamp::EPOCH,
            rdev: 0,
        }
    }

    #[test]
    fn the_first_matching_class_decides_as_on_linux() {
        let app = Identity::new(1000, 1000, vec![27]);
        // The owner is denied by its own bits even though "other" would allow.
        assert!(!app.may(&st(FileType::Regular, 0o066, 1000, 0), R));
        assert!(app.may(&st(FileType::Regular, 0o040, 0, 27), R));
        assert!(!app.may(&st(FileType::Regular, 0o604, 0, 27), R));
        assert!(app.may(&st(FileType::Regular, 0o004, 0, 5), R));
        assert!(!app.may(&st(FileType::Directory, 0o755, 0, 0), W | X));
        assert!(app.may(&st(FileType::Directory, 0o755, 0, 0), R | X));
    }

    #[test]
    fn root_bypasses_all_but_the_exec_bit() {
        let root = Identity::root();
        assert!(root.may(&st(FileType::Regular, 0o000, 5, 5), R | W));
        assert!(root.may(&st(FileType::Directory, 0o000, 5, 5), X));
        assert!(!root.may(&st(FileType::Regular, 0o644, 0, 0), X));
        assert!(root.may(&st(FileType::Regular, 0o100, 5, 5), X));
    }

    #[test]
    fn owner_rules_for_chmod_chown_and_sticky_dirs() {
        let app = Identity::new(1000, 1000, vec![27]);
        let mine = st(FileType::Regular, 0o644, 1000, 1000);
        let roots = st(FileType::Regular, 0o666, 0, 0);
        assert_eq!(app.owns(&roots), Err(Errno::PERM));
        assert_eq!(app.chmod_mode(&mine, 0o2755), Ok(0o2755));
        let foreign_group = st(FileType::Regular, 0o644, 1000, 50);
        assert_eq!(app.chmod_mode(&foreign_group, 0o2755), Ok(0o755));
        assert_eq!(app.check_chown(&mine, None, Some(27)), Ok(()));
        assert_eq!(app.check_chown(&mine, None, Some(50)), Err(Errno::PERM));
        assert_eq!(app.check_chown(&mine, Some(0), None), Err(Errno::PERM));
        let tmp = st(FileType::Directory, 0o1777, 0, 0);
        assert_eq!(app.check_sticky(&tmp, &roots), Err(Errno::PERM));
        assert_eq!(app.check_sticky(&tmp, &mine), Ok(()));
        assert_eq!(Identity::root().check_sticky(&tmp, &mine), Ok(()));
    }
}
