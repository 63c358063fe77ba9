//! Hostile inputs: shell.

#[allow(unused_imports)]
use crate::support::*;
