//! A [`Snapshot`] as bytes, and back: every node with its metadata, small contents
//! inline, large ones by their store digest. This is what lets a later process open an
//! image's filesystem without unpacking its layers again (the engine keeps one per base
//! image, MAC'd, in its cache).
//!
//! The format is private to this version of kiln (a magic string names it). Decoding
//! never trusts the bytes for a size: every count and length is checked against what is
//! left of the input, names as a tree checks them, depth against [`MAX_DEPTH`], and a
//! blob must be in the store with its recorded size.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::node::{Attrs, Content, Kind, Node, Snapshot, Timestamp, Xattrs};
use crate::store::{Digest, Store};
use crate::tree::{MAX_DEPTH, NAME_MAX};
use crate::{FileType, FsError, INLINE_MAX, Result};

const MAGIC: &[u8] = b"kiln-snapshot-record-v1\n";

const DIR: u8 = 0;
const INLINE: u8 = 1;
const BLOB: u8 = 2;
const SYMLINK: u8 = 3;
const SPECIAL: u8 = 4;
/// Another name of a hard-linked node already written (by its number, in order of first
/// appearance).
const LINK: u8 = 5;

impl Snapshot {
    /// The snapshot as bytes for [`Snapshot::decode`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let mut links = HashMap::new();
        put_node(&mut out, &self.root, &mut links);
        out
    }

    /// Flushes every blob this snapshot names to disk, so that an encoding kept past
    /// this process never names a blob a system crash left with the right length but
    /// other bytes.
    pub fn sync_blobs(&self) -> Result<()> {
        let mut blobs = std::collections::BTreeSet::new();
        let mut todo = vec![&self.root];
        while let Some(node) = todo.pop() {
            match &node.kind {
                Kind::Dir(d) => todo.extend(d.entries.values()),
                Kind::File(Content::Blob { digest, .. }) => {
                    blobs.insert(*digest);
                }
                _ => {}
            }
        }
        self.store.sync_blobs(&blobs)
    }

    /// The snapshot `bytes` hold, over `store`, which must have every blob it names.
    pub fn decode(bytes: &[u8], store: &Arc<Store>) -> Result<Snapshot> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| bad("not a snapshot record of this kiln version"))?;
        let mut input = Input {
            rest,
            store,
            links: Vec::new(),
        };
        let root = input.node(0)?;
        if !root.is_dir() || !input.rest.is_empty() {
            return Err(bad("the root is not a directory, or bytes follow it"));
        }
        Ok(Snapshot::from_root(root, store.clone()))
    }
}

fn bad(reason: &str) -> FsError {
    FsError::Record {
        reason: reason.to_owned(),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_node(out: &mut Vec<u8>, node: &Arc<Node>, links: &mut HashMap<*const Node, u64>) {
    if node.nlink > 1 && !node.is_dir() {
        let n = links.len() as u64;
        match links.entry(Arc::as_ptr(node)) {
            std::collections::hash_map::Entry::Occupied(seen) => {
                out.push(LINK);
                out.extend_from_slice(&seen.get().to_le_bytes());
                return;
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(n);
            }
        }
    }
    out.push(match &node.kind {
        Kind::Dir(_) => DIR,
        Kind::File(Content::Inline(_)) => INLINE,
        Kind::File(Content::Blob { .. }) => BLOB,
        Kind::Symlink(_) => SYMLINK,
        Kind::Special(..) => SPECIAL,
    });
    put_attrs(out, &node.attrs);
    out.extend_from_slice(&node.nlink.to_le_bytes());
    match &node.kind {
        Kind::Dir(_) => {}
        Kind::File(Content::Inline(b)) => put_bytes(out, b),
        Kind::File(Content::Blob { digest, size }) => {
            out.extend_from_slice(digest.as_bytes());
            out.extend_from_slice(&size.to_le_bytes());
        }
        Kind::Symlink(target) => put_bytes(out, target),
        Kind::Special(t, rdev) => {
            out.push(special_code(*t));
            out.extend_from_slice(&rdev.to_le_bytes());
        }
    }
    if let Kind::Dir(d) = &node.kind {
        out.extend_from_slice(&(d.entries.len() as u64).to_le_bytes());
        for (name, child) in &d.entries {
            put_bytes(out, name);
            put_node(out, child, links);
        }
    }
}

fn put_attrs(out: &mut Vec<u8>, a: &Attrs) {
    for v in [a.mode, a.uid, a.gid] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&a.mtime.sec.to_le_bytes());
    out.extend_from_slice(&a.mtime.nsec.to_le_bytes());
    out.extend_from_slice(&(a.xattrs.len() as u64).to_le_bytes());
    for (k, v) in &a.xattrs {
        put_bytes(out, k);
        put_bytes(out, v);
    }
}

fn special_code(t: FileType) -> u8 {
    match t {
        FileType::CharDevice => 0,
        FileType::BlockDevice => 1,
        FileType::Fifo => 2,
        // Specials are only these three; the others never reach here.
        FileType::Directory | FileType::Regular | FileType::Symlink => 3,
    }
}

struct Input<'a> {
    rest: &'a [u8],
    store: &'a Arc<Store>,
    /// Hard-linked nodes, by number of first appearance.
    links: Vec<Arc<Node>>,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| bad("a length past the end"))?;
        if n > self.rest.len() {
            return Err(bad("a length past the end"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of items that take at least one byte each: never more than remain.
    fn count(&mut self) -> Result<u64> {
        let n = self.u64()?;
        if n > self.rest.len() as u64 {
            return Err(bad("a count past the end"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u64()?;
        self.take(n)
    }

    fn attrs(&mut self) -> Result<Attrs> {
        let (mode, uid, gid) = (self.u32()?, self.u32()?, self.u32()?);
        let sec = i64::from_le_bytes(self.array()?);
        let nsec = self.u32()?;
        let mut xattrs = Xattrs::new();
        for _ in 0..self.count()? {
            let k = self.bytes()?.to_vec();
            let v = self.bytes()?.to_vec();
            xattrs.insert(k, v);
        }
        let mut a = Attrs::new(mode, uid, gid, Timestamp { sec, nsec });
        a.xattrs = xattrs;
        Ok(a)
    }

    fn node(&mut self, depth: u32) -> Result<Arc<Node>> {
        if depth > MAX_DEPTH {
            return Err(bad("deeper than a tree may be"));
        }
        let tag = self.u8()?;
        if tag == LINK {
            let n = usize::try_from(self.u64()?).map_err(|_| bad("unknown hard link"))?;
            return self
                .links
                .get(n)
                .cloned()
                .ok_or_else(|| bad("unknown hard link"));
        }
        let attrs = self.attrs()?;
        let nlink = self.u32()?;
        let kind = match tag {
            DIR => return self.dir(attrs, depth),
            INLINE => {
                let b = self.bytes()?;
                if b.len() > INLINE_MAX {
                    return Err(bad("an inline content over the inline size"));
                }
                Kind::File(Content::Inline(Arc::from(b)))
            }
            BLOB => self.blob()?,
            SYMLINK => Kind::Symlink(self.bytes()?.to_vec()),
            SPECIAL => {
                let t = match self.u8()? {
                    0 => FileType::CharDevice,
                    1 => FileType::BlockDevice,
                    2 => FileType::Fifo,
                    _ => return Err(bad("unknown special file type")),
                };
                Kind::Special(t, self.u64()?)
            }
            _ => return Err(bad("unknown node type")),
        };
        let node = Node::new(attrs, nlink, kind);
        if nlink > 1 {
            self.links.push(node.clone());
        }
        Ok(node)
    }

    fn blob(&mut self) -> Result<Kind> {
        let digest = Digest::from_bytes(self.array()?);
        let size = self.u64()?;
        let stored = self
            .store
            .open_blob(&digest)
            .and_then(|f| f.metadata().map_err(FsError::from))
            .is_ok_and(|m| m.len() == size);
        if !stored {
            return Err(bad("a blob is missing from the store"));
        }
        Ok(Kind::File(Content::Blob { digest, size }))
    }

    fn dir(&mut self, attrs: Attrs, depth: u32) -> Result<Arc<Node>> {
        let mut entries = BTreeMap::new();
        for _ in 0..self.count()? {
            let name = self.bytes()?;
            let valid = !name.is_empty()
                && name.len() <= NAME_MAX
                && name != b"."
                && name != b".."
                && !name.iter().any(|&b| b == b'/' || b == 0);
            if !valid {
                return Err(bad("an invalid name"));
            }
            let child = self.node(depth + 1)?;
            if entries.insert(name.to_vec(), child).is_some() {
                return Err(bad("a name twice in one directory"));
            }
        }
        Ok(Node::dir(attrs, entries))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::{Follow, Tree};

    /// A tree with every kind of node: dirs, inline and stored files, a hard link, a
    /// symlink, a fifo, an xattr, odd modes and owners.
    fn sample(store: &Arc<Store>) -> Snapshot {
        let mut t = Tree::new(store);
        t.set_clock(Timestamp {
            sec: 1_700_000_000,
            nsec: 5,
        });
        let root = t.root();
        let etc = t.mkdir(root, b"etc", 0o755, 0, 0).unwrap();
        let small = t.create_file(etc, b"passwd", 0o644, 0, 0).unwrap();
        t.write_at(small, 0, b"root:x:0:0::/root:/bin/sh\n")
            .unwrap();
        t.set_xattr(small, b"user.k", b"v").unwrap();
        let big = t.create_file(root, b"big", 0o4755, 7, 8).unwrap();
        t.write_at(big, 0, &vec![42u8; INLINE_MAX + 1]).unwrap();
        t.link(big, etc, b"big-again").unwrap();
        t.symlink(root, b"link", b"etc/passwd", 0, 0).unwrap();
        t.mknod(root, b"fifo", FileType::Fifo, 0o600, 0, 0, 0)
            .unwrap();
        t.snapshot().unwrap()
    }

    #[test]
    fn a_decoded_snapshot_is_the_same_tree() {
        let store = Store::temp().unwrap();
        let snap = sample(&store);
        let back = Snapshot::decode(&snap.encode(), &store).unwrap();
        assert_eq!(back.id(), snap.id());
        let mut t = Tree::from_snapshot(&back);
        let root = t.root();
        let big = t.resolve(root, b"etc/big-again", Follow::No).unwrap();
        assert_eq!(t.metadata(big).unwrap().nlink, 2);
        let mut content = Vec::new();
        t.open_read(big).unwrap().read_to_end(&mut content).unwrap();
        assert_eq!(content, vec![42u8; INLINE_MAX + 1]);
        let via_link = t.resolve(root, b"link", Follow::Yes).unwrap();
        assert_eq!(t.get_xattr(via_link, b"user.k").unwrap(), b"v");
    }

    #[test]
    fn damaged_records_are_errors_never_panics() {
        let store = Store::temp().unwrap();
        let bytes = sample(&store).encode();
        for cut in 0..bytes.len() {
            assert!(
                Snapshot::decode(&bytes[..cut], &store).is_err(),
                "cut at {cut}"
            );
        }
        // Every byte flipped in turn: an error or some tree, but never a panic.
        for i in MAGIC.len()..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = Snapshot::decode(&b, &store);
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Snapshot::decode(&trailing, &store).is_err());
    }

    #[test]
    fn a_record_naming_a_blob_the_store_lacks_is_refused() {
        let (a, b) = (Store::temp().unwrap(), Store::temp().unwrap());
        let bytes = sample(&a).encode();
        assert!(matches!(
            Snapshot::decode(&bytes, &b),
            Err(FsError::Record { .. })
        ));
    }

    #[test]
    fn counts_and_depth_are_bounded_by_the_input() {
        let store = Store::temp().unwrap();
        // A directory claiming 2^64-1 entries in a few bytes.
        let mut huge = MAGIC.to_vec();
        huge.push(DIR);
        put_attrs(&mut huge, &Attrs::new(0o755, 0, 0, Timestamp::EPOCH));
        huge.extend_from_slice(&1u32.to_le_bytes());
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(Snapshot::decode(&huge, &store).is_err());
        // Directories nested `levels` deep, well formed otherwise.
        let nested = |levels: u32| {
            let mut b = MAGIC.to_vec();
            for level in 0..levels {
                b.push(DIR);
                put_attrs(&mut b, &Attrs::new(0o755, 0, 0, Timestamp::EPOCH));
                b.extend_from_slice(&1u32.to_le_bytes());
                let last = level + 1 == levels;
                b.extend_from_slice(&u64::from(!last).to_le_bytes());
                if !last {
                    put_bytes(&mut b, b"d");
                }
            }
            b
        };
        assert!(Snapshot::decode(&nested(10), &store).is_ok());
        assert!(matches!(
            Snapshot::decode(&nested(MAX_DEPTH + 2), &store),
            Err(FsError::Record { .. })
        ));
    }
}
