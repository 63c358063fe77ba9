//! The step filesystem: kiln's own path walk over the step's [`kiln_fs::Tree`] with the
//! [`MountTable`] resolved first at every component. Used by the WASI host and by the
//! shell alike (redirections, globbing, `cd`, `test`), so both see the same mounts.
//!
//! Mounts are never nodes of the tree: a directory that exists only because a mount lies
//! below it is synthesised read-only, so snapshots and diffs of the tree cannot contain a
//! trace of a secret or any other mount.

mod access;
mod file;
pub(crate) mod host;
mod mount;
pub(crate) mod path;

use std::sync::Arc;

use kiln_fs::{FileType, Ino, Metadata, Timestamp, Tree};
use parking_lot::Mutex;

pub use access::Identity;
pub(crate) use file::FileNode;
pub use file::VfsFile;
pub(crate) use mount::Device;
use mount::is_read_only;
pub use mount::{Access, MountError, MountTable};
use mount::{HostDir, Mount, Secret};
use path::{join, path_ino};

use crate::error::Errno;

/// The step's working tree, shared by every process of the step.
pub type SharedTree = Arc<Mutex<Tree>>;

/// Symlinks followed in one resolution before `ELOOP`, as on Linux.
const MAX_HOPS: u32 = 40;
/// Device number of the step's root tree; mounts get their own.
const ROOT_DEV: u64 = 1;

/// Full metadata of a file, as `stat(2)` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub file_type: FileType,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub size: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub rdev: u64,
}

impl Stat {
    pub(crate) fn from_meta(m: Metadata, dev: u64) -> Stat {
        Stat {
            dev,
            ino: m.ino.get(),
            file_type: m.file_type,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            nlink: m.nlink,
            size: m.size,
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
            rdev: m.rdev,
        }
    }

    fn synthetic(file_type: FileType, mode: u32, ino: u64, dev: u64) -> Stat {
        Stat {
            dev,
            ino,
            file_type,
            mode,
            uid: 0,
            gid: 0,
            nlink: if file_type == FileType::Directory {
                2
            } else {
                1
            },
            size: 0,
            atime: Timestamp::EPOCH,
            mtime: Timestamp::EPOCH,
            ctime: Timestamp::EPOCH,
            rdev: 0,
        }
    }

    pub(crate) fn secret(s: &Secret, dev: u64) -> Stat {
        Stat {
            uid: s.uid,
            gid: s.gid,
            size: s.data.len() as u64,
            ..Stat::synthetic(FileType::Regular, s.mode, 1, dev)
        }
    }

    pub(crate) fn device(d: Device) -> Stat {
        let (ino, rdev) = match d {
            Device::Null => (3, 0x103),
            Device::Zero => (5, 0x105),
            Device::Random => (9, 0x109),
            Device::Fd(n) => (0x1000 + u64::from(n), 0x500),
        };
        Stat {
            rdev,
            ..Stat::synthetic(FileType::CharDevice, 0o666, ino, 0)
        }
    }

    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Directory
    }
}

/// One directory entry as the step sees it (mounts merged in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VfsDirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub file_type: FileType,
}

/// What a path resolves to.
#[derive(Clone)]
pub(crate) enum Node {
    Tree {
        tree: SharedTree,
        ino: Ino,
        dev: u64,
    },
    Secret(Arc<Secret>, u64),
    Host {
        host: Arc<HostDir>,
        rel: Vec<Vec<u8>>,
        dev: u64,
    },
    /// A directory that exists only because a mount lies below it.
    Virtual(u64),
    DevFd,
    Device(Device),
}

impl Node {
    fn stat(&self) -> Result<Stat, Errno> {
        match self {
            Node::Tree { tree, ino, dev } => Ok(Stat::from_meta(tree.lock().metadata(*ino)?, *dev)),
            Node::Secret(s, dev) => Ok(Stat::secret(s, *dev)),
            Node::Host { host, rel, dev } => {
                let m = host::metadata(&host.dir, rel)?;
                Ok(Stat {
                    size: m.len(),
                    mtime: host::mtime(&m),
                    ..Stat::synthetic(host::file_type(&m), host::mode(&m), path_ino(rel), *dev)
                })
            }
            Node::Virtual(ino) => Ok(Stat::synthetic(FileType::Directory, 0o755, *ino, ROOT_DEV)),
            Node::DevFd => Ok(Stat::synthetic(FileType::Directory, 0o555, 0x500, 0)),
            Node::Device(d) => Ok(Stat::device(*d)),
        }
    }

    fn file_type(&self) -> Result<FileType, Errno> {
        match self {
            Node::Tree { tree, ino, .. } => Ok(tree.lock().metadata(*ino)?.file_type),
            Node::Virtual(_) | Node::DevFd => Ok(FileType::Directory),
            Node::Secret(..) => Ok(FileType::Regular),
            Node::Device(_) => Ok(FileType::CharDevice),
            Node::Host { .. } => self.stat().map(|s| s.file_type),
        }
    }

    fn is_dir(&self) -> bool {
        self.file_type().is_ok_and(|t| t == FileType::Directory)
    }

    fn symlink_target(&self) -> Result<Option<Vec<u8>>, Errno> {
        match self {
            Node::Tree { tree, ino, .. } => {
                let t = tree.lock();
                if t.metadata(*ino)?.file_type == FileType::Symlink {
                    return Ok(Some(t.readlink(*ino)?));
                }
                Ok(None)
            }
            Node::Host { host, rel, .. } => {
                if host::file_type(&host::metadata(&host.dir, rel)?) == FileType::Symlink {
                    return Ok(Some(host::read_link(&host.dir, rel)?));
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// The child `name` of this directory in its own backend (no mounts, no symlinks).
    fn lookup(&self, name: &[u8]) -> Result<Node, Errno> {
        match self {
            Node::Tree { tree, ino, dev } => {
                let child = tree.lock().lookup(*ino, name)?;
                Ok(Node::Tree {
                    tree: tree.clone(),
                    ino: child,
                    dev: *dev,
                })
            }
            Node::Host { host, rel, dev } => {
                if name.len() > kiln_fs::NAME_MAX {
                    return Err(Errno::NAMETOOLONG);
                }
                let mut rel = rel.clone();
                rel.push(name.to_vec());
                host::metadata(&host.dir, &rel)?;
                Ok(Node::Host {
                    host: host.clone(),
                    rel,
                    dev: *dev,
                })
            }
            Node::Virtual(_) => Err(Errno::NOENT),
            Node::DevFd => std::str::from_utf8(name)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .map(|n| Node::Device(Device::Fd(n)))
                .ok_or(Errno::NOENT),
            Node::Secret(..) | Node::Device(_) => Err(Errno::NOTDIR),
        }
    }

    fn entries(&self) -> Result<Vec<VfsDirEntry>, Errno> {
        match self {
            Node::Tree { tree, ino, .. } => Ok(tree
                .lock()
                .readdir(*ino)?
                .into_iter()
                .map(|e| VfsDirEntry {
                    name: e.name,
                    ino: e.ino.get(),
                    file_type: e.file_type,
                })
                .collect()),
            Node::Host { host, rel, .. } => Ok(host::read_dir(&host.dir, rel)?
                .into_iter()
                .map(|(name, file_type)| {
                    let mut p = rel.clone();
                    p.push(name.clone());
                    VfsDirEntry {
                        name,
                        ino: path_ino(&p),
                        file_type,
                    }
                })
                .collect()),
            Node::Virtual(_) | Node::DevFd => Ok(Vec::new()),
            Node::Secret(..) | Node::Device(_) => Err(Errno::NOTDIR),
        }
    }
}

fn mount_node(m: &Mount, dev: u64) -> Node {
    match m {
        Mount::Secret(s) => Node::Secret(s.clone(), dev),
        Mount::Host(h) => Node::Host {
            host: h.clone(),
            rel: Vec::new(),
            dev,
        },
        Mount::Tree { tree, root } => Node::Tree {
            tree: tree.clone(),
            ino: *root,
            dev,
        },
        Mount::Device(d) => Node::Device(*d),
        Mount::DevFd => Node::DevFd,
    }
}

/// An open directory: its canonical absolute path (kiln resolves `*at` calls from it).
#[derive(Clone)]
pub struct VfsDir {
    path: Vec<u8>,
    node: Node,
}

impl VfsDir {
    /// Canonical absolute path of the directory when it was opened.
    pub fn path(&self) -> &[u8] {
        &self.path
    }
}

impl std::fmt::Debug for VfsDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VfsDir({})", String::from_utf8_lossy(&self.path))
    }
}

/// Result of [`Vfs::open`].
#[derive(Debug)]
pub enum Opened {
    File(VfsFile),
    Dir(VfsDir),
    /// `/dev/stdin`, `/dev/fd/N`...: the opener's own fd `N` (the caller duplicates it).
    Fd(u32),
}

/// How to open a path (the union of `open(2)` flags kiln supports).
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    /// Fail with `ENOTDIR` unless the path is a directory.
    pub directory: bool,
    /// Follow a symlink in the final component.
    pub follow: bool,
    /// Mode for a created file, before the umask.
    pub mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            read: true,
            write: false,
            append: false,
            create: false,
            exclusive: false,
            truncate: false,
            directory: false,
            follow: true,
            mode: 0o666,
        }
    }
}

impl OpenOptions {
    /// `< file`
    pub fn read_only() -> OpenOptions {
        OpenOptions::default()
    }
    /// `> file`
    pub fn write_truncate() -> OpenOptions {
        OpenOptions {
            read: false,
            write: true,
            create: true,
            truncate: true,
            ..OpenOptions::default()
        }
    }
    /// `>> file`
    pub fn append() -> OpenOptions {
        OpenOptions {
            read: false,
            write: true,
            create: true,
            append: true,
            ..OpenOptions::default()
        }
    }
}

struct VfsInner {
    tree: SharedTree,
    mounts: MountTable,
}

/// The filesystem one step sees. Cheap to clone; clones share the tree and mounts.
#[derive(Clone)]
pub struct Vfs {
    inner: Arc<VfsInner>,
    /// The process's credentials and file creation mask: they travel with the process
    /// (each process holds its own `Vfs`), as on Linux.
    id: Identity,
    umask: u32,
}

impl std::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vfs(uid {}, gid {})", self.id.uid, self.id.gid)
    }
}

type Stack = Vec<(Vec<u8>, Node)>;

fn names(stack: &Stack) -> Vec<Vec<u8>> {
    stack.iter().map(|(n, _)| n.clone()).collect()
}

/// Splits `path` into its directory part and final name (trailing slashes ignored).
fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    let trimmed = &path[..end];
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (b"", trimmed),
    }
}

impl Vfs {
    /// The filesystem as root with umask 022 (BuildKit's runc default); see
    /// [`Vfs::with_identity`] and [`Vfs::with_umask`].
    pub fn new(tree: SharedTree, mounts: MountTable) -> Vfs {
        Vfs {
            inner: Arc::new(VfsInner { tree, mounts }),
            id: Identity::root(),
            umask: 0o022,
        }
    }

    /// The same filesystem as `id` (Dockerfile `USER`): files are created as its
    /// uid:gid and every access is checked against its ids.
    pub fn with_identity(&self, id: Identity) -> Vfs {
        Vfs { id, ..self.clone() }
    }

    /// The same filesystem with the file creation mask `umask` (the shell's `umask`).
    pub fn with_umask(&self, umask: u32) -> Vfs {
        Vfs {
            umask: umask & 0o777,
            ..self.clone()
        }
    }

    /// Who the process is.
    pub fn identity(&self) -> &Identity {
        &self.id
    }

    /// The file creation mask.
    pub fn umask(&self) -> u32 {
        self.umask
    }

    /// The step's tree (snapshot it after the step; mounts are not in it).
    pub fn tree(&self) -> &SharedTree {
        &self.inner.tree
    }

    fn root(&self) -> Node {
        let ino = self.inner.tree.lock().root();
        Node::Tree {
            tree: self.inner.tree.clone(),
            ino,
            dev: ROOT_DEV,
        }
    }

    fn current(&self, stack: &Stack) -> Node {
        stack
            .last()
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| self.root())
    }

    fn start(&self, cwd: &[u8]) -> Result<Stack, Errno> {
        let mut stack = Vec::new();
        if cwd.iter().any(|&b| b != b'/') {
            let mut hops = 0;
            self.walk(&mut stack, cwd, true, &mut hops)?;
            if !self.current(&stack).is_dir() {
                return Err(Errno::NOTDIR);
            }
        }
        Ok(stack)
    }

    fn child(&self, stack: &Stack, parent: &Node, name: &[u8]) -> Result<Node, Errno> {
        // Below the deepest mount target a path can neither be nor hold a mount, so
        // the mount checks (which build the whole path, O(depth) per component and
        // O(depth^2) per path) are skipped and resolution stays linear in depth.
        if stack.len() >= self.inner.mounts.deepest() {
            return parent.lookup(name);
        }
        let mut p = names(stack);
        p.push(name.to_vec());
        if let Some((m, dev)) = self.inner.mounts.get(&p) {
            return Ok(mount_node(m, *dev));
        }
        let mount_parent = self.inner.mounts.is_parent(&p);
        match parent.lookup(name) {
            Ok(n) if mount_parent && !n.is_dir() => Ok(Node::Virtual(path_ino(&p))),
            Ok(n) => Ok(n),
            Err(e) if mount_parent && e == Errno::NOENT => Ok(Node::Virtual(path_ino(&p))),
            Err(e) => Err(e),
        }
    }

    /// Walks `path` from the directory at the top of `stack`, leaving the resolved node
    /// on top. `..` pops (and stops at the root), symlinks restart from their directory.
    fn walk(
        &self,
        stack: &mut Stack,
        path: &[u8],
        follow_last: bool,
        hops: &mut u32,
    ) -> Result<(), Errno> {
        if path.is_empty() {
            return Err(Errno::NOENT);
        }
        if path.contains(&0) {
            return Err(Errno::INVAL);
        }
        if path[0] == b'/' {
            stack.clear();
        }
        let must_be_dir = path.ends_with(b"/");
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let cur = self.current(stack);
            self.check_search(&cur)?;
            match *comp {
                b"." => continue,
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            if comp.len() > kiln_fs::NAME_MAX {
                return Err(Errno::NAMETOOLONG);
            }
            let next = self.child(stack, &cur, comp)?;
            match next.symlink_target()? {
                Some(target) if !last || follow_last || must_be_dir => {
                    *hops += 1;
                    if *hops > MAX_HOPS {
                        return Err(Errno::LOOP);
                    }
                    self.walk(stack, &target, true, hops)?;
                }
                _ => stack.push((comp.to_vec(), next)),
            }
        }
        if must_be_dir && !self.current(stack).is_dir() {
            return Err(Errno::NOTDIR);
        }
        Ok(())
    }

    fn resolve(&self, cwd: &[u8], path: &[u8], follow: bool) -> Result<(Stack, Node), Errno> {
        let mut stack = self.start(cwd)?;
        let mut hops = 0;
        self.walk(&mut stack, path, follow, &mut hops)?;
        let node = self.current(&stack);
        Ok((stack, node))
    }

    /// The directory that holds `path`'s final name, for calls that create, remove or
    /// rename it. Mount points and the synthesised directories above them are busy;
    /// read-only backends give `EROFS`.
    fn parent_of(&self, cwd: &[u8], path: &[u8]) -> Result<(SharedTree, Ino, Vec<u8>, u64), Errno> {
        let (dir, name) = split_last(path);
        if name.is_empty() {
            return Err(if path.is_empty() {
                Errno::NOENT
            } else {
                Errno::EXIST
            });
        }
        let mut stack = self.start(cwd)?;
        if !dir.is_empty() {
            let mut hops = 0;
            self.walk(&mut stack, dir, true, &mut hops)?;
        }
        let parent = self.current(&stack);
        if matches!(name, b"." | b"..") {
            return Err(Errno::INVAL);
        }
        let mut p = names(&stack);
        p.push(name.to_vec());
        if self.inner.mounts.get(&p).is_some() || self.inner.mounts.is_parent(&p) {
            return Err(Errno::BUSY);
        }
        match parent {
            Node::Tree { dev, .. } if is_read_only(dev) => Err(Errno::ROFS),
            Node::Tree { tree, ino, dev } => {
                if tree.lock().metadata(ino)?.file_type != FileType::Directory {
                    return Err(Errno::NOTDIR);
                }
                Ok((tree, ino, name.to_vec(), dev))
            }
            Node::Host { .. } | Node::Virtual(_) | Node::DevFd => Err(Errno::ROFS),
            Node::Secret(..) | Node::Device(_) => Err(Errno::NOTDIR),
        }
    }

    /// Opens (and with `create`, creates) a file or directory.
    pub fn open(&self, cwd: &[u8], path: &[u8], opts: &OpenOptions) -> Result<Opened, Errno> {
        let follow = opts.follow && !(opts.create && opts.exclusive);
        match self.resolve(cwd, path, follow) {
            Ok(_) if opts.create && opts.exclusive => Err(Errno::EXIST),
            Ok((stack, node)) => self.open_node(&stack, node, opts),
            Err(e) if e == Errno::NOENT && opts.create => {
                if path.ends_with(b"/") {
                    return Err(Errno::ISDIR);
                }
                let (tree, dir, name, dev) = self
                    .parent_of(cwd, path)
                    .map_err(|e| if e == Errno::BUSY { Errno::EXIST } else { e })?;
                self.check_dir_write(&tree, dir)?;
                let mode = opts.mode & !self.umask & 0o7777;
                let ino = tree
                    .lock()
                    .create_file(dir, &name, mode, self.id.uid, self.id.gid)?;
                let node = FileNode::Tree { tree, ino, dev };
                Ok(Opened::File(VfsFile::new(
                    node,
                    opts.read,
                    opts.write,
                    opts.append,
                )))
            }
            Err(e) => Err(e),
        }
    }

    fn open_node(&self, stack: &Stack, node: Node, opts: &OpenOptions) -> Result<Opened, Errno> {
        self.check_open(&node, opts)?;
        let ft = node.file_type()?;
        if ft == FileType::Directory {
            if opts.write || opts.truncate {
                return Err(Errno::ISDIR);
            }
            return Ok(Opened::Dir(VfsDir {
                path: join(&names(stack)),
                node,
            }));
        }
        if opts.directory {
            return Err(Errno::NOTDIR);
        }
        if ft == FileType::Symlink {
            return Err(Errno::LOOP);
        }
        let writes = opts.write || opts.truncate || opts.append;
        let file_node = match node {
            Node::Tree { dev, .. } if writes && is_read_only(dev) => return Err(Errno::ROFS),
            Node::Tree { tree, ino, dev } => {
                if opts.truncate {
                    tree.lock().set_len(ino, 0)?;
                }
                FileNode::Tree { tree, ino, dev }
            }
            Node::Secret(_, _) if writes => return Err(Errno::ACCES),
            Node::Secret(s, dev) => FileNode::Secret(s, dev),
            Node::Host { .. } if writes => return Err(Errno::ROFS),
            Node::Host {
                ref host, ref rel, ..
            } => {
                let stat = node.stat()?;
                FileNode::Host(Mutex::new(host::open_file(&host.dir, rel)?), stat)
            }
            Node::Device(Device::Fd(n)) => return Ok(Opened::Fd(n)),
            Node::Device(d) => FileNode::Device(d),
            Node::Virtual(_) | Node::DevFd => return Err(Errno::ISDIR),
        };
        Ok(Opened::File(VfsFile::new(
            file_node,
            opts.read,
            opts.write,
            opts.append,
        )))
    }

    /// `stat` (`follow`) or `lstat`.
    pub fn stat(&self, cwd: &[u8], path: &[u8], follow: bool) -> Result<Stat, Errno> {
        self.resolve(cwd, path, follow)?.1.stat()
    }

    /// The canonical absolute path of a directory (for `cd`, `pwd -P`).
    pub fn canonical_dir(&self, cwd: &[u8], path: &[u8]) -> Result<Vec<u8>, Errno> {
        let (stack, node) = self.resolve(cwd, path, true)?;
        if !node.is_dir() {
            return Err(Errno::NOTDIR);
        }
        Ok(join(&names(&stack)))
    }

    /// Entries of a directory, mounts merged in, sorted by name, without `.`/`..`.
    pub fn read_dir(&self, cwd: &[u8], path: &[u8]) -> Result<Vec<VfsDirEntry>, Errno> {
        let (stack, node) = self.resolve(cwd, path, true)?;
        self.check_list(&node)?;
        self.entries_at(&names(&stack), &node)
    }

    /// Entries of an open directory.
    pub(crate) fn read_dir_at(&self, dir: &VfsDir) -> Result<Vec<VfsDirEntry>, Errno> {
        let comps = path::split_absolute(&dir.path).ok_or(Errno::INVAL)?;
        self.entries_at(&comps, &dir.node)
    }

    fn entries_at(&self, comps: &[Vec<u8>], node: &Node) -> Result<Vec<VfsDirEntry>, Errno> {
        if !node.is_dir() {
            return Err(Errno::NOTDIR);
        }
        let mut entries = node.entries()?;
        for (name, mount) in self.inner.mounts.children(comps) {
            let mut p = comps.to_vec();
            p.push(name.clone());
            let (file_type, ino) = match mount {
                Some((m, dev)) => {
                    let st = mount_node(m, *dev).stat()?;
                    (st.file_type, st.ino)
                }
                None => (FileType::Directory, path_ino(&p)),
            };
            let entry = VfsDirEntry {
                name,
                ino,
                file_type,
            };
            match entries.iter_mut().find(|e| e.name == entry.name) {
                Some(e) => *e = entry,
                None => entries.push(entry),
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    pub fn mkdir(&self, cwd: &[u8], path: &[u8], mode: u32) -> Result<(), Errno> {
        if self.resolve(cwd, path, false).is_ok() {
            return Err(Errno::EXIST);
        }
        let (tree, dir, name, _) = self.parent_of(cwd, path)?;
        self.check_dir_write(&tree, dir)?;
        let mode = mode & !self.umask & 0o7777;
        tree.lock()
            .mkdir(dir, &name, mode, self.id.uid, self.id.gid)?;
        Ok(())
    }

    pub fn remove_file(&self, cwd: &[u8], path: &[u8]) -> Result<(), Errno> {
        let (tree, dir, name, _) = self.parent_of(cwd, path)?;
        self.check_remove(&tree, dir, &name)?;
        let mut t = tree.lock();
        if path.ends_with(b"/") {
            let child = t.lookup(dir, &name)?;
            let is_dir = t.metadata(child)?.file_type == FileType::Directory;
            return Err(if is_dir { Errno::ISDIR } else { Errno::NOTDIR });
        }
        t.unlink(dir, &name)?;
        Ok(())
    }

    pub fn remove_dir(&self, cwd: &[u8], path: &[u8]) -> Result<(), Errno> {
        let (tree, dir, name, _) = self.parent_of(cwd, path)?;
        self.check_remove(&tree, dir, &name)?;
        tree.lock().rmdir(dir, &name)?;
        Ok(())
    }

    pub fn rename(&self, cwd: &[u8], from: &[u8], to_cwd: &[u8], to: &[u8]) -> Result<(), Errno> {
        let (tree, dir, name, dev) = self.parent_of(cwd, from)?;
        let (tree2, dir2, name2, dev2) = self.parent_of(to_cwd, to)?;
        if dev != dev2 || !Arc::ptr_eq(&tree, &tree2) {
            return Err(Errno::XDEV);
        }
        self.check_rename(&tree, (dir, &name), (dir2, &name2))?;
        let mut t = tree.lock();
        if to.ends_with(b"/") || from.ends_with(b"/") {
            let src = t.lookup(dir, &name)?;
            if t.metadata(src)?.file_type != FileType::Directory {
                return Err(Errno::NOTDIR);
            }
        }
        t.rename(dir, &name, dir2, &name2)?;
        Ok(())
    }

    pub fn symlink(&self, target: &[u8], cwd: &[u8], path: &[u8]) -> Result<(), Errno> {
        if path.ends_with(b"/") {
            return Err(if self.resolve(cwd, path, false).is_ok() {
                Errno::EXIST
            } else {
                Errno::NOENT
            });
        }
        let (tree, dir, name, _) = self
            .parent_of(cwd, path)
            .map_err(|e| if e == Errno::BUSY { Errno::EXIST } else { e })?;
        self.check_dir_write(&tree, dir)?;
        tree.lock()
            .symlink(dir, &name, target, self.id.uid, self.id.gid)?;
        Ok(())
    }

    /// A hard link `to` naming the same file as `from`.
    pub fn hard_link(
        &self,
        cwd: &[u8],
        from: &[u8],
        follow: bool,
        to_cwd: &[u8],
        to: &[u8],
    ) -> Result<(), Errno> {
        let (_, node) = self.resolve(cwd, from, follow)?;
        let Node::Tree { tree, ino, dev } = node else {
            return Err(Errno::XDEV);
        };
        if to.ends_with(b"/") {
            return Err(Errno::NOENT);
        }
        let (tree2, dir2, name2, dev2) = self
            .parent_of(to_cwd, to)
            .map_err(|e| if e == Errno::BUSY { Errno::EXIST } else { e })?;
        if dev != dev2 || !Arc::ptr_eq(&tree, &tree2) {
            return Err(Errno::XDEV);
        }
        self.check_dir_write(&tree, dir2)?;
        tree.lock().link(ino, dir2, &name2)?;
        Ok(())
    }

    pub fn read_link(&self, cwd: &[u8], path: &[u8]) -> Result<Vec<u8>, Errno> {
        let (_, node) = self.resolve(cwd, path, false)?;
        node.symlink_target()?.ok_or(Errno::INVAL)
    }

    /// Sets access/modification times (`None` leaves one unchanged).
    pub fn set_times(
        &self,
        cwd: &[u8],
        path: &[u8],
        follow: bool,
        atime: Option<Timestamp>,
        mtime: Option<Timestamp>,
    ) -> Result<(), Errno> {
        self.modify(cwd, path, follow, |t, ino| {
            self.check_times(&Stat::from_meta(t.metadata(ino)?, 0))?;
            Ok(t.set_times(ino, atime, mtime)?)
        })
    }

    pub fn chmod(&self, cwd: &[u8], path: &[u8], follow: bool, mode: u32) -> Result<(), Errno> {
        self.modify(cwd, path, follow, |t, ino| {
            let mode = self
                .id
                .chmod_mode(&Stat::from_meta(t.metadata(ino)?, 0), mode & 0o7777)?;
            Ok(t.chmod(ino, mode)?)
        })
    }

    pub fn chown(
        &self,
        cwd: &[u8],
        path: &[u8],
        follow: bool,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(), Errno> {
        self.modify(cwd, path, follow, |t, ino| {
            self.id
                .check_chown(&Stat::from_meta(t.metadata(ino)?, 0), uid, gid)?;
            Ok(t.chown(ino, uid, gid)?)
        })
    }

    fn modify(
        &self,
        cwd: &[u8],
        path: &[u8],
        follow: bool,
        op: impl FnOnce(&mut Tree, Ino) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        match self.resolve(cwd, path, follow)?.1 {
            Node::Tree { dev, .. } if is_read_only(dev) => Err(Errno::ROFS),
            Node::Tree { tree, ino, .. } => op(&mut tree.lock(), ino),
            Node::Secret(..) => Err(Errno::ACCES),
            Node::Device(_) | Node::DevFd => Err(Errno::PERM),
            Node::Host { .. } | Node::Virtual(_) => Err(Errno::ROFS),
        }
    }
}
