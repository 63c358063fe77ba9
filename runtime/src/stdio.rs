//! Process stdio endpoints: in-memory pipes with backpressure, capture buffers, a null
//! device, callback sinks and files of the step filesystem.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::Errno;
use crate::vfs::VfsFile;

/// A pipe holds at most this many unread bytes; writers block beyond it, so a fast
/// producer cannot buffer unbounded output ahead of a slow consumer.
pub const PIPE_CAPACITY: usize = 64 * 1024;

struct PipeState {
    buf: VecDeque<u8>,
    writers: usize,
    reader_open: bool,
}

struct PipeShared {
    state: Mutex<PipeState>,
    changed: Condvar,
}

/// Creates an in-memory pipe. A write fails with `EPIPE` once the reader is dropped (so
/// `yes | head -n1` ends); a read returns 0 (EOF) once every writer is dropped.
pub fn pipe() -> (PipeReader, PipeWriter) {
    let shared = Arc::new(PipeShared {
        state: Mutex::new(PipeState {
            buf: VecDeque::new(),
            writers: 1,
            reader_open: true,
        }),
        changed: Condvar::new(),
    });
    (
        PipeReader {
            shared: shared.clone(),
        },
        PipeWriter { shared },
    )
}

/// Why a blocking pipe operation stopped without transferring data.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Blocked {
    Errno(Errno),
    Deadline,
}

/// The read end of a [`pipe`]. Not `Clone`: one reader per pipe.
pub struct PipeReader {
    shared: Arc<PipeShared>,
}

impl PipeReader {
    /// Reads up to `buf.len()` bytes, blocking until data, EOF, or `deadline`.
    pub(crate) fn read_until(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<usize, Blocked> {
        let mut st = self.shared.state.lock();
        loop {
            if !st.buf.is_empty() {
                let n = buf.len().min(st.buf.len());
                // Copy the ring buffer's two halves as slices (a per-byte drain is
                // several times slower, which shows on 100 MB outputs).
                let (front, back) = st.buf.as_slices();
                let a = n.min(front.len());
                buf[..a].copy_from_slice(&front[..a]);
                buf[a..n].copy_from_slice(&back[..n - a]);
                st.buf.drain(..n);
                self.shared.changed.notify_all();
                return Ok(n);
            }
            if st.writers == 0 || buf.is_empty() {
                return Ok(0);
            }
            wait(&self.shared.changed, &mut st, deadline)?;
        }
    }

    /// Bytes readable without blocking, and whether the writers are all gone.
    pub(crate) fn poll(&self) -> (usize, bool) {
        let st = self.shared.state.lock();
        (st.buf.len(), st.writers == 0)
    }
}

impl io::Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_until(buf, None)
            .map_err(|_| io::Error::from(io::ErrorKind::Interrupted))
    }
}

/// Reading through a shared reference lets a shell builtin and the processes it hands
/// an `Arc<PipeReader>` to take turns on one pipe.
impl io::Read for &PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_until(buf, None)
            .map_err(|_| io::Error::from(io::ErrorKind::Interrupted))
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.reader_open = false;
        st.buf.clear();
        self.shared.changed.notify_all();
    }
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PipeReader")
    }
}

/// The write end of a [`pipe`]. Cloning adds a writer; EOF comes when all are dropped.
pub struct PipeWriter {
    shared: Arc<PipeShared>,
}

impl PipeWriter {
    /// Writes some of `data` (at least one byte unless `data` is empty), blocking while
    /// the pipe is full. `EPIPE` once the reader is gone.
    pub(crate) fn write_until(
        &self,
        data: &[u8],
        deadline: Option<Instant>,
    ) -> Result<usize, Blocked> {
        let mut st = self.shared.state.lock();
        loop {
            if !st.reader_open {
                return Err(Blocked::Errno(Errno::PIPE));
            }
            let room = PIPE_CAPACITY.saturating_sub(st.buf.len());
            if room > 0 || data.is_empty() {
                let n = room.min(data.len());
                st.buf.extend(&data[..n]);
                self.shared.changed.notify_all();
                return Ok(n);
            }
            wait(&self.shared.changed, &mut st, deadline)?;
        }
    }

    /// Bytes writable without blocking, and whether the reader is gone.
    pub(crate) fn poll(&self) -> (usize, bool) {
        let st = self.shared.state.lock();
        (PIPE_CAPACITY.saturating_sub(st.buf.len()), !st.reader_open)
    }
}

fn wait(
    cond: &Condvar,
    st: &mut parking_lot::MutexGuard<'_, PipeState>,
    deadline: Option<Instant>,
) -> Result<(), Blocked> {
    match deadline {
        Some(d) => {
            if Instant::now() >= d || cond.wait_until(st, d).timed_out() {
                return Err(Blocked::Deadline);
            }
        }
        // Wake periodically anyway: a process blocked here must still notice the epoch
        // deadline of its caller through the outer loop.
        None => {
            cond.wait_for(st, Duration::from_millis(100));
        }
    }
    Ok(())
}

impl io::Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_until(buf, None).map_err(|e| match e {
            Blocked::Errno(_) => io::Error::from(io::ErrorKind::BrokenPipe),
            Blocked::Deadline => io::Error::from(io::ErrorKind::TimedOut),
        })
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writing through a shared reference (shell builtins writing to a pipeline stage).
impl io::Write for &PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_until(buf, None).map_err(|e| match e {
            Blocked::Errno(_) => io::Error::from(io::ErrorKind::BrokenPipe),
            Blocked::Deadline => io::Error::from(io::ErrorKind::TimedOut),
        })
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Clone for PipeWriter {
    fn clone(&self) -> PipeWriter {
        self.shared.state.lock().writers += 1;
        PipeWriter {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.writers -= 1;
        self.shared.changed.notify_all();
    }
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PipeWriter")
    }
}

/// A growable in-memory buffer that collects a process's output (bounded by the
/// process's output limit).
#[derive(Clone, Default)]
pub struct CaptureBuffer {
    data: Arc<Mutex<Vec<u8>>>,
}

impl CaptureBuffer {
    pub fn new() -> CaptureBuffer {
        CaptureBuffer::default()
    }
    /// A copy of everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.data.lock().clone()
    }
    /// Takes everything written so far, leaving the buffer empty.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.data.lock())
    }
    pub(crate) fn append(&self, bytes: &[u8]) {
        self.data.lock().extend_from_slice(bytes);
    }
}

impl fmt::Debug for CaptureBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaptureBuffer({} bytes)", self.data.lock().len())
    }
}

/// Receives output chunks as they are written (e.g. to stream build logs).
pub type SinkFn = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// One stdio endpoint of a process. Endpoints that cannot serve a direction (reading
/// from a capture buffer, writing to `Bytes`) fail that operation with `EBADF`.
#[derive(Clone, Default)]
pub enum Stdio {
    /// Reads give EOF, writes are discarded.
    #[default]
    Null,
    /// Fixed input (a here-document, `<<<` string).
    Bytes(Arc<[u8]>),
    /// The read end of a pipe, shared so a pipeline stage can hand it on.
    PipeRead(Arc<PipeReader>),
    /// The write end of a pipe.
    PipeWrite(PipeWriter),
    Capture(CaptureBuffer),
    Sink(SinkFn),
    /// A file opened through [`crate::Vfs::open`] (shell redirections).
    File(VfsFile),
}

impl Stdio {
    pub fn pipe_read(reader: PipeReader) -> Stdio {
        Stdio::PipeRead(Arc::new(reader))
    }
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stdio::Null => f.write_str("Null"),
            Stdio::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Stdio::PipeRead(_) => f.write_str("PipeRead"),
            Stdio::PipeWrite(_) => f.write_str("PipeWrite"),
            Stdio::Capture(c) => c.fmt(f),
            Stdio::Sink(_) => f.write_str("Sink"),
            Stdio::File(_) => f.write_str("File"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn reads_keep_order_across_the_ring_buffer_wrap() {
        let (r, w) = pipe();
        let data: Vec<u8> = (0..PIPE_CAPACITY * 3).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let mut written = 0;
        let mut buf = vec![0u8; PIPE_CAPACITY / 3 + 7];
        while out.len() < data.len() {
            // Write while there is room, so the buffer's start moves around the ring.
            while written < data.len() && w.poll().0 > 0 {
                written += w.write_until(&data[written..], None).unwrap();
            }
            let n = r.read_until(&mut buf, None).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
    }

    #[test]
    fn eof_after_all_writers_drop() {
        let (mut r, w) = pipe();
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            let mut w = w;
            w.write_all(b"hello ").unwrap();
            drop(w);
            let mut w2 = w2;
            w2.write_all(b"world").unwrap();
        });
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        t.join().unwrap();
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn epipe_when_reader_gone_even_while_blocked() {
        let (r, w) = pipe();
        let t = std::thread::spawn(move || {
            let chunk = vec![b'y'; 4096];
            loop {
                if let Err(e) = w.write_until(&chunk, None) {
                    return e;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 2];
        assert_eq!(r.read_until(&mut buf, None).unwrap(), 2);
        drop(r);
        assert_eq!(t.join().unwrap(), Blocked::Errno(Errno::PIPE));
    }

    #[test]
    fn backpressure_bounds_the_buffer() {
        let (r, w) = pipe();
        let big = vec![0u8; PIPE_CAPACITY * 2];
        assert_eq!(w.write_until(&big, None).unwrap(), PIPE_CAPACITY);
        let deadline = Instant::now() + Duration::from_millis(30);
        assert_eq!(w.write_until(&big, Some(deadline)), Err(Blocked::Deadline));
        assert_eq!(r.poll(), (PIPE_CAPACITY, false));
    }
}
