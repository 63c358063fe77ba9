//! Reading a `.deb`: an `ar` archive of `debian-binary` ("2.0"), `control.tar[.xz|.zst|.gz]`
//! and `data.tar[.xz|.zst|.gz]`. Members are read straight from the file (nothing is
//! loaded whole but the control member, which is small and bounded).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::control::Paragraph;
use crate::{Error, Result};

/// How a tar member is compressed (from its name's extension, as dpkg-deb decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// One file of the control archive (`control`, `postinst`, `md5sums`, `conffiles`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    pub name: String,
    /// Permission bits as stored (maintainer scripts are 0755).
    pub mode: u32,
    pub data: Vec<u8>,
}

/// What a data archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink {
        target: String,
    },
    /// A hard link to an earlier entry (`target` normalised like [`DataEntry::path`]).
    HardLink {
        target: String,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One entry of the data archive, with metadata as dpkg applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    /// Absolute, normalised (`/usr/bin/foo`; the archive's `./` is `/.`).
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Owner names from the tar header, which dpkg prefers when the image knows them.
    pub user: Option<String>,
    pub group: Option<String>,
    pub mtime: i64,
    pub size: u64,
}

/// An opened `.deb`: where its members are.
#[derive(Debug, Clone)]
pub struct DebFile {
    path: PathBuf,
}

impl DebFile {
    /// Opens `path` and checks the ar layout (`debian-binary` 2.x, control, data).
    pub fn open(path: &Path) -> Result<DebFile> {
        Err(Error::Unsupported {
            what: format!(
                "reading {} (archive reader not written yet)",
                path.display()
            ),
        })
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `control` paragraph.
    pub fn control(&self) -> Result<Paragraph> {
        Err(self.unsupported())
    }

    /// Every file of the control archive, in archive order.
    pub fn control_files(&self) -> Result<Vec<ControlFile>> {
        Err(self.unsupported())
    }

    /// Streams the data archive: `visit` gets each entry and a reader of its content
    /// (empty for anything but [`EntryKind::File`]).
    pub fn data_entries(
        &self,
        visit: &mut dyn FnMut(&DataEntry, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        let _ = visit;
        Err(self.unsupported())
    }

    fn unsupported(&self) -> Error {
        Error::Unsupported {
            what: format!(
                "reading {} (archive reader not written yet)",
                self.path.display()
            ),
        }
    }
}
