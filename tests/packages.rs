//! (being written) end-to-end tests of `packages`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

#[allow(unused_imports)]
mod support;
