//! Open file descriptions: what an fd (or a shell redirection) refers to once a path
//! has been resolved. Shared by `dup`-style aliases, so the offset is shared too.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use kiln_fs::{FileType, Ino, Timestamp};
use parking_lot::Mutex;

use super::mount::{Device, Secret, is_read_only};
use super::{SharedTree, Stat};
use crate::error::Errno;

pub(crate) enum FileNode {
    Tree {
        tree: SharedTree,
        ino: Ino,
        dev: u64,
    },
    Secret(Arc<Secret>, u64),
    Host(Mutex<cap_std::fs::File>, Stat),
    Device(Device),
}

struct OpenFile {
    node: FileNode,
    readable: bool,
    writable: bool,
    append: Mutex<bool>,
    pos: Mutex<u64>,
}

/// An open file of the step filesystem (a regular file, a secret, a bind-mounted host
/// file or a device). Cloning shares the offset, like `dup`.
#[derive(Clone)]
pub struct VfsFile {
    inner: Arc<OpenFile>,
}

impl fmt::Debug for VfsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VfsFile(pos {})", *self.inner.pos.lock())
    }
}

fn fill_random(buf: &mut [u8]) -> Result<(), Errno> {
    getrandom::fill(buf).map_err(|_| Errno::IO)
}

impl VfsFile {
    pub(crate) fn new(node: FileNode, readable: bool, writable: bool, append: bool) -> VfsFile {
        VfsFile {
            inner: Arc::new(OpenFile {
                node,
                readable,
                writable,
                append: Mutex::new(append),
                pos: Mutex::new(0),
            }),
        }
    }

    pub(crate) fn is_readable(&self) -> bool {
        self.inner.readable
    }
    pub(crate) fn is_writable(&self) -> bool {
        self.inner.writable
    }
    pub(crate) fn is_append(&self) -> bool {
        *self.inner.append.lock()
    }
    pub(crate) fn set_append(&self, append: bool) {
        *self.inner.append.lock() = append;
    }
    pub(crate) fn is_device(&self) -> bool {
        matches!(self.inner.node, FileNode::Device(_))
    }

    /// Reads at the current offset and advances it.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut pos = self.inner.pos.lock();
        let n = self.pread(buf, *pos)?;
        *pos += n as u64;
        Ok(n)
    }

    /// Writes at the current offset (or the end, in append mode) and advances it.
    pub fn write(&self, data: &[u8]) -> Result<usize, Errno> {
        let mut pos = self.inner.pos.lock();
        if *self.inner.append.lock() {
            *pos = self.stat()?.size;
        }
        let n = self.pwrite(data, *pos)?;
        *pos += n as u64;
        Ok(n)
    }

    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        if !self.inner.readable {
            return Err(Errno::BADF);
        }
        match &self.inner.node {
            FileNode::Tree { tree, ino, .. } => Ok(tree.lock().read_at(*ino, offset, buf)?),
            FileNode::Secret(s, _) => {
                let data: &[u8] = &s.data;
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            FileNode::Host(f, _) => {
                let mut f = f.lock();
                f.seek(SeekFrom::Start(offset)).map_err(Errno::from)?;
                f.read(buf).map_err(Errno::from)
            }
            FileNode::Device(Device::Null) => Ok(0),
            FileNode::Device(Device::Zero) => {
                buf.fill(0);
                Ok(buf.len())
            }
            FileNode::Device(Device::Random) => {
                fill_random(buf)?;
                Ok(buf.len())
            }
            FileNode::Device(Device::Fd(_)) => Err(Errno::BADF),
        }
    }

    pub fn pwrite(&self, data: &[u8], offset: u64) -> Result<usize, Errno> {
        if !self.inner.writable {
            return Err(Errno::BADF);
        }
        match &self.inner.node {
            FileNode::Tree { tree, ino, .. } => Ok(tree.lock().write_at(*ino, offset, data)?),
            FileNode::Secret(..) => Err(Errno::ACCES),
            FileNode::Host(..) => Err(Errno::ROFS),
            FileNode::Device(_) => Ok(data.len()),
        }
    }

    /// `lseek`: returns the new offset.
    pub fn seek(&self, pos: SeekFrom) -> Result<u64, Errno> {
        if self.is_device() {
            return Ok(0);
        }
        let mut cur = self.inner.pos.lock();
        let new = match pos {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::Current(d) => cur.checked_add_signed(d),
            SeekFrom::End(d) => self.stat()?.size.checked_add_signed(d),
        };
        let new = new
            .filter(|n| i64::try_from(*n).is_ok())
            .ok_or(Errno::INVAL)?;
        *cur = new;
        Ok(new)
    }

    pub fn position(&self) -> u64 {
        *self.inner.pos.lock()
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        match &self.inner.node {
            FileNode::Tree { tree, ino, dev } => {
                Ok(Stat::from_meta(tree.lock().metadata(*ino)?, *dev))
            }
            FileNode::Secret(s, dev) => Ok(Stat::secret(s, *dev)),
            FileNode::Host(_, st) => Ok(st.clone()),
            FileNode::Device(d) => Ok(Stat::device(*d)),
        }
    }

    pub fn set_len(&self, len: u64) -> Result<(), Errno> {
        if !self.inner.writable {
            return Err(Errno::BADF);
        }
        match &self.inner.node {
            FileNode::Tree { tree, ino, .. } => Ok(tree.lock().set_len(*ino, len)?),
            FileNode::Secret(..) => Err(Errno::ACCES),
            FileNode::Host(..) => Err(Errno::ROFS),
            FileNode::Device(_) => Ok(()),
        }
    }

    pub fn set_times(
        &self,
        atime: Option<Timestamp>,
        mtime: Option<Timestamp>,
    ) -> Result<(), Errno> {
        match &self.inner.node {
            FileNode::Tree { dev, .. } if is_read_only(*dev) => Err(Errno::ROFS),
            FileNode::Tree { tree, ino, .. } => Ok(tree.lock().set_times(*ino, atime, mtime)?),
            FileNode::Secret(..) => Err(Errno::ACCES),
            FileNode::Host(..) => Err(Errno::ROFS),
            FileNode::Device(_) => Ok(()),
        }
    }

    pub fn chmod(&self, mode: u32) -> Result<(), Errno> {
        match &self.inner.node {
            FileNode::Tree { dev, .. } if is_read_only(*dev) => Err(Errno::ROFS),
            FileNode::Tree { tree, ino, .. } => Ok(tree.lock().chmod(*ino, mode & 0o7777)?),
            FileNode::Secret(..) => Err(Errno::ACCES),
            FileNode::Host(..) => Err(Errno::ROFS),
            FileNode::Device(_) => Err(Errno::PERM),
        }
    }

    pub fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        match &self.inner.node {
            FileNode::Tree { dev, .. } if is_read_only(*dev) => Err(Errno::ROFS),
            FileNode::Tree { tree, ino, .. } => Ok(tree.lock().chown(*ino, uid, gid)?),
            FileNode::Secret(..) => Err(Errno::ACCES),
            FileNode::Host(..) => Err(Errno::ROFS),
            FileNode::Device(_) => Err(Errno::PERM),
        }
    }

    /// The digest of this file's content in the snapshot the step's tree was opened
    /// from, if it is a file of the step's own tree that existed then. Files of mounts
    /// (secrets, binds, tmpfs, caches) and files created during the step have none.
    pub(crate) fn snapshot_digest(&self) -> Option<kiln_fs::Digest> {
        match &self.inner.node {
            FileNode::Tree { tree, ino, dev } if *dev == super::ROOT_DEV => {
                tree.lock().snapshot_digest(*ino).ok().flatten()
            }
            _ => None,
        }
    }

    pub(crate) fn file_type(&self) -> FileType {
        match &self.inner.node {
            FileNode::Tree { tree, ino, .. } => tree
                .lock()
                .metadata(*ino)
                .map(|m| m.file_type)
                .unwrap_or(FileType::Regular),
            FileNode::Device(_) => FileType::CharDevice,
            _ => FileType::Regular,
        }
    }
}
