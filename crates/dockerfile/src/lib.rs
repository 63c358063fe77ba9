//! kiln's Dockerfile frontend: parses a Dockerfile the way BuildKit's Dockerfile frontend
//! does into a typed model (parser directives, global ARGs, stages of typed instructions
//! with line spans and original text), validates flags and `RUN --mount` options, reports
//! BuildKit-named lint warnings, and provides the pieces the build engine needs at dispatch
//! time: BuildKit-compatible variable expansion ([`expand()`]), ARG scoping ([`args`]) and
//! the stage dependency graph with `--target` selection ([`graph`]).
//!
//! It is NOT a builder: it touches no files, images or network, knows nothing of the
//! runtime, and never sees secret values (only secret ids).
//!
//! Expansion happens at dispatch time because the environment (base image ENV + ARG + ENV)
//! is only known then: the model keeps words as written, and the engine calls
//! [`Instruction::expand`] (which knows BuildKit's list of expanded instructions and
//! fields) with a [`args::StageScope`] lookup.
//!
//! ```
//! use kiln_dockerfile::args::{BuildArgs, GlobalScope, Platform, StageScope};
//! use kiln_dockerfile::graph::{StageGraph, StageSource};
//! use kiln_dockerfile::Instruction;
//!
//! let df = kiln_dockerfile::parse(
//!     "ARG BASE=alpine:3.19\nFROM $BASE AS build\nARG OUT=/out\nWORKDIR $OUT\n\
//!      FROM scratch\nCOPY --from=build /out /\n",
//!     "Dockerfile",
//! )?;
//! let build = BuildArgs {
//!     values: [("OUT".to_string(), "/dist".to_string())].into(),
//!     target_platform: Platform::parse("linux/amd64")?,
//!     build_platform: Platform::parse("linux/amd64")?,
//!     target_stage: None,
//! };
//! let global = GlobalScope::new(&df, &build)?;
//! let graph = StageGraph::new(&df, &global)?;
//! let order = graph.required(StageGraph::target(&df, None)?);
//! assert_eq!(order, [0, 1]);
//! assert_eq!(graph.nodes[0].base, StageSource::Image("alpine:3.19".into()));
//!
//! let mut scope = StageScope::new(&build, &global, df.directives.escape, Vec::new());
//! let steps: Vec<Instruction> = df.stages[0]
//!     .steps
//!     .iter()
//!     .map(|s| scope.dispatch(&s.instruction))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(steps[1], Instruction::Workdir("/dist".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod args;
mod error;
pub mod expand;
pub mod graph;
mod instruction;
pub mod lint;
mod mount;
pub mod suggest;
mod syntax;

pub use error::{ErrorKind, MAX_SHOWN_LINE_CHARS, ParseError, Span, clip_line};
pub use expand::{ExpandError, expand, expand_heredoc, expand_words};
pub use instruction::{
    ArgDecl, Chmod, Copy, Healthcheck, HeredocFile, Instruction, NetworkMode, Run, RunProgram,
    SecurityMode, ShellOrExec, SymbolicMode, check_checksum, expose_ports,
};
pub use lint::{CheckConfig, Rule, Warning};
pub use mount::{CacheSharing, Mount, MountError, MountFlag, SecretId, SecretIdError};
pub use syntax::{Directives, Heredoc};

use instruction::{Ctx, FlagKind, Flags};
use syntax::{RawNode, Source};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub file_name: String,
    pub directives: Directives,
    /// ARG instructions before the first FROM (each step is an [`Instruction::Arg`]).
    pub global_args: Vec<Step>,
    pub stages: Vec<Stage>,
    /// Lint warnings (already filtered by `# check=skip=...`), in line order.
    pub warnings: Vec<Warning>,
    /// Kept to render dispatch-time errors like parse errors.
    source: std::sync::Arc<str>,
    /// `# check=` comments above instructions.
    local_checks: lint::LocalChecks,
}

/// A build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// Lowercased `AS` name.
    pub name: Option<String>,
    /// The base as written (may contain global ARG references); resolve with
    /// [`graph::StageGraph`].
    pub base: String,
    /// `--platform` as written.
    pub platform: Option<String>,
    pub span: Span,
    /// The FROM line as written (trimmed).
    pub original: String,
    pub steps: Vec<Step>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub instruction: Instruction,
    /// Lines of the instruction, including continuation lines and heredoc bodies.
    pub span: Span,
    /// The logical line as written, continuations joined (BuildKit's `Original`), e.g.
    /// `RUN --mount=type=cache,target=/c make`. Heredoc bodies are in the instruction.
    pub original: String,
}

impl Dockerfile {
    /// An error at the first line of `span`, rendered like a parse error (file, line,
    /// caret): for errors found at dispatch time, e.g. a failed `${VAR:?msg}` expansion or
    /// a `--mount` that is invalid once its variables are expanded.
    pub fn error_at(&self, span: Span, kind: ErrorKind) -> ParseError {
        let src = Source::new(&self.file_name, &self.source);
        let line = span.start_line.saturating_sub(1);
        let text = src.lines.get(line).copied().unwrap_or("");
        let indent = text.len() - text.trim_start().len();
        src.error_at(line, indent, kind)
    }

    /// The warnings the check configuration lets through (the file's, plus a `# check=`
    /// comment above the warning's instruction).
    pub fn checked(&self, warnings: Vec<Warning>) -> Vec<Warning> {
        warnings
            .into_iter()
            .filter(|w| self.local_checks.keep(&self.directives.check, w))
            .collect()
    }

    /// With `error=true` in the check configuration and some `warnings`, BuildKit's
    /// `lint violation found for rules: ...` error, at the first warning's line.
    pub fn lint_error(&self, warnings: &[Warning]) -> Option<ParseError> {
        let first = warnings.first().filter(|_| self.directives.check.error)?;
        let mut rules: Vec<String> = Vec::new();
        for w in warnings {
            if !rules.iter().any(|r| r == w.rule.name()) {
                rules.push(w.rule.name().to_string());
            }
        }
        Some(self.error_at(first.span, ErrorKind::Lint(rules)))
    }

    /// A stage by `AS` name (case-insensitive) or by index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }
}

/// Parses a Dockerfile. `file_name` is used in error messages only.
///
/// Fails on syntax errors, unknown instructions or flags, invalid flag values and
/// `RUN --mount` options (when they contain no variables), and, with `# check=error=true`,
/// on lint warnings.
pub fn parse(source: &str, file_name: &str) -> Result<Dockerfile, ParseError> {
    parse_with(source, file_name, None)
}

/// [`parse`] with the lint configuration replaced by `check` when given (BuildKit's
/// `--build-arg BUILDKIT_DOCKERFILE_CHECK=skip=...;error=true` overrides `# check=`).
pub fn parse_with(
    source: &str,
    file_name: &str,
    check: Option<&str>,
) -> Result<Dockerfile, ParseError> {
    let df = parse_unchecked(source, file_name, check)?;
    match df.lint_error(&df.warnings) {
        Some(e) => Err(e),
        None => Ok(df),
    }
}

/// [`parse_with`] that does not fail on lint warnings under `error=true`: for a build,
/// which counts only the warnings of the stages it builds ([`Dockerfile::lint_error`]).
/// `check` is the `BUILDKIT_DOCKERFILE_CHECK` value, if given.
pub fn parse_unchecked(
    source: &str,
    file_name: &str,
    check: Option<&str>,
) -> Result<Dockerfile, ParseError> {
    let src = Source::new(file_name, source);
    let (mut directives, nodes) = syntax::split_source(&src)?;
    if let Some(c) = check {
        directives.check =
            CheckConfig::parse(c).map_err(|why| src.error_at(0, 0, ErrorKind::CheckArg(why)))?;
    }
    if nodes.is_empty() {
        return Err(src.error_at(
            0,
            0,
            ErrorKind::Syntax("the Dockerfile has no instructions".into()),
        ));
    }
    let escape = directives.escape;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut lint_nodes = Vec::with_capacity(nodes.len());
    for (n, node) in nodes.iter().enumerate() {
        let cx = Ctx { src: &src, node };
        // BuildKit reports the warnings found before an instruction that does not parse.
        let failed = |e: ParseError, lint_nodes: &[lint::NodeInfo]| {
            let found = lint::before_error(lint_nodes, &nodes[n..]);
            let local = lint::LocalChecks::new(lint_nodes);
            let kept = found
                .into_iter()
                .filter(|w| local.keep(&directives.check, w))
                .collect();
            e.in_instruction(kept)
        };
        if node.name() == "from" {
            let stage = parse_from(&cx, stages.len()).map_err(|e| failed(e, &lint_nodes))?;
            lint_nodes.push(lint::NodeInfo::new(
                node,
                Some(stage.index),
                lint::defines(Some(&stage), None),
            ));
            stages.push(stage);
        } else {
            let instruction =
                instruction::parse(&cx, escape).map_err(|e| failed(e, &lint_nodes))?;
            let step = Step {
                instruction,
                span: node.span,
                original: node.original.clone(),
            };
            lint_nodes.push(lint::NodeInfo::new(
                node,
                stages.last().map(|s| s.index),
                lint::defines(None, Some(&step)),
            ));
            match (stages.last_mut(), &step.instruction) {
                (Some(stage), _) => stage.steps.push(step),
                (None, Instruction::Arg(_)) => global_args.push(step),
                (None, _) => {
                    return Err(cx.err_kw(
                        "no build stage in current context: only ARG may precede the first FROM",
                    ));
                }
            }
        }
    }
    if stages.is_empty() {
        return Err(src.error_at(
            0,
            0,
            ErrorKind::Stage(
                "dockerfile contains no stages to build: it has no FROM instruction".into(),
            ),
        ));
    }
    let mut df = Dockerfile {
        file_name: file_name.to_string(),
        directives,
        global_args,
        stages,
        warnings: Vec::new(),
        source: source.into(),
        local_checks: lint::LocalChecks::new(&lint_nodes),
    };
    df.warnings = df.checked(lint::run(&df, &lint_nodes));
    Ok(df)
}

/// Parses one ONBUILD trigger expression, as found in a base image's config (`OnBuild`)
/// or in [`Instruction::Onbuild::expression`]; BuildKit runs these at the start of a stage
/// built on that image or stage.
pub fn parse_onbuild_trigger(expression: &str) -> Result<Instruction, ParseError> {
    let src = Source::new("ONBUILD", expression);
    let (directives, nodes) = syntax::split_source(&src)?;
    let [node] = nodes.as_slice() else {
        return Err(src.error_at(
            0,
            0,
            ErrorKind::Syntax("onbuild trigger should be a single expression".into()),
        ));
    };
    let cx = Ctx { src: &src, node };
    if matches!(node.name().as_str(), "onbuild" | "from" | "maintainer") {
        return Err(cx.err_kw(format!(
            "{} isn't allowed as an ONBUILD trigger",
            node.keyword.to_ascii_uppercase()
        )));
    }
    instruction::parse(&cx, directives.escape)
}

fn parse_from(cx: &Ctx<'_, '_>, index: usize) -> Result<Stage, ParseError> {
    let flags = Flags::parse(cx, &[("platform", FlagKind::Str)])?;
    let node: &RawNode = cx.node;
    let args: Vec<&str> = node
        .rest
        .split([' ', '\t', '\u{b}', '\u{c}', '\r'])
        .filter(|s| !s.is_empty())
        .collect();
    let name = match args.as_slice() {
        [_] => None,
        [_, kw, name] if kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            if !valid_stage_name(&lower) {
                return Err(cx.err_args(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                )));
            }
            Some(lower)
        }
        _ => return Err(cx.err_kw("FROM requires either one or three arguments")),
    };
    let platform = flags.string("platform");
    if platform.as_deref() == Some("") {
        return Err(cx.err_at(
            flags.offset("platform").unwrap_or(0),
            ErrorKind::FlagValue {
                flag: "platform".into(),
                message: "must not be empty".into(),
            },
        ));
    }
    Ok(Stage {
        index,
        name,
        base: args[0].to_string(),
        platform,
        span: node.span,
        original: node.original.clone(),
        steps: Vec::new(),
    })
}

/// BuildKit's `^[a-z][a-z0-9-_\.]*$`.
fn valid_stage_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}
