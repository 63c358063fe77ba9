//! Small tools Dockerfiles call that neither uutils nor p1 provide: cmp, hostname, sync.

use std::io::{self, BufReader, Read};

use crate::opts::{self, OptSpec, opt};
use crate::util::{self, describe, warn};

const CMP_SPECS: &[OptSpec] = &[
    opt('s', Some("quiet"), false),
    opt('l', Some("verbose"), false),
];

/// `cmp [-s|-l] FILE1 [FILE2]`: 0 same, 1 different, 2 trouble.
pub fn cmp(name: &str, args: Vec<String>) -> i32 {
    let p = match opts::parse(&args, CMP_SPECS, true) {
        Ok(p) => p,
        Err(e) => {
            util::usage_error(name, e);
            return 2;
        }
    };
    let (a, b) = match p.operands.as_slice() {
        [a] => (a.clone(), "-".to_owned()),
        [a, b] => (a.clone(), b.clone()),
        _ => {
            util::usage_error(name, "expected one or two files");
            return 2;
        }
    };
    let open =
        |f: &str| util::open_input(f).map(|r| BufReader::with_capacity(64 * 1024, r).bytes());
    let (mut ra, mut rb) = match (open(&a), open(&b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) => {
            warn(name, format!("{a}: {}", describe(&e)));
            return 2;
        }
        (_, Err(e)) => {
            warn(name, format!("{b}: {}", describe(&e)));
            return 2;
        }
    };
    let mut byte = 1u64;
    let mut line = 1u64;
    let mut differ = false;
    let mut after_newline = false;
    loop {
        match (ra.next().transpose(), rb.next().transpose()) {
            (Err(e), _) | (_, Err(e)) => {
                warn(name, describe(&e));
                return 2;
            }
            (Ok(None), Ok(None)) => return i32::from(differ),
            (Ok(None), Ok(Some(_))) => {
                return eof(name, &a, byte, line, after_newline, p.has('s'));
            }
            (Ok(Some(_)), Ok(None)) => {
                return eof(name, &b, byte, line, after_newline, p.has('s'));
            }
            (Ok(Some(x)), Ok(Some(y))) => {
                if x != y {
                    if p.has('s') {
                        return 1;
                    }
                    if !p.has('l') {
                        // POSIX wording, which GNU cmp also uses in the C locale of a build step.
                        println!("{a} {b} differ: char {byte}, line {line}");
                        return 1;
                    }
                    println!("{byte} {x:o} {y:o}");
                    differ = true;
                }
                after_newline = x == b'\n';
                if after_newline {
                    line += 1;
                }
                byte += 1;
            }
        }
    }
}

/// GNU cmp's report when one file is a prefix of the other.
fn eof(name: &str, shorter: &str, byte: u64, line: u64, after_newline: bool, silent: bool) -> i32 {
    if !silent {
        if byte == 1 {
            warn(name, format!("EOF on {shorter} which is empty"));
        } else {
            // `line` is the line the next byte would start; GNU names the last one read.
            let at = if after_newline {
                format!("line {}", line - 1)
            } else {
                format!("in line {line}")
            };
            warn(
                name,
                format!("EOF on {shorter} after byte {}, {at}", byte - 1),
            );
        }
    }
    1
}

/// `hostname`: the step's /etc/hostname (kiln mounts one naming BuildKit's
/// `buildkitsandbox`), else that same name: a build step has no UTS namespace to ask, and
/// a step without /etc is still in BuildKit's sandbox.
pub fn hostname(name: &str, args: Vec<String>) -> i32 {
    if let Some(arg) = args.first() {
        warn(
            name,
            format!("cannot set the host name in a build step ({arg})"),
        );
        return 1;
    }
    let text = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = text
        .lines()
        .next()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or("buildkitsandbox");
    println!("{host}");
    0
}

/// `sync`: kiln's filesystem has nothing to flush; succeed like a fast disk would.
pub fn sync(_name: &str, _args: Vec<String>) -> i32 {
    let _ = io::Write::flush(&mut io::stdout());
    0
}
