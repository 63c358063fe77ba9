//! debconf for maintainer scripts, as `DEBIAN_FRONTEND=noninteractive` gives it on
//! Debian. A script that sources `/usr/share/debconf/confmodule` execs
//! `/usr/share/debconf/frontend` (a Perl program in the image, which kiln cannot run);
//! kiln resolves that path to its `debconf-frontend` tool, which does what debconf's does:
//! loads the database, loads the package's templates, runs the package's `config`
//! script before its `postinst` (and the script itself) as a coprocess speaking the
//! debconf protocol on its stdin and stdout, answers as the noninteractive frontend, and
//! saves the database where the image's own debconf reads it later.
//!
//! Everything here reads package and image data, which is untrusted: it runs inside the
//! sandbox as a guest tool, and every input is bounded.

pub mod db;
pub mod frontend;
pub mod model;
pub mod server;
pub mod templates;

use std::path::PathBuf;

/// What can go wrong running debconf.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {}", path.display(), crate::util::describe(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// A templates file debconf would refuse, in debconf's words.
    #[error("{0}")]
    Template(String),
    #[error("unable to run {program}: {}", crate::util::describe(source))]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to {program}: {}", crate::util::describe(source))]
    Pipe {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} sent a line longer than {limit} bytes")]
    LineTooLong { program: String, limit: usize },
}

/// Perl's `\s` (ASCII blanks; debconf reads bytes, so no Unicode spaces).
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}
