//! The per-process file descriptor table and what each fd refers to.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::error::Errno;
use crate::process::Limits;
use crate::stdio::{Blocked, Stdio};
use crate::vfs::{VfsDir, VfsFile};

/// A limit hit inside a host call; it stops the process (see `process::run`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Stop {
    #[error("deadline exceeded")]
    Deadline,
    #[error("cancelled")]
    Cancelled,
    #[error("output limit exceeded")]
    Output,
}

pub(crate) enum Handle {
    Stdio {
        stdio: Stdio,
        pos: Mutex<usize>,
    },
    File(VfsFile),
    Dir {
        dir: VfsDir,
        preopen: Option<Vec<u8>>,
        stream: DirStream,
    },
    /// A host byte stream (an HTTP response body).
    Reader(Mutex<Box<dyn Read + Send>>),
}

/// Error of a handle operation: a guest-visible errno or a limit that stops the process.
pub(crate) enum IoErr {
    Errno(Errno),
    Stop(Stop),
}

impl From<Errno> for IoErr {
    fn from(e: Errno) -> IoErr {
        IoErr::Errno(e)
    }
}

fn blocked(b: Blocked) -> IoErr {
    match b {
        Blocked::Errno(e) => IoErr::Errno(e),
        Blocked::Deadline => IoErr::Stop(Stop::Deadline),
    }
}

/// One directory entry as `fd_readdir` reports it: name, inode number, p1 file type.
pub(crate) type Dirent = (Vec<u8>, u64, u8);

/// The listing a directory fd's reader walks. It is taken when the guest reads from
/// cookie 0 (opening or rewinding) and later cookies index into it, so entries the guest
/// removes between reads (`rm -rf` unlinks each batch before asking for the next) do not
/// shift the rest past its cookie: a fresh listing per call made it skip entries and
/// fail with "Directory not empty". POSIX allows a stream not to reflect changes made
/// after it was opened or rewound.
#[derive(Default)]
pub(crate) struct DirStream(Mutex<Option<Arc<Vec<Dirent>>>>);

impl DirStream {
    /// The entries for a read from `cookie`: a new listing (kept) at cookie 0 or when
    /// none was taken yet, else the kept one.
    pub(crate) fn entries(
        &self,
        cookie: u64,
        list: impl FnOnce() -> Result<Vec<Dirent>, Errno>,
    ) -> Result<Arc<Vec<Dirent>>, Errno> {
        let mut kept = self.0.lock();
        match &*kept {
            Some(entries) if cookie != 0 => Ok(entries.clone()),
            _ => {
                let entries = Arc::new(list()?);
                *kept = Some(entries.clone());
                Ok(entries)
            }
        }
    }
}

impl Handle {
    /// A directory handle (`preopen` names a preopened one) with no listing taken yet.
    pub(crate) fn dir(dir: VfsDir, preopen: Option<Vec<u8>>) -> Handle {
        Handle::Dir {
            dir,
            preopen,
            stream: DirStream::default(),
        }
    }

    pub(crate) fn stdio(stdio: Stdio) -> Handle {
        Handle::Stdio {
            stdio,
            pos: Mutex::new(0),
        }
    }

    pub(crate) fn read(&self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize, IoErr> {
        match self {
            Handle::Stdio { stdio, pos } => match stdio {
                Stdio::Null => Ok(0),
                Stdio::Bytes(b) => {
                    let mut p = pos.lock();
                    let n = buf.len().min(b.len().saturating_sub(*p));
                    buf[..n].copy_from_slice(&b[*p..*p + n]);
                    *p += n;
                    Ok(n)
                }
                Stdio::PipeRead(r) => r.read_until(buf, deadline).map_err(blocked),
                Stdio::File(f) => Ok(f.read(buf)?),
                Stdio::PipeWrite(_) | Stdio::Capture(_) | Stdio::Sink(_) => Err(Errno::BADF.into()),
            },
            Handle::File(f) => Ok(f.read(buf)?),
            Handle::Dir { .. } => Err(Errno::ISDIR.into()),
            Handle::Reader(r) => r.lock().read(buf).map_err(|e| IoErr::Errno(e.into())),
        }
    }

    pub(crate) fn write(&self, data: &[u8], limits: &Limits) -> Result<usize, IoErr> {
        match self {
            Handle::Stdio { stdio, .. } => match stdio {
                Stdio::Null => Ok(data.len()),
                Stdio::PipeWrite(w) => w.write_until(data, limits.deadline).map_err(blocked),
                Stdio::Capture(c) => {
                    if !limits.charge_output(data.len()) {
                        return Err(IoErr::Stop(Stop::Output));
                    }
                    c.append(data);
                    Ok(data.len())
                }
                Stdio::Sink(s) => {
                    if !limits.charge_output(data.len()) {
                        return Err(IoErr::Stop(Stop::Output));
                    }
                    s(data);
                    Ok(data.len())
                }
                Stdio::File(f) => Ok(f.write(data)?),
                Stdio::Bytes(_) | Stdio::PipeRead(_) => Err(Errno::BADF.into()),
            },
            Handle::File(f) => Ok(f.write(data)?),
            Handle::Dir { .. } => Err(Errno::ISDIR.into()),
            Handle::Reader(_) => Err(Errno::BADF.into()),
        }
    }

    /// The handle as a stdio endpoint for a spawned child.
    pub(crate) fn to_stdio(&self) -> Result<Stdio, Errno> {
        match self {
            Handle::Stdio { stdio, .. } => Ok(stdio.clone()),
            Handle::File(f) => Ok(Stdio::File(f.clone())),
            Handle::Dir { .. } => Err(Errno::ISDIR),
            Handle::Reader(_) => Err(Errno::BADF),
        }
    }

    pub(crate) fn as_file(&self) -> Option<&VfsFile> {
        match self {
            Handle::File(f)
            | Handle::Stdio {
                stdio: Stdio::File(f),
                ..
            } => Some(f),
            _ => None,
        }
    }
}

/// Fds 0-2 are stdio, 3 is the preopened `/`; new fds take the lowest free number.
pub(crate) struct FdTable {
    fds: Vec<Option<Arc<Handle>>>,
    max: usize,
}

impl FdTable {
    pub(crate) fn new(max: u32) -> FdTable {
        FdTable {
            fds: Vec::new(),
            max: (max as usize).max(4),
        }
    }

    pub(crate) fn get(&self, fd: u32) -> Result<&Arc<Handle>, Errno> {
        self.fds
            .get(fd as usize)
            .and_then(Option::as_ref)
            .ok_or(Errno::BADF)
    }

    pub(crate) fn insert(&mut self, h: Arc<Handle>) -> Result<u32, Errno> {
        let slot = match self.fds.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.fds.len() < self.max => {
                self.fds.push(None);
                self.fds.len() - 1
            }
            None => return Err(Errno::MFILE),
        };
        self.fds[slot] = Some(h);
        Ok(slot as u32)
    }

    pub(crate) fn close(&mut self, fd: u32) -> Result<Arc<Handle>, Errno> {
        self.fds
            .get_mut(fd as usize)
            .and_then(Option::take)
            .ok_or(Errno::BADF)
    }

    /// `fd_renumber`: `to` must be open (p1 semantics); it is closed and replaced.
    pub(crate) fn renumber(&mut self, from: u32, to: u32) -> Result<(), Errno> {
        self.get(from)?;
        self.get(to)?;
        if from != to {
            let h = self.close(from)?;
            self.fds[to as usize] = Some(h);
        }
        Ok(())
    }
}
