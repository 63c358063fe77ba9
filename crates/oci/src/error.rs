use std::path::PathBuf;

/// Everything that can go wrong in kiln-oci. Messages name the object (digest, path, URL)
/// so a user can tell which input was bad.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O error while {context}: {source}")]
    Stream {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid digest {0:?}: {1}")]
    InvalidDigest(String, &'static str),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} not found")]
    BlobNotFound(String),
    #[error("{what} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("image {0:?} not found")]
    ImageNotFound(String),
    #[error("no image for platform {wanted} in {what} (available: {available})")]
    PlatformNotFound {
        wanted: String,
        what: String,
        available: String,
    },
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("registry error from {url}: {message}")]
    Registry { url: String, message: String },
    #[error("authentication failed for {registry}: {reason}")]
    Auth { registry: String, reason: String },
}

impl OciError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OciError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn stream(context: impl Into<String>, source: std::io::Error) -> Self {
        OciError::Stream {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        OciError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        OciError::Json {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T, E = OciError> = std::result::Result<T, E>;
