//! `update-alternatives` as dpkg 1.21's: link groups kept in
//! `/var/lib/dpkg/alternatives/<name>` (same format, choices sorted by path and slaves by
//! name when written) with `<link> -> /etc/alternatives/<name> -> <choice>` symlinks,
//! replaced through `<path>.dpkg-tmp` renames; `--install` (with `--slave`), `--remove`,
//! `--remove-all`, `--set`, `--auto`, `--display`, `--query`, `--list`,
//! `--get-selections`; messages, `/var/log/alternatives.log` lines and exit codes as
//! dpkg's. Not done: the interactive `--config`/`--all` and `--set-selections`, and the
//! link times dpkg copies from their targets (kiln_abi has no call to set a symlink's
//! times).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read as _, Write as _};

const TOOL: &str = "update-alternatives";
const ADMIN_DIR: &str = "/var/lib/dpkg/alternatives";
const ALT_DIR: &str = "/etc/alternatives";
const LOG_FILE: &str = "/var/log/alternatives.log";
const TMP_EXT: &str = ".dpkg-tmp";

/// Bound on an administrative file read back: real ones are under 4 KiB; a hostile
/// image must not make the tool allocate without limit.
const MAX_ADMIN_BYTES: u64 = 1 << 20;

/// A failure: dpkg's `error:` message, exit 2 (usage errors carry their own text).
#[derive(Debug, PartialEq)]
enum Fail {
    Error(String),
    Usage(String),
}

type Res<T> = Result<T, Fail>;

fn err<T>(msg: impl Into<String>) -> Res<T> {
    Err(Fail::Error(msg.into()))
}

fn usage<T>(msg: impl Into<String>) -> Res<T> {
    Err(Fail::Usage(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Auto,
    Manual,
}

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Choice {
    path: String,
    priority: i32,
    /// Slave name -> file.
    slaves: BTreeMap<String, String>,
}

/// A link group.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    name: String,
    mode: Mode,
    link: String,
    /// (name, link), in file order.
    slaves: Vec<(String, String)>,
    choices: Vec<Choice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// What the command line asks for.
#[derive(Debug, Default)]
struct Cli {
    action: Option<String>,
    name: String,
    path: String,
    install: Option<Group>,
    quiet: bool,
    verbose: bool,
    force: bool,
    admindir: Option<String>,
    altdir: Option<String>,
    log: Option<String>,
    argv: String,
}

/// Where things are (dpkg's `--admindir`, `--altdir`, `--log`).
struct Ctx {
    admin: String,
    alt: String,
    log: String,
    verbosity: Verbosity,
    force: bool,
}

pub(crate) fn main(_name: &str, args: Vec<String>) -> i32 {
    let outcome = parse(&args).and_then(|cli| {
        let ctx = Ctx {
            admin: cli.admindir.clone().unwrap_or_else(|| ADMIN_DIR.into()),
            alt: cli.altdir.clone().unwrap_or_else(|| ALT_DIR.into()),
            log: cli.log.clone().unwrap_or_else(|| LOG_FILE.into()),
            verbosity: match (cli.quiet, cli.verbose) {
                (true, _) => Verbosity::Quiet,
                (_, true) => Verbosity::Verbose,
                _ => Verbosity::Normal,
            },
            force: cli.force,
        };
        ctx.run(cli)
    });
    match outcome {
        Ok(()) => 0,
        Err(Fail::Error(msg)) => {
            let _ = writeln!(io::stderr(), "{TOOL}: error: {msg}");
            2
        }
        Err(Fail::Usage(msg)) => {
            let _ = writeln!(
                io::stderr(),
                "{TOOL}: {msg}\n\nUse '{TOOL} --help' for program usage information."
            );
            2
        }
    }
}

const ACTIONS: &str = "need --display, --query, --list, --get-selections, --config, --set, \
                       --set-selections, --install, --remove, --all, --remove-all or --auto";

fn parse(args: &[String]) -> Res<Cli> {
    let mut cli = Cli {
        argv: args.join(" "),
        ..Cli::default()
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let rest = &args[i + 1..];
        let take = |n: usize, what: &str| -> Res<&[String]> {
            if rest.len() < n {
                return usage(format!("--{} needs {what}", &arg[2..]));
            }
            Ok(&rest[..n])
        };
        i += 1;
        if !arg.starts_with("--") {
            return err(format!("unknown argument '{arg}'"));
        }
        match arg {
            "--quiet" => cli.quiet = true,
            "--verbose" | "--debug" => cli.verbose = true,
            "--force" => cli.force = true,
            "--skip-auto" => {}
            "--install" => {
                let a = take(4, "<link> <name> <path> <priority>")?;
                cli.install = Some(install_group(a)?);
                set_action(&mut cli, "install")?;
                cli.name = a[1].clone();
                i += 4;
            }
            "--slave" => {
                let a = take(3, "<link> <name> <path>")?;
                add_slave(&mut cli, a)?;
                i += 3;
            }
            "--remove" | "--set" => {
                let a = take(2, "<name> <path>")?;
                set_action(&mut cli, &arg[2..])?;
                (cli.name, cli.path) = (a[0].clone(), a[1].clone());
                i += 2;
            }
            "--display" | "--query" | "--auto" | "--list" | "--remove-all" => {
                let a = take(1, "<name>")?;
                set_action(&mut cli, &arg[2..])?;
                cli.name = a[0].clone();
                i += 1;
            }
            "--get-selections" => set_action(&mut cli, "get-selections")?,
            "--admindir" | "--altdir" | "--log" => {
                let what = if arg == "--log" {
                    "a <file> argument"
                } else {
                    "a <directory> argument"
                };
                let a = take(1, what)?;
                let v = Some(a[0].clone());
                match arg {
                    "--admindir" => cli.admindir = v,
                    "--altdir" => cli.altdir = v,
                    _ => cli.log = v,
                }
                i += 1;
            }
            "--config" | "--all" | "--set-selections" => {
                return err(format!(
                    "{arg} is interactive or reads selections, which kiln's \
                     update-alternatives does not do; use --set or --auto"
                ));
            }
            _ => return usage(format!("unknown option '{arg}'")),
        }
    }
    if cli.action.is_none() {
        return usage(ACTIONS);
    }
    Ok(cli)
}

fn set_action(cli: &mut Cli, action: &str) -> Res<()> {
    if let Some(old) = &cli.action {
        return usage(format!("two commands specified: --{action} and --{old}"));
    }
    cli.action = Some(action.to_owned());
    Ok(())
}

fn install_group(a: &[String]) -> Res<Group> {
    let (link, name, path, prio) = (&a[0], &a[1], &a[2], &a[3]);
    if link == path {
        return usage(format!("<link> '{link}' is the same as <path>"));
    }
    let priority = match prio.parse::<i64>() {
        Ok(p) => {
            i32::try_from(p).or_else(|_| usage(format!("priority '{prio}' is out of range")))?
        }
        Err(_) => return usage(format!("priority '{prio}' must be an integer")),
    };
    Ok(Group {
        name: name.clone(),
        mode: Mode::Auto,
        link: link.clone(),
        slaves: Vec::new(),
        choices: vec![Choice {
            path: path.clone(),
            priority,
            slaves: BTreeMap::new(),
        }],
    })
}

fn add_slave(cli: &mut Cli, a: &[String]) -> Res<()> {
    let Some(group) = cli.install.as_mut() else {
        return usage("--slave only allowed with --install");
    };
    let (link, name, path) = (&a[0], &a[1], &a[2]);
    if link == path {
        return usage(format!("<link> '{link}' is the same as <path>"));
    }
    if *name == group.name {
        return usage(format!("<name> '{name}' is both primary and slave"));
    }
    if *link == group.link {
        return usage(format!("<link> '{link}' is both primary and slave"));
    }
    if group.slaves.iter().any(|(n, _)| n == name) {
        return usage(format!("duplicate slave <name> '{name}'"));
    }
    if group.slaves.iter().any(|(_, l)| l == link) {
        return usage(format!("duplicate slave <link> '{link}'"));
    }
    group.slaves.push((name.clone(), link.clone()));
    group.choices[0].slaves.insert(name.clone(), path.clone());
    Ok(())
}

// ------------------------------------------------------------------ the database

/// Parses an administrative file (dpkg's format: mode, link, slave name/link pairs, a
/// blank line, then per choice its path, priority and one line per slave, a blank line).
fn parse_group(name: &str, text: &str) -> Res<Group> {
    let bad = |what: &str| Fail::Error(format!("{what} in {ADMIN_DIR}/{name}"));
    let mut lines = text.split('\n');
    let mut next = || lines.next().ok_or_else(|| bad("unexpected end of file"));
    let mode = match next()? {
        "auto" => Mode::Auto,
        "manual" => Mode::Manual,
        other => return Err(bad(&format!("invalid status '{other}'"))),
    };
    let link = next()?.to_owned();
    let mut slaves = Vec::new();
    loop {
        let slave = next()?;
        if slave.is_empty() {
            break;
        }
        slaves.push((slave.to_owned(), next()?.to_owned()));
    }
    let mut choices = Vec::new();
    loop {
        let path = next()?;
        if path.is_empty() {
            break;
        }
        let priority = next()?
            .parse()
            .map_err(|_| bad(&format!("invalid priority for {path}")))?;
        let mut files = BTreeMap::new();
        for (slave, _) in &slaves {
            let file = next()?;
            if !file.is_empty() {
                files.insert(slave.clone(), file.to_owned());
            }
        }
        choices.push(Choice {
            path: path.to_owned(),
            priority,
            slaves: files,
        });
    }
    Ok(Group {
        name: name.to_owned(),
        mode,
        link,
        slaves,
        choices,
    })
}

/// The administrative file for `group` (drops slaves no choice has; sorts).
fn format_group(group: &mut Group) -> String {
    let choices = &group.choices;
    group
        .slaves
        .retain(|(name, _)| choices.iter().any(|c| c.slaves.contains_key(name)));
    group.slaves.sort();
    group.choices.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = format!("{}\n{}\n", group.mode.word(), group.link);
    for (name, link) in &group.slaves {
        let _ = write!(out, "{name}\n{link}\n");
    }
    out.push('\n');
    for choice in &group.choices {
        let _ = write!(out, "{}\n{}\n", choice.path, choice.priority);
        for (name, _) in &group.slaves {
            let _ = writeln!(
                out,
                "{}",
                choice.slaves.get(name).map_or("", String::as_str)
            );
        }
    }
    out.push('\n');
    out
}

impl Group {
    fn choice(&self, path: &str) -> Option<&Choice> {
        self.choices.iter().find(|c| c.path == path)
    }

    /// The highest priority, the current choice winning ties, else the first.
    fn best(&self, current: Option<&str>) -> Option<&Choice> {
        let start = current
            .and_then(|c| self.choice(c))
            .or(self.choices.first())?;
        Some(self.choices.iter().fold(
            start,
            |best, c| {
                if c.priority > best.priority { c } else { best }
            },
        ))
    }
}

// ------------------------------------------------------------------ the filesystem

fn read_link(path: &str) -> Option<String> {
    fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn exists(path: &str) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn is_symlink(path: &str) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// `std::fs::soft_link` is the only stable symlink call that also exists on WASI.
#[allow(deprecated)]
fn symlink(target: &str, path: &str) -> io::Result<()> {
    fs::soft_link(target, path)
}

fn io_err(what: &str, path: &str, e: &io::Error) -> Fail {
    Fail::Error(format!("{what} '{path}': {}", describe(e)))
}

fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// A change to apply once everything is decided ("replace all symlinks in one pass").
enum Op {
    Rm(String),
    Mv(String, String),
}

impl Ctx {
    fn info(&self, msg: &str) {
        if self.verbosity != Verbosity::Quiet {
            println!("{TOOL}: {msg}");
        }
    }

    fn warn(&self, msg: &str) {
        if self.verbosity != Verbosity::Quiet {
            let _ = writeln!(io::stderr(), "{TOOL}: warning: {msg}");
        }
    }

    fn verbose(&self, msg: &str) {
        if self.verbosity == Verbosity::Verbose {
            println!("{TOOL}: {msg}");
        }
    }

    /// Appends `update-alternatives <date>: msg` to the log, as dpkg does.
    fn log(&self, msg: &str) -> Res<()> {
        if let Some(dir) = self
            .log
            .rsplit_once('/')
            .map(|(d, _)| d)
            .filter(|d| !d.is_empty())
        {
            let _ = fs::create_dir_all(dir);
        }
        let file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
            Err(e) => return Err(io_err("cannot append to", &self.log, &e)),
        };
        let line = format!("{TOOL} {}: {msg}\n", timestamp());
        file.write_all(line.as_bytes())
            .map_err(|e| io_err("cannot append to", &self.log, &e))
    }

    fn load(&self, name: &str) -> Res<Option<Group>> {
        let path = format!("{}/{name}", self.admin);
        let mut text = String::new();
        match fs::File::open(&path) {
            Ok(f) => f
                .take(MAX_ADMIN_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| io_err("cannot read", &path, &e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot open", &path, &e)),
        };
        parse_group(name, &text).map(Some)
    }

    fn save(&self, group: &mut Group) -> Res<()> {
        let file = format!("{}/{}", self.admin, group.name);
        let tmp = format!("{file}{TMP_EXT}");
        fs::create_dir_all(&self.admin)
            .map_err(|e| io_err("cannot create administrative directory", &self.admin, &e))?;
        fs::write(&tmp, format_group(group))
            .map_err(|e| io_err("unable to create file", &tmp, &e))?;
        fs::rename(&tmp, &file).map_err(|e| io_err("unable to install", &file, &e))
    }

    fn current(&self, name: &str) -> Option<String> {
        read_link(&format!("{}/{name}", self.alt))
    }

    fn run(&self, cli: Cli) -> Res<()> {
        let action = cli.action.as_deref().unwrap_or_default();
        if action == "get-selections" {
            return self.get_selections();
        }
        check_name(&cli.name)?;
        if matches!(action, "remove" | "set") {
            check_path(&cli.path)?;
        }
        if let Some(inst) = &cli.install {
            self.check_install(inst)?;
        }
        let loaded = self.load(&cli.name)?;
        let Some(mut group) = loaded.or_else(|| cli.install.clone()) else {
            if action == "remove" {
                self.verbose(&format!("no alternatives for {}", cli.name));
                return Ok(());
            }
            return err(format!("no alternatives for {}", cli.name));
        };
        match action {
            "display" => return self.display(&group),
            "query" => return self.query(&group),
            "list" => {
                group.choices.iter().for_each(|c| println!("{}", c.path));
                return Ok(());
            }
            _ => {}
        }
        self.log(&format!("run with {}", cli.argv))?;
        let current = self.current(&group.name);
        self.select_mode(&mut group, current.as_deref());
        let new = self.decide(action, &cli, &mut group, current.as_deref())?;
        self.update(&mut group, current.as_deref(), new)
    }

    /// dpkg's `alternative_select_mode`: a link changed by hand means manual mode.
    fn select_mode(&self, group: &mut Group, current: Option<&str>) {
        let Some(current) = current else {
            group.mode = Mode::Auto;
            return;
        };
        if group.choice(current).is_some() {
            return;
        }
        if !exists(current) {
            self.warn(&format!(
                "{}/{} is dangling; it will be updated with best choice",
                self.alt, group.name
            ));
            group.mode = Mode::Auto;
        } else if group.mode != Mode::Manual {
            self.warn(&format!(
                "{}/{} has been changed (manually or by a script); switching to manual \
                 updates only",
                self.alt, group.name
            ));
            group.mode = Mode::Manual;
        }
    }

    /// The choice the action wants the group to point to (`None`: keep it).
    fn decide(
        &self,
        action: &str,
        cli: &Cli,
        group: &mut Group,
        current: Option<&str>,
    ) -> Res<Option<String>> {
        match action {
            "install" => Ok(self.install(group, cli)),
            "remove" => Ok(self.remove(group, &cli.path, current)),
            "remove-all" => {
                group.choices.clear();
                Ok(None)
            }
            "set" => {
                if group.choice(&cli.path).is_none() {
                    return err(format!(
                        "alternative {} for {} not registered; not setting",
                        cli.path, group.name
                    ));
                }
                group.mode = Mode::Manual;
                Ok(Some(cli.path.clone()))
            }
            _ => {
                group.mode = Mode::Auto;
                let best = group.best(current).map(|c| c.path.clone());
                if best.is_none() {
                    self.info(&format!(
                        "there is no program which provides {}",
                        group.name
                    ));
                }
                Ok(best)
            }
        }
    }

    fn install(&self, group: &mut Group, cli: &Cli) -> Option<String> {
        let Some(inst) = &cli.install else {
            return None;
        };
        group.link.clone_from(&inst.link);
        for slave in &inst.slaves {
            match group.slaves.iter_mut().find(|(n, _)| *n == slave.0) {
                Some(existing) => existing.1.clone_from(&slave.1),
                None => group.slaves.push(slave.clone()),
            }
        }
        let choice = inst.choices[0].clone();
        match group.choices.iter_mut().find(|c| c.path == choice.path) {
            Some(old) => *old = choice,
            None => group.choices.push(choice),
        }
        if group.mode == Mode::Auto {
            return group
                .best(self.current(&group.name).as_deref())
                .map(|c| c.path.clone());
        }
        self.verbose(&format!(
            "automatic updates of {}/{} are disabled; leaving it alone",
            self.alt, group.name
        ));
        None
    }

    fn remove(&self, group: &mut Group, path: &str, current: Option<&str>) -> Option<String> {
        if group.choice(path).is_none() {
            self.verbose(&format!(
                "alternative {path} for {} not registered; not removing",
                group.name
            ));
        }
        group.choices.retain(|c| c.path != path);
        if current != Some(path) {
            return None;
        }
        if group.mode == Mode::Manual {
            self.info(&format!(
                "removing manually selected alternative - switching {} to auto mode",
                group.name
            ));
            group.mode = Mode::Auto;
        }
        group.best(None).map(|c| c.path.clone())
    }

    /// dpkg's `alternative_update`: log, announce, write the admin file, relink.
    fn update(&self, group: &mut Group, current: Option<&str>, new: Option<String>) -> Res<()> {
        if group.choices.is_empty() {
            self.log(&format!("link group {} fully removed", group.name))?;
            return self.remove_files(group);
        }
        let mut ops = Vec::new();
        match new.filter(|n| current != Some(n.as_str())) {
            Some(new) => {
                self.log(&format!(
                    "link group {} updated to point to {new}",
                    group.name
                ))?;
                self.info(&format!(
                    "using {new} to provide {} ({}) in {} mode",
                    group.link,
                    group.name,
                    group.mode.word()
                ));
                self.prepare_install(group, &new, &mut ops)?;
            }
            None => {
                if let Some(current) = current.filter(|_| self.is_broken(group)) {
                    self.log(&format!("auto-repair link group {}", group.name))?;
                    self.warn(&format!(
                        "forcing reinstallation of alternative {current} because link group {} \
                         is broken",
                        group.name
                    ));
                    let target = match group.choice(current) {
                        Some(_) => current.to_owned(),
                        None => group.best(None).map(|c| c.path.clone()).unwrap_or_default(),
                    };
                    self.prepare_install(group, &target, &mut ops)?;
                }
            }
        }
        self.save(group)?;
        self.commit(ops)
    }

    fn is_broken(&self, group: &Group) -> bool {
        let wanted = format!("{}/{}", self.alt, group.name);
        if read_link(&group.link).as_deref() != Some(wanted.as_str()) {
            return true;
        }
        let Some(choice) = self
            .current(&group.name)
            .and_then(|c| group.choice(&c).cloned())
        else {
            return false;
        };
        group.slaves.iter().any(|(name, link)| {
            let alt = format!("{}/{name}", self.alt);
            match choice.slaves.get(name).filter(|f| exists(f)) {
                Some(file) => {
                    read_link(link).as_deref() != Some(alt.as_str())
                        || read_link(&alt).as_deref() != Some(file.as_str())
                }
                None => exists(link) || exists(&alt),
            }
        })
    }

    fn prepare_install(&self, group: &Group, choice: &str, ops: &mut Vec<Op>) -> Res<()> {
        let Some(fs_choice) = group.choice(choice) else {
            return err(format!("can't install unknown choice {choice}"));
        };
        self.prepare_single(&group.name, &group.link, choice, ops)?;
        for (name, link) in &group.slaves {
            match fs_choice.slaves.get(name) {
                Some(file) if exists(file) => self.prepare_single(name, link, file, ops)?,
                missing => {
                    if let Some(file) = missing {
                        self.warn(&format!(
                            "skip creation of {link} because associated file {file} (of link \
                             group {}) doesn't exist",
                            group.name
                        ));
                    }
                    if self.force || !exists(link) || is_symlink(link) {
                        ops.push(Op::Rm(link.clone()));
                    } else {
                        self.warn(&format!("not removing {link} since it's not a symlink"));
                    }
                    ops.push(Op::Rm(format!("{}/{name}", self.alt)));
                }
            }
        }
        Ok(())
    }

    /// `/etc/alternatives/<name> -> file` and, unless it is already right or not a
    /// symlink, `link -> /etc/alternatives/<name>`, each made as `.dpkg-tmp` then renamed.
    fn prepare_single(&self, name: &str, link: &str, file: &str, ops: &mut Vec<Op>) -> Res<()> {
        fs::create_dir_all(&self.alt)
            .map_err(|e| io_err("cannot create alternatives directory", &self.alt, &e))?;
        let alt = format!("{}/{name}", self.alt);
        self.stage_link(file, &alt, ops)?;
        let needs = if self.force || !exists(link) {
            true
        } else if is_symlink(link) {
            read_link(link).as_deref() != Some(alt.as_str())
        } else {
            self.warn(&format!("not replacing {link} with a link"));
            false
        };
        if needs {
            self.stage_link(&alt, link, ops)?;
        }
        Ok(())
    }

    fn stage_link(&self, target: &str, path: &str, ops: &mut Vec<Op>) -> Res<()> {
        let tmp = format!("{path}{TMP_EXT}");
        let _ = fs::remove_file(&tmp);
        symlink(target, &tmp).map_err(|e| io_err("error creating symbolic link", &tmp, &e))?;
        ops.push(Op::Mv(tmp, path.to_owned()));
        Ok(())
    }

    fn commit(&self, ops: Vec<Op>) -> Res<()> {
        for op in ops {
            match op {
                Op::Rm(path) => match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(io_err("unable to remove", &path, &e));
                    }
                    _ => {}
                },
                Op::Mv(from, to) => {
                    fs::rename(&from, &to).map_err(|e| io_err("unable to install", &from, &e))?
                }
            }
        }
        Ok(())
    }

    fn remove_files(&self, group: &Group) -> Res<()> {
        let mut ops = Vec::new();
        let names = std::iter::once((&group.name, &group.link))
            .chain(group.slaves.iter().map(|(n, l)| (n, l)));
        for (name, link) in names {
            let alt = format!("{}/{name}", self.alt);
            ops.push(Op::Rm(format!("{link}{TMP_EXT}")));
            if self.force || !exists(link) || is_symlink(link) {
                ops.push(Op::Rm(link.clone()));
            }
            ops.push(Op::Rm(format!("{alt}{TMP_EXT}")));
            ops.push(Op::Rm(alt));
        }
        ops.push(Op::Rm(format!("{}/{}", self.admin, group.name)));
        self.commit(ops)
    }

    fn check_install(&self, inst: &Group) -> Res<()> {
        check_link(&inst.link)?;
        let choice = &inst.choices[0];
        check_path(&choice.path)?;
        for (name, link) in &inst.slaves {
            check_name(name)?;
            check_link(link)?;
            check_path(choice.slaves.get(name).map_or("", String::as_str))?;
        }
        for other in self.all_groups()?.iter().filter(|g| g.name != inst.name) {
            if other.slaves.iter().any(|(n, _)| *n == inst.name) {
                return err(format!(
                    "alternative {} can't be master: it is a slave of {}",
                    inst.name, other.name
                ));
            }
            let links = std::iter::once(&other.link).chain(other.slaves.iter().map(|(_, l)| l));
            for taken in links {
                if *taken == inst.link || inst.slaves.iter().any(|(_, l)| l == taken) {
                    return err(format!(
                        "alternative link {taken} is already managed by {}",
                        other.name
                    ));
                }
            }
        }
        if !exists(&choice.path) {
            return err(format!("alternative path {} doesn't exist", choice.path));
        }
        Ok(())
    }

    /// Every link group, by name.
    fn all_groups(&self) -> Res<Vec<Group>> {
        let mut names: Vec<String> = match fs::read_dir(&self.admin) {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && !n.ends_with(TMP_EXT))
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        let mut groups = Vec::new();
        for name in names {
            groups.extend(self.load(&name)?);
        }
        Ok(groups)
    }

    fn get_selections(&self) -> Res<()> {
        for group in self.all_groups()? {
            let current = self.current(&group.name).unwrap_or_default();
            println!("{:<30} {:<8} {current}", group.name, group.mode.word());
        }
        Ok(())
    }

    fn display(&self, group: &Group) -> Res<()> {
        let current = self.current(&group.name);
        let mut out = format!("{} - {} mode\n", group.name, group.mode.word());
        match group.best(current.as_deref()) {
            Some(best) => {
                let _ = writeln!(out, "  link best version is {}", best.path);
            }
            None => out.push_str("  link best version not available\n"),
        }
        match &current {
            Some(c) => {
                let _ = writeln!(out, "  link currently points to {c}");
            }
            None => out.push_str("  link currently absent\n"),
        }
        let _ = writeln!(out, "  link {} is {}", group.name, group.link);
        for (name, link) in &group.slaves {
            let _ = writeln!(out, "  slave {name} is {link}");
        }
        for choice in &group.choices {
            let _ = writeln!(out, "{} - priority {}", choice.path, choice.priority);
            for (name, _) in &group.slaves {
                if let Some(file) = choice.slaves.get(name) {
                    let _ = writeln!(out, "  slave {name}: {file}");
                }
            }
        }
        print!("{out}");
        Ok(())
    }

    fn query(&self, group: &Group) -> Res<()> {
        let current = self.current(&group.name);
        let mut out = format!("Name: {}\nLink: {}\n", group.name, group.link);
        if !group.slaves.is_empty() {
            out.push_str("Slaves:\n");
            for (name, link) in &group.slaves {
                let _ = writeln!(out, " {name} {link}");
            }
        }
        let _ = writeln!(out, "Status: {}", group.mode.word());
        if let Some(best) = group.best(current.as_deref()) {
            let _ = writeln!(out, "Best: {}", best.path);
        }
        let _ = writeln!(out, "Value: {}", current.as_deref().unwrap_or("none"));
        for choice in &group.choices {
            let _ = write!(
                out,
                "\nAlternative: {}\nPriority: {}\n",
                choice.path, choice.priority
            );
            if group.slaves.is_empty() {
                continue;
            }
            out.push_str("Slaves:\n");
            for (name, _) in &group.slaves {
                if let Some(file) = choice.slaves.get(name) {
                    let _ = writeln!(out, " {name} {file}");
                }
            }
        }
        print!("{out}");
        Ok(())
    }
}

fn check_name(name: &str) -> Res<()> {
    if name.contains(['/', ' ', '\t']) {
        return err(format!(
            "alternative name ({name}) must not contain '/' and spaces"
        ));
    }
    Ok(())
}

fn check_link(link: &str) -> Res<()> {
    if !link.starts_with('/') {
        return err(format!(
            "alternative link is not absolute as it should be: {link}"
        ));
    }
    Ok(())
}

fn check_path(path: &str) -> Res<()> {
    if !path.starts_with('/') {
        return err(format!(
            "alternative path is not absolute as it should be: {path}"
        ));
    }
    Ok(())
}

/// `%Y-%m-%d %H:%M:%S` of now (UTC: a build step's time zone).
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (y, mo, d, h, mi, s) = kiln_tools::util::civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGER: &str = "auto\n/usr/bin/pager\npager.1.gz\n/usr/share/man/man1/pager.1.gz\n\n\
                         /bin/more\n50\n/usr/share/man/man1/more.1.gz\n\n";

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn admin_files_round_trip_and_sort() {
        let mut group = parse_group("pager", PAGER).unwrap();
        assert_eq!(format_group(&mut group), PAGER);
        group.choices.push(Choice {
            path: "/bin/less".into(),
            priority: 77,
            slaves: BTreeMap::new(),
        });
        let text = format_group(&mut group);
        assert!(
            text.ends_with("\n/bin/less\n77\n\n/bin/more\n50\n/usr/share/man/man1/more.1.gz\n\n"),
            "{text}"
        );
        assert_eq!(group.best(Some("/bin/more")).unwrap().path, "/bin/less");
        assert!(parse_group("x", "auto\n/usr/bin/x\n").is_err());
        assert!(parse_group("x", "sometimes\n").is_err());
    }

    #[test]
    fn install_arguments_as_dpkg_checks_them() {
        let cli = parse(&args(&[
            "--quiet",
            "--install",
            "/usr/bin/pager",
            "pager",
            "/usr/bin/less",
            "77",
            "--slave",
            "/usr/share/man/man1/pager.1.gz",
            "pager.1.gz",
            "/usr/share/man/man1/less.1.gz",
        ]))
        .unwrap();
        let inst = cli.install.unwrap();
        assert_eq!(
            inst.slaves,
            [(
                "pager.1.gz".to_owned(),
                "/usr/share/man/man1/pager.1.gz".to_owned()
            )]
        );
        assert_eq!(inst.choices[0].priority, 77);
        let bad = |a: &[&str]| parse(&args(a)).unwrap_err();
        assert_eq!(
            bad(&["--install", "/a", "a", "/b", "x"]),
            Fail::Usage("priority 'x' must be an integer".into())
        );
        assert_eq!(
            bad(&["--slave", "/a", "a", "/b"]),
            Fail::Usage("--slave only allowed with --install".into())
        );
        assert_eq!(bad(&["--quiet"]), Fail::Usage(ACTIONS.into()));
        assert_eq!(
            bad(&["pager"]),
            Fail::Error("unknown argument 'pager'".into())
        );
        assert_eq!(
            bad(&["--install", "/a", "a", "/a", "1"]),
            Fail::Usage("<link> '/a' is the same as <path>".into())
        );
    }
}
