//! The one error type of kiln-deb: each variant names what failed and on which input, so
//! the tools can print it as dpkg would (`dpkg: error processing archive ...`).

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    /// A deb822 text (control file, status, Packages) is malformed.
    #[error("parsing {what}, line {line}: {message}")]
    Syntax {
        what: String,
        line: usize,
        message: String,
    },

    /// A version string breaks Debian policy's syntax.
    #[error("version '{version}' has bad syntax: {reason}")]
    InvalidVersion {
        version: String,
        reason: &'static str,
    },

    /// A relationship field (Depends, Provides, ...) is malformed.
    #[error("'{text}': {reason}")]
    InvalidRelation { text: String, reason: &'static str },

    /// A `.deb` is not a valid Debian binary package.
    #[error("{archive}: {reason}")]
    Archive { archive: String, reason: String },

    /// An input-controlled size or count went over its bound.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge { what: String, limit: u64 },

    /// An archive or database path would land outside the root (`..`, through a symlink).
    #[error("unsafe path '{path}' in {archive}: {reason}")]
    UnsafePath {
        archive: String,
        path: String,
        reason: &'static str,
    },

    /// A paragraph lacks a field dpkg requires.
    #[error("package '{package}' has no {field} field")]
    MissingField {
        package: String,
        field: &'static str,
    },

    /// The operation names a package the database does not have (in a usable state).
    #[error("package '{package}' {reason}")]
    Package {
        package: String,
        reason: &'static str,
    },

    /// Unpacking would overwrite a file another package owns.
    #[error("trying to overwrite '{path}', which is also in package {owner}")]
    FileConflict { path: String, owner: String },

    /// A maintainer script exited non-zero (dpkg's wording for the status).
    #[error("{package}: {script} subprocess returned error exit status {status}")]
    Script {
        package: String,
        script: String,
        status: i32,
    },

    /// A valid input this crate does not handle (e.g. a bzip2 member).
    #[error("{what} is not supported")]
    Unsupported { what: String },
}

impl Error {
    /// Wraps an I/O error with the path it concerned.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
