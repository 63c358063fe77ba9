//! `apt-get update`: for every source, the signed Release, then its Packages indexes,
//! stored under `/var/lib/apt/lists` with apt's names and progress lines.

use std::io::Write;
use std::path::Path;

use crate::fetch::Transport;
use crate::{Error, Result};

/// What the front end decides.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The native architecture (`dpkg --print-architecture` of the image).
    pub arch: String,
    /// `-q` count: 1 drops progress, 2 drops everything but errors (as apt-get -qq).
    pub quiet: u8,
}

/// What an update did.
#[derive(Debug, Clone, Default)]
pub struct UpdateReport {
    /// Bytes downloaded (apt's `Fetched N kB`).
    pub fetched: u64,
    /// Lines apt would print as `W:` after the run.
    pub warnings: Vec<String>,
}

/// Runs `apt-get update` on the image at `root`, writing apt's lines to `out`.
pub fn run(
    root: &Path,
    opts: &Options,
    net: &mut dyn Transport,
    out: &mut dyn Write,
) -> Result<UpdateReport> {
    let _ = (root, opts, net, out);
    Err(Error::SomeFailed)
}
