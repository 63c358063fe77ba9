//! Stdio endpoints the interpreter wires between builtins and processes.
//!
//! An [`Endpoint`] is a shared handle to an open "file description": cloning it is `dup`,
//! dropping the last clone is `close` (so a pipe reader sees EOF once every writer clone is
//! gone). Hosts downcast endpoints they recognise (their own pipes and files) to hand them
//! to processes directly, and bridge anything else.

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// One open stream: a pipe end, a file, a capture buffer, a device.
pub trait Stream: Any + Send + Sync {
    /// Reads into `buf`; 0 means end of file.
    fn read(&self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(9))
    }
    /// Writes some of `buf`; a closed pipe reports `BrokenPipe`.
    fn write(&self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(9))
    }
}

/// A shared open stream (see the module docs).
pub type Endpoint = Arc<dyn Stream>;

/// Writes all of `data`, retrying short writes.
pub fn write_all(ep: &Endpoint, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = ep.write(data)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    Ok(())
}

/// Reads until end of file.
pub fn read_to_end(ep: &Endpoint, out: &mut Vec<u8>) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = ep.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// `/dev/null`: reads EOF, swallows writes.
pub struct Null;
impl Stream for Null {
    fn read(&self, _buf: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
}

/// `/dev/zero`: endless zero bytes.
pub struct Zero;
impl Stream for Zero {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
}

/// A read-only in-memory byte stream (here-documents, here-strings).
pub struct Bytes {
    data: Vec<u8>,
    pos: Mutex<usize>,
}
impl Bytes {
    /// An endpoint that reads `data` then EOF.
    pub(crate) fn endpoint(data: Vec<u8>) -> Endpoint {
        Arc::new(Bytes {
            data,
            pos: Mutex::new(0),
        })
    }
}
impl Bytes {
    /// Takes the unread rest (a process is about to consume it).
    #[cfg(feature = "runtime")]
    pub(crate) fn take_rest(&self) -> Vec<u8> {
        let mut pos = self.pos.lock();
        let rest = self.data[(*pos).min(self.data.len())..].to_vec();
        *pos = self.data.len();
        rest
    }
}

impl Stream for Bytes {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut pos = self.pos.lock();
        let rest = &self.data[(*pos).min(self.data.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        *pos += n;
        Ok(n)
    }
}

/// A write-only buffer (command substitution output, test capture), optionally bounded.
pub struct Capture {
    data: Mutex<Vec<u8>>,
    limit: usize,
    overflowed: std::sync::atomic::AtomicBool,
}
impl Capture {
    /// A new empty capture buffer with no bound (tests).
    pub fn new() -> Arc<Capture> {
        Capture::with_limit(usize::MAX)
    }
    /// A capture that keeps at most `limit` bytes: a write past it is refused as a
    /// broken pipe (so builtins stop writing) and marks the capture as overflowed.
    pub fn with_limit(limit: usize) -> Arc<Capture> {
        Arc::new(Capture {
            data: Mutex::new(Vec::new()),
            limit,
            overflowed: Default::default(),
        })
    }
    /// Takes the bytes written so far.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.data.lock())
    }
    /// True once a write went past the limit (the output is incomplete).
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(std::sync::atomic::Ordering::Acquire)
    }
}
impl Stream for Capture {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut data = self.data.lock();
        if data.len().saturating_add(buf.len()) > self.limit {
            self.overflowed
                .store(true, std::sync::atomic::Ordering::Release);
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        data.extend_from_slice(buf);
        Ok(buf.len())
    }
}

/// A write-only endpoint that hands every write to a callback (build log sinks).
pub struct Sink<F: Fn(&[u8]) + Send + Sync + 'static>(pub F);
impl<F: Fn(&[u8]) + Send + Sync + 'static> Stream for Sink<F> {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (self.0)(buf);
        Ok(buf.len())
    }
}

const PIPE_CAPACITY: usize = 64 * 1024;

struct PipeState {
    buf: VecDeque<u8>,
    readers: usize,
    writers: usize,
}

struct PipeShared {
    state: Mutex<PipeState>,
    cond: Condvar,
}

/// Read end of an in-memory pipe (see [`pipe`]).
pub struct PipeReader(Arc<PipeShared>);
/// Write end of an in-memory pipe (see [`pipe`]).
pub struct PipeWriter(Arc<PipeShared>);

/// A bounded in-memory pipe: the writer blocks when full, gets `BrokenPipe` once the reader
/// is dropped; the reader gets EOF once the writer is dropped.
pub fn pipe() -> (Endpoint, Endpoint) {
    let shared = Arc::new(PipeShared {
        state: Mutex::new(PipeState {
            buf: VecDeque::new(),
            readers: 1,
            writers: 1,
        }),
        cond: Condvar::new(),
    });
    (
        Arc::new(PipeReader(shared.clone())),
        Arc::new(PipeWriter(shared)),
    )
}

impl Stream for PipeReader {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self.0.state.lock();
        loop {
            if !st.buf.is_empty() {
                let n = st.buf.len().min(buf.len());
                for (dst, src) in buf.iter_mut().zip(st.buf.drain(..n)) {
                    *dst = src;
                }
                self.0.cond.notify_all();
                return Ok(n);
            }
            if st.writers == 0 || buf.is_empty() {
                return Ok(0);
            }
            self.0.cond.wait(&mut st);
        }
    }
}

impl Stream for PipeWriter {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.0.state.lock();
        loop {
            if st.readers == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let room = PIPE_CAPACITY.saturating_sub(st.buf.len());
            if room > 0 || buf.is_empty() {
                let n = room.min(buf.len());
                st.buf.extend(&buf[..n]);
                self.0.cond.notify_all();
                return Ok(n);
            }
            self.0.cond.wait(&mut st);
        }
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut st = self.0.state.lock();
        st.readers -= 1;
        st.buf.clear();
        self.0.cond.notify_all();
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.state.lock().writers -= 1;
        self.0.cond.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_eof_after_writer_dropped() {
        let (r, w) = pipe();
        write_all(&w, b"abc").unwrap();
        drop(w);
        let mut out = Vec::new();
        read_to_end(&r, &mut out).unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn pipe_broken_after_reader_dropped() {
        let (r, w) = pipe();
        drop(r);
        assert_eq!(w.write(b"x").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn pipe_blocks_writer_until_read() {
        let (r, w) = pipe();
        let t = std::thread::spawn(move || write_all(&w, &vec![7u8; PIPE_CAPACITY * 3]));
        let mut out = Vec::new();
        read_to_end(&r, &mut out).unwrap();
        t.join().unwrap().unwrap();
        assert_eq!(out.len(), PIPE_CAPACITY * 3);
    }
}
