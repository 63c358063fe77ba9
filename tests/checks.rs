//! Build checks as BuildKit runs them: `--check`, warnings, `# check=` directives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

#[allow(unused_imports)]
use support::*;
