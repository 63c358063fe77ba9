//! dpkg's database under `<root>/var/lib/dpkg`: the `status` file and `info/<pkg>.*`,
//! read and written exactly as dpkg writes them.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::control::{self, Paragraph};
use crate::{Error, Result};

/// dpkg's admin directory, relative to the root.
pub const ADMIN_DIR: &str = "var/lib/dpkg";

/// Bound on the status file: a system with 5,000 packages has one of about 10 MiB; it
/// is held in memory.
pub const MAX_STATUS_BYTES: u64 = 256 << 20;

/// Bound on one `info/` file read back (a `.list` of the largest packages is a few MiB).
pub const MAX_INFO_BYTES: u64 = 64 << 20;

/// The fields dpkg knows, in the order it writes them; any other field follows, in the
/// order of the package's control file.
const FIELD_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

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

const WANTS: [(Want, &str); 5] = [
    (Want::Unknown, "unknown"),
    (Want::Install, "install"),
    (Want::Hold, "hold"),
    (Want::Deinstall, "deinstall"),
    (Want::Purge, "purge"),
];
const FLAGS: [(Flag, &str); 2] = [(Flag::Ok, "ok"), (Flag::ReinstReq, "reinstreq")];
const STATES: [(State, &str); 8] = [
    (State::NotInstalled, "not-installed"),
    (State::ConfigFiles, "config-files"),
    (State::HalfInstalled, "half-installed"),
    (State::Unpacked, "unpacked"),
    (State::HalfConfigured, "half-configured"),
    (State::TriggersAwaited, "triggers-awaited"),
    (State::TriggersPending, "triggers-pending"),
    (State::Installed, "installed"),
];

fn word<T: Copy + PartialEq>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("", |(_, w)| w)
}

fn lookup<T: Copy>(table: &[(T, &str)], word: &str) -> Option<T> {
    table.iter().find(|(_, w)| *w == word).map(|(v, _)| *v)
}

impl FromStr for Status {
    type Err = Error;

    fn from_str(text: &str) -> Result<Status> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let parsed = match words[..] {
            [w, f, s] => lookup(&WANTS, w)
                .zip(lookup(&FLAGS, f))
                .zip(lookup(&STATES, s))
                .map(|((want, flag), state)| Status { want, flag, state }),
            _ => None,
        };
        parsed.ok_or_else(|| Error::Syntax {
            what: "Status field".to_string(),
            line: 1,
            message: format!("'{text}' is not 'want flag state'"),
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            word(&WANTS, self.want),
            word(&FLAGS, self.flag),
            word(&STATES, self.state)
        )
    }
}

/// One line of a `Conffiles:` field (` /etc/foo 0123abcd [obsolete] [remove-on-upgrade]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conffile {
    pub path: String,
    /// md5 in hex, or `newconffile` while the package is not yet configured.
    pub hash: String,
    pub obsolete: bool,
    pub remove_on_upgrade: bool,
}

/// The conffiles of a status paragraph.
pub fn conffiles(entry: &Paragraph) -> Vec<Conffile> {
    let Some(value) = entry.get("Conffiles") else {
        return Vec::new();
    };
    control::value_lines(value)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (path, hash) = (words.next()?, words.next()?);
            let flags: Vec<&str> = words.collect();
            Some(Conffile {
                path: path.to_string(),
                hash: hash.to_string(),
                obsolete: flags.contains(&"obsolete"),
                remove_on_upgrade: flags.contains(&"remove-on-upgrade"),
            })
        })
        .collect()
}

/// Sets (or, for none, removes) the `Conffiles:` field as dpkg writes it.
pub fn set_conffiles(entry: &mut Paragraph, list: &[Conffile]) {
    if list.is_empty() {
        entry.remove("Conffiles");
        return;
    }
    let mut value = String::new();
    for c in list {
        value.push_str(&format!("\n {} {}", c.path, c.hash));
        if c.obsolete {
            value.push_str(" obsolete");
        }
        if c.remove_on_upgrade {
            value.push_str(" remove-on-upgrade");
        }
    }
    entry.set("Conffiles", value);
}

/// The status paragraph dpkg makes from a package's control paragraph: its fields in
/// dpkg's order with `Status:` (and whatever `extra` sets, e.g. `Conffiles`).
pub fn status_entry(control: &Paragraph, status: Status, extra: &[(&str, String)]) -> Paragraph {
    let mut all = control.clone();
    all.set("Status", status.to_string());
    for (name, value) in extra {
        all.set(name, value.clone());
    }
    let mut entry = Paragraph::new();
    for name in FIELD_ORDER {
        if let Some(value) = all.get(name) {
            let spelled = all
                .fields()
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name));
            entry.set(spelled.map_or(name, |f| f.name.as_str()), value);
        }
    }
    for field in all.fields() {
        if !FIELD_ORDER
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&field.name))
        {
            entry.set(&field.name, field.value.clone());
        }
    }
    entry
}

/// The package name of a status paragraph.
pub fn package(entry: &Paragraph) -> &str {
    entry.get("Package").unwrap_or("")
}

/// The architecture of a status paragraph (empty when absent).
pub fn architecture(entry: &Paragraph) -> &str {
    entry.get("Architecture").unwrap_or("")
}

/// The status of a paragraph (`not-installed` when it has none).
pub fn status(entry: &Paragraph) -> Result<Status> {
    entry.get("Status").map_or(
        Ok(Status {
            want: Want::Unknown,
            flag: Flag::Ok,
            state: State::NotInstalled,
        }),
        str::parse,
    )
}

/// The name dpkg gives a package's files in info/: `<pkg>:<arch>` for `Multi-Arch: same`.
pub fn info_name(entry: &Paragraph) -> String {
    let same = entry
        .get("Multi-Arch")
        .is_some_and(|m| m.eq_ignore_ascii_case("same"));
    match same {
        true => format!("{}:{}", package(entry), architecture(entry)),
        false => package(entry).to_string(),
    }
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
        let path = root.join(ADMIN_DIR).join("status");
        let text = read_optional(&path, MAX_STATUS_BYTES)?;
        let entries = control::parse_paragraphs(&text, &path.display().to_string())?;
        for entry in &entries {
            if entry.get("Package").is_none() {
                return Err(Error::MissingField {
                    package: format!("(in {})", path.display()),
                    field: "Package",
                });
            }
        }
        Ok(Database {
            root: root.to_path_buf(),
            entries,
        })
    }

    /// The root the database lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/var/lib/dpkg`.
    pub fn admin_dir(&self) -> PathBuf {
        self.root.join(ADMIN_DIR)
    }

    /// The status paragraphs.
    pub fn entries(&self) -> &[Paragraph] {
        &self.entries
    }

    /// The native architecture: that of the installed `dpkg` package, as
    /// `dpkg --print-architecture` prints it (never the host's).
    pub fn native_arch(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| package(e) == "dpkg")
            .map(architecture)
            .filter(|a| !a.is_empty())
    }

    /// The package's name as dpkg's progress lines show it (`pkg_name` with
    /// `pnaw_nonambig`): with `:<arch>` for a `Multi-Arch: same` package or one of a
    /// foreign architecture, so that `libc6:amd64` and `libc6:i386` can be told apart.
    pub fn shown_name(&self, entry: &Paragraph) -> String {
        let (name, arch) = (package(entry), architecture(entry));
        let same = entry.get("Multi-Arch") == Some("same");
        let foreign = !arch.is_empty() && arch != "all" && Some(arch) != self.native_arch();
        if same || foreign {
            format!("{name}:{arch}")
        } else {
            name.to_string()
        }
    }

    /// The entry of `name` for `arch`; without `arch`, the native or `all` one, else the
    /// only one.
    pub fn find(&self, name: &str, arch: Option<&str>) -> Option<&Paragraph> {
        self.position(name, arch).map(|i| &self.entries[i])
    }

    /// Inserts `entry`, replacing the one of the same package and architecture.
    pub fn insert(&mut self, entry: Paragraph) {
        let arch = architecture(&entry).to_string();
        match self.position(package(&entry), Some(&arch)) {
            Some(i) => self.entries[i] = entry,
            None => self.entries.push(entry),
        }
    }

    /// Forgets `name` (purge); returns its entry.
    pub fn forget(&mut self, name: &str, arch: Option<&str>) -> Option<Paragraph> {
        self.position(name, arch).map(|i| self.entries.remove(i))
    }

    fn position(&self, name: &str, arch: Option<&str>) -> Option<usize> {
        let named = |e: &&Paragraph| package(e) == name;
        let matches: Vec<usize> = (0..self.entries.len())
            .filter(|&i| named(&&self.entries[i]))
            .collect();
        match arch {
            Some(arch) => matches
                .into_iter()
                .find(|&i| architecture(&self.entries[i]) == arch),
            None => {
                let native = self.native_arch().unwrap_or("");
                let preferred = matches.iter().copied().find(|&i| {
                    let a = architecture(&self.entries[i]);
                    a == native || a == "all"
                });
                preferred.or_else(|| (matches.len() == 1).then(|| matches[0]))
            }
        }
    }

    /// The status file's text as dpkg writes it: entries sorted by name then
    /// architecture, each followed by a blank line.
    pub fn status_text(&self) -> String {
        let mut sorted: Vec<&Paragraph> = self.entries.iter().collect();
        sorted.sort_by(|a, b| (package(a), architecture(a)).cmp(&(package(b), architecture(b))));
        let mut text = String::new();
        for entry in sorted {
            text.push_str(&entry.to_string());
            text.push('\n');
        }
        text
    }

    /// Writes `status` as dpkg does: into `status-new`, the old one kept as
    /// `status-old`, then renamed into place.
    pub fn write(&self) -> Result<()> {
        let admin = self.admin_dir();
        fs::create_dir_all(&admin).map_err(|e| Error::io(&admin, e))?;
        let (new, current, old) = (
            admin.join("status-new"),
            admin.join("status"),
            admin.join("status-old"),
        );
        fs::write(&new, self.status_text()).map_err(|e| Error::io(&new, e))?;
        if current.exists() {
            fs::rename(&current, &old).map_err(|e| Error::io(&old, e))?;
        }
        fs::rename(&new, &current).map_err(|e| Error::io(&current, e))
    }

    /// `<root>/var/lib/dpkg/info/<info name>.<ext>`.
    pub fn info_path(&self, entry: &Paragraph, ext: &str) -> PathBuf {
        self.admin_dir()
            .join("info")
            .join(format!("{}.{ext}", info_name(entry)))
    }

    /// The paths of `<pkg>.list` (`/.`, `/usr`, ... in dpkg's order); empty if none.
    pub fn read_list(&self, entry: &Paragraph) -> Result<Vec<String>> {
        let text = read_optional(&self.info_path(entry, "list"), MAX_INFO_BYTES)?;
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Writes `<pkg>.list` (one path a line, as dpkg does).
    pub fn write_list(&self, entry: &Paragraph, paths: &[String]) -> Result<()> {
        let path = self.info_path(entry, "list");
        let mut text = String::new();
        for p in paths {
            text.push_str(p);
            text.push('\n');
        }
        write_atomically(&path, text.as_bytes())
    }
}

/// dpkg's diversions (`var/lib/dpkg/diversions`: lines of from, to, package; a
/// package of `:` is the admin's local diversion, which applies to every package).
#[derive(Debug, Clone, Default)]
pub struct Diversions {
    map: HashMap<String, (String, String)>,
}

impl Diversions {
    /// Loads the diversions of `root` (none if the file is absent).
    pub fn load(root: &Path) -> Result<Diversions> {
        let path = root.join(ADMIN_DIR).join("diversions");
        let text = read_optional(&path, MAX_INFO_BYTES)?;
        let lines: Vec<&str> = text.lines().collect();
        let map = lines
            .chunks_exact(3)
            .map(|c| (c[0].to_string(), (c[1].to_string(), c[2].to_string())))
            .collect();
        Ok(Diversions { map })
    }

    /// Where `package`'s file `path` really is: the diverted name unless `package` is
    /// the one that diverted it.
    pub fn target<'a>(&'a self, path: &'a str, package: &str) -> &'a str {
        match self.map.get(path) {
            Some((to, by)) if by != package => to,
            _ => path,
        }
    }
}

/// Writes `path` through `path.dpkg-new` and a rename, as dpkg writes its files.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".dpkg-new");
    let tmp = PathBuf::from(tmp);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    fs::write(&tmp, data).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// [`read_bounded`], with an absent file read as empty.
pub(crate) fn read_optional(path: &Path, limit: u64) -> Result<String> {
    match read_bounded(path, limit) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(String::new())
        }
        other => other,
    }
}

/// Reads a UTF-8 file of at most `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> Result<String> {
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(path, e))?;
    if text.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: path.display().to_string(),
            limit,
        });
    }
    Ok(text)
}
