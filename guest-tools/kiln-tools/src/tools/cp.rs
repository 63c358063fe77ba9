//! cp and mkdir, kiln's own because WASI p1 cannot create a file or directory with a mode
//! or copy owners: uutils' versions would leave every copy 0644 (losing `+x`) and ignore
//! `mkdir -m`. cp supports -r/-R, -a, -p, --preserve[=LIST], --no-preserve, -d/-P, -L,
//! -H, -f, -n, -v, -l, -s, -t DIR, -T; mkdir supports -p, -m MODE, -v.

use std::fs;
use std::io;

use crate::mode;
use crate::opts::{self, OptSpec, long_id, opt};
use crate::sys::{self, Stat};
use crate::util::{self, describe, warn};
use crate::walk::{join, read_dir_sorted};

const PRESERVE: char = long_id(1);
const NO_PRESERVE: char = long_id(2);

const SPECS: &[OptSpec] = &[
    opt('r', Some("recursive"), false),
    opt('R', None, false),
    opt('a', Some("archive"), false),
    opt('p', None, false),
    opt('d', None, false),
    opt('P', Some("no-dereference"), false),
    opt('L', Some("dereference"), false),
    opt('H', None, false),
    opt('f', Some("force"), false),
    opt('n', Some("no-clobber"), false),
    opt('i', Some("interactive"), false),
    opt('v', Some("verbose"), false),
    opt('l', Some("link"), false),
    opt('s', Some("symbolic-link"), false),
    opt('u', Some("update"), false),
    opt('t', Some("target-directory"), true),
    opt('T', Some("no-target-directory"), false),
    opt(PRESERVE, Some("preserve"), false),
    opt(long_id(3), Some("preserve-all"), false),
    opt(NO_PRESERVE, Some("no-preserve"), true),
];

struct Options {
    recursive: bool,
    deref: Deref,
    preserve_mode: bool,
    preserve_owner: bool,
    preserve_times: bool,
    no_clobber: bool,
    force: bool,
    verbose: bool,
    hard_link: bool,
    symbolic: bool,
}

#[derive(PartialEq, Clone, Copy)]
enum Deref {
    Never,
    CommandLine,
    Always,
}

pub fn cp(name: &str, args: Vec<String>) -> i32 {
    // `--preserve=LIST` has an optional value; the table form takes none, so split here.
    let mut preserve_list: Option<String> = None;
    let args: Vec<String> = args
        .into_iter()
        .map(|a| match a.strip_prefix("--preserve=") {
            Some(list) => {
                preserve_list = Some(list.to_owned());
                "--preserve".to_owned()
            }
            None => a,
        })
        .collect();
    let p = match opts::parse(&args, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let archive = p.has('a');
    let recursive = archive || p.has('r') || p.has('R');
    let mut o = Options {
        recursive,
        deref: if p.has('L') {
            Deref::Always
        } else if p.has('P') || p.has('d') || archive {
            Deref::Never
        } else if p.has('H') || !recursive {
            Deref::CommandLine
        } else {
            Deref::Never
        },
        preserve_mode: archive || p.has('p'),
        preserve_owner: archive || p.has('p'),
        preserve_times: archive || p.has('p'),
        no_clobber: p.has('n'),
        force: p.has('f'),
        verbose: p.has('v'),
        hard_link: p.has('l'),
        symbolic: p.has('s'),
    };
    if p.has(PRESERVE) || p.has(long_id(3)) {
        let list = if p.has(long_id(3)) {
            "all".to_owned()
        } else {
            preserve_list.unwrap_or_else(|| "mode,ownership,timestamps".into())
        };
        for item in list.split(',') {
            match item {
                "mode" => o.preserve_mode = true,
                "ownership" => o.preserve_owner = true,
                "timestamps" => o.preserve_times = true,
                "all" => (o.preserve_mode, o.preserve_owner, o.preserve_times) = (true, true, true),
                "links" | "context" | "xattr" => {}
                other => {
                    return util::usage_error(
                        name,
                        format!("invalid argument '{other}' for '--preserve'"),
                    );
                }
            }
        }
    }
    for item in p.values(NO_PRESERVE).flat_map(|v| v.split(',')) {
        match item {
            "mode" => o.preserve_mode = false,
            "ownership" => o.preserve_owner = false,
            "timestamps" => o.preserve_times = false,
            "all" => (o.preserve_mode, o.preserve_owner, o.preserve_times) = (false, false, false),
            _ => {}
        }
    }
    let ops = &p.operands;
    let (sources, target_dir, dest): (&[String], Option<String>, Option<String>) =
        if let Some(t) = p.value('t') {
            (ops, Some(t.to_owned()), None)
        } else {
            match ops.split_last() {
                None => return util::usage_error(name, "missing file operand"),
                Some((only, [])) => {
                    return util::usage_error(
                        name,
                        format!("missing destination file operand after '{only}'"),
                    );
                }
                Some((last, srcs)) => {
                    let is_dir = !p.has('T') && fs::metadata(last).is_ok_and(|m| m.is_dir());
                    if srcs.len() > 1 && !is_dir {
                        warn(name, format!("target '{last}': Not a directory"));
                        return 1;
                    }
                    if is_dir {
                        (srcs, Some(last.clone()), None)
                    } else {
                        (srcs, None, Some(last.clone()))
                    }
                }
            }
        };
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
        if let Err(msg) = copy_top(&o, src, &to) {
            warn(name, msg);
            status = 1;
        }
    }
    status
}

fn copy_top(o: &Options, src: &str, to: &str) -> Result<(), String> {
    let follow = o.deref != Deref::Never;
    let st = stat(src, follow).map_err(|e| format!("cannot stat '{src}': {}", describe(&e)))?;
    if st.is_dir() && !o.recursive {
        return Err(format!("-r not specified; omitting directory '{src}'"));
    }
    if st.is_dir() {
        let canon_src =
            fs::canonicalize(src).map_err(|e| format!("cannot stat '{src}': {}", describe(&e)))?;
        let parent = to
            .rsplit_once('/')
            .map_or(".", |(p, _)| if p.is_empty() { "/" } else { p });
        if let Ok(canon_parent) = fs::canonicalize(parent)
            && canon_parent.starts_with(&canon_src)
        {
            return Err(format!(
                "cannot copy a directory, '{src}', into itself, '{to}'"
            ));
        }
    }
    copy_any(o, src, to, st)
}

fn stat(path: &str, follow: bool) -> io::Result<Stat> {
    let st = sys::stat(path, false)?;
    if follow && st.is_symlink() {
        sys::stat(path, true)
    } else {
        Ok(st)
    }
}

fn copy_any(o: &Options, src: &str, to: &str, st: Stat) -> Result<(), String> {
    let err = |what: &str, path: &str, e: io::Error| format!("{what} '{path}': {}", describe(&e));
    if o.verbose {
        println!("'{src}' -> '{to}'");
    }
    if st.is_dir() {
        let existed = match fs::symlink_metadata(to) {
            Ok(m) if m.is_dir() => true,
            Ok(_) => {
                return Err(format!(
                    "cannot overwrite non-directory '{to}' with directory '{src}'"
                ));
            }
            Err(_) => {
                fs::create_dir(to).map_err(|e| err("cannot create directory", to, e))?;
                false
            }
        };
        let names = read_dir_sorted(src).map_err(|e| err("cannot access", src, e))?;
        let mut first_error = None;
        for child in names {
            let from = join(src, &child);
            let child_to = join(to, &child);
            let result = stat(&from, o.deref == Deref::Always)
                .map_err(|e| err("cannot stat", &from, e))
                .and_then(|cst| copy_any(o, &from, &child_to, cst));
            if let Err(msg) = result {
                warn("cp", &msg);
                first_error.get_or_insert(msg);
            }
        }
        // Modes last, so a read-only source directory can still be filled.
        let perm = if o.preserve_mode || !existed {
            st.perm()
                & if o.preserve_mode {
                    0o7777
                } else {
                    !sys::umask() & 0o777
                }
        } else {
            0
        };
        if !existed || o.preserve_mode {
            sys::chmod(to, perm, true).map_err(|e| err("cannot set permissions of", to, e))?;
        }
        finish_attrs(o, to, &st, true)?;
        return match first_error {
            Some(_) => Err(format!("some entries of '{src}' were not copied")),
            None => Ok(()),
        };
    }
    if let Ok(existing) = fs::symlink_metadata(to) {
        if o.no_clobber {
            return Ok(());
        }
        if existing.is_dir() {
            return Err(format!(
                "cannot overwrite directory '{to}' with non-directory"
            ));
        }
        if st.is_symlink()
            || o.hard_link
            || o.symbolic
            || o.force && fs::OpenOptions::new().write(true).open(to).is_err()
        {
            fs::remove_file(to).map_err(|e| err("cannot remove", to, e))?;
        }
    }
    if o.symbolic {
        return symlink(src, to).map_err(|e| err("cannot create symbolic link", to, e));
    }
    if o.hard_link {
        return fs::hard_link(src, to).map_err(|e| err("cannot create hard link", to, e));
    }
    if st.is_symlink() {
        let target = fs::read_link(src).map_err(|e| err("cannot read symbolic link", src, e))?;
        symlink(&target.to_string_lossy(), to)
            .map_err(|e| err("cannot create symbolic link", to, e))?;
        if o.preserve_owner {
            let _ = sys::chown(to, Some(st.uid), Some(st.gid), false);
        }
        return Ok(());
    }
    // Without -R, cp copies what a device or pipe reads, as GNU cp does (`cp /dev/null
    // log` empties a log); recreating one (-R, -a) needs mknod, which a step has not.
    if !st.is_file() && o.recursive {
        return Err(format!("cannot copy special file '{src}' in a kiln step"));
    }
    let existed = fs::symlink_metadata(to).is_ok();
    let mut input = fs::File::open(src).map_err(|e| err("cannot open", src, e))?;
    let mut output = fs::File::create(to).map_err(|e| err("cannot create regular file", to, e))?;
    io::copy(&mut input, &mut output).map_err(|e| err("error writing", to, e))?;
    drop(output);
    if o.preserve_mode {
        sys::chmod(to, st.perm(), true).map_err(|e| err("cannot set permissions of", to, e))?;
    } else if !existed {
        // A new file gets the source's permission bits less the umask, as open(2) would.
        sys::chmod(to, st.perm() & 0o777 & !sys::umask(), true)
            .map_err(|e| err("cannot set permissions of", to, e))?;
    }
    finish_attrs(o, to, &st, false)
}

fn finish_attrs(o: &Options, to: &str, st: &Stat, _is_dir: bool) -> Result<(), String> {
    if o.preserve_owner {
        sys::chown(to, Some(st.uid), Some(st.gid), false)
            .map_err(|e| format!("failed to preserve ownership for '{to}': {}", describe(&e)))?;
        if o.preserve_mode && st.perm() & 0o6000 != 0 {
            // chown clears set-id bits; put them back.
            let _ = sys::chmod(to, st.perm(), true);
        }
    }
    if o.preserve_times
        && let Ok(f) = fs::File::open(to)
    {
        let when = std::time::UNIX_EPOCH
            + std::time::Duration::new(st.mtime.sec.max(0) as u64, st.mtime.nsec);
        let _ = f.set_times(fs::FileTimes::new().set_modified(when));
    }
    Ok(())
}

/// `std::fs::soft_link` is the only stable symlink call that also exists on WASI.
#[allow(deprecated)]
fn symlink(target: &str, path: &str) -> io::Result<()> {
    fs::soft_link(target, path)
}

const MKDIR_SPECS: &[OptSpec] = &[
    opt('p', Some("parents"), false),
    opt('m', Some("mode"), true),
    opt('v', Some("verbose"), false),
];

pub fn mkdir(name: &str, args: Vec<String>) -> i32 {
    let p = match opts::parse(&args, MKDIR_SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    if p.operands.is_empty() {
        return util::usage_error(name, "missing operand");
    }
    let umask = sys::umask();
    let mode = match p.value('m') {
        Some(m) => match mode::apply(m, 0o777 & !umask, true, umask) {
            Ok(v) => Some(v),
            Err(_) => {
                warn(name, format!("invalid mode '{m}'"));
                return 1;
            }
        },
        None => None,
    };
    let mut status = 0;
    for dir in &p.operands {
        let result = if p.has('p') {
            make_parents(dir, p.has('v'))
        } else {
            fs::create_dir(dir).map(|()| verbose(p.has('v'), dir))
        };
        let result = result.and_then(|()| match mode {
            Some(m) => sys::chmod(dir, m, true),
            None => Ok(()),
        });
        if let Err(e) = result {
            warn(
                name,
                format!("cannot create directory '{dir}': {}", describe(&e)),
            );
            status = 1;
        }
    }
    status
}

fn verbose(on: bool, dir: &str) {
    if on {
        println!("mkdir: created directory '{dir}'");
    }
}

fn make_parents(dir: &str, v: bool) -> io::Result<()> {
    let mut path = if dir.starts_with('/') {
        "/".to_owned()
    } else {
        String::new()
    };
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        path = if path.is_empty() {
            part.to_owned()
        } else {
            join(&path, part)
        };
        match fs::create_dir(&path) {
            Ok(()) => verbose(v, &path),
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    && fs::metadata(&path).is_ok_and(|m| m.is_dir()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
