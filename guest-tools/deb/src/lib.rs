//! kiln-deb: the Debian binary package format and dpkg's on-disk database, as a library
//! for kiln's guest tools (`dpkg`, `apt-get` in `kiln-pkg.wasm`).
//!
//! What it is:
//! - [`control`]: deb822 paragraphs (control files, `status`, `Packages`), parsed and
//!   written back byte for byte as dpkg writes them;
//! - [`version`]: Debian versions with dpkg's exact ordering;
//! - [`relation`]: relationship fields (`Depends`, `Pre-Depends`, `Provides`, ...);
//! - [`archive`]: reading a `.deb` (ar, then `control.tar` and `data.tar` compressed with
//!   xz, zstd, gzip or nothing; pure-Rust decoders only, so it builds for wasm32-wasip1);
//! - [`db`]: `/var/lib/dpkg/status` and `info/<pkg>.*`, loaded and written as dpkg does;
//! - [`ops`]: unpack, configure, remove and purge of one package into a root directory;
//! - [`statoverride`]: the owner and mode overrides dpkg applies when it unpacks.
//!
//! What it is not: a resolver or a downloader (that is `kiln-apt`), nor a maintainer script
//! interpreter: scripts are run through [`ops::ScriptRunner`], which the binary implements,
//! so this crate stays natively testable. Nothing here is specific to WASI.
//!
//! Every input (a `.deb`, a `status` file) is treated as hostile: sizes and counts are
//! bounded by named constants and nothing is ever written outside the root.

pub mod archive;
pub mod compress;
pub mod control;
pub mod db;
mod error;
pub mod ops;
mod place;
pub mod relation;
pub mod statoverride;
pub mod version;

pub use error::{Error, Result};
