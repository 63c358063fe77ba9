//! The `fd_*` calls (and `sock_*`, which take an fd): reading, writing, seeking, stat,
//! preopens and directory listing over the process's fd table.

use std::io::SeekFrom;

use kiln_fs::Timestamp;
use wasmtime::{Caller, Linker};

use super::handle::Dirent;
use super::mem::*;
use super::types::*;
use super::{
    Ctx, HResult, Handle, IoErr, host, io_err, ret, set_times_args, split, write_filestat,
};
use crate::error::Errno;
use crate::stdio::Stdio;
use crate::vfs::{Stat, VfsDir};

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

/// Runs a read or write and stores the byte count it moved at `out`.
fn transfer(
    caller: &mut Caller<'_, Ctx>,
    out: u32,
    io: impl FnOnce(&mut Caller<'_, Ctx>) -> HResult<u32>,
) -> HResult<()> {
    let total = io(caller)?;
    let (mem, _) = split(caller)?;
    Ok(write_u32(mem, out, total)?)
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

/// The p1 `fdstat` of `h`: file type, flags and rights.
fn write_fdstat(mem: &mut [u8], out: u32, h: &Handle) -> Result<(), Errno> {
    let (ft, flags) = match h {
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
    write_u64(mem, out + 16, inheriting)
}

/// The directory entries of `fd` from `cookie` on, as p1 dirents (`.` and `..` first,
/// the rest sorted), cut to `len` bytes: a guest whose buffer fills retries from the
/// last cookie it saw, in the listing its fd took at cookie 0 (see `DirStream`).
fn dirents(ctx: &Ctx, fd: u32, cookie: u64, len: u32) -> Result<Vec<u8>, Errno> {
    let handle = ctx.fds.get(fd)?;
    let Handle::Dir { dir, stream, .. } = &**handle else {
        return Err(Errno::NOTDIR);
    };
    let entries = stream.entries(cookie, || listing(ctx, dir))?;
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
    Ok(bytes)
}

/// `dir`'s entries now: `.` and `..`, then the sorted rest.
fn listing(ctx: &Ctx, dir: &VfsDir) -> Result<Vec<Dirent>, Errno> {
    let own = ctx.vfs.stat(b"/", dir.path(), true)?;
    let parent = ctx.vfs.stat(dir.path(), b"..", true)?;
    let mut entries = vec![
        (b".".to_vec(), own.ino, FILETYPE_DIRECTORY),
        (b"..".to_vec(), parent.ino, FILETYPE_DIRECTORY),
    ];
    entries.extend(
        ctx.vfs
            .read_dir_at(dir)?
            .into_iter()
            .map(|e| (e.name, e.ino, filetype(e.file_type))),
    );
    Ok(entries)
}

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    add_io(linker)?;
    add_stat(linker)?;
    add_sync(linker)?;
    add_dir(linker)?;
    add_sock(linker)
}

/// Reading, writing and positioning: `fd_read`, `fd_write` and their `p` forms,
/// `fd_seek`, `fd_tell`, `fd_close`, `fd_renumber`.
fn add_io(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_read",
        |caller, fd: u32, iovs: u32, n: u32, out: u32| {
            transfer(&mut caller, out, |c| do_read(c, fd, iovs, n, None))
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_pread",
        |caller, fd: u32, iovs: u32, n: u32, off: u64, out: u32| {
            transfer(&mut caller, out, |c| do_read(c, fd, iovs, n, Some(off)))
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_write",
        |caller, fd: u32, iovs: u32, n: u32, out: u32| {
            transfer(&mut caller, out, |c| do_write(c, fd, iovs, n, None))
        }
    );
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_pwrite",
        |caller, fd: u32, iovs: u32, n: u32, off: u64, out: u32| {
            transfer(&mut caller, out, |c| do_write(c, fd, iovs, n, Some(off)))
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
    Ok(())
}

/// `fd_fdstat_*` and `fd_filestat_*`.
fn add_stat(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "wasi_snapshot_preview1",
        "fd_fdstat_get",
        |caller, fd: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            Ok(write_fdstat(mem, out, ctx.fds.get(fd)?)?)
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
    Ok(())
}

/// Hints and syncs (accepted; the tree is in memory), and `fd_allocate`.
fn add_sync(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
    Ok(())
}

/// Preopens and directory listing.
fn add_dir(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
            let bytes = dirents(ctx, fd, cookie, len)?;
            write_bytes(mem, buf, &bytes)?;
            Ok(write_u32(mem, out, bytes.len() as u32)?)
        }
    );
    Ok(())
}

/// kiln has no sockets: a valid fd is not one, an invalid one is `EBADF`.
fn add_sock(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
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
