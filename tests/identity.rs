//! The step's user inside RUN: id/whoami, WORKDIR ownership, umask and permission checks for a non-root USER.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

#[allow(unused_imports)]
use support::*;
