//! Relationship fields: `Depends`, `Pre-Depends`, `Recommends`, `Provides`, `Conflicts`,
//! `Breaks`, `Replaces`... A field is a comma-separated list of [`Dependency`], each a
//! `|`-separated list of alternative [`Relation`]s:
//! `name[:archqual] [(op version)] [[arch ...]] [<profile ...>]...`.

use std::fmt;

use crate::version::Version;
use crate::{Error, Result};

/// A version comparison as written in a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<<`
    Less,
    /// `<=` (and the obsolete `<`, which dpkg reads as `<=`)
    LessEqual,
    /// `=`
    Equal,
    /// `>=` (and the obsolete `>`)
    GreaterEqual,
    /// `>>`
    Greater,
}

/// One architecture in a `[...]` restriction list (`!` negates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchTerm {
    pub negated: bool,
    pub arch: String,
}

/// One term of a `<...>` build-profile list (`!` negates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileTerm {
    pub negated: bool,
    pub profile: String,
}

/// One alternative: a package name with optional qualifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    /// `:any`, `:native` or an architecture name.
    pub arch_qualifier: Option<String>,
    pub version: Option<(Op, Version)>,
    /// Empty: every architecture.
    pub architectures: Vec<ArchTerm>,
    /// Each inner list is one `<...>` group (all terms must hold); groups are alternatives.
    pub profiles: Vec<Vec<ProfileTerm>>,
}

/// A list of alternatives (`a | b (>= 1)`): satisfied when any is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub alternatives: Vec<Relation>,
}

impl Op {
    /// Whether `candidate OP wanted` holds.
    pub fn holds(self, candidate: &Version, wanted: &Version) -> bool {
        let order = candidate.cmp(wanted);
        match self {
            Op::Less => order.is_lt(),
            Op::LessEqual => order.is_le(),
            Op::Equal => order.is_eq(),
            Op::GreaterEqual => order.is_ge(),
            Op::Greater => order.is_gt(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Less => "<<",
            Op::LessEqual => "<=",
            Op::Equal => "=",
            Op::GreaterEqual => ">=",
            Op::Greater => ">>",
        }
    }
}

impl Relation {
    /// Whether `version` satisfies this relation's version constraint (true without one).
    pub fn accepts(&self, version: &Version) -> bool {
        self.version
            .as_ref()
            .is_none_or(|(op, wanted)| op.holds(version, wanted))
    }
}

/// Parses a relationship field. An empty field is an empty list.
pub fn parse_relations(text: &str) -> Result<Vec<Dependency>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|dep| {
            let alternatives = dep
                .split('|')
                .map(parse_relation)
                .collect::<Result<Vec<_>>>()?;
            Ok(Dependency { alternatives })
        })
        .collect()
}

/// Parses one alternative (`libc6:any (>= 2.36) [amd64] <!nocheck>`).
pub fn parse_relation(text: &str) -> Result<Relation> {
    let bad = |reason| Error::InvalidRelation {
        text: text.trim().to_string(),
        reason,
    };
    let mut rest = text.trim_start();
    let end = rest
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(rest.len());
    let (full_name, tail) = rest.split_at(end);
    rest = tail.trim_start();
    let (name, arch_qualifier) = match full_name.split_once(':') {
        Some((n, q)) if !q.is_empty() => (n, Some(q.to_string())),
        Some(_) => return Err(bad("empty architecture qualifier")),
        None => (full_name, None),
    };
    check_name(name).map_err(bad)?;
    let mut relation = Relation {
        name: name.to_string(),
        arch_qualifier,
        version: None,
        architectures: Vec::new(),
        profiles: Vec::new(),
    };
    if let Some(inner) = rest.strip_prefix('(') {
        let (constraint, tail) = inner.split_once(')').ok_or_else(|| bad("unclosed '('"))?;
        relation.version = Some(parse_constraint(constraint).map_err(bad)?);
        rest = tail.trim_start();
    }
    if let Some(inner) = rest.strip_prefix('[') {
        let (list, tail) = inner.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        relation.architectures = terms(list)
            .map_err(bad)?
            .into_iter()
            .map(arch_term)
            .collect();
        rest = tail.trim_start();
    }
    while let Some(inner) = rest.strip_prefix('<') {
        let (list, tail) = inner.split_once('>').ok_or_else(|| bad("unclosed '<'"))?;
        relation.profiles.push(
            terms(list)
                .map_err(bad)?
                .into_iter()
                .map(profile_term)
                .collect(),
        );
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        return Err(bad("unexpected text after the package name"));
    }
    Ok(relation)
}

/// dpkg's package name rule: starts alphanumeric, then alphanumerics and `-+._`.
fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err("empty package name"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            Err("package name must start with an alphanumeric")
        }
        _ if chars.all(|c| c.is_ascii_alphanumeric() || "-+._".contains(c)) => Ok(()),
        _ => Err("invalid character in package name"),
    }
}

fn parse_constraint(text: &str) -> std::result::Result<(Op, Version), &'static str> {
    let text = text.trim();
    let op_len = text
        .find(|c: char| !"<>=".contains(c))
        .unwrap_or(text.len());
    let (op, version) = text.split_at(op_len);
    let op = match op {
        "<<" => Op::Less,
        "<=" | "<" => Op::LessEqual,
        "=" => Op::Equal,
        ">=" | ">" => Op::GreaterEqual,
        ">>" => Op::Greater,
        "" => return Err("missing version relation operator"),
        _ => return Err("bad version relation operator"),
    };
    let version = version.trim();
    if version.is_empty() {
        return Err("missing version in version constraint");
    }
    let version = version
        .parse()
        .map_err(|_| "invalid version in version constraint")?;
    Ok((op, version))
}

/// The blank-separated terms of a `[...]` or `<...>` list, `!` split off.
fn terms(list: &str) -> std::result::Result<Vec<(bool, String)>, &'static str> {
    let terms: Vec<_> = list
        .split_whitespace()
        .map(|t| match t.strip_prefix('!') {
            Some(t) => (true, t.to_string()),
            None => (false, t.to_string()),
        })
        .collect();
    if terms.is_empty() || terms.iter().any(|(_, t)| t.is_empty()) {
        return Err("empty restriction list");
    }
    Ok(terms)
}

fn arch_term((negated, arch): (bool, String)) -> ArchTerm {
    ArchTerm { negated, arch }
}

fn profile_term((negated, profile): (bool, String)) -> ProfileTerm {
    ProfileTerm { negated, profile }
}

impl fmt::Display for Relation {
    /// The normalised form dpkg writes (`name:qual (op version) [archs] <profiles>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({} {v})", op.as_str())?;
        }
        if !self.architectures.is_empty() {
            let list: Vec<_> = self
                .architectures
                .iter()
                .map(|a| negate(a.negated, &a.arch))
                .collect();
            write!(f, " [{}]", list.join(" "))?;
        }
        for group in &self.profiles {
            let list: Vec<_> = group
                .iter()
                .map(|p| negate(p.negated, &p.profile))
                .collect();
            write!(f, " <{}>", list.join(" "))?;
        }
        Ok(())
    }
}

fn negate(negated: bool, term: &str) -> String {
    if negated {
        format!("!{term}")
    } else {
        term.to_string()
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alt) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alt}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parses_alternatives_versions_and_qualifiers() {
        let deps = parse_relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any (<< 3.12~),perl:native",
        )
        .unwrap();
        assert_eq!(deps.len(), 4);
        assert_eq!(deps[0].alternatives[0].name, "libc6");
        assert_eq!(
            deps[0].alternatives[0].version,
            Some((Op::GreaterEqual, v("2.34")))
        );
        assert_eq!(deps[1].alternatives.len(), 2);
        assert_eq!(deps[1].alternatives[1].name, "debconf-2.0");
        let py = &deps[2].alternatives[0];
        assert_eq!(py.arch_qualifier.as_deref(), Some("any"));
        assert_eq!(py.version, Some((Op::Less, v("3.12~"))));
        assert_eq!(
            deps[3].alternatives[0].arch_qualifier.as_deref(),
            Some("native")
        );
    }

    #[test]
    fn parses_arch_and_profile_restrictions() {
        let r = parse_relation("foo [amd64 !i386] <!nocheck cross> <stage1>").unwrap();
        assert_eq!(r.architectures.len(), 2);
        assert!(r.architectures[1].negated && r.architectures[1].arch == "i386");
        assert_eq!(r.profiles.len(), 2);
        assert!(r.profiles[0][0].negated && r.profiles[0][0].profile == "nocheck");
        assert_eq!(r.profiles[1][0].profile, "stage1");
        assert_eq!(r.to_string(), "foo [amd64 !i386] <!nocheck cross> <stage1>");
    }

    #[test]
    fn normalises_as_dpkg_writes() {
        let deps = parse_relations("a(>=1)|b ( << 2 ) ,c (<1), d (> 2)").unwrap();
        let text: Vec<_> = deps.iter().map(|d| d.to_string()).collect();
        assert_eq!(text.join(", "), "a (>= 1) | b (<< 2), c (<= 1), d (>= 2)");
        assert!(parse_relations("  ").unwrap().is_empty());
    }

    #[test]
    fn version_constraints_hold_as_dpkg_says() {
        let r = parse_relation("x (>= 1.0~rc1)").unwrap();
        assert!(r.accepts(&v("1.0")) && r.accepts(&v("1.0~rc1")) && !r.accepts(&v("1.0~beta")));
        let r = parse_relation("x (<< 2)").unwrap();
        assert!(r.accepts(&v("1.9")) && !r.accepts(&v("2")));
        let r = parse_relation("x (= 1.0)").unwrap();
        assert!(r.accepts(&v("1.00")) && !r.accepts(&v("1.0-1")));
        assert!(parse_relation("x").unwrap().accepts(&v("0")));
    }

    #[test]
    fn malformed_relations_are_errors() {
        for (text, reason) in [
            ("a, , b", "empty package name"),
            ("-a", "must start with an alphanumeric"),
            ("a$b", "invalid character"),
            ("a (>= 1", "unclosed '('"),
            ("a (1.0)", "missing version relation operator"),
            ("a (>=)", "missing version"),
            ("a (=> 1)", "bad version relation operator"),
            ("a [amd64", "unclosed '['"),
            ("a []", "empty restriction list"),
            ("a <!>", "empty restriction list"),
            ("a b", "unexpected text"),
            ("a:", "empty architecture qualifier"),
        ] {
            let err = parse_relations(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }
}
