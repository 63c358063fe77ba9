//! The `kiln_v1` imports (runtime/ABI.md). Every call returns a WASI errno (0 = success);
//! `last_error` holds the host's explanation of the last failure.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::OnceLock;

use crate::http::{HttpError, Request, Response};
use crate::{Stat, Stdio, Time};

#[link(wasm_import_module = "kiln_v1")]
unsafe extern "C" {
    #[link_name = "stat"]
    fn kiln_stat(fd: u32, flags: u32, path: *const u8, path_len: u32, out: *mut u8) -> i32;
    #[link_name = "chmod"]
    fn kiln_chmod(fd: u32, flags: u32, path: *const u8, path_len: u32, mode: u32) -> i32;
    #[link_name = "chown"]
    fn kiln_chown(fd: u32, flags: u32, path: *const u8, path_len: u32, uid: i32, gid: i32) -> i32;
    #[link_name = "spawn"]
    #[allow(clippy::too_many_arguments)]
    fn kiln_spawn(
        argv: *const u8,
        argv_len: u32,
        env: *const u8,
        env_len: u32,
        cwd: *const u8,
        cwd_len: u32,
        fd0: i32,
        fd1: i32,
        fd2: i32,
        out_pid: *mut u32,
    ) -> i32;
    #[link_name = "wait"]
    fn kiln_wait(pid: u32, out_status: *mut u32) -> i32;
    #[link_name = "pipe"]
    fn kiln_pipe(out_read: *mut u32, out_write: *mut u32) -> i32;
    #[link_name = "http_request"]
    #[allow(clippy::too_many_arguments)]
    fn kiln_http_request(
        method: *const u8,
        method_len: u32,
        url: *const u8,
        url_len: u32,
        headers: *const u8,
        headers_len: u32,
        body: *const u8,
        body_len: u32,
        out_status: *mut u32,
        out_headers_fd: *mut u32,
        out_body_fd: *mut u32,
    ) -> i32;
    #[link_name = "identity"]
    fn kiln_identity(ids: *mut u32, groups: *mut u32, cap: u32, count: *mut u32) -> i32;
    #[link_name = "umask"]
    fn kiln_umask(mask: i32, old: *mut u32) -> i32;
    #[link_name = "last_error"]
    fn kiln_last_error(buf: *mut u8, len: u32, out_len: *mut u32) -> i32;
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn fd_prestat_get(fd: u32, out: *mut u32) -> u16;
    fn fd_prestat_dir_name(fd: u32, buf: *mut u8, len: u32) -> u16;
}

const FOLLOW: u32 = 1;
const STAT_SIZE: usize = 80;
const ERRNO_ACCES: i32 = 2;
const ERRNO_HOSTUNREACH: i32 = 23;
const ERRNO_INVAL: i32 = 28;
const ERRNO_TIMEDOUT: i32 = 73;
const ERRNO_BADF: i32 = 8;

/// The preopened directory fd for `/` (kiln preopens exactly that one).
fn root_fd() -> io::Result<u32> {
    static ROOT: OnceLock<Option<u32>> = OnceLock::new();
    let found = ROOT.get_or_init(|| {
        (3..64u32).find(|&fd| {
            let mut prestat = [0u32; 2];
            // SAFETY: the buffer is the 8-byte prestat struct the call writes.
            if unsafe { fd_prestat_get(fd, prestat.as_mut_ptr()) } != 0 || prestat[0] & 0xff != 0 {
                return false;
            }
            let mut name = vec![0u8; prestat[1] as usize];
            // SAFETY: `name` has the length the host reported.
            let ok = unsafe { fd_prestat_dir_name(fd, name.as_mut_ptr(), name.len() as u32) } == 0;
            ok && name.strip_suffix(b"\0").unwrap_or(&name) == b"/"
        })
    });
    found.ok_or_else(|| io::Error::other("no preopened `/` directory"))
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn check(code: i32) -> io::Result<()> {
    if code == 0 { Ok(()) } else { Err(errno(code)) }
}

/// The host's description of the last failed call.
fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    let mut len = 0u32;
    // SAFETY: `buf` is writable for its length; `len` receives the full message length.
    if unsafe { kiln_last_error(buf.as_mut_ptr(), buf.len() as u32, &mut len) } != 0 {
        return String::new();
    }
    buf.truncate((len as usize).min(buf.len()));
    String::from_utf8_lossy(&buf).into_owned()
}

/// Absolute path -> path relative to the `/` preopen.
fn rel(path: &str) -> &str {
    let r = path.trim_start_matches('/');
    if r.is_empty() { "." } else { r }
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn time(ns: u64) -> Time {
    Time {
        sec: (ns / 1_000_000_000) as i64,
        nsec: (ns % 1_000_000_000) as u32,
    }
}

pub fn stat(path: &str, follow: bool) -> io::Result<Stat> {
    let fd = root_fd()?;
    let p = rel(path);
    let mut out = [0u8; STAT_SIZE];
    let flags = if follow { FOLLOW } else { 0 };
    // SAFETY: path and out buffers are valid for the lengths passed.
    check(unsafe { kiln_stat(fd, flags, p.as_ptr(), p.len() as u32, out.as_mut_ptr()) })?;
    Ok(Stat {
        dev: le_u64(&out, 0),
        ino: le_u64(&out, 8),
        nlink: le_u64(&out, 16),
        size: le_u64(&out, 24),
        rdev: le_u64(&out, 32),
        mode: le_u32(&out, 40),
        uid: le_u32(&out, 44),
        gid: le_u32(&out, 48),
        atime: time(le_u64(&out, 56)),
        mtime: time(le_u64(&out, 64)),
        ctime: time(le_u64(&out, 72)),
    })
}

pub fn chmod(path: &str, mode: u32, follow: bool) -> io::Result<()> {
    let fd = root_fd()?;
    let p = rel(path);
    let flags = if follow { FOLLOW } else { 0 };
    // SAFETY: the path buffer is valid for its length.
    check(unsafe { kiln_chmod(fd, flags, p.as_ptr(), p.len() as u32, mode) })
}

pub fn chown(path: &str, uid: Option<u32>, gid: Option<u32>, follow: bool) -> io::Result<()> {
    let fd = root_fd()?;
    let p = rel(path);
    let flags = if follow { FOLLOW } else { 0 };
    let id = |v: Option<u32>| v.map_or(-1, |v| v as i32);
    // SAFETY: the path buffer is valid for its length.
    check(unsafe { kiln_chown(fd, flags, p.as_ptr(), p.len() as u32, id(uid), id(gid)) })
}

/// uid, gid and the supplementary groups, from `kiln_v1.identity`.
fn ids() -> ([u32; 2], Vec<u32>) {
    let mut ids = [0u32; 2];
    let mut groups = vec![0u32; 32];
    loop {
        let mut count = 0u32;
        // SAFETY: `ids` holds 2 words and `groups` `groups.len()` words, as announced.
        let rc = unsafe {
            kiln_identity(
                ids.as_mut_ptr(),
                groups.as_mut_ptr(),
                groups.len() as u32,
                &mut count,
            )
        };
        if rc != 0 {
            // A host without the import's answer: the process is whoever WASI says, root.
            return ([0, 0], vec![0]);
        }
        if count as usize <= groups.len() {
            groups.truncate(count as usize);
            return (ids, groups);
        }
        groups.resize(count as usize, 0);
    }
}

pub fn identity() -> (u32, u32) {
    let ([uid, gid], _) = ids();
    (uid, gid)
}

pub fn groups() -> Vec<u32> {
    ids().1
}

/// The default when the host cannot say: BuildKit's (runc's) umask.
const DEFAULT_UMASK: u32 = 0o022;

pub fn umask() -> u32 {
    let mut old = DEFAULT_UMASK;
    // -1 reads the mask without changing it.
    // SAFETY: `old` is a valid, writable u32 for the call.
    let rc = unsafe { kiln_umask(-1, &mut old) };
    if rc == 0 { old & 0o777 } else { DEFAULT_UMASK }
}

fn nul_list<'a>(items: impl Iterator<Item = &'a str>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for item in items {
        if item.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "argument contains a NUL byte",
            ));
        }
        out.extend_from_slice(item.as_bytes());
        out.push(0);
    }
    Ok(out)
}

pub fn run(argv: &[String], env: &[(String, String)], cwd: &str, stdin: Stdio) -> io::Result<i32> {
    wait(spawn(argv, env, cwd, stdin_fd(stdin), 1)?)
}

/// The guest fd a spawned command's stdin is: the caller's own, or -1 for /dev/null.
fn stdin_fd(stdin: Stdio) -> i32 {
    if stdin == Stdio::Null { -1 } else { 0 }
}

/// Starts `argv` with stdin on the guest's fd `fd0` and stdout on `stdout` (stderr
/// shared); its pid.
fn spawn(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    fd0: i32,
    stdout: i32,
) -> io::Result<Child> {
    let argv_buf = nul_list(argv.iter().map(String::as_str))?;
    let env_strings: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let env_buf = nul_list(env_strings.iter().map(String::as_str))?;
    let mut pid = 0u32;
    // SAFETY: every buffer is valid for the length passed; `pid` is writable.
    let rc = unsafe {
        kiln_spawn(
            argv_buf.as_ptr(),
            argv_buf.len() as u32,
            env_buf.as_ptr(),
            env_buf.len() as u32,
            cwd.as_ptr(),
            cwd.len() as u32,
            fd0,
            stdout,
            2,
            &mut pid,
        )
    };
    if rc != 0 {
        return Err(io::Error::new(errno(rc).kind(), last_error()));
    }
    Ok(pid)
}

/// A spawned process, by the pid `spawn` gave.
pub type Child = u32;

pub fn spawn_piped(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    stdin: Stdio,
) -> io::Result<(Box<dyn io::Read>, Child)> {
    let (reader, writer) = pipe()?;
    let pid = spawn(argv, env, cwd, stdin_fd(stdin), writer.as_raw_fd())?;
    // The child holds its own copy of the write end: the reader sees EOF when it exits.
    drop(writer);
    Ok((Box::new(reader), pid))
}

/// A new host pipe: (read end, write end), owned by this process.
fn pipe() -> io::Result<(File, File)> {
    let (mut r, mut w) = (0u32, 0u32);
    // SAFETY: both out-pointers are writable.
    check(unsafe { kiln_pipe(&mut r, &mut w) })?;
    // SAFETY: the host just opened both fds for this process, which owns them now.
    Ok(unsafe { (File::from_raw_fd(r as i32), File::from_raw_fd(w as i32)) })
}

/// A coprocess's stdin (written by the caller), its stdout (read) and the child.
pub type CoprocessEnds = (Box<dyn io::Write>, Box<dyn io::Read>, Child);

pub fn spawn_coprocess(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
) -> io::Result<CoprocessEnds> {
    let (child_in, to_child) = pipe()?;
    let (from_child, child_out) = pipe()?;
    let pid = spawn(argv, env, cwd, child_in.as_raw_fd(), child_out.as_raw_fd())?;
    // The child holds its own copies of its ends: each side sees EOF when the other
    // closes or exits.
    drop((child_in, child_out));
    Ok((Box::new(to_child), Box::new(from_child), pid))
}

pub fn wait(pid: Child) -> io::Result<i32> {
    let mut status = 0u32;
    // SAFETY: `status` is writable.
    check(unsafe { kiln_wait(pid, &mut status) })?;
    Ok(status as i32)
}

/// A response body: a host fd read with fd_read.
pub struct Body(File);

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

pub fn http_request(req: &Request) -> Result<Response, HttpError> {
    let mut headers = String::new();
    for (name, value) in &req.headers {
        if name.contains(['\n', '\r', ':']) || value.contains(['\n', '\r']) {
            return Err(HttpError::BadUrl(format!("invalid header {name:?}")));
        }
        headers.push_str(name);
        headers.push_str(": ");
        headers.push_str(value);
        headers.push('\n');
    }
    let (mut status, mut hfd, mut bfd) = (0u32, 0u32, 0u32);
    // SAFETY: every buffer is valid for the length passed; outputs are writable.
    let rc = unsafe {
        kiln_http_request(
            req.method.as_ptr(),
            req.method.len() as u32,
            req.url.as_ptr(),
            req.url.len() as u32,
            headers.as_ptr(),
            headers.len() as u32,
            req.body.as_ptr(),
            req.body.len() as u32,
            &mut status,
            &mut hfd,
            &mut bfd,
        )
    };
    if rc != 0 {
        let msg = last_error();
        return Err(match rc {
            ERRNO_ACCES => HttpError::NetworkDisabled(msg),
            ERRNO_HOSTUNREACH
                if msg.to_ascii_lowercase().contains("not found") || msg.contains("resolve") =>
            {
                HttpError::Resolve(msg)
            }
            ERRNO_HOSTUNREACH => HttpError::Connect(msg),
            ERRNO_TIMEDOUT => HttpError::Timeout(msg),
            ERRNO_INVAL => HttpError::BadUrl(msg),
            ERRNO_BADF => HttpError::Other(msg),
            _ => HttpError::Other(if msg.is_empty() {
                errno(rc).to_string()
            } else {
                msg
            }),
        });
    }
    // SAFETY: the host just created these fds for us; we own them from here on.
    let (mut head_file, body_file) =
        unsafe { (File::from_raw_fd(hfd as i32), File::from_raw_fd(bfd as i32)) };
    let mut head = String::new();
    head_file
        .read_to_string(&mut head)
        .map_err(|e| HttpError::Other(e.to_string()))?;
    let headers = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status: status as u16,
        headers,
        body: Body(body_file),
    })
}
