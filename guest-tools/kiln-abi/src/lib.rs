//! Guest-side bindings to kiln's `kiln_v1` host import module (documented in
//! `runtime/ABI.md`): full stat, chmod, chown, spawning commands, identity and HTTP.
//!
//! On `wasm32-wasip1` these call the host imports. On other targets they are implemented
//! with the host OS (where it can) so the tools that use them can be unit-tested natively;
//! kiln never ships those builds. This crate is NOT a WASI p1 binding (std covers that).

use std::io;

#[cfg(not(target_os = "wasi"))]
mod native;
#[cfg(target_os = "wasi")]
mod wasi;

#[cfg(not(target_os = "wasi"))]
use native as imp;
#[cfg(target_os = "wasi")]
use wasi as imp;

/// File type bits of [`Stat::mode`] (the POSIX `S_IF*` values).
pub mod kind {
    pub const MASK: u32 = 0o170000;
    pub const SOCKET: u32 = 0o140000;
    pub const SYMLINK: u32 = 0o120000;
    pub const REGULAR: u32 = 0o100000;
    pub const BLOCK: u32 = 0o060000;
    pub const DIR: u32 = 0o040000;
    pub const CHAR: u32 = 0o020000;
    pub const FIFO: u32 = 0o010000;
}

/// A timestamp: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// Full POSIX metadata of a file (what p1's filestat lacks: mode, owner, rdev).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    /// Type and permission bits, as `st_mode`.
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        self.mode & kind::MASK == kind::DIR
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & kind::MASK == kind::SYMLINK
    }
    pub fn is_file(&self) -> bool {
        self.mode & kind::MASK == kind::REGULAR
    }
    /// Permission bits (0o7777).
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// Metadata of `path`; `follow` resolves a final symlink (stat) or not (lstat).
pub fn stat(path: &str, follow: bool) -> io::Result<Stat> {
    imp::stat(&absolute(path)?, follow)
}

/// Sets the permission bits (0o7777) of `path`.
pub fn chmod(path: &str, mode: u32, follow: bool) -> io::Result<()> {
    imp::chmod(&absolute(path)?, mode & 0o7777, follow)
}

/// Changes owner and/or group of `path` (`None` leaves it unchanged).
pub fn chown(path: &str, uid: Option<u32>, gid: Option<u32>, follow: bool) -> io::Result<()> {
    imp::chown(&absolute(path)?, uid, gid, follow)
}

/// The user and group the step runs as (Dockerfile `USER`).
pub fn identity() -> (u32, u32) {
    imp::identity()
}

/// The process's file creation mask (the step's `umask`; 022 unless the script set
/// another). Tools that give a new file its source's mode (`cp`) or a mode relative to
/// it (`chmod +w`, `mkdir -m`) apply it as Linux's open(2) and chmod(1) do.
pub fn umask() -> u32 {
    imp::umask()
}

/// The process's supplementary groups as `getgroups(2)` gives them (sorted; on kiln the
/// primary group is always among them, as BuildKit sets it).
pub fn groups() -> Vec<u32> {
    imp::groups()
}

/// How a spawned command's standard stream is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// Shares the caller's stream.
    Inherit,
    /// Reads as empty / discards.
    Null,
}

/// A command to run through the embedder (the shell: builtins, PATH, scripts).
#[derive(Debug, Clone)]
pub struct Command {
    pub argv: Vec<String>,
    /// `None` inherits the caller's environment.
    pub env: Option<Vec<(String, String)>>,
    /// `None` inherits the caller's working directory.
    pub cwd: Option<String>,
    pub stdin: Stdio,
}

impl Command {
    pub fn new(argv: Vec<String>) -> Command {
        Command {
            argv,
            env: None,
            cwd: None,
            stdin: Stdio::Inherit,
        }
    }
}

/// Runs `cmd` to completion and returns its exit status (127 not found, 126 not runnable,
/// 128+N killed).
pub fn run(cmd: &Command) -> io::Result<i32> {
    let (env, cwd) = cmd.place()?;
    imp::run(&cmd.argv, &env, &cwd, cmd.stdin)
}

impl Command {
    /// The environment and absolute working directory the command gets.
    fn place(&self) -> io::Result<(Vec<(String, String)>, String)> {
        let cwd = match &self.cwd {
            Some(dir) => absolute(dir)?,
            None => current_dir()?,
        };
        let mut env: Vec<(String, String)> = match &self.env {
            Some(env) => env.clone(),
            None => std::env::vars().collect(),
        };
        // Guests chdir to $PWD at startup (ABI.md), so it must name the child's directory.
        env.retain(|(k, _)| k != "PWD");
        env.push(("PWD".to_owned(), cwd.clone()));
        Ok((env, cwd))
    }
}

/// A running command whose standard output the caller reads (awk's `cmd | getline`).
pub struct Piped {
    /// The read end of the command's standard output.
    pub stdout: Box<dyn io::Read>,
    child: imp::Child,
}

impl Piped {
    /// Closes the caller's end of the pipe and waits for the command; its exit status.
    pub fn wait(self) -> io::Result<i32> {
        drop(self.stdout);
        imp::wait(self.child)
    }
}

/// Starts `cmd` with its standard output on a pipe the caller reads (an in-memory pipe
/// of the host on kiln, see `pipe` in ABI.md) and stderr shared.
pub fn spawn_piped(cmd: &Command) -> io::Result<Piped> {
    let (env, cwd) = cmd.place()?;
    let (stdout, child) = imp::spawn_piped(&cmd.argv, &env, &cwd, cmd.stdin)?;
    Ok(Piped { stdout, child })
}

/// A running command that reads what the caller writes and writes what the caller reads:
/// both its standard input and its standard output are pipes held by the caller (a
/// coprocess, as debconf's frontend runs a maintainer script); stderr is shared.
pub struct Coprocess {
    /// The write end of the command's standard input.
    pub stdin: Box<dyn io::Write>,
    /// The read end of the command's standard output.
    pub stdout: Box<dyn io::Read>,
    child: imp::Child,
}

impl Coprocess {
    /// Closes the caller's ends of both pipes and waits for the command; its exit status.
    pub fn wait(self) -> io::Result<i32> {
        drop(self.stdin);
        drop(self.stdout);
        imp::wait(self.child)
    }
}

/// Starts `cmd` as a [`Coprocess`] (`cmd.stdin` is ignored: stdin is the caller's pipe).
pub fn spawn_coprocess(cmd: &Command) -> io::Result<Coprocess> {
    let (env, cwd) = cmd.place()?;
    let (stdin, stdout, child) = imp::spawn_coprocess(&cmd.argv, &env, &cwd)?;
    Ok(Coprocess {
        stdin,
        stdout,
        child,
    })
}

pub mod http;

fn current_dir() -> io::Result<String> {
    Ok(std::env::current_dir()?.to_string_lossy().into_owned())
}

/// The host resolves paths from `/`: make relative paths absolute against the guest's
/// working directory (kept by wasi-libc, not visible to the host).
fn absolute(path: &str) -> io::Result<String> {
    if path.starts_with('/') {
        return Ok(path.to_owned());
    }
    if path.is_empty() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    let cwd = current_dir()?;
    Ok(if cwd.ends_with('/') {
        format!("{cwd}{path}")
    } else {
        format!("{cwd}/{path}")
    })
}
