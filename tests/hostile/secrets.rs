//! Hostile inputs: secrets.

#[allow(unused_imports)]
use crate::support::*;
