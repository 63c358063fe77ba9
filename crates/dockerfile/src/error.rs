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

/// The most characters of one source line an error or check report shows. A stranger's
/// Dockerfile may hold a line of megabytes; echoing it whole would flood the log a
/// build service keeps. The part around the column the report points at is shown.
pub const MAX_SHOWN_LINE_CHARS: usize = 1024;

/// `line` cut to [`MAX_SHOWN_LINE_CHARS`] around `column` (1-based, in characters), with
/// `…` where text was left out, and the column of the same character in what is shown.
pub fn clip_line(line: &str, column: usize) -> (String, usize) {
    let len = line.chars().count();
    if len <= MAX_SHOWN_LINE_CHARS {
        return (line.to_owned(), column);
    }
    let start = column
        .saturating_sub(MAX_SHOWN_LINE_CHARS / 2)
        .min(len - MAX_SHOWN_LINE_CHARS);
    let end = start + MAX_SHOWN_LINE_CHARS;
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(line.chars().skip(start).take(MAX_SHOWN_LINE_CHARS));
    if end < len {
        shown.push('…');
    }
    (shown, column - start + usize::from(start > 0))
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        if self.in_instruction {
            write!(f, "dockerfile parse error on line {}: ", self.line)?;
        }
        // The message may quote the input (a mount type, a flag's value): clipped as the
        // line below is.
        writeln!(f, "{}", clip_line(&self.kind.to_string(), 1).0)?;
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.column)?;
        writeln!(f, "{pad} |")?;
        let (shown, column) = clip_line(&self.source_line, self.column);
        // Tabs would shift the caret relative to the line; show them as single spaces.
        let shown: String = shown
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        writeln!(f, "{num} | {shown}")?;
        write!(f, "{pad} | {}^", " ".repeat(column.saturating_sub(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_line_is_shown_whole() {
        assert_eq!(clip_line("RUN echo hi", 5), ("RUN echo hi".to_owned(), 5));
    }

    #[test]
    fn a_long_line_is_cut_around_its_column_and_the_column_follows() {
        let line: String = (0..100_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for column in [1, 2, 600, 50_000, 99_990, 100_000, 100_001] {
            let (shown, at) = clip_line(&line, column);
            assert!(
                shown.chars().count() <= MAX_SHOWN_LINE_CHARS + 2,
                "{column}"
            );
            assert_eq!(
                shown.starts_with('…'),
                column > MAX_SHOWN_LINE_CHARS / 2,
                "{column}"
            );
            assert_eq!(
                shown.ends_with('…'),
                column < 100_000 - MAX_SHOWN_LINE_CHARS / 2
            );
            // The character under the caret is the one the column names.
            if column <= 100_000 {
                assert_eq!(
                    shown.chars().nth(at - 1),
                    line.chars().nth(column - 1),
                    "{column}"
                );
            }
        }
    }

    #[test]
    fn multibyte_text_is_cut_between_characters() {
        let line = "é".repeat(5_000);
        let (shown, at) = clip_line(&line, 2_500);
        assert_eq!(shown.chars().nth(at - 1), Some('é'));
        assert_eq!(
            shown.chars().filter(|&c| c == 'é').count(),
            MAX_SHOWN_LINE_CHARS
        );
    }
}
