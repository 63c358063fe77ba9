//! Package operations on a root: unpack, configure, remove, purge, as dpkg performs them.
//! Maintainer scripts run through a [`ScriptRunner`] and progress lines go to a
//! [`Progress`], both implemented by the binary.

use std::path::Path;

use crate::archive::DebFile;
use crate::db::Database;
use crate::{Error, Result};

/// A maintainer script to run (what dpkg puts in the script's argv and environment).
#[derive(Debug, Clone, Copy)]
pub struct MaintScript<'a> {
    /// The package name (`DPKG_MAINTSCRIPT_PACKAGE`).
    pub package: &'a str,
    /// Its architecture (`DPKG_MAINTSCRIPT_ARCH`).
    pub arch: &'a str,
    /// `preinst`, `postinst`, `prerm` or `postrm` (`DPKG_MAINTSCRIPT_NAME`).
    pub name: &'a str,
    /// Where the script is, as a path inside the root (`/var/lib/dpkg/info/foo.postinst`).
    pub path: &'a str,
    /// Its arguments (`configure`, `<old-version>`...).
    pub args: &'a [&'a str],
}

/// Runs maintainer scripts (the binary implements it with kiln's shell).
pub trait ScriptRunner {
    /// Runs `script` with the root as `/` and returns its exit status.
    fn run(&mut self, script: &MaintScript<'_>) -> Result<i32>;
}

/// A progress line, as dpkg prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// `Selecting previously unselected package foo.`
    Selecting { package: &'a str },
    /// `Preparing to unpack .../foo_1.0_amd64.deb ...`
    Preparing { archive: &'a Path },
    /// `Unpacking foo (1.0) [over (0.9)] ...`
    Unpacking {
        package: &'a str,
        version: &'a str,
        replacing: Option<&'a str>,
    },
    /// `Setting up foo (1.0) ...`
    SettingUp { package: &'a str, version: &'a str },
    /// `Removing foo (1.0) ...`
    Removing { package: &'a str, version: &'a str },
    /// `Purging configuration files for foo (1.0) ...`
    Purging { package: &'a str, version: &'a str },
}

/// Receives progress lines.
pub trait Progress {
    fn event(&mut self, event: Event<'_>);
}

/// Unpacks `deb` into the database's root (preinst, files, info/, status `unpacked`).
pub fn unpack(
    db: &mut Database,
    deb: &DebFile,
    scripts: &mut dyn ScriptRunner,
    progress: &mut dyn Progress,
) -> Result<()> {
    let _ = (db, scripts, progress);
    Err(unsupported("unpacking", &deb.path().display().to_string()))
}

/// Configures an unpacked `package` (postinst configure, status `installed`).
pub fn configure(
    db: &mut Database,
    package: &str,
    scripts: &mut dyn ScriptRunner,
    progress: &mut dyn Progress,
) -> Result<()> {
    let _ = (db, scripts, progress);
    Err(unsupported("configuring", package))
}

/// Removes `package`, keeping its conffiles (status `config-files`).
pub fn remove(
    db: &mut Database,
    package: &str,
    scripts: &mut dyn ScriptRunner,
    progress: &mut dyn Progress,
) -> Result<()> {
    let _ = (db, scripts, progress);
    Err(unsupported("removing", package))
}

/// Removes `package` and its conffiles and forgets it (status `not-installed`).
pub fn purge(
    db: &mut Database,
    package: &str,
    scripts: &mut dyn ScriptRunner,
    progress: &mut dyn Progress,
) -> Result<()> {
    let _ = (db, scripts, progress);
    Err(unsupported("purging", package))
}

fn unsupported(what: &str, target: &str) -> Error {
    Error::Unsupported {
        what: format!("{what} {target} (not written yet)"),
    }
}
