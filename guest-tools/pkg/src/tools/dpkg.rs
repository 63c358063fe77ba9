//! `dpkg`: `-i`/`--install`, `--unpack`, `--configure <pkg>|-a`, `-r`/`--remove`,
//! `-P`/`--purge` through kiln-deb's operations (maintainer scripts by
//! [`crate::scripts::Runner`]); `--print-architecture`, `--get-selections`, `--version`;
//! and the query actions (`-l`, `-L`, `-s`, `-S`), which dpkg hands to dpkg-query.
//! Messages and exit codes are dpkg 1.21's.

use std::io::{self, Write};
use std::path::Path;

use kiln_deb::archive::DebFile;
use kiln_deb::db::Database;
use kiln_deb::ops;

use super::dpkg_query::{self, Action, Query};
use crate::progress::Printer;
use crate::query::Db;
use crate::scripts::{DPKG_VERSION, Runner};
use crate::triggers::Triggers;

/// An action that changes packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Install,
    Unpack,
    Configure,
    Remove,
    Purge,
}

impl Change {
    fn from_option(opt: &str) -> Option<Change> {
        Some(match opt {
            "-i" | "--install" => Change::Install,
            "--unpack" => Change::Unpack,
            "--configure" => Change::Configure,
            "-r" | "--remove" => Change::Remove,
            "-P" | "--purge" => Change::Purge,
            _ => return None,
        })
    }

    /// The long option, as dpkg names the action in its messages.
    fn option(self) -> &'static str {
        match self {
            Change::Install => "--install",
            Change::Unpack => "--unpack",
            Change::Configure => "--configure",
            Change::Remove => "--remove",
            Change::Purge => "--purge",
        }
    }

    fn takes_archives(self) -> bool {
        matches!(self, Change::Install | Change::Unpack)
    }
}

/// What a dpkg command line asks for.
enum Todo {
    Query(Action),
    Change(Change),
    PrintArchitecture,
    CompareVersions,
    ValidateVersion,
    GetSelections,
    Version,
}

pub(crate) fn main(_name: &str, args: Vec<String>) -> i32 {
    let mut query = Query::default();
    let mut pending = false;
    let parsed = dpkg_query::parse_options(args, |arg, rest| {
        if let Some(action) = Action::from_option(arg) {
            return Ok(Some(Todo::Query(action)));
        }
        if let Some(change) = Change::from_option(arg) {
            return Ok(Some(Todo::Change(change)));
        }
        match arg {
            "--print-architecture" => return Ok(Some(Todo::PrintArchitecture)),
            "--compare-versions" => return Ok(Some(Todo::CompareVersions)),
            "--validate-version" => return Ok(Some(Todo::ValidateVersion)),
            "--get-selections" => return Ok(Some(Todo::GetSelections)),
            "--version" => return Ok(Some(Todo::Version)),
            "-a" | "--pending" => pending = true,
            _ if is_accepted_flag(arg) => {}
            _ if dpkg_query::take_option(&mut query, arg, rest)? => {}
            _ => return Err(format!("unknown option {arg}")),
        }
        Ok(None)
    });
    let (todo, rest) = match parsed {
        Ok((Some(todo), rest)) => (todo, rest),
        Ok((None, _)) => return bad_usage("need an action option"),
        Err(msg) => return bad_usage(&msg),
    };
    match todo {
        Todo::Query(action) => dpkg_query::run(action, &query, &rest),
        Todo::Change(change) => change_packages(change, &query, pending, rest),
        Todo::PrintArchitecture => print_architecture(&query),
        Todo::CompareVersions => compare_versions(&rest),
        Todo::ValidateVersion => validate_version(&rest),
        Todo::GetSelections => get_selections(&query, &rest),
        Todo::Version => version(),
    }
}

/// Options scripts and apt pass that change nothing here: forcing options (kiln-deb
/// applies dpkg's default policy: conffiles are kept as dpkg does with --force-confdef
/// when the admin did not change them), and dpkg's interfaces for a frontend.
fn is_accepted_flag(arg: &str) -> bool {
    arg.starts_with("--force-")
        || arg.starts_with("--no-force-")
        || arg.starts_with("--refuse-")
        || matches!(
            arg,
            "--no-triggers" | "--triggers" | "--no-debsig" | "--auto-deconfigure" | "-G"
        )
}

/// dpkg's usage error: the message, its hints, exit 2.
fn bad_usage(msg: &str) -> i32 {
    let _ = write!(
        io::stderr(),
        "dpkg: error: {msg}\n\n\
         Type dpkg --help for help about installing and deinstalling packages [*];\n\
         Use 'apt' or 'aptitude' for user-friendly package management;\n\
         Type dpkg -Dhelp for a list of dpkg debug flag values;\n\
         Type dpkg --force-help for a list of forcing options;\n\
         Type dpkg-deb --help for help about manipulating *.deb files;\n\n\
         Options marked [*] produce a lot of output - pipe it through 'less' or 'more' !\n"
    );
    2
}

fn load(query: &Query) -> Result<Db, i32> {
    Db::load(&query.admindir).map_err(|msg| {
        crate::util::warn("dpkg", format!("error: {msg}"));
        2
    })
}

fn print_architecture(query: &Query) -> i32 {
    let db = match load(query) {
        Ok(db) => db,
        Err(code) => return code,
    };
    match db.native_arch() {
        Some(arch) => {
            println!("{arch}");
            0
        }
        None => {
            crate::util::warn(
                "dpkg",
                "error: cannot determine the native architecture: the dpkg package is not \
                 installed in this image (/var/lib/dpkg/status)",
            );
            2
        }
    }
}

/// `name<tabs>want` for each package (patterns select; without, all installed ones).
fn get_selections(query: &Query, patterns: &[String]) -> i32 {
    let db = match load(query) {
        Ok(db) => db,
        Err(code) => return code,
    };
    let (pkgs, misses) = if patterns.is_empty() {
        (db.listed(), Vec::new())
    } else {
        db.matching(patterns)
    };
    let native = db.native_arch();
    let mut out = io::stdout().lock();
    for pkg in pkgs.iter().filter(|p| p.para.is_some()) {
        let name = pkg.nonambig_name(native);
        let want = pkg.want();
        if want == "unknown" {
            continue;
        }
        let _ = writeln!(out, "{name}{}{want}", selection_tabs(&name));
    }
    for miss in &misses {
        crate::util::warn("dpkg", format!("no packages found matching {miss}"));
    }
    i32::from(!misses.is_empty())
}

/// dpkg aligns `--get-selections` to the sixth tab stop (at least one tab).
fn selection_tabs(name: &str) -> String {
    "\t".repeat(6usize.saturating_sub(name.len() / 8).max(1))
}

/// Exit statuses of `--compare-versions` per relation: when the first version is lesser,
/// equal, greater, the first alone is empty, both are, the second alone is (dpkg's table;
/// the `-nl` relations take an empty version as later than any).
const RELATIONS: &[(&str, [u8; 6])] = &[
    ("le", [0, 0, 1, 0, 0, 1]),
    ("lt", [0, 1, 1, 0, 1, 1]),
    ("eq", [1, 0, 1, 1, 0, 1]),
    ("ne", [0, 1, 0, 0, 1, 0]),
    ("ge", [1, 0, 0, 1, 0, 0]),
    ("gt", [1, 1, 0, 1, 1, 0]),
    ("le-nl", [0, 0, 1, 1, 0, 0]),
    ("lt-nl", [0, 1, 1, 1, 1, 0]),
    ("ge-nl", [1, 0, 0, 0, 0, 1]),
    ("gt-nl", [1, 1, 0, 0, 1, 1]),
    ("<", [0, 0, 1, 0, 0, 1]),
    ("<=", [0, 0, 1, 0, 0, 1]),
    ("<<", [0, 1, 1, 0, 1, 1]),
    ("=", [1, 0, 1, 1, 0, 1]),
    (">", [1, 0, 0, 1, 0, 0]),
    (">=", [1, 0, 0, 1, 0, 0]),
    (">>", [1, 1, 0, 1, 1, 0]),
];

/// `dpkg --compare-versions <a> <relation> <b>`: 0 when the relation holds, else 1.
fn compare_versions(args: &[String]) -> i32 {
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    let [a, op, b] = args else {
        return bad_usage(
            "--compare-versions takes three arguments: <version> <relation> <version>",
        );
    };
    let Some((_, codes)) = RELATIONS.iter().find(|(name, _)| name == op) else {
        return bad_usage("--compare-versions bad relation");
    };
    if matches!(op.as_str(), "<" | ">") {
        crate::util::warn(
            "dpkg",
            format!("warning: --compare-versions used with obsolete relation operator '{op}'"),
        );
    }
    let (a, b) = match (parse_version(a), parse_version(b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let index = match (a, b) {
        (None, Some(_)) => 3,
        (None, None) => 4,
        (Some(_), None) => 5,
        (Some(a), Some(b)) => match a.cmp(&b) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Equal => 1,
            std::cmp::Ordering::Greater => 2,
        },
    };
    i32::from(codes[index])
}

/// A version argument: empty or `<unknown>` is no version.
/// `dpkg --validate-version V`: 0 for a valid version, else 1 with dpkg's warning
/// (dpkg-maintscript-helper checks its version arguments with it).
fn validate_version(args: &[String]) -> i32 {
    let [text] = args else {
        return bad_usage("--validate-version takes one argument: <version>");
    };
    match text.parse::<kiln_deb::version::Version>() {
        Ok(_) => 0,
        Err(e) => {
            crate::util::warn(
                "dpkg",
                format!("warning: version '{text}' has bad syntax: {e}"),
            );
            1
        }
    }
}

fn parse_version(text: &str) -> Result<Option<kiln_deb::version::Version>, i32> {
    if text.is_empty() || text == "<unknown>" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        crate::util::warn(
            "dpkg",
            format!("error: version '{text}' has bad syntax: {e}"),
        );
        2
    })
}

fn version() -> i32 {
    let arch = Db::load(crate::query::ADMIN_DIR)
        .ok()
        .and_then(|db| db.native_arch().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!(
        "Debian 'dpkg' package management program version {DPKG_VERSION} ({arch}).\n\
         This is free software; see the GNU General Public License version 2 or\n\
         later for copying conditions. There is NO warranty."
    );
    0
}

fn change_packages(change: Change, query: &Query, pending: bool, args: Vec<String>) -> i32 {
    let all = pending && change == Change::Configure;
    if args.is_empty() && !all {
        let what = if change.takes_archives() {
            "package archive file"
        } else {
            "package name"
        };
        return bad_usage(&format!(
            "{} needs at least one {what} argument",
            change.option()
        ));
    }
    let root = query
        .admindir
        .strip_suffix(crate::query::ADMIN_DIR)
        .map(|r| if r.is_empty() { "/" } else { r })
        .unwrap_or("/");
    let mut db = match Database::load(Path::new(root)) {
        Ok(db) => db,
        Err(e) => {
            crate::util::warn("dpkg", format!("error: {e}"));
            return 2;
        }
    };
    let targets = if all { pending_packages(&db) } else { args };
    let mut session = Session {
        db: &mut db,
        change,
        runner: Runner::new(std::env::var_os("DPKG_FRONTEND_LOCKED").is_some()),
        printer: Printer::new(&query.admindir),
        triggers: Triggers::new(),
        failed: Vec::new(),
    };
    session.run(&targets);
    let failed = std::mem::take(&mut session.failed);
    if let Err(e) = db.write() {
        crate::util::warn("dpkg", format!("error: {e}"));
        return 2;
    }
    report(&failed)
}

/// `--configure -a`: every package unpacked or half-configured.
fn pending_packages(db: &Database) -> Vec<String> {
    db.entries()
        .iter()
        .filter(|e| {
            kiln_deb::db::status(e).is_ok_and(|s| {
                matches!(
                    s.state,
                    kiln_deb::db::State::Unpacked | kiln_deb::db::State::HalfConfigured
                )
            })
        })
        .map(|e| kiln_deb::db::package(e).to_owned())
        .collect()
}

struct Session<'a> {
    db: &'a mut Database,
    change: Change,
    runner: Runner,
    printer: Printer,
    triggers: Triggers,
    failed: Vec<String>,
}

impl Session<'_> {
    fn run(&mut self, targets: &[String]) {
        self.change_all(targets);
        self.process_triggers();
    }

    /// dpkg's end of run: the postinst of each package a trigger woke up.
    fn process_triggers(&mut self) {
        self.triggers.pending_from_status(self.db);
        match self.triggers.process(self.db, &mut self.runner) {
            Ok(failed) => {
                for (package, code) in failed {
                    let reason = format!(
                        "installed {package} package post-installation script subprocess \
                         returned error exit status {code}"
                    );
                    self.fail_with("package", &package, &reason);
                }
            }
            Err(msg) => self.fail_with("package", "(triggers)", &msg),
        }
    }

    fn change_all(&mut self, targets: &[String]) {
        if self.change.takes_archives() {
            let unpacked = self.unpack_all(targets);
            if self.change == Change::Install {
                self.configure_all(&unpacked);
            }
            return;
        }
        for target in targets {
            let result = match self.change {
                Change::Configure => self.configure(target),
                Change::Remove => ops::remove(self.db, target, &mut self.runner, &mut self.printer),
                _ => ops::purge(self.db, target, &mut self.runner, &mut self.printer),
            };
            if let Err(e) = result {
                self.fail("package", target, &e);
            }
        }
    }

    /// Unpacks each archive; the names of the packages unpacked.
    fn unpack_all(&mut self, archives: &[String]) -> Vec<String> {
        let mut unpacked = Vec::new();
        for archive in archives {
            let result = DebFile::open(Path::new(archive)).and_then(|deb| {
                let name = deb
                    .control()?
                    .get("Package")
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                ops::unpack(self.db, &deb, &mut self.runner, &mut self.printer)?;
                Ok(name)
            });
            match result {
                Ok(name) => {
                    if let Err(msg) = self.triggers.unpacked(self.db, &name) {
                        self.fail_with("archive", archive, &msg);
                    }
                    unpacked.push(name);
                }
                Err(e) => self.fail("archive", archive, &e),
            }
        }
        unpacked
    }

    fn configure_all(&mut self, packages: &[String]) {
        for package in packages {
            if let Err(e) = self.configure(package) {
                self.fail("package", package, &e);
            }
        }
    }

    fn configure(&mut self, package: &str) -> kiln_deb::Result<()> {
        ops::configure(self.db, package, &mut self.runner, &mut self.printer)
    }

    /// dpkg's report of one failed item: `dpkg: error processing <kind> <what> (<option>):`
    /// then the reason, indented.
    fn fail(&mut self, kind: &str, what: &str, err: &kiln_deb::Error) {
        self.fail_with(kind, what, &crate::scripts::describe(err));
    }

    fn fail_with(&mut self, kind: &str, what: &str, reason: &str) {
        let _ = writeln!(
            io::stderr(),
            "dpkg: error processing {kind} {what} ({}):\n {reason}",
            self.change.option()
        );
        self.failed.push(what.to_owned());
    }
}

/// dpkg's summary after failures; the exit status.
fn report(failed: &[String]) -> i32 {
    if failed.is_empty() {
        return 0;
    }
    let mut text = String::from("Errors were encountered while processing:\n");
    for item in failed {
        text.push_str(&format!(" {item}\n"));
    }
    let _ = io::stderr().write_all(text.as_bytes());
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_version_as_dpkg() {
        let valid = |v: &str| validate_version(&[v.to_owned()]);
        assert_eq!(valid("2.36-9+deb12u4"), 0);
        assert_eq!(valid("1:0.1~rc1"), 0);
        assert_eq!(valid("a b"), 1);
        assert_eq!(valid(""), 1);
        assert_eq!(valid("1.0-"), 1);
        assert_eq!(validate_version(&[]), 2);
    }

    #[test]
    fn compare_versions_as_dpkg() {
        let cmp = |a: &str, op: &str, b: &str| {
            compare_versions(&[a.to_owned(), op.to_owned(), b.to_owned()])
        };
        assert_eq!(cmp("1.0-1", "lt", "1.0-2"), 0);
        assert_eq!(cmp("1:0.1", "gt", "2.0"), 0);
        assert_eq!(cmp("1.0~rc1", "ge", "1.0"), 1);
        assert_eq!(cmp("", "le-nl", "1.0"), 1);
        assert_eq!(cmp("", "lt", "1.0"), 0);
        assert_eq!(cmp("1.0", "le-nl", ""), 0);
        assert_eq!(cmp("1.0", ">>", "1.0"), 1);
        assert_eq!(cmp("1.0", "is", "1.0"), 2);
        let with_dashes = ["--", "2", "eq", "2"].map(String::from);
        assert_eq!(compare_versions(&with_dashes), 0);
    }

    #[test]
    fn selections_align_like_dpkg() {
        assert_eq!(selection_tabs("libc-bin"), "\t".repeat(5));
        assert_eq!(selection_tabs("libcap-ng0:amd64"), "\t".repeat(4));
        assert_eq!(selection_tabs(&"x".repeat(60)), "\t");
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(main("dpkg", vec![]), 2);
        assert_eq!(main("dpkg", vec!["--bogus".into()]), 2);
        assert_eq!(main("dpkg", vec!["-i".into()]), 2);
        assert_eq!(
            main("dpkg", vec!["--force-all".into(), "--configure".into()]),
            2
        );
    }
}
