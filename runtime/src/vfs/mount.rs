//! The per-step mount table: secrets, binds, caches, tmpfs and the built-in devices.
//! Mounts live only here, never as nodes of the step's tree.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use kiln_fs::{Ino, Store, Tree};
use parking_lot::Mutex;
use zeroize::Zeroizing;

use super::SharedTree;
use super::path::{MountPath, split_absolute};

/// A secret's bytes with its presented owner and mode. The bytes are zeroised when the
/// last reference (the mount or an open fd) is dropped.
pub(crate) struct Secret {
    pub(crate) data: Zeroizing<Vec<u8>>,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl fmt::Debug for Secret {
    // Never print the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes, mode {:o})", self.data.len(), self.mode)
    }
}

/// A host directory seen read-only through a capability handle.
pub(crate) struct HostDir {
    pub(crate) dir: cap_std::fs::Dir,
}

impl fmt::Debug for HostDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostDir")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Device {
    Null,
    Zero,
    Random,
    /// `/dev/stdin`, `/dev/fd/N`: the opener's own fd N.
    Fd(u32),
}

#[derive(Clone)]
pub(crate) enum Mount {
    Secret(Arc<Secret>),
    Host(Arc<HostDir>),
    /// tmpfs, caches and binds: a tree of their own, mounted at `root` (its root
    /// directory, or a file or subdirectory of it for a bind of one path).
    Tree {
        tree: SharedTree,
        root: Ino,
    },
    Device(Device),
    /// `/dev/fd`: a directory whose entries are the opener's fds.
    DevFd,
}

impl fmt::Debug for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mount::Secret(s) => s.fmt(f),
            Mount::Host(h) => h.fmt(f),
            Mount::Tree { .. } => f.write_str("Tree"),
            Mount::Device(d) => d.fmt(f),
            Mount::DevFd => f.write_str("DevFd"),
        }
    }
}

/// A mount and its device number.
pub(crate) type MountEntry = (Mount, u64);

/// Set in the device number of a read-only mount. The device number travels with every
/// node and open file of a mount, so this one bit lets a path operation and an fd
/// operation alike refuse a write with `EROFS`; the numbers stay distinct and opaque to
/// guests, as device numbers are.
const READ_ONLY_DEV: u64 = 1 << 62;

/// Whether `dev` is the device number of a read-only mount.
pub(crate) fn is_read_only(dev: u64) -> bool {
    dev & READ_ONLY_DEV != 0
}

/// Whether a tree mount takes writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Every write fails with `EROFS`, as on a `ro` mount.
    ReadOnly,
}

/// Error adding a mount.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount target {0:?} must be an absolute path other than /")]
    BadTarget(String),
    #[error("mount target {0:?} is already mounted")]
    Duplicate(String),
    #[error("mount target {target:?}: cannot copy host directory: {reason}")]
    Copy { target: String, reason: String },
}

/// Mounts of one step, keyed by absolute target path. `MountTable::new()` already holds
/// the devices (`/dev/null`, `/dev/zero`, `/dev/random`, `/dev/urandom`, `/dev/stdin`,
/// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`).
#[derive(Clone, Debug)]
pub struct MountTable {
    pub(crate) mounts: BTreeMap<MountPath, (Mount, u64)>,
    next_dev: u64,
    /// Components in the longest target: a deeper path neither is nor holds a mount.
    deepest: usize,
    /// Disk quota of the trees this table creates (tmpfs, writable binds).
    quota: kiln_fs::DiskQuota,
}

impl Default for MountTable {
    fn default() -> Self {
        MountTable::new()
    }
}

impl MountTable {
    pub fn new() -> MountTable {
        let mut t = MountTable {
            mounts: BTreeMap::new(),
            next_dev: 2,
            deepest: 0,
            quota: kiln_fs::DiskQuota::default(),
        };
        let devices = [
            ("/dev/null", Mount::Device(Device::Null)),
            ("/dev/zero", Mount::Device(Device::Zero)),
            ("/dev/random", Mount::Device(Device::Random)),
            ("/dev/urandom", Mount::Device(Device::Random)),
            ("/dev/stdin", Mount::Device(Device::Fd(0))),
            ("/dev/stdout", Mount::Device(Device::Fd(1))),
            ("/dev/stderr", Mount::Device(Device::Fd(2))),
            ("/dev/fd", Mount::DevFd),
        ];
        for (path, m) in devices {
            // Built-in targets are valid and distinct.
            let _ = t.insert(path, m);
        }
        t
    }

    fn insert(&mut self, target: &str, mount: Mount) -> Result<(), MountError> {
        self.insert_as(target, mount, Access::ReadWrite)
    }

    fn insert_as(&mut self, target: &str, mount: Mount, access: Access) -> Result<(), MountError> {
        let key = split_absolute(target.as_bytes())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| MountError::BadTarget(target.to_owned()))?;
        if self.mounts.contains_key(&key) {
            return Err(MountError::Duplicate(target.to_owned()));
        }
        self.deepest = self.deepest.max(key.len());
        let dev = match access {
            Access::ReadWrite => self.next_dev,
            Access::ReadOnly => self.next_dev | READ_ONLY_DEV,
        };
        self.mounts.insert(key, (mount, dev));
        self.next_dev += 1;
        Ok(())
    }

    /// A read-only in-memory file at `target`, zeroised when the step ends: a secret
    /// (`RUN --mount=type=secret`) or a `RUN <<EOF` script run through its `#!` line.
    pub fn add_secret(
        &mut self,
        target: &str,
        data: Zeroizing<Vec<u8>>,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), MountError> {
        let secret = Secret {
            data,
            mode: mode & 0o7777,
            uid,
            gid,
        };
        self.insert(target, Mount::Secret(Arc::new(secret)))
    }

    /// A read-only view of a host directory (`RUN --mount=type=bind`). Symlinks inside it
    /// resolve in the step's namespace, never on the host.
    pub fn add_bind(&mut self, target: &str, dir: cap_std::fs::Dir) -> Result<(), MountError> {
        self.insert(target, Mount::Host(Arc::new(HostDir { dir })))
    }

    /// A writable bind (`rw`): the host directory is copied into a throwaway scratch
    /// tree so writes never reach the host and are discarded after the step; its large
    /// files live in anonymous spill files, never as named store blobs.
    pub fn add_bind_rw(
        &mut self,
        target: &str,
        dir: &cap_std::fs::Dir,
        store: &Arc<Store>,
    ) -> Result<(), MountError> {
        let mut tree = Tree::scratch(store);
        tree.set_disk_quota(self.quota.clone());
        let root = tree.root();
        super::host::copy_into_tree(dir, &mut tree, root).map_err(|e| MountError::Copy {
            target: target.to_owned(),
            reason: e.to_string(),
        })?;
        self.add_tree(target, Arc::new(Mutex::new(tree)), None, Access::ReadWrite)
    }

    /// A persistent cache directory (`RUN --mount=type=cache`). The caller keeps `tree`
    /// between steps (and saves it if it wants it across builds); it is never part of the
    /// step's snapshot.
    pub fn add_cache(&mut self, target: &str, tree: SharedTree) -> Result<(), MountError> {
        self.add_tree(target, tree, None, Access::ReadWrite)
    }

    /// `tree` at `target`: its root, or with `at` one of its files or directories (a bind
    /// of one path). The tree is never part of the step's snapshot.
    pub fn add_tree(
        &mut self,
        target: &str,
        tree: SharedTree,
        at: Option<Ino>,
        access: Access,
    ) -> Result<(), MountError> {
        let root = at.unwrap_or_else(|| tree.lock().root());
        self.insert_as(target, Mount::Tree { tree, root }, access)
    }

    /// An empty directory discarded with the table (`RUN --mount=type=tmpfs`): a scratch
    /// tree, so files too large for memory live in anonymous spill files only.
    pub fn add_tmpfs(&mut self, target: &str, store: &Arc<Store>) -> Result<(), MountError> {
        let mut tree = Tree::scratch(store);
        tree.set_disk_quota(self.quota.clone());
        self.add_tree(target, Arc::new(Mutex::new(tree)), None, Access::ReadWrite)
    }

    /// Bounds what tmpfs mounts and writable binds added from now on write to disk.
    /// Pass a clone of the quota given to the step's tree (`Tree::set_disk_quota`) to
    /// bound the step as a whole; by default these trees share a quota of
    /// `kiln_fs::DEFAULT_DISK_QUOTA` of their own.
    pub fn set_disk_quota(&mut self, quota: kiln_fs::DiskQuota) {
        self.quota = quota;
    }

    /// Components in the longest mount target.
    pub(crate) fn deepest(&self) -> usize {
        self.deepest
    }

    pub(crate) fn get(&self, path: &[Vec<u8>]) -> Option<&(Mount, u64)> {
        self.mounts.get(path)
    }

    /// Whether some mount lies strictly below `path` (so `path` must appear as a
    /// directory even where the tree has nothing).
    pub(crate) fn is_parent(&self, path: &[Vec<u8>]) -> bool {
        self.mounts
            .keys()
            .any(|k| k.len() > path.len() && k.starts_with(path))
    }

    /// Names directly below `path` contributed by mounts, with whether each is the
    /// mount itself (`Some`) or an intermediate directory (`None`).
    pub(crate) fn children(&self, path: &[Vec<u8>]) -> Vec<(Vec<u8>, Option<&MountEntry>)> {
        let mut out: Vec<(Vec<u8>, Option<&MountEntry>)> = Vec::new();
        for (k, m) in &self.mounts {
            if k.len() > path.len() && k.starts_with(path) {
                let name = k[path.len()].clone();
                let direct = (k.len() == path.len() + 1).then_some(m);
                match out.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => {
                        if direct.is_some() {
                            slot.1 = direct;
                        }
                    }
                    None => out.push((name, direct)),
                }
            }
        }
        out
    }
}
