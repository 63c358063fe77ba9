//! Package operations on a root as dpkg performs them: unpack (preinst, files, info/,
//! status `unpacked`), configure (conffiles, postinst, `installed`), remove and purge.
//! Maintainer scripts run through a [`ScriptRunner`] and progress lines go to a
//! [`Progress`], both implemented by the binary.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::archive::{ControlFile, DataEntry, DebFile, EntryKind};
use crate::control::Paragraph;
use crate::db::{self, Conffile, Database, Diversions, Flag, State, Status, Want};
use crate::place::{self, Owners};
use crate::relation;
use crate::statoverride::{self, Override};
use crate::version::Version;
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

/// The hash dpkg records for a conffile not yet configured.
const NEW_CONFFILE: &str = "newconffile";

/// Where dpkg extracts a new package's control files before its preinst runs.
const TMP_CI: &str = "tmp.ci";

/// The context of one operation.
struct Op<'a> {
    db: &'a mut Database,
    scripts: &'a mut dyn ScriptRunner,
    progress: &'a mut dyn Progress,
}

/// Unpacks `deb` into the database's root (preinst, files, info/, status `unpacked`).
pub fn unpack(
    db: &mut Database,
    deb: &DebFile,
    scripts: &mut dyn ScriptRunner,
    progress: &mut dyn Progress,
) -> Result<()> {
    Op {
        db,
        scripts,
        progress,
    }
    .unpack(deb)
}

/// Configures an unpacked `package` (conffiles, `postinst configure`, `installed`).
pub fn configure(
    db: &mut Database,
    package: &str,
    scripts: &mut dyn ScriptRunner,
    progress: &mut dyn Progress,
) -> Result<()> {
    Op {
        db,
        scripts,
        progress,
    }
    .configure(package)
}

/// Removes `package`, keeping its conffiles (status `config-files`; forgotten when it
/// has none).
pub fn remove(
    db: &mut Database,
    package: &str,
    scripts: &mut dyn ScriptRunner,
    progress: &mut dyn Progress,
) -> Result<()> {
    Op {
        db,
        scripts,
        progress,
    }
    .remove(package)
}

/// Removes `package` if installed, then its conffiles, and forgets it.
pub fn purge(
    db: &mut Database,
    package: &str,
    scripts: &mut dyn ScriptRunner,
    progress: &mut dyn Progress,
) -> Result<()> {
    Op {
        db,
        scripts,
        progress,
    }
    .purge(package)
}

fn required<'p>(p: &'p Paragraph, field: &'static str) -> Result<&'p str> {
    p.get(field).ok_or_else(|| Error::MissingField {
        package: p.get("Package").unwrap_or("(unnamed)").to_string(),
        field,
    })
}

fn status_of(want: Want, flag: Flag, state: State) -> Status {
    Status { want, flag, state }
}

/// The version an entry has on disk (unpacked or more), if any.
fn present_version(entry: Option<&Paragraph>) -> Result<Option<String>> {
    let Some(entry) = entry else { return Ok(None) };
    let state = db::status(entry)?.state;
    let present = !matches!(state, State::NotInstalled | State::ConfigFiles);
    Ok(present.then(|| entry.get("Version").unwrap_or("").to_string()))
}

/// The paths of a `conffiles` control file (`remove-on-upgrade /etc/x` names one too).
fn conffile_paths(files: &[ControlFile]) -> Vec<String> {
    let Some(f) = files.iter().find(|f| f.name == "conffiles") else {
        return Vec::new();
    };
    String::from_utf8_lossy(&f.data)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_string)
        .collect()
}

impl Op<'_> {
    fn unpack(&mut self, deb: &DebFile) -> Result<()> {
        let control = deb.control()?;
        let name = required(&control, "Package")?.to_string();
        let version = required(&control, "Version")?.to_string();
        let arch = control.get("Architecture").unwrap_or("all").to_string();
        let old = self.db.find(&name, Some(&arch)).cloned();
        let old_version = present_version(old.as_ref())?;
        let shown = self.db.shown_name(&control);
        if old_version.is_none() {
            self.progress.event(Event::Selecting { package: &shown });
        }
        self.progress.event(Event::Preparing {
            archive: deb.path(),
        });
        let files = deb.control_files()?;
        let script_dir = self.stage_control_files(&files)?;
        if let (Some(old), Some(old_v)) = (&old, &old_version) {
            self.run_info_script(old, "prerm", &["upgrade", &version])?;
            self.run_script(
                &name,
                &arch,
                "preinst",
                &script_dir.join("preinst"),
                &["upgrade", old_v],
            )?;
        } else {
            let config = old
                .as_ref()
                .and_then(|o| o.get("Config-Version").or(o.get("Version")));
            let mut args = vec!["install"];
            args.extend(config);
            self.run_script(&name, &arch, "preinst", &script_dir.join("preinst"), &args)?;
        }
        self.progress.event(Event::Unpacking {
            package: &shown,
            version: &version,
            replacing: old_version.as_deref(),
        });
        let half = db::status_entry(
            &control,
            status_of(Want::Install, Flag::ReinstReq, State::HalfInstalled),
            &[],
        );
        self.db.insert(half);
        self.db.write()?;
        let conffiles = conffile_paths(&files);
        let list = self.extract_data(deb, &control, &conffiles)?;
        if let (Some(old), Some(_)) = (&old, &old_version) {
            self.run_info_script(old, "postrm", &["upgrade", &version])?;
            self.remove_obsolete(old, &list, &conffiles)?;
        }
        let entry = unpacked_entry(&control, old.as_ref(), old_version.is_some(), &conffiles);
        self.install_info(&entry, old.as_ref(), &files)?;
        self.db.write_list(&entry, &list)?;
        self.db.insert(entry);
        self.db.write()?;
        let _ = fs::remove_dir_all(&script_dir);
        Ok(())
    }

    /// Writes the control files to `info/tmp.ci/` (where the new preinst runs from).
    fn stage_control_files(&self, files: &[ControlFile]) -> Result<PathBuf> {
        let dir = self.db.admin_dir().join(TMP_CI);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for f in files {
            write_info_file(&dir.join(&f.name), f)?;
        }
        Ok(dir)
    }

    /// Extracts the data archive; returns the `.list` (every path, archive order).
    fn extract_data(
        &mut self,
        deb: &DebFile,
        control: &Paragraph,
        conffiles: &[String],
    ) -> Result<Vec<String>> {
        let root = self.db.root().to_path_buf();
        let name = required(control, "Package")?;
        let owners_of_paths = self.paths_owned_by_others(name)?;
        let replaces = relation::parse_relations(control.get("Replaces").unwrap_or(""))?;
        let owners = Owners::load(&root);
        let overrides = self.stat_overrides(&owners)?;
        let conffiles: HashSet<&str> = conffiles.iter().map(String::as_str).collect();
        let diversions = Diversions::load(&root)?;
        let mut list = Vec::new();
        deb.data_entries(&mut |entry, content| {
            list.push(entry.path.clone());
            if entry.path == "/." {
                return Ok(());
            }
            let real = diversions.target(&entry.path, name);
            if !matches!(entry.kind, EntryKind::Directory) {
                self.check_overwrite(real, &owners_of_paths, &replaces)?;
            }
            let host = place::resolve(&root, real)?;
            let link = match &entry.kind {
                EntryKind::HardLink { target } => {
                    Some(place::resolve(&root, diversions.target(target, name))?)
                }
                _ => None,
            };
            let keep_new = conffiles.contains(entry.path.as_str());
            // dpkg looks the override up by the package's own path, before diversion,
            // and gives a symlink the owner but never the mode.
            let overridden;
            let (entry, owner) = match overrides.get(entry.path.as_str()) {
                Some(o) => {
                    overridden = DataEntry {
                        mode: if matches!(entry.kind, EntryKind::Symlink { .. }) {
                            entry.mode
                        } else {
                            o.mode
                        },
                        ..entry.clone()
                    };
                    (&overridden, (o.uid, o.gid))
                }
                None => (entry, owners.of(entry)),
            };
            place::extract(entry, content, &host, link.as_deref(), owner, keep_new)
        })?;
        Ok(list)
    }

    /// The stat overrides (`<admindir>/statoverride`) by path; none when the file is
    /// absent. Bounded like the other info files; a malformed file stops the unpack, as it stops dpkg.
    fn stat_overrides(&self, owners: &Owners) -> Result<HashMap<String, Override>> {
        let path = self.db.admin_dir().join("statoverride");
        let text = db::read_optional(&path, db::MAX_INFO_BYTES)?;
        let db =
            statoverride::parse(&text, &|n| owners.user(n), &|n| owners.group(n)).map_err(|e| {
                Error::Syntax {
                    what: path.display().to_string(),
                    line: e.line,
                    message: e.message,
                }
            })?;
        Ok(statoverride::by_path(db))
    }

    /// Fails as dpkg does when another installed package owns `path`, unless this one
    /// `Replaces` it.
    fn check_overwrite(
        &self,
        path: &str,
        owned: &HashMap<String, String>,
        replaces: &[relation::Dependency],
    ) -> Result<()> {
        let Some(owner) = owned.get(path) else {
            return Ok(());
        };
        let entry = self.db.find(owner, None);
        let version: Option<Version> = entry
            .and_then(|e| e.get("Version"))
            .and_then(|v| v.parse().ok());
        let replaced = replaces
            .iter()
            .flat_map(|d| &d.alternatives)
            .any(|r| r.name == *owner && version.as_ref().is_none_or(|v| r.accepts(v)));
        if replaced {
            return Ok(());
        }
        Err(Error::FileConflict {
            path: path.to_string(),
            owner: owner.clone(),
        })
    }

    /// The listed paths of every other present package, with their owner (only asked
    /// about the non-directories being unpacked: directories are shared freely).
    fn paths_owned_by_others(&self, name: &str) -> Result<HashMap<String, String>> {
        let mut owned = HashMap::new();
        for entry in self.db.entries() {
            if db::package(entry) == name || present_version(Some(entry))?.is_none() {
                continue;
            }
            for path in self.db.read_list(entry)? {
                owned.insert(path, db::package(entry).to_string());
            }
        }
        Ok(owned)
    }

    /// Removes the old version's files that the new one no longer has.
    fn remove_obsolete(
        &self,
        old: &Paragraph,
        new_list: &[String],
        conffiles: &[String],
    ) -> Result<()> {
        let old_conffiles: Vec<String> = db::conffiles(old).into_iter().map(|c| c.path).collect();
        let keep: HashSet<&str> = new_list
            .iter()
            .chain(conffiles)
            .chain(&old_conffiles)
            .map(String::as_str)
            .collect();
        let old_list = self.db.read_list(old)?;
        let gone: Vec<String> = old_list
            .into_iter()
            .filter(|p| !keep.contains(p.as_str()))
            .collect();
        self.remove_paths(db::package(old), &gone, &HashSet::new())?;
        Ok(())
    }

    /// Installs the package's control files as info/<name>.<file> (not `control`, which
    /// lives in status), removing the old version's that the new one lacks.
    fn install_info(
        &self,
        entry: &Paragraph,
        old: Option<&Paragraph>,
        files: &[ControlFile],
    ) -> Result<()> {
        if let Some(old) = old {
            for (kind, path) in self.info_files(old)? {
                if kind != "list" && !files.iter().any(|f| f.name == kind) {
                    place::remove_if_present(&path)?;
                }
            }
        }
        for f in files.iter().filter(|f| f.name != "control") {
            write_info_file(&self.db.info_path(entry, &f.name), f)?;
        }
        Ok(())
    }

    /// The info/ files of an entry, with their kind (`list`, `postinst`...).
    fn info_files(&self, entry: &Paragraph) -> Result<Vec<(String, PathBuf)>> {
        let dir = self.db.admin_dir().join("info");
        let prefix = format!("{}.", db::info_name(entry));
        let Ok(read) = fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for item in read {
            let item = item.map_err(|e| Error::io(&dir, e))?;
            let file = item.file_name().to_string_lossy().into_owned();
            if let Some(kind) = file.strip_prefix(&prefix).filter(|k| !k.contains('.')) {
                found.push((kind.to_string(), item.path()));
            }
        }
        Ok(found)
    }

    fn configure(&mut self, package: &str) -> Result<()> {
        let mut entry = self.find(package)?;
        let state = db::status(&entry)?.state;
        if state == State::Installed {
            return Err(not_ready(package, "is already installed and configured"));
        }
        if !matches!(state, State::Unpacked | State::HalfConfigured) {
            return Err(not_ready(package, "is not ready for configuration"));
        }
        let version = required(&entry, "Version")?.to_string();
        self.progress.event(Event::SettingUp {
            package: &self.db.shown_name(&entry),
            version: &version,
        });
        entry.set(
            "Status",
            status_of(Want::Install, Flag::Ok, State::HalfConfigured).to_string(),
        );
        let conffiles = self.settle_conffiles(&entry)?;
        db::set_conffiles(&mut entry, &conffiles);
        self.db.insert(entry.clone());
        self.db.write()?;
        let previous = entry.remove("Config-Version").unwrap_or_default();
        self.run_info_script(&entry, "postinst", &["configure", &previous])?;
        entry.set(
            "Status",
            status_of(Want::Install, Flag::Ok, State::Installed).to_string(),
        );
        self.db.insert(entry);
        self.db.write()
    }

    /// Puts each conffile's `.dpkg-new` in place as dpkg does without a question: a
    /// new file or one the admin never changed is replaced; a changed one is kept and
    /// the package's version left beside it as `.dpkg-dist`. Returns the new hashes.
    fn settle_conffiles(&self, entry: &Paragraph) -> Result<Vec<Conffile>> {
        let mut list = db::conffiles(entry);
        for c in list.iter_mut().filter(|c| !c.obsolete) {
            let host = place::resolve(self.db.root(), &c.path)?;
            let new = place::new_path(&host);
            let Some(dist) = md5_of(&new)? else {
                if c.hash == NEW_CONFFILE {
                    c.hash = md5_of(&host)?.unwrap_or_else(|| NEW_CONFFILE.to_string());
                }
                continue;
            };
            let target = match md5_of(&host)? {
                Some(sum) if sum != c.hash && sum != dist => {
                    place::with_suffix(&host, ".dpkg-dist")
                }
                _ => host.clone(),
            };
            fs::rename(&new, &target).map_err(|e| Error::io(&target, e))?;
            // dpkg records the package's version, so a later upgrade still sees an
            // admin's edit as one.
            c.hash = dist;
        }
        Ok(list)
    }

    fn remove(&mut self, package: &str) -> Result<()> {
        let entry = self.find(package)?;
        if present_version(Some(&entry))?.is_none() {
            return Err(not_ready(package, "is not installed"));
        }
        let version = required(&entry, "Version")?.to_string();
        self.progress.event(Event::Removing {
            package: &self.db.shown_name(&entry),
            version: &version,
        });
        self.run_info_script(&entry, "prerm", &["remove"])?;
        let conffiles: HashSet<String> =
            db::conffiles(&entry).into_iter().map(|c| c.path).collect();
        let list = self.db.read_list(&entry)?;
        let left = self.remove_paths(package, &list, &conffiles)?;
        self.run_info_script(&entry, "postrm", &["remove"])?;
        for (kind, path) in self.info_files(&entry)? {
            if kind != "postrm" && kind != "list" {
                place::remove_if_present(&path)?;
            }
        }
        if conffiles.is_empty() {
            return self.forget(&entry);
        }
        self.db.write_list(&entry, &left)?;
        let mut entry = entry;
        entry.set(
            "Status",
            status_of(Want::Deinstall, Flag::Ok, State::ConfigFiles).to_string(),
        );
        self.db.insert(entry);
        self.db.write()
    }

    fn purge(&mut self, package: &str) -> Result<()> {
        if present_version(Some(&self.find(package)?))?.is_some() {
            self.remove(package)?;
        }
        let Some(entry) = self.db.find(package, None).cloned() else {
            return Ok(());
        };
        let version = entry.get("Version").unwrap_or("").to_string();
        self.progress.event(Event::Purging {
            package: &self.db.shown_name(&entry),
            version: &version,
        });
        for c in db::conffiles(&entry) {
            let host = place::resolve(self.db.root(), &c.path)?;
            for suffix in ["", ".dpkg-old", ".dpkg-new", ".dpkg-dist"] {
                place::remove_if_present(&place::with_suffix(&host, suffix))?;
            }
        }
        let list = self.db.read_list(&entry)?;
        self.remove_paths(package, &list, &HashSet::new())?;
        self.run_info_script(&entry, "postrm", &["purge"])?;
        self.forget(&entry)
    }

    /// Deletes the info files and status entry of `entry`.
    fn forget(&mut self, entry: &Paragraph) -> Result<()> {
        for (_, path) in self.info_files(entry)? {
            place::remove_if_present(&path)?;
        }
        self.db
            .forget(db::package(entry), Some(db::architecture(entry)));
        self.db.write()
    }

    /// Removes `package`'s `paths` (deepest first, through diversions) except `keep`
    /// and files another package also lists (one that took them over with Replaces);
    /// directories only when empty. Returns what is left (in list order).
    fn remove_paths(
        &self,
        package: &str,
        paths: &[String],
        keep: &HashSet<String>,
    ) -> Result<Vec<String>> {
        let root = self.db.root();
        let diversions = Diversions::load(root)?;
        let others = self.paths_owned_by_others(package)?;
        let mut left = Vec::new();
        for path in paths.iter().rev() {
            if path == "/." {
                continue;
            }
            let host = place::resolve(root, diversions.target(path, package))?;
            let removed = match fs::symlink_metadata(&host) {
                _ if keep.contains(path) => false,
                Ok(m) if !m.is_dir() && others.contains_key(path) => false,
                Ok(m) if m.is_dir() => fs::remove_dir(&host).is_ok(),
                Ok(_) => fs::remove_file(&host)
                    .map(|()| true)
                    .map_err(|e| Error::io(&host, e))?,
                Err(_) => true,
            };
            if !removed {
                left.push(path.clone());
            }
        }
        left.reverse();
        Ok(left)
    }

    fn find(&self, package: &str) -> Result<Paragraph> {
        self.db
            .find(package, None)
            .cloned()
            .ok_or_else(|| not_ready(package, "is not installed"))
    }

    fn run_info_script(&mut self, entry: &Paragraph, script: &str, args: &[&str]) -> Result<()> {
        let path = self.db.info_path(entry, script);
        self.run_script(
            db::package(entry),
            db::architecture(entry),
            script,
            &path,
            args,
        )
    }

    /// Runs a script if the package has it; a non-zero exit is dpkg's error.
    fn run_script(
        &mut self,
        package: &str,
        arch: &str,
        script: &str,
        host: &Path,
        args: &[&str],
    ) -> Result<()> {
        if !host.exists() {
            return Ok(());
        }
        let inside = Path::new("/").join(host.strip_prefix(self.db.root()).unwrap_or(host));
        let path = inside.to_string_lossy();
        let status = self.scripts.run(&MaintScript {
            package,
            arch,
            name: script,
            path: &path,
            args,
        })?;
        if status != 0 {
            return Err(Error::Script {
                package: package.to_string(),
                script: script.to_string(),
                status,
            });
        }
        Ok(())
    }
}

/// The status entry after unpack: `install ok unpacked`, conffiles with their last
/// configured hash (`newconffile` for new ones), `Config-Version` on upgrade.
fn unpacked_entry(
    control: &Paragraph,
    old: Option<&Paragraph>,
    upgrade: bool,
    conffiles: &[String],
) -> Paragraph {
    let known: Vec<Conffile> = old.map(db::conffiles).unwrap_or_default();
    let mut list: Vec<Conffile> = conffiles
        .iter()
        .map(|path| Conffile {
            path: path.clone(),
            hash: known
                .iter()
                .find(|c| c.path == *path)
                .map_or_else(|| NEW_CONFFILE.to_string(), |c| c.hash.clone()),
            obsolete: false,
            remove_on_upgrade: false,
        })
        .collect();
    // The old version's conffiles the new one dropped stay on disk, marked obsolete.
    let dropped = known.into_iter().filter(|c| !conffiles.contains(&c.path));
    list.extend(dropped.map(|c| Conffile {
        obsolete: true,
        ..c
    }));
    let mut extra = Vec::new();
    let config_version = old.and_then(|o| {
        o.get("Config-Version")
            .or(upgrade.then(|| o.get("Version")).flatten())
    });
    if let Some(v) = config_version {
        extra.push(("Config-Version", v.to_string()));
    }
    let mut entry = db::status_entry(
        control,
        status_of(Want::Install, Flag::Ok, State::Unpacked),
        &extra,
    );
    db::set_conffiles(&mut entry, &list);
    db::status_entry(
        &entry,
        status_of(Want::Install, Flag::Ok, State::Unpacked),
        &[],
    )
}

fn write_info_file(path: &Path, file: &ControlFile) -> Result<()> {
    db::write_atomically(path, &file.data)?;
    kiln_abi::chmod(&path.to_string_lossy(), file.mode, true).map_err(|e| Error::io(path, e))
}

/// The md5 of a file in hex, `None` if it does not exist.
fn md5_of(path: &Path) -> Result<Option<String>> {
    use md5::Digest;
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut hasher = md5::Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    ))
}

fn not_ready(package: &str, reason: &'static str) -> Error {
    Error::Package {
        package: package.to_string(),
        reason,
    }
}
