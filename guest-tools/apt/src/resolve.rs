//! apt's dependency resolution for the common cases: which package versions an
//! `install`, `remove` or `autoremove` request adds or takes away.
//!
//! The universe is the native architecture's (and `all`) versions from the stored
//! indexes plus what `/var/lib/dpkg/status` says is installed. Like apt's default
//! policy, the candidate of a package is its highest available version (index versions
//! have priority 500, the installed one 100, and nothing below 1000 downgrades).
//! Marking follows apt's `MarkInstall`: each unsatisfied `Pre-Depends`/`Depends` group
//! takes its first installable alternative (an already installed or already chosen one
//! satisfies the group first), a virtual name takes its provider, `Recommends` are
//! followed unless switched off (and silently dropped when not installable), `Suggests`
//! never. What cannot be satisfied is reported as apt's unmet dependencies block.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use kiln_deb::relation::{Dependency, Op, Relation, parse_relations};
use kiln_deb::version::Version;

/// Bound on the packages one plan may add or remove: Debian main has about 65,000
/// binary packages per architecture, so a plan beyond this only comes from a hostile
/// index whose dependencies fan out without end.
pub const MAX_PLAN_PACKAGES: usize = 70_000;

/// Bound on the relations of one package (all fields together): the largest real ones
/// have a few hundred; each is matched against the universe, so a hostile paragraph
/// with millions would make resolution quadratic.
pub const MAX_RELATIONS: usize = 4_096;

/// Where a version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Entry `n` of the caller's index table (downloadable).
    Index(usize),
    /// Only in `/var/lib/dpkg/status`.
    Installed,
}

/// `Multi-Arch:` of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// One version of one package, with the fields resolution reads.
#[derive(Debug, Clone)]
pub struct Pkg {
    pub name: String,
    pub version: Version,
    pub arch: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: String,
    pub pre_depends: Vec<Dependency>,
    pub depends: Vec<Dependency>,
    pub recommends: Vec<Dependency>,
    pub suggests: Vec<Dependency>,
    pub conflicts: Vec<Relation>,
    pub breaks: Vec<Relation>,
    pub provides: Vec<Relation>,
    /// `Installed-Size:` in KiB.
    pub installed_size: u64,
    pub origin: Origin,
}

/// A field that could not be read as resolution needs it.
#[derive(Debug, thiserror::Error)]
#[error("Problem parsing {field} of package {package}: {why}")]
pub struct FieldError {
    pub package: String,
    pub field: &'static str,
    pub why: String,
}

impl Pkg {
    /// Reads a paragraph (a Packages entry or a status entry) through `get`.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        origin: Origin,
    ) -> Result<Pkg, FieldError> {
        let name = get("Package").unwrap_or_default().trim().to_string();
        let err = |field: &'static str, why: String| FieldError {
            package: name.clone(),
            field,
            why,
        };
        let version = get("Version")
            .unwrap_or_default()
            .parse::<Version>()
            .map_err(|e| err("Version", e.to_string()))?;
        let deps = |field: &'static str| -> Result<Vec<Dependency>, FieldError> {
            parse_relations(get(field).unwrap_or_default()).map_err(|e| err(field, e.to_string()))
        };
        let flat = |field: &'static str| -> Result<Vec<Relation>, FieldError> {
            Ok(deps(field)?
                .into_iter()
                .flat_map(|d| d.alternatives)
                .collect())
        };
        let pkg = Pkg {
            version,
            arch: get("Architecture").unwrap_or_default().trim().to_string(),
            multi_arch: multi_arch(get("Multi-Arch")),
            essential: get("Essential").is_some_and(|v| v.trim() == "yes"),
            priority: get("Priority").unwrap_or_default().trim().to_string(),
            pre_depends: deps("Pre-Depends")?,
            depends: deps("Depends")?,
            recommends: deps("Recommends")?,
            suggests: deps("Suggests")?,
            conflicts: flat("Conflicts")?,
            breaks: flat("Breaks")?,
            provides: flat("Provides")?,
            installed_size: get("Installed-Size")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            origin,
            name: name.clone(),
        };
        if pkg.relation_count() > MAX_RELATIONS {
            return Err(err("relations", format!("more than {MAX_RELATIONS}")));
        }
        Ok(pkg)
    }

    fn relation_count(&self) -> usize {
        let groups = [
            &self.pre_depends,
            &self.depends,
            &self.recommends,
            &self.suggests,
        ];
        let alts: usize = groups
            .iter()
            .flat_map(|g| g.iter())
            .map(|d| d.alternatives.len())
            .sum();
        alts + self.conflicts.len() + self.breaks.len() + self.provides.len()
    }

    /// The hard dependencies: `Pre-Depends` then `Depends`.
    fn hard_deps(&self) -> impl Iterator<Item = &Dependency> {
        self.pre_depends.iter().chain(&self.depends)
    }

    /// Whether this version, or what it provides, satisfies `rel`.
    fn satisfies(&self, rel: &Relation) -> bool {
        if !self.arch_matches(rel) {
            return false;
        }
        if self.name == rel.name && rel.accepts(&self.version) {
            return true;
        }
        self.provides.iter().any(|p| {
            p.name == rel.name
                && match (&rel.version, &p.version) {
                    (None, _) => true,
                    (Some(_), Some((Op::Equal, v))) => rel.accepts(v),
                    (Some(_), _) => false,
                }
        })
    }

    /// dpkg's rule for an architecture qualifier: `:any` needs `Multi-Arch: allowed`
    /// from another architecture (the native one always qualifies here, as kiln
    /// resolves for one architecture), a named architecture must be this one's.
    fn arch_matches(&self, rel: &Relation) -> bool {
        match rel.arch_qualifier.as_deref() {
            None | Some("any") | Some("native") => true,
            Some(arch) => arch == self.arch || self.arch == "all",
        }
    }
}

fn multi_arch(value: Option<&str>) -> MultiArch {
    match value.map(str::trim) {
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        _ => MultiArch::No,
    }
}

/// Whether a `Status:` value (`install ok installed`) means the package's files are
/// on disk (dpkg counts everything but `not-installed` and `config-files`).
pub fn status_is_present(status: &str) -> bool {
    !matches!(
        status.split_whitespace().nth(2),
        None | Some("not-installed") | Some("config-files")
    )
}

/// Everything resolution looks at.
#[derive(Debug, Default)]
pub struct Universe {
    available: BTreeMap<String, Vec<Pkg>>,
    installed: BTreeMap<String, Pkg>,
    /// Virtual name -> names of packages (available or installed) that provide it.
    providers: BTreeMap<String, BTreeSet<String>>,
    native: String,
}

impl Universe {
    /// Builds the universe for architecture `native` from index versions and installed
    /// ones; versions of other architectures are left out (kiln resolves for one).
    pub fn new(
        native: &str,
        available: impl IntoIterator<Item = Pkg>,
        installed: impl IntoIterator<Item = Pkg>,
    ) -> Universe {
        let mut u = Universe {
            native: native.to_string(),
            ..Universe::default()
        };
        let ours = |p: &Pkg| p.arch == native || p.arch == "all";
        for pkg in available.into_iter().filter(ours) {
            u.add_provides(&pkg);
            u.available.entry(pkg.name.clone()).or_default().push(pkg);
        }
        for pkg in installed.into_iter().filter(ours) {
            u.add_provides(&pkg);
            u.installed.insert(pkg.name.clone(), pkg);
        }
        for versions in u.available.values_mut() {
            versions.sort_by(|a, b| b.version.cmp(&a.version));
        }
        u
    }

    fn add_provides(&mut self, pkg: &Pkg) {
        for p in &pkg.provides {
            self.providers
                .entry(p.name.clone())
                .or_default()
                .insert(pkg.name.clone());
        }
    }

    /// The native architecture.
    pub fn arch(&self) -> &str {
        &self.native
    }

    /// The installed version of `name`.
    pub fn installed(&self, name: &str) -> Option<&Pkg> {
        self.installed.get(name)
    }

    /// Every installed package, by name.
    pub fn installed_all(&self) -> impl Iterator<Item = &Pkg> {
        self.installed.values()
    }

    /// apt's candidate: the highest version, where the installed one wins ties and is
    /// never downgraded (all index versions have the default priority 500).
    pub fn candidate(&self, name: &str) -> Option<&Pkg> {
        let best = self.available.get(name).and_then(|v| v.first());
        match (best, self.installed.get(name)) {
            (Some(b), Some(i)) if i.version >= b.version => Some(i),
            (Some(b), _) => Some(b),
            (None, i) => i,
        }
    }

    /// Whether apt knows the name at all (a package, or a name something provides).
    pub fn knows(&self, name: &str) -> bool {
        self.available.contains_key(name)
            || self.installed.contains_key(name)
            || self.providers.contains_key(name)
    }

    fn version_of(&self, name: &str, version: &Version) -> Option<&Pkg> {
        let installed = self.installed.get(name).filter(|p| &p.version == version);
        installed.or_else(|| {
            self.available
                .get(name)?
                .iter()
                .find(|p| &p.version == version)
        })
    }

    /// Packages whose candidate provides `rel`, sorted by apt's preference: installed
    /// first, then by `Priority`, then by name.
    fn providers_of(&self, rel: &Relation) -> Vec<&Pkg> {
        let Some(names) = self.providers.get(&rel.name) else {
            return Vec::new();
        };
        let mut found: Vec<&Pkg> = names
            .iter()
            .filter_map(|n| self.candidate(n))
            .filter(|p| p.name != rel.name && p.satisfies(rel))
            .collect();
        found.sort_by_key(|p| {
            let installed = self.installed.contains_key(&p.name);
            (!installed, priority_rank(&p.priority), p.name.clone())
        });
        found
    }
}

fn priority_rank(priority: &str) -> u8 {
    match priority {
        "required" => 0,
        "important" => 1,
        "standard" => 2,
        "optional" => 3,
        _ => 4,
    }
}

/// What the user asked `install` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `pkg`: its candidate.
    Name(String),
    /// `pkg=version`.
    Version(String, String),
}

impl Target {
    /// Parses an `install` argument (`curl`, `curl=7.88.1-10`).
    pub fn parse(arg: &str) -> Target {
        match arg.split_once('=') {
            Some((name, version)) => Target::Version(name.to_string(), version.to_string()),
            None => Target::Name(arg.to_string()),
        }
    }

    fn name(&self) -> &str {
        match self {
            Target::Name(n) | Target::Version(n, _) => n,
        }
    }
}

/// Resolution switches (`APT::Install-Recommends`, `APT::Install-Suggests`).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub recommends: bool,
    pub suggests: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            recommends: true,
            suggests: false,
        }
    }
}

/// Why a request cannot be resolved, with apt's texts (without the `E: ` prefix the
/// front end prints; [`ResolveError::notice`] is what apt prints before it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("Unable to locate package {0}")]
    NotFound(String),
    #[error("Package '{name}' has no installation candidate")]
    NoCandidate { name: String, notice: String },
    #[error("Version '{version}' for '{name}' was not found")]
    NoVersion { name: String, version: String },
    #[error("Unable to correct problems, you have held broken packages.")]
    Unmet { report: String },
    #[error("Essential packages were removed and -y was used without --allow-remove-essential.")]
    Essential { names: Vec<String> },
    #[error("the request needs more than {MAX_PLAN_PACKAGES} package changes")]
    TooLarge,
}

impl ResolveError {
    /// What apt prints on stdout before the `E:` line.
    pub fn notice(&self) -> String {
        match self {
            ResolveError::NoCandidate { notice, .. } => notice.clone(),
            ResolveError::Unmet { report } => format!("{UNMET_PREAMBLE}{report}"),
            ResolveError::Essential { names } => format!(
                "WARNING: The following essential packages will be removed.\n\
                 This should NOT be done unless you know exactly what you are doing!\n{}",
                name_block(names)
            ),
            _ => String::new(),
        }
    }
}

const UNMET_PREAMBLE: &str = "Some packages could not be installed. This may mean that you have\n\
requested an impossible situation or if you are using the unstable\n\
distribution that some required packages have not yet been created\n\
or been moved out of Incoming.\n\
The following information may help to resolve the situation:\n\
\n\
The following packages have unmet dependencies:\n";

/// apt's wrapped list of names: two spaces of indent, lines of at most 80 columns.
pub fn name_block(names: &[String]) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for name in names {
        if !line.is_empty() && line.len() + 1 + name.len() > 79 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if line.is_empty() {
            line.push_str("  ");
        } else {
            line.push(' ');
        }
        line.push_str(name);
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// How a package came into the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Named on the command line (manually installed).
    Manual,
    /// Pulled in by a dependency (apt marks it `Auto-Installed: 1`).
    Auto,
}

/// The outcome of resolving a request: what changes, before ordering.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Versions to unpack and configure (new or upgraded), by name.
    pub install: BTreeMap<String, (Pkg, Reason)>,
    /// Installed packages to remove.
    pub remove: BTreeSet<String>,
    /// Requested packages already at their candidate (`... is already the newest version`).
    pub unchanged: Vec<(String, Version)>,
    /// `Note, selecting 'x' instead of 'y'` lines.
    pub notes: Vec<String>,
    /// Recommended packages left out (`--no-install-recommends`).
    pub recommended: BTreeSet<String>,
    /// Suggested packages not installed.
    pub suggested: BTreeSet<String>,
}

impl Resolution {
    /// The version `name` has once the plan ran (unchanged installed ones included).
    fn final_pkg<'a>(&'a self, u: &'a Universe, name: &str) -> Option<&'a Pkg> {
        if let Some((p, _)) = self.install.get(name) {
            return Some(p);
        }
        u.installed(name).filter(|_| !self.remove.contains(name))
    }

    /// Whether a package in the final state satisfies `rel`.
    fn satisfied(&self, u: &Universe, rel: &Relation) -> bool {
        let direct = self
            .final_pkg(u, &rel.name)
            .is_some_and(|p| p.satisfies(rel));
        direct
            || u.providers.get(&rel.name).is_some_and(|names| {
                names
                    .iter()
                    .filter_map(|n| self.final_pkg(u, n))
                    .any(|p| p.satisfies(rel))
            })
    }

    fn group_satisfied(&self, u: &Universe, dep: &Dependency) -> bool {
        dep.alternatives.iter().any(|r| self.satisfied(u, r))
    }
}

/// Resolves `install` of `targets`.
pub fn install(
    u: &Universe,
    targets: &[Target],
    opts: Options,
) -> Result<Resolution, ResolveError> {
    let mut r = Resolution::default();
    let mut queue = VecDeque::new();
    for target in targets {
        let pkg = select(u, target, &mut r)?;
        let name = pkg.name.clone();
        if u.installed(&name).is_some_and(|i| i.version == pkg.version) {
            r.unchanged.push((name.clone(), pkg.version.clone()));
            continue;
        }
        r.install
            .insert(name.clone(), (pkg.clone(), Reason::Manual));
        queue.push_back(name);
    }
    let mut unmet = Unmet::default();
    mark(u, &mut r, queue, opts, &mut unmet)?;
    check_conflicts(u, &r, &mut unmet);
    unmet.into_result()?;
    Ok(r)
}

/// The version a command-line target names, with apt's errors.
fn select<'u>(
    u: &'u Universe,
    target: &Target,
    r: &mut Resolution,
) -> Result<&'u Pkg, ResolveError> {
    let name = target.name();
    if !u.knows(name) {
        return Err(ResolveError::NotFound(name.to_string()));
    }
    if let Target::Version(_, version) = target {
        let not_found = || ResolveError::NoVersion {
            name: name.to_string(),
            version: version.clone(),
        };
        let v: Version = version.parse().map_err(|_| not_found())?;
        return u.version_of(name, &v).ok_or_else(not_found);
    }
    if let Some(pkg) = u.candidate(name) {
        return Ok(pkg);
    }
    let rel = plain(name);
    let providers = u.providers_of(&rel);
    if let [only] = providers.as_slice() {
        r.notes.push(format!(
            "Note, selecting '{}' instead of '{name}'",
            only.name
        ));
        return Ok(only);
    }
    Err(no_candidate(name, &providers))
}

fn no_candidate(name: &str, providers: &[&Pkg]) -> ResolveError {
    let notice = if providers.is_empty() {
        format!(
            "Package {name} is not available, but is referred to by another package.\n\
             This may mean that the package is missing, has been obsoleted, or\n\
             is only available from another source\n\n"
        )
    } else {
        let mut s = format!("Package {name} is a virtual package provided by:\n");
        for p in providers {
            let _ = writeln!(s, "  {} {}", p.name, p.version);
        }
        s.push_str("You should explicitly select one to install.\n\n");
        s
    };
    ResolveError::NoCandidate {
        name: name.to_string(),
        notice,
    }
}

/// A relation on `name` with no qualifiers.
fn plain(name: &str) -> Relation {
    Relation {
        name: name.to_string(),
        arch_qualifier: None,
        version: None,
        architectures: Vec::new(),
        profiles: Vec::new(),
    }
}

/// apt's `MarkInstall`, breadth first: every package in `queue` gets its hard
/// dependencies (and Recommends) satisfied, choosing new versions as needed.
fn mark(
    u: &Universe,
    r: &mut Resolution,
    mut queue: VecDeque<String>,
    opts: Options,
    unmet: &mut Unmet,
) -> Result<(), ResolveError> {
    while let Some(name) = queue.pop_front() {
        if r.install.len() > MAX_PLAN_PACKAGES {
            return Err(ResolveError::TooLarge);
        }
        let Some((pkg, _)) = r.install.get(&name) else {
            continue;
        };
        let pkg = pkg.clone();
        for (kind, dep) in relations(&pkg, opts) {
            if r.group_satisfied(u, dep) {
                continue;
            }
            match choose(u, r, dep) {
                Some(chosen) => {
                    let chosen = chosen.clone();
                    queue.push_back(chosen.name.clone());
                    r.install
                        .insert(chosen.name.clone(), (chosen, Reason::Auto));
                }
                None if kind == Kind::Recommends => {}
                None => unmet.add(u, r, &pkg, kind, dep),
            }
        }
        note_weak(u, r, &pkg, opts);
    }
    Ok(())
}

/// The kinds of relation resolution follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PreDepends,
    Depends,
    Recommends,
    Conflicts,
    Breaks,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::PreDepends => "PreDepends",
            Kind::Depends => "Depends",
            Kind::Recommends => "Recommends",
            Kind::Conflicts => "Conflicts",
            Kind::Breaks => "Breaks",
        }
    }
}

fn relations(pkg: &Pkg, opts: Options) -> Vec<(Kind, &Dependency)> {
    let mut all: Vec<(Kind, &Dependency)> = Vec::new();
    all.extend(pkg.pre_depends.iter().map(|d| (Kind::PreDepends, d)));
    all.extend(pkg.depends.iter().map(|d| (Kind::Depends, d)));
    if opts.recommends {
        all.extend(pkg.recommends.iter().map(|d| (Kind::Recommends, d)));
    }
    all
}

/// Records the Recommends and Suggests apt lists but does not install.
fn note_weak(u: &Universe, r: &mut Resolution, pkg: &Pkg, opts: Options) {
    let mut weak = |deps: &[Dependency], into: fn(&mut Resolution) -> &mut BTreeSet<String>| {
        for dep in deps {
            if !r.group_satisfied(u, dep) {
                let names = dep.alternatives.iter().map(|a| a.name.clone());
                into(r).extend(names);
            }
        }
    };
    if !opts.recommends {
        weak(&pkg.recommends, |r| &mut r.recommended);
    }
    weak(&pkg.suggests, |r| &mut r.suggested);
}

/// The version an unsatisfied group gets: its first alternative whose candidate
/// satisfies it (a real package, else a provider), as long as that name is not already
/// planned at another version.
fn choose<'u>(u: &'u Universe, r: &Resolution, dep: &Dependency) -> Option<&'u Pkg> {
    dep.alternatives.iter().find_map(|rel| {
        let real = u
            .candidate(&rel.name)
            .filter(|p| p.satisfies(rel) && !r.install.contains_key(&p.name));
        real.or_else(|| {
            u.providers_of(rel)
                .into_iter()
                .find(|p| !r.install.contains_key(&p.name))
        })
    })
}

/// Every `Conflicts`/`Breaks` between a planned version and the final state.
fn check_conflicts(u: &Universe, r: &Resolution, unmet: &mut Unmet) {
    let finals: Vec<&Pkg> = r
        .install
        .values()
        .map(|(p, _)| p)
        .chain(
            u.installed
                .values()
                .filter(|p| !r.install.contains_key(&p.name) && !r.remove.contains(&p.name)),
        )
        .collect();
    for (new, _) in r.install.values() {
        for other in &finals {
            if other.name == new.name {
                continue;
            }
            clash(r, new, other, unmet);
            if !r.install.contains_key(&other.name) {
                clash(r, other, new, unmet);
            }
        }
    }
}

/// Records `by`'s Conflicts/Breaks that `target` violates.
fn clash(r: &Resolution, by: &Pkg, target: &Pkg, unmet: &mut Unmet) {
    let kinds = [(Kind::Conflicts, &by.conflicts), (Kind::Breaks, &by.breaks)];
    for (kind, rels) in kinds {
        for rel in rels.iter().filter(|rel| target.satisfies(rel)) {
            let state = if r.install.contains_key(&target.name) {
                format!("but {} is to be installed", target.version)
            } else {
                format!("but {} is installed", target.version)
            };
            unmet.line(by, kind, &format!("{} {state}", show_rel(rel)));
        }
    }
}

fn show_rel(rel: &Relation) -> String {
    let mut s = rel.name.clone();
    if let Some(q) = &rel.arch_qualifier {
        s.push(':');
        s.push_str(q);
    }
    if let Some((op, v)) = &rel.version {
        let op = match op {
            Op::Less => "<",
            Op::LessEqual => "<=",
            Op::Equal => "=",
            Op::GreaterEqual => ">=",
            Op::Greater => ">",
        };
        let _ = write!(s, " ({op} {v})");
    }
    s
}

/// apt's "unmet dependencies" lines, per package in the order found.
#[derive(Debug, Default)]
struct Unmet {
    by_pkg: BTreeMap<String, Vec<String>>,
}

impl Unmet {
    fn line(&mut self, pkg: &Pkg, kind: Kind, text: &str) {
        self.by_pkg
            .entry(pkg.name.clone())
            .or_default()
            .push(format!("{}: {text}", kind.label()));
    }

    /// An unsatisfiable group: each alternative with apt's reason, joined by ` or`.
    fn add(&mut self, u: &Universe, r: &Resolution, pkg: &Pkg, kind: Kind, dep: &Dependency) {
        let pad = " ".repeat(kind.label().len() + 3);
        let mut text = String::new();
        for (i, rel) in dep.alternatives.iter().enumerate() {
            if i > 0 {
                let _ = write!(text, " or\n{{indent}}{pad}");
            }
            text.push_str(&show_rel(rel));
            text.push_str(&why_not(u, r, rel));
        }
        self.line(pkg, kind, &text);
    }

    fn into_result(self) -> Result<(), ResolveError> {
        if self.by_pkg.is_empty() {
            return Ok(());
        }
        let mut report = String::new();
        for (name, lines) in &self.by_pkg {
            let indent = " ".repeat(name.len() + 3);
            for (i, line) in lines.iter().enumerate() {
                let line = line.replace("{indent}", &indent);
                if i == 0 {
                    let _ = writeln!(report, " {name} : {line}");
                } else {
                    let _ = writeln!(report, "{indent} {line}");
                }
            }
        }
        Err(ResolveError::Unmet { report })
    }
}

/// apt's reason an alternative does not help (nothing for a virtual name).
fn why_not(u: &Universe, r: &Resolution, rel: &Relation) -> String {
    if u.providers.contains_key(&rel.name) && u.candidate(&rel.name).is_none() {
        return String::new();
    }
    if let Some((p, _)) = r.install.get(&rel.name) {
        return format!(" but {} is to be installed", p.version);
    }
    if let Some(p) = u.installed(&rel.name) {
        return format!(" but {} is installed", p.version);
    }
    if u.candidate(&rel.name).is_none() {
        return " but it is not installable".to_string();
    }
    " but it is not going to be installed".to_string()
}

/// Resolves `remove`/`purge` of `names`: them, then every installed package whose
/// hard dependencies they leave unsatisfied. Names not installed are returned apart
/// (`Package 'x' is not installed, so not removed`).
pub fn remove(
    u: &Universe,
    names: &[String],
    allow_essential: bool,
) -> Result<(Resolution, Vec<String>), ResolveError> {
    let mut r = Resolution::default();
    let mut absent = Vec::new();
    for name in names {
        if u.installed(name).is_some() {
            r.remove.insert(name.clone());
        } else if u.knows(name) {
            absent.push(name.clone());
        } else {
            return Err(ResolveError::NotFound(name.clone()));
        }
    }
    loop {
        let broken: Vec<String> = u
            .installed
            .values()
            .filter(|p| !r.remove.contains(&p.name))
            .filter(|p| p.hard_deps().any(|d| !r.group_satisfied(u, d)))
            .map(|p| p.name.clone())
            .collect();
        if broken.is_empty() {
            break;
        }
        r.remove.extend(broken);
    }
    let essential: Vec<String> = r
        .remove
        .iter()
        .filter(|n| u.installed(n).is_some_and(|p| p.essential))
        .cloned()
        .collect();
    if !essential.is_empty() && !allow_essential {
        return Err(ResolveError::Essential { names: essential });
    }
    Ok((r, absent))
}

/// apt's autoremove set: installed packages marked automatic that no manual package
/// (nor an Essential one) reaches through Pre-Depends, Depends, Recommends or Suggests
/// (apt keeps what Recommends and Suggests name: `APT::AutoRemove::*Important`).
pub fn garbage(u: &Universe, auto: &BTreeSet<String>, gone: &BTreeSet<String>) -> BTreeSet<String> {
    let present = |n: &str| u.installed(n).is_some() && !gone.contains(n);
    let mut reached: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<&Pkg> = u
        .installed
        .values()
        .filter(|p| present(&p.name) && (!auto.contains(&p.name) || p.essential))
        .collect();
    while let Some(pkg) = stack.pop() {
        if !reached.insert(pkg.name.clone()) {
            continue;
        }
        let groups = pkg.hard_deps().chain(&pkg.recommends).chain(&pkg.suggests);
        for rel in groups.flat_map(|d| &d.alternatives) {
            let targets = u
                .providers
                .get(&rel.name)
                .into_iter()
                .flatten()
                .chain(std::iter::once(&rel.name));
            for t in targets {
                if let Some(p) = u
                    .installed(t)
                    .filter(|p| present(&p.name) && p.satisfies(rel))
                {
                    stack.push(p);
                }
            }
        }
    }
    u.installed
        .keys()
        .filter(|n| present(n) && !reached.contains(*n))
        .cloned()
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kiln_deb::control::parse_paragraphs;

    /// Versions from deb822 text (Architecture defaults to amd64).
    pub(crate) fn pkgs(text: &str, origin: Origin) -> Vec<Pkg> {
        parse_paragraphs(text, "test")
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let origin = match origin {
                    Origin::Index(_) => Origin::Index(i),
                    o => o,
                };
                let arch = |f: &str| match (f, p.get(f)) {
                    ("Architecture", None) => Some("amd64"),
                    (_, v) => v,
                };
                Pkg::parse(arch, origin).unwrap()
            })
            .collect()
    }

    pub(crate) fn universe(available: &str, installed: &str) -> Universe {
        Universe::new(
            "amd64",
            pkgs(available, Origin::Index(0)),
            pkgs(installed, Origin::Installed),
        )
    }

    fn names(r: &Resolution) -> Vec<&str> {
        r.install.keys().map(String::as_str).collect()
    }

    fn want(args: &[&str]) -> Vec<Target> {
        args.iter().map(|a| Target::parse(a)).collect()
    }

    const INDEX: &str = "\
Package: curl
Version: 7.88.1-10
Depends: libc6 (>= 2.34), libcurl4 (= 7.88.1-10)
Recommends: ca-certificates
Suggests: curl-doc

Package: libcurl4
Version: 7.88.1-10
Depends: libc6 (>= 2.17), libssl3 | libssl1.1

Package: libssl3
Version: 3.0.11-1

Package: libssl1.1
Version: 1.1.1-1

Package: libc6
Version: 2.36-9

Package: ca-certificates
Version: 20230311
Architecture: all
Depends: openssl

Package: openssl
Version: 3.0.11-1
Depends: libssl3

Package: mawk
Version: 1.3.4-1
Provides: awk

Package: gawk
Version: 5.2.1-2
Provides: awk

Package: awk-user
Version: 1
Depends: awk

Package: original-awk
Version: 2012-12-1
Architecture: arm64
Provides: awk
";

    const STATUS: &str = "\
Package: libc6
Status: install ok installed
Version: 2.36-9
";

    #[test]
    fn depends_recommends_and_alternatives_as_apt_marks_them() {
        let u = universe(INDEX, STATUS);
        let r = install(&u, &want(&["curl"]), Options::default()).unwrap();
        // libssl3 is the first alternative; libc6 is installed and satisfies both.
        assert_eq!(
            names(&r),
            ["ca-certificates", "curl", "libcurl4", "libssl3", "openssl"]
        );
        assert_eq!(r.install["curl"].1, Reason::Manual);
        assert_eq!(r.install["libssl3"].1, Reason::Auto);
        assert_eq!(r.suggested, BTreeSet::from(["curl-doc".to_string()]));
    }

    #[test]
    fn no_install_recommends_lists_them_instead() {
        let u = universe(INDEX, STATUS);
        let opts = Options {
            recommends: false,
            suggests: false,
        };
        let r = install(&u, &want(&["curl"]), opts).unwrap();
        assert_eq!(names(&r), ["curl", "libcurl4", "libssl3"]);
        assert_eq!(
            r.recommended,
            BTreeSet::from(["ca-certificates".to_string()])
        );
    }

    #[test]
    fn an_installed_alternative_satisfies_the_group() {
        let status = format!(
            "{STATUS}\nPackage: libssl1.1\nStatus: install ok installed\nVersion: 1.1.1-1\n"
        );
        let u = universe(INDEX, &status);
        let r = install(&u, &want(&["libcurl4"]), Options::default()).unwrap();
        assert_eq!(names(&r), ["libcurl4"]);
    }

    #[test]
    fn already_installed_is_unchanged() {
        let u = universe(INDEX, STATUS);
        let r = install(&u, &want(&["libc6"]), Options::default()).unwrap();
        assert!(r.install.is_empty());
        assert_eq!(r.unchanged[0].0, "libc6");
    }

    #[test]
    fn virtual_packages_need_one_provider_for_a_request() {
        let u = universe(INDEX, STATUS);
        let err = install(&u, &want(&["awk"]), Options::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Package 'awk' has no installation candidate"
        );
        assert!(
            err.notice().contains("  gawk 5.2.1-2\n  mawk 1.3.4-1\n"),
            "{}",
            err.notice()
        );
        // A dependency takes one (the arm64 provider is not in the amd64 universe).
        let r = install(&u, &want(&["awk-user"]), Options::default()).unwrap();
        assert_eq!(names(&r), ["awk-user", "gawk"]);
        let single = universe("Package: mawk\nVersion: 1\nProvides: awk\n", "");
        let r = install(&single, &want(&["awk"]), Options::default()).unwrap();
        assert_eq!(names(&r), ["mawk"]);
        assert_eq!(r.notes, ["Note, selecting 'mawk' instead of 'awk'"]);
    }

    #[test]
    fn apt_errors_for_unknown_names_and_versions() {
        let u = universe(INDEX, STATUS);
        let err = install(&u, &want(&["nope"]), Options::default()).unwrap_err();
        assert_eq!(err.to_string(), "Unable to locate package nope");
        let err = install(&u, &want(&["curl=1.0"]), Options::default()).unwrap_err();
        assert_eq!(err.to_string(), "Version '1.0' for 'curl' was not found");
        let r = install(&u, &want(&["libssl3=3.0.11-1"]), Options::default()).unwrap();
        assert_eq!(names(&r), ["libssl3"]);
        let err = install(&u, &want(&["curl-doc"]), Options::default());
        assert!(matches!(err, Err(ResolveError::NotFound(_))));
    }

    #[test]
    fn unmet_dependencies_are_reported_as_apt_does() {
        let index = "\
Package: app
Version: 1
Depends: libc6 (>= 3), missing, gone | also-gone
";
        let u = universe(index, STATUS);
        let err = install(&u, &want(&["app"]), Options::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unable to correct problems, you have held broken packages."
        );
        let ResolveError::Unmet { report } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            report,
            " app : Depends: libc6 (>= 3) but 2.36-9 is installed\n\
             \x20      Depends: missing but it is not installable\n\
             \x20      Depends: gone but it is not installable or\n\
             \x20               also-gone but it is not installable\n"
        );
        assert!(
            err.notice()
                .starts_with("Some packages could not be installed.")
        );
    }

    #[test]
    fn versioned_dependencies_upgrade_an_installed_package() {
        let index = "Package: app\nVersion: 1\nDepends: libc6 (>= 2.36-9)\n\n\
                     Package: libc6\nVersion: 2.36-9\n";
        let status = "Package: libc6\nStatus: install ok installed\nVersion: 2.31-1\n";
        let u = universe(index, status);
        let r = install(&u, &want(&["app"]), Options::default()).unwrap();
        assert_eq!(names(&r), ["app", "libc6"]);
    }

    #[test]
    fn conflicts_and_breaks_refuse() {
        let index = "Package: a\nVersion: 1\nConflicts: b\n\nPackage: b\nVersion: 2\n\n\
                     Package: c\nVersion: 1\nBreaks: libc6 (<< 3)\n";
        let status = format!("{STATUS}\nPackage: b\nStatus: install ok installed\nVersion: 2\n");
        let u = universe(index, &status);
        let ResolveError::Unmet { report } =
            install(&u, &want(&["a"]), Options::default()).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(report, " a : Conflicts: b but 2 is installed\n");
        let ResolveError::Unmet { report } =
            install(&u, &want(&["c"]), Options::default()).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(report, " c : Breaks: libc6 (< 3) but 2.36-9 is installed\n");
    }

    #[test]
    fn remove_takes_dependants_and_guards_essential() {
        let status = "\
Package: libc6
Status: install ok installed
Version: 2.36-9
Essential: yes

Package: curl
Status: install ok installed
Version: 1
Depends: libcurl4

Package: libcurl4
Status: install ok installed
Version: 1
Depends: libc6
";
        let u = universe("", status);
        let (r, absent) = remove(&u, &["libcurl4".into()], false).unwrap();
        assert_eq!(r.remove, BTreeSet::from(["curl".into(), "libcurl4".into()]));
        assert!(absent.is_empty());
        let err = remove(&u, &["libc6".into()], false).unwrap_err();
        let essential = vec!["libc6".to_string()];
        assert_eq!(err, ResolveError::Essential { names: essential });
        assert!(remove(&u, &["libc6".into()], true).is_ok());
        let auto = BTreeSet::from(["libcurl4".to_string()]);
        assert_eq!(garbage(&u, &auto, &BTreeSet::new()), BTreeSet::new());
        let gone = BTreeSet::from(["curl".to_string()]);
        assert_eq!(
            garbage(&u, &auto, &gone),
            BTreeSet::from(["libcurl4".to_string()])
        );
    }

    #[test]
    fn name_blocks_wrap_at_80_columns() {
        let names: Vec<String> = (0..30).map(|i| format!("package{i:02}")).collect();
        let block = name_block(&names);
        assert!(block.lines().all(|l| l.len() <= 80 && l.starts_with("  ")));
        assert_eq!(block.split_whitespace().count(), 30);
    }
}
