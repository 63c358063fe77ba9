//! The mutable working tree: an inode table opened lazily from a snapshot.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use crate::INLINE_MAX;
use crate::error::{FsError, Result};
use crate::node::{Attrs, Content, FileType, Kind, Node, Snapshot, Timestamp, Xattrs};
use crate::quota::{ChargedReader, DiskQuota};
use crate::store::{Digest, Store};

/// Longest name of one directory entry, as on Linux.
pub const NAME_MAX: usize = 255;
/// Largest file size accepted (sparse files in spill files make this cheap to allow).
const FILE_MAX: u64 = 1 << 42;
/// Deepest directory nesting allowed. Freezing, hashing and diffing recurse per
/// level; this bound keeps them far from the end of a 2 MiB thread stack even in
/// debug builds. Deeper `mkdir`/`rename` fail with `NameTooLong`.
pub const MAX_DEPTH: u32 = 256;
/// Longest symlink target, as Linux (`PATH_MAX - 1`).
const SYMLINK_MAX: usize = 4095;
/// Largest extended attribute value, as Linux.
const XATTR_VALUE_MAX: usize = 64 * 1024;
/// Symlink hops allowed in one resolution, as on Linux.
const MAX_HOPS: u32 = 40;

/// Inode number inside one [`Tree`]. Assigned from a counter in the order inodes
/// are first reached (a directory's children in name order), so the same sequence of
/// operations gives the same numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ino(u64);

impl Ino {
    pub fn get(self) -> u64 {
        self.0
    }
    fn idx(self) -> usize {
        (self.0 - 1) as usize
    }
}

/// Whether the final path component is followed when it is a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub ino: Ino,
    pub file_type: FileType,
    /// Permission bits including setuid/setgid/sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub rdev: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: Ino,
    pub file_type: FileType,
}

enum Data {
    Stored(Content),
    Mem(Vec<u8>),
    /// Too large for memory: an anonymous temp file in the store directory.
    Spill {
        file: File,
        len: u64,
        /// Bytes already charged to the disk quota for this file (writes may exceed
        /// `len` when they overwrite; holes from extensions are not charged).
        charged: u64,
    },
}

enum Body {
    /// `entries` is `None` until first access: the children are still only the
    /// origin node's shared subtree.
    Dir {
        parent: Ino,
        entries: Option<BTreeMap<Vec<u8>, Ino>>,
    },
    File(Data),
    Symlink(Vec<u8>),
    Special(FileType, u64),
}

struct Inode {
    attrs: Attrs,
    atime: Timestamp,
    ctime: Timestamp,
    /// Non-directories: number of names. Directories: 2 + subdirectories, 0 once removed.
    nlink: u32,
    body: Body,
    /// The snapshot node this inode equals while `dirty` is false.
    origin: Option<Arc<Node>>,
    dirty: bool,
}

impl Inode {
    fn from_node(node: &Arc<Node>, parent: Ino) -> Inode {
        let (body, nlink) = match &node.kind {
            Kind::Dir(d) => (
                Body::Dir {
                    parent,
                    entries: None,
                },
                2 + d.subdirs,
            ),
            Kind::File(c) => (Body::File(Data::Stored(c.clone())), node.nlink),
            Kind::Symlink(t) => (Body::Symlink(t.clone()), node.nlink),
            Kind::Special(t, r) => (Body::Special(*t, *r), node.nlink),
        };
        Inode {
            attrs: node.attrs.clone(),
            atime: node.attrs.mtime,
            ctime: node.attrs.mtime,
            nlink,
            body,
            origin: Some(node.clone()),
            dirty: false,
        }
    }

    fn file_type(&self) -> FileType {
        match &self.body {
            Body::Dir { .. } => FileType::Directory,
            Body::File(_) => FileType::Regular,
            Body::Symlink(_) => FileType::Symlink,
            Body::Special(t, _) => *t,
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir { .. })
    }

    fn size(&self) -> u64 {
        match &self.body {
            Body::Dir { .. } => 4096,
            Body::File(Data::Stored(c)) => c.len(),
            Body::File(Data::Mem(v)) => v.len() as u64,
            Body::File(Data::Spill { len, .. }) => *len,
            Body::Symlink(t) => t.len() as u64,
            Body::Special(..) => 0,
        }
    }
}

/// A mutable filesystem tree. Opening one from a snapshot is O(1): directories are
/// expanded into inodes on first access, and [`Tree::snapshot`] rebuilds only what
/// changed, reusing the snapshot's nodes everywhere else.
pub struct Tree {
    store: Arc<Store>,
    inodes: Vec<Inode>,
    /// Inodes of nodes with several names, keyed by node address (the `Arc` is held so
    /// the address stays unique), so every name of a hard link maps to one inode.
    links: HashMap<usize, (Arc<Node>, Ino)>,
    now: Timestamp,
    /// Open handles of recently read blobs, so reading a big file in chunks does
    /// not reopen it for every chunk.
    blobs: Mutex<HashMap<Digest, Arc<File>>>,
    /// Bytes of small-file content this tree has put in memory, against
    /// [`INLINE_BUDGET`]. Only ever grows: freeing memory does not refund it, so the
    /// count is an upper bound and cheap to keep.
    inline_used: u64,
    /// Disk bytes this tree may still write (spill files, store blobs).
    quota: DiskQuota,
    /// A scratch tree (tmpfs, writable bind) never names its contents in the store:
    /// large files stay in anonymous spill files, gone with the process however it ends.
    scratch: bool,
}

/// Open blob handles kept per tree.
const BLOB_HANDLES: usize = 32;

/// Bytes of small-file content one tree holds in memory. Files up to [`INLINE_MAX`]
/// are kept inline because a store blob per tiny file costs more than the bytes; but a
/// layer or `ADD` archive of many small files (40,000 x 64 KiB is 2.6 GB from a 12 MB
/// tar.gz) must not all sit in memory. Past this budget new small contents go to the
/// store (or to spill files while being written) like large ones. 32 MiB keeps typical
/// steps (a few thousand config and script files) entirely inline, and keeps a COPY of
/// 200 MB of small files under 100 MB of peak RSS (it peaked at 104 MB with 64 MiB:
/// the process's own ~20 MB, the budget, and the tar and gzip buffers of the layer).
pub const INLINE_BUDGET: u64 = 32 << 20;

const ROOT: Ino = Ino(1);

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(FsError::Invalid);
    }
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

fn check_new_name(name: &[u8]) -> Result<()> {
    check_name(name)?;
    if name == b"." || name == b".." {
        return Err(FsError::Exists);
    }
    Ok(())
}

impl Tree {
    pub fn from_snapshot(snap: &Snapshot) -> Tree {
        let root = Inode::from_node(&snap.root, ROOT);
        Tree {
            store: snap.store.clone(),
            inodes: vec![root],
            links: HashMap::new(),
            now: Timestamp::EPOCH,
            blobs: Mutex::new(HashMap::new()),
            inline_used: 0,
            quota: DiskQuota::default(),
            scratch: false,
        }
    }

    /// An empty tree (root 0755, 0:0).
    pub fn new(store: &Arc<Store>) -> Tree {
        Tree::from_snapshot(&Snapshot::empty(store))
    }

    /// An empty scratch tree for data that must never be at rest under a name (tmpfs
    /// mounts, writable binds): file contents live in memory or in anonymous spill
    /// files, never as store blobs, so nothing of them survives the process. It is not
    /// meant to be snapshotted (a snapshot would store its large files as blobs).
    pub fn scratch(store: &Arc<Store>) -> Tree {
        let mut tree = Tree::new(store);
        tree.scratch = true;
        tree
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Bounds the bytes this tree writes to disk from now on (default:
    /// [`crate::DEFAULT_DISK_QUOTA`]). Give every tree of one step a clone of the same
    /// quota, and a fresh quota for each step.
    pub fn set_disk_quota(&mut self, quota: DiskQuota) {
        self.quota = quota;
    }

    pub(crate) fn replace_disk_quota(&mut self, quota: DiskQuota) -> DiskQuota {
        std::mem::replace(&mut self.quota, quota)
    }

    /// The time recorded as mtime/ctime by modifications (kiln never reads the host
    /// clock, so builds stay reproducible). Defaults to the epoch.
    pub fn set_clock(&mut self, now: Timestamp) {
        self.now = now;
    }

    pub fn root(&self) -> Ino {
        ROOT
    }

    fn get(&self, ino: Ino) -> Result<&Inode> {
        if ino.0 == 0 {
            return Err(FsError::BadIno(0));
        }
        self.inodes.get(ino.idx()).ok_or(FsError::BadIno(ino.0))
    }

    fn get_mut(&mut self, ino: Ino) -> Result<&mut Inode> {
        if ino.0 == 0 {
            return Err(FsError::BadIno(0));
        }
        self.inodes.get_mut(ino.idx()).ok_or(FsError::BadIno(ino.0))
    }

    fn alloc(&mut self, inode: Inode) -> Ino {
        self.inodes.push(inode);
        Ino(self.inodes.len() as u64)
    }

    fn load(&mut self, node: &Arc<Node>, parent: Ino) -> Ino {
        let key = Arc::as_ptr(node) as usize;
        if node.is_linked()
            && let Some((_, ino)) = self.links.get(&key)
        {
            return *ino;
        }
        let ino = self.alloc(Inode::from_node(node, parent));
        if node.is_linked() {
            self.links.insert(key, (node.clone(), ino));
        }
        ino
    }

    /// The children of a live directory, expanding it from its snapshot node if needed.
    fn entries(&mut self, dir: Ino) -> Result<&mut BTreeMap<Vec<u8>, Ino>> {
        let inode = self.get(dir)?;
        let origin = match &inode.body {
            Body::Dir { entries: None, .. } => inode.origin.clone(),
            Body::Dir { .. } => None,
            _ => return Err(FsError::NotDir),
        };
        if inode.nlink == 0 {
            return Err(FsError::NotFound);
        }
        if let Some(origin) = origin {
            let children = origin
                .as_dir()
                .map(|d| d.entries.iter())
                .into_iter()
                .flatten();
            let mut map = BTreeMap::new();
            for (name, child) in children {
                map.insert(name.clone(), self.load(child, dir));
            }
            if let Body::Dir { entries, .. } = &mut self.get_mut(dir)?.body {
                *entries = Some(map);
            }
        }
        match &mut self.get_mut(dir)?.body {
            Body::Dir {
                entries: Some(e), ..
            } => Ok(e),
            _ => Err(FsError::NotDir),
        }
    }

    fn is_dir(&self, ino: Ino) -> Result<bool> {
        Ok(self.get(ino)?.is_dir())
    }

    /// Marks content or entries changed: mtime and ctime become the clock.
    fn modified(&mut self, ino: Ino) -> Result<()> {
        let now = self.now;
        let inode = self.get_mut(ino)?;
        inode.attrs.mtime = now;
        inode.ctime = now;
        inode.dirty = true;
        Ok(())
    }

    /// Marks metadata changed: ctime becomes the clock.
    fn changed(&mut self, ino: Ino) -> Result<&mut Inode> {
        let now = self.now;
        let inode = self.get_mut(ino)?;
        inode.ctime = now;
        inode.dirty = true;
        Ok(inode)
    }

    // ---- lookups -------------------------------------------------------------

    pub fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino> {
        check_name(name)?;
        match name {
            b"." => {
                self.entries(dir)?;
                Ok(dir)
            }
            b".." => self.parent(dir),
            _ => self
                .entries(dir)?
                .get(name)
                .copied()
                .ok_or(FsError::NotFound),
        }
    }

    /// Parent of a directory (the root is its own parent).
    pub fn parent(&self, dir: Ino) -> Result<Ino> {
        match &self.get(dir)?.body {
            Body::Dir { parent, .. } => Ok(*parent),
            _ => Err(FsError::NotDir),
        }
    }

    pub fn metadata(&self, ino: Ino) -> Result<Metadata> {
        let i = self.get(ino)?;
        let rdev = match &i.body {
            Body::Special(_, r) => *r,
            _ => 0,
        };
        Ok(Metadata {
            ino,
            file_type: i.file_type(),
            mode: i.attrs.mode,
            uid: i.attrs.uid,
            gid: i.attrs.gid,
            size: i.size(),
            nlink: u64::from(i.nlink),
            atime: i.atime,
            mtime: i.attrs.mtime,
            ctime: i.ctime,
            rdev,
        })
    }

    /// Entries of a directory sorted by name (without `.` and `..`). A position in
    /// this list is a stable readdir cookie while the directory is unchanged.
    pub fn readdir(&mut self, dir: Ino) -> Result<Vec<DirEntry>> {
        let entries: Vec<(Vec<u8>, Ino)> = self
            .entries(dir)?
            .iter()
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        entries
            .into_iter()
            .map(|(name, ino)| {
                Ok(DirEntry {
                    name,
                    ino,
                    file_type: self.get(ino)?.file_type(),
                })
            })
            .collect()
    }

    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>> {
        match &self.get(ino)?.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(FsError::Invalid),
        }
    }

    // ---- creation ------------------------------------------------------------

    fn insert_new(&mut self, dir: Ino, name: &[u8], inode: Inode) -> Result<Ino> {
        check_new_name(name)?;
        if self.entries(dir)?.contains_key(name) {
            return Err(FsError::Exists);
        }
        let is_dir = inode.is_dir();
        let ino = self.alloc(inode);
        self.entries(dir)?.insert(name.to_vec(), ino);
        if is_dir {
            self.get_mut(dir)?.nlink += 1;
        }
        self.modified(dir)?;
        Ok(ino)
    }

    fn new_inode(&self, mode: u32, uid: u32, gid: u32, body: Body) -> Inode {
        let nlink = if matches!(body, Body::Dir { .. }) {
            2
        } else {
            1
        };
        Inode {
            attrs: Attrs::new(mode, uid, gid, self.now),
            atime: self.now,
            ctime: self.now,
            nlink,
            body,
            origin: None,
            dirty: true,
        }
    }

    /// Creates an empty regular file; `Exists` if the name is taken.
    pub fn create_file(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Ino> {
        let inode = self.new_inode(mode, uid, gid, Body::File(Data::Mem(Vec::new())));
        self.insert_new(dir, name, inode)
    }

    pub fn mkdir(&mut self, dir: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Ino> {
        if self.depth(dir)? + 1 > MAX_DEPTH {
            return Err(FsError::NameTooLong);
        }
        let body = Body::Dir {
            parent: dir,
            entries: Some(BTreeMap::new()),
        };
        let inode = self.new_inode(mode, uid, gid, body);
        self.insert_new(dir, name, inode)
    }

    pub fn symlink(
        &mut self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Ino> {
        if target.is_empty() || target.contains(&0) {
            return Err(FsError::NotFound);
        }
        if target.len() > SYMLINK_MAX {
            return Err(FsError::NameTooLong);
        }
        let inode = self.new_inode(0o777, uid, gid, Body::Symlink(target.to_vec()));
        self.insert_new(dir, name, inode)
    }

    /// Creates a device node or fifo (kept as metadata only).
    #[allow(clippy::too_many_arguments)]
    pub fn mknod(
        &mut self,
        dir: Ino,
        name: &[u8],
        file_type: FileType,
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Ino> {
        let body = match file_type {
            FileType::CharDevice | FileType::BlockDevice => Body::Special(file_type, rdev),
            FileType::Fifo => Body::Special(file_type, 0),
            _ => return Err(FsError::Invalid),
        };
        let inode = self.new_inode(mode, uid, gid, body);
        self.insert_new(dir, name, inode)
    }

    /// Adds another name for a non-directory.
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Result<()> {
        let target = self.get(ino)?;
        if target.is_dir() {
            return Err(FsError::NotPermitted);
        }
        if target.nlink == 0 {
            return Err(FsError::NotFound);
        }
        check_new_name(name)?;
        if self.entries(dir)?.contains_key(name) {
            return Err(FsError::Exists);
        }
        self.entries(dir)?.insert(name.to_vec(), ino);
        self.changed(ino)?.nlink += 1;
        self.modified(dir)
    }

    // ---- removal -------------------------------------------------------------

    fn child(&mut self, dir: Ino, name: &[u8]) -> Result<Ino> {
        check_name(name)?;
        self.entries(dir)?
            .get(name)
            .copied()
            .ok_or(FsError::NotFound)
    }

    /// Removes a non-directory name. The inode stays usable through its `Ino`.
    pub fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        if name == b"." || name == b".." {
            return Err(FsError::IsDir);
        }
        let ino = self.child(dir, name)?;
        if self.is_dir(ino)? {
            return Err(FsError::IsDir);
        }
        self.entries(dir)?.remove(name);
        let inode = self.changed(ino)?;
        inode.nlink = inode.nlink.saturating_sub(1);
        self.modified(dir)
    }

    pub fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        match name {
            b"." => return Err(FsError::Invalid),
            b".." => return Err(FsError::NotEmpty),
            _ => {}
        }
        let ino = self.child(dir, name)?;
        if !self.is_dir(ino)? {
            return Err(FsError::NotDir);
        }
        if !self.entries(ino)?.is_empty() {
            return Err(FsError::NotEmpty);
        }
        self.entries(dir)?.remove(name);
        self.remove_dir_inode(ino, dir)?;
        self.modified(dir)
    }

    /// Removes a name and, for a directory, everything below it (`rm -rf`). Link
    /// counts of hard-linked files inside are kept right; shared subtrees without
    /// links are dropped without being visited.
    pub fn remove_all(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        if matches!(name, b"." | b"..") {
            return Err(FsError::Invalid);
        }
        let ino = self.child(dir, name)?;
        if !self.is_dir(ino)? {
            return self.unlink(dir, name);
        }
        self.detach_children(ino)?;
        self.entries(dir)?.remove(name);
        self.remove_dir_inode(ino, dir)?;
        self.modified(dir)
    }

    fn detach_children(&mut self, dir: Ino) -> Result<()> {
        let inode = self.get(dir)?;
        let lazy = matches!(inode.body, Body::Dir { entries: None, .. });
        if lazy && !inode.origin.as_ref().is_some_and(|o| o.dir_has_links()) {
            return Ok(());
        }
        let children: Vec<Ino> = self.entries(dir)?.values().copied().collect();
        for child in children {
            if self.is_dir(child)? {
                self.detach_children(child)?;
                self.changed(child)?.nlink = 0;
            } else {
                let c = self.changed(child)?;
                c.nlink = c.nlink.saturating_sub(1);
            }
        }
        Ok(())
    }

    fn remove_dir_inode(&mut self, ino: Ino, parent: Ino) -> Result<()> {
        self.changed(ino)?.nlink = 0;
        let p = self.get_mut(parent)?;
        p.nlink = p.nlink.saturating_sub(1);
        Ok(())
    }

    /// POSIX rename: replaces an existing target (an empty directory for a
    /// directory, a non-directory for a non-directory); `Invalid` when moving a
    /// directory into itself.
    pub fn rename(&mut self, dir: Ino, name: &[u8], newdir: Ino, newname: &[u8]) -> Result<()> {
        if matches!(name, b"." | b"..") || matches!(newname, b"." | b"..") {
            return Err(FsError::Invalid);
        }
        check_name(newname)?;
        let src = self.child(dir, name)?;
        let dst = self.entries(newdir)?.get(newname).copied();
        if dst == Some(src) {
            return Ok(());
        }
        let src_dir = self.is_dir(src)?;
        if src_dir {
            let mut p = newdir;
            loop {
                if p == src {
                    return Err(FsError::Invalid);
                }
                if p == ROOT {
                    break;
                }
                p = self.parent(p)?;
            }
            if self.depth(newdir)? + self.height(src)? > MAX_DEPTH {
                return Err(FsError::NameTooLong);
            }
        }
        if let Some(d) = dst {
            match (src_dir, self.is_dir(d)?) {
                (true, false) => return Err(FsError::NotDir),
                (false, true) => return Err(FsError::IsDir),
                (true, true) if !self.entries(d)?.is_empty() => return Err(FsError::NotEmpty),
                _ => {}
            }
            if src_dir {
                self.remove_dir_inode(d, newdir)?;
            } else {
                let inode = self.changed(d)?;
                inode.nlink = inode.nlink.saturating_sub(1);
            }
        }
        self.entries(dir)?.remove(name);
        self.entries(newdir)?.insert(newname.to_vec(), src);
        if src_dir {
            if let Body::Dir { parent, .. } = &mut self.get_mut(src)?.body {
                *parent = newdir;
            }
            let d = self.get_mut(dir)?;
            d.nlink = d.nlink.saturating_sub(1);
            self.get_mut(newdir)?.nlink += 1;
        }
        self.changed(src)?;
        self.modified(dir)?;
        self.modified(newdir)
    }

    /// Number of directories between the root and `dir` (the root is 0).
    fn depth(&self, dir: Ino) -> Result<u32> {
        let mut d = 0;
        let mut cur = dir;
        while cur != ROOT {
            cur = self.parent(cur)?;
            d += 1;
        }
        Ok(d)
    }

    /// Levels of directories in the subtree of `dir`, itself included.
    fn height(&self, dir: Ino) -> Result<u32> {
        let inode = self.get(dir)?;
        match (&inode.body, &inode.origin) {
            (Body::Dir { entries: None, .. }, Some(o)) => Ok(o.as_dir().map_or(1, |d| d.height)),
            (
                Body::Dir {
                    entries: Some(e), ..
                },
                _,
            ) => {
                let mut h = 0;
                for child in e.values() {
                    if self.get(*child)?.is_dir() {
                        h = h.max(self.height(*child)?);
                    }
                }
                Ok(h + 1)
            }
            _ => Ok(0),
        }
    }

    // ---- metadata ------------------------------------------------------------

    pub fn chmod(&mut self, ino: Ino, mode: u32) -> Result<()> {
        self.changed(ino)?.attrs.mode = mode & 0o7777;
        Ok(())
    }

    /// Changes owner and/or group (`None` leaves it as is).
    pub fn chown(&mut self, ino: Ino, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        let inode = self.changed(ino)?;
        if let Some(u) = uid {
            inode.attrs.uid = u;
        }
        if let Some(g) = gid {
            inode.attrs.gid = g;
        }
        Ok(())
    }

    /// Sets access and/or modification time (`None` leaves it as is).
    pub fn set_times(
        &mut self,
        ino: Ino,
        atime: Option<Timestamp>,
        mtime: Option<Timestamp>,
    ) -> Result<()> {
        let inode = self.changed(ino)?;
        if let Some(a) = atime {
            inode.atime = a;
        }
        if let Some(m) = mtime {
            inode.attrs.mtime = m;
        }
        Ok(())
    }

    pub fn get_xattr(&self, ino: Ino, name: &[u8]) -> Result<Vec<u8>> {
        self.get(ino)?
            .attrs
            .xattrs
            .get(name)
            .cloned()
            .ok_or(FsError::NoAttr)
    }

    /// Sets an extended attribute (values up to 64 KiB, as on Linux).
    pub fn set_xattr(&mut self, ino: Ino, name: &[u8], value: &[u8]) -> Result<()> {
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(FsError::Invalid);
        }
        if value.len() > XATTR_VALUE_MAX {
            return Err(FsError::TooBig);
        }
        self.changed(ino)?
            .attrs
            .xattrs
            .insert(name.to_vec(), value.to_vec());
        Ok(())
    }

    /// Names of all extended attributes, sorted.
    pub fn list_xattr(&self, ino: Ino) -> Result<Vec<Vec<u8>>> {
        Ok(self.get(ino)?.attrs.xattrs.keys().cloned().collect())
    }

    pub fn remove_xattr(&mut self, ino: Ino, name: &[u8]) -> Result<()> {
        if !self.get(ino)?.attrs.xattrs.contains_key(name) {
            return Err(FsError::NoAttr);
        }
        self.changed(ino)?.attrs.xattrs.remove(name);
        Ok(())
    }

    pub(crate) fn set_xattrs(&mut self, ino: Ino, xattrs: Xattrs) -> Result<()> {
        self.changed(ino)?.attrs.xattrs = xattrs;
        Ok(())
    }

    // ---- file contents -------------------------------------------------------

    fn data_mut(&mut self, ino: Ino) -> Result<&mut Data> {
        match &mut self.get_mut(ino)?.body {
            Body::File(d) => Ok(d),
            Body::Dir { .. } => Err(FsError::IsDir),
            _ => Err(FsError::Invalid),
        }
    }

    fn data(&self, ino: Ino) -> Result<&Data> {
        match &self.get(ino)?.body {
            Body::File(d) => Ok(d),
            Body::Dir { .. } => Err(FsError::IsDir),
            _ => Err(FsError::Invalid),
        }
    }

    /// Reads at `off`; returns 0 at or past the end. A blob-backed file is read with
    /// a seek, never loaded whole.
    pub fn read_at(&self, ino: Ino, off: u64, buf: &mut [u8]) -> Result<usize> {
        match self.data(ino)? {
            Data::Stored(Content::Inline(b)) => Ok(read_slice(b, off, buf)),
            Data::Mem(v) => Ok(read_slice(v, off, buf)),
            Data::Stored(Content::Blob { digest, size }) => {
                read_file_at(&*self.blob(digest)?, *size, off, buf)
            }
            Data::Spill { file, len, .. } => read_file_at(file, *len, off, buf),
        }
    }

    fn blob(&self, digest: &Digest) -> Result<Arc<File>> {
        let mut cache = self.blobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = cache.get(digest) {
            return Ok(f.clone());
        }
        if cache.len() >= BLOB_HANDLES {
            cache.clear();
        }
        let f = Arc::new(self.store.open_blob(digest)?);
        cache.insert(*digest, f.clone());
        Ok(f)
    }

    /// Writes at `off`, growing the file (with zeros) as needed.
    pub fn write_at(&mut self, ino: Ino, off: u64, data: &[u8]) -> Result<usize> {
        let end = off.checked_add(data.len() as u64).ok_or(FsError::TooBig)?;
        if end > FILE_MAX {
            return Err(FsError::TooBig);
        }
        if data.is_empty() {
            // POSIX: a zero-length write changes nothing, even past the end.
            self.data(ino)?;
            return Ok(0);
        }
        let in_memory = self.charge_inline(ino, end, false)?;
        let (store, quota) = (self.store.clone(), self.quota.clone());
        let d = self.data_mut(ino)?;
        make_writable(d, end, !in_memory, &store, &quota)?;
        match d {
            Data::Mem(v) => {
                let (o, e) = (off as usize, end as usize);
                if v.len() < e {
                    v.resize(e, 0);
                }
                v[o..e].copy_from_slice(data);
            }
            Data::Spill { file, len, charged } => {
                quota.charge(data.len() as u64)?;
                *charged = charged.saturating_add(data.len() as u64);
                file.seek(SeekFrom::Start(off))?;
                file.write_all(data)?;
                *len = (*len).max(end);
            }
            Data::Stored(_) => return Err(FsError::Invalid),
        }
        self.modified(ino)?;
        Ok(data.len())
    }

    /// Truncates or extends (with zeros) a regular file.
    pub fn set_len(&mut self, ino: Ino, new_len: u64) -> Result<()> {
        if new_len > FILE_MAX {
            return Err(FsError::TooBig);
        }
        let in_memory = self.charge_inline(ino, new_len, true)?;
        let (store, quota) = (self.store.clone(), self.quota.clone());
        let d = self.data_mut(ino)?;
        if in_memory {
            // Shrinking a big file to a small one: keep only the head, in memory.
            shrink_to_memory(d, new_len, &store)?;
        }
        make_writable(d, new_len, !in_memory, &store, &quota)?;
        match d {
            Data::Mem(v) => v.resize(new_len as usize, 0),
            // An extension is a hole in the sparse spill file: no disk, no charge.
            Data::Spill { file, len, .. } => {
                file.set_len(new_len)?;
                *len = new_len;
            }
            Data::Stored(_) => return Err(FsError::Invalid),
        }
        self.modified(ino)
    }

    /// Streams contents to disk, charging the quota as they come: a spill file for a
    /// scratch tree, a store blob otherwise.
    fn write_to_disk(&mut self, reader: impl Read) -> Result<(Data, u64)> {
        let hit = std::sync::atomic::AtomicBool::new(false);
        let mut reader = ChargedReader {
            inner: reader,
            quota: &self.quota,
            hit: &hit,
        };
        let quota_err = |e: FsError| {
            if hit.load(std::sync::atomic::Ordering::Relaxed) {
                FsError::DiskQuota {
                    limit: self.quota.limit(),
                }
            } else {
                e
            }
        };
        if self.scratch {
            let mut file = self.store.spill_file()?;
            let len = io::copy(&mut reader, &mut file).map_err(|e| quota_err(e.into()))?;
            let charged = len;
            return Ok((Data::Spill { file, len, charged }, len));
        }
        let (digest, size) = self.store.put(&mut reader).map_err(quota_err)?;
        Ok((Data::Stored(Content::Blob { digest, size }), size))
    }

    /// Takes `n` bytes from the inline budget; false (nothing taken) if they do not fit.
    fn take_inline(&mut self, n: u64) -> bool {
        match self.inline_used.checked_add(n) {
            Some(total) if total <= INLINE_BUDGET => {
                self.inline_used = total;
                true
            }
            _ => false,
        }
    }

    /// Whether `ino`'s content may be held in memory at `end` bytes, charging what that
    /// adds to the budget. Content already in memory is charged only for its growth; a
    /// stored inline content is charged whole when it becomes a private copy. Content
    /// in a blob or spill file moves to memory only when `bring_in` (truncation).
    fn charge_inline(&mut self, ino: Ino, end: u64, bring_in: bool) -> Result<bool> {
        if end > INLINE_MAX as u64 {
            return Ok(false);
        }
        // (bytes already charged, bytes the in-memory copy starts with)
        let (held, size) = match self.data(ino)? {
            Data::Mem(v) => (v.len() as u64, v.len() as u64),
            Data::Stored(Content::Inline(b)) => (0, b.len() as u64),
            Data::Stored(Content::Blob { .. }) | Data::Spill { .. } if !bring_in => {
                return Ok(false);
            }
            Data::Stored(Content::Blob { .. }) | Data::Spill { .. } => (0, 0),
        };
        let need = end.max(size);
        Ok(need <= held || self.take_inline(need - held))
    }

    /// Replaces the contents of a regular file with everything `reader` yields,
    /// streaming large contents straight into the store. Returns the new length.
    pub fn write_from(&mut self, ino: Ino, reader: impl Read) -> Result<u64> {
        self.data(ino)?;
        let mut head = Vec::new();
        let mut reader = reader;
        (&mut reader)
            .take(INLINE_MAX as u64 + 1)
            .read_to_end(&mut head)?;
        let small = head.len() <= INLINE_MAX;
        let (data, len) = if small && self.take_inline(head.len() as u64) {
            let len = head.len() as u64;
            // read_to_end grows by doubling: without this a file held inline costs up to
            // twice the bytes the budget charges (a 200 MB COPY of small files peaked at
            // 100 MB of heap against the 64 MiB budget).
            head.shrink_to_fit();
            (Data::Mem(head), len)
        } else {
            self.write_to_disk(io::Cursor::new(head).chain(reader))?
        };
        *self.data_mut(ino)? = data;
        self.modified(ino)?;
        Ok(len)
    }

    /// The digest of a regular file's content as the snapshot this tree was opened
    /// from (or last frozen into) holds it, whatever has happened to the file since;
    /// `None` for a file created since then. A caller that read bytes whose digest
    /// equals this knows they come from the base image or a committed layer.
    pub fn snapshot_digest(&self, ino: Ino) -> Result<Option<Digest>> {
        let inode = self.get(ino)?;
        Ok(match inode.origin.as_deref().map(|n| &n.kind) {
            Some(Kind::File(c)) => Some(c.digest()),
            _ => None,
        })
    }

    /// A reader over the current contents of a regular file. For a file being
    /// written through a spill file, later writes may show through.
    pub fn open_read(&self, ino: Ino) -> Result<ContentReader> {
        Ok(match self.data(ino)? {
            Data::Stored(c) => ContentReader::from_content(c, &self.store)?,
            Data::Mem(v) => ContentReader::Bytes(io::Cursor::new(Arc::from(v.as_slice()))),
            Data::Spill { file, len, .. } => ContentReader::File {
                file: file.try_clone()?,
                pos: 0,
                len: *len,
            },
        })
    }

    // ---- paths ---------------------------------------------------------------

    /// Resolves a path inside the tree: absolute paths start at the root, `..`
    /// stops at the root, symlinks resolve inside the tree (at most 40), and the
    /// final component is followed only with `Follow::Yes` (or a trailing `/`).
    pub fn resolve(&mut self, start: Ino, path: &[u8], follow: Follow) -> Result<Ino> {
        let mut hops = 0;
        self.walk(start, path, follow, &mut hops)
    }

    /// Resolves all but the last component of `path`, for calls that create or
    /// remove the last one. Returns the directory and the final name.
    pub fn resolve_parent(&mut self, start: Ino, path: &[u8]) -> Result<(Ino, Vec<u8>)> {
        let trimmed = trim_trailing_slashes(path);
        let (dir_part, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        if name.is_empty() {
            return Err(if path.is_empty() {
                FsError::NotFound
            } else {
                FsError::Invalid
            });
        }
        check_name(name)?;
        let dir = if dir_part.is_empty() {
            start
        } else {
            self.resolve(start, dir_part, Follow::Yes)?
        };
        if !self.is_dir(dir)? {
            return Err(FsError::NotDir);
        }
        Ok((dir, name.to_vec()))
    }

    fn walk(&mut self, start: Ino, path: &[u8], follow: Follow, hops: &mut u32) -> Result<Ino> {
        if path.is_empty() {
            return Err(FsError::NotFound);
        }
        let mut cur = if path[0] == b'/' { ROOT } else { start };
        let must_be_dir = path.ends_with(b"/");
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let next = self.lookup(cur, comp)?;
            let follow_this = !last || follow == Follow::Yes || must_be_dir;
            cur = match &self.get(next)?.body {
                Body::Symlink(target) if follow_this => {
                    *hops += 1;
                    if *hops > MAX_HOPS {
                        return Err(FsError::Loop);
                    }
                    let target = target.clone();
                    self.walk(cur, &target, Follow::Yes, hops)?
                }
                _ => next,
            };
        }
        if must_be_dir && !self.is_dir(cur)? {
            return Err(FsError::NotDir);
        }
        if comps.is_empty() && !self.is_dir(cur)? {
            return Err(FsError::NotDir);
        }
        Ok(cur)
    }

    // ---- freezing ------------------------------------------------------------

    /// Freezes the current state into a snapshot, rebuilding only changed
    /// directories and storing large new contents as blobs. The tree stays usable.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        let walk_links = self
            .inodes
            .iter()
            .any(|i| i.dirty && i.origin.as_ref().is_some_and(|o| o.is_linked()));
        let root = self.freeze(ROOT, walk_links)?;
        Ok(Snapshot::from_root(root, self.store.clone()))
    }

    fn freeze(&mut self, ino: Ino, walk_links: bool) -> Result<Arc<Node>> {
        let inode = self.get(ino)?;
        if let (false, Some(origin)) = (inode.dirty, &inode.origin) {
            let lazy = matches!(inode.body, Body::Dir { entries: None, .. });
            let needs_visit = inode.is_dir() && !lazy || (walk_links && origin.dir_has_links());
            if !needs_visit {
                return Ok(origin.clone());
            }
        }
        let node = if inode.is_dir() {
            self.freeze_dir(ino, walk_links)?
        } else {
            self.freeze_leaf(ino)?
        };
        if node.is_linked() {
            self.links
                .insert(Arc::as_ptr(&node) as usize, (node.clone(), ino));
        }
        let inode = self.get_mut(ino)?;
        inode.origin = Some(node.clone());
        inode.dirty = false;
        Ok(node)
    }

    fn freeze_dir(&mut self, ino: Ino, walk_links: bool) -> Result<Arc<Node>> {
        let names: Vec<(Vec<u8>, Ino)> = self
            .entries(ino)?
            .iter()
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        let inode = self.get(ino)?;
        let origin = inode.origin.clone().filter(|_| !inode.dirty);
        let mut same = origin
            .as_ref()
            .and_then(|o| o.as_dir())
            .is_some_and(|d| d.entries.len() == names.len());
        let mut children = BTreeMap::new();
        for (name, child) in names {
            let node = self.freeze(child, walk_links)?;
            same = same
                && origin
                    .as_ref()
                    .and_then(|o| o.as_dir())
                    .and_then(|d| d.entries.get(&name))
                    .is_some_and(|o| Arc::ptr_eq(o, &node));
            children.insert(name, node);
        }
        match origin {
            Some(o) if same => Ok(o),
            _ => Ok(Node::dir(self.get(ino)?.attrs.clone(), children)),
        }
    }

    fn freeze_leaf(&mut self, ino: Ino) -> Result<Arc<Node>> {
        let (store, quota) = (self.store.clone(), self.quota.clone());
        let inode = self.get_mut(ino)?;
        let kind = match &mut inode.body {
            Body::File(data) => {
                let content = freeze_data(data, &store, &quota)?;
                *data = Data::Stored(content.clone());
                Kind::File(content)
            }
            Body::Symlink(t) => Kind::Symlink(t.clone()),
            Body::Special(t, r) => Kind::Special(*t, *r),
            Body::Dir { .. } => return Err(FsError::IsDir),
        };
        Ok(Node::new(inode.attrs.clone(), inode.nlink, kind))
    }
}

fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    &path[..end]
}

fn freeze_data(data: &mut Data, store: &Store, quota: &DiskQuota) -> Result<Content> {
    Ok(match data {
        Data::Stored(c) => c.clone(),
        Data::Mem(v) if v.len() <= INLINE_MAX => Content::Inline(Arc::from(v.as_slice())),
        Data::Mem(v) => {
            quota.charge(v.len() as u64)?;
            let (digest, size) = store.put(v.as_slice())?;
            Content::Blob { digest, size }
        }
        Data::Spill { file, len, charged } => {
            // Holes were free while sparse; storing them writes every byte. Charge
            // what was not charged yet before writing anything.
            quota.charge(len.saturating_sub(*charged))?;
            *charged = (*charged).max(*len);
            file.seek(SeekFrom::Start(0))?;
            let (digest, size) = store.put(file.take(*len))?;
            if size != *len {
                return Err(FsError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "spill file shorter than recorded length",
                )));
            }
            Content::Blob { digest, size }
        }
    })
}

fn shrink_to_memory(data: &mut Data, len: u64, store: &Store) -> Result<()> {
    let mut head = Vec::new();
    match data {
        Data::Stored(Content::Blob { digest, .. }) => {
            store.open_blob(digest)?.take(len).read_to_end(&mut head)?;
        }
        Data::Spill { file, .. } => {
            file.seek(SeekFrom::Start(0))?;
            file.take(len).read_to_end(&mut head)?;
        }
        _ => return Ok(()),
    }
    *data = Data::Mem(head);
    Ok(())
}

/// Turns `data` into a mutable representation able to hold `end` bytes: small files
/// stay in memory, larger ones (`big`: over [`INLINE_MAX`] or past the tree's inline
/// budget) move to a spill file (copying any stored blob).
fn make_writable(
    data: &mut Data,
    end: u64,
    big: bool,
    store: &Store,
    quota: &DiskQuota,
) -> Result<()> {
    let big = big || end > INLINE_MAX as u64;
    let replacement = match data {
        Data::Stored(Content::Inline(b)) if !big => Data::Mem(b.to_vec()),
        Data::Stored(Content::Inline(b)) => spill_with(store, quota, &b[..], b.len() as u64)?,
        Data::Stored(Content::Blob { digest, size }) => {
            let blob = store.open_blob(digest)?;
            spill_with(store, quota, blob.take(*size), *size)?
        }
        Data::Mem(v) if big => spill_with(store, quota, v.as_slice(), v.len() as u64)?,
        _ => return Ok(()),
    };
    *data = replacement;
    Ok(())
}

/// A spill file holding a copy of `src` (`size` bytes), charged to the quota first.
fn spill_with(store: &Store, quota: &DiskQuota, mut src: impl Read, size: u64) -> Result<Data> {
    quota.charge(size)?;
    let mut file = store.spill_file()?;
    let len = io::copy(&mut src, &mut file)?;
    Ok(Data::Spill {
        file,
        len,
        charged: size,
    })
}

fn read_slice(bytes: &[u8], off: u64, buf: &mut [u8]) -> usize {
    let start = usize::try_from(off).unwrap_or(usize::MAX).min(bytes.len());
    let n = buf.len().min(bytes.len() - start);
    buf[..n].copy_from_slice(&bytes[start..start + n]);
    n
}

/// Positioned read that leaves the handle's offset alone (handles are shared).
#[cfg(unix)]
fn pread(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, off)
}

#[cfg(windows)]
fn pread(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, off)
}

#[cfg(not(any(unix, windows)))]
fn pread(mut file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    file.seek(SeekFrom::Start(off))?;
    file.read(buf)
}

fn read_file_at(file: &File, len: u64, off: u64, buf: &mut [u8]) -> Result<usize> {
    if off >= len {
        return Ok(0);
    }
    let want = buf
        .len()
        .min(usize::try_from(len - off).unwrap_or(usize::MAX));
    let mut done = 0;
    while done < want {
        match pread(file, &mut buf[done..want], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// Streaming reader over a file's contents (see [`Tree::open_read`]).
pub enum ContentReader {
    Bytes(io::Cursor<Arc<[u8]>>),
    File { file: File, pos: u64, len: u64 },
}

impl ContentReader {
    pub(crate) fn from_content(c: &Content, store: &Store) -> Result<ContentReader> {
        Ok(match c {
            Content::Inline(b) => ContentReader::Bytes(io::Cursor::new(b.clone())),
            Content::Blob { digest, size } => ContentReader::File {
                file: store.open_blob(digest)?,
                pos: 0,
                len: *size,
            },
        })
    }
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ContentReader::Bytes(c) => c.read(buf),
            ContentReader::File { file, pos, len } => {
                let n = read_file_at(file, *len, *pos, buf).map_err(io::Error::other)?;
                *pos += n as u64;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
