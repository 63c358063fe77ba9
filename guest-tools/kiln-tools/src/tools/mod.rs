//! The tools, one module each, and the dispatch table (`tools.txt` lists the same names).

mod gzip;

use crate::ToolMain;

pub(crate) static TABLE: &[(&str, ToolMain)] = &[
    ("gzip", gzip::main),
    ("gunzip", gzip::main),
    ("zcat", gzip::main),
];
