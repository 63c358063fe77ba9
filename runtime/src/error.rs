//! Error types: [`Errno`] for guest-visible failures (WASI p1 numbering), and
//! [`RuntimeError`] for why a process could not run or was stopped by a limit.

use std::fmt;

use kiln_fs::FsError;

/// A WASI preview 1 errno value. The Vfs and the p1 host both speak it, so the shell sees
/// exactly the error a guest would.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub u16);

macro_rules! errnos {
    ($($name:ident = $num:expr, $msg:expr;)*) => {
        impl Errno {
            $(pub const $name: Errno = Errno($num);)*

            /// The POSIX-style message (`No such file or directory`).
            pub fn message(self) -> &'static str {
                match self.0 {
                    $($num => $msg,)*
                    _ => "Unknown error",
                }
            }

            /// The symbolic name (`ENOENT`).
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($num => concat!("E", stringify!($name)),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos! {
    TOOBIG = 1, "Argument list too long";
    ACCES = 2, "Permission denied";
    AGAIN = 6, "Resource temporarily unavailable";
    BADF = 8, "Bad file descriptor";
    BUSY = 10, "Device or resource busy";
    CHILD = 12, "No child processes";
    DQUOT = 19, "Disk quota exceeded";
    EXIST = 20, "File exists";
    FAULT = 21, "Bad address";
    FBIG = 22, "File too large";
    HOSTUNREACH = 23, "No route to host";
    ILSEQ = 25, "Illegal byte sequence";
    INTR = 27, "Interrupted system call";
    INVAL = 28, "Invalid argument";
    IO = 29, "Input/output error";
    ISDIR = 31, "Is a directory";
    LOOP = 32, "Too many levels of symbolic links";
    MFILE = 33, "Too many open files";
    MLINK = 34, "Too many links";
    NAMETOOLONG = 37, "File name too long";
    NOENT = 44, "No such file or directory";
    NOEXEC = 45, "Exec format error";
    NOMEM = 48, "Cannot allocate memory";
    NOSPC = 51, "No space left on device";
    NOSYS = 52, "Function not implemented";
    NOTDIR = 54, "Not a directory";
    NOTEMPTY = 55, "Directory not empty";
    NOTSOCK = 57, "Not a socket";
    NOTSUP = 58, "Operation not supported";
    NOTTY = 59, "Not a tty";
    OVERFLOW = 61, "Value too large for defined data type";
    PERM = 63, "Operation not permitted";
    PIPE = 64, "Broken pipe";
    RANGE = 68, "Result out of range";
    ROFS = 69, "Read-only file system";
    SPIPE = 70, "Illegal seek";
    TIMEDOUT = 73, "Connection timed out";
    XDEV = 75, "Invalid cross-device link";
    NOTCAPABLE = 76, "Capabilities insufficient";
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Errno {}

impl From<FsError> for Errno {
    fn from(e: FsError) -> Errno {
        match e {
            FsError::NotFound => Errno::NOENT,
            FsError::Exists => Errno::EXIST,
            FsError::NotDir => Errno::NOTDIR,
            FsError::IsDir => Errno::ISDIR,
            FsError::NotEmpty => Errno::NOTEMPTY,
            FsError::Loop => Errno::LOOP,
            FsError::Invalid => Errno::INVAL,
            FsError::NameTooLong => Errno::NAMETOOLONG,
            FsError::NotPermitted => Errno::PERM,
            FsError::TooBig => Errno::FBIG,
            FsError::BadIno(_) => Errno::BADF,
            FsError::DiskQuota { .. } => Errno::DQUOT,
            _ => Errno::IO,
        }
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound => Errno::NOENT,
            K::PermissionDenied => Errno::ACCES,
            K::AlreadyExists => Errno::EXIST,
            K::InvalidInput | K::InvalidFilename => Errno::INVAL,
            K::NotADirectory => Errno::NOTDIR,
            K::IsADirectory => Errno::ISDIR,
            K::DirectoryNotEmpty => Errno::NOTEMPTY,
            K::ReadOnlyFilesystem => Errno::ROFS,
            K::BrokenPipe => Errno::PIPE,
            K::TimedOut => Errno::TIMEDOUT,
            _ => Errno::IO,
        }
    }
}

/// Why a process did not run to an exit status.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{program}: not a WebAssembly module and cannot run in kiln: {reason}")]
    NotWasm { program: String, reason: String },
    #[error("{program}: cannot compile WebAssembly module: {reason}")]
    Compile { program: String, reason: String },
    #[error("{program}: cannot instantiate: {reason}")]
    Instantiate { program: String, reason: String },
    #[error("{program}: cannot read program: {errno}")]
    Load { program: String, errno: Errno },
    #[error("{program}: wasm trap: {reason}")]
    Trap { program: String, reason: String },
    #[error(
        "{program}: memory limit of {limit} bytes exceeded (raise it with kiln build --memory BYTES)"
    )]
    MemoryLimit { program: String, limit: u64 },
    #[error(
        "{program}: time limit exceeded: the step deadline passed (raise it with kiln build --step-timeout DURATION)"
    )]
    Deadline { program: String },
    #[error("{program}: stopped: the build was cancelled")]
    Cancelled { program: String },
    #[error(
        "{program}: output limit of {limit} bytes exceeded on stdout/stderr (a fixed limit of kiln: redirect large output to a file)"
    )]
    OutputLimit { program: String, limit: u64 },
    #[error(
        "{program}: process limit of {limit} processes exceeded (a fixed limit of kiln: does the script spawn without end?)"
    )]
    ProcessLimit { program: String, limit: u32 },
    #[error("{program}: bad process spec: {reason}")]
    Spec { program: String, reason: String },
    #[error("compiled-module cache {path}: {reason}")]
    Cache { path: String, reason: String },
    #[error("compiled-module cache key: {0}")]
    CacheKey(#[source] kiln_fs::KeyError),
}
