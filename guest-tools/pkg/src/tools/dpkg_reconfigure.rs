//! `dpkg-reconfigure` (debconf's Perl program): runs an installed package's maintainer
//! scripts again through debconf (`prerm upgrade`, `preinst upgrade`, `config
//! reconfigure`, `postinst configure`, each with the installed version and
//! `DEBCONF_RECONFIGURE=1`), as Dockerfiles do with
//! `dpkg-reconfigure -f noninteractive tzdata`. Scripts that use debconf talk to kiln's
//! frontend (`crate::debconf`), which answers as the noninteractive one; the others run
//! as plain programs, with the database saved before and read again after.

use std::path::{Path, PathBuf};

use crate::debconf::Error;
use crate::debconf::frontend::Frontend;
use crate::debconf::server::Settings;
use crate::query;

/// What `$0` is in debconf's messages: the program's path.
const PROG: &str = "/usr/sbin/dpkg-reconfigure";

const USAGE: &str = "Usage: dpkg-reconfigure [options] packages
  -u,  --unseen-only\t\tShow only not yet seen questions.
       --default-priority\tUse default priority instead of low.
       --force\t\t\tForce reconfiguration of broken packages.
       --no-reload\t\tDo not reload templates. (Use with caution.)
  -f,  --frontend\t\tSpecify debconf frontend to use.
  -p,  --priority\t\tSpecify minimum priority question to show.
       --terse\t\t\tEnable terse mode.
";

const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];

/// The command line.
#[derive(Default)]
struct Options {
    unseen_only: bool,
    default_priority: bool,
    force: bool,
    no_reload: bool,
    priority: Option<String>,
    packages: Vec<String>,
}

/// Parses options as Getopt::Long with bundling does (options anywhere, `--` ends them,
/// `-fVALUE` and `--frontend=VALUE`); `None` after printing the usage.
fn parse(args: Vec<String>) -> Option<Options> {
    let mut opts = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if arg.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |short: &str| {
            inline
                .clone()
                .or_else(|| {
                    arg.strip_prefix(short)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                })
                .or_else(|| args.next())
        };
        match flag.as_str() {
            "--" => {
                opts.packages.extend(args.by_ref());
            }
            "-u" | "--unseen-only" => opts.unseen_only = true,
            "--default-priority" => opts.default_priority = true,
            "--force" => opts.force = true,
            "--no-reload" | "--noreload" => opts.no_reload = true,
            "--reload" => opts.no_reload = false,
            "--terse" => {}
            // kiln's frontend is always the noninteractive one: a build has no terminal.
            f if f == "--frontend" || f.starts_with("-f") => {
                value("-f")?;
            }
            f if f == "--priority" || f.starts_with("-p") => {
                let p = value("-p")?;
                if PRIORITIES.contains(&p.as_str()) {
                    opts.priority = Some(p);
                } else {
                    eprintln!("Ignoring invalid priority \"{p}\"");
                    eprintln!("Valid priorities are: {}", PRIORITIES.join(" "));
                }
            }
            f if f.starts_with('-') && f.len() > 1 => {
                if !matches!(f, "-h" | "--help") {
                    eprintln!("Unknown option: {}", f.trim_start_matches('-'));
                }
                eprint!("{USAGE}");
                return None;
            }
            _ => opts.packages.push(arg),
        }
    }
    Some(opts)
}

pub(crate) fn main(_name: &str, args: Vec<String>) -> i32 {
    let Some(opts) = parse(args) else {
        return 1;
    };
    if kiln_abi::identity().0 != 0 {
        eprintln!("{PROG} must be run as root");
        return 1;
    }
    if opts.packages.is_empty() {
        eprintln!("{PROG}: please specify a package to reconfigure");
        return 1;
    }
    let root = PathBuf::from(format!(
        "{}/",
        std::env::var("DPKG_ROOT").unwrap_or_default()
    ));
    match reconfigure(&root, &opts) {
        Ok(status) => status,
        Err(e) => {
            crate::util::warn("debconf", e);
            1
        }
    }
}

/// The priority questions are shown from: `low`, the database's with
/// `--default-priority`, `-p`'s, and `DEBIAN_PRIORITY` over all.
fn settings(opts: &Options) -> impl FnOnce(&crate::debconf::model::Db) -> Settings + '_ {
    move |db| {
        let mut settings = Settings::new(db, |k| std::env::var(k).ok());
        if std::env::var_os("DEBIAN_PRIORITY").is_none() {
            settings.priority = match (&opts.priority, opts.default_priority) {
                (Some(p), _) => p.clone(),
                (None, true) => settings.priority,
                (None, false) => "low".to_owned(),
            };
        }
        settings.reshow = !opts.unseen_only;
        settings
    }
}

fn reconfigure(root: &Path, opts: &Options) -> Result<i32, Error> {
    let mut frontend = Frontend::with_settings(root, settings(opts))?;
    let admindir = root.join("var/lib/dpkg").display().to_string();
    let initial = pending_triggers(&admindir);
    for name in &opts.packages {
        let db = query::Db::load(&admindir)
            .unwrap_or_else(|_| query::Db::from_paragraphs(&admindir, Vec::new()));
        let Some(pkg) = db.find(name).next() else {
            eprintln!("{PROG}: {name} is not installed");
            return Ok(1);
        };
        if !opts.force {
            if pkg.is_not_installed() {
                eprintln!("{PROG}: {name} is not installed");
                return Ok(1);
            }
            if !pkg.field("Status").ends_with(" ok installed") {
                eprintln!("{PROG}: {name} is broken or not fully installed");
                return Ok(1);
            }
        }
        frontend.set_package(name, true);
        let status = run_scripts(&mut frontend, root, &db, pkg, opts)?;
        if status != 0 {
            return Ok(status);
        }
    }
    let status = configure_new_triggers(&mut frontend, root, &admindir, &initial)?;
    frontend.save()?;
    Ok(status)
}

/// The package's scripts in dpkg-reconfigure's order, through debconf when they use it.
fn run_scripts(
    frontend: &mut Frontend,
    root: &Path,
    db: &query::Db,
    pkg: &query::Pkg,
    opts: &Options,
) -> Result<i32, Error> {
    if !opts.no_reload {
        let templates = PathBuf::from(db.info_path(pkg, "templates"));
        if templates.exists() {
            frontend.load_templates(&templates)?;
        }
    }
    let version = pkg.version().to_owned();
    for (script, action) in [
        ("prerm", "upgrade"),
        ("preinst", "upgrade"),
        ("config", "reconfigure"),
        ("postinst", "configure"),
    ] {
        let path = db.info_path(pkg, script);
        if !is_executable(&path) {
            continue;
        }
        let env = [
            ("DEBCONF_RECONFIGURE", "1"),
            ("DPKG_MAINTSCRIPT_PACKAGE", pkg.name.as_str()),
            ("DPKG_MAINTSCRIPT_ARCH", pkg.arch()),
            ("DPKG_MAINTSCRIPT_NAME", script),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let argv = vec![path.clone(), action.to_owned(), version.clone()];
        let status = if script == "config" || uses_debconf(&path) {
            frontend.converse(argv, &env, Some("/"))?
        } else {
            run_external(frontend, root, argv, &env)?
        };
        if status != 0 {
            return Ok(status);
        }
    }
    Ok(0)
}

fn is_executable(path: &str) -> bool {
    kiln_abi::stat(path, true).is_ok_and(|st| st.is_file() && st.perm() & 0o111 != 0)
}

/// Whether a script names debconf's confmodule (debconf's own test: the word anywhere).
fn uses_debconf(path: &str) -> bool {
    let text = crate::debconf::db::read_bounded(
        Path::new(path),
        crate::debconf::templates::MAX_TEMPLATES_BYTES,
    );
    text.is_ok_and(|t| t.to_lowercase().contains("confmodule"))
}

/// A program that is no confmodule: the database is saved for it and read again after,
/// and it runs without `DEBIAN_HAS_FRONTEND`.
fn run_external(
    frontend: &mut Frontend,
    root: &Path,
    argv: Vec<String>,
    extra: &[(String, String)],
) -> Result<i32, Error> {
    frontend.save()?;
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != "DEBIAN_HAS_FRONTEND" && !extra.iter().any(|(e, _)| e == k))
        .collect();
    env.extend(extra.iter().cloned());
    let program = argv.first().cloned().unwrap_or_default();
    let mut cmd = kiln_abi::Command::new(argv);
    cmd.env = Some(env);
    cmd.cwd = Some("/".to_owned());
    let status = kiln_abi::run(&cmd).map_err(|source| Error::Spawn { program, source })?;
    frontend.reload(root)?;
    Ok(status)
}

/// Packages with triggers pending (`dpkg-query -W -f '${Triggers-Pending}'`).
fn pending_triggers(admindir: &str) -> Vec<String> {
    let Ok(db) = query::Db::load(admindir) else {
        return Vec::new();
    };
    db.pkgs
        .iter()
        .filter(|p| !p.field("Triggers-Pending").is_empty())
        .map(|p| p.name.clone())
        .collect()
}

/// Runs `dpkg --configure` for the packages whose triggers the scripts activated, until
/// none is left, as dpkg-reconfigure does.
fn configure_new_triggers(
    frontend: &mut Frontend,
    root: &Path,
    admindir: &str,
    initial: &[String],
) -> Result<i32, Error> {
    // Each round configures every newly pending package; a package's triggers can
    // activate another's, but never more rounds than packages.
    for _ in 0..=query::Db::load(admindir).map_or(0, |db| db.pkgs.len()) {
        let new: Vec<String> = pending_triggers(admindir)
            .into_iter()
            .filter(|p| !initial.contains(p))
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        let argv = [vec!["dpkg".to_owned(), "--configure".to_owned()], new].concat();
        let status = run_external(frontend, root, argv, &[])?;
        if status != 0 {
            return Ok(status);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_parse_as_getopt_long_bundles_them() {
        let opts = parse(args(&["-f", "noninteractive", "tzdata", "-plow", "-u"])).unwrap();
        assert_eq!(opts.packages, ["tzdata"]);
        assert_eq!(opts.priority.as_deref(), Some("low"));
        assert!(opts.unseen_only);
        let opts = parse(args(&[
            "--frontend=noninteractive",
            "--no-reload",
            "--",
            "-x",
        ]))
        .unwrap();
        assert_eq!(opts.packages, ["-x"]);
        assert!(opts.no_reload);
        assert!(parse(args(&["--bogus"])).is_none());
        let opts = parse(args(&["-p", "urgent", "a"])).unwrap();
        assert_eq!(opts.priority, None, "an invalid priority is ignored");
    }
}
