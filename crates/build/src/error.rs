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
    #[error("{location}: {instruction}\n{message}{}", tail(.output_tail))]
    Step {
        location: String,
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
    #[error("internal error: {0}")]
    Internal(String),
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
