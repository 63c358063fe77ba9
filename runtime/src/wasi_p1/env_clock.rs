//! Arguments, environment, clocks, randomness and process control.

use wasmtime::{Caller, Linker};

use super::mem::*;
use super::types::*;
use super::{Ctx, HResult, P1, ProcExit, host, ret, split};
use crate::error::Errno;

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

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    add_args_env(linker)?;
    add_clocks(linker)?;
    add_proc(linker)
}

/// `args_*` and `environ_*`.
fn add_args_env(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// `clock_*`: the realtime clock reads the source date epoch, the others the time since
/// the process started.
fn add_clocks(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// `random_get`, `sched_yield` and `proc_*`.
fn add_proc(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
    Ok(())
}
