//! ONBUILD, EXPOSE, built-in args, history and config defaults as BuildKit writes them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

#[allow(unused_imports)]
use support::*;
