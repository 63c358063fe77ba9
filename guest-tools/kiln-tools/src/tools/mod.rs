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
mod passwd;
mod sed;
pub(crate) mod stat;
mod tar;
mod tar_gnu;
mod users;
mod users_db;
mod users_mod;
mod xargs;

use crate::ToolMain;

pub(crate) static TABLE: &[(&str, ToolMain)] = &[
    ("addgroup", users::addgroup),
    ("adduser", users::adduser),
    ("awk", awk::main),
    ("chgrp", chown::main),
    ("chmod", chmod::main),
    ("chown", chown::main),
    ("chpasswd", passwd::chpasswd),
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
    ("groupmod", users_mod::groupmod),
    ("groups", ident::groups),
    ("gunzip", gzip::main),
    ("gzip", gzip::main),
    ("hostname", misc::hostname),
    ("id", ident::id),
    ("install", install::main),
    ("ls", ls::main),
    ("mkdir", cp::mkdir),
    ("passwd", passwd::passwd),
    ("sed", sed::main),
    ("stat", stat::main),
    ("sync", misc::sync),
    ("tar", tar::main),
    ("useradd", users::useradd),
    ("userdel", users_mod::userdel),
    ("usermod", users_mod::usermod),
    ("wget", curl::main),
    ("which", ident::which),
    ("whoami", ident::whoami),
    ("xargs", xargs::main),
    ("zcat", gzip::main),
];
