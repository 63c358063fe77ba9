//! The immutable, structurally shared tree behind a [`Snapshot`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use sha2::{Digest as _, Sha256};

use crate::store::{Digest, Store};

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp { sec: 0, nsec: 0 };

    pub fn from_secs(sec: i64) -> Timestamp {
        Timestamp { sec, nsec: 0 }
    }
}

/// The kind of a filesystem object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileType {
    Directory,
    Regular,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

pub(crate) type Xattrs = BTreeMap<Vec<u8>, Vec<u8>>;

/// Metadata stored in a snapshot (atime/ctime are working-tree only: they would make
/// snapshots depend on when files were looked at).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    pub xattrs: Xattrs,
}

impl Attrs {
    pub(crate) fn new(mode: u32, uid: u32, gid: u32, mtime: Timestamp) -> Attrs {
        Attrs {
            mode: mode & 0o7777,
            uid,
            gid,
            mtime,
            xattrs: Xattrs::new(),
        }
    }
}

/// Contents of a regular file: inline up to [`crate::INLINE_MAX`], else a store blob.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    Inline(Arc<[u8]>),
    Blob { digest: Digest, size: u64 },
}

impl Content {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Content::Inline(b) => b.len() as u64,
            Content::Blob { size, .. } => *size,
        }
    }

    pub(crate) fn digest(&self) -> Digest {
        match self {
            Content::Inline(b) => Digest::of(b),
            Content::Blob { digest, .. } => *digest,
        }
    }

    pub(crate) fn same(&self, other: &Content) -> bool {
        match (self, other) {
            (Content::Inline(a), Content::Inline(b)) => a == b,
            (Content::Blob { digest: a, .. }, Content::Blob { digest: b, .. }) => a == b,
            // A small file past a tree's inline budget is a blob: same bytes, same file.
            _ => self.len() == other.len() && self.digest() == other.digest(),
        }
    }
}

pub(crate) struct DirNode {
    pub entries: BTreeMap<Vec<u8>, Arc<Node>>,
    /// Some non-directory below has `nlink > 1`: such subtrees must be visited when a
    /// linked inode changes, because its other names live there.
    pub has_links: bool,
    pub subdirs: u32,
    /// Levels of directories in this subtree, itself included.
    pub height: u32,
}

pub(crate) enum Kind {
    Dir(DirNode),
    File(Content),
    Symlink(Vec<u8>),
    Special(FileType, u64),
}

pub(crate) struct Node {
    pub attrs: Attrs,
    /// Link count of non-directories; the same `Arc` appears under every name.
    pub nlink: u32,
    pub kind: Kind,
    hash: OnceLock<[u8; 32]>,
}

impl Node {
    pub(crate) fn new(attrs: Attrs, nlink: u32, kind: Kind) -> Arc<Node> {
        Arc::new(Node {
            attrs,
            nlink,
            kind,
            hash: OnceLock::new(),
        })
    }

    pub(crate) fn dir(attrs: Attrs, entries: BTreeMap<Vec<u8>, Arc<Node>>) -> Arc<Node> {
        let has_links = entries.values().any(|n| n.is_linked() || n.dir_has_links());
        let subdirs = entries.values().filter(|n| n.is_dir()).count() as u32;
        let height = 1 + entries
            .values()
            .filter_map(|n| n.as_dir())
            .map(|d| d.height)
            .max()
            .unwrap_or(0);
        Node::new(
            attrs,
            1,
            Kind::Dir(DirNode {
                entries,
                has_links,
                subdirs,
                height,
            }),
        )
    }

    pub(crate) fn file_type(&self) -> FileType {
        match &self.kind {
            Kind::Dir(_) => FileType::Directory,
            Kind::File(_) => FileType::Regular,
            Kind::Symlink(_) => FileType::Symlink,
            Kind::Special(t, _) => *t,
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    pub(crate) fn as_dir(&self) -> Option<&DirNode> {
        match &self.kind {
            Kind::Dir(d) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn is_linked(&self) -> bool {
        !self.is_dir() && self.nlink > 1
    }

    pub(crate) fn dir_has_links(&self) -> bool {
        self.as_dir().is_some_and(|d| d.has_links)
    }

    /// Same object and metadata, ignoring directory children.
    pub(crate) fn same_self(&self, other: &Node) -> bool {
        if self.attrs != other.attrs || self.nlink != other.nlink {
            return false;
        }
        match (&self.kind, &other.kind) {
            (Kind::Dir(_), Kind::Dir(_)) => true,
            (Kind::File(a), Kind::File(b)) => a.same(b),
            (Kind::Symlink(a), Kind::Symlink(b)) => a == b,
            (Kind::Special(t, r), Kind::Special(u, s)) => t == u && r == s,
            _ => false,
        }
    }

    /// Merkle hash over everything a snapshot records, cached in the node so repeated
    /// ids cost only the nodes created since.
    pub(crate) fn hash(&self) -> [u8; 32] {
        *self.hash.get_or_init(|| self.compute_hash())
    }

    fn compute_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let tag: u8 = match self.file_type() {
            FileType::Directory => b'd',
            FileType::Regular => b'f',
            FileType::Symlink => b'l',
            FileType::CharDevice => b'c',
            FileType::BlockDevice => b'b',
            FileType::Fifo => b'p',
        };
        h.update([tag]);
        let a = &self.attrs;
        h.update(a.mode.to_le_bytes());
        h.update(a.uid.to_le_bytes());
        h.update(a.gid.to_le_bytes());
        h.update(a.mtime.sec.to_le_bytes());
        h.update(a.mtime.nsec.to_le_bytes());
        h.update(self.nlink.to_le_bytes());
        h.update((a.xattrs.len() as u64).to_le_bytes());
        for (k, v) in &a.xattrs {
            put_bytes(&mut h, k);
            put_bytes(&mut h, v);
        }
        match &self.kind {
            Kind::Dir(d) => {
                h.update((d.entries.len() as u64).to_le_bytes());
                for (name, child) in &d.entries {
                    put_bytes(&mut h, name);
                    h.update(child.hash());
                }
            }
            Kind::File(c) => {
                h.update(c.len().to_le_bytes());
                h.update(c.digest().as_bytes());
            }
            Kind::Symlink(t) => put_bytes(&mut h, t),
            Kind::Special(_, rdev) => h.update(rdev.to_le_bytes()),
        }
        h.finalize().into()
    }
}

impl Drop for Node {
    /// Drops deep directory chains with a loop instead of recursion, so a very
    /// deep tree cannot overflow the stack when it is freed.
    fn drop(&mut self) {
        let Kind::Dir(d) = &mut self.kind else { return };
        let mut stack: Vec<Arc<Node>> = std::mem::take(&mut d.entries).into_values().collect();
        while let Some(node) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(node)
                && let Kind::Dir(d) = &mut inner.kind
            {
                stack.extend(std::mem::take(&mut d.entries).into_values());
            }
        }
    }
}

fn put_bytes(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

/// Identity of a snapshot: a Merkle digest of names, types, modes, owners, mtimes,
/// contents, link targets, xattrs and hard-link structure.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId(pub Digest);

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotId({})", self.0)
    }
}

/// An immutable filesystem tree. Cloning is O(1); unchanged subtrees are shared
/// with the snapshots it was derived from.
#[derive(Clone)]
pub struct Snapshot {
    pub(crate) root: Arc<Node>,
    pub(crate) store: Arc<Store>,
    id: Arc<OnceLock<SnapshotId>>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").field("id", &self.id()).finish()
    }
}

impl Snapshot {
    /// An empty root directory (mode 0755, owned by 0:0, mtime 0).
    pub fn empty(store: &Arc<Store>) -> Snapshot {
        let root = Node::dir(Attrs::new(0o755, 0, 0, Timestamp::EPOCH), BTreeMap::new());
        Snapshot::from_root(root, store.clone())
    }

    pub(crate) fn from_root(root: Arc<Node>, store: Arc<Store>) -> Snapshot {
        Snapshot {
            root,
            store,
            id: Arc::new(OnceLock::new()),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The Merkle id. O(nodes not hashed before) thanks to per-node caching, plus a
    /// walk of the subtrees that contain hard links (their grouping is part of the id).
    pub fn id(&self) -> SnapshotId {
        *self.id.get_or_init(|| {
            let mut h = Sha256::new();
            h.update(b"kiln-snapshot-v1");
            h.update(self.root.hash());
            for group in link_groups(&self.root) {
                h.update((group.len() as u64).to_le_bytes());
                for path in group {
                    put_bytes(&mut h, &path);
                }
            }
            SnapshotId(Digest::from_bytes(h.finalize().into()))
        })
    }

    /// Whether two snapshots share the same root node (cheap identity test).
    pub fn ptr_eq(&self, other: &Snapshot) -> bool {
        Arc::ptr_eq(&self.root, &other.root)
    }
}

/// Hard-link groups as sorted path lists, ordered by their first path.
fn link_groups(root: &Arc<Node>) -> Vec<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<Vec<u8>>> = link_paths(root).into_values().collect();
    out.sort();
    out
}

/// Every name of each hard-linked node (keyed by node address), sorted. Visits only
/// subtrees that contain links.
pub(crate) fn link_paths(root: &Arc<Node>) -> HashMap<usize, Vec<Vec<u8>>> {
    let mut groups: HashMap<usize, Vec<Vec<u8>>> = HashMap::new();
    let mut stack = vec![(Vec::new(), root.clone())];
    while let Some((path, node)) = stack.pop() {
        let Some(dir) = node.as_dir() else { continue };
        if !dir.has_links {
            continue;
        }
        for (name, child) in &dir.entries {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(name);
            if child.is_linked() {
                groups
                    .entry(Arc::as_ptr(child) as usize)
                    .or_default()
                    .push(p);
            } else if child.dir_has_links() {
                stack.push((p, child.clone()));
            }
        }
    }
    for g in groups.values_mut() {
        g.sort();
    }
    groups
}
