//! Shared plumbing: diagnostics in the `tool: message` form maintainer scripts expect.

use std::io::{self, Write};

/// Prints `tool: message` to standard error.
pub fn warn(tool: &str, msg: impl std::fmt::Display) {
    let _ = writeln!(io::stderr(), "{tool}: {msg}");
}
