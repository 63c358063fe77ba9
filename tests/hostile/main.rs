//! The hostile-input suite: every attack from the trust issue, run through the real
//! `kiln` binary as a stranger's Dockerfile would. Each test asserts the exact outcome: a
//! clear error naming the limit, a bounded peak RSS or a secret found nowhere at rest.
//! kiln itself must never abort: every test also checks that the process exited with a
//! status (not a signal).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

#[path = "../support/mod.rs"]
mod support;

mod resources;
mod runtime;
mod sandbox;
mod secrets;
mod shell;
