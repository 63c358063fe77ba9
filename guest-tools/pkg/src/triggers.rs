//! dpkg's triggers for the common cases (doc/spec/triggers.txt of dpkg): a package's
//! `triggers` control file declares `interest[-await|-noawait] <name>` (a name starting
//! with `/` is a file trigger, recorded in `triggers/File` as `<path> <pkg>[/noawait]`;
//! any other is explicit, recorded in `triggers/<name>`) and `activate[-await|-noawait]
//! <name>`; installing a file under an interesting path, an `activate` line, or
//! `dpkg-trigger` from a script (queued in `triggers/Unincorp`) activates the trigger for
//! the interested packages. At the end of a run each activated, configured package's
//! postinst runs as `postinst triggered "<names>"` under dpkg's "Processing triggers for
//! <pkg> (<version>) ..." line. Awaiting (`triggers-awaited`) states are not kept: every
//! run processes its triggers before it ends, so nothing is left waiting.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::Path;

use kiln_deb::db::{self, Database};
use kiln_deb::ops::{MaintScript, ScriptRunner};

/// Bound on a trigger file read back (`File`, `Unincorp`, `<name>`): real ones are a few
/// KiB; the image is input.
const MAX_TRIGGER_FILE_BYTES: u64 = 4 << 20;

fn read_small(path: &Path) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    if let Ok(f) = fs::File::open(path) {
        let _ = f.take(MAX_TRIGGER_FILE_BYTES).read_to_string(&mut text);
    }
    text
}

/// The triggers one run activates, by interested package.
#[derive(Debug, Default)]
pub struct Triggers {
    pending: BTreeMap<String, Vec<String>>,
}

/// A trigger directive of a `triggers` control file.
fn directives(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(d, n)| (d, n.trim()))
}

impl Triggers {
    pub fn new() -> Triggers {
        Triggers::default()
    }

    /// Records `package`'s interests and activates its `activate` directives and the
    /// file triggers its files fall under; call after it is unpacked.
    pub fn unpacked(&mut self, db: &Database, package: &str) -> Result<(), String> {
        let Some(entry) = db.find(package, None) else {
            return Ok(());
        };
        let dir = db.admin_dir().join("triggers");
        let control = read_small(&db.info_path(entry, "triggers"));
        for (directive, name) in directives(&control) {
            let noawait = directive.ends_with("-noawait");
            let who = if noawait {
                format!("{package}/noawait")
            } else {
                package.to_owned()
            };
            if directive.starts_with("interest") {
                register_interest(&dir, name, &who)?;
            } else if directive.starts_with("activate") {
                self.activate(db, name);
            }
        }
        let files = db.read_list(entry).map_err(|e| e.to_string())?;
        for (path, interested) in file_interests(&dir) {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            if files.iter().any(|f| *f == path || f.starts_with(&prefix)) {
                self.add(&interested, &path);
            }
        }
        Ok(())
    }

    /// Activates the explicit trigger `name` for every package interested in it.
    pub fn activate(&mut self, db: &Database, name: &str) {
        if name.starts_with('/') {
            let dir = db.admin_dir().join("triggers");
            for (path, interested) in file_interests(&dir) {
                if path == name {
                    self.add(&interested, name);
                }
            }
            return;
        }
        let text = read_small(&db.admin_dir().join("triggers").join(name));
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let package = line.trim().split('/').next().unwrap_or_default().to_owned();
            self.add(&package, name);
        }
    }

    fn add(&mut self, package: &str, name: &str) {
        let names = self.pending.entry(package.to_owned()).or_default();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }

    /// Takes in the packages the status file records as `triggers-pending` (a run that
    /// stopped before processing them), with their `Triggers-Pending` names.
    pub fn pending_from_status(&mut self, db: &Database) {
        for entry in db.entries() {
            let pending = db::status(entry).is_ok_and(|s| s.state == db::State::TriggersPending);
            if !pending {
                continue;
            }
            let names = entry.get("Triggers-Pending").unwrap_or_default();
            for name in names.split_whitespace() {
                self.add(db::package(entry), name);
            }
        }
    }

    /// Takes in what scripts queued with `dpkg-trigger` (`triggers/Unincorp`: a trigger
    /// name and the awaiting packages per line) and empties the queue.
    pub fn incorporate(&mut self, db: &Database) -> Result<(), String> {
        let path = db.admin_dir().join("triggers").join("Unincorp");
        let text = read_small(&path);
        for name in text.lines().filter_map(|l| l.split_whitespace().next()) {
            self.activate(db, name);
        }
        if !text.is_empty() {
            fs::write(&path, "").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Runs `postinst triggered "<names>"` for each activated package that is installed,
    /// printing dpkg's line first; the packages whose script failed, with the status.
    pub fn process(
        &mut self,
        db: &mut Database,
        runner: &mut dyn ScriptRunner,
    ) -> Result<Vec<(String, i32)>, String> {
        self.incorporate(db)?;
        let mut failed = Vec::new();
        for (package, names) in std::mem::take(&mut self.pending) {
            let Some(entry) = db.find(&package, None).cloned() else {
                continue;
            };
            let ready = db::status(&entry).is_ok_and(|s| {
                matches!(s.state, db::State::Installed | db::State::TriggersPending)
            });
            if !ready {
                // Not configured yet: its configure (postinst configure) covers what the
                // trigger would have done, as dpkg does.
                continue;
            }
            let version = entry.get("Version").unwrap_or_default().trim().to_owned();
            let shown = db.shown_name(&entry);
            let _ = writeln!(
                std::io::stdout(),
                "Processing triggers for {shown} ({version}) ..."
            );
            let joined = names.join(" ");
            let script_path = db.info_path(&entry, "postinst");
            if !script_path.exists() {
                continue;
            }
            let inside = format!(
                "/{}",
                script_path
                    .strip_prefix(db.root())
                    .unwrap_or(&script_path)
                    .display()
            )
            .replace("//", "/");
            let script = MaintScript {
                package: &package,
                arch: db::architecture(&entry),
                name: "postinst",
                path: &inside,
                args: &["triggered", &joined],
            };
            match runner.run(&script) {
                Ok(0) => mark_installed(db, entry),
                Ok(code) => failed.push((package.clone(), code)),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(failed)
    }
}

/// A package whose triggers ran is installed, with nothing pending.
fn mark_installed(db: &mut Database, mut entry: kiln_deb::control::Paragraph) {
    let pending = db::status(&entry).is_ok_and(|s| s.state == db::State::TriggersPending);
    if pending || entry.get("Triggers-Pending").is_some() {
        entry.remove("Triggers-Pending");
        let want = entry
            .get("Status")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("install")
            .to_owned();
        entry.set("Status", format!("{want} ok installed"));
        db.insert(entry);
    }
}

/// Adds `who` to the interested packages of trigger `name`.
fn register_interest(dir: &Path, name: &str, who: &str) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (path, line) = if name.starts_with('/') {
        (dir.join("File"), format!("{name} {who}"))
    } else {
        (dir.join(name), who.to_owned())
    };
    let text = read_small(&path);
    if text.lines().any(|l| l == line) {
        return Ok(());
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines.push(&line);
    if name.starts_with('/') {
        lines.sort_unstable();
    }
    let mut out = lines.join("\n");
    out.push('\n');
    fs::write(&path, out).map_err(|e| format!("{}: {e}", path.display()))
}

/// `triggers/File`: (path, interested package) pairs.
fn file_interests(dir: &Path) -> Vec<(String, String)> {
    read_small(&dir.join("File"))
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, who)| {
            (
                p.to_owned(),
                who.split('/').next().unwrap_or(who).to_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_skip_comments() {
        let text =
            "# For standard directories\ninterest-await ldconfig\n\nactivate-noawait /usr/lib\n";
        let found: Vec<_> = directives(text).collect();
        assert_eq!(
            found,
            [
                ("interest-await", "ldconfig"),
                ("activate-noawait", "/usr/lib")
            ]
        );
    }

    #[test]
    fn interests_are_recorded_once_as_dpkg_writes_them() {
        let dir = std::env::temp_dir().join(format!("kiln-pkg-triggers-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        register_interest(&dir, "ldconfig", "libc-bin").unwrap();
        register_interest(&dir, "ldconfig", "libc-bin").unwrap();
        register_interest(&dir, "/usr/share/man", "man-db/noawait").unwrap();
        register_interest(&dir, "/etc/ca", "ca/noawait").unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("ldconfig")).unwrap(),
            "libc-bin\n"
        );
        assert_eq!(
            fs::read_to_string(dir.join("File")).unwrap(),
            "/etc/ca ca/noawait\n/usr/share/man man-db/noawait\n"
        );
        assert_eq!(
            file_interests(&dir),
            [
                ("/etc/ca".to_owned(), "ca".to_owned()),
                ("/usr/share/man".to_owned(), "man-db".to_owned())
            ]
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
