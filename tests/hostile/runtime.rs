//! Hostile inputs: runtime.

#[allow(unused_imports)]
use crate::support::*;
