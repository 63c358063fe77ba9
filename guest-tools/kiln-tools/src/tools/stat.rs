//! stat [-L] [-c FORMAT | --printf FORMAT] FILE...: the GNU default layout and the format
//! directives scripts use (%a %A %b %B %d %f %F %g %G %h %i %n %N %o %s %u %U %x %X %y %Y
//! %z %Z %w %W %t %T %%). Times are shown in UTC.

use crate::mode;
use crate::opts::{self, OptSpec, long_id, opt};
use crate::passwd::Names;
use crate::sys::{self, Stat, Time, kind};
use crate::util::{self, civil, describe, warn};

const SPECS: &[OptSpec] = &[
    opt('L', Some("dereference"), false),
    opt('c', Some("format"), true),
    opt(long_id(1), Some("printf"), true),
    opt('t', Some("terse"), false),
];

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let parsed = match opts::parse(&args, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    if parsed.operands.is_empty() {
        return util::usage_error(name, "missing operand");
    }
    let follow = parsed.has('L');
    let mut names = Names::default();
    let mut out = String::new();
    let mut status = 0;
    for file in &parsed.operands {
        let st = match sys::stat(file, follow) {
            Ok(st) => st,
            Err(e) => {
                warn(name, format!("cannot stat '{file}': {}", describe(&e)));
                status = 1;
                continue;
            }
        };
        if let Some(fmt) = parsed.value(long_id(1)) {
            out.push_str(&render(&unescape(fmt), file, &st, &mut names));
        } else if let Some(fmt) = parsed.value('c') {
            out.push_str(&render(fmt, file, &st, &mut names));
            out.push('\n');
        } else if parsed.has('t') {
            let terse = "%n %s %b %f %u %g %D %i %h %t %T %X %Y %Z %W %o\n";
            out.push_str(&render(terse, file, &st, &mut names));
        } else {
            out.push_str(&render(DEFAULT, file, &st, &mut names));
        }
    }
    print!("{out}");
    status
}

const DEFAULT: &str = "  File: %N\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\nDevice: %Hd,%Ld\tInode: %-11i Links: %h\nAccess: (%04a/%A)  Uid: (%5u/%8U)   Gid: (%5g/%8G)\nAccess: %x\nModify: %y\nChange: %z\n Birth: -\n";

fn unescape(fmt: &str) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `regular file`, `directory`, ... as GNU names them.
pub fn type_name(st: &Stat) -> &'static str {
    match st.mode & kind::MASK {
        kind::DIR => "directory",
        kind::SYMLINK => "symbolic link",
        kind::CHAR => "character special file",
        kind::BLOCK => "block special file",
        kind::FIFO => "fifo",
        kind::SOCKET => "socket",
        _ if st.size == 0 => "regular empty file",
        _ => "regular file",
    }
}

/// 512-byte blocks a file occupies: kiln stores contents, not blocks, so this is the
/// size rounded up to 4 KiB as on a typical Linux file system.
pub fn blocks(st: &Stat) -> u64 {
    if st.is_symlink() || (!st.is_file() && !st.is_dir()) {
        return 0;
    }
    st.size.div_ceil(4096) * 8
}

fn time_string(t: Time) -> String {
    let (y, mo, d, h, mi, s) = civil(t.sec);
    format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:09} +0000",
        t.nsec
    )
}

fn render(fmt: &str, file: &str, st: &Stat, names: &mut Names) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars
            .peek()
            .filter(|f| "-0#+ ".contains(**f) || f.is_ascii_digit())
        {
            flags.push(f);
            chars.next();
        }
        let mut directive = chars.next();
        let mut major_minor = None;
        if matches!(directive, Some('H' | 'L')) && matches!(chars.peek(), Some('d' | 'r')) {
            major_minor = directive;
            directive = chars.next();
        }
        let value = match directive {
            Some('%') => "%".to_owned(),
            Some('a') => format!("{:o}", st.perm()),
            Some('A') => mode::render(st.mode),
            Some('b') => blocks(st).to_string(),
            Some('B') => "512".into(),
            Some('d') => match major_minor {
                Some('H') => (st.dev >> 8).to_string(),
                Some(_) => (st.dev & 0xff).to_string(),
                None => st.dev.to_string(),
            },
            Some('D') => format!("{:x}", st.dev),
            Some('f') => format!("{:x}", st.mode),
            Some('F') => type_name(st).into(),
            Some('g') => st.gid.to_string(),
            Some('G') => names.group(st.gid),
            Some('h') => st.nlink.to_string(),
            Some('i') => st.ino.to_string(),
            Some('n') => file.to_owned(),
            Some('N') => {
                if st.is_symlink() {
                    let target = std::fs::read_link(file)
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    format!("'{file}' -> '{target}'")
                } else {
                    format!("'{file}'")
                }
            }
            Some('o') => "4096".into(),
            Some('r') => st.rdev.to_string(),
            Some('s') => st.size.to_string(),
            Some('t') => format!("{:x}", st.rdev >> 8),
            Some('T') => format!("{:x}", st.rdev & 0xff),
            Some('u') => st.uid.to_string(),
            Some('U') => names.user(st.uid),
            Some('x') => time_string(st.atime),
            Some('X') => st.atime.sec.to_string(),
            Some('y') => time_string(st.mtime),
            Some('Y') => st.mtime.sec.to_string(),
            Some('z') => time_string(st.ctime),
            Some('Z') => st.ctime.sec.to_string(),
            Some('w') => "-".into(),
            Some('W') => "0".into(),
            Some(other) => format!("?{other}"),
            None => "%".into(),
        };
        out.push_str(&pad(&value, &flags));
    }
    out
}

/// Applies printf-style `-`, `0` and width flags.
fn pad(value: &str, flags: &str) -> String {
    let left = flags.contains('-');
    let zero = flags.starts_with('0');
    let width: usize = flags
        .trim_start_matches(['-', '0', '#', '+', ' '])
        .parse()
        .unwrap_or(0);
    if value.len() >= width {
        return value.to_owned();
    }
    let fill = width - value.len();
    if left {
        format!("{value}{}", " ".repeat(fill))
    } else if zero {
        format!("{}{value}", "0".repeat(fill))
    } else {
        format!("{}{value}", " ".repeat(fill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let st = Stat {
            mode: 0o100644,
            uid: 1234,
            gid: 4321,
            size: 5,
            nlink: 1,
            ..Stat::default()
        };
        let mut names = Names::default();
        assert_eq!(
            render("%a %A %s %u %g %F %n %%", "f", &st, &mut names),
            "644 -rw-r--r-- 5 1234 4321 regular file f %"
        );
        assert_eq!(
            render("%04a|%-5s|%5s", "f", &st, &mut names),
            "0644|5    |    5"
        );
        assert_eq!(
            render("%y", "f", &st, &mut names),
            "1970-01-01 00:00:00.000000000 +0000"
        );
        assert_eq!(unescape("a\\tb\\n"), "a\tb\n");
    }
}
