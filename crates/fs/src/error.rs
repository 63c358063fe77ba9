use std::io;
use std::path::PathBuf;

/// Errors of filesystem operations. The variants mirror POSIX errno values so a
/// WASI host can map them one to one (see [`FsError::errno`]).
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("too many levels of symbolic links")]
    Loop,
    #[error("invalid argument")]
    Invalid,
    #[error("file name too long")]
    NameTooLong,
    #[error("operation not permitted")]
    NotPermitted,
    #[error("no such extended attribute")]
    NoAttr,
    #[error("file too large")]
    TooBig,
    #[error("unknown inode {0}")]
    BadIno(u64),
    #[error("layer entry {entry:?}: {reason}")]
    Layer { entry: String, reason: String },
    /// An encoded snapshot (`Snapshot::decode`) that is damaged or names a missing blob.
    #[error("snapshot record: {reason}")]
    Record { reason: String },
    #[error("content store {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "disk quota of {limit} bytes for one step exceeded: the step wrote (or would store) more file data than that (raise it with kiln build --disk-quota BYTES)"
    )]
    DiskQuota { limit: u64 },
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl FsError {
    /// The Linux errno number for this error. WASI errno numbers differ; the
    /// runtime maps these.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => 2,
            FsError::Exists => 17,
            FsError::NotDir => 20,
            FsError::IsDir => 21,
            FsError::NotEmpty => 39,
            FsError::Loop => 40,
            FsError::Invalid | FsError::Layer { .. } | FsError::Record { .. } => 22,
            FsError::NameTooLong => 36,
            FsError::NotPermitted => 1,
            FsError::NoAttr => 61,
            FsError::TooBig => 27,
            FsError::BadIno(_) => 9,
            FsError::DiskQuota { .. } => 122,
            FsError::Store { .. } | FsError::Io(_) => 5,
        }
    }

    pub(crate) fn layer(entry: &[u8], reason: impl Into<String>) -> FsError {
        FsError::Layer {
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = FsError> = std::result::Result<T, E>;
