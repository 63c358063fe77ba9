//! Root filesystem fidelity: removing base-image entries, special mode bits in local exports, user and group files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

#[allow(unused_imports)]
use support::*;
