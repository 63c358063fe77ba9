//! Errors with a position in the Dockerfile, rendered with the offending line and a caret.

use std::fmt;

use crate::expand::ExpandError;
use crate::mount::MountError;

/// A line range in the Dockerfile, 1-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub start_line: usize,
    pub end_line: usize,
}

impl Span {
    pub fn line(line: usize) -> Span {
        Span {
            start_line: line,
            end_line: line,
        }
    }
}

/// What went wrong; [`ParseError`] adds where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("unknown instruction: {name}{}", did_you_mean(.suggestion))]
    UnknownInstruction {
        name: String,
        suggestion: Option<String>,
    },
    /// BuildKit's wording; the hint names the flag without dashes, as BuildKit's does.
    #[error("unknown flag: --{flag}{}", did_you_mean(.suggestion))]
    UnknownFlag {
        instruction: String,
        flag: String,
        suggestion: Option<String>,
    },
    #[error("invalid value for --{flag}: {message}")]
    FlagValue { flag: String, message: String },
    #[error("invalid --mount: {0}")]
    Mount(#[from] MountError),
    #[error("{0}")]
    Expand(#[from] ExpandError),
    #[error("{0}")]
    Heredoc(String),
    #[error("parser directive: {0}")]
    Directive(String),
    #[error("{0}")]
    Syntax(String),
    #[error("{0}")]
    Stage(String),
    #[error("lint violation found for rules: {}", .0.join(", "))]
    Lint(Vec<String>),
    /// `--build-arg BUILDKIT_DOCKERFILE_CHECK=...` that is not a valid check configuration.
    #[error("failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: {0}")]
    CheckArg(String),
}

fn did_you_mean(s: &Option<String>) -> String {
    crate::suggest::hint(s.as_deref())
}

/// A parse error: file, 1-based line and column, and the offending source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    pub kind: Box<ErrorKind>,
    /// The physical source line the error points into (without newline).
    pub source_line: String,
    /// Set when an instruction failed to parse: BuildKit then says `dockerfile parse
    /// error on line N:` and has already reported the lint warnings of the lines before.
    pub(crate) in_instruction: bool,
    /// Lint warnings found before the error (BuildKit prints them with the error).
    pub warnings: Vec<crate::lint::Warning>,
}

impl ParseError {
    /// Marks an instruction's parse error, carrying the warnings found up to it.
    pub(crate) fn in_instruction(mut self, warnings: Vec<crate::lint::Warning>) -> ParseError {
        self.in_instruction = true;
        self.warnings = warnings;
        self
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.kind)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        if self.in_instruction {
            write!(f, "dockerfile parse error on line {}: ", self.line)?;
        }
        writeln!(f, "{}", self.kind)?;
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.column)?;
        writeln!(f, "{pad} |")?;
        // Tabs would shift the caret relative to the line; show them as single spaces.
        let shown: String = self
            .source_line
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        writeln!(f, "{num} | {shown}")?;
        write!(f, "{pad} | {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}
