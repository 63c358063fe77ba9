//! COPY and ADD as BuildKit does them: --chmod, wildcards, --from owners, --parents, ADD --unpack, .dockerignore.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

#[allow(unused_imports)]
use support::*;
