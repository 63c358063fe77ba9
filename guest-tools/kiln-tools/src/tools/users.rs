//! useradd/groupadd (shadow-utils options) and adduser/addgroup (busybox/Alpine options):
//! RUN lines create users in nearly every Dockerfile, and in a kiln step they are plain
//! edits of /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow plus a home directory.
//! New ids are the lowest free ones in the Debian ranges (users 1000-59999, system
//! 100-999 counting down from 999, as shadow-utils does).

use std::fs;
use std::io::{self, Write};

use crate::opts::{self, OptSpec, opt};
use crate::passwd::{self, Entry};
use crate::sys;
use crate::util::{self, describe, warn};
use crate::walk::{join, read_dir_sorted};

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";
const SHADOW: &str = "/etc/shadow";
const GSHADOW: &str = "/etc/gshadow";

/// Days since the epoch for shadow's "last change" field, from the (reproducible) clock.
fn today() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

fn append_line(path: &str, line: &str) -> io::Result<()> {
    let existing = fs::read_to_string(path).unwrap_or_default();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    if !existing.is_empty() && !existing.ends_with('\n') {
        f.write_all(b"\n")?;
    }
    writeln!(f, "{line}")
}

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

fn pick_id(used: &[u32], system: bool) -> Result<u32, String> {
    let id = if system {
        free_id(used, 100, 999, true)
    } else {
        free_id(used, 1000, 59_999, false)
    };
    id.ok_or_else(|| "can't get unique ID".to_owned())
}

fn add_group(name: &str, gid: u32) -> io::Result<()> {
    append_line(GROUP, &format!("{name}:x:{gid}:"))?;
    if fs::metadata(GSHADOW).is_ok() {
        append_line(GSHADOW, &format!("{name}:!::"))?;
    }
    Ok(())
}

/// Adds `user` to the member lists of `groups` in /etc/group.
fn add_members(user: &str, groups: &[String]) -> Result<(), String> {
    if groups.is_empty() {
        return Ok(());
    }
    let text = fs::read_to_string(GROUP).map_err(|e| format!("{GROUP}: {}", describe(&e)))?;
    let mut found = vec![false; groups.len()];
    let mut out = String::new();
    for line in text.lines() {
        let mut fields: Vec<String> = line.split(':').map(str::to_owned).collect();
        if fields.len() >= 4
            && let Some(i) = groups
                .iter()
                .position(|g| *g == fields[0] || Some(g.as_str()) == Some(fields[2].as_str()))
        {
            found[i] = true;
            let members: Vec<&str> = fields[3].split(',').filter(|m| !m.is_empty()).collect();
            if !members.contains(&user) {
                fields[3] = members
                    .into_iter()
                    .chain([user])
                    .collect::<Vec<_>>()
                    .join(",");
            }
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    if let Some(i) = found.iter().position(|f| !f) {
        return Err(format!("group '{}' does not exist", groups[i]));
    }
    fs::write(GROUP, out).map_err(|e| format!("{GROUP}: {}", describe(&e)))
}

struct NewUser {
    name: String,
    uid: Option<u32>,
    system: bool,
    primary: Primary,
    groups: Vec<String>,
    home: Option<String>,
    create_home: bool,
    shell: String,
    comment: String,
    non_unique: bool,
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
    let users = passwd::users();
    if users.iter().any(|e| e.name == u.name) {
        return Err(format!("user '{}' already exists", u.name));
    }
    let used: Vec<u32> = users.iter().map(|e| e.id).collect();
    let uid = match u.uid {
        Some(id) if used.contains(&id) && !u.non_unique => {
            return Err(format!("UID {id} is not unique"));
        }
        Some(id) => id,
        None => pick_id(&used, u.system)?,
    };
    let gid = match &u.primary {
        Primary::Existing(g) => passwd::resolve_group(g)
            .filter(|gid| passwd::groups().iter().any(|e| e.id == *gid) || g.parse::<u32>().is_ok())
            .ok_or_else(|| format!("group '{g}' does not exist"))?,
        Primary::Fixed(gid) => *gid,
        Primary::Own => {
            let groups = passwd::groups();
            if groups.iter().any(|g| g.name == u.name) {
                return Err(format!(
                    "group {} exists - if you want to add this user to that group, use -g.",
                    u.name
                ));
            }
            let used: Vec<u32> = groups.iter().map(|g| g.id).collect();
            let gid = if used.contains(&uid) {
                pick_id(&used, u.system)?
            } else {
                uid
            };
            add_group(&u.name, gid).map_err(|e| format!("{GROUP}: {}", describe(&e)))?;
            gid
        }
    };
    let home = u
        .home
        .clone()
        .unwrap_or_else(|| format!("/home/{}", u.name));
    append_line(
        PASSWD,
        &format!("{}:x:{uid}:{gid}:{}:{home}:{}", u.name, u.comment, u.shell),
    )
    .map_err(|e| format!("{PASSWD}: {}", describe(&e)))?;
    if fs::metadata(SHADOW).is_ok() {
        append_line(SHADOW, &format!("{}:!:{}:0:99999:7:::", u.name, today()))
            .map_err(|e| format!("{SHADOW}: {}", describe(&e)))?;
    }
    add_members(&u.name, &u.groups)?;
    if u.create_home && fs::symlink_metadata(&home).is_err() {
        make_home(&home, uid, gid)
            .map_err(|e| format!("cannot create home directory '{home}': {}", describe(&e)))?;
    }
    Ok(())
}

/// Creates the home directory from /etc/skel, owned by the new user.
fn make_home(home: &str, uid: u32, gid: u32) -> io::Result<()> {
    if let Some((parent, _)) = home.rsplit_once('/')
        && !parent.is_empty()
    {
        fs::create_dir_all(parent)?;
    }
    fs::create_dir(home)?;
    sys::chmod(home, 0o755, true)?;
    sys::chown(home, Some(uid), Some(gid), false)?;
    copy_skel("/etc/skel", home, uid, gid)
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
    let p = match opts::parse(&args, USERADD, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let [login] = p.operands.as_slice() else {
        return util::usage_error(name, "expected exactly one user name");
    };
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
        shell: p.value('s').unwrap_or("/bin/sh").to_owned(),
        comment: p.value('c').unwrap_or("").to_owned(),
        non_unique: p.has('o'),
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
    let p = match opts::parse(&args, &specs, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let [group] = p.operands.as_slice() else {
        return util::usage_error(name, "expected exactly one group name");
    };
    let gid = match parse_id(p.value('g'), "group ID") {
        Ok(g) => g,
        Err(msg) => return report(name, Err(msg), 3),
    };
    report(
        name,
        new_group(group, gid, p.has('r'), p.has('f'), p.has('o')),
        9,
    )
}

fn new_group(
    group: &str,
    gid: Option<u32>,
    system: bool,
    force: bool,
    non_unique: bool,
) -> Result<(), String> {
    if !valid_name(group) {
        return Err(format!("'{group}' is not a valid group name"));
    }
    let groups = passwd::groups();
    if groups.iter().any(|g| g.name == group) {
        return if force {
            Ok(())
        } else {
            Err(format!("group '{group}' already exists"))
        };
    }
    let used: Vec<u32> = groups.iter().map(|g| g.id).collect();
    let gid = match gid {
        Some(id) if used.contains(&id) && !non_unique => {
            if force {
                pick_id(&used, system)?
            } else {
                return Err(format!("GID '{id}' already exists"));
            }
        }
        Some(id) => id,
        None => pick_id(&used, system)?,
    };
    add_group(group, gid).map_err(|e| format!("{GROUP}: {}", describe(&e)))
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
        [user, group] => report(name, add_members(user, std::slice::from_ref(group)), 1),
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
                shell: p
                    .value('s')
                    .unwrap_or(if system { "/sbin/nologin" } else { "/bin/sh" })
                    .to_owned(),
                comment: p.value('g').unwrap_or("").to_owned(),
                non_unique: false,
            };
            report(name, create_user(&u), 1)
        }
        _ => util::usage_error(name, "expected USER [GROUP]"),
    }
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
            report(name, add_members(user, std::slice::from_ref(group)), 1)
        }
        [group] => {
            let gid = match parse_id(p.value('g'), "group ID") {
                Ok(g) => g,
                Err(msg) => return report(name, Err(msg), 1),
            };
            report(name, new_group(group, gid, p.has('S'), false, false), 1)
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
