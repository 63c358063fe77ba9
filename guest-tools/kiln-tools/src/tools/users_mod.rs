//! usermod, userdel and groupmod (shadow-utils options): edits of the account files in
//! place, each file written (with its `FILE-` backup) only when shadow-utils writes it,
//! so the files and their backups come out as Debian's tools leave them.

use std::fs;

use super::users::{GroupFiles, ids};
use super::users_db::{Db, PASSWD, SHADOW, SUBGID, SUBUID, edit_members, parse_one, today};
use crate::opts::opt;
use crate::sys;
use crate::util::{describe, warn};
use crate::walk::{join, read_dir_sorted};

/// shadow-utils' exit statuses.
const E_USAGE: i32 = 2;
const E_BAD_ARG: i32 = 3;
const E_UID_IN_USE: i32 = 4;
const E_NOTFOUND: i32 = 6;
const E_NAME_IN_USE: i32 = 9;
const E_HOMEDIR: i32 = 12;

/// A failure: shadow-utils' message and exit status.
type Failure = (String, i32);

fn done(tool: &str, result: Result<(), Failure>) -> i32 {
    match result {
        Ok(()) => 0,
        Err((msg, code)) => {
            warn(tool, msg);
            code
        }
    }
}

fn io_fail(msg: String) -> Failure {
    (msg, 1)
}

/// The passwd line of `user` as fields, and its index.
fn user_entry(passwd: &Db, user: &str) -> Result<(usize, Vec<String>), Failure> {
    let i = passwd
        .find(user)
        .ok_or_else(|| (format!("user '{user}' does not exist"), E_NOTFOUND))?;
    Ok((i, passwd.fields(i, 7)))
}

/// What `usermod` was asked to change.
#[derive(Default)]
struct Changes {
    append: bool,
    groups: Option<Vec<String>>,
    shell: Option<String>,
    home: Option<String>,
    move_home: bool,
    login: Option<String>,
    uid: Option<u32>,
    gid: Option<String>,
    comment: Option<String>,
    password: Option<String>,
    lock: bool,
    unlock: bool,
    non_unique: bool,
}

impl Changes {
    fn passwd(&self) -> bool {
        self.shell.is_some()
            || self.home.is_some()
            || self.login.is_some()
            || self.uid.is_some()
            || self.gid.is_some()
            || self.comment.is_some()
            || self.shadow()
    }

    fn shadow(&self) -> bool {
        self.lock || self.unlock || self.password.is_some() || self.login.is_some()
    }

    fn group(&self) -> bool {
        self.groups.is_some() || self.login.is_some()
    }
}

pub fn usermod(name: &str, args: Vec<String>) -> i32 {
    let specs = [
        opt('a', Some("append"), false),
        opt('G', Some("groups"), true),
        opt('s', Some("shell"), true),
        opt('d', Some("home"), true),
        opt('m', Some("move-home"), false),
        opt('l', Some("login"), true),
        opt('u', Some("uid"), true),
        opt('g', Some("gid"), true),
        opt('c', Some("comment"), true),
        opt('p', Some("password"), true),
        opt('L', Some("lock"), false),
        opt('U', Some("unlock"), false),
        opt('o', Some("non-unique"), false),
    ];
    let (p, user) = match parse_one(name, &args, &specs, "user name") {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let user = &user;
    let uid = match p.value('u').map(str::parse::<u32>).transpose() {
        Ok(u) => u,
        Err(_) => return done(name, Err(("invalid user ID".to_owned(), E_BAD_ARG))),
    };
    let owned = |c| p.value(c).map(str::to_owned);
    let changes = Changes {
        append: p.has('a'),
        groups: p.value('G').map(|g| {
            g.split(',')
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        shell: owned('s'),
        home: owned('d'),
        move_home: p.has('m'),
        login: owned('l'),
        uid,
        gid: owned('g'),
        comment: owned('c'),
        password: owned('p'),
        lock: p.has('L'),
        unlock: p.has('U'),
        non_unique: p.has('o'),
    };
    if changes.append && changes.groups.is_none() {
        return done(
            name,
            Err(("-a flag is ONLY allowed with the -G flag".into(), E_USAGE)),
        );
    }
    done(name, modify_user(name, user, &changes))
}

fn modify_user(tool: &str, user: &str, c: &Changes) -> Result<(), Failure> {
    let mut passwd = Db::open(PASSWD).map_err(io_fail)?;
    let (i, mut f) = user_entry(&passwd, user)?;
    let mut groups = GroupFiles::open(true).map_err(io_fail)?;
    let old = (
        f[2].parse::<u32>().ok(),
        f[3].parse::<u32>().ok(),
        f[5].clone(),
    );
    apply_passwd_changes(&passwd, &groups, &mut f, c)?;
    let new_name = f[0].clone();
    if let Some(list) = &c.groups {
        set_groups(&mut groups, user, list, c.append)?;
    }
    if c.login.is_some() {
        edit_members(&mut groups.group, 3, user, Some(&new_name));
        if let Some(gs) = &mut groups.gshadow {
            edit_members(gs, 3, user, Some(&new_name));
        }
    }
    put(&mut passwd, i, &f, c.login.is_some());
    let mut shadow = Db::optional(SHADOW).map_err(io_fail)?;
    if let Some(sh) = &mut shadow
        && let Some(j) = sh.find(user)
    {
        let mut s = sh.fields(j, 9);
        s[0].clone_from(&new_name);
        s[1] = new_password(tool, &s[1], c);
        if c.password.is_some() {
            // A new password is a change: its day is recorded (usermod -p does).
            s[2] = today().to_string();
        }
        put(sh, j, &s, c.login.is_some());
    }
    save_all(c, &passwd, shadow.as_ref(), &groups)?;
    finish_home(&old, &f, c)
}

/// Stores line `i`: in place, or at the end when the entry was renamed.
fn put(db: &mut Db, i: usize, fields: &[String], renamed: bool) {
    if renamed {
        db.move_to_end(i, fields);
    } else {
        db.set(i, fields);
    }
}

/// The passwd fields after the options that change them.
fn apply_passwd_changes(
    passwd: &Db,
    groups: &GroupFiles,
    f: &mut [String],
    c: &Changes,
) -> Result<(), Failure> {
    if let Some(login) = &c.login {
        if passwd.find(login).is_some() {
            return Err((format!("user '{login}' already exists"), E_NAME_IN_USE));
        }
        f[0].clone_from(login);
    }
    if let Some(uid) = c.uid {
        let taken = ids(passwd).contains(&uid) && f[2] != uid.to_string();
        if taken && !c.non_unique {
            return Err((format!("UID '{uid}' already exists"), E_UID_IN_USE));
        }
        f[2] = uid.to_string();
    }
    if let Some(g) = &c.gid {
        let (_, gid) = groups
            .lookup(g)
            .ok_or_else(|| (format!("group '{g}' does not exist"), E_NOTFOUND))?;
        f[3] = gid.to_string();
    }
    for (value, field) in [(&c.comment, 4), (&c.home, 5), (&c.shell, 6)] {
        if let Some(v) = value {
            f[field].clone_from(v);
        }
    }
    Ok(())
}

/// The shadow password field after -p, -L and -U (as shadow-utils: -L prefixes `!`
/// once; -U removes it unless that leaves an empty password, which it refuses).
fn new_password(tool: &str, current: &str, c: &Changes) -> String {
    let mut pw = c.password.clone().unwrap_or_else(|| current.to_owned());
    if c.lock && !pw.starts_with('!') {
        pw.insert(0, '!');
    }
    if c.unlock && pw.starts_with('!') {
        if pw.len() == 1 {
            warn(
                tool,
                "unlocking the user's password would result in a passwordless account.\n\
                 You should set a password with usermod -p to unlock this user's password.",
            );
        } else {
            pw.remove(0);
        }
    }
    pw
}

/// `-G LIST` (the exact supplementary groups) or `-aG LIST` (added to the current ones).
fn set_groups(
    groups: &mut GroupFiles,
    user: &str,
    list: &[String],
    append: bool,
) -> Result<(), Failure> {
    for g in list {
        if groups.lookup(g).is_none() {
            return Err((format!("group '{g}' does not exist"), E_NOTFOUND));
        }
    }
    if !append {
        let names: Vec<String> = list
            .iter()
            .filter_map(|g| groups.lookup(g))
            .map(|(i, _)| groups.group.fields(i, 1)[0].clone())
            .collect();
        drop_member_except(&mut groups.group, user, &names);
        if let Some(gs) = &mut groups.gshadow {
            drop_member_except(gs, user, &names);
        }
    }
    groups.add_members(user, list).map_err(io_fail)
}

/// Removes `user` from the member list of every group not named in `keep`.
fn drop_member_except(db: &mut Db, user: &str, keep: &[String]) {
    for i in 0..db.len() {
        let mut f = db.fields(i, 4);
        if keep.contains(&f[0]) {
            continue;
        }
        let members: Vec<&str> = f[3].split(',').filter(|m| !m.is_empty()).collect();
        if members.contains(&user) {
            f[3] = members
                .into_iter()
                .filter(|m| *m != user)
                .collect::<Vec<_>>()
                .join(",");
            db.set(i, &f);
        }
    }
}

fn save_all(
    c: &Changes,
    passwd: &Db,
    shadow: Option<&Db>,
    groups: &GroupFiles,
) -> Result<(), Failure> {
    if c.passwd() {
        passwd.save(true).map_err(io_fail)?;
    }
    if c.shadow()
        && let Some(sh) = shadow
    {
        sh.save(true).map_err(io_fail)?;
    }
    if c.group() {
        groups.save().map_err(io_fail)?;
    }
    Ok(())
}

/// After the files: `-d DIR -m` moves the home; a new uid or primary gid is given to
/// what the user owned in the home directory (as usermod does).
fn finish_home(
    old: &(Option<u32>, Option<u32>, String),
    f: &[String],
    c: &Changes,
) -> Result<(), Failure> {
    let (old_uid, old_gid, old_home) = old;
    let home = &f[5];
    if c.move_home && c.home.is_some() && home != old_home && fs::metadata(old_home).is_ok() {
        fs::rename(old_home, home).map_err(|e| {
            let msg = format!(
                "cannot rename directory {old_home} to {home}: {}",
                describe(&e)
            );
            (msg, E_HOMEDIR)
        })?;
    }
    let new = (f[2].parse().ok(), f[3].parse().ok());
    if (c.uid.is_some() || c.gid.is_some()) && fs::metadata(home).is_ok() {
        let swap = |old: &Option<u32>, new: Option<u32>| old.zip(new).filter(|(o, n)| o != n);
        let (uids, gids) = (swap(old_uid, new.0), swap(old_gid, new.1));
        chown_tree(home, uids, gids)
            .map_err(|e| (format!("{home}: {}", describe(&e)), E_HOMEDIR))?;
    }
    Ok(())
}

/// Gives entries under `path` owned by `uid.0` (`gid.0`) the owner `uid.1` (`gid.1`).
fn chown_tree(path: &str, uid: Option<(u32, u32)>, gid: Option<(u32, u32)>) -> std::io::Result<()> {
    let st = sys::stat(path, false)?;
    let new_uid = uid.filter(|(o, _)| *o == st.uid).map(|(_, n)| n);
    let new_gid = gid.filter(|(o, _)| *o == st.gid).map(|(_, n)| n);
    if new_uid.is_some() || new_gid.is_some() {
        sys::chown(path, new_uid, new_gid, false)?;
    }
    if st.is_dir() {
        for name in read_dir_sorted(path)? {
            chown_tree(&join(path, &name), uid, gid)?;
        }
    }
    Ok(())
}

pub fn userdel(name: &str, args: Vec<String>) -> i32 {
    let specs = [
        opt('r', Some("remove"), false),
        opt('f', Some("force"), false),
    ];
    let (p, user) = match parse_one(name, &args, &specs, "user name") {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let user = &user;
    done(name, delete_user(name, user, p.has('r')))
}

fn delete_user(tool: &str, user: &str, remove_home: bool) -> Result<(), Failure> {
    let mut passwd = Db::open(PASSWD).map_err(io_fail)?;
    let (i, f) = user_entry(&passwd, user)?;
    passwd.remove(i);
    let mut groups = GroupFiles::open(true).map_err(io_fail)?;
    edit_members(&mut groups.group, 3, user, None);
    if let Some(gs) = &mut groups.gshadow {
        edit_members(gs, 3, user, None);
    }
    drop_own_group(&mut groups, &passwd, user, &f[3]);
    let mut others = Vec::new();
    for path in [SHADOW, SUBUID, SUBGID] {
        if let Some(mut db) = Db::optional(path).map_err(io_fail)? {
            let found = db.find(user);
            if let Some(j) = found {
                db.remove(j);
            }
            // The sub-id files are rewritten only when the user had ranges there.
            if found.is_some() || path == SHADOW {
                others.push(db);
            }
        }
    }
    passwd.save(true).map_err(io_fail)?;
    groups.save().map_err(io_fail)?;
    for db in &others {
        db.save(true).map_err(io_fail)?;
    }
    if remove_home {
        remove_home_dir(tool, user, &f[5])?;
    }
    Ok(())
}

/// Deletes the user's own group (named after it, with its gid as primary) unless another
/// user has it as primary group, as USERGROUPS_ENAB does.
fn drop_own_group(groups: &mut GroupFiles, passwd: &Db, user: &str, gid: &str) {
    let Some(g) = groups.group.find(user) else {
        return;
    };
    let fields = groups.group.fields(g, 4);
    let primary_of_other = (0..passwd.len()).any(|i| passwd.fields(i, 4)[3] == fields[2]);
    if fields[2] != gid || primary_of_other || !fields[3].is_empty() {
        return;
    }
    groups.group.remove(g);
    if let Some(gs) = &mut groups.gshadow
        && let Some(j) = gs.find(user)
    {
        gs.remove(j);
    }
}

fn remove_home_dir(tool: &str, user: &str, home: &str) -> Result<(), Failure> {
    match fs::symlink_metadata(home) {
        Ok(_) => fs::remove_dir_all(home).map_err(|e| {
            (
                format!("error removing directory {home}: {}", describe(&e)),
                E_HOMEDIR,
            )
        }),
        Err(_) => {
            warn(tool, format!("{user} home directory ({home}) not found"));
            Ok(())
        }
    }
}

pub fn groupmod(name: &str, args: Vec<String>) -> i32 {
    let specs = [
        opt('n', Some("new-name"), true),
        opt('g', Some("gid"), true),
        opt('o', Some("non-unique"), false),
    ];
    let (p, group) = match parse_one(name, &args, &specs, "group name") {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let group = &group;
    let gid = match p.value('g').map(str::parse::<u32>).transpose() {
        Ok(g) => g,
        Err(_) => return done(name, Err(("invalid group ID".to_owned(), E_BAD_ARG))),
    };
    done(name, modify_group(group, p.value('n'), gid, p.has('o')))
}

fn modify_group(
    group: &str,
    new_name: Option<&str>,
    gid: Option<u32>,
    non_unique: bool,
) -> Result<(), Failure> {
    let mut groups = GroupFiles::open(true).map_err(io_fail)?;
    let i = groups
        .group
        .find(group)
        .ok_or_else(|| (format!("group '{group}' does not exist"), E_NOTFOUND))?;
    let mut f = groups.group.fields(i, 4);
    if let Some(n) = new_name {
        if groups.group.find(n).is_some() {
            return Err((format!("group '{n}' already exists"), E_NAME_IN_USE));
        }
        if let Some(gs) = &mut groups.gshadow
            && let Some(j) = gs.find(group)
        {
            let mut s = gs.fields(j, 4);
            s[0] = n.to_owned();
            gs.move_to_end(j, &s);
        }
        f[0] = n.to_owned();
    }
    let old_gid = std::mem::take(&mut f[2]);
    f[2] = match gid {
        Some(g) if ids(&groups.group).contains(&g) && old_gid != g.to_string() && !non_unique => {
            return Err((format!("GID '{g}' already exists"), E_UID_IN_USE));
        }
        Some(g) => g.to_string(),
        None => old_gid.clone(),
    };
    put(&mut groups.group, i, &f, new_name.is_some());
    if gid.is_some() {
        regroup_users(&old_gid, &f[2])?;
    }
    groups.save().map_err(io_fail)
}

/// Users whose primary group was `old` get `new` (groupmod -g).
fn regroup_users(old: &str, new: &str) -> Result<(), Failure> {
    let mut passwd = Db::open(PASSWD).map_err(io_fail)?;
    for i in 0..passwd.len() {
        let mut f = passwd.fields(i, 7);
        if f[3] == old {
            f[3] = new.to_owned();
            passwd.set(i, &f);
        }
    }
    passwd.save(true).map_err(io_fail)
}
