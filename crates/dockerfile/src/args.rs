//! ARG scoping with BuildKit's rules.
//!
//! - Global ARGs (before the first FROM) are visible in FROM lines only. A stage sees a
//!   global ARG only after redeclaring it (`ARG NAME` without a default takes the global
//!   value).
//! - `--build-arg NAME=v` overrides the default of a declared ARG; undeclared build args are
//!   ignored, except the predefined proxy ARGs, which reach RUN steps without a declaration.
//! - The platform ARGs and `TARGETSTAGE` ([`AUTOMATIC_ARGS`]) and `SOURCE_DATE_EPOCH` (when
//!   given as a build arg) are set automatically in the global scope and visible in a stage once declared.
//! - ARG values (with a value) and ENV both set the stage environment used for expansion
//!   and RUN steps; the later one wins (so `ENV X=...` after `ARG X` overrides it, as the
//!   Dockerfile reference says). Only ENV reaches the image config.

use std::collections::{BTreeMap, HashMap};

use crate::expand::{self, ExpandError};
use crate::{Dockerfile, Instruction};

/// Set automatically from the target and build platforms.
pub const AUTOMATIC_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETSTAGE",
];

/// Usable without an ARG declaration (RUN environment only), and kept out of the image
/// history and cache keys by BuildKit. A build arg of either spelling (any case, as
/// BuildKit compares them) gives a RUN step both: see [`StageScope::run_env`].
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An OCI platform `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_ascii_lowercase(),
                arch: arch.to_ascii_lowercase(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.to_ascii_lowercase(),
                arch: arch.to_ascii_lowercase(),
                variant: Some(v.to_ascii_lowercase()),
            }),
            _ => Err(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            )),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The build's inputs to ARG resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArgs {
    /// `--build-arg` values.
    pub values: BTreeMap<String, String>,
    pub target_platform: Platform,
    pub build_platform: Platform,
    /// `--target`, the value of `TARGETSTAGE`; `None`: the last stage's name, or
    /// `default` when it has none (as BuildKit).
    pub target_stage: Option<String>,
}

impl BuildArgs {
    /// Values of the automatic ARGs (and `SOURCE_DATE_EPOCH` when given).
    pub fn automatic(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for (prefix, p) in [
            ("TARGET", &self.target_platform),
            ("BUILD", &self.build_platform),
        ] {
            m.insert(format!("{prefix}PLATFORM"), p.to_string());
            m.insert(format!("{prefix}OS"), p.os.clone());
            m.insert(format!("{prefix}ARCH"), p.arch.clone());
            m.insert(
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            );
        }
        if let Some(v) = self.values.get("SOURCE_DATE_EPOCH") {
            m.insert("SOURCE_DATE_EPOCH".into(), v.clone());
        }
        m
    }
}

/// Values visible in FROM lines: automatic ARGs plus the global ARGs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalScope {
    vars: BTreeMap<String, String>,
}

/// A global ARG whose default does not expand (`ARG A=${B:?missing}`), at its line.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct GlobalArgError {
    pub line: usize,
    #[source]
    pub source: ExpandError,
}

impl GlobalScope {
    /// Evaluates the global ARGs in order (each default expanded with those before it).
    pub fn new(df: &Dockerfile, args: &BuildArgs) -> Result<GlobalScope, GlobalArgError> {
        let mut vars = args.automatic();
        let target = args.target_stage.clone().or_else(|| {
            df.stages
                .last()
                .and_then(|s| s.name.clone())
                .or_else(|| Some("default".to_owned()))
        });
        vars.extend(target.map(|t| ("TARGETSTAGE".to_owned(), t)));
        for step in &df.global_args {
            let Instruction::Arg(decls) = &step.instruction else {
                continue;
            };
            for d in decls {
                let value = match (args.values.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(def)) => Some(
                        expand::expand(def, df.directives.escape, &|n| vars.get(n).cloned())
                            .map_err(|source| GlobalArgError {
                                line: step.span.start_line,
                                source,
                            })?,
                    ),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    vars.insert(d.name.clone(), v);
                }
            }
        }
        Ok(GlobalScope { vars })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The names set in this scope, for "did you mean" hints.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// Expands a FROM word (base name or `--platform`) with the global scope.
    pub fn expand(&self, word: &str, escape: char) -> Result<String, ExpandError> {
        expand::expand(word, escape, &|n| self.vars.get(n).cloned())
    }
}

/// What a stage built `FROM` another stage inherits from it besides the image, as in
/// BuildKit: the ARGs it declared, with their values, in expansion, RUN's environment
/// and RUN's history (`RUN |1 V=1 …`), as if declared again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inherited {
    declared: Vec<String>,
    args: BTreeMap<String, String>,
    state: Vec<(String, String)>,
}

/// The variables of one stage while its instructions are dispatched in order.
#[derive(Debug, Clone)]
pub struct StageScope<'a> {
    build: &'a BuildArgs,
    global: &'a GlobalScope,
    escape: char,
    /// Declared ARG names (with or without a value), for UndefinedVar.
    declared: Vec<String>,
    /// ARG values of this stage, by name.
    args: BTreeMap<String, String>,
    /// The environment for expansion and RUN: base env, then ARG and ENV in order.
    state: Vars,
    /// The image config environment: base env, then ENV.
    env: Vars,
}

/// The most a stage's variables (names and values of its environment, ARGs and ENVs
/// alike) may hold together: the image config limit (`kiln_oci`'s `MAX_CONFIG_SIZE`), as
/// every ENV lands in the config's `Env` and every ARG in the history of each RUN. One
/// value is bounded by [`expand::MAX_EXPANSION_BYTES`], but without this `ENV b1=$a b2=$a
/// ...` with a 8 MiB `a` took 6 GB for 400 names.
pub const MAX_STAGE_VARIABLE_BYTES: usize = 16 << 20;

/// Variables in the order they were first set, a redefinition replacing the value in
/// place (BuildKit's `addEnv`), with an index by name: finding a name by scanning the
/// list made a stage of 10,000 ENV lines take time quadratic in their number.
#[derive(Debug, Clone)]
struct Vars {
    list: Vec<(String, String)>,
    /// Position in `list` of each name's first entry (a base image may repeat a name;
    /// the first one is the one read and replaced, as before).
    index: HashMap<String, usize>,
    /// Bytes of the names and values in `list`.
    bytes: usize,
}

impl Vars {
    fn new(list: Vec<(String, String)>) -> Vars {
        let mut index = HashMap::with_capacity(list.len());
        for (i, (k, _)) in list.iter().enumerate() {
            index.entry(k.clone()).or_insert(i);
        }
        let bytes = list.iter().map(|(k, v)| k.len() + v.len()).sum();
        Vars { list, index, bytes }
    }

    fn get(&self, name: &str) -> Option<&str> {
        let i = *self.index.get(name)?;
        self.list.get(i).map(|(_, v)| v.as_str())
    }

    /// Sets `name`, unless the variables would then hold over
    /// [`MAX_STAGE_VARIABLE_BYTES`].
    fn set(&mut self, name: &str, value: &str) -> Result<(), ExpandError> {
        let i = self.index.get(name).copied();
        let old = i
            .and_then(|i| self.list.get(i))
            .map_or(0, |(k, v)| k.len() + v.len());
        let bytes = self.bytes - old + name.len() + value.len();
        if bytes > MAX_STAGE_VARIABLE_BYTES {
            return Err(ExpandError::VariablesTooLarge);
        }
        self.bytes = bytes;
        match i.and_then(|i| self.list.get_mut(i)) {
            Some((_, v)) => value.clone_into(v),
            None => {
                self.index.insert(name.to_owned(), self.list.len());
                self.list.push((name.to_owned(), value.to_owned()));
            }
        }
        Ok(())
    }
}

impl<'a> StageScope<'a> {
    /// `base_env` is the base's environment (image config `Env`, or the parent stage's
    /// [`StageScope::env`] for `FROM <stage>`).
    pub fn new(
        build: &'a BuildArgs,
        global: &'a GlobalScope,
        escape: char,
        base_env: Vec<(String, String)>,
    ) -> StageScope<'a> {
        StageScope {
            build,
            global,
            escape,
            declared: Vec::new(),
            args: BTreeMap::new(),
            state: Vars::new(base_env.clone()),
            env: Vars::new(base_env),
        }
    }

    /// [`StageScope::new`] for a stage built on a stage whose scope ended as `parent`
    /// (an image or scratch base inherits nothing: pass [`Inherited::default`]).
    pub fn from_parent(
        build: &'a BuildArgs,
        global: &'a GlobalScope,
        escape: char,
        base_env: Vec<(String, String)>,
        parent: &Inherited,
    ) -> StageScope<'a> {
        let mut scope = StageScope::new(build, global, escape, base_env);
        if parent != &Inherited::default() {
            scope.declared = parent.declared.clone();
            scope.args = parent.args.clone();
            scope.state = Vars::new(parent.state.clone());
        }
        scope
    }

    /// What a stage built `FROM` this one inherits, as this scope is now.
    pub fn inherited(&self) -> Inherited {
        Inherited {
            declared: self.declared.clone(),
            args: self.args.clone(),
            state: self.state.list.clone(),
        }
    }

    /// The value used for expansion at this point of the stage.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.state.get(name).map(str::to_owned)
    }

    /// Expands `ins` with the current scope (see [`Instruction::expand`]) and applies its
    /// effect on the scope (ARG declares, ENV sets). Returns the expanded instruction; for
    /// ARG, each default is replaced by the value the ARG actually got (`None` if unset).
    pub fn dispatch(&mut self, ins: &Instruction) -> Result<Instruction, ExpandError> {
        if let Instruction::Arg(decls) = ins {
            let mut out = Vec::with_capacity(decls.len());
            for d in decls {
                let value = self.arg_value(d)?;
                if let Some(v) = &value {
                    self.state.set(&d.name, v)?;
                    self.args.insert(d.name.clone(), v.clone());
                }
                self.declared.push(d.name.clone());
                out.push(crate::ArgDecl {
                    name: d.name.clone(),
                    default: value,
                });
            }
            return Ok(Instruction::Arg(out));
        }
        let expanded = ins.expand(self.escape, &|n| self.lookup(n))?;
        if let Instruction::Env { vars, .. } = &expanded {
            for (k, v) in vars {
                self.state.set(k, v)?;
                self.env.set(k, v)?;
            }
        }
        Ok(expanded)
    }

    /// BuildKit's order: `--build-arg`, else the default expanded now, else the global
    /// value (global ARGs and the automatic platform ARGs).
    fn arg_value(&self, d: &crate::ArgDecl) -> Result<Option<String>, ExpandError> {
        if let Some(v) = self.build.values.get(&d.name) {
            return Ok(Some(v.clone()));
        }
        match &d.default {
            Some(def) => Ok(Some(expand::expand(def, self.escape, &|n| self.lookup(n))?)),
            None => Ok(self.global.get(&d.name).map(str::to_string)),
        }
    }

    /// The image config environment (ENV only, no ARGs).
    pub fn env(&self) -> &[(String, String)] {
        &self.env.list
    }

    /// ARG values of this stage, by name (BuildKit lists them in RUN history and cache
    /// keys).
    pub fn args(&self) -> Vec<(String, String)> {
        self.args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The ARGs BuildKit lists before a RUN's command in its history (`RUN |2 a=1 b=
    /// ...`): each name this stage declared, once, in the order first declared, with its
    /// value now (an ENV of the same name wins; empty when unset).
    pub fn history_args(&self) -> Vec<(String, String)> {
        let mut seen = std::collections::HashSet::new();
        self.declared
            .iter()
            .filter(|name| seen.insert(name.as_str()))
            .map(|name| (name.clone(), self.lookup(name).unwrap_or_default()))
            .collect()
    }

    /// Names declared by ARG in this stage so far, with or without a value.
    pub fn declared_args(&self) -> &[String] {
        &self.declared
    }

    /// Environment of a RUN step: the stage environment, plus proxy build args not
    /// otherwise set.
    /// A proxy build arg of any spelling (`HTTP_PROXY`, `http_proxy`, `Http_Proxy`) gives
    /// both the upper- and the lower-case name, as BuildKit's proxy environment does.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.state.list.clone();
        for p in PROXY_ARGS {
            if let Some(v) = self.proxy_value(p)
                && self.state.get(p).is_none()
            {
                out.push((p.to_string(), v.to_owned()));
            }
        }
        out
    }

    /// The build arg that sets proxy variable `name`: the exact spelling first, else any
    /// other case of it.
    fn proxy_value(&self, name: &str) -> Option<&str> {
        let exact = self.build.values.get(name);
        exact
            .or_else(|| {
                let mut others = self.build.values.iter();
                others
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(values: &[(&str, &str)]) -> BuildArgs {
        BuildArgs {
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            target_platform: Platform::parse("linux/arm64/v8").unwrap(),
            build_platform: Platform::parse("linux/amd64").unwrap(),
            target_stage: None,
        }
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
        let a = build(&[]).automatic();
        assert_eq!(a["TARGETPLATFORM"], "linux/arm64/v8");
        assert_eq!(a["TARGETVARIANT"], "v8");
        assert_eq!(a["BUILDARCH"], "amd64");
        assert_eq!(a["BUILDVARIANT"], "");
        assert!(!a.contains_key("SOURCE_DATE_EPOCH"));
        assert_eq!(
            build(&[("SOURCE_DATE_EPOCH", "10")]).automatic()["SOURCE_DATE_EPOCH"],
            "10"
        );
    }

    #[test]
    fn global_scope_order_and_overrides() {
        let df = crate::parse("ARG A=1 B=${A}2\nARG C\nARG D\nFROM x:$B\n", "D").unwrap();
        let g = GlobalScope::new(&df, &build(&[("D", "dd")])).unwrap();
        assert_eq!(g.get("B"), Some("12"));
        assert_eq!(g.get("C"), None);
        assert_eq!(g.get("D"), Some("dd"));
        assert_eq!(g.get("TARGETARCH"), Some("arm64"));
        assert_eq!(g.expand(&df.stages[0].base, '\\').unwrap(), "x:12");
        let g = GlobalScope::new(&df, &build(&[("A", "9")])).unwrap();
        assert_eq!(g.get("B"), Some("92"));
    }

    #[test]
    fn a_stage_s_variables_are_bounded_in_total() {
        // Each value is well under the bound of one expansion; together they are over
        // the stage's bound, whether set by ENV or ARG.
        for kind in ["ENV", "ARG"] {
            let quarter = "a".repeat(MAX_STAGE_VARIABLE_BYTES / 4);
            let df =
                format!("FROM x\n{kind} A={quarter}\n{kind} B=$A\n{kind} C=$A\n{kind} D=$A$A\n");
            let df = crate::parse(&df, "D").unwrap();
            let b = build(&[]);
            let g = GlobalScope::new(&df, &b).unwrap();
            let mut s = StageScope::new(&b, &g, '\\', Vec::new());
            let results: Vec<_> = df.stages[0]
                .steps
                .iter()
                .map(|step| s.dispatch(&step.instruction).err())
                .collect();
            assert_eq!(
                results,
                [None, None, None, Some(ExpandError::VariablesTooLarge)],
                "{kind}"
            );
        }
    }

    #[test]
    fn stage_scope_rules() {
        let df = crate::parse(
            "ARG V=global\nARG ONLYGLOBAL=g\nFROM x\nARG V\nARG W=w1\nARG TARGETOS\nARG NOVAL\nENV W=env\nENV E=$V-$W-$ONLYGLOBAL-$TARGETOS\n",
            "D",
        )
        .unwrap();
        let b = build(&[("W", "bw"), ("HTTP_PROXY", "http://p"), ("UNDECLARED", "u")]);
        let g = GlobalScope::new(&df, &b).unwrap();
        let mut s = StageScope::new(&b, &g, '\\', vec![("PATH".into(), "/bin".into())]);
        assert_eq!(
            s.lookup("V"),
            None,
            "global ARG invisible before redeclaration"
        );
        let mut last = None;
        for step in &df.stages[0].steps {
            last = Some(s.dispatch(&step.instruction).unwrap());
        }
        assert_eq!(s.lookup("V").as_deref(), Some("global"));
        assert_eq!(
            s.lookup("W").as_deref(),
            Some("env"),
            "a later ENV overrides the ARG"
        );
        assert_eq!(s.lookup("UNDECLARED"), None);
        assert_eq!(
            last,
            Some(Instruction::Env {
                vars: vec![("E".into(), "global-env--linux".into())],
                legacy: false
            })
        );
        assert_eq!(
            s.env(),
            [
                ("PATH".into(), "/bin".into()),
                ("W".into(), "env".into()),
                ("E".into(), "global-env--linux".into())
            ]
        );
        let run = s.run_env();
        assert!(run.contains(&("V".into(), "global".into())));
        assert!(run.contains(&("HTTP_PROXY".into(), "http://p".into())));
        assert!(!run.iter().any(|(k, _)| k == "UNDECLARED" || k == "NOVAL"));
        assert!(
            s.args().contains(&("W".into(), "bw".into())),
            "build-arg overrides default"
        );
        assert!(
            s.args().contains(&("W".into(), "bw".into())),
            "build-arg overrides default"
        );
        assert!(s.declared_args().contains(&"NOVAL".to_string()));
        // An ARG after an ENV of the same name sets the stage environment, not the image's.
        s.dispatch(&Instruction::Arg(vec![crate::ArgDecl {
            name: "E".into(),
            default: Some("late".into()),
        }]))
        .unwrap();
        assert_eq!(s.lookup("E").as_deref(), Some("late"));
        assert!(s.env().contains(&("E".into(), "global-env--linux".into())));
    }

    #[test]
    fn targetstage_is_the_target_or_the_last_stage_or_default() {
        let stage_sees = |text: &str, target: Option<&str>| {
            let df = crate::parse(text, "D").unwrap();
            let b = BuildArgs {
                target_stage: target.map(str::to_owned),
                ..build(&[])
            };
            let g = GlobalScope::new(&df, &b).unwrap();
            let mut s = StageScope::new(&b, &g, '\\', Vec::new());
            for step in &df.stages[0].steps {
                s.dispatch(&step.instruction).unwrap();
            }
            s.lookup("TARGETSTAGE")
        };
        let named = "FROM x AS first\nARG TARGETSTAGE\nFROM x AS Last\n";
        assert_eq!(stage_sees(named, None).as_deref(), Some("last"));
        assert_eq!(stage_sees(named, Some("first")).as_deref(), Some("first"));
        let anonymous = "FROM x\nARG TARGETSTAGE\n";
        assert_eq!(stage_sees(anonymous, None).as_deref(), Some("default"));
        // Like the platform ARGs, only a declaration makes it visible.
        assert_eq!(stage_sees("FROM x AS a\nRUN true\n", None), None);
    }

    #[test]
    fn history_args_are_the_declared_names_once_with_their_values_now() {
        let df = crate::parse("FROM x\nARG B=1 A\nARG B=2\nENV A=env\nARG C\n", "D").unwrap();
        let b = build(&[("C", "given")]);
        let g = GlobalScope::new(&df, &b).unwrap();
        let mut s = StageScope::new(&b, &g, '\\', Vec::new());
        assert!(s.history_args().is_empty());
        for step in &df.stages[0].steps {
            s.dispatch(&step.instruction).unwrap();
        }
        assert_eq!(
            s.history_args(),
            pairs(&[("B", "2"), ("A", "env"), ("C", "given")])
        );
    }

    #[test]
    fn a_child_stage_inherits_its_parents_args() {
        let df = crate::parse("FROM x AS p\nARG V=1\nENV E=e\nFROM p\nARG W=2\n", "D").unwrap();
        let b = build(&[]);
        let g = GlobalScope::new(&df, &b).unwrap();
        let base = pairs(&[("PATH", "/bin")]);
        let mut parent = StageScope::new(&b, &g, '\\', base.clone());
        for step in &df.stages[0].steps {
            parent.dispatch(&step.instruction).unwrap();
        }
        let image_env = pairs(&[("PATH", "/bin"), ("E", "e")]);
        let mut child = StageScope::from_parent(&b, &g, '\\', image_env, &parent.inherited());
        child.dispatch(&df.stages[1].steps[0].instruction).unwrap();
        assert_eq!(child.lookup("V").as_deref(), Some("1"));
        assert_eq!(child.history_args(), pairs(&[("V", "1"), ("W", "2")]));
        assert!(child.run_env().contains(&("V".to_owned(), "1".to_owned())));
        // ARGs never reach the image's Env.
        assert!(!child.env().iter().any(|(k, _)| k == "V"));
        // A base that is not a stage inherits nothing.
        let fresh = StageScope::from_parent(&b, &g, '\\', base, &Inherited::default());
        assert_eq!(fresh.lookup("V"), None);
    }

    #[test]
    fn a_proxy_build_arg_of_either_case_sets_both_names_for_run() {
        let df = crate::parse("FROM x\nENV no_proxy=mine\n", "D").unwrap();
        let b = build(&[("http_proxy", "http://p"), ("No_Proxy", "given")]);
        let g = GlobalScope::new(&df, &b).unwrap();
        let mut s = StageScope::new(&b, &g, '\\', Vec::new());
        s.dispatch(&df.stages[0].steps[0].instruction).unwrap();
        let run = s.run_env();
        let get = |k: &str| run.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("http_proxy"), Some("http://p"));
        assert_eq!(get("HTTP_PROXY"), Some("http://p"));
        assert_eq!(get("NO_PROXY"), Some("given"));
        // A name the stage set itself is left as the stage set it.
        assert_eq!(get("no_proxy"), Some("mine"));
        assert_eq!(run.iter().filter(|(n, _)| n == "no_proxy").count(), 1);
        // Proxies are for RUN only: they never enter expansion or the image.
        assert_eq!(s.lookup("HTTP_PROXY"), None);
        assert_eq!(get("HTTPS_PROXY"), None);
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn redefinitions_keep_their_place_and_words_see_the_scope_before_the_line() {
        let df = crate::parse(
            "FROM x\nENV A=1 B=$A\nENV PATH=/x:$PATH\nARG B=argb\nENV C=$B\nARG A\nENV A=2\n",
            "D",
        )
        .unwrap();
        let b = build(&[]);
        let g = GlobalScope::new(&df, &b).unwrap();
        let base = pairs(&[("PATH", "/bin"), ("A", "base"), ("A", "dup")]);
        let mut s = StageScope::new(&b, &g, '\\', base);
        for step in &df.stages[0].steps {
            s.dispatch(&step.instruction).unwrap();
        }
        // `B=$A` expands with the A from before the line; redefined names stay where
        // they were first set; an ARG shadows ENV for expansion and RUN only.
        let image = [("PATH", "/x:/bin"), ("A", "2"), ("A", "dup")];
        assert_eq!(
            s.env(),
            pairs(&[image[0], image[1], image[2], ("B", "base"), ("C", "argb")])
        );
        assert_eq!(
            s.run_env(),
            pairs(&[image[0], image[1], image[2], ("B", "argb"), ("C", "argb")])
        );
        assert_eq!(s.lookup("A").as_deref(), Some("2"));
        assert_eq!(s.lookup("B").as_deref(), Some("argb"));
    }
}
