//! Build errors. Every message that can carry text from a step (its output, a command
//! line) has been through secret redaction before it is put here.

use crate::cache::CacheError;
use crate::context::ContextError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A Dockerfile that does not parse; the text already shows file, line and caret.
    #[error("{0}")]
    Dockerfile(String),
    #[error("{what}: {why}")]
    Input { what: String, why: String },
    #[error(
        "secret {id:?} is required by the mount at {location} but was not given; pass --secret id={id},src=PATH"
    )]
    MissingSecret { id: String, location: String },
    #[error("{file}:{line}: {message}\n{}{}", excerpt(*.line, .instruction), tail(.output_tail))]
    Step {
        file: String,
        line: usize,
        instruction: String,
        message: String,
        output_tail: Vec<String>,
    },
    #[error("base image {name}: {why}")]
    Image { name: String, why: String },
    #[error(
        "secret leak: the value of secret {secret:?} was found in {location}; the image was not written (use --secret-leak=warn to only warn)"
    )]
    Leak { secret: String, location: String },
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Guard(#[from] crate::leak::LeakError),
    #[error("internal error: {0}")]
    Internal(String),
    /// A stage's error, already rendered (shared between the stages waiting on it).
    #[error("{0}")]
    Failed(String),
}

/// The instruction under its line number with a caret, like the parser's errors.
fn excerpt(line: usize, instruction: &str) -> String {
    let num = line.to_string();
    let pad = " ".repeat(num.len());
    let first = instruction.lines().next().unwrap_or("");
    let word = first.split_whitespace().next().map_or(1, str::len);
    format!("{pad} |\n{num} | {first}\n{pad} | {}", "^".repeat(word))
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nlast output:");
    for l in lines {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}

/// A step failed; the engine adds where.
#[derive(Debug)]
pub struct StepError {
    pub message: String,
    pub output_tail: Vec<String>,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            output_tail: Vec::new(),
        }
    }
}

impl<E: std::fmt::Display> From<E> for StepError {
    fn from(e: E) -> Self {
        StepError::new(e.to_string())
    }
}
