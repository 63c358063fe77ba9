//! Deterministic parallel gzip (the pigz technique): the input is cut into fixed-size
//! blocks, each block is deflated on a worker thread with the previous 32 KiB of input as
//! its dictionary and ends with a sync flush, and the pieces are concatenated in order into
//! one ordinary gzip member. The block size is fixed, so the output is the same bytes for
//! any number of threads (digests do not depend on the host's core count), and memory is
//! bounded by the number of blocks in flight.
//!
//! flate2 has no multi-threaded encoder; the crates that do (gzp) add their own thread pool
//! and dependencies for what is ~150 lines on top of flate2's raw `Compress`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use flate2::{Compress, Crc, FlushCompress, Status};

const BLOCK: usize = 1 << 20;
const DICT: usize = 32 << 10;
/// Fixed gzip header: no name, mtime 0, XFL 0, OS 255 ("unknown"), as Go writes it.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

struct Job {
    index: u64,
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
}

type Done = (u64, io::Result<Vec<u8>>);

pub(crate) struct ParGzEncoder<W: Write> {
    out: Option<W>,
    block_size: usize,
    block: Vec<u8>,
    dict: Vec<u8>,
    crc: Crc,
    next_index: u64,
    next_write: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    jobs: Option<mpsc::Sender<Job>>,
    results: mpsc::Receiver<Done>,
    /// What the workers are started with, until the first block that needs them: most
    /// layers are one block, compressed on the caller's thread without starting any.
    unstarted: Option<Unstarted>,
    workers: Vec<JoinHandle<()>>,
    level: u32,
    max_in_flight: u64,
}

struct Unstarted {
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    done: mpsc::Sender<Done>,
    threads: usize,
}

impl<W: Write> ParGzEncoder<W> {
    pub(crate) fn new(out: W, level: u32, threads: usize) -> io::Result<Self> {
        Self::with_block_size(out, level, threads, BLOCK)
    }

    fn with_block_size(
        mut out: W,
        level: u32,
        threads: usize,
        block_size: usize,
    ) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let threads = threads.max(1);
        Ok(ParGzEncoder {
            out: Some(out),
            block_size,
            block: Vec::with_capacity(block_size),
            dict: Vec::new(),
            crc: Crc::new(),
            next_index: 0,
            next_write: 0,
            pending: BTreeMap::new(),
            jobs: Some(job_tx),
            results: done_rx,
            unstarted: Some(Unstarted {
                jobs: Arc::new(Mutex::new(job_rx)),
                done: done_tx,
                threads,
            }),
            workers: Vec::new(),
            level,
            max_in_flight: 2 * threads as u64,
        })
    }

    /// Starts the workers (once). The encoder's own `done` sender goes to them, so a
    /// dead worker closes the results channel instead of leaving a receive hanging.
    fn start_workers(&mut self) {
        let Some(Unstarted {
            jobs,
            done,
            threads,
        }) = self.unstarted.take()
        else {
            return;
        };
        let level = self.level;
        self.workers = (0..threads)
            .map(|_| {
                let (rx, tx) = (jobs.clone(), done.clone());
                std::thread::spawn(move || worker(&rx, &tx, level))
            })
            .collect();
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        // After the last block nothing more is written: no new buffer for it.
        let next = if last { 0 } else { self.block_size };
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(next));
        self.crc.update(&data);
        let dict = std::mem::take(&mut self.dict);
        self.dict = if data.len() >= DICT {
            data[data.len() - DICT..].to_vec()
        } else {
            // Short block (only ever the last one, or a tiny stream): extend the window.
            let mut d = dict.clone();
            d.extend_from_slice(&data);
            d[d.len().saturating_sub(DICT)..].to_vec()
        };
        let job = Job {
            index: self.next_index,
            data,
            dict,
            last,
        };
        self.next_index += 1;
        if last && self.unstarted.is_some() {
            // The whole stream is this one block: no thread is worth starting for it.
            let deflated = deflate_block(&job, self.level)?;
            return self.write_in_order(job.index, deflated);
        }
        self.start_workers();
        self.jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip encoder already finished"))?
            .send(job)
            .map_err(|_| io::Error::other("gzip worker thread died"))?;
        while self.next_index - self.next_write > self.max_in_flight {
            self.collect_one()?;
        }
        Ok(())
    }

    /// Wait for one finished block and write out everything that is now in order.
    fn collect_one(&mut self) -> io::Result<()> {
        let (index, result) = self
            .results
            .recv()
            .map_err(|_| io::Error::other("gzip worker thread died"))?;
        self.write_in_order(index, result?)
    }

    /// Writes out block `index` and every block after it that is ready, in order.
    fn write_in_order(&mut self, index: u64, bytes: Vec<u8>) -> io::Result<()> {
        self.pending.insert(index, bytes);
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip encoder already finished"))?;
        while let Some(bytes) = self.pending.remove(&self.next_write) {
            out.write_all(&bytes)?;
            self.next_write += 1;
        }
        Ok(())
    }

    /// Compress the rest, write the trailer and return the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while self.next_write < self.next_index {
            self.collect_one()?;
        }
        let crc = self.crc.sum();
        let isize = self.crc.amount();
        let mut out = self
            .out
            .take()
            .ok_or_else(|| io::Error::other("gzip encoder already finished"))?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&isize.to_le_bytes())?;
        Ok(out)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.block_size - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == self.block_size {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    /// Blocks are independent, so there is nothing useful to flush early.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParGzEncoder<W> {
    fn drop(&mut self) {
        self.jobs = None; // workers see the closed channel and exit
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, done: &mpsc::Sender<Done>, level: u32) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = deflate_block(&job, level);
        if done.send((job.index, result)).is_err() {
            return;
        }
    }
}

thread_local! {
    /// Each thread's deflate state and its level, reset between blocks. A new state is
    /// ~300 KiB of zeroed tables (window, hash chains) that page-faulted in afresh for
    /// every layer: ~6% of a 20-step build's time went there. A reset stream compresses
    /// exactly as a new one (zlib's deflateReset contract, which pigz relies on too).
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

fn deflate_block(job: &Job, level: u32) -> io::Result<Vec<u8>> {
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let c = match &mut *slot {
            Some((l, c)) if *l == level => {
                c.reset();
                c
            }
            other => {
                let (_, c) =
                    other.insert((level, Compress::new(flate2::Compression::new(level), false)));
                c
            }
        };
        deflate_with(c, job)
    })
}

fn deflate_with(c: &mut Compress, job: &Job) -> io::Result<Vec<u8>> {
    if !job.dict.is_empty() {
        c.set_dictionary(&job.dict).map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(job.data.len() / 2 + 4096);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&job.data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == job.data.len();
        // A sync flush is complete once deflate stops short of filling the output.
        let done = if job.last {
            status == Status::StreamEnd
        } else {
            all_in && out.len() < out.capacity()
        };
        if done {
            return Ok(out);
        }
        out.reserve(64 << 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const TEST_BLOCK: usize = 48 << 10;

    fn data(n: usize) -> Vec<u8> {
        let mut x = 12345u64;
        (0..n)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 3 == 0 {
                    (x >> 33) as u8
                } else {
                    b"abcabcxyz"[i % 9]
                }
            })
            .collect()
    }

    fn gz(input: &[u8], threads: usize) -> Vec<u8> {
        // Small blocks keep the test quick in debug builds; the logic is the same.
        let mut e = ParGzEncoder::with_block_size(Vec::new(), 6, threads, TEST_BLOCK).unwrap();
        for chunk in input.chunks(70_000) {
            e.write_all(chunk).unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn valid_gzip_and_identical_for_any_thread_count() {
        for n in [
            0,
            1,
            100,
            TEST_BLOCK,
            TEST_BLOCK + 1,
            5 * TEST_BLOCK + 12345,
        ] {
            let input = data(n);
            let one = gz(&input, 1);
            assert_eq!(gz(&input, 3), one, "size {n}");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input, "size {n}");
        }
    }

    #[test]
    fn a_reused_deflate_state_compresses_as_a_new_one() {
        let job = |seed: usize, last: bool| Job {
            index: 0,
            data: data(TEST_BLOCK + seed),
            dict: data(DICT + seed)[..DICT].to_vec(),
            last,
        };
        let fresh = |j: &Job| {
            let mut c = Compress::new(flate2::Compression::new(6), false);
            deflate_with(&mut c, j).unwrap()
        };
        // On one thread, after blocks of another level and other data.
        std::thread::spawn(move || {
            deflate_block(&job(1, true), 1).unwrap();
            for (seed, last) in [(7, false), (3, true), (7, false)] {
                let j = job(seed, last);
                assert_eq!(deflate_block(&j, 6).unwrap(), fresh(&j), "block {seed}");
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn workers_start_only_for_a_stream_of_several_blocks() {
        let mut e = ParGzEncoder::with_block_size(Vec::new(), 6, 2, TEST_BLOCK).unwrap();
        e.write_all(&data(TEST_BLOCK - 1)).unwrap();
        assert!(e.workers.is_empty(), "one block so far");
        e.write_all(&data(2)).unwrap();
        assert_eq!(e.workers.len(), 2, "a full block went to the workers");
    }

    #[test]
    fn system_gzip_accepts_it() {
        let input = data(3 * TEST_BLOCK + 777);
        let out = gz(&input, 2);
        let Ok(mut child) = std::process::Command::new("gzip")
            .args(["-t", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("NOTICE: gzip not installed, skipping");
            return;
        };
        child.stdin.take().unwrap().write_all(&out).unwrap();
        assert!(child.wait().unwrap().success());
    }
}
