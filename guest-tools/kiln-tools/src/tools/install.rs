//! install [-cCDpsv] [-m MODE] [-o OWNER] [-g GROUP] SRC DEST | SRC... DIR | -t DIR SRC...
//! | -d DIR...: copies files (default mode 0755) or creates directories, then sets mode
//! and owner through kiln's metadata imports.

use std::fs;
use std::io;

use crate::mode;
use crate::opts::{self, OptSpec, opt};
use crate::passwd;
use crate::sys;
use crate::util::{self, describe, warn};
use crate::walk::join;

const SPECS: &[OptSpec] = &[
    opt('c', None, false),
    opt('C', Some("compare"), false),
    opt('d', Some("directory"), false),
    opt('D', None, false),
    opt('m', Some("mode"), true),
    opt('o', Some("owner"), true),
    opt('g', Some("group"), true),
    opt('p', Some("preserve-timestamps"), false),
    opt('s', Some("strip"), false),
    opt('t', Some("target-directory"), true),
    opt('T', Some("no-target-directory"), false),
    opt('v', Some("verbose"), false),
];

struct Plan {
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    verbose: bool,
    preserve_times: bool,
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let p = match opts::parse(&args, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let mode = match p.value('m') {
        Some(m) => match mode::apply(m, 0o755, false, 0) {
            Ok(v) => v,
            Err(_) => {
                warn(name, format!("invalid mode '{m}'"));
                return 1;
            }
        },
        None => 0o755,
    };
    let uid = match p.value('o') {
        Some(o) => match passwd::resolve_user(o) {
            Some(e) => Some(e.id),
            None => {
                warn(name, format!("invalid user '{o}'"));
                return 1;
            }
        },
        None => None,
    };
    let gid = match p.value('g') {
        Some(g) => match passwd::resolve_group(g) {
            Some(id) => Some(id),
            None => {
                warn(name, format!("invalid group '{g}'"));
                return 1;
            }
        },
        None => None,
    };
    let plan = Plan {
        mode,
        uid,
        gid,
        verbose: p.has('v'),
        preserve_times: p.has('p'),
    };
    let ops = &p.operands;
    if p.has('d') {
        if ops.is_empty() {
            return util::usage_error(name, "missing operand");
        }
        let mut status = 0;
        for dir in ops {
            if let Err(e) = make_dirs(dir, &plan, true) {
                warn(
                    name,
                    format!("cannot create directory '{dir}': {}", describe(&e)),
                );
                status = 1;
            }
        }
        return status;
    }
    let (sources, target_dir, dest) = if let Some(t) = p.value('t') {
        (ops.as_slice(), Some(t.to_owned()), None)
    } else if ops.len() < 2 {
        return util::usage_error(
            name,
            format!(
                "missing destination file operand after '{}'",
                ops.first().map_or("", String::as_str)
            ),
        );
    } else {
        let (last, srcs) = ops
            .split_last()
            .map_or((&ops[0], &ops[..0]), |(l, s)| (l, s));
        let is_dir = !p.has('T') && fs::metadata(last).is_ok_and(|m| m.is_dir());
        if srcs.len() > 1 || is_dir {
            (srcs, Some(last.clone()), None)
        } else {
            (srcs, None, Some(last.clone()))
        }
    };
    if let Some(dir) = &target_dir {
        if p.has('D')
            && let Err(e) = make_dirs(
                dir,
                &Plan {
                    mode: 0o755,
                    uid: None,
                    gid: None,
                    verbose: plan.verbose,
                    preserve_times: false,
                },
                false,
            )
        {
            warn(
                name,
                format!("cannot create directory '{dir}': {}", describe(&e)),
            );
            return 1;
        }
        if !fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
            warn(name, format!("target '{dir}' is not a directory"));
            return 1;
        }
    }
    let mut status = 0;
    for src in sources {
        let to = match (&target_dir, &dest) {
            (Some(dir), _) => join(
                dir,
                src.trim_end_matches('/').rsplit('/').next().unwrap_or(src),
            ),
            (None, Some(d)) => d.clone(),
            (None, None) => continue,
        };
        if p.has('D')
            && target_dir.is_none()
            && let Some((parent, _)) = to.rsplit_once('/')
            && !parent.is_empty()
            && let Err(e) = make_dirs(
                parent,
                &Plan {
                    mode: 0o755,
                    uid: None,
                    gid: None,
                    verbose: plan.verbose,
                    preserve_times: false,
                },
                false,
            )
        {
            warn(
                name,
                format!("cannot create directory '{parent}': {}", describe(&e)),
            );
            status = 1;
            continue;
        }
        if let Err(msg) = install_file(src, &to, &plan) {
            warn(name, msg);
            status = 1;
        }
    }
    status
}

fn make_dirs(dir: &str, plan: &Plan, apply_to_last: bool) -> io::Result<()> {
    let absolute = dir.starts_with('/');
    let mut path = if absolute {
        "/".to_owned()
    } else {
        String::new()
    };
    let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        path = if path.is_empty() {
            (*part).to_owned()
        } else {
            join(&path, part)
        };
        let last = i + 1 == parts.len();
        match fs::create_dir(&path) {
            Ok(()) => {
                if plan.verbose {
                    println!("install: creating directory '{path}'");
                }
                let mode = if last && apply_to_last {
                    plan.mode
                } else {
                    0o755
                };
                sys::chmod(&path, mode, true)?;
            }
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    && fs::metadata(&path).is_ok_and(|m| m.is_dir()) => {}
            Err(e) => return Err(e),
        }
        if last && apply_to_last {
            sys::chmod(&path, plan.mode, true)?;
            if plan.uid.is_some() || plan.gid.is_some() {
                sys::chown(&path, plan.uid, plan.gid, true)?;
            }
        }
    }
    Ok(())
}

fn install_file(src: &str, to: &str, plan: &Plan) -> Result<(), String> {
    let meta = fs::metadata(src).map_err(|e| format!("cannot stat '{src}': {}", describe(&e)))?;
    if meta.is_dir() {
        return Err(format!("omitting directory '{src}'"));
    }
    if fs::symlink_metadata(to).is_ok_and(|m| !m.is_dir()) {
        fs::remove_file(to).map_err(|e| format!("cannot remove '{to}': {}", describe(&e)))?;
    }
    let mut input = fs::File::open(src)
        .map_err(|e| format!("cannot open '{src}' for reading: {}", describe(&e)))?;
    let mut output = fs::File::create(to)
        .map_err(|e| format!("cannot create regular file '{to}': {}", describe(&e)))?;
    io::copy(&mut input, &mut output)
        .map_err(|e| format!("error writing '{to}': {}", describe(&e)))?;
    if plan.preserve_times
        && let Ok(modified) = meta.modified()
    {
        let _ = output.set_times(fs::FileTimes::new().set_modified(modified));
    }
    drop(output);
    sys::chmod(to, plan.mode, true)
        .map_err(|e| format!("cannot change permissions of '{to}': {}", describe(&e)))?;
    if plan.uid.is_some() || plan.gid.is_some() {
        sys::chown(to, plan.uid, plan.gid, true)
            .map_err(|e| format!("cannot change ownership of '{to}': {}", describe(&e)))?;
    }
    if plan.verbose {
        println!("'{src}' -> '{to}'");
    }
    Ok(())
}
