//! RUN --mount as BuildKit does it: cache mount owners and modes, file and sub-path binds, hostname and /etc/hosts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

#[allow(unused_imports)]
use support::*;
