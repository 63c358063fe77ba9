//! The tools, one module each, and the dispatch table (`tools.txt` lists the same names).

mod curl;
mod grep;
mod gzip;
mod sed;

use crate::ToolMain;

pub(crate) static TABLE: &[(&str, ToolMain)] = &[
    ("curl", curl::main),
    ("wget", curl::main),
    ("grep", grep::main),
    ("egrep", grep::main),
    ("fgrep", grep::main),
    ("gzip", gzip::main),
    ("gunzip", gzip::main),
    ("zcat", gzip::main),
    ("sed", sed::main),
];
