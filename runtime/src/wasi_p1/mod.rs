//! The complete `wasi_snapshot_preview1` surface (all 45+1 functions), hand-marshalled
//! with `Linker::func_wrap` over [`crate::Vfs`]. This module is the only place that knows
//! the p1 ABI; its interface to the filesystem is the path-based `Vfs` API.

mod fd;
pub(crate) mod mem;
mod poll;
mod types;

use std::collections::HashMap;
use std::io::SeekFrom;
use std::sync::Arc;
use std::time::Instant;

use kiln_fs::Timestamp;
use wasmtime::{Caller, Linker, Memory, ResourceLimiter};

use crate::engine::Runtime;
use crate::error::{Errno, RuntimeError};
use crate::process::{ExitStatus, Launcher, Limits, NetworkPolicy};
use crate::stdio::Stdio;
use crate::vfs::{OpenOptions, Opened, Stat, Vfs, VfsDir};
pub(crate) use fd::{FdTable, Handle, IoErr, Stop};
use mem::*;
use types::*;

/// `proc_exit` unwinds the guest with this; `run` turns it into an [`ExitStatus`].
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub(crate) struct ProcExit(pub u32);

/// Table elements allowed in one process, summed over all its tables. Rust and C
/// guests use one function table of a few thousand entries; a million is far above any
/// real program and caps the host memory tables can take (8-16 bytes an element).
const TABLE_ELEMENTS_MAX: usize = 1 << 20;

/// Caps the memory a process's store may hold: the sum of all its linear memories (a
/// module with several memories, or one that grows many, is bounded as a whole, not per
/// memory) and the sum of its table elements. Remembers a refusal so a resulting trap
/// is reported as the limit.
pub(crate) struct MemLimiter {
    pub(crate) max: u64,
    pub(crate) hit: bool,
    /// Bytes of linear memory granted so far, over every memory of the store.
    memory_total: u64,
    /// Table elements granted so far, over every table of the store.
    table_total: usize,
    /// The last growth granted, taken back if wasmtime then fails to perform it.
    pending_memory: u64,
    pending_table: usize,
}

impl MemLimiter {
    pub(crate) fn new(max: u64) -> MemLimiter {
        MemLimiter {
            max,
            hit: false,
            memory_total: 0,
            table_total: 0,
            pending_memory: 0,
            pending_table: 0,
        }
    }
}

impl ResourceLimiter for MemLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = (desired as u64).saturating_sub(current as u64);
        let total = self.memory_total.saturating_add(grow);
        if total > self.max {
            self.hit = true;
            return Ok(false);
        }
        self.memory_total = total;
        self.pending_memory = grow;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_total -= std::mem::take(&mut self.pending_memory);
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        let total = self.table_total.saturating_add(grow);
        if total > TABLE_ELEMENTS_MAX {
            self.hit = true;
            return Ok(false);
        }
        self.table_total = total;
        self.pending_table = grow;
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.table_total -= std::mem::take(&mut self.pending_table);
        Ok(())
    }
}

/// Per-process host state (the wasmtime `Store` data).
pub(crate) struct Ctx {
    pub(crate) runtime: Runtime,
    pub(crate) vfs: Vfs,
    pub(crate) fds: FdTable,
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) env: Vec<Vec<u8>>,
    pub(crate) cwd: String,
    pub(crate) limits: Limits,
    pub(crate) network: NetworkPolicy,
    pub(crate) launcher: Option<Arc<dyn Launcher>>,
    pub(crate) memory: Option<Memory>,
    pub(crate) limiter: MemLimiter,
    pub(crate) started: Instant,
    pub(crate) realtime_ns: u64,
    pub(crate) children: HashMap<u32, std::thread::JoinHandle<Result<ExitStatus, RuntimeError>>>,
    pub(crate) next_pid: u32,
    pub(crate) last_error: String,
    pub(crate) stopped: Option<Stop>,
}

pub(crate) struct CtxInit {
    pub(crate) runtime: Runtime,
    pub(crate) vfs: Vfs,
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) env: Vec<Vec<u8>>,
    pub(crate) cwd: String,
    pub(crate) stdio: [Stdio; 3],
    pub(crate) limits: Limits,
    pub(crate) network: NetworkPolicy,
    pub(crate) launcher: Option<Arc<dyn Launcher>>,
}

impl Ctx {
    pub(crate) fn new(init: CtxInit) -> Result<Ctx, Errno> {
        let mut fds = FdTable::new(init.limits.open_fds);
        for s in init.stdio {
            fds.insert(Arc::new(Handle::stdio(s)))?;
        }
        let root = match init.vfs.open(b"/", b"/", &OpenOptions::read_only())? {
            Opened::Dir(d) => d,
            _ => return Err(Errno::NOTDIR),
        };
        fds.insert(Arc::new(Handle::Dir {
            dir: root,
            preopen: Some(b"/".to_vec()),
        }))?;
        let epoch = init.runtime.inner.config.realtime_epoch;
        Ok(Ctx {
            realtime_ns: u64::try_from(epoch)
                .unwrap_or(0)
                .saturating_mul(1_000_000_000),
            limiter: MemLimiter::new(init.limits.memory_bytes),
            runtime: init.runtime,
            vfs: init.vfs,
            fds,
            args: init.args,
            env: init.env,
            cwd: init.cwd,
            limits: init.limits,
            network: init.network,
            launcher: init.launcher,
            memory: None,
            started: Instant::now(),
            children: HashMap::new(),
            next_pid: 1,
            last_error: String::new(),
            stopped: None,
        })
    }

    /// Preopens after `/`, for suites that look for a directory by preopen name.
    pub(crate) fn add_preopens(&mut self, list: &[(String, String)]) -> Result<(), Errno> {
        for (name, path) in list {
            let Opened::Dir(dir) =
                self.vfs
                    .open(b"/", path.as_bytes(), &OpenOptions::read_only())?
            else {
                return Err(Errno::NOTDIR);
            };
            self.fds.insert(Arc::new(Handle::Dir {
                dir,
                preopen: Some(name.clone().into_bytes()),
            }))?;
        }
        Ok(())
    }

    pub(crate) fn dir(&self, fd: u32) -> Result<VfsDir, Errno> {
        match &**self.fds.get(fd)? {
            Handle::Dir { dir, .. } => Ok(dir.clone()),
            _ => Err(Errno::NOTDIR),
        }
    }
}

/// Host call failure: an errno returned to the guest, or a trap that ends it.
pub(crate) enum HErr {
    Errno(Errno),
    Trap(wasmtime::Error),
}

impl From<Errno> for HErr {
    fn from(e: Errno) -> HErr {
        HErr::Errno(e)
    }
}

pub(crate) type HResult<T> = Result<T, HErr>;

/// Converts a handle error, recording a limit stop so `run` can name it.
pub(crate) fn io_err(ctx: &mut Ctx, e: IoErr) -> HErr {
    match e {
        IoErr::Errno(e) => HErr::Errno(e),
        IoErr::Stop(s) => {
            let msg = s.to_string();
            ctx.stopped = Some(s);
            HErr::Trap(wasmtime::format_err!(msg))
        }
    }
}

pub(crate) fn ret(r: HResult<()>) -> wasmtime::Result<i32> {
    match r {
        Ok(()) => Ok(0),
        Err(HErr::Errno(e)) => Ok(i32::from(e.0)),
        Err(HErr::Trap(t)) => Err(t),
    }
}

/// Guest memory and host state, borrowed together.
pub(crate) fn split<'a>(
    caller: &'a mut Caller<'_, Ctx>,
) -> Result<(&'a mut [u8], &'a mut Ctx), Errno> {
    let memory = caller.data().memory.ok_or(Errno::NOSYS)?;
    Ok(memory.data_and_store_mut(caller))
}

macro_rules! host {
    ($linker:ident, $module:literal, $name:literal, |$caller:ident $(, $arg:ident : $t:ty)*| $body:block) => {
        $linker.func_wrap(
            $module,
            $name,
            #[allow(unused_mut)]
            |mut $caller: Caller<'_, Ctx> $(, $arg: $t)*| -> wasmtime::Result<i32> {
                #[allow(clippy::redundant_closure_call)]
                let r: HResult<()> = (|| $body)();
                ret(r)
            },
        )?;
    };
}
pub(crate) use host;

const P1: &str = "wasi_snapshot_preview1";

fn timestamp(ns: u64) -> Timestamp {
    Timestamp {
        sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
        nsec: (ns % 1_000_000_000) as u32,
    }
}

fn ts_ns(t: Timestamp) -> u64 {
    u64::try_from(t.sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(t.nsec))
}

fn write_filestat(mem: &mut [u8], ptr: u32, st: &Stat) -> Result<(), Errno> {
    slice_mut(mem, ptr, FILESTAT_SIZE)?.fill(0);
    write_u64(mem, ptr, st.dev)?;
    write_u64(mem, ptr + 8, st.ino)?;
    write_u8(mem, ptr + 16, filetype(st.file_type))?;
    write_u64(mem, ptr + 24, st.nlink)?;
    write_u64(mem, ptr + 32, st.size)?;
    write_u64(mem, ptr + 40, ts_ns(st.atime))?;
    write_u64(mem, ptr + 48, ts_ns(st.mtime))?;
    write_u64(mem, ptr + 56, ts_ns(st.ctime))
}

/// (atime, mtime) from p1 `fstflags`; "now" is the reproducible realtime clock.
fn set_times_args(
    ctx: &Ctx,
    atim: u64,
    mtim: u64,
    fst: u16,
) -> Result<(Option<Timestamp>, Option<Timestamp>), Errno> {
    if (fst & FSTFLAGS_ATIM != 0 && fst & FSTFLAGS_ATIM_NOW != 0)
        || (fst & FSTFLAGS_MTIM != 0 && fst & FSTFLAGS_MTIM_NOW != 0)
        || fst & !0xf != 0
    {
        return Err(Errno::INVAL);
    }
    let now = timestamp(ctx.realtime_ns);
    let pick = |set: u16, set_now: u16, v: u64| {
        if fst & set != 0 {
            Some(timestamp(v))
        } else if fst & set_now != 0 {
            Some(now)
        } else {
            None
        }
    };
    Ok((
        pick(FSTFLAGS_ATIM, FSTFLAGS_ATIM_NOW, atim),
        pick(FSTFLAGS_MTIM, FSTFLAGS_MTIM_NOW, mtim),
    ))
}

/// Writes a NUL-terminated string list (argv or environ) as p1 expects.
fn write_strings(mem: &mut [u8], list: &[Vec<u8>], ptrs: u32, buf: u32) -> Result<(), Errno> {
    let mut at = buf;
    for (i, s) in list.iter().enumerate() {
        write_u32(mem, ptrs + 4 * i as u32, at)?;
        write_bytes(mem, at, s)?;
        write_u8(mem, at + s.len() as u32, 0)?;
        at += s.len() as u32 + 1;
    }
    Ok(())
}

fn strings_size(list: &[Vec<u8>]) -> u32 {
    list.iter().map(|s| s.len() as u32 + 1).sum()
}

pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    add_env_and_clocks(linker)?;
    add_fd_calls(linker)?;
    add_path_calls(linker)?;
    poll::add_to_linker(linker)?;
    Ok(())
}

fn add_env_and_clocks(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "wasi_snapshot_preview1",
        "args_get",
        |caller, argv: u32, buf: u32| {
            let (mem, ctx) = split(&mut caller)?;
            Ok(write_strings(mem, &ctx.args, argv, buf)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "args_sizes_get",
        |caller, count: u32, size: u32| {
            let (mem, ctx) = split(&mut caller)?;
            write_u32(mem, count, ctx.args.len() as u32)?;
            Ok(write_u32(mem, size, strings_size(&ctx.args))?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "environ_get",
        |caller, env: u32, buf: u32| {
            let (mem, ctx) = split(&mut caller)?;
            Ok(write_strings(mem, &ctx.env, env, buf)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "environ_sizes_get",
        |caller, count: u32, size: u32| {
            let (mem, ctx) = split(&mut caller)?;
            write_u32(mem, count, ctx.env.len() as u32)?;
            Ok(write_u32(mem, size, strings_size(&ctx.env))?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "clock_res_get",
        |caller, id: u32, out: u32| {
            let (mem, _) = split(&mut caller)?;
            if id > CLOCK_THREAD_CPUTIME {
                return Err(Errno::INVAL.into());
            }
            Ok(write_u64(mem, out, 1_000)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "clock_time_get",
        |caller, id: u32, _precision: u64, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let t = match id {
                CLOCK_REALTIME => ctx.realtime_ns,
                CLOCK_MONOTONIC | CLOCK_PROCESS_CPUTIME | CLOCK_THREAD_CPUTIME => {
                    u64::try_from(ctx.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
                }
                _ => return Err(Errno::INVAL.into()),
            };
            Ok(write_u64(mem, out, t)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "random_get",
        |caller, buf: u32, len: u32| {
            let (mem, _) = split(&mut caller)?;
            let out = slice_mut(mem, buf, len)?;
            getrandom::fill(out).map_err(|_| Errno::IO)?;
            Ok(())
        }
    );
    host!(linker, "wasi_snapshot_preview1", "sched_yield", |caller| {
        let _ = &mut caller;
        std::thread::yield_now();
        Ok(())
    });
    host!(
        linker,
        "wasi_snapshot_preview1",
        "proc_raise",
        |caller, _sig: u32| {
            let _ = &mut caller;
            Err(Errno::NOSYS.into())
        }
    );
    linker.func_wrap(
        P1,
        "proc_exit",
        |_: Caller<'_, Ctx>, code: u32| -> wasmtime::Result<()> { Err(ProcExit(code).into()) },
    )?;
    host!(
        linker,
        "wasi_snapshot_preview1",
        "sock_accept",
        |caller, fd: u32, _flags: u32, _out: u32| {
            caller.data().fds.get(fd)?;
            Err(Errno::NOTSOCK.into())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "sock_recv",
        |caller, fd: u32, _a: u32, _b: u32, _c: u32, _d: u32, _e: u32| {
            caller.data().fds.get(fd)?;
            Err(Errno::NOTSOCK.into())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "sock_send",
        |caller, fd: u32, _a: u32, _b: u32, _c: u32, _d: u32| {
            caller.data().fds.get(fd)?;
            Err(Errno::NOTSOCK.into())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "sock_shutdown",
        |caller, fd: u32, _how: u32| {
            caller.data().fds.get(fd)?;
            Err(Errno::NOTSOCK.into())
        }
    );
    Ok(())
}

/// Whether more can be read from `h` right now without blocking (after a first read).
fn more_ready(h: &Handle) -> bool {
    match h {
        Handle::Stdio {
            stdio: Stdio::PipeRead(r),
            ..
        } => r.poll().0 > 0,
        Handle::Reader(_) => false,
        _ => true,
    }
}

fn do_read(
    caller: &mut Caller<'_, Ctx>,
    fd: u32,
    iovs: u32,
    count: u32,
    offset: Option<u64>,
) -> HResult<u32> {
    let (mem, ctx) = split(caller)?;
    let h = ctx.fds.get(fd)?.clone();
    if matches!(*h, Handle::Dir { .. }) {
        return Err(Errno::ISDIR.into());
    }
    let list = iovecs(mem, iovs, count)?;
    let mut total: u32 = 0;
    for (ptr, len) in list {
        if len == 0 {
            continue;
        }
        if total > 0 && !more_ready(&h) {
            break;
        }
        let buf = slice_mut(mem, ptr, len)?;
        let r = match offset {
            Some(off) => {
                let f = h.as_file().ok_or(Errno::SPIPE)?;
                f.pread(buf, off + u64::from(total)).map_err(IoErr::Errno)
            }
            None => h.read(buf, ctx.limits.deadline),
        };
        let n = match r {
            Ok(n) => n as u32,
            Err(_) if total > 0 => break,
            Err(e) => return Err(io_err(ctx, e)),
        };
        total += n;
        if n < len {
            break;
        }
    }
    Ok(total)
}

fn do_write(
    caller: &mut Caller<'_, Ctx>,
    fd: u32,
    iovs: u32,
    count: u32,
    offset: Option<u64>,
) -> HResult<u32> {
    let (mem, ctx) = split(caller)?;
    let h = ctx.fds.get(fd)?.clone();
    if matches!(*h, Handle::Dir { .. }) {
        return Err(Errno::BADF.into());
    }
    let list = iovecs(mem, iovs, count)?;
    let mut total: u32 = 0;
    for (ptr, len) in list {
        let data = slice(mem, ptr, len)?;
        let mut done = 0usize;
        while done < data.len() {
            let r = match offset {
                Some(off) => {
                    let f = h.as_file().ok_or(Errno::SPIPE)?;
                    f.pwrite(&data[done..], off + u64::from(total) + done as u64)
                        .map_err(IoErr::Errno)
                }
                None => h.write(&data[done..], &ctx.limits),
            };
            match r {
                Ok(n) => done += n,
                Err(IoErr::Errno(_)) if total as usize + done > 0 => return Ok(total + done as u32),
                Err(e) => return Err(io_err(ctx, e)),
            }
        }
        total += done as u32;
    }
    Ok(total)
}

fn fd_stat(ctx: &Ctx, fd: u32) -> Result<Stat, Errno> {
    match &**ctx.fds.get(fd)? {
        Handle::Dir { dir, .. } => ctx.vfs.stat(b"/", dir.path(), true),
        h => match h.as_file() {
            Some(f) => f.stat(),
            None => Ok(Stat {
                dev: 0,
                ino: u64::from(fd) + 1,
                file_type: kiln_fs::FileType::Fifo,
                mode: 0o600,
                uid: 0,
                gid: 0,
                nlink: 1,
                size: 0,
                atime: Timestamp::EPOCH,
                mtime: Timestamp::EPOCH,
                ctime: Timestamp::EPOCH,
                rdev: 0,
            }),
        },
    }
}

/// Rights reported by `fd_fdstat_get`. kiln does not enforce rights (capabilities are
/// paths), but libc derives the access mode (`fcntl(F_GETFL)`) and tty-ness from them.
fn rights(h: &Handle) -> (u64, u64) {
    match h {
        Handle::Dir { .. } => (RIGHTS_ALL & !RIGHTS_FILE_ONLY, RIGHTS_ALL),
        Handle::Stdio { stdio, .. } => {
            let dir = match stdio {
                Stdio::Null | Stdio::File(_) => RIGHTS_FD_READ | RIGHTS_FD_WRITE | RIGHTS_SEEK_TELL,
                Stdio::Bytes(_) | Stdio::PipeRead(_) => RIGHTS_FD_READ,
                Stdio::PipeWrite(_) | Stdio::Capture(_) | Stdio::Sink(_) => RIGHTS_FD_WRITE,
            };
            (dir | RIGHTS_STREAM, 0)
        }
        Handle::File(f) => {
            let mut r = RIGHTS_FILE_COMMON;
            if f.is_readable() {
                r |= RIGHTS_FD_READ;
            }
            if f.is_writable() {
                r |= RIGHTS_FILE_WRITE;
            }
            (r, 0)
        }
        Handle::Reader(_) => (RIGHTS_FD_READ | RIGHTS_STREAM, 0),
    }
}

fn add_fd_calls(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_read",
        |caller, fd: u32, iovs: u32, n: u32, out: u32| {
            let total = do_read(&mut caller, fd, iovs, n, None)?;
            let (mem, _) = split(&mut caller)?;
            Ok(write_u32(mem, out, total)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_pread",
        |caller, fd: u32, iovs: u32, n: u32, off: u64, out: u32| {
            let total = do_read(&mut caller, fd, iovs, n, Some(off))?;
            let (mem, _) = split(&mut caller)?;
            Ok(write_u32(mem, out, total)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_write",
        |caller, fd: u32, iovs: u32, n: u32, out: u32| {
            let total = do_write(&mut caller, fd, iovs, n, None)?;
            let (mem, _) = split(&mut caller)?;
            Ok(write_u32(mem, out, total)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_pwrite",
        |caller, fd: u32, iovs: u32, n: u32, off: u64, out: u32| {
            let total = do_write(&mut caller, fd, iovs, n, Some(off))?;
            let (mem, _) = split(&mut caller)?;
            Ok(write_u32(mem, out, total)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_close",
        |caller, fd: u32| {
            caller.data_mut().fds.close(fd)?;
            Ok(())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_renumber",
        |caller, from: u32, to: u32| { Ok(caller.data_mut().fds.renumber(from, to)?) }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_seek",
        |caller, fd: u32, off: i64, whence: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let h = ctx.fds.get(fd)?;
            let f = match &**h {
                Handle::Dir { .. } => return Err(Errno::BADF.into()),
                h => h.as_file().ok_or(Errno::SPIPE)?,
            };
            let pos = match whence {
                0 => SeekFrom::Start(u64::try_from(off).map_err(|_| Errno::INVAL)?),
                1 => SeekFrom::Current(off),
                2 => SeekFrom::End(off),
                _ => return Err(Errno::INVAL.into()),
            };
            let new = f.seek(pos)?;
            Ok(write_u64(mem, out, new)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_tell",
        |caller, fd: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let f = match &**ctx.fds.get(fd)? {
                Handle::Dir { .. } => return Err(Errno::BADF.into()),
                h => h.as_file().ok_or(Errno::SPIPE)?,
            };
            Ok(write_u64(mem, out, f.position())?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_fdstat_get",
        |caller, fd: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let h = ctx.fds.get(fd)?;
            let (ft, flags) = match &**h {
                Handle::Dir { .. } => (FILETYPE_DIRECTORY, 0),
                Handle::Stdio {
                    stdio: Stdio::Null, ..
                } => (FILETYPE_CHARACTER_DEVICE, 0),
                h => match h.as_file() {
                    Some(f) => (
                        filetype(f.file_type()),
                        if f.is_append() { FDFLAGS_APPEND } else { 0 },
                    ),
                    None => (FILETYPE_UNKNOWN, 0),
                },
            };
            let (base, inheriting) = rights(h);
            slice_mut(mem, out, 24)?.fill(0);
            write_u8(mem, out, ft)?;
            write_u16(mem, out + 2, flags)?;
            write_u64(mem, out + 8, base)?;
            Ok(write_u64(mem, out + 16, inheriting)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_fdstat_set_flags",
        |caller, fd: u32, flags: u32| {
            let h = caller.data().fds.get(fd)?;
            if let Some(f) = h.as_file() {
                f.set_append(flags as u16 & FDFLAGS_APPEND != 0);
            }
            Ok(())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_fdstat_set_rights",
        |caller, fd: u32, _base: u64, _inh: u64| {
            caller.data().fds.get(fd)?;
            Ok(())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_filestat_get",
        |caller, fd: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let st = fd_stat(ctx, fd)?;
            Ok(write_filestat(mem, out, &st)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_filestat_set_size",
        |caller, fd: u32, size: u64| {
            let f = caller
                .data()
                .fds
                .get(fd)?
                .as_file()
                .ok_or(Errno::BADF)?
                .clone();
            Ok(f.set_len(size)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_filestat_set_times",
        |caller, fd: u32, atim: u64, mtim: u64, fst: u32| {
            let ctx = caller.data();
            let (a, m) = set_times_args(ctx, atim, mtim, fst as u16)?;
            match &**ctx.fds.get(fd)? {
                Handle::Dir { dir, .. } => Ok(ctx.vfs.set_times(b"/", dir.path(), true, a, m)?),
                h => Ok(h.as_file().ok_or(Errno::BADF)?.set_times(a, m)?),
            }
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_advise",
        |caller, fd: u32, _off: u64, _len: u64, advice: u32| {
            caller.data().fds.get(fd)?;
            if advice > 5 {
                return Err(Errno::INVAL.into());
            }
            Ok(())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_allocate",
        |caller, fd: u32, off: u64, len: u64| {
            let h = caller.data().fds.get(fd)?;
            let f = match &**h {
                Handle::Dir { .. } => return Err(Errno::BADF.into()),
                h => h.as_file().ok_or(Errno::SPIPE)?,
            };
            let end = off.checked_add(len).ok_or(Errno::FBIG)?;
            if f.stat()?.size < end {
                f.set_len(end)?;
            }
            Ok(())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_sync",
        |caller, fd: u32| {
            caller.data().fds.get(fd)?;
            Ok(())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_datasync",
        |caller, fd: u32| {
            caller.data().fds.get(fd)?;
            Ok(())
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_prestat_get",
        |caller, fd: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let Handle::Dir {
                preopen: Some(name),
                ..
            } = &**ctx.fds.get(fd)?
            else {
                return Err(Errno::BADF.into());
            };
            write_u32(mem, out, 0)?;
            Ok(write_u32(mem, out + 4, name.len() as u32)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_prestat_dir_name",
        |caller, fd: u32, buf: u32, len: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let Handle::Dir {
                preopen: Some(name),
                ..
            } = &**ctx.fds.get(fd)?
            else {
                return Err(Errno::BADF.into());
            };
            if (len as usize) < name.len() {
                return Err(Errno::NAMETOOLONG.into());
            }
            Ok(write_bytes(mem, buf, name)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_readdir",
        |caller, fd: u32, buf: u32, len: u32, cookie: u64, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx
                .dir(fd)
                .map_err(|e| if e == Errno::NOTDIR { Errno::NOTDIR } else { e })?;
            let own = ctx.vfs.stat(b"/", dir.path(), true)?;
            let parent = ctx.vfs.stat(dir.path(), b"..", true)?;
            let mut entries = vec![
                (b".".to_vec(), own.ino, FILETYPE_DIRECTORY),
                (b"..".to_vec(), parent.ino, FILETYPE_DIRECTORY),
            ];
            entries.extend(
                ctx.vfs
                    .read_dir_at(&dir)?
                    .into_iter()
                    .map(|e| (e.name, e.ino, filetype(e.file_type))),
            );
            let mut bytes = Vec::new();
            let start = usize::try_from(cookie).unwrap_or(usize::MAX);
            for (i, (name, ino, ft)) in entries.iter().enumerate().skip(start) {
                if bytes.len() >= len as usize {
                    break;
                }
                let mut d = [0u8; DIRENT_SIZE];
                d[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                d[8..16].copy_from_slice(&ino.to_le_bytes());
                d[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
                d[20] = *ft;
                bytes.extend_from_slice(&d);
                bytes.extend_from_slice(name);
            }
            bytes.truncate(len as usize);
            write_bytes(mem, buf, &bytes)?;
            Ok(write_u32(mem, out, bytes.len() as u32)?)
        }
    );
    Ok(())
}

fn open_options(oflags: u16, rights: u64, fdflags: u16, dirflags: u32) -> OpenOptions {
    let write = rights & RIGHTS_FD_WRITE != 0;
    OpenOptions {
        read: rights & (RIGHTS_FD_READ | RIGHTS_FD_READDIR) != 0 || !write,
        write,
        append: fdflags & FDFLAGS_APPEND != 0,
        create: oflags & OFLAGS_CREAT != 0,
        exclusive: oflags & OFLAGS_EXCL != 0,
        truncate: oflags & OFLAGS_TRUNC != 0,
        directory: oflags & OFLAGS_DIRECTORY != 0,
        follow: dirflags & LOOKUP_SYMLINK_FOLLOW != 0,
        mode: 0o666,
    }
}

/// A p1 path argument: relative to its directory fd. wasi-libc never sends a leading
/// `/`; like other hosts, kiln refuses one rather than guess which directory it means.
fn p1_path(mem: &[u8], ptr: u32, len: u32) -> Result<Vec<u8>, Errno> {
    let p = path(mem, ptr, len)?;
    if p.first() == Some(&b'/') {
        return Err(Errno::NOTCAPABLE);
    }
    Ok(p)
}

fn add_path_calls(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_open",
        |caller,
         fd: u32,
         dirflags: u32,
         p: u32,
         plen: u32,
         oflags: u32,
         rights: u64,
         _inh: u64,
         fdflags: u32,
         out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            let path = p1_path(mem, p, plen)?;
            let opts = open_options(oflags as u16, rights, fdflags as u16, dirflags);
            let handle = match ctx.vfs.open(dir.path(), &path, &opts)? {
                Opened::File(f) => Arc::new(Handle::File(f)),
                Opened::Dir(d) => Arc::new(Handle::Dir {
                    dir: d,
                    preopen: None,
                }),
                Opened::Fd(n) => ctx.fds.get(n)?.clone(),
            };
            let new_fd = ctx.fds.insert(handle)?;
            Ok(write_u32(mem, out, new_fd)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_create_directory",
        |caller, fd: u32, p: u32, plen: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            Ok(ctx.vfs.mkdir(dir.path(), &p1_path(mem, p, plen)?, 0o777)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_filestat_get",
        |caller, fd: u32, flags: u32, p: u32, plen: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            let st = ctx.vfs.stat(
                dir.path(),
                &p1_path(mem, p, plen)?,
                flags & LOOKUP_SYMLINK_FOLLOW != 0,
            )?;
            Ok(write_filestat(mem, out, &st)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_filestat_set_times",
        |caller, fd: u32, flags: u32, p: u32, plen: u32, atim: u64, mtim: u64, fst: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            let (a, m) = set_times_args(ctx, atim, mtim, fst as u16)?;
            let follow = flags & LOOKUP_SYMLINK_FOLLOW != 0;
            Ok(ctx
                .vfs
                .set_times(dir.path(), &p1_path(mem, p, plen)?, follow, a, m)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_link",
        |caller, ofd: u32, oflags: u32, op: u32, olen: u32, nfd: u32, np: u32, nlen: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let (odir, ndir) = (ctx.dir(ofd)?, ctx.dir(nfd)?);
            let follow = oflags & LOOKUP_SYMLINK_FOLLOW != 0;
            Ok(ctx.vfs.hard_link(
                odir.path(),
                &p1_path(mem, op, olen)?,
                follow,
                ndir.path(),
                &p1_path(mem, np, nlen)?,
            )?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_readlink",
        |caller, fd: u32, p: u32, plen: u32, buf: u32, len: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            let target = ctx.vfs.read_link(dir.path(), &p1_path(mem, p, plen)?)?;
            let n = target.len().min(len as usize);
            write_bytes(mem, buf, &target[..n])?;
            Ok(write_u32(mem, out, n as u32)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_remove_directory",
        |caller, fd: u32, p: u32, plen: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            Ok(ctx.vfs.remove_dir(dir.path(), &p1_path(mem, p, plen)?)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_unlink_file",
        |caller, fd: u32, p: u32, plen: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            Ok(ctx.vfs.remove_file(dir.path(), &p1_path(mem, p, plen)?)?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_rename",
        |caller, fd: u32, op: u32, olen: u32, nfd: u32, np: u32, nlen: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let (odir, ndir) = (ctx.dir(fd)?, ctx.dir(nfd)?);
            Ok(ctx.vfs.rename(
                odir.path(),
                &p1_path(mem, op, olen)?,
                ndir.path(),
                &p1_path(mem, np, nlen)?,
            )?)
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "path_symlink",
        |caller, op: u32, olen: u32, fd: u32, np: u32, nlen: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            let target = path(mem, op, olen)?;
            Ok(ctx
                .vfs
                .symlink(&target, dir.path(), &p1_path(mem, np, nlen)?)?)
        }
    );
    Ok(())
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    const GIB: usize = 1 << 30;

    #[test]
    fn memories_are_bounded_by_their_sum() {
        let mut l = MemLimiter::new(4 << 30);
        // Three memories of 1.5 GiB each: each alone is under 4 GiB, together not.
        assert!(l.memory_growing(0, GIB, None).unwrap());
        assert!(l.memory_growing(GIB, GIB + GIB / 2, None).unwrap());
        assert!(l.memory_growing(0, GIB + GIB / 2, None).unwrap());
        assert!(!l.memory_growing(0, GIB + GIB / 2, None).unwrap());
        assert!(l.hit);
        assert_eq!(l.memory_total, 3 << 30);
    }

    #[test]
    fn a_failed_growth_is_given_back() {
        let mut l = MemLimiter::new(2 << 30);
        assert!(l.memory_growing(0, GIB, None).unwrap());
        assert!(l.memory_growing(GIB, 2 * GIB, None).unwrap());
        l.memory_grow_failed(wasmtime::format_err!("mmap failed"))
            .unwrap();
        assert_eq!(l.memory_total, 1 << 30);
        assert!(l.memory_growing(GIB, 2 * GIB, None).unwrap());
    }

    #[test]
    fn tables_are_bounded_by_their_sum() {
        let mut l = MemLimiter::new(4 << 30);
        let half = TABLE_ELEMENTS_MAX / 2;
        assert!(l.table_growing(0, half, None).unwrap());
        assert!(l.table_growing(0, half, None).unwrap());
        assert!(!l.table_growing(0, 1, None).unwrap());
        assert!(l.hit);
    }
}
