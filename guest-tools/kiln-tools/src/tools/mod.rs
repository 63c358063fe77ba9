//! The tools, one module each, and the dispatch table (`tools.txt` lists the same names
//! in the same order).

mod awk;
mod chmod;
mod chown;
mod cp;
mod curl;
mod dd;
mod env;
mod find;
mod grep;
mod gzip;
mod ident;
mod install;
mod ls;
mod misc;
mod sed;
pub(crate) mod stat;
mod tar;
mod users;
mod xargs;

use crate::ToolMain;

pub(crate) static TABLE: &[(&str, ToolMain)] = &[
    ("addgroup", users::addgroup),
    ("adduser", users::adduser),
    ("awk", awk::main),
    ("chgrp", chown::main),
    ("chmod", chmod::main),
    ("chown", chown::main),
    ("cmp", misc::cmp),
    ("cp", cp::cp),
    ("curl", curl::main),
    ("dd", dd::main),
    ("egrep", grep::main),
    ("env", env::main),
    ("fgrep", grep::main),
    ("find", find::main),
    ("grep", grep::main),
    ("groupadd", users::groupadd),
    ("groups", ident::groups),
    ("gunzip", gzip::main),
    ("gzip", gzip::main),
    ("hostname", misc::hostname),
    ("id", ident::id),
    ("install", install::main),
    ("ls", ls::main),
    ("mkdir", cp::mkdir),
    ("sed", sed::main),
    ("stat", stat::main),
    ("sync", misc::sync),
    ("tar", tar::main),
    ("useradd", users::useradd),
    ("wget", curl::main),
    ("which", ident::which),
    ("whoami", ident::whoami),
    ("xargs", xargs::main),
    ("zcat", gzip::main),
];
