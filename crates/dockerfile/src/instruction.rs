//! Typed instructions and their parsing from raw nodes (BuildKit's argument rules).

use std::time::Duration;

use crate::error::{ErrorKind, ParseError};
use crate::expand::{self, ExpandError, Lookup};
use crate::mount::{Mount, MountError, MountFlag};
use crate::syntax::{Heredoc, RawNode, Source};

/// Shell form (a string for `SHELL` + `-c`) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellOrExec {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    Sandbox,
    Insecure,
}

/// What a RUN step executes, after BuildKit's heredoc rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunProgram {
    /// Run through the stage's SHELL (`/bin/sh -c <script>`).
    Shell(String),
    Exec(Vec<String>),
    /// `RUN <<EOF` whose body starts with `#!`: BuildKit writes it to a file (mode 0755)
    /// at `/dev/pipes/<name>` and executes that.
    ScriptFile {
        name: String,
        content: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: ShellOrExec,
    pub mounts: Vec<MountFlag>,
    pub network: Option<NetworkMode>,
    pub security: Option<SecurityMode>,
    pub heredocs: Vec<Heredoc>,
}

impl Run {
    /// The program BuildKit would run: a lone `<<EOF` runs its body (or writes it to a
    /// file when it has a shebang); other heredocs are appended so the shell reads them.
    pub fn program(&self) -> RunProgram {
        let script = match &self.command {
            ShellOrExec::Exec(v) => return RunProgram::Exec(v.clone()),
            ShellOrExec::Shell(s) => s,
        };
        if self.heredocs.is_empty() {
            return RunProgram::Shell(script.clone());
        }
        let lone = crate::syntax::parse_heredoc_word(script.trim())
            .ok()
            .flatten();
        if let (Some(_), [h]) = (lone, self.heredocs.as_slice()) {
            let body = h.body();
            if body.starts_with("#!") {
                return RunProgram::ScriptFile {
                    name: h.name.clone(),
                    content: body,
                };
            }
            return RunProgram::Shell(body);
        }
        let mut full = script.clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        RunProgram::Shell(full)
    }

    /// Typed mounts with variables expanded; ssh mounts without a target get
    /// `/run/buildkit/ssh_agent.<n>`.
    pub fn resolve_mounts(
        &self,
        escape: char,
        lookup: Lookup<'_>,
    ) -> Result<Vec<Mount>, MountError> {
        let mut n = 0;
        let mut out = Vec::with_capacity(self.mounts.len());
        for f in &self.mounts {
            let mut m = f.resolve(escape, lookup)?;
            if let Mount::Ssh { target, .. } = &mut m {
                if target.is_none() {
                    *target = Some(format!("/run/buildkit/ssh_agent.{n}"));
                }
                n += 1;
            }
            out.push(m);
        }
        Ok(out)
    }
}

/// A heredoc used as a COPY/ADD source: a file named `name` with `content`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocFile {
    pub name: String,
    /// Body with `<<-` tab stripping applied (not yet variable-expanded).
    pub content: String,
    /// Whether the body is variable-expanded (unquoted delimiter).
    pub expand: bool,
}

/// COPY and ADD. Flags a form does not accept are `None`/`false` (`from` only for COPY;
/// `checksum`, `keep_git_dir`, `unpack` only for ADD; `parents` only for COPY).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    pub sources: Vec<String>,
    pub dest: String,
    pub heredocs: Vec<HeredocFile>,
    pub from: Option<String>,
    pub chown: Option<String>,
    /// As written; parse after expansion with [`Chmod::parse`].
    pub chmod: Option<String>,
    pub link: bool,
    pub exclude: Vec<String>,
    pub parents: bool,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub unpack: Option<bool>,
    /// Written in JSON (exec) form.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    Check {
        /// `CMD-SHELL` (shell form) or `CMD` (exec form).
        test: ShellOrExec,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// An instruction inside a stage (FROM starts a stage and is in [`crate::Stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run(Run),
    Copy(Copy),
    Add(Copy),
    /// `legacy` is true for the `ENV key value` form.
    Env {
        vars: Vec<(String, String)>,
        legacy: bool,
    },
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    Label {
        labels: Vec<(String, String)>,
        legacy: bool,
    },
    Expose(Vec<String>),
    Volume(Vec<String>),
    Cmd(ShellOrExec),
    Entrypoint(ShellOrExec),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger is stored parsed (validated) and as written, for the image config.
    Onbuild {
        expression: String,
        trigger: Box<Instruction>,
    },
    Maintainer(String),
}

impl Instruction {
    /// Upper-case instruction name.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Env { .. } => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Label { .. } => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild { .. } => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }

    /// Returns the instruction with BuildKit's variable expansion applied to every field that
    /// BuildKit expands: COPY/ADD sources, dest, `--chown`, `--chmod`, ADD `--checksum` and
    /// unquoted heredoc bodies (`--from` and `--exclude` are literal, as in BuildKit); ENV/LABEL keys and values; ARG
    /// defaults (use [`crate::args::StageScope::dispatch`] for ARG semantics); EXPOSE (split into words); VOLUME items; WORKDIR, USER,
    /// STOPSIGNAL. RUN (use [`Run::resolve_mounts`] for its mounts), CMD, ENTRYPOINT, SHELL,
    /// HEALTHCHECK, MAINTAINER and ONBUILD are returned unchanged.
    ///
    /// ENV with several pairs expands all of them with the environment before the
    /// instruction (`ENV a=1 b=$a` sees the old `a`), as BuildKit does.
    pub fn expand(&self, escape: char, lookup: Lookup<'_>) -> Result<Instruction, ExpandError> {
        self.expand_tracked(escape, lookup, &mut Vec::new())
    }

    pub(crate) fn expand_tracked(
        &self,
        escape: char,
        lookup: Lookup<'_>,
        unmatched: &mut Vec<String>,
    ) -> Result<Instruction, ExpandError> {
        let mut one = |w: &str| -> Result<String, ExpandError> {
            let (r, u) = expand::expand_tracked(w, escape, lookup)?;
            unmatched.extend(u);
            Ok(r)
        };
        Ok(match self {
            Instruction::Copy(c) => Instruction::Copy(expand_copy(c, &mut one, lookup)?),
            Instruction::Add(c) => Instruction::Add(expand_copy(c, &mut one, lookup)?),
            Instruction::Env { vars, legacy } => Instruction::Env {
                vars: expand_pairs(vars, &mut one)?,
                legacy: *legacy,
            },
            Instruction::Label { labels, legacy } => Instruction::Label {
                labels: expand_pairs(labels, &mut one)?,
                legacy: *legacy,
            },
            // BuildKit expands ARG defaults, never ARG names.
            Instruction::Arg(decls) => Instruction::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: d.name.clone(),
                            default: d.default.as_deref().map(&mut one).transpose()?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
            ),
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(expand::expand_words(p, escape, lookup)?);
                    one(p)?;
                }
                Instruction::Expose(out)
            }
            Instruction::Volume(v) => {
                Instruction::Volume(v.iter().map(|s| one(s)).collect::<Result<_, _>>()?)
            }
            Instruction::Workdir(s) => Instruction::Workdir(one(s)?),
            Instruction::User(s) => Instruction::User(one(s)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(one(s)?),
            other => other.clone(),
        })
    }
}

fn expand_pairs(
    pairs: &[(String, String)],
    one: &mut dyn FnMut(&str) -> Result<String, ExpandError>,
) -> Result<Vec<(String, String)>, ExpandError> {
    pairs.iter().map(|(k, v)| Ok((one(k)?, one(v)?))).collect()
}

fn expand_copy(
    c: &Copy,
    one: &mut dyn FnMut(&str) -> Result<String, ExpandError>,
    lookup: Lookup<'_>,
) -> Result<Copy, ExpandError> {
    // BuildKit expands --chown, --chmod and --checksum, not --from or --exclude.
    let mut opt = |o: &Option<String>| o.as_deref().map(&mut *one).transpose();
    let chown = opt(&c.chown)?;
    let chmod = opt(&c.chmod)?;
    let checksum = opt(&c.checksum)?;
    let heredocs = c
        .heredocs
        .iter()
        .map(|h| {
            let content = if h.expand {
                expand::expand_heredoc(&h.content, lookup)?
            } else {
                h.content.clone()
            };
            Ok(HeredocFile {
                content,
                ..h.clone()
            })
        })
        .collect::<Result<_, ExpandError>>()?;
    Ok(Copy {
        sources: c.sources.iter().map(|s| one(s)).collect::<Result<_, _>>()?,
        dest: one(&c.dest)?,
        heredocs,
        chown,
        chmod,
        checksum,
        ..c.clone()
    })
}

/// A `--chmod` value: octal (`0755`) or symbolic (`u=rwx,go=rx`, `+x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    Symbolic(Vec<SymbolicMode>),
}

/// One clause of a symbolic mode: who (bits of u=0o4700, g=0o2070, o=0o1007), op, perms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicMode {
    who: u32,
    op: char,
    perms: String,
}

impl Chmod {
    pub fn parse(s: &str) -> Result<Chmod, String> {
        // A value that starts like a number is octal or nothing, with BuildKit's message.
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            return match u32::from_str_radix(s, 8) {
                Ok(m) if m <= 0o7777 => Ok(Chmod::Octal(m)),
                _ => Err(format!(
                    "invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777"
                )),
            };
        }
        let mut clauses = Vec::new();
        for clause in s.split(',') {
            let ops = clause
                .find(['+', '-', '='])
                .ok_or_else(|| format!("invalid mode {s:?}"))?;
            let mut who = 0;
            for c in clause[..ops].chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(format!("invalid mode {s:?}")),
                };
            }
            let mut rest = &clause[ops..];
            if rest.is_empty() {
                return Err(format!("invalid mode {s:?}"));
            }
            while let Some(op) = rest.chars().next().filter(|c| matches!(c, '+' | '-' | '=')) {
                let perms_len = rest[1..]
                    .find(['+', '-', '='])
                    .map_or(rest.len() - 1, |i| i);
                let perms = &rest[1..1 + perms_len];
                if !perms.chars().all(|c| "rwxXst".contains(c)) {
                    return Err(format!("invalid mode {s:?}"));
                }
                clauses.push(SymbolicMode {
                    who,
                    op,
                    perms: perms.to_string(),
                });
                rest = &rest[1 + perms_len..];
            }
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The resulting permission bits for a file whose current mode is `mode`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Chmod::Octal(m) => return *m,
            Chmod::Symbolic(c) => c,
        };
        let mut mode = mode & 0o7777;
        for c in clauses {
            // No `who` means `a` (umask is not applied: builds must not depend on the host).
            let who = if c.who == 0 { 0o7777 } else { c.who };
            let mut bits = 0;
            for p in c.perms.chars() {
                bits |= match p {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
            }
            let bits = bits & who;
            mode = match c.op {
                '+' => mode | bits,
                '-' => mode & !bits,
                _ => (mode & !(who & 0o7777)) | bits,
            };
        }
        mode
    }
}

/// Parses a JSON array of strings (exec form). `Ok(None)` = not JSON (shell form).
pub(crate) fn parse_json_array(rest: &str) -> Result<Vec<String>, JsonError> {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Err(JsonError::NotJson);
    }
    let values: Vec<serde_json::Value> = serde_json::from_str(t).map_err(|_| JsonError::NotJson)?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonError::NotStrings),
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    NotJson,
    NotStrings,
}

/// Context for parsing one node: positions for errors.
pub(crate) struct Ctx<'a, 's> {
    pub src: &'a Source<'s>,
    pub node: &'a RawNode,
}

impl Ctx<'_, '_> {
    pub(crate) fn err_at(&self, off: usize, kind: ErrorKind) -> ParseError {
        self.src.error_in(&self.node.logical, off, kind)
    }
    pub(crate) fn err_args(&self, msg: impl Into<String>) -> ParseError {
        self.err_at(self.node.rest_off, ErrorKind::Syntax(msg.into()))
    }
    pub(crate) fn err_kw(&self, msg: impl Into<String>) -> ParseError {
        self.err_at(self.node.keyword_off, ErrorKind::Syntax(msg.into()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    Bool,
    Str,
    Strs,
}

/// Parsed flags of one instruction: name → values with offsets.
pub(crate) struct Flags {
    values: Vec<(&'static str, String, usize)>,
}

impl Flags {
    pub(crate) fn parse(
        cx: &Ctx<'_, '_>,
        spec: &[(&'static str, FlagKind)],
    ) -> Result<Flags, ParseError> {
        let mut values: Vec<(&'static str, String, usize)> = Vec::new();
        for f in &cx.node.flags {
            let body = &f.text[2..];
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(cx.err_at(
                    f.off,
                    ErrorKind::UnknownFlag {
                        instruction: cx.node.keyword.to_ascii_uppercase(),
                        flag: name.to_string(),
                        suggestion: crate::suggest::search(name, spec.iter().map(|s| s.0), true),
                    },
                ));
            };
            let bad = |message: String| {
                cx.err_at(
                    f.off,
                    ErrorKind::FlagValue {
                        flag: key.to_string(),
                        message,
                    },
                )
            };
            if kind != FlagKind::Strs && values.iter().any(|v| v.0 == key) {
                return Err(bad("duplicate flag specified".into()));
            }
            let value = match (kind, value) {
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => "true".into(),
                    "false" => "false".into(),
                    "" => return Err(bad("missing a value".into())),
                    _ => return Err(bad(format!("expecting boolean value, not: {v}"))),
                },
                (_, None) => return Err(bad("missing a value".into())),
                (_, Some(v)) => v.to_string(),
            };
            values.push((key, value, f.off));
        }
        Ok(Flags { values })
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|v| v.0 == name)
            .map(|v| v.1.clone())
    }

    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }

    pub(crate) fn all(&self, name: &str) -> Vec<(String, usize)> {
        self.values
            .iter()
            .filter(|v| v.0 == name)
            .map(|v| (v.1.clone(), v.2))
            .collect()
    }

    pub(crate) fn offset(&self, name: &str) -> Option<usize> {
        self.values.iter().find(|v| v.0 == name).map(|v| v.2)
    }
}

pub(crate) const INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// BuildKit's `parseWords`: whitespace-separated words keeping quotes and escapes.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    match chars.next() {
                        None => continue,
                        Some(n) => {
                            word.push(c);
                            word.push(n);
                            continue;
                        }
                    }
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    match chars.next() {
                        None => {
                            quote = None;
                            continue;
                        }
                        Some(n) => {
                            word.push(c);
                            word.push(n);
                            continue;
                        }
                    }
                }
                word.push(c);
            }
        }
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split(['\t', '\u{b}', '\u{c}', '\r', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn maybe_json(cx: &Ctx<'_, '_>) -> Result<ShellOrExec, ParseError> {
    match parse_json_array(&cx.node.rest) {
        Ok(v) => Ok(ShellOrExec::Exec(v)),
        Err(JsonError::NotStrings) => {
            Err(cx
                .err_args("when using JSON array syntax, arrays must be comprised of strings only"))
        }
        Err(JsonError::NotJson) => Ok(ShellOrExec::Shell(cx.node.rest.clone())),
    }
}

fn maybe_json_list(cx: &Ctx<'_, '_>) -> Result<(Vec<String>, bool), ParseError> {
    match parse_json_array(&cx.node.rest) {
        Ok(v) => Ok((v, true)),
        Err(JsonError::NotStrings) => {
            Err(cx
                .err_args("when using JSON array syntax, arrays must be comprised of strings only"))
        }
        Err(JsonError::NotJson) => Ok((split_whitespace(&cx.node.rest), false)),
    }
}

/// Parses one instruction (not FROM) from its node.
pub(crate) fn parse(cx: &Ctx<'_, '_>, escape: char) -> Result<Instruction, ParseError> {
    use FlagKind::*;
    let name = cx.node.name();
    let no_flags = |cx: &Ctx<'_, '_>| Flags::parse(cx, &[]);
    Ok(match name.as_str() {
        "run" => parse_run(cx)?,
        "copy" => Instruction::Copy(parse_copy(
            cx,
            &[
                ("from", Str),
                ("chown", Str),
                ("chmod", Str),
                ("link", Bool),
                ("parents", Bool),
                ("exclude", Strs),
            ],
        )?),
        "add" => Instruction::Add(parse_copy(
            cx,
            &[
                ("chown", Str),
                ("chmod", Str),
                ("link", Bool),
                ("exclude", Strs),
                ("checksum", Str),
                ("keep-git-dir", Bool),
                ("unpack", Bool),
            ],
        )?),
        "env" | "label" => {
            no_flags(cx)?;
            let (pairs, legacy) = parse_name_val(cx, escape)?;
            if name == "env" {
                Instruction::Env {
                    vars: pairs,
                    legacy,
                }
            } else {
                Instruction::Label {
                    labels: pairs,
                    legacy,
                }
            }
        }
        "arg" => {
            no_flags(cx)?;
            parse_arg(cx, escape)?
        }
        "workdir" | "user" | "stopsignal" | "maintainer" => {
            no_flags(cx)?;
            let v = cx.node.rest.clone();
            if v.is_empty() {
                return Err(cx.err_kw(format!(
                    "{} requires exactly one argument",
                    name.to_uppercase()
                )));
            }
            match name.as_str() {
                "workdir" => Instruction::Workdir(v),
                "user" => Instruction::User(v),
                "stopsignal" => Instruction::StopSignal(v),
                _ => Instruction::Maintainer(v),
            }
        }
        "expose" => {
            no_flags(cx)?;
            let mut ports = split_whitespace(&cx.node.rest);
            if ports.is_empty() {
                return Err(cx.err_kw("EXPOSE requires at least one argument"));
            }
            // BuildKit sorts the words as written (before expansion), so the history
            // entry reads `EXPOSE [1234/udp 2375/tcp]` whatever order they came in.
            ports.sort();
            for p in ports.iter().filter(|p| !p.contains('$')) {
                expose_ports(p).map_err(|m| cx.err_args(m))?;
            }
            Instruction::Expose(ports)
        }
        "volume" => {
            no_flags(cx)?;
            let (v, _) = maybe_json_list(cx)?;
            if v.is_empty() {
                return Err(cx.err_kw("VOLUME requires at least one argument"));
            }
            if v.iter().any(|s| s.trim().is_empty()) {
                return Err(cx.err_args("VOLUME specified can not be an empty string"));
            }
            Instruction::Volume(v)
        }
        "cmd" | "entrypoint" => {
            no_flags(cx)?;
            let c = maybe_json(cx)?;
            if name == "cmd" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "shell" => {
            no_flags(cx)?;
            match maybe_json(cx)? {
                ShellOrExec::Exec(v) if !v.is_empty() => Instruction::Shell(v),
                ShellOrExec::Exec(_) => {
                    return Err(cx.err_args("SHELL requires at least one argument"));
                }
                ShellOrExec::Shell(_) => {
                    return Err(cx.err_args("SHELL requires the arguments to be in JSON form"));
                }
            }
        }
        "healthcheck" => parse_healthcheck(cx)?,
        "onbuild" => parse_onbuild(cx, escape)?,
        other => {
            return Err(cx.err_at(
                cx.node.keyword_off,
                ErrorKind::UnknownInstruction {
                    name: cx.node.keyword.clone(),
                    suggestion: crate::suggest::search(other, INSTRUCTIONS.iter().copied(), false)
                        .map(|s| s.to_uppercase()),
                },
            ));
        }
    })
}

fn parse_run(cx: &Ctx<'_, '_>) -> Result<Instruction, ParseError> {
    use FlagKind::*;
    let flags = Flags::parse(cx, &[("mount", Strs), ("network", Str), ("security", Str)])?;
    let mut mounts = Vec::new();
    for (raw, off) in flags.all("mount") {
        mounts.push(MountFlag::parse(&raw).map_err(|e| {
            let at = mount_error_offset(cx, off, &e);
            cx.err_at(at, ErrorKind::Mount(e))
        })?);
    }
    let bad = |flag: &str, message: String| {
        cx.err_at(
            flags.offset(flag).unwrap_or(0),
            ErrorKind::FlagValue {
                flag: flag.into(),
                message,
            },
        )
    };
    let network = match flags.string("network").as_deref() {
        None => None,
        Some("default") => Some(NetworkMode::Default),
        Some("none") => Some(NetworkMode::None),
        Some("host") => Some(NetworkMode::Host),
        Some(v) => {
            return Err(bad(
                "network",
                format!("unsupported network mode {v:?} (default, none, host)"),
            ));
        }
    };
    let security = match flags.string("security").as_deref() {
        None => None,
        Some("sandbox") => Some(SecurityMode::Sandbox),
        Some("insecure") => Some(SecurityMode::Insecure),
        Some(v) => {
            return Err(bad(
                "security",
                format!("security mode {v:?} not supported (sandbox, insecure)"),
            ));
        }
    };
    let command = maybe_json(cx)?;
    if matches!(&command, ShellOrExec::Shell(s) if s.trim().is_empty()) {
        return Err(cx.err_kw("RUN requires at least one argument"));
    }
    Ok(Instruction::Run(Run {
        command,
        mounts,
        network,
        security,
        heredocs: cx.node.heredocs.clone(),
    }))
}

/// Points a mount error at the offending `key=` inside the flag when it can be found.
fn mount_error_offset(cx: &Ctx<'_, '_>, flag_off: usize, e: &MountError) -> usize {
    let needle = match e {
        MountError::NotKeyValue(f) | MountError::UnknownKey { field: f, .. } => f.clone(),
        MountError::UnknownType(_) => "type=".into(),
        MountError::KeyNotAllowed { key, .. } | MountError::InvalidValue { key, .. } => key.clone(),
        MountError::FromVariable | MountError::SecretFrom => "from=".into(),
        _ => return flag_off,
    };
    let text = &cx.node.logical.text;
    let end = text[flag_off..]
        .find(char::is_whitespace)
        .map_or(text.len(), |i| flag_off + i);
    text[flag_off..end]
        .find(needle.as_str())
        .map_or(flag_off, |i| flag_off + i)
}

fn parse_copy(cx: &Ctx<'_, '_>, spec: &[(&'static str, FlagKind)]) -> Result<Copy, ParseError> {
    let flags = Flags::parse(cx, spec)?;
    let (args, json) = maybe_json_list(cx)?;
    let kw = cx.node.keyword.to_ascii_uppercase();
    if args.len() < 2 {
        return Err(cx.err_kw(format!(
            "{kw} requires at least two arguments, but only {} provided. Destination could not be determined",
            args.len()
        )));
    }
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    if !json
        && crate::syntax::parse_heredoc_word(&dest)
            .ok()
            .flatten()
            .is_some()
    {
        return Err(cx.err_args(format!("{kw} cannot accept a heredoc as a destination")));
    }
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for s in srcs {
        let hd = if json {
            None
        } else {
            crate::syntax::parse_heredoc_word(s).ok().flatten()
        };
        match hd {
            Some(h) => {
                let doc = cx.node.heredocs.iter().find(|d| d.name == h.name);
                heredocs.push(HeredocFile {
                    name: h.name.clone(),
                    content: doc.map(Heredoc::body).unwrap_or_default(),
                    expand: h.expand,
                });
            }
            None => sources.push(s.clone()),
        }
    }
    let bad = |flag: &str, message: String| {
        cx.err_at(
            flags.offset(flag).unwrap_or(0),
            ErrorKind::FlagValue {
                flag: flag.into(),
                message,
            },
        )
    };
    // A value without variables can be checked now; one with them after expansion.
    let chmod = flags.string("chmod");
    if let Some(m) = chmod.as_deref().filter(|m| !m.contains('$')) {
        Chmod::parse(m).map_err(|e| bad("chmod", e))?;
    }
    let checksum = flags.string("checksum");
    if let Some(c) = checksum.as_deref().filter(|c| !c.contains('$')) {
        check_checksum(c).map_err(|e| bad("checksum", e))?;
    }
    let from = flags.string("from");
    match from.as_deref() {
        Some("") => return Err(bad("from", "must not be empty".into())),
        Some(f) if f.contains('$') => {
            return Err(bad(
                "from",
                "variable expansion is not supported for --from; define an alias stage \
                 with FROM and a global ARG instead (ARG IMG=... / FROM ${IMG} AS src / \
                 COPY --from=src ...)"
                    .into(),
            ));
        }
        _ => {}
    }
    Ok(Copy {
        sources,
        dest,
        heredocs,
        from,
        chown: flags.string("chown"),
        chmod,
        link: flags.bool("link").unwrap_or(false),
        exclude: flags.all("exclude").into_iter().map(|v| v.0).collect(),
        parents: flags.bool("parents").unwrap_or(false),
        checksum,
        keep_git_dir: flags.bool("keep-git-dir").unwrap_or(false),
        unpack: flags.bool("unpack"),
        json,
    })
}

/// `sha256:<64 hex>` (also sha384/sha512), as BuildKit's digest parser accepts.
pub fn check_checksum(c: &str) -> Result<(), String> {
    let (alg, hex) = c
        .split_once(':')
        .ok_or_else(|| format!("invalid checksum {c:?}: expected <algorithm>:<hex>"))?;
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported checksum algorithm {alg:?}")),
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("invalid {alg} checksum {hex:?}"));
    }
    Ok(())
}

/// The container ports an EXPOSE word names, as BuildKit writes them in the config:
/// `80` → `80/tcp`, `80/TcP` → `80/tcp`, `3333-3334` → two ports. A legacy
/// `[ip:]host:container` form is accepted (BuildKit lints it, ExposeInvalidFormat): its
/// address and host ports are checked, only the container ports are kept. A range yields
/// at most 65,536 ports (every port number), so the list is bounded.
pub fn expose_ports(p: &str) -> Result<Vec<String>, String> {
    let (ip, host, container) = split_port_spec(p);
    let (ports, proto) = container.split_once('/').unwrap_or((container, "tcp"));
    if ports.is_empty() {
        return Err(format!("invalid port {p:?}: no port specified"));
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid port {p:?}: invalid proto {proto:?}"));
    }
    if let Some(ip) = ip {
        let bare = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']'));
        if bare.unwrap_or(ip).parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address {ip:?} in EXPOSE {p:?}"));
        }
    }
    let (lo, hi) = port_range(ports).ok_or_else(|| format!("invalid containerPort: {ports}"))?;
    if let Some(host) = host {
        let (hlo, hhi) = port_range(host).ok_or_else(|| format!("invalid hostPort: {host}"))?;
        // A host range of another length is only allowed for a single container port.
        if hhi - hlo != hi - lo && hi != lo {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {ports} and {host}"
            ));
        }
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

/// `[ip:]host:container` split at its colons; an IPv6 address keeps its own.
fn split_port_spec(p: &str) -> (Option<&str>, Option<&str>, &str) {
    let mut parts = p.rsplitn(3, ':');
    let container = parts.next().unwrap_or(p);
    let host = parts.next();
    (parts.next(), host, container)
}

/// `N` or `N-M` with `N <= M`, each a port number.
fn port_range(s: &str) -> Option<(u32, u32)> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let num = |t: &str| t.parse::<u16>().ok().map(u32::from);
    let (lo, hi) = (num(lo)?, num(hi)?);
    (lo <= hi).then_some((lo, hi))
}

/// ENV/LABEL: `k=v ...` or the legacy `k v` (decided by whether the first word has `=`).
fn parse_name_val(
    cx: &Ctx<'_, '_>,
    escape: char,
) -> Result<(Vec<(String, String)>, bool), ParseError> {
    let kw = cx.node.keyword.to_ascii_uppercase();
    let words = parse_words(&cx.node.rest, escape);
    if words.is_empty() {
        return Err(cx.err_kw(format!("{kw} requires at least one argument")));
    }
    if !words[0].contains('=') {
        let rest = cx.node.rest.as_str();
        let Some(i) = rest.find([' ', '\t', '\u{b}', '\u{c}', '\r']) else {
            return Err(cx.err_args(format!("{kw} must have two arguments")));
        };
        let value = rest[i..].trim_start_matches([' ', '\t', '\u{b}', '\u{c}', '\r']);
        return Ok((vec![(rest[..i].to_string(), value.to_string())], true));
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(cx.err_args(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )));
        };
        if k.is_empty() {
            return Err(cx.err_args(format!("{kw} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok((out, false))
}

fn parse_arg(cx: &Ctx<'_, '_>, escape: char) -> Result<Instruction, ParseError> {
    let words = parse_words(&cx.node.rest, escape);
    if words.is_empty() {
        return Err(cx.err_kw("ARG requires at least one argument"));
    }
    let mut decls = Vec::new();
    for w in words {
        let (name, default) = match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        };
        if name.is_empty() {
            return Err(cx.err_args("ARG names can not be blank"));
        }
        decls.push(ArgDecl { name, default });
    }
    Ok(Instruction::Arg(decls))
}

fn parse_healthcheck(cx: &Ctx<'_, '_>) -> Result<Instruction, ParseError> {
    use FlagKind::Str;
    let rest = cx.node.rest.as_str();
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let typ = rest[..sep].to_ascii_uppercase();
    let args = rest[sep..].trim_start();
    if typ.is_empty() {
        return Err(cx.err_kw("HEALTHCHECK requires at least one argument"));
    }
    if typ == "NONE" {
        Flags::parse(cx, &[])?;
        if !args.is_empty() {
            return Err(cx.err_args("HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(Instruction::Healthcheck(Healthcheck::None));
    }
    let flags = Flags::parse(
        cx,
        &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(cx.err_args(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)")));
    }
    let test = match parse_json_array(args) {
        Ok(v) => ShellOrExec::Exec(v),
        Err(JsonError::NotStrings) => {
            return Err(cx.err_args(
                "when using JSON array syntax, arrays must be comprised of strings only",
            ));
        }
        Err(JsonError::NotJson) => ShellOrExec::Shell(args.to_string()),
    };
    if matches!(&test, ShellOrExec::Shell(s) if s.is_empty())
        || matches!(&test, ShellOrExec::Exec(v) if v.is_empty())
    {
        return Err(cx.err_args("Missing command after HEALTHCHECK CMD"));
    }
    let bad = |flag: &str, message: String| {
        cx.err_at(
            flags.offset(flag).unwrap_or(0),
            ErrorKind::FlagValue {
                flag: flag.into(),
                message,
            },
        )
    };
    let dur = |flag: &str| -> Result<Option<Duration>, ParseError> {
        match flags.string(flag) {
            None => Ok(None),
            Some(v) => parse_interval(&v).map_err(|m| bad(flag, m)),
        }
    };
    let retries = match flags.string("retries") {
        None => None,
        Some(v) => match v.parse::<i32>() {
            Ok(n) if n < 0 => {
                return Err(bad(
                    "retries",
                    format!("--retries cannot be negative ({n})"),
                ));
            }
            Ok(n) => Some(n as u32),
            Err(_) => return Err(bad("retries", format!("invalid number {v:?}"))),
        },
    };
    Ok(Instruction::Healthcheck(Healthcheck::Check {
        test,
        interval: dur("interval")?,
        timeout: dur("timeout")?,
        start_period: dur("start-period")?,
        start_interval: dur("start-interval")?,
        retries,
    }))
}

/// BuildKit's `parseOptInterval`: Go duration, not negative, 0 = unset, else ≥ 1ms.
fn parse_interval(s: &str) -> Result<Option<Duration>, String> {
    let (neg, d) = parse_go_duration(s)?;
    if neg && !d.is_zero() {
        return Err(format!("Interval {s:?} cannot be negative"));
    }
    if d.is_zero() {
        return Ok(None);
    }
    if d < Duration::from_millis(1) {
        return Err(format!("Interval {s:?} cannot be less than 1ms"));
    }
    Ok(Some(d))
}

/// Go's `time.ParseDuration`: `1h30m`, `1.5s`, `300ms`, `2us`; returns (negative, magnitude).
pub(crate) fn parse_go_duration(s: &str) -> Result<(bool, Duration), String> {
    let err = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok((neg, Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let num: f64 = rest[..n].parse().map_err(|_| err())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += num * unit;
        rest = &rest[u..];
    }
    Duration::try_from_secs_f64(total)
        .map(|d| (neg, d))
        .map_err(|_| err())
}

fn parse_onbuild(cx: &Ctx<'_, '_>, escape: char) -> Result<Instruction, ParseError> {
    Flags::parse(cx, &[])?;
    if cx.node.rest.is_empty() {
        return Err(cx.err_kw("ONBUILD requires at least one argument"));
    }
    let mut sub = crate::syntax::node_from(
        &cx.node.logical,
        cx.node.rest_off,
        cx.node.rest_off + cx.node.rest.len(),
    );
    // `ONBUILD RUN <<EOF`: the bodies read after the line belong to the trigger.
    sub.heredocs = cx.node.heredocs.clone();
    match sub.name().as_str() {
        "onbuild" => {
            return Err(cx.err_args("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"));
        }
        "from" | "maintainer" => {
            return Err(cx.err_args(format!(
                "{} isn't allowed as an ONBUILD trigger",
                sub.keyword.to_uppercase()
            )));
        }
        _ => {}
    }
    let sub_cx = Ctx {
        src: cx.src,
        node: &sub,
    };
    let trigger = parse(&sub_cx, escape)?;
    // Stored in the image config as BuildKit stores it: the line, then each heredoc's
    // body and delimiter, so a child build re-reads the trigger whole.
    let mut expression = cx.node.rest.clone();
    for h in &cx.node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Instruction::Onbuild {
        expression,
        trigger: Box::new(trigger),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_arrays() {
        assert_eq!(
            parse_json_array(r#" ["a", "b c"]"#),
            Ok(vec!["a".into(), "b c".into()])
        );
        assert_eq!(parse_json_array("[]"), Ok(vec![]));
        assert_eq!(parse_json_array(r#"["a", 1]"#), Err(JsonError::NotStrings));
        assert_eq!(parse_json_array(r#"['a']"#), Err(JsonError::NotJson));
        assert_eq!(parse_json_array(r#"["a"] x"#), Err(JsonError::NotJson));
        assert_eq!(parse_json_array("echo [a]"), Err(JsonError::NotJson));
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"a="b c" d=e\ f"#, '\\'),
            [r#"a="b c""#, r"d=e\ f"]
        );
        assert_eq!(parse_words("x=''", '\\'), ["x=''"]);
        assert_eq!(parse_words(r"a='\' b", '\\'), [r"a='\'", "b"]);
    }

    #[test]
    fn chmod_forms() {
        assert_eq!(Chmod::parse("755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(Chmod::parse("0644"), Ok(Chmod::Octal(0o644)));
        assert!(Chmod::parse("888").is_err());
        assert!(Chmod::parse("17777").is_err());
        // BuildKit's wording for anything that starts like a number.
        for bad in ["64a", "10000"] {
            assert_eq!(
                Chmod::parse(bad).unwrap_err(),
                format!(
                    "invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777"
                )
            );
        }
        assert!(Chmod::parse("u+q").is_err());
        assert!(Chmod::parse("z+x").is_err());
        assert!(Chmod::parse("").is_err());
        let c = Chmod::parse("u=rwx,go=rx").unwrap();
        assert_eq!(c.apply(0o600, false), 0o755);
        assert_eq!(Chmod::parse("+x").unwrap().apply(0o644, false), 0o755);
        assert_eq!(Chmod::parse("go-w").unwrap().apply(0o777, false), 0o755);
        assert_eq!(Chmod::parse("a+X").unwrap().apply(0o644, true), 0o755);
        assert_eq!(Chmod::parse("a+X").unwrap().apply(0o644, false), 0o644);
        assert_eq!(Chmod::parse("u+s,o=").unwrap().apply(0o755, false), 0o4750);
        assert_eq!(Chmod::parse("u+r-w").unwrap().apply(0o200, false), 0o400);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_go_duration("1h30m").unwrap().1,
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("1.5s").unwrap().1,
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_go_duration("300ms").unwrap().1,
            Duration::from_millis(300)
        );
        assert_eq!(
            parse_go_duration("2us").unwrap().1,
            Duration::from_micros(2)
        );
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
        assert_eq!(parse_interval("0s"), Ok(None));
        assert!(parse_interval("-1s").is_err());
        assert!(parse_interval("10us").is_err());
    }

    #[test]
    fn ports_and_checksums() {
        let ports = |p| expose_ports(p).unwrap();
        assert_eq!(ports("80"), ["80/tcp"]);
        assert_eq!(ports("80/TcP"), ["80/tcp"]);
        assert_eq!(ports("53/UDP"), ["53/udp"]);
        assert_eq!(ports("3333-3334"), ["3333/tcp", "3334/tcp"]);
        assert_eq!(
            ports("0.0.0.0:1234-1235:3333-3334"),
            ["3333/tcp", "3334/tcp"]
        );
        assert_eq!(ports("[::1]:8080:80/udp"), ["80/udp"]);
        assert_eq!(ports("8000-8010:80"), ["80/tcp"]);
        assert_eq!(ports("0-65535").len(), 65_536);
        for bad in [
            "80/foo",
            "99999",
            "90-80",
            "8080:x",
            "/tcp",
            "nope:80:80",
            "1-2:3-5",
            "-1",
        ] {
            assert!(expose_ports(bad).is_err(), "{bad}");
        }
        assert!(check_checksum(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(check_checksum("sha256:abc").is_err());
        assert!(check_checksum("md5:abc").is_err());
        assert!(check_checksum("abc").is_err());
    }
}
