//! `apt-get` and `apt`: update, install, remove, purge, autoremove, clean, printing what
//! apt prints when its output is not a terminal, then driving kiln-deb's dpkg
//! operations with dpkg's own lines. Resolution, ordering and archives are kiln-apt's.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_apt::archives::{self, Wanted, size_to_str};
use kiln_apt::fetch::{KilnHttp, Transport};
use kiln_apt::index::{Candidate, Packages};
use kiln_apt::plan::{self, ExtendedStates, Step};
use kiln_apt::resolve::{
    self, Options, Origin, Pkg, Reason, Resolution, ResolveError, Target, Universe, name_block,
    status_is_present,
};
use kiln_apt::update::Message;
use kiln_deb::archive::DebFile;
use kiln_deb::db::Database;
use kiln_deb::ops::{self, Event, Progress, ScriptRunner};

use crate::triggers::Triggers;

/// apt's exit status for an error (`E:` line).
const FAILED: i32 = 100;

/// Bound on one apt.conf file: real ones are a few hundred bytes; the whole file is
/// read into memory.
const MAX_CONF_BYTES: u64 = 1 << 20;

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let mut io = Io {
        out: &mut io::stdout(),
        err: &mut io::stderr(),
        input: &mut io::stdin().lock(),
    };
    // apt holds the frontend lock while dpkg runs (DPKG_FRONTEND_LOCKED for scripts).
    let mut runner = crate::scripts::Runner::new(true);
    let env = Env {
        root: Path::new("/"),
        net: &mut KilnHttp,
        scripts: &mut runner,
    };
    run(name, &args, env, &mut io)
}

/// Where a run reads and writes.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub input: &'a mut dyn BufRead,
}

/// What a run works on: the image root, the network and the maintainer script runner.
pub struct Env<'a> {
    pub root: &'a Path,
    pub net: &'a mut dyn Transport,
    pub scripts: &'a mut dyn ScriptRunner,
}

/// Runs `apt-get` (or `apt`, by `name`) with `args`, returning the exit status.
pub fn run(name: &str, args: &[String], mut env: Env<'_>, io: &mut Io<'_>) -> i32 {
    let cli = match Cli::parse(name, args, env.root) {
        Ok(cli) => cli,
        Err(msg) => return fail(io, &msg),
    };
    if cli.front == Front::Apt {
        let _ = writeln!(
            io.err,
            "\nWARNING: apt does not have a stable CLI interface. Use with caution in scripts.\n"
        );
    }
    let result = match cli.verb.as_str() {
        "update" => update(&cli, &mut env, io),
        "install" => install(&cli, &mut env, io),
        "remove" | "purge" | "autoremove" => remove(&cli, &mut env, io),
        "clean" => archives::clean(env.root).map_err(|e| e.to_string()),
        "" => Err("Invalid operation ".to_string()),
        other => Err(format!("Invalid operation {other}")),
    };
    match result {
        Ok(()) => 0,
        Err(msg) if msg == ABORT => 1,
        Err(msg) if msg.is_empty() => FAILED,
        Err(msg) => fail(io, &msg),
    }
}

/// The marker for "the user said no" (apt prints `Abort.` and exits 1).
const ABORT: &str = "\u{0}abort";

fn fail(io: &mut Io<'_>, msg: &str) -> i32 {
    let _ = writeln!(io.err, "E: {msg}");
    FAILED
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    AptGet,
    Apt,
}

/// The command line and configuration, as apt reads them.
#[derive(Debug)]
struct Cli {
    front: Front,
    verb: String,
    packages: Vec<String>,
    yes: bool,
    quiet: u8,
    recommends: bool,
    suggests: bool,
    purge: bool,
    /// `--auto-remove`: remove/purge also take what becomes garbage.
    auto_remove: bool,
    allow_remove_essential: bool,
    /// Configured commands by hook name (`DPkg::Post-Invoke`...).
    hooks: BTreeMap<String, Vec<String>>,
}

impl Cli {
    fn parse(name: &str, args: &[String], root: &Path) -> Result<Cli, String> {
        let conf = Config::load(root);
        let mut overrides = Config::default();
        let mut cli = Cli {
            front: if name == "apt" {
                Front::Apt
            } else {
                Front::AptGet
            },
            verb: String::new(),
            packages: Vec::new(),
            yes: false,
            quiet: 0,
            recommends: true,
            suggests: false,
            purge: false,
            auto_remove: false,
            allow_remove_essential: false,
            hooks: BTreeMap::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "-o" || arg == "--option" {
                let kv = it.next().ok_or("Option -o requires an argument.")?;
                overrides.set_pair(kv)?;
            } else if let Some(kv) = arg.strip_prefix("-o").filter(|s| !s.is_empty()) {
                overrides.set_pair(kv)?;
            } else if let Some(kv) = arg.strip_prefix("--option=") {
                overrides.set_pair(kv)?;
            } else if arg.starts_with('-') && arg.len() > 1 {
                cli.flag(arg, &mut overrides)?;
            } else if cli.verb.is_empty() {
                cli.verb = arg.clone();
            } else {
                cli.packages.push(arg.clone());
            }
        }
        cli.apply(&conf.merged(overrides));
        Ok(cli)
    }

    fn flag(&mut self, arg: &str, conf: &mut Config) -> Result<(), String> {
        let set = |conf: &mut Config, key: &str, v: &str| conf.set(key, v);
        match arg {
            "-y" | "--yes" | "--assume-yes" => set(conf, "APT::Get::Assume-Yes", "true"),
            "-q" | "--quiet" => self.quiet += 1,
            "--no-install-recommends" => set(conf, "APT::Install-Recommends", "false"),
            "--install-recommends" => set(conf, "APT::Install-Recommends", "true"),
            "--no-install-suggests" => set(conf, "APT::Install-Suggests", "false"),
            "--install-suggests" => set(conf, "APT::Install-Suggests", "true"),
            "--purge" => self.purge = true,
            "--auto-remove" | "--autoremove" => set(conf, "APT::Get::AutomaticRemove", "true"),
            // Every list kiln stores passed signature verification (update fails
            // otherwise), so every package is authenticated and, as in apt, the flag
            // changes nothing.
            "--allow-unauthenticated" => {}
            "--allow-remove-essential" => set(conf, "APT::Get::allow-remove-essential", "true"),
            // Short options run together, as Dockerfiles write them (`-qy`, `-yqq`).
            _ if !arg.starts_with("--") && arg[1..].chars().all(|c| "qy".contains(c)) => {
                for c in arg[1..].chars() {
                    self.flag(&format!("-{c}"), conf)?;
                }
            }
            _ if arg.starts_with("-q=") => {
                self.quiet = arg[3..].parse().map_err(|_| not_understood(arg))?;
            }
            _ => return Err(not_understood(arg)),
        }
        Ok(())
    }

    fn apply(&mut self, conf: &Config) {
        self.yes = conf.bool("APT::Get::Assume-Yes").unwrap_or(false);
        self.recommends = conf.bool("APT::Install-Recommends").unwrap_or(true);
        self.suggests = conf.bool("APT::Install-Suggests").unwrap_or(false);
        self.allow_remove_essential = conf
            .bool("APT::Get::allow-remove-essential")
            .unwrap_or(false);
        if let Some(q) = conf.get("quiet").and_then(|q| q.parse::<u8>().ok()) {
            self.quiet = self.quiet.max(q);
        }
        self.auto_remove = conf.bool("APT::Get::AutomaticRemove").unwrap_or(false);
        if self.verb == "purge" {
            self.purge = true;
        }
        self.hooks = conf.lists.clone();
    }

    /// apt's `c1out`: suppressed from `-qq` on.
    fn talk(&self) -> bool {
        self.quiet < 2
    }
}

fn not_understood(arg: &str) -> String {
    format!("Command line option '{arg}' is not understood in combination with the other options")
}

/// apt's configuration tree, flattened to `Scope::Key` names (compared without case).
#[derive(Debug, Default)]
struct Config {
    values: BTreeMap<String, String>,
    /// Unnamed values (`Hook { "cmd"; };`) by their scope, lowercased.
    lists: BTreeMap<String, Vec<String>>,
}

impl Config {
    /// `/etc/apt/apt.conf.d/*` in name order, then `/etc/apt/apt.conf`, as apt reads them.
    fn load(root: &Path) -> Config {
        let mut conf = Config::default();
        let dir = root.join("etc/apt/apt.conf.d");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| conf_file_name_ok(p))
            .collect();
        files.sort();
        files.push(root.join("etc/apt/apt.conf"));
        for file in files {
            if let Some(text) = read_small(&file) {
                conf.parse(&text);
            }
        }
        conf
    }

    fn set(&mut self, key: &str, value: &str) {
        self.values
            .insert(key.to_ascii_lowercase(), value.to_string());
    }

    fn set_pair(&mut self, kv: &str) -> Result<(), String> {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            format!("Option {kv}: Configuration item specification must have an =<val>.")
        })?;
        self.set(k, v);
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// apt's `FindB`.
    fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)?.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "with" | "on" | "enable" => Some(true),
            "0" | "no" | "false" | "without" | "off" | "disable" => Some(false),
            _ => None,
        }
    }

    fn merged(mut self, later: Config) -> Config {
        self.values.extend(later.values);
        for (k, v) in later.lists {
            self.lists.entry(k).or_default().extend(v);
        }
        self
    }

    /// apt.conf syntax: `A::B "v";`, scopes `A { B "v"; };`, `//`, `#` and `/* */`
    /// comments. `#include` and `#clear` are not followed (kiln reads no other files).
    fn parse(&mut self, text: &str) {
        let mut scopes: Vec<String> = Vec::new();
        let mut key = String::new();
        for tok in tokenize(text) {
            match tok {
                Token::Word(w) if key.is_empty() => key = w,
                Token::Str(w) if key.is_empty() => {
                    let scope = scopes.join("::").to_ascii_lowercase();
                    self.lists.entry(scope).or_default().push(w);
                }
                Token::Word(w) | Token::Str(w) => {
                    let full = scoped(&scopes, &key);
                    self.set(&full, &w);
                    key.clear();
                }
                Token::Open => scopes.push(std::mem::take(&mut key)),
                Token::Close => {
                    scopes.pop();
                }
                Token::Semi => key.clear(),
            }
        }
    }
}

fn scoped(scopes: &[String], key: &str) -> String {
    let mut parts: Vec<&str> = scopes.iter().map(String::as_str).collect();
    parts.push(key);
    parts.join("::")
}

/// apt's rule for apt.conf.d names: letters, digits, `_`, `-`, `.`, and no other
/// extension than `.conf` when there is one.
fn conf_file_name_ok(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    chars_ok && (!name.contains('.') || name.ends_with(".conf"))
}

fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MAX_CONF_BYTES).read_to_string(&mut text).ok()?;
    Some(text)
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Semi,
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push(Token::Str(
                chars.by_ref().take_while(|&c| c != '"').collect(),
            )),
            '{' => out.push(Token::Open),
            '}' => out.push(Token::Close),
            ';' => out.push(Token::Semi),
            '#' => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            c if c.is_whitespace() => {}
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "\"{};".contains(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    out
}

fn skip_line(chars: &mut impl Iterator<Item = char>) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

type Outcome = Result<(), String>;

/// Runs the commands configured for `hook` with `sh -c`, as apt does around dpkg and
/// after update (Docker Hub's Debian images delete the downloaded archives this way).
fn run_hooks(cli: &Cli, hook: &str) -> Outcome {
    let Some(commands) = cli.hooks.get(&hook.to_ascii_lowercase()) else {
        return Ok(());
    };
    for command in commands {
        let argv = vec!["/bin/sh".to_string(), "-c".to_string(), command.clone()];
        let status = kiln_abi::run(&kiln_abi::Command::new(argv));
        if !matches!(status, Ok(0)) {
            return Err(format!(
                "Problem executing scripts {hook} '{command}'\nE: Sub-process returned an error code"
            ));
        }
    }
    Ok(())
}

fn update(cli: &Cli, env: &mut Env<'_>, io: &mut Io<'_>) -> Outcome {
    let arch = native_arch(env.root)?;
    let opts = kiln_apt::update::Options {
        arch,
        quiet: cli.quiet,
    };
    let report =
        kiln_apt::update::run(env.root, &opts, env.net, io.out).map_err(|e| e.to_string())?;
    let mut failed = false;
    for message in &report.messages {
        let _ = match message {
            Message::Warning(w) => writeln!(io.err, "W: {w}"),
            Message::Error(e) => {
                failed = true;
                writeln!(io.err, "E: {e}")
            }
        };
    }
    run_hooks(cli, "APT::Update::Post-Invoke")?;
    // apt exits 100 after an update with errors; they are already printed.
    if failed { Err(String::new()) } else { Ok(()) }
}

/// The native architecture: the `Architecture` of the installed `dpkg` package, what
/// `dpkg --print-architecture` prints, never the host's.
fn native_arch(root: &Path) -> Result<String, String> {
    let db = Database::load(root).map_err(|e| e.to_string())?;
    db.entries()
        .iter()
        .find(|p| {
            p.get("Package") == Some("dpkg") && p.get("Status").is_some_and(status_is_present)
        })
        .and_then(|p| p.get("Architecture"))
        .map(|a| a.trim().to_string())
        .ok_or_else(|| {
            "Unable to determine the native architecture: dpkg is not installed in the image"
                .to_string()
        })
}

/// The loaded world: the universe and the index entries its versions came from.
struct World {
    universe: Universe,
    index: Vec<Candidate>,
    states: ExtendedStates,
}

fn load_world(cli: &Cli, env: &Env<'_>, io: &mut Io<'_>) -> Result<World, String> {
    if cli.talk() {
        let _ = writeln!(io.out, "Reading package lists...");
    }
    let arch = native_arch(env.root)?;
    let packages = Packages::load(env.root, &arch).map_err(|e| e.to_string())?;
    let index: Vec<Candidate> = packages
        .iter()
        .flat_map(|(_, versions)| versions.iter().cloned())
        .collect();
    let available = index
        .iter()
        .enumerate()
        .map(|(i, c)| Pkg::parse(|f| c.field(f), Origin::Index(i)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if cli.talk() {
        let _ = writeln!(io.out, "Building dependency tree...");
    }
    let db = Database::load(env.root).map_err(|e| e.to_string())?;
    let installed = db
        .entries()
        .iter()
        .filter(|p| p.get("Status").is_some_and(status_is_present))
        .map(|p| Pkg::parse(|f| p.get(f), Origin::Installed))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if cli.talk() {
        let _ = writeln!(io.out, "Reading state information...");
    }
    let states = ExtendedStates::load(env.root).map_err(|e| e.to_string())?;
    Ok(World {
        universe: Universe::new(&arch, available, installed),
        index,
        states,
    })
}

/// Prints a resolution error as apt does (its notice on stdout, then `E:`).
fn resolve_failed(io: &mut Io<'_>, e: ResolveError) -> String {
    let _ = write!(io.out, "{}", e.notice());
    e.to_string()
}

fn install(cli: &Cli, env: &mut Env<'_>, io: &mut Io<'_>) -> Outcome {
    let world = load_world(cli, env, io)?;
    let u = &world.universe;
    let targets = cli
        .packages
        .iter()
        .map(|a| target(&world, a, io))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = Options {
        recommends: cli.recommends,
        suggests: cli.suggests,
    };
    let r = resolve::install(u, &targets, opts).map_err(|e| resolve_failed(io, e))?;
    let mut auto = world.states.auto();
    for note in &r.notes {
        let _ = writeln!(io.out, "{note}");
    }
    for (name, version) in &r.unchanged {
        let _ = writeln!(io.out, "{name} is already the newest version ({version}).");
        if auto.remove(name) {
            let _ = writeln!(io.out, "{name} set to manually installed.");
        }
    }
    show_install(cli, u, &r, io);
    // apt asks only when the plan goes beyond what was named (dependencies, and the
    // upgrades they need, are all automatic here).
    let extra = r.install.values().any(|(_, why)| *why == Reason::Auto);
    if r.install.is_empty() {
        return write_states(env.root, &world, &auto, &BTreeSet::new());
    }
    let wanted = wanted(&world, &r);
    let archives: Vec<Wanted> = wanted.iter().map(|(_, w)| w.clone()).collect();
    let installed_delta: i64 = r
        .install
        .values()
        .map(|(p, _)| size_delta(p, u.installed(&p.name)))
        .sum();
    need_to_get(cli, env.root, &archives, installed_delta, io);
    confirm(cli, extra, io)?;
    download(cli, env, &archives, io)?;
    for (name, (_, why)) in &r.install {
        match why {
            Reason::Auto if u.installed(name).is_none() => {
                auto.insert(name.clone());
            }
            Reason::Manual => {
                auto.remove(name);
            }
            Reason::Auto => {}
        }
    }
    let steps = plan::install_order(&r).map_err(|e| e.to_string())?;
    let paths: BTreeMap<&str, PathBuf> = wanted
        .iter()
        .map(|(n, w)| (n.as_str(), archives::dir(env.root).join(&w.file_name)))
        .collect();
    let done = dpkg(cli, env, &steps, &paths, io);
    write_states(env.root, &world, &auto, &BTreeSet::new())?;
    done
}

/// An `install` argument: `pkg`, `pkg=version`, or `pkg/suite` (the highest version
/// that suite's lists offer, which apt then announces).
fn target(world: &World, arg: &str, io: &mut Io<'_>) -> Result<Target, String> {
    let Some((name, suite)) = arg.split_once('/') else {
        return Ok(Target::parse(arg));
    };
    let best = world
        .index
        .iter()
        .filter(|c| c.package == name && c.suite == suite)
        .max_by(|a, b| a.version.cmp(&b.version));
    match best {
        Some(c) => {
            let (version, arch) = (c.version.to_string(), &c.architecture);
            let _ = writeln!(
                io.out,
                "Selected version '{version}' ({suite} [{arch}]) for '{name}'"
            );
            Ok(Target::Version(name.to_string(), version))
        }
        None if !world.universe.knows(name) => Err(format!("Unable to locate package {name}")),
        None => Err(format!("Release '{suite}' for '{name}' was not found")),
    }
}

/// What apt lists before it asks.
fn show_install(cli: &Cli, u: &Universe, r: &Resolution, io: &mut Io<'_>) {
    if !cli.talk() {
        return;
    }
    let (upgraded, new): (Vec<String>, Vec<String>) = r
        .install
        .keys()
        .cloned()
        .partition(|n| u.installed(n).is_some());
    let additional: Vec<String> = r
        .install
        .iter()
        .filter(|(_, (_, why))| *why == Reason::Auto)
        .map(|(n, _)| n.clone())
        .collect();
    let not_installed = |set: &BTreeSet<String>| -> Vec<String> {
        set.iter()
            .filter(|n| u.installed(n).is_none() && !r.install.contains_key(*n))
            .cloned()
            .collect()
    };
    section(
        io,
        "The following additional packages will be installed:",
        &additional,
    );
    section(io, "Suggested packages:", &not_installed(&r.suggested));
    section(io, "Recommended packages:", &not_installed(&r.recommended));
    section(io, "The following NEW packages will be installed:", &new);
    section(io, "The following packages will be upgraded:", &upgraded);
    summary(io, upgraded.len(), new.len(), 0);
}

fn section(io: &mut Io<'_>, title: &str, names: &[String]) {
    if !names.is_empty() {
        let _ = write!(io.out, "{title}\n{}", name_block(names));
    }
}

/// `N upgraded, N newly installed, N to remove and N not upgraded.`
fn summary(io: &mut Io<'_>, upgraded: usize, new: usize, remove: usize) {
    let _ = writeln!(
        io.out,
        "{upgraded} upgraded, {new} newly installed, {remove} to remove and 0 not upgraded."
    );
}

/// The archive of each planned version, by package name.
fn wanted(world: &World, r: &Resolution) -> Vec<(String, Wanted)> {
    r.install
        .values()
        .filter_map(|(p, _)| match p.origin {
            Origin::Index(i) => world.index.get(i).map(|c| (p, c)),
            Origin::Installed => None,
        })
        .map(|(p, c)| {
            let version = c.version.to_string();
            let w = Wanted {
                url: c.url(),
                file_name: archives::file_name(&p.name, &version, &c.architecture),
                size: c.size,
                sha256: c.sha256.clone(),
                description: get_description(c, &version),
            };
            (p.name.clone(), w)
        })
        .collect()
}

/// What apt prints after `Get:N`: `<uri> <suite>/<component> <arch> <name> <arch>
/// <version>`. The component is the pool directory's (`pool/main/...`), where
/// Debian-style archives put every package.
fn get_description(c: &Candidate, version: &str) -> String {
    let component = c
        .filename
        .strip_prefix("pool/")
        .and_then(|rest| rest.split('/').next())
        .map(|comp| format!("/{comp}"))
        .unwrap_or_default();
    format!(
        "{} {}{component} {arch} {} {arch} {version}",
        c.base_uri.trim_end_matches('/'),
        c.suite,
        c.package,
        arch = c.architecture,
    )
}

/// Bytes of disk `new` adds over `old` (Installed-Size is in KiB).
fn size_delta(new: &Pkg, old: Option<&Pkg>) -> i64 {
    let kib = |p: &Pkg| i64::try_from(p.installed_size).unwrap_or(i64::MAX / 4096);
    (kib(new) - old.map_or(0, kib)) * 1024
}

fn need_to_get(cli: &Cli, root: &Path, wanted: &[Wanted], delta: i64, io: &mut Io<'_>) {
    if !cli.talk() {
        return;
    }
    let total: u64 = wanted.iter().map(|w| w.size).sum();
    let fetch: u64 = wanted
        .iter()
        .filter(|w| !archives::cached(root, w))
        .map(|w| w.size)
        .sum();
    if fetch != total {
        let _ = writeln!(
            io.out,
            "Need to get {}B/{}B of archives.",
            size_to_str(fetch),
            size_to_str(total)
        );
    } else if total != 0 {
        let _ = writeln!(io.out, "Need to get {}B of archives.", size_to_str(total));
    }
    disk_line(io, delta);
}

fn disk_line(io: &mut Io<'_>, delta: i64) {
    let size = size_to_str(delta.unsigned_abs());
    let _ = if delta >= 0 {
        writeln!(
            io.out,
            "After this operation, {size}B of additional disk space will be used."
        )
    } else {
        writeln!(
            io.out,
            "After this operation, {size}B disk space will be freed."
        )
    };
}

/// apt's question when the plan goes beyond what was asked; without `-y` an answer is
/// read from standard input (end of input: `Abort.`, as apt with no terminal).
fn confirm(cli: &Cli, ask: bool, io: &mut Io<'_>) -> Outcome {
    if !ask || cli.yes {
        return Ok(());
    }
    let _ = write!(io.out, "Do you want to continue? [Y/n] ");
    let _ = io.out.flush();
    let mut answer = String::new();
    let read = io.input.read_line(&mut answer).unwrap_or(0);
    let answer = answer.trim();
    if read > 0 && (answer.is_empty() || answer.starts_with(['y', 'Y'])) {
        return Ok(());
    }
    let _ = writeln!(io.out, "Abort.");
    Err(ABORT.to_string())
}

fn download(cli: &Cli, env: &mut Env<'_>, wanted: &[Wanted], io: &mut Io<'_>) -> Outcome {
    let start = Instant::now();
    let fetched = archives::fetch_all(env.root, wanted, env.net, !cli.talk(), io.out)
        .map_err(|e| e.to_string())?;
    if fetched > 0 && cli.talk() {
        let secs = start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            (fetched as f64 / secs) as u64
        } else {
            fetched
        };
        let _ = writeln!(
            io.out,
            "Fetched {}B in {}s ({}B/s)",
            size_to_str(fetched),
            secs as u64,
            size_to_str(rate)
        );
    }
    Ok(())
}

/// Runs the steps through kiln-deb's dpkg operations, printing dpkg's lines.
fn dpkg(
    cli: &Cli,
    env: &mut Env<'_>,
    steps: &[Step],
    paths: &BTreeMap<&str, PathBuf>,
    io: &mut Io<'_>,
) -> Outcome {
    let mut db = Database::load(env.root).map_err(|e| e.to_string())?;
    let unpacks = steps
        .iter()
        .filter(|s| matches!(s, Step::Unpack(_)))
        .count();
    let admindir = env.root.join(kiln_deb::db::ADMIN_DIR);
    let mut lines = DpkgLines {
        out: &mut *io.out,
        admindir: admindir.to_string_lossy().into_owned(),
        numbered: unpacks > 1,
        archive_no: 0,
        database_read: false,
    };
    let mut triggers = Triggers::new();
    for step in steps {
        let done = match step {
            Step::Unpack(name) => {
                let path = paths
                    .get(name.as_str())
                    .ok_or_else(|| format!("no archive for {name}"))?;
                let deb = DebFile::open(path).map_err(|e| e.to_string())?;
                ops::unpack(&mut db, &deb, env.scripts, &mut lines)
                    .map_err(|e| e.to_string())
                    .and_then(|()| triggers.unpacked(&db, name))
            }
            Step::Configure(name) => {
                ops::configure(&mut db, name, env.scripts, &mut lines).map_err(|e| e.to_string())
            }
            Step::Remove(name) => {
                ops::remove(&mut db, name, env.scripts, &mut lines).map_err(|e| e.to_string())
            }
            Step::Purge(name) => {
                ops::purge(&mut db, name, env.scripts, &mut lines).map_err(|e| e.to_string())
            }
        };
        if let Err(e) = done {
            let _ = writeln!(
                io.err,
                "dpkg: error processing package {}: {e}",
                step_name(step)
            );
            return Err(DPKG_FAILED.to_string());
        }
    }
    triggers.pending_from_status(&db);
    let failed = triggers.process(&mut db, env.scripts)?;
    if !failed.is_empty() {
        return Err(DPKG_FAILED.to_string());
    }
    run_hooks(cli, "DPkg::Post-Invoke")
}

/// apt's error when dpkg failed (dpkg's own line was printed before it).
const DPKG_FAILED: &str = "Sub-process /usr/bin/dpkg returned an error code (1)";

fn step_name(step: &Step) -> &str {
    match step {
        Step::Unpack(n) | Step::Configure(n) | Step::Remove(n) | Step::Purge(n) => n,
    }
}

/// dpkg's progress lines for the operations apt hands it.
struct DpkgLines<'a> {
    out: &'a mut dyn Write,
    admindir: String,
    /// apt passes several archives through numbered links (`.../00-name.deb`).
    numbered: bool,
    archive_no: usize,
    database_read: bool,
}

impl DpkgLines<'_> {
    /// `(Reading database ... N files and directories currently installed.)`, once.
    fn reading_database(&mut self) {
        if std::mem::replace(&mut self.database_read, true) {
            return;
        }
        if let Some(line) = crate::progress::reading_database(&self.admindir) {
            let _ = writeln!(self.out, "{line}");
        }
    }
}

impl Progress for DpkgLines<'_> {
    fn event(&mut self, event: Event<'_>) {
        let shown: PathBuf;
        let event = match event {
            Event::Preparing { archive } => {
                self.reading_database();
                shown = self.summarize(archive);
                Event::Preparing { archive: &shown }
            }
            Event::Removing { .. } => {
                self.reading_database();
                event
            }
            other => other,
        };
        let _ = writeln!(self.out, "{}", crate::progress::line(&event));
    }
}

impl DpkgLines<'_> {
    /// dpkg shows an archive as `.../name`; apt's numbered links make it `.../00-name`.
    fn summarize(&mut self, archive: &Path) -> PathBuf {
        let base = archive.file_name().unwrap_or_default().to_string_lossy();
        let shown = if self.numbered {
            format!(".../{:02}-{base}", self.archive_no)
        } else {
            format!(".../{base}")
        };
        self.archive_no += 1;
        PathBuf::from(shown)
    }
}

/// Writes extended_states for the state after the run.
fn write_states(
    root: &Path,
    world: &World,
    auto: &BTreeSet<String>,
    gone: &BTreeSet<String>,
) -> Outcome {
    let db = Database::load(root).map_err(|e| e.to_string())?;
    let arch = world.universe.arch();
    let installed: BTreeMap<String, String> = db
        .entries()
        .iter()
        .filter(|p| p.get("Status").is_some_and(status_is_present))
        .filter_map(|p| {
            let name = p.get("Package")?.trim().to_string();
            let a = p.get("Architecture").map_or(arch, str::trim);
            let a = if a == "all" { arch } else { a };
            (!gone.contains(&name)).then(|| (name, a.to_string()))
        })
        .collect();
    let text = world.states.render(auto, &installed);
    ExtendedStates::write(root, &text).map_err(|e| e.to_string())
}

fn remove(cli: &Cli, env: &mut Env<'_>, io: &mut Io<'_>) -> Outcome {
    let world = load_world(cli, env, io)?;
    let u = &world.universe;
    let auto = world.states.auto();
    let names: Vec<String> = if cli.verb == "autoremove" {
        resolve::garbage(u, &auto, &BTreeSet::new())
            .into_iter()
            .collect()
    } else {
        cli.packages.clone()
    };
    let (mut r, absent) = resolve::remove(u, &names, cli.allow_remove_essential)
        .map_err(|e| resolve_failed(io, e))?;
    if cli.auto_remove {
        let garbage = resolve::garbage(u, &auto, &r.remove);
        r.remove.extend(garbage);
    }
    for name in absent {
        let _ = writeln!(io.out, "Package '{name}' is not installed, so not removed");
    }
    if cli.verb != "autoremove" {
        no_longer_required(cli, u, &auto, &r.remove, io);
    }
    let shown: Vec<String> = r
        .remove
        .iter()
        .map(|n| {
            if cli.purge {
                format!("{n}*")
            } else {
                n.clone()
            }
        })
        .collect();
    if cli.talk() {
        section(io, "The following packages will be REMOVED:", &shown);
        summary(io, 0, 0, shown.len());
    }
    if r.remove.is_empty() {
        return Ok(());
    }
    let freed: i64 = r
        .remove
        .iter()
        .filter_map(|n| u.installed(n))
        .map(|p| -size_delta(p, None))
        .sum();
    if cli.talk() {
        disk_line(io, freed);
    }
    confirm(cli, true, io)?;
    let steps = plan::remove_order(u, &r, cli.purge).map_err(|e| e.to_string())?;
    let done = dpkg(cli, env, &steps, &BTreeMap::new(), io);
    write_states(env.root, &world, &auto, &r.remove)?;
    done
}

/// apt's note about automatic packages nothing needs once `gone` are removed.
fn no_longer_required(
    cli: &Cli,
    u: &Universe,
    auto: &BTreeSet<String>,
    gone: &BTreeSet<String>,
    io: &mut Io<'_>,
) {
    let garbage: Vec<String> = resolve::garbage(u, auto, gone).into_iter().collect();
    if garbage.is_empty() || !cli.talk() {
        return;
    }
    let (it, is, them) = if garbage.len() == 1 {
        ("package was", "is", "it")
    } else {
        ("packages were", "are", "them")
    };
    let tool = if cli.front == Front::Apt {
        "apt"
    } else {
        "apt-get"
    };
    let _ = write!(
        io.out,
        "The following {it} automatically installed and {is} no longer required:\n{}Use '{tool} autoremove' to remove {them}.\n",
        name_block(&garbage)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_apt::fetch::Response;
    use kiln_deb::ops::MaintScript;
    use std::fs;

    struct NoNet;

    impl Transport for NoNet {
        fn get(&mut self, url: &str) -> kiln_apt::Result<Response> {
            panic!("no download expected, got {url}")
        }
    }

    struct NoScripts;

    impl ScriptRunner for NoScripts {
        fn run(&mut self, script: &MaintScript<'_>) -> kiln_deb::Result<i32> {
            panic!("no script expected, got {}", script.path)
        }
    }

    const PACKAGES: &str = "\
Package: app
Version: 1.0-1
Architecture: amd64
Installed-Size: 100
Depends: libapp (>= 1)
Recommends: app-data
Filename: pool/main/a/app/app_1.0-1_amd64.deb
Size: 12345
SHA256: 0000000000000000000000000000000000000000000000000000000000000000

Package: libapp
Version: 1:2.0
Architecture: amd64
Installed-Size: 50
Filename: pool/main/liba/libapp_2.0_amd64.deb
Size: 2000
SHA256: 0000000000000000000000000000000000000000000000000000000000000000

Package: app-data
Version: 1.0-1
Architecture: all
Installed-Size: 2000
Filename: pool/main/a/app/app-data_1.0-1_all.deb
Size: 100000
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
";

    const STATUS: &str = "\
Package: dpkg
Status: install ok installed
Priority: required
Architecture: amd64
Version: 1.21.22
";

    /// An image root with one source, its stored list and a dpkg database.
    fn image(conf: &str) -> PathBuf {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let root = std::env::temp_dir().join(format!("kiln-apt-get-{}-{n}", std::process::id()));
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(
            "etc/apt/sources.list",
            "deb http://m.test/debian bookworm main\n",
        );
        let url = "http://m.test/debian/dists/bookworm/main/binary-amd64/Packages";
        let list = format!("var/lib/apt/lists/{}", kiln_apt::lists::file_name(url));
        write(&list, PACKAGES);
        write("var/lib/dpkg/status", STATUS);
        write("etc/apt/apt.conf.d/99kiln", conf);
        root
    }

    fn apt_get(root: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut input = stdin.as_bytes();
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            input: &mut input,
        };
        let env = Env {
            root,
            net: &mut NoNet,
            scripts: &mut NoScripts,
        };
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let status = run("apt-get", &args, env, &mut io);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (status, text(out), text(err))
    }

    #[test]
    fn install_shows_the_plan_and_aborts_without_an_answer() {
        let root = image("");
        let (status, out, err) = apt_get(&root, &["install", "app"], "");
        assert_eq!((status, err.as_str()), (1, ""));
        assert_eq!(
            out,
            "Reading package lists...\n\
             Building dependency tree...\n\
             Reading state information...\n\
             The following additional packages will be installed:\n  app-data libapp\n\
             The following NEW packages will be installed:\n  app app-data libapp\n\
             0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.\n\
             Need to get 114 kB of archives.\n\
             After this operation, 2202 kB of additional disk space will be used.\n\
             Do you want to continue? [Y/n] Abort.\n"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn recommends_are_off_by_flag_by_apt_conf_and_by_option() {
        let conf = "APT { Install-Recommends \"false\"; }; // comment\n";
        for (conf, args) in [
            ("", &["install", "--no-install-recommends", "app"][..]),
            (conf, &["install", "app"][..]),
            (
                "",
                &["-o", "APT::Install-Recommends=0", "install", "app"][..],
            ),
        ] {
            let root = image(conf);
            let (status, out, _) = apt_get(&root, args, "n\n");
            assert_eq!(status, 1);
            assert!(out.contains("Recommended packages:\n  app-data\n"), "{out}");
            assert!(
                out.contains("NEW packages will be installed:\n  app libapp\n"),
                "{out}"
            );
            fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn errors_are_apts() {
        let root = image("");
        let (status, _, err) = apt_get(&root, &["install", "-y", "nope"], "");
        assert_eq!(
            (status, err.as_str()),
            (100, "E: Unable to locate package nope\n")
        );
        let (status, out, err) = apt_get(&root, &["-qy", "install", "nope"], "");
        assert_eq!(
            (status, out.as_str()),
            (
                100,
                "Reading package lists...\nBuilding dependency tree...\nReading state information...\n"
            )
        );
        assert_eq!(err, "E: Unable to locate package nope\n");
        let (status, _, err) = apt_get(&root, &["install", "--bogus"], "");
        assert_eq!(status, 100);
        assert!(err.starts_with("E: Command line option '--bogus' is not understood"));
        let (status, out, _) = apt_get(&root, &["-qq", "remove", "app"], "");
        assert_eq!(
            (status, out.as_str()),
            (0, "Package 'app' is not installed, so not removed\n")
        );
        let (status, out, _) = apt_get(&root, &["install", "app/bookworm"], "n\n");
        assert_eq!(status, 1, "{out}");
        assert!(out.contains("Selected version '1.0-1' (bookworm [amd64]) for 'app'\n"));
        let (status, _, err) = apt_get(&root, &["install", "app/sid"], "");
        assert_eq!(
            (status, err.as_str()),
            (100, "E: Release 'sid' for 'app' was not found\n")
        );
        let (status, _, err) = apt_get(&root, &["frobnicate"], "");
        assert_eq!(
            (status, err.as_str()),
            (100, "E: Invalid operation frobnicate\n")
        );
        fs::remove_dir_all(&root).unwrap();
    }

    /// Serves E's mirror (tests/packages/make-debian-mirror) from its directory.
    struct MirrorFiles(PathBuf);

    impl Transport for MirrorFiles {
        fn get(&mut self, url: &str) -> kiln_apt::Result<Response> {
            let rel = url.strip_prefix("http://m.test/debian/").unwrap_or(url);
            let body = fs::read(self.0.join(rel)).unwrap_or_default();
            Ok(Response {
                status: if body.is_empty() { 404 } else { 200 },
                content_length: Some(body.len() as u64),
                body: Box::new(io::Cursor::new(body)),
            })
        }
    }

    /// Records the maintainer scripts run; they all succeed.
    #[derive(Default)]
    struct Scripts(Vec<String>);

    impl ScriptRunner for Scripts {
        fn run(&mut self, script: &MaintScript<'_>) -> kiln_deb::Result<i32> {
            self.0.push(format!("{} {}", script.name, script.package));
            Ok(0)
        }
    }

    #[test]
    fn installs_and_removes_jq_from_the_real_mirror() {
        let mirror = PathBuf::from("/var/tmp/kiln-test/debian-mirror");
        let base = "/var/tmp/kiln-test/debian-bookworm.tar";
        if !mirror.join(".complete").exists() || !Path::new(base).exists() {
            assert!(
                std::env::var_os("KILN_REQUIRE_DEBIAN").is_none(),
                "no Debian test data"
            );
            eprintln!("skipped: no Debian mirror or base under /var/tmp/kiln-test");
            return;
        }
        let root = image("");
        fs::remove_dir_all(root.join("var/lib/dpkg")).unwrap();
        let tar = std::process::Command::new("tar")
            .args(["-xf", base, "-C"])
            .arg(&root)
            .arg("./var/lib/dpkg")
            .status()
            .unwrap();
        assert!(tar.success());
        let url = "http://m.test/debian/dists/bookworm/main/binary-amd64/Packages";
        let list = root
            .join("var/lib/apt/lists")
            .join(kiln_apt::lists::file_name(url));
        fs::copy(
            mirror.join("dists/bookworm/main/binary-amd64/Packages"),
            list,
        )
        .unwrap();
        let run_it = |args: &[&str], scripts: &mut Scripts| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let mut input: &[u8] = b"";
            let mut io = Io {
                out: &mut out,
                err: &mut err,
                input: &mut input,
            };
            let env = Env {
                root: &root,
                net: &mut MirrorFiles(mirror.clone()),
                scripts,
            };
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let status = run("apt-get", &args, env, &mut io);
            (
                status,
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            )
        };
        let mut scripts = Scripts::default();
        let (status, out, err) = run_it(&["install", "-y", "jq"], &mut scripts);
        assert_eq!(status, 0, "{out}{err}");
        assert!(
            out.contains("The following NEW packages will be installed:\n  jq libjq1 libonig5\n"),
            "{out}"
        );
        assert!(
            out.contains("Get:1 http://m.test/debian bookworm/main amd64 "),
            "{out}"
        );
        assert!(out.contains("(Reading database ... "), "{out}");
        assert!(out.contains("Preparing to unpack .../0"), "{out}");
        assert!(out.contains("Setting up jq ("), "{out}");
        assert!(root.join("usr/bin/jq").is_file());
        let status_file = fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
        assert!(status_file.contains("Package: jq\nStatus: install ok installed\n"));
        assert_eq!(
            fs::read_to_string(root.join("var/lib/apt/extended_states")).unwrap(),
            "Package: libjq1\nArchitecture: amd64\nAuto-Installed: 1\n\n\
             Package: libonig5\nArchitecture: amd64\nAuto-Installed: 1\n\n"
        );
        // remove, then autoremove takes the automatic libraries.
        let (status, out, _) = run_it(&["remove", "-y", "jq"], &mut scripts);
        assert_eq!(status, 0, "{out}");
        assert!(
            out.contains("no longer required:\n  libjq1 libonig5\nUse 'apt-get autoremove'"),
            "{out}"
        );
        assert!(out.contains("Removing jq ("), "{out}");
        assert!(!root.join("usr/bin/jq").exists());
        let (status, out, _) = run_it(&["autoremove", "-y", "--purge"], &mut scripts);
        assert_eq!(status, 0, "{out}");
        assert!(out.contains("REMOVED:\n  libjq1* libonig5*\n"), "{out}");
        assert_eq!(
            fs::read_to_string(root.join("var/lib/apt/extended_states")).unwrap(),
            ""
        );
        // purge --auto-remove takes jq and its libraries in one run.
        let (status, out, _) = run_it(&["install", "-y", "jq"], &mut scripts);
        assert_eq!(status, 0, "{out}");
        let (status, out, _) = run_it(&["purge", "-y", "--auto-remove", "jq"], &mut scripts);
        assert_eq!(status, 0, "{out}");
        assert!(out.contains("REMOVED:\n  jq* libjq1* libonig5*\n"), "{out}");
        assert!(!root.join("usr/bin/jq").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn apt_conf_syntax() {
        let mut conf = Config::default();
        conf.parse(
            "/* block */ APT::Get::Assume-Yes \"true\";\n# hash comment\n\
             APT { Install-Suggests \"1\"; Get { Foo \"bar\"; }; };\nquiet \"2\";",
        );
        assert_eq!(conf.bool("apt::get::assume-yes"), Some(true));
        assert_eq!(conf.bool("APT::Install-Suggests"), Some(true));
        assert_eq!(conf.get("APT::Get::Foo"), Some("bar"));
        assert_eq!(conf.get("quiet"), Some("2"));
        conf.parse("DPkg::Post-Invoke { \"rm -f /x/*.deb || true\"; };");
        assert_eq!(conf.lists["dpkg::post-invoke"], ["rm -f /x/*.deb || true"]);
        assert!(conf_file_name_ok(Path::new("/x/99kiln")));
        assert!(conf_file_name_ok(Path::new("/x/a.conf")));
        assert!(!conf_file_name_ok(Path::new("/x/a.conf.dpkg-old")));
    }
}
