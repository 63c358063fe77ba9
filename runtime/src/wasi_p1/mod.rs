//! The complete `wasi_snapshot_preview1` surface (all 46 functions of the witx),
//! hand-marshalled with `Linker::func_wrap` over [`crate::Vfs`]. This module is the only
//! place that knows the p1 ABI; its interface to the filesystem is the path-based `Vfs`
//! API. Here: the per-process state, the host-call plumbing shared by the call modules
//! (`env_clock`, `fd`, `path`, `poll`) and the linker wiring.

mod env_clock;
mod fd;
mod handle;
mod limiter;
pub(crate) mod mem;
mod path;
mod poll;
mod types;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kiln_fs::Timestamp;
use wasmtime::{Caller, Linker, Memory};

use crate::engine::Runtime;
use crate::error::{Errno, RuntimeError};
use crate::process::{ExitStatus, Launcher, Limits, NetworkPolicy};
use crate::stdio::Stdio;
use crate::vfs::{OpenOptions, Opened, Stat, Vfs, VfsDir};
pub(crate) use handle::{FdTable, Handle, IoErr, Stop};
use limiter::MemLimiter;
use mem::*;
use types::*;

/// `proc_exit` unwinds the guest with this; `run` turns it into an [`ExitStatus`].
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub(crate) struct ProcExit(pub u32);

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
        fds.insert(Arc::new(Handle::dir(root, Some(b"/".to_vec()))))?;
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
            self.fds
                .insert(Arc::new(Handle::dir(dir, Some(name.clone().into_bytes()))))?;
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

pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    env_clock::add_to_linker(linker)?;
    fd::add_to_linker(linker)?;
    path::add_to_linker(linker)?;
    poll::add_to_linker(linker)?;
    Ok(())
}
