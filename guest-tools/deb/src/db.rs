//! dpkg's database under `<root>/var/lib/dpkg`: the `status` file and `info/<pkg>.*`,
//! read and written exactly as dpkg writes them.

use std::path::{Path, PathBuf};

use crate::control::Paragraph;
use crate::{Error, Result};

/// dpkg's admin directory, relative to the root.
pub const ADMIN_DIR: &str = "var/lib/dpkg";

/// The first word of `Status:`: what the user wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Unknown,
    Install,
    Hold,
    Deinstall,
    Purge,
}

/// The second word of `Status:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Ok,
    ReinstReq,
}

/// The third word of `Status:`: where the package is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    NotInstalled,
    ConfigFiles,
    HalfInstalled,
    Unpacked,
    HalfConfigured,
    TriggersAwaited,
    TriggersPending,
    Installed,
}

/// A parsed `Status:` line (`install ok installed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub want: Want,
    pub flag: Flag,
    pub state: State,
}

/// One line of a `Conffiles:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conffile {
    pub path: String,
    /// md5 in hex, or `newconffile` while not yet configured.
    pub hash: String,
    pub obsolete: bool,
    pub remove_on_upgrade: bool,
}

/// The loaded database.
#[derive(Debug, Clone)]
pub struct Database {
    root: PathBuf,
    entries: Vec<Paragraph>,
}

impl Database {
    /// Loads `<root>/var/lib/dpkg/status` (an absent file is an empty database).
    pub fn load(root: &Path) -> Result<Database> {
        Err(Error::Unsupported {
            what: format!("loading the dpkg database of {}", root.display()),
        })
    }

    /// The root the database lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The status paragraphs in file order.
    pub fn entries(&self) -> &[Paragraph] {
        &self.entries
    }

    /// Writes `status` as dpkg does (sorted by name then architecture, via
    /// `status-new` renamed over `status`, the previous one kept as `status-old`).
    pub fn write(&self) -> Result<()> {
        Err(Error::Unsupported {
            what: "writing the dpkg status file".to_string(),
        })
    }
}
