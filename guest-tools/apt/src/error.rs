//! The crate's one error type. Display texts are apt's own where apt has one, without the
//! leading `E: ` (the front end adds it, as apt does for every error line).

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    /// A line of a one-line sources.list that apt refuses (apt names the entry number).
    #[error("Malformed entry {line} in list file {} ({what})", file.display())]
    MalformedList {
        file: PathBuf,
        line: usize,
        what: String,
    },

    /// A deb822 `.sources` stanza that apt refuses.
    #[error("Malformed entry {stanza} in sources file {} ({what})", file.display())]
    MalformedSources {
        file: PathBuf,
        stanza: usize,
        what: String,
    },

    /// A keyring file that is neither an OpenPGP keyring nor an armored key.
    #[error("The key(s) in the keyring {} are ignored as the file is not readable ({why})", file.display())]
    BadKeyring { file: PathBuf, why: String },

    /// `file` is `InRelease` or `Release`, as apt names the one that failed.
    #[error("The repository '{uri} {suite} {file}' is not signed.")]
    NotSigned {
        uri: String,
        suite: String,
        file: &'static str,
    },

    /// `before`: the lists held a Release for it from an earlier update.
    #[error("The repository '{uri} {suite} Release' {} a Release file.", if *before { "no longer has" } else { "does not have" })]
    NoReleaseFile {
        uri: String,
        suite: String,
        before: bool,
    },

    /// No trusted key made the signature (apt: `NO_PUBKEY <long key id>`).
    #[error(
        "The following signatures couldn't be verified because the public key is not available: NO_PUBKEY {key_id}"
    )]
    NoPubkey { key_id: String },

    /// A trusted key made the signature but it does not match the data.
    #[error("The following signatures were invalid: BADSIG {key_id}")]
    BadSig { key_id: String },

    /// A signature that is not even parseable as OpenPGP.
    #[error("The signature of '{uri} {suite} Release' could not be read: {why}")]
    BadSignatureData {
        uri: String,
        suite: String,
        why: String,
    },

    #[error("Release file {url} is malformed: {what}")]
    MalformedRelease { url: String, what: String },

    /// The index (or archive) did not have the size and SHA256 the Release promises.
    #[error(
        "Failed to fetch {url}  Hash Sum mismatch\n   Hashes of expected file:\n    - Filesize:{expected_size} [weak]\n    - SHA256:{expected_sha256}\n   Hashes of received file:\n    - SHA256:{got_sha256}\n    - Filesize:{got_size} [weak]"
    )]
    HashSumMismatch {
        url: String,
        expected_sha256: String,
        expected_size: u64,
        got_sha256: String,
        got_size: u64,
    },

    /// A transfer failed (no response, or a status other than 200).
    #[error("Failed to fetch {url}  {why}")]
    Fetch { url: String, why: String },

    /// A download or decompressed index exceeded a bound.
    #[error("Failed to fetch {url}  File is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },

    #[error("Failed to decompress {url}: {why}")]
    Decompress { url: String, why: String },

    /// A Packages paragraph without the fields an index entry needs.
    #[error("Problem parsing {}: {what}", file.display())]
    MalformedIndex { file: PathBuf, what: String },

    /// The lists lock cannot be opened for writing (not root): apt's two lines.
    #[error(
        "Could not open lock file {} - open ({errno}: {why})\nE: Unable to lock directory {}/",
        path.display(),
        path.parent().unwrap_or(path).display()
    )]
    LockFailed {
        path: PathBuf,
        errno: i32,
        why: String,
    },

    /// `update` finished but some sources failed (each was printed as `Err:`/`W:`).
    #[error(
        "Some index files failed to download. They have been ignored, or old ones used instead."
    )]
    SomeFailed,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// [`Error::LockFailed`] from the error opening `path`.
    pub fn lock_failed(path: impl Into<PathBuf>, e: &io::Error) -> Error {
        let text = e.to_string();
        let why = text.split(" (os error").next().unwrap_or(&text).to_string();
        Error::LockFailed {
            path: path.into(),
            errno: e.raw_os_error().unwrap_or(0),
            why,
        }
    }
}
