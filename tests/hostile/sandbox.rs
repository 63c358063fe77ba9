//! Hostile inputs: sandbox.

#[allow(unused_imports)]
use crate::support::*;
