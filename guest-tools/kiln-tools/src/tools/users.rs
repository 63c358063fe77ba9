//! useradd/groupadd (shadow-utils options) and adduser/addgroup (busybox/Alpine options):
//! RUN lines create users in nearly every Dockerfile, and in a kiln step they are plain
//! edits of /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow plus a home directory.
//! New ids are the lowest free ones in the Debian ranges (users 1000-59999, system
//! 100-999 counting down from 999, as shadow-utils does).

use std::fs;
use std::io;

use super::users_db::{
    Db, GROUP, GSHADOW, PASSWD, SHADOW, SUBGID, SUBUID, home_mode, login_def, parse_one, today,
    useradd_default,
};

use crate::opts::{self, OptSpec, opt};
use crate::passwd::{self, Entry};
use crate::sys;
use crate::util::{self, describe, warn};
use crate::walk::{join, read_dir_sorted};

/// The skeleton directory when neither `-k` nor /etc/default/useradd names one.
const DEFAULT_SKEL: &str = "/etc/skel";

/// shadow-utils' defaults where /etc/login.defs is silent.
const UID_MIN: u64 = 1000;
const UID_MAX: u64 = 60_000;
const SYS_UID_MIN: u64 = 101;
const SUB_ID_MIN: u64 = 100_000;
const SUB_ID_COUNT: u64 = 65_536;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
}

/// The lowest free id in `lo..=hi`, or the highest when `descending` (system ids).
fn free_id(used: &[u32], lo: u32, hi: u32, descending: bool) -> Option<u32> {
    if descending {
        (lo..=hi).rev().find(|id| !used.contains(id))
    } else {
        let max = used
            .iter()
            .copied()
            .filter(|id| (lo..=hi).contains(id))
            .max();
        match max {
            Some(m) if m < hi => Some(m + 1),
            Some(_) => (lo..=hi).find(|id| !used.contains(id)),
            None => Some(lo),
        }
    }
}

/// A login.defs bound as an id (ids past u32 are clamped).
fn def_id(key: &str, default: u64) -> u32 {
    u32::try_from(login_def(key, default)).unwrap_or(u32::MAX)
}

/// A new id: system ids count down from SYS_*_MAX, others up from *_MIN (login.defs).
fn pick_id(used: &[u32], system: bool, kind: &str) -> Result<u32, String> {
    let min = def_id(&format!("{kind}_MIN"), UID_MIN);
    let max = def_id(&format!("{kind}_MAX"), UID_MAX);
    let id = if system {
        let sys_min = def_id(&format!("SYS_{kind}_MIN"), SYS_UID_MIN);
        let sys_max = def_id(&format!("SYS_{kind}_MAX"), u64::from(min.saturating_sub(1)));
        free_id(used, sys_min, sys_max, true)
    } else {
        free_id(used, min, max, false)
    };
    id.ok_or_else(|| format!("can't get unique {kind}"))
}

/// /etc/group and (when the image has it) /etc/gshadow, edited together.
/// `backups` is shadow-utils' behaviour (busybox writes none).
pub(crate) struct GroupFiles {
    pub(crate) group: Db,
    pub(crate) gshadow: Option<Db>,
    backups: bool,
}

impl GroupFiles {
    pub(crate) fn open(backups: bool) -> Result<GroupFiles, String> {
        Ok(GroupFiles {
            group: Db::open(GROUP)?,
            gshadow: Db::optional(GSHADOW)?,
            backups,
        })
    }

    pub(crate) fn save(&self) -> Result<(), String> {
        self.group.save(self.backups)?;
        match &self.gshadow {
            Some(g) => g.save(self.backups),
            None => Ok(()),
        }
    }

    /// The line index and gid of group `spec` (a name, or a number when no name matches).
    pub(crate) fn lookup(&self, spec: &str) -> Option<(usize, u32)> {
        let i = self
            .group
            .find(spec)
            .or_else(|| (0..self.group.len()).find(|&i| self.group.fields(i, 3)[2] == spec))?;
        Some((i, self.group.fields(i, 3)[2].parse().ok()?))
    }

    fn add(&mut self, name: &str, gid: u32) {
        self.group.push(format!("{name}:x:{gid}:"));
        if let Some(g) = &mut self.gshadow {
            g.push(format!("{name}:!::"));
        }
    }

    /// Adds `user` to the member lists of `groups` (names or gids), in group and gshadow.
    pub(crate) fn add_members(&mut self, user: &str, groups: &[String]) -> Result<(), String> {
        for g in groups {
            let (i, _) = self
                .lookup(g)
                .ok_or_else(|| format!("group '{g}' does not exist"))?;
            let name = self.group.fields(i, 4)[0].clone();
            append_member(&mut self.group, i, user);
            if let Some(gs) = &mut self.gshadow
                && let Some(j) = gs.find(&name)
            {
                append_member(gs, j, user);
            }
        }
        Ok(())
    }
}

/// The files useradd edits; shadow, subuid and subgid only when the image has them.
struct Files {
    passwd: Db,
    shadow: Option<Db>,
    subuid: Option<Db>,
    subgid: Option<Db>,
    groups: GroupFiles,
}

impl Files {
    fn open(backups: bool) -> Result<Files, String> {
        Ok(Files {
            passwd: Db::open(PASSWD)?,
            shadow: Db::optional(SHADOW)?,
            subuid: Db::optional(SUBUID)?,
            subgid: Db::optional(SUBGID)?,
            groups: GroupFiles::open(backups)?,
        })
    }

    fn save(&self) -> Result<(), String> {
        let backups = self.groups.backups;
        self.passwd.save(backups)?;
        self.groups.save()?;
        for db in [&self.shadow, &self.subuid, &self.subgid]
            .into_iter()
            .flatten()
        {
            db.save(backups)?;
        }
        Ok(())
    }
}

/// The ids (third field) of every line of `db`.
pub(crate) fn ids(db: &Db) -> Vec<u32> {
    (0..db.len())
        .filter_map(|i| db.fields(i, 3)[2].parse().ok())
        .collect()
}

/// Appends `user` to line `i`'s member field (the 4th), unless it is there.
fn append_member(db: &mut Db, i: usize, user: &str) {
    let mut f = db.fields(i, 4);
    let mut members: Vec<&str> = f[3].split(',').filter(|m| !m.is_empty()).collect();
    if !members.contains(&user) {
        members.push(user);
        f[3] = members.join(",");
        db.set(i, &f);
    }
}

/// The lowest `count` ids from SUB_*_MIN not inside any range of `db` (`name:start:count`).
fn free_sub_range(db: &Db, kind: &str) -> u64 {
    let count = login_def(&format!("SUB_{kind}_COUNT"), SUB_ID_COUNT);
    let mut ranges: Vec<(u64, u64)> = (0..db.len())
        .filter_map(|i| {
            let f = db.fields(i, 3);
            Some((f[1].parse().ok()?, f[2].parse().ok()?))
        })
        .collect();
    ranges.sort_unstable();
    let mut start = login_def(&format!("SUB_{kind}_MIN"), SUB_ID_MIN);
    for (s, n) in ranges {
        if s < start.saturating_add(count) && start < s.saturating_add(n) {
            start = s.saturating_add(n);
        }
    }
    start
}

struct NewUser {
    name: String,
    uid: Option<u32>,
    system: bool,
    primary: Primary,
    groups: Vec<String>,
    home: Option<String>,
    create_home: bool,
    /// Where the new home's files come from (`-k`, SKEL of /etc/default/useradd).
    skel: String,
    shell: String,
    comment: String,
    non_unique: bool,
    /// The encrypted password (`useradd -p`); `!` (locked) otherwise.
    password: Option<String>,
    /// shadow-utils (backups, no aging for system accounts) rather than busybox.
    shadow_utils: bool,
}

enum Primary {
    /// Use this existing group (name or number).
    Existing(String),
    /// Create a group named after the user (gid = uid when free).
    Own,
    /// A fixed gid (busybox -S's nogroup, useradd -N's users group).
    Fixed(u32),
}

fn create_user(u: &NewUser) -> Result<(), String> {
    if !valid_name(&u.name) {
        return Err(format!("invalid user name '{}'", u.name));
    }
    let mut files = Files::open(u.shadow_utils)?;
    if files.passwd.find(&u.name).is_some() {
        return Err(format!("user '{}' already exists", u.name));
    }
    let used = ids(&files.passwd);
    let uid = match u.uid {
        Some(id) if used.contains(&id) && !u.non_unique => {
            return Err(format!("UID {id} is not unique"));
        }
        Some(id) => id,
        None => pick_id(&used, u.system, "UID")?,
    };
    let gid = primary_gid(&mut files, u, uid)?;
    let home = u
        .home
        .clone()
        .unwrap_or_else(|| format!("/home/{}", u.name));
    let name = &u.name;
    files.passwd.push(format!(
        "{name}:x:{uid}:{gid}:{}:{home}:{}",
        u.comment, u.shell
    ));
    // min:max:warn, empty for a system account (three fields, two colons).
    let aging = if u.system && u.shadow_utils {
        "::".to_owned()
    } else {
        let min = login_def("PASS_MIN_DAYS", 0);
        let max = login_def("PASS_MAX_DAYS", 99_999);
        format!("{min}:{max}:{}", login_def("PASS_WARN_AGE", 7))
    };
    let pw = u.password.as_deref().unwrap_or("!");
    if let Some(sh) = &mut files.shadow {
        sh.push(format!("{name}:{pw}:{}:{aging}:::", today()));
    }
    files.groups.add_members(name, &u.groups)?;
    if !u.system {
        for (db, kind) in [(&mut files.subuid, "UID"), (&mut files.subgid, "GID")] {
            if let Some(db) = db {
                let start = free_sub_range(db, kind);
                let count = login_def(&format!("SUB_{kind}_COUNT"), SUB_ID_COUNT);
                db.push(format!("{name}:{start}:{count}"));
            }
        }
    }
    files.save()?;
    if u.create_home && fs::symlink_metadata(&home).is_err() {
        make_home(&home, uid, gid, &u.skel)
            .map_err(|e| format!("cannot create home directory '{home}': {}", describe(&e)))?;
    }
    Ok(())
}

/// The new user's primary gid, creating its own group when asked.
fn primary_gid(files: &mut Files, u: &NewUser, uid: u32) -> Result<u32, String> {
    match &u.primary {
        Primary::Existing(g) => files
            .groups
            .lookup(g)
            .map(|(_, gid)| gid)
            .or_else(|| g.parse().ok())
            .ok_or_else(|| format!("group '{g}' does not exist")),
        Primary::Fixed(gid) => Ok(*gid),
        Primary::Own => {
            if files.groups.group.find(&u.name).is_some() {
                return Err(format!(
                    "group {} exists - if you want to add this user to that group, use -g.",
                    u.name
                ));
            }
            let used = ids(&files.groups.group);
            let gid = if used.contains(&uid) {
                pick_id(&used, u.system, "GID")?
            } else {
                uid
            };
            files.groups.add(&u.name, gid);
            Ok(gid)
        }
    }
}

/// Creates the home directory from /etc/skel, owned by the new user.
fn make_home(home: &str, uid: u32, gid: u32, skel: &str) -> io::Result<()> {
    if let Some((parent, _)) = home.rsplit_once('/')
        && !parent.is_empty()
    {
        fs::create_dir_all(parent)?;
    }
    fs::create_dir(home)?;
    sys::chmod(home, home_mode(), true)?;
    sys::chown(home, Some(uid), Some(gid), false)?;
    copy_skel(skel, home, uid, gid)
}

fn copy_skel(from: &str, to: &str, uid: u32, gid: u32) -> io::Result<()> {
    let Ok(names) = read_dir_sorted(from) else {
        return Ok(());
    };
    for name in names {
        let src = join(from, &name);
        let dst = join(to, &name);
        let st = sys::stat(&src, false)?;
        if st.is_dir() {
            fs::create_dir(&dst)?;
            copy_skel(&src, &dst, uid, gid)?;
        } else if st.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        sys::chmod(&dst, st.perm(), true)?;
        sys::chown(&dst, Some(uid), Some(gid), false)?;
    }
    Ok(())
}

fn report(tool: &str, result: Result<(), String>, code: i32) -> i32 {
    match result {
        Ok(()) => 0,
        Err(msg) => {
            warn(tool, msg);
            code
        }
    }
}

const USERADD: &[OptSpec] = &[
    opt('u', Some("uid"), true),
    opt('g', Some("gid"), true),
    opt('G', Some("groups"), true),
    opt('d', Some("home-dir"), true),
    opt('m', Some("create-home"), false),
    opt('M', Some("no-create-home"), false),
    opt('s', Some("shell"), true),
    opt('c', Some("comment"), true),
    opt('r', Some("system"), false),
    opt('U', Some("user-group"), false),
    opt('N', Some("no-user-group"), false),
    opt('o', Some("non-unique"), false),
    opt('l', Some("no-log-init"), false),
    opt('p', Some("password"), true),
    opt('K', Some("key"), true),
    opt('k', Some("skel"), true),
    opt('e', Some("expiredate"), true),
    opt('f', Some("inactive"), true),
];

fn parse_id(v: Option<&str>, what: &str) -> Result<Option<u32>, String> {
    v.map(|s| {
        s.parse::<u32>()
            .map_err(|_| format!("invalid {what} '{s}'"))
    })
    .transpose()
}

pub fn useradd(name: &str, args: Vec<String>) -> i32 {
    let (p, login) = match parse_one(name, &args, USERADD, "user name") {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let login = &login;
    let uid = match parse_id(p.value('u'), "user ID") {
        Ok(u) => u,
        Err(msg) => return report(name, Err(msg), 3),
    };
    let primary = match (p.value('g'), p.has('N')) {
        (Some(g), _) => Primary::Existing(g.to_owned()),
        (None, true) => Primary::Fixed(100),
        (None, false) => Primary::Own,
    };
    let user = NewUser {
        name: login.clone(),
        uid,
        system: p.has('r'),
        primary,
        groups: p
            .values('G')
            .flat_map(|g| g.split(','))
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        home: p.value('d').map(str::to_owned),
        create_home: p.has('m') && !p.has('M'),
        skel: p
            .value('k')
            .map(str::to_owned)
            .or_else(|| useradd_default("SKEL"))
            .unwrap_or_else(|| DEFAULT_SKEL.to_owned()),
        shell: p
            .value('s')
            .map(str::to_owned)
            .or_else(|| useradd_default("SHELL"))
            .unwrap_or_else(|| "/bin/sh".to_owned()),
        comment: p.value('c').unwrap_or("").to_owned(),
        non_unique: p.has('o'),
        password: p.value('p').map(str::to_owned),
        shadow_utils: true,
    };
    let code = if passwd::users().iter().any(|e| e.name == *login) {
        9
    } else {
        1
    };
    report(name, create_user(&user), code)
}

pub fn groupadd(name: &str, args: Vec<String>) -> i32 {
    let specs = [
        opt('g', Some("gid"), true),
        opt('r', Some("system"), false),
        opt('f', Some("force"), false),
        opt('o', Some("non-unique"), false),
    ];
    let (p, group) = match parse_one(name, &args, &specs, "group name") {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let group = &group;
    let gid = match parse_id(p.value('g'), "group ID") {
        Ok(g) => g,
        Err(msg) => return report(name, Err(msg), 3),
    };
    let flags = GroupFlags {
        system: p.has('r'),
        force: p.has('f'),
        non_unique: p.has('o'),
        shadow_utils: true,
    };
    report(name, new_group(group, gid, &flags), 9)
}

struct GroupFlags {
    system: bool,
    force: bool,
    non_unique: bool,
    shadow_utils: bool,
}

fn new_group(group: &str, gid: Option<u32>, flags: &GroupFlags) -> Result<(), String> {
    if !valid_name(group) {
        return Err(format!("'{group}' is not a valid group name"));
    }
    let mut files = GroupFiles::open(flags.shadow_utils)?;
    if files.group.find(group).is_some() {
        return if flags.force {
            Ok(())
        } else {
            Err(format!("group '{group}' already exists"))
        };
    }
    let used = ids(&files.group);
    let gid = match gid {
        Some(id) if used.contains(&id) && !flags.non_unique => {
            if flags.force {
                pick_id(&used, flags.system, "GID")?
            } else {
                return Err(format!("GID '{id}' already exists"));
            }
        }
        Some(id) => id,
        None => pick_id(&used, flags.system, "GID")?,
    };
    files.add(group, gid);
    files.save()
}

/// busybox `adduser [-DSH] [-h DIR] [-s SHELL] [-G GRP] [-g GECOS] [-u UID] USER [GROUP]`.
pub fn adduser(name: &str, args: Vec<String>) -> i32 {
    let specs = [
        opt('h', Some("home"), true),
        opt('g', Some("gecos"), true),
        opt('s', Some("shell"), true),
        opt('G', Some("ingroup"), true),
        opt('S', Some("system"), false),
        opt('D', Some("disabled-password"), false),
        opt('H', Some("no-create-home"), false),
        opt('u', Some("uid"), true),
        opt('k', None, true),
    ];
    let p = match opts::parse(&args, &specs, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    match p.operands.as_slice() {
        [user, group] => report(name, busybox_add_member(user, group), 1),
        [user] => {
            let uid = match parse_id(p.value('u'), "user ID") {
                Ok(u) => u,
                Err(msg) => return report(name, Err(msg), 1),
            };
            let system = p.has('S');
            let primary = match p.value('G') {
                Some(g) => Primary::Existing(g.to_owned()),
                None if system => {
                    Primary::Fixed(passwd::resolve_group("nogroup").unwrap_or(65_534))
                }
                None => Primary::Own,
            };
            let u = NewUser {
                name: user.clone(),
                uid,
                system,
                primary,
                groups: Vec::new(),
                home: p.value('h').map(str::to_owned),
                create_home: !p.has('H'),
                skel: p.value('k').unwrap_or(DEFAULT_SKEL).to_owned(),
                shell: p
                    .value('s')
                    .unwrap_or(if system { "/sbin/nologin" } else { "/bin/sh" })
                    .to_owned(),
                comment: p.value('g').unwrap_or("").to_owned(),
                non_unique: false,
                password: None,
                shadow_utils: false,
            };
            report(name, create_user(&u), 1)
        }
        _ => util::usage_error(name, "expected USER [GROUP]"),
    }
}

/// busybox's `adduser USER GROUP` / `addgroup USER GROUP` (no backups).
fn busybox_add_member(user: &str, group: &str) -> Result<(), String> {
    let mut files = GroupFiles::open(false)?;
    files.add_members(user, &[group.to_owned()])?;
    files.save()
}

/// busybox `addgroup [-g GID] [-S] GROUP` or `addgroup USER GROUP`.
pub fn addgroup(name: &str, args: Vec<String>) -> i32 {
    let specs = [opt('g', Some("gid"), true), opt('S', Some("system"), false)];
    let p = match opts::parse(&args, &specs, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    match p.operands.as_slice() {
        [user, group] => {
            if !passwd::users().iter().any(|e: &Entry| e.name == *user) {
                return report(name, Err(format!("unknown user {user}")), 1);
            }
            report(name, busybox_add_member(user, group), 1)
        }
        [group] => {
            let gid = match parse_id(p.value('g'), "group ID") {
                Ok(g) => g,
                Err(msg) => return report(name, Err(msg), 1),
            };
            let flags = GroupFlags {
                system: p.has('S'),
                force: false,
                non_unique: false,
                shadow_utils: false,
            };
            report(name, new_group(group, gid, &flags), 1)
        }
        _ => util::usage_error(name, "expected GROUP or USER GROUP"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_allocation() {
        assert_eq!(free_id(&[0, 1, 65534], 1000, 59_999, false), Some(1000));
        assert_eq!(free_id(&[0, 1000, 1001], 1000, 59_999, false), Some(1002));
        assert_eq!(free_id(&[0, 999], 100, 999, true), Some(998));
        assert_eq!(
            free_id(&(100..=999).collect::<Vec<_>>(), 100, 999, true),
            None
        );
    }

    #[test]
    fn names() {
        assert!(valid_name("app_user-1"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a:b"));
        assert!(!valid_name(""));
    }
}
