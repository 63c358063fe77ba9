//! The `path_*` calls: every path is relative to a directory fd and resolved by the
//! `Vfs` (mounts, `..` stopping at `/`, symlinks resolved by kiln).

use std::sync::Arc;

use wasmtime::{Caller, Linker};

use super::mem::*;
use super::types::*;
use super::{Ctx, HResult, Handle, host, ret, set_times_args, split, write_filestat};
use crate::error::Errno;
use crate::vfs::{OpenOptions, Opened};

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

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    add_open_stat(linker)?;
    add_links(linker)?;
    add_create_remove(linker)
}

/// `path_open` and `path_filestat_*`.
fn add_open_stat(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
                Opened::Dir(d) => Arc::new(Handle::dir(d, None)),
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
    Ok(())
}

/// Links: `path_link`, `path_readlink`, `path_symlink`.
fn add_links(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// `path_create_directory`, removals and `path_rename`.
fn add_create_remove(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
