//! id, groups, whoami and which.

use crate::opts::{self, OptSpec, opt};
use crate::passwd;
use crate::sys;
use crate::util::{self, warn};
use crate::walk::join;

const ID_SPECS: &[OptSpec] = &[
    opt('u', Some("user"), false),
    opt('g', Some("group"), false),
    opt('G', Some("groups"), false),
    opt('n', Some("name"), false),
    opt('r', Some("real"), false),
];

/// `primary` first, then `others` (sorted, as the kernel keeps them) without it: the
/// order GNU id and groups print.
fn primary_first(primary: u32, mut others: Vec<u32>) -> Vec<u32> {
    others.sort_unstable();
    others.dedup();
    others.retain(|g| *g != primary);
    others.insert(0, primary);
    others
}

/// The groups of `user` from /etc/group (what `getgrouplist` gives for a named user).
fn groups_of(user: &str, primary: u32) -> Vec<u32> {
    let ids = passwd::groups()
        .into_iter()
        .filter(|g| g.members.iter().any(|m| m == user))
        .map(|g| g.id)
        .collect();
    primary_first(primary, ids)
}

/// Who `id`/`groups` describe: the user named by `spec`, else this process (its
/// groups are what the runtime says, not what /etc/group lists: `USER 1000:1000` has
/// only its primary group, as under BuildKit).
fn subject(tool: &str, spec: Option<&String>) -> Option<(u32, u32, Vec<u32>)> {
    let Some(spec) = spec else {
        let (uid, gid) = sys::identity();
        return Some((uid, gid, primary_first(gid, sys::groups())));
    };
    let known = passwd::users()
        .iter()
        .any(|u| u.name == *spec || u.id.to_string() == *spec);
    match passwd::resolve_user(spec).filter(|_| known) {
        Some(e) => Some((e.id, e.gid, groups_of(&e.name, e.gid))),
        None => {
            warn(tool, format!("'{spec}': no such user"));
            None
        }
    }
}

pub fn id(name: &str, args: Vec<String>) -> i32 {
    let p = match opts::parse(&args, ID_SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let Some((uid, gid, groups)) = subject(name, p.operands.first()) else {
        return 1;
    };
    let mut names = passwd::Names::default();
    let show = |id: u32, is_user: bool, names: &mut passwd::Names| {
        if p.has('n') {
            if is_user {
                names.user(id)
            } else {
                names.group(id)
            }
        } else {
            id.to_string()
        }
    };
    if p.has('u') {
        println!("{}", show(uid, true, &mut names));
    } else if p.has('g') {
        println!("{}", show(gid, false, &mut names));
    } else if p.has('G') {
        let list: Vec<String> = groups.iter().map(|g| show(*g, false, &mut names)).collect();
        println!("{}", list.join(" "));
    } else {
        let with_name = |id: u32, name: Option<String>| match name {
            Some(n) => format!("{id}({n})"),
            None => id.to_string(),
        };
        let group_list: Vec<String> = groups
            .iter()
            .map(|g| with_name(*g, passwd::group_name(*g)))
            .collect();
        println!(
            "uid={} gid={} groups={}",
            with_name(uid, passwd::user_name(uid)),
            with_name(gid, passwd::group_name(gid)),
            group_list.join(",")
        );
    }
    0
}

/// `groups [USER]...`: group names of this process or of each user.
pub fn groups(name: &str, args: Vec<String>) -> i32 {
    let p = match opts::parse(&args, &[], true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let mut status = 0;
    let specs: Vec<Option<&String>> = if p.operands.is_empty() {
        vec![None]
    } else {
        p.operands.iter().map(Some).collect()
    };
    for spec in specs {
        let Some((_, _, ids)) = subject(name, spec) else {
            status = 1;
            continue;
        };
        let mut names = Vec::new();
        for gid in ids {
            names.push(passwd::group_name(gid).unwrap_or_else(|| {
                warn(name, format!("cannot find name for group ID {gid}"));
                status = 1;
                gid.to_string()
            }));
        }
        match spec {
            Some(user) => println!("{user} : {}", names.join(" ")),
            None => println!("{}", names.join(" ")),
        }
    }
    status
}

pub fn whoami(name: &str, args: Vec<String>) -> i32 {
    if let Some(extra) = args.first() {
        return util::usage_error(name, format!("extra operand '{extra}'"));
    }
    let (uid, _) = sys::identity();
    match passwd::user_name(uid) {
        Some(user) => {
            println!("{user}");
            0
        }
        None => {
            warn(name, format!("cannot find name for user ID {uid}"));
            1
        }
    }
}

/// `which [-a] NAME...`: executable regular files on `$PATH`.
pub fn which(name: &str, args: Vec<String>) -> i32 {
    let p = match opts::parse(&args, &[opt('a', None, false), opt('s', None, false)], true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let mut status = 0;
    for cmd in &p.operands {
        let candidates: Vec<String> = if cmd.contains('/') {
            vec![cmd.clone()]
        } else {
            path.split(':')
                .map(|dir| join(if dir.is_empty() { "." } else { dir }, cmd))
                .collect()
        };
        let mut found = false;
        for candidate in candidates {
            let executable =
                sys::stat(&candidate, true).is_ok_and(|st| st.is_file() && st.mode & 0o111 != 0);
            if executable {
                found = true;
                if !p.has('s') {
                    println!("{candidate}");
                }
                if !p.has('a') {
                    break;
                }
            }
        }
        if !found {
            status = 1;
        }
    }
    status
}
