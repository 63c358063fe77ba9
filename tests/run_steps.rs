//! RUN as BuildKit runs it: SHELL with options, heredoc shebangs, progress output, tools met on the way.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

#[allow(unused_imports)]
use support::*;
