//! The `kiln_v1` host import module: what WASI p1 cannot express (chmod, chown, full
//! stat, spawning commands, pipes, HTTP). The ABI is documented in `runtime/ABI.md`;
//! every call returns a WASI errno (0 = success) and `last_error` explains failures.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_fs::FileType;
use parking_lot::Mutex;
use wasmtime::{Caller, Linker};

use crate::error::{Errno, RuntimeError};
use crate::process::{ExitStatus, LaunchRequest};
use crate::stdio::{Stdio, pipe};
use crate::vfs::Stat;
use crate::wasi_p1::mem::*;
use crate::wasi_p1::{Ctx, HErr, HResult, Handle, host, ret, split};

/// Size of the `kiln_stat` struct written by `stat`/`fstat` (see ABI.md).
const STAT_SIZE: u32 = 80;
const FOLLOW: u32 = 1;
/// HTTP requests never wait longer than this, even without a step deadline.
const HTTP_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_REQUEST_BODY: u32 = 64 << 20;

fn mode_bits(st: &Stat) -> u32 {
    let fmt = match st.file_type {
        FileType::Directory => 0o040000,
        FileType::Regular => 0o100000,
        FileType::Symlink => 0o120000,
        FileType::CharDevice => 0o020000,
        FileType::BlockDevice => 0o060000,
        FileType::Fifo => 0o010000,
    };
    fmt | (st.mode & 0o7777)
}

fn ns(t: kiln_fs::Timestamp) -> u64 {
    (t.sec.saturating_mul(1_000_000_000)).saturating_add(i64::from(t.nsec)) as u64
}

fn write_stat(mem: &mut [u8], out: u32, st: &Stat) -> Result<(), Errno> {
    slice_mut(mem, out, STAT_SIZE)?.fill(0);
    write_u64(mem, out, st.dev)?;
    write_u64(mem, out + 8, st.ino)?;
    write_u64(mem, out + 16, st.nlink)?;
    write_u64(mem, out + 24, st.size)?;
    write_u64(mem, out + 32, st.rdev)?;
    write_u32(mem, out + 40, mode_bits(st))?;
    write_u32(mem, out + 44, st.uid)?;
    write_u32(mem, out + 48, st.gid)?;
    write_u64(mem, out + 56, ns(st.atime))?;
    write_u64(mem, out + 64, ns(st.mtime))?;
    write_u64(mem, out + 72, ns(st.ctime))
}

fn id(v: i32) -> Option<u32> {
    (v != -1).then_some(v as u32)
}

/// Records a message for `last_error` and returns the errno.
fn fail(ctx: &mut Ctx, errno: Errno, msg: impl Into<String>) -> HErr {
    ctx.last_error = msg.into();
    HErr::Errno(errno)
}

fn nul_list(mem: &[u8], ptr: u32, len: u32) -> Result<Vec<String>, Errno> {
    if len > 1 << 20 {
        return Err(Errno::TOOBIG);
    }
    let bytes = slice(mem, ptr, len)?;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    // Every item ends in a NUL, so an empty argument ("\0") is kept: `postinst configure
    // ''` must reach the script with its empty second argument.
    let Some(items) = bytes.strip_suffix(&[0]) else {
        return Err(Errno::INVAL);
    };
    items
        .split(|&b| b == 0)
        .map(|s| String::from_utf8(s.to_vec()).map_err(|_| Errno::ILSEQ))
        .collect()
}

fn stdio_of(ctx: &Ctx, fd: i32) -> Result<Stdio, Errno> {
    if fd < 0 {
        return Ok(Stdio::Null);
    }
    ctx.fds.get(fd as u32)?.to_stdio()
}

pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    add_metadata_calls(linker)?;
    add_identity_calls(linker)?;
    add_process_calls(linker)?;
    add_http(linker)?;
    host!(
        linker,
        "kiln_v1",
        "last_error",
        |caller, buf: u32, len: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let msg = ctx.last_error.as_bytes();
            let n = msg.len().min(len as usize);
            write_bytes(mem, buf, &msg[..n])?;
            Ok(write_u32(mem, out, msg.len() as u32)?)
        }
    );
    Ok(())
}

fn add_metadata_calls(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "kiln_v1",
        "stat",
        |caller, fd: u32, flags: u32, p: u32, plen: u32, out: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            let st = ctx
                .vfs
                .stat(dir.path(), &path(mem, p, plen)?, flags & FOLLOW != 0)?;
            Ok(write_stat(mem, out, &st)?)
        }
    );
    host!(linker, "kiln_v1", "fstat", |caller, fd: u32, out: u32| {
        let (mem, ctx) = split(&mut caller)?;
        let st = match &**ctx.fds.get(fd)? {
            Handle::Dir { dir, .. } => ctx.vfs.stat(b"/", dir.path(), true)?,
            h => h.as_file().ok_or(Errno::BADF)?.stat()?,
        };
        Ok(write_stat(mem, out, &st)?)
    });
    host!(
        linker,
        "kiln_v1",
        "chmod",
        |caller, fd: u32, flags: u32, p: u32, plen: u32, mode: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            Ok(ctx
                .vfs
                .chmod(dir.path(), &path(mem, p, plen)?, flags & FOLLOW != 0, mode)?)
        }
    );
    host!(linker, "kiln_v1", "fchmod", |caller, fd: u32, mode: u32| {
        let ctx = caller.data();
        match &**ctx.fds.get(fd)? {
            Handle::Dir { dir, .. } => Ok(ctx.vfs.chmod(b"/", dir.path(), true, mode)?),
            h => {
                let f = h.as_file().ok_or(Errno::BADF)?;
                Ok(f.chmod(ctx.vfs.identity().chmod_mode(&f.stat()?, mode & 0o7777)?)?)
            }
        }
    });
    host!(
        linker,
        "kiln_v1",
        "chown",
        |caller, fd: u32, flags: u32, p: u32, plen: u32, uid: i32, gid: i32| {
            let (mem, ctx) = split(&mut caller)?;
            let dir = ctx.dir(fd)?;
            Ok(ctx.vfs.chown(
                dir.path(),
                &path(mem, p, plen)?,
                flags & FOLLOW != 0,
                id(uid),
                id(gid),
            )?)
        }
    );
    host!(
        linker,
        "kiln_v1",
        "fchown",
        |caller, fd: u32, uid: i32, gid: i32| {
            let ctx = caller.data();
            match &**ctx.fds.get(fd)? {
                Handle::Dir { dir, .. } => {
                    Ok(ctx.vfs.chown(b"/", dir.path(), true, id(uid), id(gid))?)
                }
                h => {
                    let f = h.as_file().ok_or(Errno::BADF)?;
                    ctx.vfs
                        .identity()
                        .check_chown(&f.stat()?, id(uid), id(gid))?;
                    Ok(f.chown(id(uid), id(gid))?)
                }
            }
        }
    );
    Ok(())
}

/// `words` as consecutive little-endian `u32`s, as guest memory holds an array of them.
fn le_words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Who the process is and its file creation mask (see ABI.md).
fn add_identity_calls(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "kiln_v1",
        "identity",
        |caller, ids: u32, groups: u32, cap: u32, count: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let id = ctx.vfs.identity();
            write_bytes(mem, ids, &le_words(&[id.uid, id.gid]))?;
            let all = id.groups();
            write_bytes(mem, groups, &le_words(&all[..all.len().min(cap as usize)]))?;
            Ok(write_u32(mem, count, all.len() as u32)?)
        }
    );
    host!(linker, "kiln_v1", "umask", |caller, mask: i32, old: u32| {
        let (mem, ctx) = split(&mut caller)?;
        write_u32(mem, old, ctx.vfs.umask())?;
        if mask >= 0 {
            ctx.vfs = ctx.vfs.with_umask(mask as u32);
        }
        Ok(())
    });
    Ok(())
}

fn add_process_calls(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "kiln_v1",
        "pipe",
        |caller, out_r: u32, out_w: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let (r, w) = pipe();
            let rfd = ctx
                .fds
                .insert(Arc::new(Handle::stdio(Stdio::pipe_read(r))))?;
            let wfd = match ctx.fds.insert(Arc::new(Handle::stdio(Stdio::PipeWrite(w)))) {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = ctx.fds.close(rfd);
                    return Err(e.into());
                }
            };
            write_u32(mem, out_r, rfd)?;
            Ok(write_u32(mem, out_w, wfd)?)
        }
    );
    host!(
        linker,
        "kiln_v1",
        "spawn",
        |caller,
         argv: u32,
         argv_len: u32,
         env: u32,
         env_len: u32,
         cwd: u32,
         cwd_len: u32,
         fd0: i32,
         fd1: i32,
         fd2: i32,
         out_pid: u32| {
            let (mem, ctx) = split(&mut caller)?;
            let argv = nul_list(mem, argv, argv_len)?;
            if argv.is_empty() {
                return Err(fail(ctx, Errno::INVAL, "spawn: empty argv"));
            }
            let env = nul_list(mem, env, env_len)?
                .into_iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (kv, String::new()),
                })
                .collect();
            let cwd = if cwd_len == 0 {
                ctx.cwd.clone()
            } else {
                String::from_utf8(path(mem, cwd, cwd_len)?).map_err(|_| Errno::ILSEQ)?
            };
            let request = LaunchRequest {
                argv,
                env,
                cwd,
                stdin: stdio_of(ctx, fd0)?,
                stdout: stdio_of(ctx, fd1)?,
                stderr: stdio_of(ctx, fd2)?,
                limits: ctx.limits.clone(),
                network: ctx.network.clone(),
            };
            let pid = spawn_child(ctx, request)?;
            Ok(write_u32(mem, out_pid, pid)?)
        }
    );
    host!(
        linker,
        "kiln_v1",
        "wait",
        |caller, pid: u32, out_status: u32| {
            let child = caller
                .data_mut()
                .children
                .remove(&pid)
                .ok_or(Errno::CHILD)?;
            let result = child.join().unwrap_or_else(|_| {
                Err(RuntimeError::Spec {
                    program: format!("pid {pid}"),
                    reason: "child thread panicked".into(),
                })
            });
            let (mem, ctx) = split(&mut caller)?;
            let status = match result {
                Ok(s) => s.0,
                Err(e) => match e {
                    RuntimeError::Deadline { .. }
                    | RuntimeError::OutputLimit { .. }
                    | RuntimeError::MemoryLimit { .. }
                    | RuntimeError::ProcessLimit { .. } => return Err(HErr::Trap(e.into())),
                    RuntimeError::Load { .. } | RuntimeError::Spec { .. } => {
                        ctx.last_error = e.to_string();
                        127
                    }
                    other => {
                        ctx.last_error = other.to_string();
                        126
                    }
                },
            };
            Ok(write_u32(mem, out_status, u32::from(status))?)
        }
    );
    Ok(())
}

fn spawn_child(ctx: &mut Ctx, request: LaunchRequest) -> Result<u32, HErr> {
    let runtime = ctx.runtime.clone();
    let vfs = ctx.vfs.clone();
    let launcher = ctx.launcher.clone();
    let handle = std::thread::Builder::new()
        .name("kiln-child".into())
        .spawn(move || match launcher {
            Some(l) => l.launch(&runtime, &vfs, request),
            None => runtime.launch_default(&vfs, request),
        })
        .map_err(|e| fail(ctx, Errno::AGAIN, format!("spawn: {e}")))?;
    let pid = ctx.next_pid;
    ctx.next_pid += 1;
    ctx.children.insert(pid, handle);
    Ok(pid)
}

fn write_message(stdio: &Stdio, limits: &crate::process::Limits, msg: &str) {
    let _ = Handle::stdio(stdio.clone()).write(msg.as_bytes(), limits);
}

impl crate::engine::Runtime {
    /// Runs a spawned command without an embedder launcher: PATH lookup, bundled tools,
    /// shell-style statuses (127 not found, 126 cannot run).
    pub(crate) fn launch_default(
        &self,
        vfs: &crate::vfs::Vfs,
        req: LaunchRequest,
    ) -> Result<ExitStatus, RuntimeError> {
        use crate::resolve::Resolved;
        let name = req.argv[0].clone();
        let path_env = req
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or(crate::resolve::DEFAULT_PATH, |(_, v)| v.as_str());
        let program = match self.resolve_command(vfs, &name, path_env, &req.cwd) {
            Resolved::Module(p) => crate::Program::Path(p),
            Resolved::Bundled(t) => crate::Program::Bundled(t),
            Resolved::NotFound => {
                write_message(
                    &req.stderr,
                    &req.limits,
                    &format!("{name}: command not found\n"),
                );
                return Ok(ExitStatus(127));
            }
            Resolved::Script { path, .. } => {
                let msg = format!("{path}: scripts need the kiln shell to run\n");
                write_message(&req.stderr, &req.limits, &msg);
                return Ok(ExitStatus(126));
            }
            Resolved::NotWasm { path } => {
                let msg = format!("{path}: native executable; kiln runs only WebAssembly\n");
                write_message(&req.stderr, &req.limits, &msg);
                return Ok(ExitStatus(126));
            }
            Resolved::Denied { path } => {
                write_message(
                    &req.stderr,
                    &req.limits,
                    &format!("{path}: Permission denied\n"),
                );
                return Ok(ExitStatus(126));
            }
        };
        let spec = crate::ProcessSpec {
            program,
            argv: req.argv,
            env: req.env,
            cwd: req.cwd,
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
            limits: req.limits,
            network: req.network,
            launcher: None,
        };
        self.run(vfs, spec)
    }
}

struct HttpResponse {
    status: u16,
    headers: Vec<u8>,
    body: Box<dyn Read + Send>,
}

fn http_call(
    ctx: &Ctx,
    method: &str,
    url: &str,
    headers: &str,
    body: Vec<u8>,
) -> Result<HttpResponse, (Errno, String)> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| (Errno::INVAL, format!("bad URL {url:?}: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err((
                Errno::INVAL,
                format!("{url}: only http and https URLs are supported"),
            ));
        }
    }
    let host = uri.host().unwrap_or_default().to_owned();
    if !ctx.network.enabled {
        return Err((
            Errno::ACCES,
            "network access is disabled for this step (use RUN --network=default)".into(),
        ));
    }
    if !ctx.network.allows(&host) {
        return Err((
            Errno::ACCES,
            format!("host {host:?} is not in the allowed hosts list"),
        ));
    }
    let mut timeout = HTTP_TIMEOUT;
    if let Some(d) = ctx.limits.deadline {
        timeout = timeout.min(d.saturating_duration_since(Instant::now()));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut builder = ureq::http::Request::builder().method(method).uri(uri);
    for line in headers.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .split_once(':')
            .ok_or((Errno::INVAL, format!("bad header line {line:?}")))?;
        builder = builder.header(k.trim(), v.trim());
    }
    let request = builder
        .body(body)
        .map_err(|e| (Errno::INVAL, e.to_string()))?;
    let response = agent.run(request).map_err(|e| {
        let errno = match e {
            ureq::Error::Timeout(_) => Errno::TIMEDOUT,
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => Errno::HOSTUNREACH,
            _ => Errno::IO,
        };
        (errno, format!("{method} {url}: {e}"))
    })?;
    let status = response.status().as_u16();
    let mut head = Vec::new();
    for (k, v) in response.headers() {
        head.extend_from_slice(k.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v.as_bytes());
        head.push(b'\n');
    }
    Ok(HttpResponse {
        status,
        headers: head,
        body: Box::new(response.into_body().into_reader()),
    })
}

fn add_http(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "kiln_v1",
        "http_request",
        |caller,
         m: u32,
         mlen: u32,
         u: u32,
         ulen: u32,
         h: u32,
         hlen: u32,
         b: u32,
         blen: u32,
         out_status: u32,
         out_headers_fd: u32,
         out_body_fd: u32| {
            let (mem, ctx) = split(&mut caller)?;
            if blen > MAX_REQUEST_BODY || mlen > 32 || ulen > 16 << 10 || hlen > 1 << 20 {
                return Err(fail(ctx, Errno::TOOBIG, "http_request: request too large"));
            }
            let text =
                |p, l| String::from_utf8(slice(mem, p, l)?.to_vec()).map_err(|_| Errno::ILSEQ);
            let (method, url, headers) = (text(m, mlen)?, text(u, ulen)?, text(h, hlen)?);
            let body = slice(mem, b, blen)?.to_vec();
            let resp = http_call(ctx, &method, &url, &headers, body)
                .map_err(|(errno, msg)| fail(ctx, errno, msg))?;
            let hfd = ctx
                .fds
                .insert(Arc::new(Handle::stdio(Stdio::Bytes(resp.headers.into()))))?;
            let bfd = match ctx
                .fds
                .insert(Arc::new(Handle::Reader(Mutex::new(resp.body))))
            {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = ctx.fds.close(hfd);
                    return Err(e.into());
                }
            };
            write_u32(mem, out_status, u32::from(resp.status))?;
            write_u32(mem, out_headers_fd, hfd)?;
            Ok(write_u32(mem, out_body_fd, bfd)?)
        }
    );
    Ok(())
}
