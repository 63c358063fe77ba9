//! The tools, one module each, and the dispatch table (`tools.txt` lists the same names
//! in the same order).

mod invoke_rc_d;

use crate::ToolMain;

pub(crate) static TABLE: &[(&str, ToolMain)] = &[("invoke-rc.d", invoke_rc_d::main)];
