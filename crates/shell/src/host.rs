//! What the interpreter needs from the world: files, directories, command lookup and
//! process spawning. The real implementation is over kiln-runtime's virtual tree
//! ([`crate::RuntimeHost`]); tests may use one over a host directory.

use std::any::Any;
use std::io;
use std::sync::Arc;

use crate::io::Endpoint;

/// How to open a file for a redirection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenMode {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Create if missing.
    pub create: bool,
    /// Truncate to zero length.
    pub truncate: bool,
    /// Every write goes to the end.
    pub append: bool,
    /// Fail if it exists (`set -C`).
    pub exclusive: bool,
}

/// Kind of a filesystem object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (only from a no-follow stat).
    Symlink,
    /// Named pipe.
    Fifo,
    /// Socket.
    Socket,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
}

/// What `test` and `cd` need to know about a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// Object kind.
    pub kind: FileKind,
    /// Permission bits (0o7777).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Device and inode, for `-ef`.
    pub ino: u64,
}

/// A program the host found and can run; opaque to the shell.
#[derive(Clone)]
pub struct Program {
    /// Path or tool name, for messages and `command -v`.
    pub path: String,
    /// Host-specific handle (e.g. a compiled module).
    pub handle: Arc<dyn Any + Send + Sync>,
}

/// Result of looking a command name up on `PATH`.
#[derive(Clone)]
pub enum Resolved {
    /// A runnable program.
    Program(Program),
    /// A `#!` script: run `interpreter [arg] path args...`.
    Script {
        /// Script path.
        path: String,
        /// Interpreter path from the `#!` line.
        interpreter: String,
        /// Optional single interpreter argument.
        arg: Option<String>,
    },
    /// A native executable (ELF, Mach-O, PE) kiln cannot run.
    NotWasm(String),
    /// A file named by its path that this process may not execute (`EACCES`).
    Denied(String),
    /// Nothing by that name.
    NotFound,
}

/// A process to run to completion.
pub struct Spawn<'a> {
    /// What to run.
    pub program: &'a Program,
    /// Arguments, `argv[0]` included.
    pub argv: &'a [String],
    /// Environment, sorted by name.
    pub env: &'a [(String, String)],
    /// Working directory (absolute).
    pub cwd: &'a str,
    /// stdin, stdout, stderr.
    pub stdio: [Endpoint; 3],
    /// The shell's descriptors 3 to 9, which the program cannot see (a WASI module's
    /// preopens are numbered from 3) but hands on to the commands it spawns, as a native
    /// process passes on the descriptors it inherited: `exec 3>&1; xargs sh -c '… >&3'`.
    pub passed: Vec<(i32, Endpoint)>,
    /// File creation mask.
    pub umask: u32,
}

/// A place in the host's process budget (see [`Host::enter_process`]).
pub type ProcessToken = Box<dyn Any + Send>;

/// The interpreter's view of the step: see the module docs. Paths are absolute.
pub trait Host: Send + Sync {
    /// Opens (or creates with mode `0o666 & !umask`) a file.
    fn open(&self, path: &str, mode: OpenMode, umask: u32) -> io::Result<Endpoint>;
    /// Stats a path, following symlinks or not.
    fn stat(&self, path: &str, follow: bool) -> io::Result<FileStat>;
    /// Names in a directory, sorted, without `.` and `..`.
    fn read_dir(&self, path: &str) -> io::Result<Vec<String>>;
    /// Reads a whole (small) file, for `.` and `#!` scripts.
    fn read_file(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Finds a command: `name` has no `/` and is searched on `path_var`, or is a path.
    fn resolve(&self, name: &str, path_var: &str, cwd: &str) -> Resolved;
    /// Runs a program to completion and returns its exit status.
    fn spawn(&self, spawn: Spawn<'_>) -> io::Result<i32>;
    /// True once the step's time limit has passed or its build was cancelled: the
    /// interpreter stops looping then, since builtin-only loops never reach the
    /// runtime's own checks.
    fn deadline_passed(&self) -> bool {
        false
    }
    /// Takes a place in the step's process budget for a shell thread (pipeline stage,
    /// background job), held until the returned token is dropped. `Ok(None)`: this host
    /// has no budget of its own (the shell still bounds its threads). `Err` carries the
    /// host's process limit.
    fn enter_process(&self) -> Result<Option<ProcessToken>, u32> {
        Ok(None)
    }
    /// A new pipe (reader, writer) that programs can use directly.
    fn pipe(&self) -> (Endpoint, Endpoint) {
        crate::io::pipe()
    }
}
