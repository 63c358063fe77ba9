//! BuildKit's build checks (lint warnings), with BuildKit's rule names, messages and
//! configuration (`# check=` directive and comments, `BUILDKIT_DOCKERFILE_CHECK`).
//!
//! [`crate::parse`] runs every check it can decide from the Dockerfile alone. Three need
//! what only the build knows, and the engine runs them through this module's functions
//! with that knowledge: UndefinedVar for stages on an image ([`undefined_vars`], given
//! the image's environment), CopyIgnoredFile ([`copy_ignored_files`], given the
//! `.dockerignore` matcher) and InvalidBaseImagePlatform ([`base_image_platform`]).

mod config;
mod rule;

use std::collections::{BTreeMap, BTreeSet};

pub use config::CheckConfig;
pub use rule::Rule;

use crate::args::AUTOMATIC_ARGS;
use crate::error::Span;
use crate::instruction::{Instruction, ShellOrExec};
use crate::suggest::search;
use crate::syntax::RawNode;
use crate::{Dockerfile, Stage, Step, expand};

/// A lint finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: Rule,
    /// BuildKit's detail text.
    pub message: String,
    pub span: Span,
    /// The stage whose dispatch reports it ([`Rule::per_stage`] rules); `None` for
    /// checks of the whole file.
    pub stage: Option<usize>,
}

impl Warning {
    /// BuildKit's one-line form, as a build prints it: `Rule: detail (line N)`.
    pub fn short(&self) -> String {
        format!(
            "{}: {} (line {})",
            self.rule.name(),
            self.message,
            self.span.start_line
        )
    }
}

/// What the lints need from the raw syntax (casing as written) and the instruction.
pub(crate) struct NodeInfo {
    keyword: String,
    span: Span,
    empty_continuation: Option<usize>,
    /// FROM only: the `AS` keyword and stage name as written.
    from_as: Option<(String, String)>,
    stage: Option<usize>,
    /// BuildKit's `PrevComment` of the instruction.
    comments: Vec<String>,
    /// FROM with a name and ARG: the instruction and the names it defines, whose
    /// description comment InvalidDefinitionDescription checks.
    defines: Option<(&'static str, Vec<String>)>,
}

impl NodeInfo {
    pub(crate) fn new(n: &RawNode, stage: Option<usize>, defines: Option<Defines>) -> NodeInfo {
        let from_as = if n.name() == "from" {
            let a: Vec<&str> = n.rest.split_whitespace().collect();
            match a.as_slice() {
                [_, kw, name] => Some((kw.to_string(), name.to_string())),
                _ => None,
            }
        } else {
            None
        };
        NodeInfo {
            keyword: n.keyword.clone(),
            span: n.span,
            empty_continuation: n.empty_continuation,
            from_as,
            stage,
            comments: n.comments.clone(),
            defines,
        }
    }
}

/// An instruction name and the names it defines (see [`NodeInfo`]).
pub(crate) type Defines = (&'static str, Vec<String>);

/// The names a FROM or ARG defines, for InvalidDefinitionDescription.
pub(crate) fn defines(stage: Option<&Stage>, step: Option<&Step>) -> Option<Defines> {
    if let Some(name) = stage.and_then(|s| s.name.clone()) {
        return Some(("FROM", vec![name]));
    }
    match step.map(|s| &s.instruction) {
        Some(Instruction::Arg(d)) => Some(("ARG", d.iter().map(|d| d.name.clone()).collect())),
        _ => None,
    }
}

/// `# check=` comments above instructions, by the instruction's first line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LocalChecks(BTreeMap<usize, CheckConfig>);

impl LocalChecks {
    pub(crate) fn new(nodes: &[NodeInfo]) -> LocalChecks {
        LocalChecks(
            nodes
                .iter()
                .filter_map(|n| Some((n.span.start_line, CheckConfig::from_comments(&n.comments)?)))
                .collect(),
        )
    }

    /// Whether `w` is reported under the file's configuration `file`.
    pub(crate) fn keep(&self, file: &CheckConfig, w: &Warning) -> bool {
        match self.0.get(&w.span.start_line) {
            Some(local) if w.rule.local() => file.merged(local).enabled(w.rule),
            _ => file.enabled(w.rule),
        }
    }
}

struct Out {
    list: Vec<Warning>,
    /// The stage being checked, recorded in each warning.
    stage: Option<usize>,
}

impl Out {
    fn new() -> Out {
        Out {
            list: Vec::new(),
            stage: None,
        }
    }

    fn add(&mut self, rule: Rule, span: Span, message: String) {
        self.list.push(Warning {
            rule,
            message,
            span,
            stage: self.stage,
        });
    }
}

/// Every check decidable from the Dockerfile alone, unfiltered, in line order.
pub(crate) fn run(df: &Dockerfile, nodes: &[NodeInfo]) -> Vec<Warning> {
    let mut out = Out::new();
    node_lints(nodes, &mut out);
    casing_lint(nodes, &mut out);
    stage_name_lints(df, &mut out);
    let bases = stage_bases(df);
    for stage in &df.stages {
        out.stage = Some(stage.index);
        stage_lints(stage, inherited(df, &bases, stage.index), &mut out);
        platform_lints(stage, df.directives.escape, &mut out);
    }
    out.stage = None;
    undefined_arg_in_from(df, &mut out);
    invalid_default_arg_in_from(df, &mut out);
    for stage in &df.stages {
        if static_env_root(df, &bases, stage.index) {
            out.list
                .extend(undefined_vars_in(df, &bases, stage.index, &[]));
        }
    }
    sorted(out.list)
}

fn sorted(mut w: Vec<Warning>) -> Vec<Warning> {
    w.sort_by_key(|w| (w.span.start_line, w.rule));
    w
}

/// The warnings BuildKit has reported when an instruction fails to parse: those of the
/// instructions before it, and empty continuation lines anywhere (its line parser has
/// read the whole file by then).
pub(crate) fn before_error(parsed: &[NodeInfo], rest: &[RawNode]) -> Vec<Warning> {
    let mut out = Out::new();
    node_lints(parsed, &mut out);
    for n in rest {
        if let Some(line) = n.empty_continuation {
            empty_continuation(line, &mut out);
        }
    }
    sorted(out.list)
}

fn empty_continuation(line: usize, out: &mut Out) {
    out.add(
        Rule::NoEmptyContinuation,
        Span::line(line),
        "Empty continuation line".into(),
    );
}

/// Checks BuildKit makes as it parses each instruction.
fn node_lints(nodes: &[NodeInfo], out: &mut Out) {
    for n in nodes {
        out.stage = n.stage;
        if let Some(line) = n.empty_continuation {
            empty_continuation(line, out);
        }
        if n.keyword.eq_ignore_ascii_case("maintainer") {
            out.add(
                Rule::MaintainerDeprecated,
                n.span,
                "Maintainer instruction is deprecated in favor of using label".into(),
            );
        }
        if let Some((as_kw, name)) = &n.from_as {
            from_as_lints(n, as_kw, name, out);
        }
        if let Some((instruction, names)) = &n.defines {
            definition_description(n, instruction, names, out);
        }
    }
    out.stage = None;
}

fn is_lower(s: &str) -> bool {
    s == s.to_lowercase()
}

fn is_upper(s: &str) -> bool {
    s == s.to_uppercase()
}

fn from_as_lints(n: &NodeInfo, as_kw: &str, name: &str, out: &mut Out) {
    if !is_lower(name) {
        out.add(
            Rule::StageNameCasing,
            n.span,
            format!("Stage name '{name}' should be lowercase"),
        );
    }
    // A FROM of mixed case is ConsistentInstructionCasing's business only.
    let (from_lower, from_upper) = (is_lower(&n.keyword), is_upper(&n.keyword));
    if (from_lower && !is_lower(as_kw)) || (from_upper && !from_lower && !is_upper(as_kw)) {
        out.add(
            Rule::FromAsCasing,
            n.span,
            format!(
                "'{as_kw}' and '{}' keywords' casing do not match",
                n.keyword
            ),
        );
    }
}

/// InvalidDefinitionDescription: the comment right above a named FROM or an ARG must
/// start with the name it describes.
fn definition_description(n: &NodeInfo, instruction: &str, names: &[String], out: &mut Out) {
    let Some(last) = n.comments.last() else {
        return;
    };
    let first_word = last.split(' ').next().unwrap_or("");
    if names.is_empty() || names.iter().any(|k| k == first_word) {
        return;
    }
    let example = match names {
        [one] => one.as_str(),
        _ => "<arg_key>",
    };
    out.add(
        Rule::InvalidDefinitionDescription,
        n.span,
        format!("Comment for {instruction} should follow the format: `# {example} <description>`"),
    );
}

/// ConsistentInstructionCasing: every instruction keyword in the majority's case.
fn casing_lint(nodes: &[NodeInfo], out: &mut Out) {
    let lower = nodes.iter().filter(|n| is_lower(&n.keyword)).count();
    let upper = nodes
        .iter()
        .filter(|n| is_upper(&n.keyword) && !is_lower(&n.keyword))
        .count();
    let (majority_lower, want) = if lower > upper {
        (true, "lowercase")
    } else {
        (false, "uppercase")
    };
    for n in nodes {
        let consistent = if majority_lower {
            is_lower(&n.keyword)
        } else {
            is_upper(&n.keyword)
        };
        if !consistent {
            out.add(
                Rule::ConsistentInstructionCasing,
                n.span,
                format!(
                    "Command '{}' should match the case of the command majority ({want})",
                    n.keyword
                ),
            );
        }
    }
}

fn stage_name_lints(df: &Dockerfile, out: &mut Out) {
    let mut seen = BTreeSet::new();
    for s in &df.stages {
        let Some(name) = &s.name else { continue };
        if matches!(name.as_str(), "scratch" | "context") {
            out.add(
                Rule::ReservedStageName,
                s.span,
                format!("Stage name should not use the same name as reserved stage {name:?}"),
            );
        }
        if !seen.insert(name.clone()) {
            out.add(
                Rule::DuplicateStageName,
                s.span,
                format!("Duplicate stage name {name:?}, stage names should be unique"),
            );
        }
    }
}

/// BuildKit's secret-name rule: an `_`-separated word of the name (any case) is a secret
/// word, and no word says the value is not the secret itself (`PUBLIC_KEY`,
/// `PASSWORD_FILE`, `AUTH_MODULE_VERSION`).
fn looks_secret(name: &str) -> bool {
    const SECRET: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOWED: &[&str] = &["public", "file", "version"];
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower.split('_').collect();
    words.iter().any(|w| SECRET.contains(w)) && !words.iter().any(|w| ALLOWED.contains(w))
}

/// SecretsUsedInArgOrEnv, for an ARG or ENV of a stage (BuildKit checks ARGs as a stage
/// dispatches them, so ARGs before the first FROM are not checked).
fn secrets_lint(step: &Step, out: &mut Out) {
    let names: Vec<(&str, &str)> = match &step.instruction {
        Instruction::Arg(d) => d.iter().map(|d| ("ARG", d.name.as_str())).collect(),
        Instruction::Env { vars, .. } => vars.iter().map(|(k, _)| ("ENV", k.as_str())).collect(),
        _ => return,
    };
    for (kind, name) in names {
        if looks_secret(name) {
            out.add(
                Rule::SecretsUsedInArgOrEnv,
                step.span,
                format!("Do not use ARG or ENV instructions for sensitive data ({kind} {name:?})"),
            );
        }
    }
}

/// What a stage inherits from its base stages.
#[derive(Default)]
struct Inherited {
    workdir: bool,
    shell: bool,
}

fn inherited(df: &Dockerfile, bases: &[Option<usize>], stage: usize) -> Inherited {
    let mut i = Inherited::default();
    for a in ancestors(bases, stage).unwrap_or_default() {
        for s in &df.stages[a].steps {
            match s.instruction {
                Instruction::Workdir(_) => i.workdir = true,
                Instruction::Shell(_) => i.shell = true,
                _ => {}
            }
        }
    }
    i
}

fn platform_lints(stage: &Stage, escape: char, out: &mut Out) {
    let Some(p) = &stage.platform else { return };
    if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
        out.add(
            Rule::RedundantTargetPlatform,
            stage.span,
            format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior"),
        );
    }
    // A constant platform pins the stage to one architecture; BuildKit accepts it when the
    // stage name says which (`FROM --platform=linux/arm64 x AS build-arm64`).
    let constant = expand::expand_tracked(p, escape, &|_| Some(String::new()))
        .is_ok_and(|(r, _)| r == *p && !p.contains('$'));
    if let (true, Ok(plat)) = (constant, crate::args::Platform::parse(p)) {
        let name = stage.name.as_deref().unwrap_or("");
        if !name.contains(&plat.os) && !name.contains(&plat.arch) {
            out.add(
                Rule::FromPlatformFlagConstDisallowed,
                stage.span,
                format!("FROM --platform flag should not use constant value \"{p}\""),
            );
        }
    }
}

fn stage_lints(stage: &Stage, inherited: Inherited, out: &mut Out) {
    let mut custom_shell = inherited.shell;
    let mut workdir_set = inherited.workdir;
    let mut last: BTreeMap<&str, Span> = BTreeMap::new();
    for step in &stage.steps {
        secrets_lint(step, out);
        let ins = &step.instruction;
        match ins {
            Instruction::Shell(_) => custom_shell = true,
            Instruction::Cmd(ShellOrExec::Shell(_))
            | Instruction::Entrypoint(ShellOrExec::Shell(_))
                if !custom_shell =>
            {
                out.add(
                    Rule::JsonArgsRecommended,
                    step.span,
                    format!(
                        "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                        ins.name()
                    ),
                );
            }
            Instruction::Workdir(p) => {
                if !workdir_set && !p.starts_with('$') && !is_abs(p) {
                    out.add(
                        Rule::WorkdirRelativePath,
                        step.span,
                        format!("Relative workdir {p:?} can have unexpected results if the base image changes"),
                    );
                }
                workdir_set = true;
            }
            Instruction::Env { legacy: true, .. } | Instruction::Label { legacy: true, .. } => {
                let n = ins.name();
                out.add(
                    Rule::LegacyKeyValueFormat,
                    step.span,
                    format!("\"{n} key=value\" should be used instead of legacy \"{n} key value\" format"),
                );
            }
            Instruction::Expose(ports) => {
                for p in ports {
                    if p.contains(':') {
                        out.add(
                            Rule::ExposeInvalidFormat,
                            step.span,
                            format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{p}'"),
                        );
                    }
                    if let Some((_, proto)) = p.split_once('/')
                        && proto != proto.to_ascii_lowercase()
                    {
                        out.add(
                            Rule::ExposeProtoCasing,
                            step.span,
                            format!(
                                "Defined protocol '{p}' in EXPOSE instruction should be lowercase"
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
        if matches!(
            ins,
            Instruction::Cmd(_) | Instruction::Entrypoint(_) | Instruction::Healthcheck(_)
        ) && let Some(prev) = last.insert(ins.name(), step.span)
        {
            out.add(
                Rule::MultipleInstructionsDisallowed,
                prev,
                format!(
                    "Multiple {} instructions should not be used in the same stage because only the last one will be used",
                    ins.name()
                ),
            );
        }
    }
}

fn is_abs(p: &str) -> bool {
    let b = p.as_bytes();
    p.starts_with('/')
        || p.starts_with('\\')
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && (b[2] == b'\\' || b[2] == b'/'))
}

/// For each stage, the stage its FROM names (BuildKit resolves names anywhere in the file).
fn stage_bases(df: &Dockerfile) -> Vec<Option<usize>> {
    let mut by_name = BTreeMap::new();
    for s in &df.stages {
        if let Some(n) = &s.name {
            by_name.entry(n.as_str()).or_insert(s.index);
        }
    }
    df.stages
        .iter()
        .map(|s| {
            let base = s.base.to_ascii_lowercase();
            by_name
                .get(base.as_str())
                .copied()
                .filter(|&i| i != s.index)
        })
        .collect()
}

/// The chain of base stages of `stage`, nearest first; `None` if the chain has a cycle.
fn ancestors(bases: &[Option<usize>], stage: usize) -> Option<Vec<usize>> {
    let mut seen = vec![false; bases.len()];
    seen[stage] = true;
    let mut chain = Vec::new();
    let mut cur = stage;
    while let Some(b) = bases[cur] {
        if std::mem::replace(&mut seen[b], true) {
            return None;
        }
        chain.push(b);
        cur = b;
    }
    Some(chain)
}

/// True when the whole environment of the stage is visible in the Dockerfile (the chain of
/// bases ends in `scratch`), so UndefinedVar can be decided without the base image config.
fn static_env_root(df: &Dockerfile, bases: &[Option<usize>], stage: usize) -> bool {
    match ancestors(bases, stage) {
        Some(chain) => {
            let root = chain.last().copied().unwrap_or(stage);
            df.stages[root].base.eq_ignore_ascii_case("scratch")
        }
        None => false,
    }
}

/// InvalidDefaultArgInFrom: with no `--build-arg`, the global ARG defaults must give a
/// valid image reference in every FROM (`ARG TAG` + `FROM alpine:$TAG` gives `alpine:`).
fn invalid_default_arg_in_from(df: &Dockerfile, out: &mut Out) {
    let mut vars: BTreeMap<String, String> = AUTOMATIC_ARGS
        .iter()
        .map(|a| (a.to_string(), String::new()))
        .collect();
    for step in &df.global_args {
        let Instruction::Arg(decls) = &step.instruction else {
            continue;
        };
        for d in decls {
            if let Some(def) = &d.default {
                let Ok(v) = expand::expand(def, df.directives.escape, &|n| vars.get(n).cloned())
                else {
                    return;
                };
                vars.insert(d.name.clone(), v);
            }
        }
    }
    let bases = stage_bases(df);
    for stage in &df.stages {
        if !stage.base.contains('$') || bases[stage.index].is_some() {
            continue;
        }
        let Ok(name) = expand::expand(&stage.base, df.directives.escape, &|n| vars.get(n).cloned())
        else {
            continue;
        };
        let is_stage = df.stages[..stage.index]
            .iter()
            .any(|s| s.name.as_deref() == Some(name.as_str()));
        if !is_stage && !name.eq_ignore_ascii_case("scratch") && !valid_reference(&name) {
            out.add(
                Rule::InvalidDefaultArgInFrom,
                stage.span,
                format!(
                    "Default value for ARG {} results in empty or invalid base image name",
                    stage.base
                ),
            );
        }
    }
}

/// The docker reference grammar: `[domain[:port]/]path[:tag][@alg:hex]`, path components
/// lowercase alphanumerics joined by `.`, `_`, `__` or `-`.
fn valid_reference(r: &str) -> bool {
    let (rest, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return false;
        };
        if alg.is_empty() || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok_start = t
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok_start
            || t.len() > 128
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return false;
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let domain = parts.remove(0);
        let host = domain.split(':').next().unwrap_or("");
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        {
            return false;
        }
    }
    parts.iter().all(|p| {
        let b = p.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    })
}

fn undefined_arg_in_from(df: &Dockerfile, out: &mut Out) {
    let globals: BTreeSet<&str> = df
        .global_args
        .iter()
        .flat_map(|s| match &s.instruction {
            Instruction::Arg(d) => d.iter().map(|d| d.name.as_str()).collect(),
            _ => Vec::new(),
        })
        .chain(AUTOMATIC_ARGS.iter().copied())
        .collect();
    let lookup = |n: &str| globals.contains(n).then(String::new);
    for stage in &df.stages {
        for word in std::iter::once(&stage.base).chain(stage.platform.as_ref()) {
            let Ok((_, unmatched)) = expand::expand_tracked(word, df.directives.escape, &lookup)
            else {
                continue;
            };
            for name in unmatched {
                let hint =
                    crate::suggest::hint(search(&name, globals.iter().copied(), true).as_deref());
                out.add(
                    Rule::UndefinedArgInFrom,
                    stage.span,
                    format!("FROM argument '{name}' is not declared{hint}"),
                );
            }
        }
    }
}

/// UndefinedVar for one stage (filtered by the Dockerfile's check configuration), given
/// the names the root base image's config defines (`PATH`, ...; for `FROM <stage>`
/// chains, the image at the root of the chain). [`crate::parse`] runs this for stages
/// rooted in `scratch`; the build engine calls it for other stages once it knows the
/// base image config.
pub fn undefined_vars(df: &Dockerfile, stage: usize, image_env: &[&str]) -> Vec<Warning> {
    if stage >= df.stages.len() {
        return Vec::new();
    }
    df.checked(undefined_vars_in(df, &stage_bases(df), stage, image_env))
}

fn undefined_vars_in(
    df: &Dockerfile,
    bases: &[Option<usize>],
    stage: usize,
    image_env: &[&str],
) -> Vec<Warning> {
    let mut known: BTreeSet<String> = image_env.iter().map(|s| s.to_string()).collect();
    // BuildKit gives every stage a default PATH.
    known.insert("PATH".into());
    for &ancestor in ancestors(bases, stage).unwrap_or_default().iter().rev() {
        for step in &df.stages[ancestor].steps {
            match &step.instruction {
                Instruction::Env { vars, .. } => known.extend(vars.iter().map(|(k, _)| k.clone())),
                // BuildKit carries a base stage's ARGs into stages built on it.
                Instruction::Arg(d) => known.extend(d.iter().map(|d| d.name.clone())),
                _ => {}
            }
        }
    }
    let mut out = Out::new();
    out.stage = Some(stage);
    let escape = df.directives.escape;
    for step in &df.stages[stage].steps {
        let lookup = |n: &str| known.contains(n).then(String::new);
        let mut unmatched = Vec::new();
        let ins = match &step.instruction {
            Instruction::Onbuild { .. } => None,
            other => other.expand_tracked(escape, &lookup, &mut unmatched).ok(),
        };
        for name in unmatched {
            let hint = search(&name, known.iter().map(String::as_str), true)
                .map(|m| format!(" (did you mean ${m}?)"))
                .unwrap_or_default();
            out.add(
                Rule::UndefinedVar,
                step.span,
                format!("Usage of undefined variable '${name}'{hint}"),
            );
        }
        match ins {
            Some(Instruction::Arg(d)) => known.extend(d.into_iter().map(|d| d.name)),
            Some(Instruction::Env { vars, .. }) => known.extend(vars.into_iter().map(|v| v.0)),
            _ => {}
        }
    }
    out.list
}

/// What CopyIgnoredFile needs of the `.dockerignore` rules (the engine owns them).
pub trait IgnoreRules {
    /// Whether any rule is a `!` exception: BuildKit then skips the check, since an
    /// excluded directory may have an included file below it.
    fn has_exceptions(&self) -> bool;
    /// Whether a rule (`*`, `**`, `**/*`) excludes every entry of the context root.
    fn excludes_root(&self) -> bool;
    /// Whether the context path `rel` (no leading `/`) or a parent of it is excluded.
    fn is_excluded(&self, rel: &str) -> bool;
}

/// CopyIgnoredFile for the build-context sources of COPY and ADD in `stages` (filtered by
/// the Dockerfile's check configuration). Sources holding variables are skipped: their
/// value is only known when the stage runs.
pub fn copy_ignored_files(
    df: &Dockerfile,
    stages: &[usize],
    ignore: &dyn IgnoreRules,
) -> Vec<Warning> {
    if ignore.has_exceptions() {
        return Vec::new();
    }
    let mut out = Out::new();
    for &i in stages {
        let Some(stage) = df.stages.get(i) else {
            continue;
        };
        out.stage = Some(i);
        for step in &stage.steps {
            let (verb, copy) = match &step.instruction {
                Instruction::Copy(c) if c.from.is_none() => ("Copy", c),
                Instruction::Add(c) => ("Add", c),
                _ => continue,
            };
            for src in copy.sources.iter().filter(|s| is_context_path(s)) {
                let cleaned = clean_path(src);
                let excluded = match cleaned.as_str() {
                    "." | "/" => ignore.excludes_root(),
                    other => ignore.is_excluded(other.trim_start_matches('/')),
                };
                if excluded {
                    out.add(
                        Rule::CopyIgnoredFile,
                        step.span,
                        format!("Attempting to {verb} file {cleaned:?} that is excluded by .dockerignore"),
                    );
                }
            }
        }
    }
    df.checked(out.list)
}

/// A source read from the build context (not a URL, a git repository or a variable).
fn is_context_path(src: &str) -> bool {
    const REMOTE: &[&str] = &["http://", "https://", "git@", "git://"];
    !src.contains('$') && !REMOTE.iter().any(|p| src.starts_with(p))
}

/// Go's `filepath.Clean` for slash paths: `.` and empty parts dropped, `..` applied.
fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            other => parts.push(other),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// InvalidBaseImagePlatform: the image a stage's FROM resolved to is for another
/// platform than the build's (filtered by the Dockerfile's check configuration).
/// Platforms are compared by OS and architecture, as BuildKit does.
pub fn base_image_platform(
    df: &Dockerfile,
    stage: usize,
    image: &str,
    expected: &crate::args::Platform,
    actual: &crate::args::Platform,
) -> Vec<Warning> {
    let Some(s) = df.stages.get(stage) else {
        return Vec::new();
    };
    if expected.os == actual.os && expected.arch == actual.arch {
        return Vec::new();
    }
    let mut out = Out::new();
    out.stage = Some(stage);
    out.add(
        Rule::InvalidBaseImagePlatform,
        s.span,
        format!(
            "Base image {image} was pulled with platform {:?}, expected {:?} for current build",
            actual.to_string(),
            expected.to_string()
        ),
    );
    df.checked(out.list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(src: &str) -> Vec<Rule> {
        crate::parse(src, "Dockerfile")
            .unwrap()
            .warnings
            .iter()
            .map(|w| w.rule)
            .collect()
    }

    fn fires(rule: Rule, src: &str) -> bool {
        rules(src).contains(&rule)
    }

    #[test]
    fn secrets_used_in_arg_or_env() {
        assert!(fires(Rule::SecretsUsedInArgOrEnv, "FROM a\nARG API_KEY\n"));
        // BuildKit checks ARGs as a stage dispatches them: not before the first FROM.
        assert!(!fires(
            Rule::SecretsUsedInArgOrEnv,
            "ARG github_token=x\nFROM a\n"
        ));
        // BuildKit's own cases: a word saying the value is a file, a version or public.
        let df = crate::parse(
            "FROM a\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\n\
             ENV apikey=bar sunflower=foo\nENV git_key=\nENV PUBLIC_KEY=\nARG public_token\n\
             ARG SECRET_PASSPHRASE_FILE\nENV password_file=bar secret_File=baz\n\
             ARG AUTH_MODULE_VERSION\n",
            "D",
        )
        .unwrap();
        let named: Vec<&str> = df.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            named,
            [
                "Do not use ARG or ENV instructions for sensitive data (ARG \"SECRET_PASSPHRASE\")",
                "Do not use ARG or ENV instructions for sensitive data (ENV \"SUPER_Secret\")",
                "Do not use ARG or ENV instructions for sensitive data (ENV \"password\")",
                "Do not use ARG or ENV instructions for sensitive data (ENV \"secret\")",
                "Do not use ARG or ENV instructions for sensitive data (ENV \"apikey\")",
                "Do not use ARG or ENV instructions for sensitive data (ENV \"git_key\")",
            ]
        );
        assert!(fires(
            Rule::SecretsUsedInArgOrEnv,
            "FROM a\nENV DB_PASSWORD=x\n"
        ));
        assert!(!fires(
            Rule::SecretsUsedInArgOrEnv,
            "FROM a\nARG PUBLIC_KEY\nENV KEYBOARD=us\nARG MONKEY=1\n"
        ));
    }

    #[test]
    fn json_args_recommended() {
        assert!(fires(Rule::JsonArgsRecommended, "FROM a\nCMD echo hi\n"));
        assert!(fires(
            Rule::JsonArgsRecommended,
            "FROM a\nENTRYPOINT run.sh\n"
        ));
        assert!(!fires(
            Rule::JsonArgsRecommended,
            "FROM a\nCMD [\"echo\", \"hi\"]\n"
        ));
        assert!(!fires(
            Rule::JsonArgsRecommended,
            "FROM a\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\n"
        ));
        assert!(!fires(
            Rule::JsonArgsRecommended,
            "FROM a AS b\nSHELL [\"/bin/bash\", \"-c\"]\nFROM b\nCMD echo hi\n"
        ));
    }

    #[test]
    fn undefined_var() {
        assert!(fires(Rule::UndefinedVar, "FROM scratch\nWORKDIR /$NOPE\n"));
        assert!(fires(
            Rule::UndefinedVar,
            "FROM scratch\nCOPY $SRC /x\nARG SRC\n"
        ));
        assert!(!fires(
            Rule::UndefinedVar,
            "FROM scratch\nARG SRC\nCOPY $SRC /x\nENV A=1\nLABEL x=$A y=$PATH\n"
        ));
        assert!(!fires(
            Rule::UndefinedVar,
            "FROM scratch\nENV X=${MAYBE:-d}\n"
        ));
        assert!(!fires(Rule::UndefinedVar, "FROM scratch\nRUN echo $NOPE\n"));
        // The base image may define it: only decided by the engine with the image config.
        assert!(!fires(
            Rule::UndefinedVar,
            "FROM alpine\nWORKDIR /$GOPATH\n"
        ));
        assert!(fires(
            Rule::UndefinedVar,
            "FROM scratch AS b\nENV A=1\nFROM b\nWORKDIR $A/$B\n"
        ));
        let df = crate::parse("FROM alpine\nWORKDIR /$GOPATH/$X\n", "D").unwrap();
        let w = undefined_vars(&df, 0, &["GOPATH"]);
        assert_eq!(w.len(), 1);
        let skipped =
            crate::parse("# check=skip=UndefinedVar\nFROM alpine\nWORKDIR /$X\n", "D").unwrap();
        assert!(undefined_vars(&skipped, 0, &[]).is_empty());
        assert_eq!(w[0].message, "Usage of undefined variable '$X'");
        let df = crate::parse("FROM scratch\nARG VERSION=1\nLABEL v=$VERSON\n", "D").unwrap();
        assert_eq!(
            df.warnings[0].message,
            "Usage of undefined variable '$VERSON' (did you mean $VERSION?)"
        );
        assert!(!fires(
            Rule::UndefinedVar,
            "FROM scratch AS b\nARG A\nFROM b\nWORKDIR /$A\n"
        ));
    }

    #[test]
    fn invalid_default_arg_in_from() {
        assert!(fires(
            Rule::InvalidDefaultArgInFrom,
            "ARG TAG\nFROM alpine:$TAG\n"
        ));
        assert!(fires(Rule::InvalidDefaultArgInFrom, "ARG IMG\nFROM $IMG\n"));
        assert!(fires(
            Rule::InvalidDefaultArgInFrom,
            "ARG R=Upper\nFROM $R/x\n"
        ));
        assert!(!fires(
            Rule::InvalidDefaultArgInFrom,
            "ARG TAG=3.19\nFROM alpine:$TAG\n"
        ));
        assert!(!fires(
            Rule::InvalidDefaultArgInFrom,
            "ARG TAG=1\nFROM alpine:${TAG:-x}\n"
        ));
        assert!(!fires(
            Rule::InvalidDefaultArgInFrom,
            "FROM alpine AS b\nARG X\nFROM b$X\n"
        ));
        assert!(!fires(
            Rule::InvalidDefaultArgInFrom,
            "ARG R=registry.example:5000/team\nFROM $R/app:v1@sha256:0123456789abcdef0123456789abcdef\n"
        ));
    }

    #[test]
    fn references() {
        for ok in [
            "alpine",
            "alpine:3.19",
            "docker.io/library/alpine:latest",
            "localhost:5000/a/b",
            "a_b/c__d-e.f",
        ] {
            assert!(valid_reference(ok), "{ok}");
        }
        for bad in [
            "",
            "alpine:",
            "Alpine",
            ":tag",
            "a//b",
            "a/-b",
            "a@sha256:zz",
            "a:t@",
        ] {
            assert!(!valid_reference(bad), "{bad}");
        }
    }

    #[test]
    fn undefined_arg_in_from_rule() {
        assert!(fires(Rule::UndefinedArgInFrom, "FROM alpine:$VERSION\n"));
        assert!(fires(
            Rule::UndefinedArgInFrom,
            "FROM --platform=$PLAT alpine\n"
        ));
        assert!(!fires(
            Rule::UndefinedArgInFrom,
            "ARG VERSION=3\nFROM alpine:$VERSION\n"
        ));
        assert!(!fires(
            Rule::UndefinedArgInFrom,
            "FROM --platform=$BUILDPLATFORM alpine\n"
        ));
    }

    #[test]
    fn stage_name_rules() {
        assert!(fires(
            Rule::DuplicateStageName,
            "FROM a AS x\nFROM b AS x\n"
        ));
        assert!(!fires(
            Rule::DuplicateStageName,
            "FROM a AS x\nFROM b AS y\n"
        ));
        assert!(fires(Rule::StageNameCasing, "FROM a AS Build\n"));
        assert!(!fires(Rule::StageNameCasing, "FROM a AS build\n"));
        assert!(fires(Rule::FromAsCasing, "FROM a as b\n"));
        assert!(fires(Rule::FromAsCasing, "from a AS b\n"));
        assert!(!fires(Rule::FromAsCasing, "FROM a AS b\nfrom c as d\n"));
        assert!(fires(Rule::ReservedStageName, "FROM a AS scratch\n"));
        assert!(!fires(Rule::ReservedStageName, "FROM a AS scratchy\n"));
    }

    #[test]
    fn consistent_instruction_casing() {
        let df = crate::parse("FROM a\nrun x\nRUN y\n", "D").unwrap();
        let w: Vec<_> = df
            .warnings
            .iter()
            .filter(|w| w.rule == Rule::ConsistentInstructionCasing)
            .collect();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].span.start_line, 2);
        assert!(w[0].message.contains("uppercase"));
        assert!(fires(
            Rule::ConsistentInstructionCasing,
            "from a\nrun x\nRun y\n"
        ));
        assert!(!fires(Rule::ConsistentInstructionCasing, "from a\nrun x\n"));
    }

    #[test]
    fn workdir_relative_path() {
        assert!(fires(Rule::WorkdirRelativePath, "FROM a\nWORKDIR app\n"));
        assert!(!fires(
            Rule::WorkdirRelativePath,
            "FROM a\nWORKDIR /app\nWORKDIR sub\n"
        ));
        assert!(!fires(
            Rule::WorkdirRelativePath,
            "FROM a AS b\nWORKDIR /app\nFROM b\nWORKDIR sub\n"
        ));
        assert!(!fires(
            Rule::WorkdirRelativePath,
            "FROM a\nWORKDIR C:\\\\app\n"
        ));
    }

    #[test]
    fn maintainer_and_legacy() {
        assert!(fires(Rule::MaintainerDeprecated, "FROM a\nMAINTAINER me\n"));
        assert!(!fires(
            Rule::MaintainerDeprecated,
            "FROM a\nLABEL maintainer=me\n"
        ));
        assert!(fires(Rule::LegacyKeyValueFormat, "FROM a\nENV A b\n"));
        assert!(fires(Rule::LegacyKeyValueFormat, "FROM a\nLABEL a b\n"));
        assert!(!fires(Rule::LegacyKeyValueFormat, "FROM a\nENV A=b\n"));
    }

    #[test]
    fn multiple_instructions() {
        let df = crate::parse(
            "FROM a\nCMD [\"a\"]\nCMD [\"b\"]\nFROM b\nCMD [\"c\"]\n",
            "D",
        )
        .unwrap();
        let w: Vec<_> = df
            .warnings
            .iter()
            .filter(|w| w.rule == Rule::MultipleInstructionsDisallowed)
            .collect();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].span.start_line, 2);
        assert!(fires(
            Rule::MultipleInstructionsDisallowed,
            "FROM a\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n"
        ));
        assert!(!fires(
            Rule::MultipleInstructionsDisallowed,
            "FROM a\nCMD [\"a\"]\nENTRYPOINT [\"b\"]\n"
        ));
    }

    #[test]
    fn misc_rules() {
        assert!(fires(Rule::NoEmptyContinuation, "FROM a\nRUN a \\\n\n b\n"));
        assert!(!fires(Rule::NoEmptyContinuation, "FROM a\nRUN a \\\n b\n"));
        assert!(fires(
            Rule::RedundantTargetPlatform,
            "FROM --platform=$TARGETPLATFORM a\n"
        ));
        assert!(fires(
            Rule::FromPlatformFlagConstDisallowed,
            "FROM --platform=linux/amd64 a AS build\n"
        ));
        assert!(!fires(
            Rule::FromPlatformFlagConstDisallowed,
            "FROM --platform=linux/amd64 a AS build-amd64\n"
        ));
        assert!(!fires(
            Rule::FromPlatformFlagConstDisallowed,
            "FROM --platform=$BUILDPLATFORM a\n"
        ));
        assert!(!fires(
            Rule::RedundantTargetPlatform,
            "FROM --platform=$BUILDPLATFORM a\n"
        ));
        assert!(fires(Rule::ExposeProtoCasing, "FROM a\nEXPOSE 80/TCP\n"));
        assert!(!fires(
            Rule::ExposeProtoCasing,
            "FROM a\nEXPOSE 80/tcp 81\n"
        ));
    }

    #[test]
    fn rule_names_are_buildkits() {
        let names: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), Rule::ALL.len());
        for required in [
            "SecretsUsedInArgOrEnv",
            "JSONArgsRecommended",
            "UndefinedVar",
            "UndefinedArgInFrom",
            "DuplicateStageName",
            "StageNameCasing",
            "FromAsCasing",
            "ConsistentInstructionCasing",
            "WorkdirRelativePath",
            "MaintainerDeprecated",
            "LegacyKeyValueFormat",
            "MultipleInstructionsDisallowed",
        ] {
            assert!(names.contains(required), "{required}");
        }
    }

    #[test]
    fn check_directive() {
        assert!(rules("# check=skip=all\nFROM a\nMAINTAINER x\n").is_empty());
        let r = rules(
            "# check=skip=MaintainerDeprecated,JSONArgsRecommended\nFROM a\nMAINTAINER x\nCMD x\nENV a b\n",
        );
        assert_eq!(r, [Rule::LegacyKeyValueFormat]);
        let e = crate::parse("# check=error=true\nFROM a\nMAINTAINER x\n", "D").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .starts_with("lint violation found for rules: MaintainerDeprecated\n"),
            "{e}"
        );
        assert!(crate::parse("# check=error=true\nFROM a\nLABEL a=b\n", "D").is_ok());
        assert!(crate::parse("# check=bogus=1\nFROM a\n", "D").is_err());
        // A build-arg style override replaces the directive.
        let src = "# check=error=true\nFROM a\nMAINTAINER x\nCMD x\nMAINTAINER y\n";
        let e = crate::parse(src, "D").unwrap_err();
        assert_eq!(
            *e.kind,
            crate::ErrorKind::Lint(vec![
                "MaintainerDeprecated".into(),
                "JSONArgsRecommended".into()
            ])
        );
        let ok = crate::parse_with(src, "D", Some("skip=all")).unwrap();
        assert!(ok.warnings.is_empty());
        // The build argument replaces the directive: its error=true applies alone.
        let e = crate::parse_with(
            "#check=skip=all\nFROM scratch as base\ncopy x .\n",
            "D",
            Some("skip=ConsistentInstructionCasing;error=true"),
        )
        .unwrap_err();
        assert_eq!(*e.kind, crate::ErrorKind::Lint(vec!["FromAsCasing".into()]));
        assert_eq!(e.line, 2);
        let bad = crate::parse_with("FROM a\n", "D", Some("skip")).unwrap_err();
        assert_eq!(
            bad.kind.to_string(),
            "failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: invalid check option \"skip\""
        );
    }
}
