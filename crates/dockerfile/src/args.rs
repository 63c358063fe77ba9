//! ARG scoping with BuildKit's rules.
//!
//! - Global ARGs (before the first FROM) are visible in FROM lines only. A stage sees a
//!   global ARG only after redeclaring it (`ARG NAME` without a default takes the global
//!   value).
//! - `--build-arg NAME=v` overrides the default of a declared ARG; undeclared build args are
//!   ignored, except the predefined proxy ARGs, which reach RUN steps without a declaration.
//! - The platform ARGs ([`AUTOMATIC_ARGS`]) and `SOURCE_DATE_EPOCH` (when given as a build
//!   arg) are set automatically in the global scope and visible in a stage once declared.
//! - ENV always wins over an ARG of the same name.

use std::collections::BTreeMap;

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
];

/// Usable without an ARG declaration (RUN environment only), and kept out of the image
/// history and cache keys by BuildKit.
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

impl GlobalScope {
    /// Evaluates the global ARGs in order (each default expanded with those before it).
    pub fn new(df: &Dockerfile, args: &BuildArgs) -> Result<GlobalScope, ExpandError> {
        let mut vars = args.automatic();
        for step in &df.global_args {
            let Instruction::Arg(decls) = &step.instruction else {
                continue;
            };
            let lookup = |n: &str| vars.get(n).cloned();
            let mut resolved = Vec::new();
            for d in decls {
                let name = expand::expand(&d.name, df.directives.escape, &lookup)?;
                let value = match args.values.get(&name) {
                    Some(v) => Some(v.clone()),
                    None => match &d.default {
                        Some(def) => Some(expand::expand(def, df.directives.escape, &lookup)?),
                        None => vars.get(&name).cloned(),
                    },
                };
                resolved.push((name, value));
            }
            for (name, value) in resolved {
                match value {
                    Some(v) => vars.insert(name, v),
                    None => vars.remove(&name),
                };
            }
        }
        Ok(GlobalScope { vars })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Expands a FROM word (base name or `--platform`) with the global scope.
    pub fn expand(&self, word: &str, escape: char) -> Result<String, ExpandError> {
        expand::expand(word, escape, &|n| self.vars.get(n).cloned())
    }
}

/// The variables of one stage while its instructions are dispatched in order.
#[derive(Debug, Clone)]
pub struct StageScope<'a> {
    build: &'a BuildArgs,
    global: &'a GlobalScope,
    escape: char,
    /// Declared ARGs; `None` = declared without any value.
    args: BTreeMap<String, Option<String>>,
    /// Image ENV then ENV instructions, in order, later entries replacing earlier ones.
    env: Vec<(String, String)>,
}

impl<'a> StageScope<'a> {
    /// `image_env` is the base's environment (image config `Env`, or the parent stage's ENV).
    pub fn new(
        build: &'a BuildArgs,
        global: &'a GlobalScope,
        escape: char,
        image_env: Vec<(String, String)>,
    ) -> StageScope<'a> {
        StageScope {
            build,
            global,
            escape,
            args: BTreeMap::new(),
            env: image_env,
        }
    }

    /// The value used for expansion: ENV first, then declared ARGs.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        self.args.get(name).cloned().flatten()
    }

    /// Expands `ins` with the current scope (see [`Instruction::expand`]) and applies its
    /// effect on the scope (ARG declares, ENV sets). Returns the expanded instruction.
    pub fn dispatch(&mut self, ins: &Instruction) -> Result<Instruction, ExpandError> {
        let expanded = ins.expand(self.escape, &|n| self.lookup(n))?;
        match &expanded {
            Instruction::Arg(decls) => {
                for d in decls {
                    let value = self
                        .build
                        .values
                        .get(&d.name)
                        .cloned()
                        .or_else(|| d.default.clone())
                        .or_else(|| self.global.get(&d.name).map(str::to_string))
                        .or_else(|| self.build.automatic().get(&d.name).cloned());
                    self.args.insert(d.name.clone(), value);
                }
            }
            Instruction::Env { vars, .. } => {
                for (k, v) in vars {
                    self.env.retain(|(ek, _)| ek != k);
                    self.env.push((k.clone(), v.clone()));
                }
            }
            _ => {}
        }
        Ok(expanded)
    }

    /// The image config environment (ENV only, no ARGs).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Declared ARGs that have a value, by name (for RUN environments and cache keys).
    pub fn args(&self) -> Vec<(String, String)> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// Environment of a RUN step: ENV, then ARGs not shadowed by ENV, then proxy build
    /// args not otherwise set.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.clone();
        for (k, v) in self.args() {
            if !out.iter().any(|(ek, _)| *ek == k) {
                out.push((k, v));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.build.values.get(*p)
                && !out.iter().any(|(ek, _)| ek == p)
            {
                out.push((p.to_string(), v.clone()));
            }
        }
        out
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
        let df = crate::parse("ARG A=1\nARG B=${A}2\nARG C\nARG D\nFROM x:$B\n", "D").unwrap();
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
        assert_eq!(s.lookup("W").as_deref(), Some("env"), "ENV wins over ARG");
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
    }
}
