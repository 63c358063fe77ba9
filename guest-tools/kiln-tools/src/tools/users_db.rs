//! The account database files (/etc/passwd, group, shadow, gshadow, subuid, subgid) as
//! shadow-utils edits them: lines of `:`-separated fields, changed in memory and saved
//! with a `FILE-` backup of the previous content that has the original's mode and owner
//! (so /etc/shadow- stays 0640 root:shadow), the file itself keeping its mode and owner.
//! Settings come from /etc/login.defs and /etc/default/useradd with shadow-utils'
//! defaults, so the bytes written are the ones Debian's passwd package writes.

use std::fs;
use std::io;

use crate::opts::{self, OptSpec, Parsed};
use crate::sys;
use crate::util::{self, describe};

pub(crate) const PASSWD: &str = "/etc/passwd";
pub(crate) const GROUP: &str = "/etc/group";
pub(crate) const SHADOW: &str = "/etc/shadow";
pub(crate) const GSHADOW: &str = "/etc/gshadow";
pub(crate) const SUBUID: &str = "/etc/subuid";
pub(crate) const SUBGID: &str = "/etc/subgid";

/// One database file loaded for editing.
pub(crate) struct Db {
    path: &'static str,
    before: String,
    lines: Vec<String>,
}

impl Db {
    /// Loads `path`; a missing file is an error (shadow-utils never creates the files).
    pub(crate) fn open(path: &'static str) -> Result<Db, String> {
        let before = fs::read_to_string(path).map_err(|e| format!("{path}: {}", describe(&e)))?;
        let lines = before.lines().map(str::to_owned).collect();
        Ok(Db {
            path,
            before,
            lines,
        })
    }

    /// Loads `path` if it exists (shadow, gshadow, subuid and subgid are optional).
    pub(crate) fn optional(path: &'static str) -> Result<Option<Db>, String> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(None);
        }
        Db::open(path).map(Some)
    }

    /// The index of the entry named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| l.split(':').next() == Some(name))
    }

    /// The fields of line `i` (at least `n`, padded with empty ones).
    pub(crate) fn fields(&self, i: usize, n: usize) -> Vec<String> {
        let mut f: Vec<String> = self.lines[i].split(':').map(str::to_owned).collect();
        if f.len() < n {
            f.resize(n, String::new());
        }
        f
    }

    pub(crate) fn set(&mut self, i: usize, fields: &[String]) {
        self.lines[i] = fields.join(":");
    }

    pub(crate) fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    pub(crate) fn remove(&mut self, i: usize) {
        self.lines.remove(i);
    }

    /// Replaces line `i` with `fields` at the end of the file, where shadow-utils puts
    /// an entry whose name changed (it is removed and added again).
    pub(crate) fn move_to_end(&mut self, i: usize, fields: &[String]) {
        self.lines.remove(i);
        self.lines.push(fields.join(":"));
    }

    /// Indexes of every line (entries to edit in place, such as member lists).
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Writes the new content, after the backup of the old one when `backup`.
    pub(crate) fn save(&self, backup: bool) -> Result<(), String> {
        let err = |e: io::Error| format!("{}: {}", self.path, describe(&e));
        if backup {
            lock_file()?;
            let copy = format!("{}-", self.path);
            let st = sys::stat(self.path, true).map_err(err)?;
            fs::write(&copy, &self.before).map_err(err)?;
            sys::chown(&copy, Some(st.uid), Some(st.gid), true).map_err(err)?;
            sys::chmod(&copy, st.perm(), true).map_err(err)?;
        }
        let mut text = self.lines.join("\n");
        text.push('\n');
        fs::write(self.path, text).map_err(err)
    }
}

/// Parses the options of a tool taking exactly one `what` operand (a user or group
/// name); the error is the usage exit status, already reported.
pub(crate) fn parse_one(
    tool: &str,
    args: &[String],
    specs: &[OptSpec],
    what: &str,
) -> Result<(Parsed, String), i32> {
    let p = opts::parse(args, specs, true).map_err(|e| util::usage_error(tool, e))?;
    match p.operands.as_slice() {
        [one] => {
            let one = one.clone();
            Ok((p, one))
        }
        _ => Err(util::usage_error(
            tool,
            format!("expected exactly one {what}"),
        )),
    }
}

/// shadow-utils' lock file, left behind (empty, 0600) by every command that writes.
const PWD_LOCK: &str = "/etc/.pwd.lock";

fn lock_file() -> Result<(), String> {
    let err = |e: io::Error| format!("{PWD_LOCK}: {}", describe(&e));
    if fs::symlink_metadata(PWD_LOCK).is_err() {
        fs::write(PWD_LOCK, b"").map_err(err)?;
        sys::chmod(PWD_LOCK, 0o600, true).map_err(err)?;
    }
    Ok(())
}

/// Removes `user` from the member list (field `field`) of every line of `db`, or renames
/// it to `rename` when given; returns whether any line changed.
pub(crate) fn edit_members(db: &mut Db, field: usize, user: &str, rename: Option<&str>) -> bool {
    let mut changed = false;
    for i in 0..db.len() {
        let mut f = db.fields(i, field + 1);
        let members: Vec<&str> = f[field].split(',').filter(|m| !m.is_empty()).collect();
        if !members.contains(&user) {
            continue;
        }
        let kept: Vec<&str> = members
            .into_iter()
            .filter_map(|m| if m == user { rename } else { Some(m) })
            .collect();
        f[field] = kept.join(",");
        db.set(i, &f);
        changed = true;
    }
    changed
}

/// A setting of /etc/login.defs as written (the last one wins).
fn login_def_text(key: &str) -> Option<String> {
    setting(&fs::read_to_string("/etc/login.defs").ok()?, key)
}

/// `key`'s value in login.defs-style `text` (`KEY value` lines).
fn setting(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(key)).then(|| words.next()).flatten()
        })
        .next_back()
        .map(str::to_owned)
}

/// A numeric setting of /etc/login.defs, or `default`.
pub(crate) fn login_def(key: &str, default: u64) -> u64 {
    login_def_text(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The mode useradd gives a new home: HOME_MODE, else 0777 less UMASK (login.defs, octal;
/// 022 when unset), so 0755 on Debian.
pub(crate) fn home_mode() -> u32 {
    home_mode_in(&fs::read_to_string("/etc/login.defs").unwrap_or_default())
}

fn home_mode_in(defs: &str) -> u32 {
    let octal = |key| setting(defs, key).and_then(|v| u32::from_str_radix(&v, 8).ok());
    octal("HOME_MODE").unwrap_or_else(|| 0o777 & !octal("UMASK").unwrap_or(0o022)) & 0o7777
}

/// A setting of /etc/default/useradd (`KEY=value`).
pub(crate) fn useradd_default(key: &str) -> Option<String> {
    let text = fs::read_to_string("/etc/default/useradd").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .map(str::to_owned)
}

/// Days since the epoch for shadow's "last change" field: SOURCE_DATE_EPOCH when set
/// (as shadow-utils reads it), else the step's clock (kiln's is the source date epoch).
pub(crate) fn today() -> u64 {
    let from_env = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let secs = from_env.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    secs / 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(text: &str) -> Db {
        Db {
            path: GROUP,
            before: text.to_owned(),
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn members_are_removed_or_renamed_in_place() {
        let mut g = db("web:x:2000:app,bob\nsudo:x:27:app\nusers:x:100:\n");
        assert!(edit_members(&mut g, 3, "app", Some("app2")));
        assert_eq!(
            g.lines,
            ["web:x:2000:app2,bob", "sudo:x:27:app2", "users:x:100:"]
        );
        assert!(edit_members(&mut g, 3, "app2", None));
        assert_eq!(g.lines, ["web:x:2000:bob", "sudo:x:27:", "users:x:100:"]);
        assert!(!edit_members(&mut g, 3, "nobody", None));
    }

    #[test]
    fn home_mode_follows_login_defs() {
        assert_eq!(home_mode_in(""), 0o755);
        assert_eq!(home_mode_in("UMASK\t\t077\n"), 0o700);
        assert_eq!(home_mode_in("UMASK 022\nHOME_MODE 0750\n"), 0o750);
        assert_eq!(
            setting("# UID_MIN 5\nUID_MIN 1000\nUID_MIN 2000\n", "UID_MIN").as_deref(),
            Some("2000")
        );
    }

    #[test]
    fn short_lines_are_padded() {
        let g = db("odd:x\n");
        assert_eq!(g.fields(0, 4), ["odd", "x", "", ""]);
        assert_eq!(g.find("odd"), Some(0));
        assert_eq!(g.find("od"), None);
    }
}
