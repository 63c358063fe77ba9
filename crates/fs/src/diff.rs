//! Differences between snapshots, and walking a snapshot in order.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::error::{FsError, Result};
use crate::node::{FileType, Kind, Node, Snapshot, Timestamp};
use crate::tree::ContentReader;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// The path did not exist before.
    Added,
    /// Same kind of object, different metadata, contents or link target.
    Modified,
    /// The path no longer exists (reported once, not for its descendants).
    Deleted,
    /// A different kind of object now, or a directory with new entries and none of
    /// its old ones (written as an opaque directory). New descendants follow as
    /// `Added`.
    Replaced,
}

/// One change between two snapshots. `path` is absolute (`/etc/passwd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: Vec<u8>,
    pub kind: ChangeKind,
}

/// The changes that turn `a` into `b`, parents before children and siblings in
/// byte order of their names. Subtrees shared by both snapshots are skipped
/// without being visited, so the cost follows the number of changed nodes.
pub fn diff(a: &Snapshot, b: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    let _ = visit_diff(&a.root, &b.root, &mut |path, kind, _| {
        out.push(Change {
            path: path.to_vec(),
            kind,
        });
        Ok(())
    });
    out
}

/// Callback for [`visit_diff`]: path, kind, and the new node (absent for deletions).
pub(crate) type Visitor<'a> = dyn FnMut(&[u8], ChangeKind, Option<&Arc<Node>>) -> Result<()> + 'a;

pub(crate) fn visit_diff(a: &Arc<Node>, b: &Arc<Node>, f: &mut Visitor<'_>) -> Result<()> {
    let mut path = Vec::new();
    if Arc::ptr_eq(a, b) {
        return Ok(());
    }
    if !a.same_self(b) {
        f(b"/", ChangeKind::Modified, Some(b))?;
    }
    diff_dirs(&mut path, a, b, f)
}

fn diff_dirs(path: &mut Vec<u8>, a: &Node, b: &Node, f: &mut Visitor<'_>) -> Result<()> {
    let (Some(da), Some(db)) = (a.as_dir(), b.as_dir()) else {
        return Ok(());
    };
    let mut ia = da.entries.iter().peekable();
    let mut ib = db.entries.iter().peekable();
    loop {
        let step = match (ia.peek(), ib.peek()) {
            (None, None) => return Ok(()),
            (Some((na, _)), Some((nb, _))) => na.cmp(nb),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        let len = path.len();
        match step {
            std::cmp::Ordering::Less => {
                if let Some((name, _)) = ia.next() {
                    push_name(path, name);
                    f(path, ChangeKind::Deleted, None)?;
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((name, node)) = ib.next() {
                    push_name(path, name);
                    added(path, node, f)?;
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some((name, na)), Some((_, nb))) = (ia.next(), ib.next())
                    && !Arc::ptr_eq(na, nb)
                {
                    push_name(path, name);
                    changed(path, na, nb, f)?;
                }
            }
        }
        path.truncate(len);
    }
}

fn push_name(path: &mut Vec<u8>, name: &[u8]) {
    path.push(b'/');
    path.extend_from_slice(name);
}

fn changed(path: &mut Vec<u8>, a: &Arc<Node>, b: &Arc<Node>, f: &mut Visitor<'_>) -> Result<()> {
    match (a.as_dir(), b.as_dir()) {
        (Some(da), Some(db)) => {
            // Wholesale replacement: new contents and none of the old names. (A
            // directory merely emptied is reported as deletions.)
            let wiped = !da.entries.is_empty()
                && !db.entries.is_empty()
                && da.entries.keys().all(|k| !db.entries.contains_key(k));
            if wiped {
                f(path, ChangeKind::Replaced, Some(b))?;
                return added_children(path, b, f);
            }
            if !a.same_self(b) {
                f(path, ChangeKind::Modified, Some(b))?;
            }
            diff_dirs(path, a, b, f)
        }
        _ if a.file_type() != b.file_type() => {
            f(path, ChangeKind::Replaced, Some(b))?;
            added_children(path, b, f)
        }
        // Two different nodes with several names may be equal yet linked to
        // different partners; rewriting them keeps the link structure exact.
        _ if !a.same_self(b) || b.is_linked() => f(path, ChangeKind::Modified, Some(b)),
        _ => Ok(()),
    }
}

fn added(path: &mut Vec<u8>, node: &Arc<Node>, f: &mut Visitor<'_>) -> Result<()> {
    f(path, ChangeKind::Added, Some(node))?;
    added_children(path, node, f)
}

/// Reports every descendant of `root` as added.
pub(crate) fn visit_descendants(root: &Arc<Node>, f: &mut Visitor<'_>) -> Result<()> {
    added_children(&mut Vec::new(), root, f)
}

fn added_children(path: &mut Vec<u8>, node: &Arc<Node>, f: &mut Visitor<'_>) -> Result<()> {
    let Some(dir) = node.as_dir() else {
        return Ok(());
    };
    for (name, child) in &dir.entries {
        let len = path.len();
        push_name(path, name);
        added(path, child, f)?;
        path.truncate(len);
    }
    Ok(())
}

/// One object met by [`Snapshot::walk`].
#[derive(Clone)]
pub struct WalkEntry {
    /// Absolute path; the root is `/`.
    pub path: Vec<u8>,
    pub file_type: FileType,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    pub size: u64,
    pub nlink: u32,
    pub rdev: u64,
    pub link_target: Option<Vec<u8>>,
    node: Arc<Node>,
}

impl WalkEntry {
    fn new(path: Vec<u8>, node: &Arc<Node>) -> WalkEntry {
        let (size, rdev, link_target) = match &node.kind {
            Kind::File(c) => (c.len(), 0, None),
            Kind::Symlink(t) => (t.len() as u64, 0, Some(t.clone())),
            Kind::Special(_, r) => (0, *r, None),
            Kind::Dir(_) => (0, 0, None),
        };
        WalkEntry {
            path,
            file_type: node.file_type(),
            mode: node.attrs.mode,
            uid: node.attrs.uid,
            gid: node.attrs.gid,
            mtime: node.attrs.mtime,
            size,
            nlink: node.nlink,
            rdev,
            link_target,
            node: node.clone(),
        }
    }

    pub fn xattrs(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.node.attrs.xattrs
    }

    /// True for every name of the same hard-linked object.
    pub fn same_object(&self, other: &WalkEntry) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

/// A directory being listed by [`Walk`]: its path, node, and the last name returned.
type Listing = (Vec<u8>, Arc<Node>, Option<Vec<u8>>);

/// Depth-first walk of a snapshot, parents before children, siblings by name.
pub struct Walk {
    stack: Vec<Listing>,
    root: Option<Arc<Node>>,
}

impl Iterator for Walk {
    type Item = WalkEntry;

    fn next(&mut self) -> Option<WalkEntry> {
        if let Some(root) = self.root.take() {
            self.stack.push((Vec::new(), root.clone(), None));
            return Some(WalkEntry::new(b"/".to_vec(), &root));
        }
        loop {
            let (prefix, dir, last) = self.stack.last_mut()?;
            let entries = &dir.as_dir()?.entries;
            let next = match last {
                None => entries.iter().next(),
                Some(l) => entries
                    .range::<[u8], _>((Bound::Excluded(l.as_slice()), Bound::Unbounded))
                    .next(),
            };
            let Some((name, child)) = next else {
                self.stack.pop();
                continue;
            };
            *last = Some(name.clone());
            let mut path = prefix.clone();
            push_name(&mut path, name);
            let child = child.clone();
            if child.is_dir() {
                self.stack.push((path.clone(), child.clone(), None));
            }
            return Some(WalkEntry::new(path, &child));
        }
    }
}

impl Snapshot {
    /// Every object in the snapshot, the root first, in [`diff`] order.
    pub fn walk(&self) -> Walk {
        Walk {
            stack: Vec::new(),
            root: Some(self.root.clone()),
        }
    }

    /// Streams the contents of a regular file met by [`Snapshot::walk`].
    pub fn open_file(&self, entry: &WalkEntry) -> Result<ContentReader> {
        match &entry.node.kind {
            Kind::File(c) => ContentReader::from_content(c, &self.store),
            _ => Err(FsError::Invalid),
        }
    }
}
