//! A resolution turned into dpkg's order of work, and apt's record of which packages
//! were installed automatically (`/var/lib/apt/extended_states`).
//!
//! Order: every package is unpacked, then configured with its dependencies configured
//! first, as apt drives dpkg; a `Pre-Depends` target is configured before the package
//! that pre-depends on it is unpacked (dpkg refuses to unpack it otherwise). Removal
//! goes the other way: a package goes before what it depends on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_deb::control::{Comments, Paragraph, parse_paragraphs_with};
use kiln_deb::relation::Dependency;

use crate::resolve::{Pkg, Resolution, Universe};
use crate::{Error, Result};

/// Bound on the dependency-chain depth ordering follows (it recurses): real chains
/// are under 50 deep, and a guest's stack is small, so a hostile index cannot make
/// ordering overflow it.
pub const MAX_ORDER_DEPTH: usize = 512;

/// apt's auto-installed marks, relative to the root.
pub const EXTENDED_STATES: &str = "var/lib/apt/extended_states";

/// One dpkg action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Unpack(String),
    Configure(String),
    Remove(String),
    Purge(String),
}

/// The order to unpack and configure `r.install` in.
pub fn install_order(r: &Resolution) -> Result<Vec<Step>> {
    let mut o = Orderer {
        r,
        steps: Vec::new(),
        unpacked: BTreeSet::new(),
        configured: BTreeSet::new(),
        visiting: BTreeSet::new(),
    };
    let order = post_order(r.install.keys().cloned(), |n| o.deps(n, true))?;
    for name in &order {
        o.unpack(name, 0)?;
    }
    for name in &order {
        o.configure(name, 0)?;
    }
    Ok(o.steps)
}

/// The order to remove `r.remove` in (dependants first); `purge` purges instead.
pub fn remove_order(u: &Universe, r: &Resolution, purge: bool) -> Result<Vec<Step>> {
    let deps = |name: &str| -> Vec<String> {
        u.installed(name)
            .map(|p| in_set(u_hard(p), |n| r.remove.contains(n)))
            .unwrap_or_default()
    };
    let mut order = post_order(r.remove.iter().cloned(), deps)?;
    order.reverse();
    let step = if purge { Step::Purge } else { Step::Remove };
    Ok(order.into_iter().map(step).collect())
}

fn u_hard(p: &Pkg) -> impl Iterator<Item = &Dependency> {
    p.pre_depends.iter().chain(&p.depends)
}

/// Names of the set that the groups name (any alternative, directly).
fn in_set<'a>(
    groups: impl Iterator<Item = &'a Dependency>,
    member: impl Fn(&str) -> bool,
) -> Vec<String> {
    groups
        .flat_map(|d| &d.alternatives)
        .filter(|rel| member(&rel.name))
        .map(|rel| rel.name.clone())
        .collect()
}

/// Dependencies first, each name once, in name order otherwise; cycles are cut where
/// they close (dpkg configures a cycle in any order).
fn post_order(
    names: impl Iterator<Item = String>,
    mut deps: impl FnMut(&str) -> Vec<String>,
) -> Result<Vec<String>> {
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for root in names {
        // An explicit stack (name, its deps still to visit) instead of recursion.
        let mut stack: Vec<(String, Vec<String>)> = Vec::new();
        if done.insert(root.clone()) {
            let d = deps(&root);
            stack.push((root, d));
        }
        while let Some((name, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) if done.insert(next.clone()) => {
                    if stack.len() >= MAX_ORDER_DEPTH {
                        return Err(too_deep(&next));
                    }
                    let d = deps(&next);
                    stack.push((next, d));
                }
                Some(_) => {}
                None => {
                    out.push(name.clone());
                    stack.pop();
                }
            }
        }
    }
    Ok(out)
}

fn too_deep(name: &str) -> Error {
    Error::MalformedIndex {
        file: PathBuf::from("Packages"),
        what: format!("dependency chain through {name} is deeper than {MAX_ORDER_DEPTH}"),
    }
}

struct Orderer<'a> {
    r: &'a Resolution,
    steps: Vec<Step>,
    unpacked: BTreeSet<String>,
    configured: BTreeSet<String>,
    visiting: BTreeSet<String>,
}

impl Orderer<'_> {
    /// Planned packages `name` depends on (hard, or only Pre-Depends).
    fn deps(&self, name: &str, all: bool) -> Vec<String> {
        let Some((p, _)) = self.r.install.get(name) else {
            return Vec::new();
        };
        let member = |n: &str| n != name && self.r.install.contains_key(n);
        if all {
            in_set(u_hard(p), member)
        } else {
            in_set(p.pre_depends.iter(), member)
        }
    }

    fn unpack(&mut self, name: &str, depth: usize) -> Result<()> {
        if self.unpacked.contains(name) {
            return Ok(());
        }
        for pre in self.deps(name, false) {
            self.configure(&pre, depth + 1)?;
        }
        self.unpacked.insert(name.to_string());
        self.steps.push(Step::Unpack(name.to_string()));
        Ok(())
    }

    fn configure(&mut self, name: &str, depth: usize) -> Result<()> {
        if depth > MAX_ORDER_DEPTH {
            return Err(too_deep(name));
        }
        if self.configured.contains(name) || !self.visiting.insert(name.to_string()) {
            return Ok(());
        }
        for dep in self.deps(name, true) {
            self.configure(&dep, depth + 1)?;
        }
        self.unpack(name, depth + 1)?;
        self.visiting.remove(name);
        self.configured.insert(name.to_string());
        self.steps.push(Step::Configure(name.to_string()));
        Ok(())
    }
}

/// `/var/lib/apt/extended_states` as apt keeps it.
#[derive(Debug, Clone, Default)]
pub struct ExtendedStates {
    entries: Vec<Paragraph>,
}

impl ExtendedStates {
    /// Loads the file under `root` (absent: empty).
    pub fn load(root: &Path) -> Result<ExtendedStates> {
        let path = root.join(EXTENDED_STATES);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(path, e)),
        };
        let entries =
            parse_paragraphs_with(&text, EXTENDED_STATES, Comments::Forbidden).map_err(|e| {
                Error::MalformedIndex {
                    file: path,
                    what: e.to_string(),
                }
            })?;
        Ok(ExtendedStates { entries })
    }

    /// Names marked `Auto-Installed: 1`.
    pub fn auto(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .filter(|p| p.get("Auto-Installed").map(str::trim) == Some("1"))
            .filter_map(|p| p.get("Package").map(|n| n.trim().to_string()))
            .collect()
    }

    /// The file as apt writes it after a run: entries of packages still installed
    /// (`installed` maps name to apt's architecture) rewritten with their mark, in
    /// file order, then a stanza per newly automatic package.
    pub fn render(&self, auto: &BTreeSet<String>, installed: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut seen = BTreeSet::new();
        for entry in &self.entries {
            let Some(name) = entry.get("Package").map(str::trim) else {
                continue;
            };
            if !installed.contains_key(name) || !seen.insert(name.to_string()) {
                continue;
            }
            let mut entry = entry.clone();
            let mark = if auto.contains(name) { "1" } else { "0" };
            entry.set("Auto-Installed", mark);
            let _ = writeln!(out, "{entry}");
        }
        for name in auto.iter().filter(|n| !seen.contains(*n)) {
            if let Some(arch) = installed.get(name) {
                let _ = write!(
                    out,
                    "Package: {name}\nArchitecture: {arch}\nAuto-Installed: 1\n\n"
                );
            }
        }
        out
    }

    /// Writes `text` as the file under `root`, through a temporary file and a rename.
    pub fn write(root: &Path, text: &str) -> Result<()> {
        let path = root.join(EXTENDED_STATES);
        let tmp = path.with_extension("kiln-new");
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::tests::universe;
    use crate::resolve::{Options, Target, install, remove};

    fn steps(list: &[(&str, &str)]) -> Vec<Step> {
        list.iter()
            .map(|(k, n)| match *k {
                "u" => Step::Unpack(n.to_string()),
                "c" => Step::Configure(n.to_string()),
                "r" => Step::Remove(n.to_string()),
                _ => Step::Purge(n.to_string()),
            })
            .collect()
    }

    #[test]
    fn unpack_all_then_configure_dependencies_first() {
        let index = "Package: app\nVersion: 1\nDepends: lib\n\n\
                     Package: lib\nVersion: 1\nDepends: base\n\n\
                     Package: base\nVersion: 1\n";
        let u = universe(index, "");
        let r = install(&u, &[Target::parse("app")], Options::default()).unwrap();
        let want = [
            ("u", "base"),
            ("u", "lib"),
            ("u", "app"),
            ("c", "base"),
            ("c", "lib"),
            ("c", "app"),
        ];
        assert_eq!(install_order(&r).unwrap(), steps(&want));
    }

    #[test]
    fn pre_depends_are_configured_before_the_unpack() {
        let index = "Package: app\nVersion: 1\nPre-Depends: pre\nDepends: other\n\n\
                     Package: pre\nVersion: 1\nDepends: base\n\n\
                     Package: base\nVersion: 1\n\n\
                     Package: other\nVersion: 1\nDepends: app\n";
        let u = universe(index, "");
        let r = install(&u, &[Target::parse("app")], Options::default()).unwrap();
        let order = install_order(&r).unwrap();
        let at = |s: Step| order.iter().position(|x| *x == s).unwrap();
        assert!(at(Step::Configure("pre".into())) < at(Step::Unpack("app".into())));
        assert!(at(Step::Configure("base".into())) < at(Step::Configure("pre".into())));
        // app and other form a cycle: both still unpacked and configured once.
        assert_eq!(order.len(), 8);
    }

    #[test]
    fn removal_goes_dependants_first() {
        let status = "Package: app\nStatus: install ok installed\nVersion: 1\nDepends: lib\n\n\
                      Package: lib\nStatus: install ok installed\nVersion: 1\n";
        let u = universe("", status);
        let (r, _) = remove(&u, &["lib".to_string()], false).unwrap();
        let order = remove_order(&u, &r, true).unwrap();
        assert_eq!(order, steps(&[("p", "app"), ("p", "lib")]));
    }

    #[test]
    fn a_deep_chain_is_refused_not_overflowed() {
        let last = MAX_ORDER_DEPTH + 10;
        let mut index: String = (0..last)
            .map(|i| format!("Package: p{i}\nVersion: 1\nDepends: p{}\n\n", i + 1))
            .collect();
        index.push_str(&format!("Package: p{last}\nVersion: 1\n"));
        let u = universe(&index, "");
        let r = install(&u, &[Target::parse("p0")], Options::default()).unwrap();
        assert!(install_order(&r).is_err());
    }

    #[test]
    fn extended_states_are_written_as_apt_writes_them() {
        let dir = std::env::temp_dir().join(format!("kiln-apt-es-{}", std::process::id()));
        let old = "Package: gone\nArchitecture: amd64\nAuto-Installed: 1\n\n\
                   Package: kept\nArchitecture: amd64\nAuto-Installed: 1\n\n\
                   Package: manual-now\nArchitecture: amd64\nAuto-Installed: 1\n";
        ExtendedStates::write(&dir, old).unwrap();
        let es = ExtendedStates::load(&dir).unwrap();
        assert_eq!(es.auto().len(), 3);
        let auto = BTreeSet::from(["kept".to_string(), "new".to_string()]);
        let installed: BTreeMap<String, String> = ["kept", "manual-now", "new"]
            .iter()
            .map(|n| (n.to_string(), "amd64".to_string()))
            .collect();
        assert_eq!(
            es.render(&auto, &installed),
            "Package: kept\nArchitecture: amd64\nAuto-Installed: 1\n\n\
             Package: manual-now\nArchitecture: amd64\nAuto-Installed: 0\n\n\
             Package: new\nArchitecture: amd64\nAuto-Installed: 1\n\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
