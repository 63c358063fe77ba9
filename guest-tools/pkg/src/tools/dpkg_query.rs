//! `dpkg-query`: `-l`, `-W` (`-f`/`--showformat`), `-s`, `-L`, `-S`, as dpkg 1.21 prints
//! them, over the image's `/var/lib/dpkg` (or `--admindir`, `--root`). `dpkg` hands its
//! query actions to [`run`] too, as the real dpkg execs dpkg-query.

use std::io::{self, Write};

use crate::query::{self, ADMIN_DIR, Db, Pkg};
use crate::util;

const TOOL: &str = "dpkg-query";

/// The default `--showformat`.
const DEFAULT_FORMAT: &str = "${binary:Package}\t${Version}\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    List,
    Show,
    Status,
    ListFiles,
    Search,
}

impl Action {
    /// The action an option names (`-l`, `--list`, ...).
    pub(crate) fn from_option(opt: &str) -> Option<Action> {
        Some(match opt {
            "-l" | "--list" => Action::List,
            "-W" | "--show" => Action::Show,
            "-s" | "--status" => Action::Status,
            "-L" | "--listfiles" => Action::ListFiles,
            "-S" | "--search" => Action::Search,
            _ => return None,
        })
    }
}

/// What a query runs with.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub admindir: String,
    pub format: Option<String>,
}

impl Default for Query {
    fn default() -> Query {
        Query {
            admindir: ADMIN_DIR.to_owned(),
            format: None,
        }
    }
}

pub(crate) fn main(_name: &str, args: Vec<String>) -> i32 {
    let mut query = Query::default();
    let parsed = parse_options(args, |arg, rest| {
        if let Some(action) = Action::from_option(arg) {
            return Ok(Some(action));
        }
        match take_option(&mut query, arg, rest)? {
            true => Ok(None),
            false => Err(format!("unknown option {arg}")),
        }
    });
    match parsed {
        Ok((Some(action), rest)) => run(action, &query, &rest),
        Ok((None, _)) => bad_usage("need an action option"),
        Err(msg) => bad_usage(&msg),
    }
}

/// dpkg's command line: options (the action among them) up to `--` or the first
/// argument that is not an option; what follows is the action's arguments. `each` handles
/// one option (taking its value from the iterator if it needs one) and may name the
/// action; a second action is an error.
pub(crate) fn parse_options<A>(
    args: Vec<String>,
    mut each: impl FnMut(&str, &mut dyn Iterator<Item = String>) -> Result<Option<A>, String>,
) -> Result<(Option<A>, Vec<String>), String> {
    let mut action = None;
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next_if(|a| a.starts_with('-') && a.len() > 1) {
        if arg == "--" {
            break;
        }
        if let Some(found) = each(&arg, &mut iter)? {
            if action.is_some() {
                return Err(format!("conflicting actions: {arg} and an earlier one"));
            }
            action = Some(found);
        }
    }
    Ok((action, iter.collect()))
}

/// Applies a query option shared by dpkg and dpkg-query; `Ok(false)` if `arg` is not one.
pub(crate) fn take_option(
    query: &mut Query,
    arg: &str,
    rest: &mut dyn Iterator<Item = String>,
) -> Result<bool, String> {
    let (opt, inline) = match arg.split_once('=') {
        Some((o, v)) if o.starts_with("--") => (o, Some(v.to_owned())),
        _ => (arg, None),
    };
    let mut value = || {
        inline
            .clone()
            .or_else(|| rest.next())
            .ok_or_else(|| format!("--{} needs a value", opt.trim_start_matches('-')))
    };
    match opt {
        "--admindir" => query.admindir = value()?,
        "--root" => query.admindir = format!("{}{ADMIN_DIR}", value()?.trim_end_matches('/')),
        "-f" | "--showformat" => query.format = Some(value()?),
        // No pager in a build step; output is never a terminal worth paging.
        "--no-pager" => {}
        _ => return Ok(false),
    }
    Ok(true)
}

/// dpkg-query's usage error: the message, a hint, exit 2.
pub(crate) fn bad_usage(msg: &str) -> i32 {
    let _ = write!(
        io::stderr(),
        "{TOOL}: error: {msg}\n\nUse --help for help about querying packages.\n"
    );
    2
}

/// Runs `action` on `args`; the exit status (1 when something was not found).
pub(crate) fn run(action: Action, query: &Query, args: &[String]) -> i32 {
    let need = match action {
        Action::ListFiles => Some("--listfiles needs at least one package name argument"),
        Action::Search => Some("--search needs at least one file name pattern argument"),
        _ => None,
    };
    if let (Some(msg), true) = (need, args.is_empty()) {
        return bad_usage(msg);
    }
    let db = match Db::load(&query.admindir) {
        Ok(db) => db,
        Err(msg) => {
            util::warn(TOOL, format!("error: {msg}"));
            return 2;
        }
    };
    let mut out = io::stdout().lock();
    let failed = match action {
        Action::List => list(&db, args, &mut out),
        Action::Show => show(&db, query, args, &mut out),
        Action::Status => status(&db, args, &mut out),
        Action::ListFiles => list_files(&db, args, &mut out),
        Action::Search => search(&db, args, &mut out),
    };
    match (failed, out.flush()) {
        (Ok(false), Ok(())) => 0,
        (Ok(true), Ok(())) => 1,
        (Err(msg), _) => {
            util::warn(TOOL, format!("error: {msg}"));
            2
        }
        (_, Err(e)) => {
            util::warn(TOOL, format!("error: writing <standard output>: {e}"));
            2
        }
    }
}

type Outcome = Result<bool, String>;

/// The entries patterns select (all but not-installed ones without patterns), with a
/// notice for each pattern that matched nothing.
fn select<'a>(db: &'a Db, patterns: &'a [String]) -> (Vec<&'a Pkg>, bool) {
    if patterns.is_empty() {
        return (db.listed(), false);
    }
    let (pkgs, misses) = db.matching(patterns);
    for miss in &misses {
        util::warn(TOOL, format!("no packages found matching {miss}"));
    }
    (pkgs, !misses.is_empty())
}

fn list(db: &Db, patterns: &[String], out: &mut impl Write) -> Outcome {
    let (pkgs, failed) = select(db, patterns);
    out.write_all(query::list(&pkgs, db.native_arch()).as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(failed)
}

fn show(db: &Db, q: &Query, patterns: &[String], out: &mut impl Write) -> Outcome {
    let nodes = query::parse_format(q.format.as_deref().unwrap_or(DEFAULT_FORMAT))
        .map_err(|e| format!("invalid format: {e}"))?;
    let (pkgs, failed) = select(db, patterns);
    for pkg in pkgs {
        out.write_all(query::render(&nodes, pkg, db.native_arch()).as_bytes())
            .map_err(|e| e.to_string())?;
    }
    Ok(failed)
}

/// Entries named exactly (`name` or `name:arch`), with dpkg's message for the rest.
fn named<'a>(db: &'a Db, names: &'a [String], missing: &str) -> (Vec<&'a Pkg>, bool) {
    let mut found = Vec::new();
    let mut failed = false;
    for name in names {
        let hits: Vec<&Pkg> = db.find(name).filter(|p| !p.is_not_installed()).collect();
        if hits.is_empty() {
            util::warn(TOOL, format!("package '{name}' {missing}"));
            failed = true;
        }
        found.extend(hits);
    }
    (found, failed)
}

fn status(db: &Db, names: &[String], out: &mut impl Write) -> Outcome {
    let (pkgs, failed) = if names.is_empty() {
        (db.listed(), false)
    } else {
        named(
            db,
            names,
            "is not installed and no information is available",
        )
    };
    for (i, pkg) in pkgs.iter().filter_map(|p| p.para.as_ref()).enumerate() {
        let sep = if i == 0 { "" } else { "\n" };
        write!(out, "{sep}{pkg}").map_err(|e| e.to_string())?;
    }
    if failed {
        let _ = writeln!(
            io::stderr(),
            "Use dpkg --info (= dpkg-deb --info) to examine archive files."
        );
    }
    Ok(failed)
}

fn list_files(db: &Db, names: &[String], out: &mut impl Write) -> Outcome {
    let (pkgs, failed) = named(db, names, "is not installed");
    for (i, pkg) in pkgs.iter().enumerate() {
        if i > 0 {
            writeln!(out).map_err(|e| e.to_string())?;
        }
        let files = files_or_warn(db, pkg)?;
        if files.is_empty() {
            writeln!(
                out,
                "Package '{}' does not contain any files (!)",
                pkg.nonambig_name(db.native_arch())
            )
            .map_err(|e| e.to_string())?;
        }
        for path in files {
            writeln!(out, "{path}").map_err(|e| e.to_string())?;
        }
    }
    if failed {
        let _ = writeln!(
            io::stderr(),
            "Use dpkg --contents (= dpkg-deb --contents) to list archive files contents."
        );
    }
    Ok(failed)
}

fn search(db: &Db, patterns: &[String], out: &mut impl Write) -> Outcome {
    let native = db.native_arch();
    let mut owners: Vec<(String, Vec<String>)> = Vec::new();
    for pkg in db.listed() {
        for path in files_or_warn(db, pkg)? {
            // dpkg puts each package it loads first among a path's owners.
            match owners.iter_mut().find(|(p, _)| *p == path) {
                Some((_, names)) => names.insert(0, pkg.nonambig_name(native)),
                None => owners.push((path, vec![pkg.nonambig_name(native)])),
            }
        }
    }
    let mut failed = false;
    for pattern in patterns {
        let pattern = search_pattern(pattern);
        let is_glob = pattern.contains(['*', '[', '?', '\\']);
        let exact = pattern.trim_end_matches("/.").trim_end_matches('/');
        let mut found = false;
        for (path, names) in &owners {
            let hit = if is_glob {
                kiln_tools::glob::matches(pattern.as_bytes(), path.as_bytes())
            } else {
                path == exact
            };
            if hit {
                found = true;
                writeln!(out, "{}: {path}", names.join(", ")).map_err(|e| e.to_string())?;
            }
        }
        if !found {
            util::warn(TOOL, format!("no path found matching pattern {pattern}"));
            failed = true;
        }
    }
    Ok(failed)
}

/// `pkg`'s files; a configured package without a list gets dpkg's warning.
fn files_or_warn(db: &Db, pkg: &Pkg) -> Result<Vec<String>, String> {
    let files = db.files(pkg)?;
    let configured = matches!(
        pkg.state(),
        "installed" | "triggers-awaited" | "triggers-pending"
    ) || pkg
        .para
        .as_ref()
        .is_some_and(|p| p.get("Config-Version").is_some());
    let missing = files.is_empty() && !std::path::Path::new(&db.info_path(pkg, "list")).exists();
    if missing && configured && pkg.state() != "config-files" {
        util::warn(
            TOOL,
            format!(
                "warning: files list file for package '{}' missing; assuming package has \
                 no files currently installed",
                pkg.nonambig_name(db.native_arch())
            ),
        );
    }
    Ok(files)
}

/// A pattern not starting with `*`, `[`, `?` or `/` matches as a substring.
fn search_pattern(arg: &str) -> String {
    match arg.chars().next() {
        Some('*' | '[' | '?' | '/') => arg.to_owned(),
        _ => format!("*{arg}*"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_as_dpkg_widens_them() {
        assert_eq!(search_pattern("libc.so.6"), "*libc.so.6*");
        assert_eq!(search_pattern("/bin/sh"), "/bin/sh");
        assert_eq!(search_pattern("*/sh"), "*/sh");
    }

    #[test]
    fn options_take_inline_or_next_values() {
        let mut q = Query::default();
        let mut rest = vec!["${Package}\\n".to_owned()].into_iter();
        assert_eq!(take_option(&mut q, "-f", &mut rest), Ok(true));
        assert_eq!(q.format.as_deref(), Some("${Package}\\n"));
        assert_eq!(take_option(&mut q, "--root=/r/", &mut rest), Ok(true));
        assert_eq!(q.admindir, "/r/var/lib/dpkg");
        assert_eq!(take_option(&mut q, "--bogus", &mut rest), Ok(false));
        assert!(take_option(&mut q, "--admindir", &mut rest).is_err());
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(main(TOOL, vec![]), 2);
        assert_eq!(main(TOOL, vec!["--bogus".into()]), 2);
        assert_eq!(main(TOOL, vec!["-L".into()]), 2);
    }
}
