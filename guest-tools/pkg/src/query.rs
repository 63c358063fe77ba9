//! The read side of dpkg's database as `dpkg-query` presents it: the packages of the
//! `status` file plus every name their relationship fields mention (dpkg keeps those in
//! its package table too, so `dpkg -l 'libc*'` lists them as `un`), their state
//! abbreviations, `-l`'s table and `--showformat` rendering. Output follows dpkg 1.21
//! (Debian bookworm) byte for byte.

use std::fmt::Write as _;
use std::io::Read as _;

use kiln_deb::control::{self, Paragraph};

/// dpkg's default admin directory.
pub const ADMIN_DIR: &str = "/var/lib/dpkg";

/// Bound on the status file read into memory: the status file of a large desktop
/// system is a few MiB; a hostile image must not make a query allocate without limit.
pub const MAX_STATUS_BYTES: u64 = 256 << 20;

/// Bound on one `info/<pkg>.list` read back: the largest real ones (kernel modules,
/// texlive) are a few MiB.
pub const MAX_LIST_BYTES: u64 = 64 << 20;

/// dpkg's relationship fields: each name in them is an entry of its package table.
const RELATION_FIELDS: &[&str] = &[
    "Pre-Depends",
    "Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Replaces",
    "Provides",
];

/// `-l`'s minimum column widths (dpkg 1.21's `list_format_init`).
const MIN_WIDTHS: [usize; 4] = [14, 12, 12, 33];

/// One entry of dpkg's package table.
#[derive(Debug, Clone)]
pub struct Pkg {
    pub name: String,
    /// Its `status` paragraph; `None` for a name only mentioned by a relationship.
    pub para: Option<Paragraph>,
}

/// The loaded database.
#[derive(Debug, Clone)]
pub struct Db {
    pub admindir: String,
    /// Sorted by name, then architecture, as dpkg-query lists them.
    pub pkgs: Vec<Pkg>,
}

impl Db {
    /// Reads `<admindir>/status` (an absent file is an empty database, as for dpkg).
    pub fn load(admindir: &str) -> Result<Db, String> {
        let path = format!("{admindir}/status");
        let text = match std::fs::File::open(&path) {
            Ok(f) => {
                let mut text = String::new();
                f.take(MAX_STATUS_BYTES)
                    .read_to_string(&mut text)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                text
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot open {path}: {e}")),
        };
        let paras = control::parse_paragraphs(&text, &path).map_err(|e| e.to_string())?;
        Ok(Db::from_paragraphs(admindir, paras))
    }

    /// The table from status paragraphs (what [`Db::load`] read).
    pub fn from_paragraphs(admindir: &str, paras: Vec<Paragraph>) -> Db {
        let mut pkgs: Vec<Pkg> = paras
            .into_iter()
            .filter_map(|p| {
                let name = p.get("Package")?.trim().to_owned();
                Some(Pkg {
                    name,
                    para: Some(p),
                })
            })
            .collect();
        let mut mentioned: Vec<String> = pkgs
            .iter()
            .flat_map(|p| referenced_names(p.para.as_ref()))
            .collect();
        mentioned.sort();
        mentioned.dedup();
        mentioned.retain(|n| !pkgs.iter().any(|p| &p.name == n));
        pkgs.extend(mentioned.into_iter().map(|name| Pkg { name, para: None }));
        pkgs.sort_by(|a, b| (a.name.as_str(), a.arch()).cmp(&(b.name.as_str(), b.arch())));
        Db {
            admindir: admindir.to_owned(),
            pkgs,
        }
    }

    /// The native architecture: that of the installed `dpkg` package (what
    /// `dpkg --print-architecture` prints), never the host's.
    pub fn native_arch(&self) -> Option<&str> {
        self.pkgs
            .iter()
            .find(|p| p.name == "dpkg" && !p.is_not_installed())
            .map(Pkg::arch)
            .filter(|a| !a.is_empty())
    }

    /// The entries a `name[:arch]` names (several for a Multi-Arch: same name).
    pub fn find<'a>(&'a self, spec: &'a str) -> impl Iterator<Item = &'a Pkg> + 'a {
        let (name, arch) = split_spec(spec);
        self.pkgs
            .iter()
            .filter(move |p| p.name == name && arch.is_none_or(|a| p.arch() == a))
    }

    /// The entries matching any of `patterns` (fnmatch on the name, and on the
    /// architecture after `:`), with the patterns that matched nothing.
    pub fn matching<'a>(&'a self, patterns: &'a [String]) -> (Vec<&'a Pkg>, Vec<&'a str>) {
        let mut hits = vec![false; patterns.len()];
        let pkgs = self
            .pkgs
            .iter()
            .filter(|p| {
                let mut any = false;
                for (i, pat) in patterns.iter().enumerate() {
                    if p.matches(pat) {
                        hits[i] = true;
                        any = true;
                    }
                }
                any
            })
            .collect();
        let misses = patterns
            .iter()
            .zip(hits)
            .filter(|(_, hit)| !hit)
            .map(|(p, _)| p.as_str())
            .collect();
        (pkgs, misses)
    }

    /// The entries a query without patterns shows: all but the not-installed ones.
    pub fn listed(&self) -> Vec<&Pkg> {
        self.pkgs.iter().filter(|p| !p.is_not_installed()).collect()
    }

    /// `info/<name>.<what>` for `pkg`, as dpkg names it (`name:arch` for Multi-Arch: same).
    pub fn info_path(&self, pkg: &Pkg, what: &str) -> String {
        let base = if pkg.multiarch_same() {
            format!("{}:{}", pkg.name, pkg.arch())
        } else {
            pkg.name.clone()
        };
        format!("{}/info/{base}.{what}", self.admindir)
    }

    /// The paths of `pkg`'s `info/<pkg>.list` (none when it has no list).
    pub fn files(&self, pkg: &Pkg) -> Result<Vec<String>, String> {
        let path = self.info_path(pkg, "list");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot open {path}: {e}")),
        };
        let mut text = String::new();
        file.take(MAX_LIST_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// How many files and directories dpkg's file table holds (its "Reading database"
    /// count): each path of the packages' lists once, plus both paths of each diversion.
    pub fn file_count(&self) -> Result<usize, String> {
        let mut all = std::collections::HashSet::new();
        for pkg in self.pkgs.iter().filter(|p| p.para.is_some()) {
            all.extend(self.files(pkg)?);
        }
        let diversions = std::fs::read_to_string(format!("{}/diversions", self.admindir));
        // Triplets of lines: the diverted path, where it went, the diverting package.
        let text = diversions.unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if i % 3 != 2 {
                all.insert(line.to_owned());
            }
        }
        Ok(all.len())
    }
}

fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((name, arch)) => (name, Some(arch)),
        None => (spec, None),
    }
}

fn referenced_names(para: Option<&Paragraph>) -> Vec<String> {
    let Some(para) = para else {
        return Vec::new();
    };
    RELATION_FIELDS
        .iter()
        .filter_map(|f| para.get(f))
        .filter_map(|v| kiln_deb::relation::parse_relations(v).ok())
        .flatten()
        .flat_map(|dep| dep.alternatives.into_iter().map(|r| r.name))
        .collect()
}

impl Pkg {
    /// A field of its status paragraph (`""` when absent).
    pub fn field(&self, name: &str) -> &str {
        self.para
            .as_ref()
            .and_then(|p| p.get(name))
            .map_or("", str::trim)
    }

    /// The three words of `Status:` (`install ok installed`); dpkg's defaults when absent.
    fn status_words(&self) -> [&str; 3] {
        let mut words = self.field("Status").split_whitespace();
        let mut next = |default| words.next().unwrap_or(default);
        [next("unknown"), next("ok"), next("not-installed")]
    }

    /// The `Status:` want word (`install`, `hold`, `deinstall`, `purge`, `unknown`).
    pub fn want(&self) -> &str {
        self.status_words()[0]
    }

    /// The `Status:` state word.
    pub fn state(&self) -> &str {
        self.status_words()[2]
    }

    pub fn is_not_installed(&self) -> bool {
        self.state() == "not-installed"
    }

    /// `ii `: want, state and error flag letters (`db:Status-Abbrev`).
    pub fn abbrev(&self) -> String {
        let [want, flag, state] = self.status_words();
        let want = match want {
            "install" => 'i',
            "hold" => 'h',
            "deinstall" => 'r',
            "purge" => 'p',
            _ => 'u',
        };
        let state = match state {
            "config-files" => 'c',
            "half-installed" => 'H',
            "unpacked" => 'U',
            "half-configured" => 'F',
            "triggers-awaited" => 'W',
            "triggers-pending" => 't',
            "installed" => 'i',
            _ => 'n',
        };
        let flag = if flag == "reinstreq" { 'R' } else { ' ' };
        [want, state, flag].iter().collect()
    }

    pub fn version(&self) -> &str {
        self.field("Version")
    }

    pub fn arch(&self) -> &str {
        self.field("Architecture")
    }

    fn multiarch_same(&self) -> bool {
        self.field("Multi-Arch") == "same"
    }

    /// The name as dpkg shows it unambiguously: `name:arch` for Multi-Arch: same or a
    /// foreign architecture (`binary:Package`).
    pub fn nonambig_name(&self, native: Option<&str>) -> String {
        let arch = self.arch();
        let qualify =
            !arch.is_empty() && (self.multiarch_same() || (arch != "all" && Some(arch) != native));
        if qualify {
            format!("{}:{arch}", self.name)
        } else {
            self.name.clone()
        }
    }

    /// The description's first line, or dpkg's placeholder.
    pub fn synopsis(&self) -> &str {
        match self.field("Description") {
            "" => "(no description available)",
            d => d.lines().next().unwrap_or(d),
        }
    }

    fn matches(&self, pattern: &str) -> bool {
        let (name, arch) = split_spec(pattern);
        kiln_tools::glob::matches(name.as_bytes(), self.name.as_bytes())
            && arch.is_none_or(|a| kiln_tools::glob::matches(a.as_bytes(), self.arch().as_bytes()))
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

/// `dpkg-query -l`'s table for `pkgs` (nothing at all when there are none).
pub fn list(pkgs: &[&Pkg], native: Option<&str>) -> String {
    if pkgs.is_empty() {
        return String::new();
    }
    let rows: Vec<[String; 5]> = pkgs
        .iter()
        .map(|p| {
            [
                p.abbrev(),
                p.nonambig_name(native),
                or_none(p.version()).to_owned(),
                or_none(p.arch()).to_owned(),
                p.synopsis().to_owned(),
            ]
        })
        .collect();
    let mut w = MIN_WIDTHS;
    for row in &rows {
        for (i, width) in w.iter_mut().enumerate() {
            *width = (*width).max(row[i + 1].chars().count());
        }
    }
    let mut out = String::from(
        "Desired=Unknown/Install/Remove/Purge/Hold\n\
         | Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend\n\
         |/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)\n",
    );
    let header = ["||/", "Name", "Version", "Architecture", "Description"].map(String::from);
    for row in std::iter::once(&header).chain(&rows) {
        let _ = writeln!(
            out,
            "{} {:<nw$} {:<vw$} {:<aw$} {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            nw = w[0],
            vw = w[1],
            aw = w[2]
        );
        if std::ptr::eq(row, &header) {
            let bars: Vec<String> = w.iter().map(|n| "=".repeat(*n)).collect();
            let _ = writeln!(out, "+++-{}", bars.join("-"));
        }
    }
    out
}

/// A parsed `--showformat`: literal text and `${field;width}` references.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Field { name: String, width: i32 },
}

/// Parses a `--showformat` string as dpkg does (`\n`, `\t`, `\r` escapes in the text).
pub fn parse_format(fmt: &str) -> Result<Vec<Node>, String> {
    let mut nodes = Vec::new();
    let mut rest = fmt;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("${") {
            let end = after.find('}').ok_or("missing closing brace")?;
            nodes.push(parse_field(&after[..end])?);
            rest = &after[end + 1..];
        } else {
            let end = rest[1..].find("${").map_or(rest.len(), |i| i + 1);
            nodes.push(Node::Text(unescape(&rest[..end])));
            rest = &rest[end..];
        }
    }
    if nodes.is_empty() {
        return Err("may not be empty string".into());
    }
    Ok(nodes)
}

fn parse_field(spec: &str) -> Result<Node, String> {
    let (name, width) = match spec.split_once(';') {
        Some((name, w)) => {
            let width = w.trim_start().parse::<i32>().map_err(|_| {
                let bad = w
                    .trim_start()
                    .chars()
                    .find(|c| !c.is_ascii_digit() && *c != '-');
                format!("invalid character '{}' in field width", bad.unwrap_or(' '))
            })?;
            (name, width)
        }
        None => (spec, 0),
    };
    Ok(Node::Field {
        name: name.to_owned(),
        width,
    })
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Renders `nodes` for `pkg`: a positive width right-aligns, a negative one left-aligns,
/// and either truncates to it (dpkg's `pkg_format_print`).
pub fn render(nodes: &[Node], pkg: &Pkg, native: Option<&str>) -> String {
    let mut out = String::new();
    for node in nodes {
        let (value, width) = match node {
            Node::Text(text) => (text.clone(), 0),
            Node::Field { name, width } => (field_value(pkg, name, native), *width),
        };
        let padded = match width {
            0 => value,
            w if w > 0 => format!("{value:>w$}", w = w as usize),
            w => format!("{value:<w$}", w = w.unsigned_abs() as usize),
        };
        let limit = width.unsigned_abs() as usize;
        match padded.char_indices().nth(limit) {
            Some((cut, _)) if limit != 0 => out.push_str(&padded[..cut]),
            _ => out.push_str(&padded),
        }
    }
    out
}

fn field_value(pkg: &Pkg, name: &str, native: Option<&str>) -> String {
    match name {
        "binary:Package" => pkg.nonambig_name(native),
        "binary:Synopsis" | "binary:Summary" => match pkg.field("Description") {
            "" => String::new(),
            _ => pkg.synopsis().to_owned(),
        },
        "db:Status-Abbrev" => pkg.abbrev(),
        "db:Status-Want" => pkg.status_words()[0].to_owned(),
        "db:Status-Status" => pkg.status_words()[2].to_owned(),
        "db:Status-Eflag" => pkg.status_words()[1].to_owned(),
        "source:Package" => match pkg.field("Source") {
            "" => pkg.name.clone(),
            s => s.split(' ').next().unwrap_or(s).to_owned(),
        },
        "source:Version" => source_version(pkg),
        "Package" => pkg.name.clone(),
        _ => pkg
            .para
            .as_ref()
            .and_then(|p| p.get(name))
            .unwrap_or("")
            .to_owned(),
    }
}

/// `Source: name (version)` gives the source version, else it is the binary's.
fn source_version(pkg: &Pkg) -> String {
    let source = pkg.field("Source");
    match (source.find('('), source.rfind(')')) {
        (Some(open), Some(close)) if open < close => source[open + 1..close].trim().to_owned(),
        _ => pkg.version().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: dpkg
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 1.21.22
Pre-Depends: libc6 (>= 2.34), tar (>= 1.28-1)
Description: Debian package management system
 This package provides the low-level infrastructure.

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u14
Breaks: libc6-amd64 (<< 2.36)
Description: GNU C Library: Shared libraries

Package: tar
Status: install ok unpacked
Architecture: amd64
Version: 1.34+dfsg-1.2+deb12u1
Description: GNU version of the tar archiving utility

Package: gone
Status: deinstall ok config-files
Architecture: all
Version: 1:2.0-1
Description: removed, configuration kept
";

    fn db() -> Db {
        let paras = control::parse_paragraphs(STATUS, "status").unwrap();
        Db::from_paragraphs(ADMIN_DIR, paras)
    }

    #[test]
    fn the_table_holds_mentioned_names_sorted() {
        let db = db();
        let names: Vec<&str> = db.pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["dpkg", "gone", "libc6", "libc6-amd64", "tar"]);
        assert_eq!(db.native_arch(), Some("amd64"));
        let listed: Vec<&str> = db.listed().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(listed, ["dpkg", "gone", "libc6", "tar"]);
    }

    #[test]
    fn abbreviations_and_names_as_dpkg_shows_them() {
        let db = db();
        let abbrev: Vec<String> = db.pkgs.iter().map(Pkg::abbrev).collect();
        assert_eq!(abbrev, ["ii ", "rc ", "ii ", "un ", "iU "]);
        let libc = db.find("libc6:amd64").next().unwrap();
        assert_eq!(libc.nonambig_name(Some("amd64")), "libc6:amd64");
        assert_eq!(db.find("libc6:arm64").count(), 0);
        assert_eq!(
            db.info_path(libc, "list"),
            "/var/lib/dpkg/info/libc6:amd64.list"
        );
    }

    #[test]
    fn list_has_dpkgs_layout() {
        let db = db();
        let patterns = ["libc*".to_owned(), "nosuch".to_owned()];
        let (pkgs, misses) = db.matching(&patterns);
        assert_eq!(misses, ["nosuch"]);
        let expected = "\
Desired=Unknown/Install/Remove/Purge/Hold
| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend
|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)
||/ Name           Version         Architecture Description
+++-==============-===============-============-=================================
ii  libc6:amd64    2.36-9+deb12u14 amd64        GNU C Library: Shared libraries
un  libc6-amd64    <none>          <none>       (no description available)
";
        assert_eq!(list(&pkgs, db.native_arch()), expected);
        assert_eq!(list(&[], None), "");
    }

    #[test]
    fn showformat_fields_widths_and_escapes() {
        let db = db();
        let nodes =
            parse_format("${db:Status-Abbrev}|${Package;-7}|${Version;8}|${binary:Package}\\n")
                .unwrap();
        let libc = db.find("libc6").next().unwrap();
        assert_eq!(
            render(&nodes, libc, Some("amd64")),
            "ii |libc6  |2.36-9+d|libc6:amd64\n"
        );
        let gone = db.find("gone").next().unwrap();
        let nodes = parse_format("${source:Package} ${source:Version}\\t${Missing;3}.").unwrap();
        assert_eq!(render(&nodes, gone, None), "gone 1:2.0-1\t   .");
        assert!(parse_format("${Package").is_err());
        assert!(parse_format("${Package;x}").is_err());
        assert!(parse_format("").is_err());
    }
}
