//! chown [-R] [-h] [-v] [-c] [-f] OWNER[:[GROUP]] FILE... and chgrp GROUP FILE..., with
//! names resolved through the image's /etc/passwd and /etc/group (numbers work without
//! entries). `OWNER:` means the owner's login group; `OWNER.GROUP` is accepted too.

use crate::opts::{self, OptSpec, long_id, opt};
use crate::passwd;
use crate::sys;
use crate::util::{self, describe, warn};
use crate::walk;

const SPECS: &[OptSpec] = &[
    opt('R', Some("recursive"), false),
    opt('h', Some("no-dereference"), false),
    opt('v', Some("verbose"), false),
    opt('c', Some("changes"), false),
    opt('f', Some("silent"), false),
    opt('H', None, false),
    opt('L', None, false),
    opt('P', None, false),
    opt(long_id(1), Some("quiet"), false),
    opt(long_id(2), Some("dereference"), false),
    opt(long_id(3), Some("reference"), true),
    opt(long_id(4), Some("preserve-root"), false),
    opt(long_id(5), Some("no-preserve-root"), false),
];

/// Parses `OWNER[:[GROUP]]` into ids.
pub fn parse_spec(spec: &str) -> Result<(Option<u32>, Option<u32>), String> {
    let (user, group, login_group) = match spec.split_once(':').or_else(|| {
        // The legacy `user.group` form, only when `user.group` is not itself a user.
        spec.split_once('.')
            .filter(|_| passwd::resolve_user(spec).is_none())
    }) {
        Some((u, "")) => (u, None, true),
        Some((u, g)) => (u, Some(g), false),
        None => (spec, None, false),
    };
    let mut uid = None;
    let mut gid = None;
    if !user.is_empty() {
        let entry = passwd::resolve_user(user).ok_or_else(|| format!("invalid user: '{spec}'"))?;
        uid = Some(entry.id);
        if login_group {
            gid = Some(entry.gid);
        }
    }
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        gid = Some(passwd::resolve_group(g).ok_or_else(|| format!("invalid group: '{spec}'"))?);
    }
    Ok((uid, gid))
}

/// Linux clears set-user-ID (and set-group-ID on group-executable files) when a
/// regular file's owner changes, even for root; kiln's filesystem leaves modes alone, so
/// the tool does it to give scripts the result they get from GNU chown.
fn clear_set_id_bits(path: &str, st: &sys::Stat, follow: bool) -> std::io::Result<()> {
    let mut perm = st.perm();
    if !st.is_file() {
        return Ok(());
    }
    perm &= !0o4000;
    if perm & 0o010 != 0 {
        perm &= !0o2000;
    }
    if perm != st.perm() {
        sys::chmod(path, perm, follow)?;
    }
    Ok(())
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let parsed = match opts::parse(&args, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let mut operands = parsed.operands.clone();
    let ids = if let Some(reference) = parsed.value(long_id(3)) {
        match sys::stat(reference, true) {
            Ok(st) => Ok((
                if name == "chgrp" { None } else { Some(st.uid) },
                Some(st.gid),
            )),
            Err(e) => {
                warn(
                    name,
                    format!(
                        "failed to get attributes of '{reference}': {}",
                        describe(&e)
                    ),
                );
                return 1;
            }
        }
    } else if operands.is_empty() {
        return util::usage_error(name, "missing operand");
    } else {
        let spec = operands.remove(0);
        if name == "chgrp" {
            passwd::resolve_group(&spec)
                .map(|g| (None, Some(g)))
                .ok_or_else(|| format!("invalid group: '{spec}'"))
        } else {
            parse_spec(&spec)
        }
    };
    let (uid, gid) = match ids {
        Ok(ids) => ids,
        Err(msg) => {
            warn(name, msg);
            return 1;
        }
    };
    if operands.is_empty() {
        return util::usage_error(name, "missing operand");
    }
    let recursive = parsed.has('R');
    let no_deref = parsed.has('h');
    let verbose = parsed.has('v');
    let changes = parsed.has('c');
    let quiet = parsed.has('f') || parsed.has(long_id(1));
    let mut status = 0;
    for file in &operands {
        let result = walk::walk(file, recursive, !no_deref, &mut |path, st, depth| {
            // Operands follow symlinks unless -h; entries met while recursing do not.
            let follow = depth == 0 && !no_deref;
            let current = if follow && st.is_symlink() {
                sys::stat(path, true)?
            } else {
                st
            };
            let changed =
                uid.is_some_and(|u| u != current.uid) || gid.is_some_and(|g| g != current.gid);
            sys::chown(path, uid, gid, follow)?;
            clear_set_id_bits(path, &current, follow)?;
            if verbose || (changes && changed) {
                let what = if changed { "changed" } else { "retained" };
                let mut names = passwd::Names::default();
                let desc = match (uid, gid) {
                    (Some(u), Some(g)) => format!("{}:{}", names.user(u), names.group(g)),
                    (Some(u), None) => names.user(u),
                    (None, Some(g)) => names.group(g),
                    (None, None) => String::new(),
                };
                let kind = if uid.is_some() { "ownership" } else { "group" };
                println!("{kind} of '{path}' {what} to {desc}");
            }
            Ok(())
        });
        if let Err((path, e)) = result {
            if !quiet {
                let what = if e.kind() == std::io::ErrorKind::NotFound {
                    "cannot access"
                } else {
                    "changing ownership of"
                };
                warn(name, format!("{what} '{path}': {}", describe(&e)));
            }
            status = 1;
        }
    }
    status
}
