//! `dpkg-statoverride [--admindir DIR] [--force…] [--update] [--quiet] --list [GLOB…] |
//! --add USER GROUP MODE PATH | --remove PATH`: dpkg's database of owner and mode overrides
//! (`statoverride`: `user group mode path` per line), which maintainer scripts query and
//! edit (ca-certificates' postinst asks `--list /usr/local/share/ca-certificates`). Its
//! output, statuses and file match dpkg 1.21's, entries in dpkg's own order (see
//! [`dpkg_order`]).

use std::io::Write as _;

use kiln_deb::statoverride::{self, Override, parse_mode};
use kiln_tools::passwd::{self, Entry};

use crate::query::ADMIN_DIR;
use crate::util::warn;

const TOOL: &str = "dpkg-statoverride";

/// The bins of dpkg's file hash table (`lib/dpkg/fsys-hash.c`): it writes and lists the
/// overrides in the order of its table, bin by bin.
const DPKG_HASH_BINS: u32 = 262_139;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    List,
    Add,
    Remove,
}

impl Action {
    fn option(self) -> &'static str {
        match self {
            Action::List => "--list",
            Action::Add => "--add",
            Action::Remove => "--remove",
        }
    }
}

struct Opts {
    admindir: String,
    force_add: bool,
    force_del: bool,
    update: bool,
    verbose: bool,
}

/// A failure: dpkg's message, and whether it is a usage error (which adds the hint).
struct Fail(String, bool);

pub(crate) fn main(_name: &str, args: Vec<String>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(Fail(msg, usage)) => {
            let hint = if usage {
                "\n\nUse --help for help about overriding file stat information."
            } else {
                ""
            };
            let _ = writeln!(std::io::stderr(), "{TOOL}: error: {msg}{hint}");
            2
        }
    }
}

fn run(args: Vec<String>) -> Result<i32, Fail> {
    let mut opts = Opts {
        admindir: std::env::var("DPKG_ADMINDIR").unwrap_or_else(|_| ADMIN_DIR.into()),
        force_add: false,
        force_del: false,
        update: false,
        verbose: true,
    };
    let mut action: Option<Action> = None;
    let mut operands = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let chosen = match name.as_str() {
            "--list" => Some(Action::List),
            "--add" => Some(Action::Add),
            "--remove" => Some(Action::Remove),
            "--admindir" => {
                opts.admindir = value
                    .or_else(|| it.next())
                    .ok_or_else(|| Fail("--admindir needs a directory argument".into(), true))?;
                None
            }
            "--update" => {
                opts.update = true;
                None
            }
            "--quiet" => {
                opts.verbose = false;
                None
            }
            "--force" | "--force-all" => {
                if name == "--force" {
                    warn(
                        TOOL,
                        "warning: deprecated --force option; use --force-all instead",
                    );
                }
                (opts.force_add, opts.force_del) = (true, true);
                None
            }
            "--force-statoverride-add" => {
                opts.force_add = true;
                None
            }
            "--force-statoverride-del" => {
                opts.force_del = true;
                None
            }
            a if a.starts_with('-') && a.len() > 1 => {
                return Err(Fail(format!("unknown option {a}"), true));
            }
            _ => {
                operands.push(arg);
                None
            }
        };
        if let Some(new) = chosen {
            if let Some(old) = action.filter(|old| *old != new) {
                return Err(Fail(
                    format!("conflicting actions {} and {}", new.option(), old.option()),
                    true,
                ));
            }
            action = Some(new);
        }
    }
    let path = format!("{}/statoverride", opts.admindir);
    match action {
        None => Err(Fail("need an action option".into(), true)),
        Some(Action::List) => list(&read_db(&path)?, &operands),
        Some(Action::Add) => add(&opts, &path, &operands),
        Some(Action::Remove) => remove(&opts, &path, &operands),
    }
}

/// Prints the overrides whose path matches any glob (all without globs); 1 when none
/// did, as dpkg.
fn list(db: &[Override], globs: &[String]) -> Result<i32, Fail> {
    let mut names = passwd::Names::default();
    let mut out = String::new();
    for o in db {
        if globs.is_empty()
            || globs
                .iter()
                .any(|g| kiln_tools::glob::matches(g.as_bytes(), o.path.as_bytes()))
        {
            out.push_str(&line(o, &mut names));
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(if out.is_empty() { 1 } else { 0 })
}

fn add(opts: &Opts, db_path: &str, operands: &[String]) -> Result<i32, Fail> {
    let [user, group, mode, path] = operands else {
        return Err(Fail("--add needs four arguments".into(), true));
    };
    let uid = id_of(user, &passwd::users(), "user")?;
    let gid = id_of(group, &passwd::groups(), "group")?;
    let mode =
        parse_mode(mode).ok_or_else(|| Fail(format!("invalid statoverride mode {mode}"), false))?;
    let path = clean_path(path, opts.verbose);
    let mut db = read_db(db_path)?;
    if let Some(i) = db.iter().position(|o| o.path == path) {
        if !opts.force_add {
            return Err(Fail(
                format!("an override for '{path}' already exists; aborting"),
                false,
            ));
        }
        if opts.verbose {
            warn(
                TOOL,
                format!(
                    "warning: an override for '{path}' already exists, but --force specified so will be ignored"
                ),
            );
        }
        db.remove(i);
    }
    let new = Override {
        uid,
        gid,
        mode,
        path,
    };
    if opts.update {
        apply(&new, opts.verbose);
    }
    db.push(new);
    write_db(db_path, db)?;
    Ok(0)
}

fn remove(opts: &Opts, db_path: &str, operands: &[String]) -> Result<i32, Fail> {
    let [path] = operands else {
        return Err(Fail("--remove needs one argument".into(), true));
    };
    let path = clean_path(path, opts.verbose);
    let mut db = read_db(db_path)?;
    let Some(i) = db.iter().position(|o| o.path == path) else {
        if opts.verbose {
            warn(TOOL, "warning: no override present");
        }
        return Ok(if opts.force_del { 0 } else { 2 });
    };
    db.remove(i);
    write_db(db_path, db)?;
    Ok(0)
}

/// `--update`: gives the file the override's owner and mode now (dpkg does it for files
/// it unpacks later).
fn apply(o: &Override, verbose: bool) {
    if std::fs::symlink_metadata(&o.path).is_err() {
        if verbose {
            warn(
                TOOL,
                format!("warning: --update given but {} does not exist", o.path),
            );
        }
        return;
    }
    let done = kiln_abi::chown(&o.path, Some(o.uid), Some(o.gid), false)
        .and_then(|()| kiln_abi::chmod(&o.path, o.mode, false));
    if let Err(e) = done {
        warn(TOOL, format!("warning: failed to update {}: {e}", o.path));
    }
}

/// A user or group by name, or by number as `#N`.
fn id_of(spec: &str, entries: &[Entry], what: &str) -> Result<u32, Fail> {
    let by_name = |name: &str| entries.iter().find(|e| e.name == name).map(|e| e.id);
    statoverride::parse_id(spec, &by_name).ok_or_else(|| match spec.strip_prefix('#') {
        Some(_) => Fail(format!("invalid {what} '{spec}'"), false),
        None => Fail(format!("{what} '{spec}' does not exist"), false),
    })
}

/// dpkg's form of a path, warning (with `verbose`) when trailing slashes were trimmed.
fn clean_path(path: &str, verbose: bool) -> String {
    let (clean, stripped) = statoverride::clean_path(path);
    if verbose && stripped {
        warn(TOOL, "warning: stripping trailing /");
    }
    clean
}

/// An override as dpkg prints and stores it: names where the image has them, `#id`
/// otherwise; the mode in octal.
fn line(o: &Override, names: &mut passwd::Names) -> String {
    let name = |n: String, id: u32| {
        if n == id.to_string() {
            format!("#{id}")
        } else {
            n
        }
    };
    let user = name(names.user(o.uid), o.uid);
    let group = name(names.group(o.gid), o.gid);
    format!("{user} {group} {:o} {}\n", o.mode, o.path)
}

fn read_db(path: &str) -> Result<Vec<Override>, Fail> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Fail(format!("cannot open {path}: {e}"), false)),
    };
    let (users, groups) = (passwd::users(), passwd::groups());
    let find =
        |entries: &[Entry], name: &str| entries.iter().find(|e| e.name == name).map(|e| e.id);
    let mut db =
        statoverride::parse(&text, &|n| find(&users, n), &|n| find(&groups, n)).map_err(|e| {
            Fail(
                format!("{path}:{}: syntax error: {}", e.line, e.message),
                false,
            )
        })?;
    dpkg_order(&mut db);
    Ok(db)
}

/// Writes the database as dpkg does: in its order, the previous file kept as
/// `statoverride-old`, the new one renamed into place.
fn write_db(path: &str, mut db: Vec<Override>) -> Result<(), Fail> {
    dpkg_order(&mut db);
    let mut names = passwd::Names::default();
    let text: String = db.iter().map(|o| line(o, &mut names)).collect();
    let io = |what: &str, e: std::io::Error| Fail(format!("cannot {what} {path}: {e}"), false);
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::copy(path, format!("{path}-old")).map_err(|e| io("back up", e))?;
    }
    let new = format!("{path}-new");
    std::fs::write(&new, text).map_err(|e| io("write", e))?;
    std::fs::rename(&new, path).map_err(|e| io("replace", e))
}

/// dpkg keeps the overrides in its file hash table (FNV-1a of the path without its
/// leading slash, modulo [`DPKG_HASH_BINS`]) and walks it bin by bin; within a bin, in
/// the order they were added. A stable sort by bin gives the same order.
fn dpkg_order(db: &mut [Override]) {
    db.sort_by_key(|o| fnv1a(o.path.trim_start_matches('/').as_bytes()) % DPKG_HASH_BINS);
}

/// 32-bit FNV-1a, as dpkg's `str_fnv_hash`.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_dpkgs_hash_table() {
        // The order Debian's dpkg-statoverride 1.21 wrote these in.
        let mut db: Vec<Override> = ["/usr/local/share/ca-certificates", "/x", "/b", "/a", "/rel"]
            .iter()
            .map(|p| Override {
                uid: 0,
                gid: 0,
                mode: 0o644,
                path: (*p).to_owned(),
            })
            .collect();
        dpkg_order(&mut db);
        let paths: Vec<&str> = db.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/rel", "/a", "/b", "/x", "/usr/local/share/ca-certificates"]
        );
    }
}
