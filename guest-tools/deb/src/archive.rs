//! Reading a `.deb`: an `ar` archive of `debian-binary` ("2.x"), `control.tar[.xz|.zst|.gz]`
//! and `data.tar[.xz|.zst|.gz]`, checked as dpkg-deb checks it. Members are read straight
//! from the file; only the control archive (small, bounded) is ever held in memory.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::compress::Compression;
use crate::control::{self, Paragraph};
use crate::{Error, Result};

/// Members an ar archive may have before we stop looking: a .deb has three, plus the
/// occasional `_`-prefixed extension member dpkg-deb skips.
pub const MAX_AR_MEMBERS: usize = 16;

/// Bound on the whole unpacked control archive: the largest real one (an md5sums of a
/// package with tens of thousands of files) is a few MiB; it is held in memory.
pub const MAX_CONTROL_BYTES: u64 = 64 << 20;

/// Bound on the entries of a data archive: the largest Debian packages have about
/// 100,000 files, and the unpacker keeps one path per entry for the `.list` file.
pub const MAX_DATA_ENTRIES: usize = 1_000_000;

/// Bound on what a data archive may decompress to: far above any Debian package (the
/// largest unpack to a few GiB), and it stops a decompression bomb before it fills the
/// image's filesystem.
pub const MAX_DATA_BYTES: u64 = 16 << 30;

/// Bound on a path in an archive, as Linux's PATH_MAX.
pub const MAX_PATH_BYTES: usize = 4096;

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER: usize = 60;

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
    /// Absolute and normalised (`/usr/bin/foo`); the archive's `./` is `/.`, as dpkg
    /// lists it.
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

/// Where a member lies in the file.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    offset: u64,
    size: u64,
    compression: Compression,
}

/// An opened `.deb`: where its members are.
#[derive(Debug, Clone)]
pub struct DebFile {
    path: PathBuf,
    control: Member,
    data: Member,
}

impl DebFile {
    /// Opens `path` and checks the layout as dpkg-deb does: `debian-binary` first with
    /// a 2.x format, then `control.tar*`, then `data.tar*` (`_` members skipped).
    pub fn open(path: &Path) -> Result<DebFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let members = read_ar_index(BufReader::new(file), path)?;
        let deb = DebFile {
            path: path.to_path_buf(),
            control: Member::placeholder(),
            data: Member::placeholder(),
        };
        deb.check_members(members)
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `control` paragraph.
    pub fn control(&self) -> Result<Paragraph> {
        let files = self.control_files()?;
        let control = files
            .iter()
            .find(|f| f.name == "control")
            .ok_or_else(|| self.bad("control archive has no control file"))?;
        let text = String::from_utf8(control.data.clone())
            .map_err(|_| self.bad("control file is not UTF-8"))?;
        control::parse_paragraph(&text, &format!("{} control file", self.name()))
    }

    /// Every regular file of the control archive, in archive order.
    pub fn control_files(&self) -> Result<Vec<ControlFile>> {
        let reader = self.member_reader(&self.control)?;
        let mut archive = tar::Archive::new(reader.take(MAX_CONTROL_BYTES + 1));
        let mut files = Vec::new();
        let entries = archive
            .entries()
            .map_err(|e| self.member_error(&self.control, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.member_error(&self.control, e))?;
            if let Some(file) = self.control_file(&mut entry)? {
                files.push(file);
            }
        }
        Ok(files)
    }

    /// Streams the data archive in order: `visit` gets each entry and a reader of its
    /// content (empty for anything but [`EntryKind::File`]).
    pub fn data_entries(
        &self,
        visit: &mut dyn FnMut(&DataEntry, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        let reader = self.member_reader(&self.data)?;
        let mut archive = tar::Archive::new(Bounded::new(reader, MAX_DATA_BYTES));
        let entries = archive
            .entries()
            .map_err(|e| self.member_error(&self.data, e))?;
        for (count, entry) in entries.enumerate() {
            if count >= MAX_DATA_ENTRIES {
                return Err(Error::TooLarge {
                    what: format!("{}: number of entries in {}", self.name(), self.data.name),
                    limit: MAX_DATA_ENTRIES as u64,
                });
            }
            let mut entry = entry.map_err(|e| self.member_error(&self.data, e))?;
            let data_entry = self.data_entry(&entry)?;
            visit(&data_entry, &mut entry)?;
        }
        Ok(())
    }

    fn check_members(mut self, members: Vec<Member>) -> Result<DebFile> {
        let mut wanted = members.into_iter().filter(|m| !m.name.starts_with('_'));
        match wanted.next() {
            Some(m) if m.name == "debian-binary" => self.check_format(&m)?,
            _ => return Err(self.bad("not a Debian binary package: no debian-binary member first")),
        }
        self.control = self.tar_member(wanted.next(), "control.tar")?;
        self.data = self.tar_member(wanted.next(), "data.tar")?;
        Ok(self)
    }

    fn check_format(&self, member: &Member) -> Result<()> {
        let mut text = String::new();
        self.member_reader(member)?
            .take(16)
            .read_to_string(&mut text)
            .map_err(|e| self.member_error(member, e))?;
        if !text.starts_with("2.") {
            return Err(self.bad(&format!("unsupported format version {:?}", text.trim())));
        }
        Ok(())
    }

    fn tar_member(&self, member: Option<Member>, base: &str) -> Result<Member> {
        let Some(mut member) = member else {
            return Err(self.bad(&format!("missing {base} member")));
        };
        let Some(suffix) = member.name.strip_prefix(base) else {
            return Err(self.bad(&format!("found {} where {base} was expected", member.name)));
        };
        member.compression = match suffix {
            "" => Compression::None,
            ".gz" => Compression::Gzip,
            ".xz" => Compression::Xz,
            ".zst" => Compression::Zstd,
            _ => {
                return Err(Error::Unsupported {
                    what: format!("{}: member {} compression", self.name(), member.name),
                });
            }
        };
        Ok(member)
    }

    fn member_reader(&self, member: &Member) -> Result<Box<dyn Read>> {
        let mut file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        file.seek(SeekFrom::Start(member.offset))
            .map_err(|e| Error::io(&self.path, e))?;
        let raw = BufReader::new(file).take(member.size);
        member
            .compression
            .decoder(raw)
            .map_err(|e| self.member_error(member, e))
    }

    fn control_file(&self, entry: &mut tar::Entry<'_, impl Read>) -> Result<Option<ControlFile>> {
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Ok(None);
        }
        let raw = entry_path(entry).map_err(|e| self.member_error(&self.control, e))?;
        let name = raw.trim_start_matches("./").to_string();
        if name.is_empty() || name.contains('/') {
            return Ok(None);
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| self.member_error(&self.control, e))?;
        if data.len() as u64 > MAX_CONTROL_BYTES {
            return Err(Error::TooLarge {
                what: format!("{}: {}", self.name(), self.control.name),
                limit: MAX_CONTROL_BYTES,
            });
        }
        Ok(Some(ControlFile { name, mode, data }))
    }

    fn data_entry(&self, entry: &tar::Entry<'_, impl Read>) -> Result<DataEntry> {
        let header = entry.header();
        let fail = |e: io::Error| self.member_error(&self.data, e);
        let raw = entry_path(entry).map_err(fail)?;
        let path = normalize(&raw).map_err(|reason| self.unsafe_path(&raw, reason))?;
        let kind = self.entry_kind(entry, &raw)?;
        Ok(DataEntry {
            path,
            kind,
            mode: header.mode().map_err(fail)? & 0o7777,
            uid: header.uid().map_err(fail)? as u32,
            gid: header.gid().map_err(fail)? as u32,
            user: header.username().ok().flatten().map(str::to_string),
            group: header.groupname().ok().flatten().map(str::to_string),
            mtime: header.mtime().map_err(fail)? as i64,
            size: entry.size(),
        })
    }

    fn entry_kind(&self, entry: &tar::Entry<'_, impl Read>, raw: &str) -> Result<EntryKind> {
        let header = entry.header();
        let fail = |e: io::Error| self.member_error(&self.data, e);
        let link = || -> Result<String> {
            let name = entry
                .link_name_bytes()
                .ok_or_else(|| self.unsafe_path(raw, "link without target"))?;
            String::from_utf8(name.into_owned())
                .map_err(|_| self.unsafe_path(raw, "link target is not UTF-8"))
        };
        let device = || -> Result<(u32, u32)> {
            let major = header.device_major().map_err(fail)?.unwrap_or(0);
            let minor = header.device_minor().map_err(fail)?.unwrap_or(0);
            Ok((major, minor))
        };
        Ok(match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Symlink => EntryKind::Symlink { target: link()? },
            tar::EntryType::Link => {
                let target = link()?;
                let target =
                    normalize(&target).map_err(|reason| self.unsafe_path(&target, reason))?;
                EntryKind::HardLink { target }
            }
            tar::EntryType::Char => {
                let (major, minor) = device()?;
                EntryKind::CharDevice { major, minor }
            }
            tar::EntryType::Block => {
                let (major, minor) = device()?;
                EntryKind::BlockDevice { major, minor }
            }
            tar::EntryType::Fifo => EntryKind::Fifo,
            other => {
                return Err(Error::Unsupported {
                    what: format!("{}: tar entry type {other:?} for {raw}", self.name()),
                });
            }
        })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn bad(&self, reason: &str) -> Error {
        Error::Archive {
            archive: self.name(),
            reason: reason.to_string(),
        }
    }

    fn member_error(&self, member: &Member, e: io::Error) -> Error {
        self.bad(&format!("member {}: {e}", member.name))
    }

    fn unsafe_path(&self, path: &str, reason: &'static str) -> Error {
        Error::UnsafePath {
            archive: self.name(),
            path: path.to_string(),
            reason,
        }
    }
}

impl Member {
    fn placeholder() -> Member {
        Member {
            name: String::new(),
            offset: 0,
            size: 0,
            compression: Compression::None,
        }
    }
}

/// An entry's path as UTF-8 text (kiln's filesystem, like WASI, names files in UTF-8).
fn entry_path(entry: &tar::Entry<'_, impl Read>) -> io::Result<String> {
    let bytes = entry.path_bytes();
    if bytes.len() > MAX_PATH_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "path too long"));
    }
    String::from_utf8(bytes.into_owned())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file name is not UTF-8"))
}

/// `./usr//bin/./x` -> `/usr/bin/x`; `./` -> `/.`; `..` anywhere is refused.
pub fn normalize(raw: &str) -> std::result::Result<String, &'static str> {
    let mut out = String::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("'..' in path"),
            part => {
                out.push('/');
                out.push_str(part);
            }
        }
    }
    if out.is_empty() {
        out.push_str("/.");
    }
    Ok(out)
}

/// Reads the ar member table (names, offsets, sizes) without reading member contents.
fn read_ar_index(mut reader: impl Read + Seek, path: &Path) -> Result<Vec<Member>> {
    let bad = |reason: String| Error::Archive {
        archive: path.display().to_string(),
        reason,
    };
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .map_err(|_| bad("not an ar archive (too short)".into()))?;
    if &magic != AR_MAGIC {
        return Err(bad("not an ar archive (bad magic)".into()));
    }
    let mut members = Vec::new();
    let mut offset = AR_MAGIC.len() as u64;
    while let Some(member) = read_ar_header(&mut reader, offset).map_err(bad)? {
        if members.len() >= MAX_AR_MEMBERS {
            return Err(bad(format!("more than {MAX_AR_MEMBERS} ar members")));
        }
        // Members are padded to an even size.
        offset = member.offset + member.size + member.size % 2;
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(path, e))?;
        members.push(member);
    }
    Ok(members)
}

fn read_ar_header(
    reader: &mut impl Read,
    offset: u64,
) -> std::result::Result<Option<Member>, String> {
    let mut header = [0u8; AR_HEADER];
    let got = read_full(reader, &mut header).map_err(|e| e.to_string())?;
    if got == 0 {
        return Ok(None);
    }
    if got < AR_HEADER || &header[58..60] != b"`\n" {
        return Err(format!("corrupt ar header at offset {offset}"));
    }
    let field = |range: std::ops::Range<usize>| {
        String::from_utf8_lossy(&header[range])
            .trim_end()
            .to_string()
    };
    let name = field(0..16).trim_end_matches('/').to_string();
    let size = field(48..58)
        .parse::<u64>()
        .map_err(|_| format!("bad size in ar header of member {name:?}"))?;
    Ok(Some(Member {
        name,
        offset: offset + AR_HEADER as u64,
        size,
        compression: Compression::None,
    }))
}

/// Reads until `buf` is full or the end; returns how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A reader that fails once more than `limit` bytes came through it.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R> Bounded<R> {
    fn new(inner: R, limit: u64) -> Bounded<R> {
        Bounded { inner, left: limit }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!(
                "data archive unpacks to more than {MAX_DATA_BYTES} bytes"
            ))
        })?;
        Ok(n)
    }
}
