//! Deterministic layer tars: a diff (or a whole snapshot) as a tar stream.
//!
//! The header is built by hand on top of `tar::Header` (ustar) because layers need
//! byte-level control the builder helpers do not give: raw byte names (not `Path`,
//! which differs on Windows), PAX records instead of GNU long names, no
//! uname/gname, and nothing taken from the host.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use crate::diff::{self, ChangeKind};
use crate::error::{FsError, Result};
use crate::node::{FileType, Kind, Node, Snapshot, Timestamp};
use crate::store::Store;
use crate::tree::ContentReader;

/// Largest value of an 11-digit octal header field.
const OCTAL11_MAX: u64 = 0o77777777777;
/// Largest value of a 7-digit octal header field.
const OCTAL7_MAX: u64 = 0o7777777;

pub(crate) const WHITEOUT: &[u8] = b".wh.";
pub(crate) const OPAQUE: &[u8] = b".wh..wh..opq";

/// Writes the changes from `parent` to `child` as an OCI layer tar: sorted entries,
/// `.wh.` whiteouts for deletions, `.wh..wh..opq` for directories replaced
/// wholesale, hard links as link entries, mtimes clamped to `epoch` seconds.
/// Streams file contents from the store; returns the sink.
pub fn write_layer<W: Write>(parent: &Snapshot, child: &Snapshot, epoch: i64, out: W) -> Result<W> {
    let mut w = LayerWriter::new(out, epoch, parent, child);
    diff::visit_diff(&parent.root, &child.root, &mut |path, kind, node| {
        w.change(path, kind, node)
    })?;
    w.finish()
}

/// Writes a whole snapshot (root included as `./`) as a layer tar.
pub fn write_snapshot<W: Write>(snapshot: &Snapshot, epoch: i64, out: W) -> Result<W> {
    let empty = Snapshot::empty(&snapshot.store);
    let mut w = LayerWriter::new(out, epoch, &empty, snapshot);
    w.entry(b"/", &snapshot.root)?;
    diff::visit_descendants(&snapshot.root, &mut |path, kind, node| {
        w.change(path, kind, node)
    })?;
    w.finish()
}

struct LayerWriter<'a, W: Write> {
    out: tar::Builder<W>,
    epoch: i64,
    store: Arc<Store>,
    parent: &'a Snapshot,
    child: &'a Snapshot,
    /// First name written in this layer for each hard-linked node.
    written: HashMap<usize, Vec<u8>>,
    /// All names of each hard-linked node in `child`, computed on first need.
    groups: Option<HashMap<usize, Vec<Vec<u8>>>>,
}

impl<'a, W: Write> LayerWriter<'a, W> {
    fn new(out: W, epoch: i64, parent: &'a Snapshot, child: &'a Snapshot) -> Self {
        LayerWriter {
            out: tar::Builder::new(out),
            epoch,
            store: child.store.clone(),
            parent,
            child,
            written: HashMap::new(),
            groups: None,
        }
    }

    fn finish(self) -> Result<W> {
        Ok(self.out.into_inner()?)
    }

    fn change(&mut self, path: &[u8], kind: ChangeKind, node: Option<&Arc<Node>>) -> Result<()> {
        match (kind, node) {
            (ChangeKind::Deleted, _) | (_, None) => self.whiteout(path),
            (ChangeKind::Replaced, Some(n)) if n.is_dir() => {
                self.entry(path, n)?;
                let mut opq = path.to_vec();
                opq.push(b'/');
                opq.extend_from_slice(OPAQUE);
                self.marker(&opq)
            }
            (_, Some(n)) => self.entry(path, n),
        }
    }

    fn whiteout(&mut self, path: &[u8]) -> Result<()> {
        let split = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let mut p = path[..=split].to_vec();
        p.extend_from_slice(WHITEOUT);
        p.extend_from_slice(&path[split + 1..]);
        self.marker(&p)
    }

    fn marker(&mut self, path: &[u8]) -> Result<()> {
        let h = Head {
            name: rel_name(path, false),
            typeflag: b'0',
            mode: 0o644,
            ..Head::default()
        };
        self.emit(h, None)
    }

    fn entry(&mut self, path: &[u8], node: &Arc<Node>) -> Result<()> {
        let a = &node.attrs;
        let mut h = Head {
            name: rel_name(path, node.is_dir()),
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            mtime: a.mtime.min(Timestamp::from_secs(self.epoch)),
            xattrs: a
                .xattrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Head::default()
        };
        if !node.is_dir()
            && let Some(target) = self.link_target(path, node)?
        {
            h.typeflag = b'1';
            h.link = target;
            return self.emit(h, None);
        }
        let mut data = None;
        match &node.kind {
            Kind::Dir(_) => h.typeflag = b'5',
            Kind::Symlink(t) => {
                h.typeflag = b'2';
                h.link = t.clone();
            }
            Kind::Special(t, rdev) => {
                h.typeflag = match t {
                    FileType::CharDevice => b'3',
                    FileType::BlockDevice => b'4',
                    _ => b'6',
                };
                h.rdev = *rdev;
            }
            Kind::File(c) => {
                h.typeflag = b'0';
                h.size = c.len();
                data = Some(ContentReader::from_content(c, &self.store)?);
            }
        }
        self.emit(h, data)
    }

    /// For a node with several names: the name to hard-link to, if one was already
    /// written in this layer or is left untouched in the layers below.
    fn link_target(&mut self, path: &[u8], node: &Arc<Node>) -> Result<Option<Vec<u8>>> {
        if !node.is_linked() {
            return Ok(None);
        }
        let key = Arc::as_ptr(node) as usize;
        if let Some(first) = self.written.get(&key) {
            return Ok(Some(first.clone()));
        }
        let child = self.child;
        let groups = self
            .groups
            .get_or_insert_with(|| crate::node::link_paths(&child.root));
        let lower = groups.get(&key).and_then(|names| {
            names
                .iter()
                .find(|q| {
                    q.as_slice() != path
                        && lookup(&self.parent.root, q).is_some_and(|n| Arc::ptr_eq(&n, node))
                })
                .cloned()
        });
        match lower {
            Some(q) => Ok(Some(rel_name(&q, false))),
            None => {
                self.written.insert(key, rel_name(path, false));
                Ok(None)
            }
        }
    }

    fn emit(&mut self, h: Head, data: Option<ContentReader>) -> Result<()> {
        let (header, pax) = h.encode()?;
        if !pax.is_empty() {
            let mut ph = tar::Header::new_ustar();
            set_bytes(&mut ph, b"PaxHeader", false);
            ph.set_mode(0o644);
            ph.set_mtime(0);
            ph.set_uid(0);
            ph.set_gid(0);
            ph.set_size(pax.len() as u64);
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_cksum();
            self.out.append(&ph, pax.as_slice())?;
        }
        match data {
            Some(r) => self.out.append(&header, r)?,
            None => self.out.append(&header, io::empty())?,
        }
        Ok(())
    }
}

/// Finds a node by absolute path without following symlinks.
fn lookup(root: &Arc<Node>, path: &[u8]) -> Option<Arc<Node>> {
    let mut cur = root.clone();
    for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let next = cur.as_dir()?.entries.get(comp)?.clone();
        cur = next;
    }
    Some(cur)
}

/// Layer-relative name: `/a/b` -> `a/b` (`a/b/` for directories), `/` -> `./`.
fn rel_name(path: &[u8], dir: bool) -> Vec<u8> {
    let trimmed = path.strip_prefix(b"/").unwrap_or(path);
    if trimmed.is_empty() {
        return b"./".to_vec();
    }
    let mut n = trimmed.to_vec();
    if dir {
        n.push(b'/');
    }
    n
}

#[derive(Default)]
struct Head {
    name: Vec<u8>,
    typeflag: u8,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: Timestamp,
    link: Vec<u8>,
    rdev: u64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Head {
    /// The ustar header and the PAX records (possibly empty) that must precede it.
    fn encode(&self) -> Result<(tar::Header, Vec<u8>)> {
        let mut pax = Vec::new();
        let mut h = tar::Header::new_ustar();
        if self.name.len() > 100 {
            pax_record(&mut pax, b"path", &self.name);
        }
        set_bytes(&mut h, &self.name, false);
        if self.link.len() > 100 {
            pax_record(&mut pax, b"linkpath", &self.link);
        }
        set_bytes(&mut h, &self.link, true);
        h.set_mode(self.mode & 0o7777);
        for (key, value, set) in [
            (
                &b"uid"[..],
                u64::from(self.uid),
                tar::Header::set_uid as fn(&mut tar::Header, u64),
            ),
            (b"gid", u64::from(self.gid), tar::Header::set_gid),
        ] {
            if value > OCTAL7_MAX {
                pax_record(&mut pax, key, value.to_string().as_bytes());
                set(&mut h, 0);
            } else {
                set(&mut h, value);
            }
        }
        if self.size > OCTAL11_MAX {
            pax_record(&mut pax, b"size", self.size.to_string().as_bytes());
            h.set_size(0);
        } else {
            h.set_size(self.size);
        }
        let t = self.mtime;
        if t.sec < 0 || t.sec as u64 > OCTAL11_MAX || t.nsec != 0 {
            pax_record(&mut pax, b"mtime", format_time(t).as_bytes());
        }
        h.set_mtime(u64::try_from(t.sec).unwrap_or(0).min(OCTAL11_MAX));
        h.set_entry_type(tar::EntryType::new(self.typeflag));
        let (major, minor) = dev_split(self.rdev);
        if u64::from(major) > OCTAL7_MAX || u64::from(minor) > OCTAL7_MAX {
            return Err(FsError::layer(
                &self.name,
                "device number too large for a tar header",
            ));
        }
        if self.typeflag == b'3' || self.typeflag == b'4' {
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
        }
        for (k, v) in &self.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax_record(&mut pax, &key, v);
        }
        h.set_cksum();
        Ok((h, pax))
    }
}

/// Copies raw bytes into the ustar name or linkname field, truncating: a longer
/// value is carried by a PAX record.
fn set_bytes(h: &mut tar::Header, value: &[u8], link: bool) {
    if let Some(u) = h.as_ustar_mut() {
        let field: &mut [u8] = if link { &mut u.linkname } else { &mut u.name };
        field.fill(0);
        let n = value.len().min(field.len());
        field[..n].copy_from_slice(&value[..n]);
    }
}

/// One PAX record: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn format_time(t: Timestamp) -> String {
    if t.nsec == 0 {
        return t.sec.to_string();
    }
    // Negative times with a fraction: -1.5s is sec=-2, nsec=5e8.
    let (sec, nsec) = if t.sec < 0 {
        (t.sec + 1, 1_000_000_000 - t.nsec)
    } else {
        (t.sec, t.nsec)
    };
    let sign = if t.sec < 0 && sec == 0 { "-" } else { "" };
    let frac = format!("{nsec:09}");
    format!("{sign}{sec}.{}", frac.trim_end_matches('0'))
}

/// glibc's `major()`/`minor()` encoding of a device number.
pub(crate) fn dev_split(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

pub(crate) fn dev_join(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for n in [
            0usize, 1, 5, 6, 7, 90, 91, 92, 93, 994, 995, 996, 9993, 9994, 9995,
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, b"k", &vec![b'v'; n]);
            let text = String::from_utf8(out.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "value length {n}");
        }
    }

    #[test]
    fn device_numbers_round_trip() {
        for (major, minor) in [
            (0u64, 0u64),
            (1, 3),
            (8, 1),
            (259, 0),
            (4095, 255),
            (4096, 1 << 19),
        ] {
            let (a, b) = dev_split(dev_join(major, minor));
            assert_eq!((u64::from(a), u64::from(b)), (major, minor));
        }
    }

    #[test]
    fn pax_times_keep_nanoseconds_and_signs() {
        assert_eq!(format_time(Timestamp { sec: 5, nsec: 0 }), "5");
        assert_eq!(format_time(Timestamp { sec: 5, nsec: 250 }), "5.00000025");
        assert_eq!(
            format_time(Timestamp {
                sec: -2,
                nsec: 750_000_000
            }),
            "-1.25"
        );
        assert_eq!(
            format_time(Timestamp {
                sec: -1,
                nsec: 500_000_000
            }),
            "-0.5"
        );
    }
}
