//! ls with real modes and owners (WASI p1's filestat has neither): -l -n -a -A -R -d -1
//! -i -h -F -p -r -t -S -U -L -g -o. Output is one name per line (a build log is never a
//! terminal), names are sorted bytewise (C locale), widths are aligned as GNU does.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::mode;
use crate::opts::{self, OptSpec, long_id, opt};
use crate::passwd::Names;
use crate::sys::{self, Stat, kind};
use crate::util::{self, civil, describe, month_name, warn};
use crate::walk::{join, read_dir_sorted};

const SPECS: &[OptSpec] = &[
    opt('l', None, false),
    opt('n', Some("numeric-uid-gid"), false),
    opt('g', None, false),
    opt('o', None, false),
    opt('a', Some("all"), false),
    opt('A', Some("almost-all"), false),
    opt('R', Some("recursive"), false),
    opt('d', Some("directory"), false),
    opt('1', None, false),
    opt('i', Some("inode"), false),
    opt('h', Some("human-readable"), false),
    opt('F', Some("classify"), false),
    opt('p', None, false),
    opt('r', Some("reverse"), false),
    opt('t', None, false),
    opt('S', None, false),
    opt('U', None, false),
    opt('L', Some("dereference"), false),
    opt('C', None, false),
    opt('x', None, false),
    opt('s', Some("size"), false),
    opt(long_id(1), Some("color"), true),
    opt(long_id(2), Some("group-directories-first"), false),
    opt(long_id(3), Some("full-time"), false),
];

struct Opts {
    long: bool,
    numeric: bool,
    show_owner: bool,
    show_group: bool,
    all: bool,
    almost_all: bool,
    recursive: bool,
    directory: bool,
    inode: bool,
    human: bool,
    classify: bool,
    slash: bool,
    reverse: bool,
    sort: Sort,
    deref: bool,
    size_blocks: bool,
    full_time: bool,
    dirs_first: bool,
}

#[derive(PartialEq)]
enum Sort {
    Name,
    Time,
    Size,
    None,
}

struct Entry {
    name: String,
    path: String,
    st: Stat,
    target: Option<String>,
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let parsed = match opts::parse(&args, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let has = |c| parsed.has(c);
    let o = Opts {
        long: has('l') || has('n') || has('g') || has('o') || has(long_id(3)),
        numeric: has('n'),
        show_owner: !has('g'),
        show_group: !has('o'),
        all: has('a'),
        almost_all: has('A'),
        recursive: has('R'),
        directory: has('d'),
        inode: has('i'),
        human: has('h'),
        classify: has('F'),
        slash: has('p'),
        reverse: has('r'),
        sort: if has('U') {
            Sort::None
        } else if has('S') {
            Sort::Size
        } else if has('t') {
            Sort::Time
        } else {
            Sort::Name
        },
        deref: has('L'),
        size_blocks: has('s'),
        full_time: has(long_id(3)),
        dirs_first: has(long_id(2)),
    };
    let operands = if parsed.operands.is_empty() {
        vec![".".to_owned()]
    } else {
        parsed.operands.clone()
    };
    let mut ls = Ls {
        o,
        names: Names::default(),
        status: 0,
        now: now(),
    };
    let mut out = util::stdout();
    let result = ls.run(name, &operands, &mut out).and_then(|()| out.flush());
    match result {
        Err(e) if !util::is_broken_pipe(&e) => {
            warn(name, format!("write error: {}", describe(&e)));
            2
        }
        _ => ls.status,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Ls {
    o: Opts,
    names: Names,
    status: i32,
    now: i64,
}

impl Ls {
    fn run(&mut self, tool: &str, operands: &[String], out: &mut impl Write) -> io::Result<()> {
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for operand in operands {
            // Operands: follow symlinks to directories unless -l or -d (GNU's -H-like rule).
            let follow = self.o.deref || !(self.o.long || self.o.directory || self.o.classify);
            let st = match sys::stat(operand, false) {
                Ok(st) if st.is_symlink() && follow => sys::stat(operand, true).unwrap_or(st),
                Ok(st) => st,
                Err(e) => {
                    warn(tool, format!("cannot access '{operand}': {}", describe(&e)));
                    self.status = 2;
                    continue;
                }
            };
            let entry = self.entry(operand.clone(), operand.clone(), st);
            if st.is_dir() && !self.o.directory {
                dirs.push(entry);
            } else {
                files.push(entry);
            }
        }
        self.sort(&mut files);
        self.sort(&mut dirs);
        let show_headers = self.o.recursive || operands.len() > 1;
        let had_files = !files.is_empty();
        if had_files {
            self.print_entries(&files, false, out)?;
        }
        for (i, dir) in dirs.iter().enumerate() {
            if had_files || i > 0 {
                out.write_all(b"\n")?;
            }
            self.list_dir(tool, &dir.path, show_headers, out)?;
        }
        Ok(())
    }

    fn entry(&self, name: String, path: String, st: Stat) -> Entry {
        let target = if st.is_symlink() && self.o.long {
            std::fs::read_link(&path)
                .ok()
                .map(|t| t.to_string_lossy().into_owned())
        } else {
            None
        };
        Entry {
            name,
            path,
            st,
            target,
        }
    }

    fn sort(&self, entries: &mut [Entry]) {
        match self.o.sort {
            Sort::None => {}
            Sort::Name => entries.sort_by(|a, b| a.name.cmp(&b.name)),
            Sort::Time => entries.sort_by(|a, b| {
                b.st.mtime
                    .cmp(&a.st.mtime)
                    .then_with(|| a.name.cmp(&b.name))
            }),
            Sort::Size => {
                entries.sort_by(|a, b| b.st.size.cmp(&a.st.size).then_with(|| a.name.cmp(&b.name)))
            }
        }
        if self.o.reverse && self.o.sort != Sort::None {
            entries.reverse();
        }
        if self.o.dirs_first {
            entries.sort_by_key(|e| !e.st.is_dir());
        }
    }

    fn list_dir(
        &mut self,
        tool: &str,
        path: &str,
        header: bool,
        out: &mut impl Write,
    ) -> io::Result<()> {
        if header {
            writeln!(out, "{path}:")?;
        }
        let names = match read_dir_sorted(path) {
            Ok(n) => n,
            Err(e) => {
                warn(
                    tool,
                    format!("cannot open directory '{path}': {}", describe(&e)),
                );
                self.status = 2;
                return Ok(());
            }
        };
        let mut entries = Vec::new();
        if self.o.all {
            for dot in [".", ".."] {
                if let Ok(st) = sys::stat(&join(path, dot), true) {
                    entries.push(self.entry(dot.to_owned(), join(path, dot), st));
                }
            }
        }
        for name in names {
            if name.starts_with('.') && !self.o.all && !self.o.almost_all {
                continue;
            }
            let child = join(path, &name);
            let st = match sys::stat(&child, false) {
                Ok(st) if self.o.deref && st.is_symlink() => sys::stat(&child, true).unwrap_or(st),
                Ok(st) => st,
                Err(e) => {
                    warn(tool, format!("cannot access '{child}': {}", describe(&e)));
                    self.status = 1;
                    continue;
                }
            };
            entries.push(self.entry(name, child, st));
        }
        self.sort(&mut entries);
        self.print_entries(&entries, true, out)?;
        if self.o.recursive {
            for e in &entries {
                if e.st.is_dir() && e.name != "." && e.name != ".." {
                    out.write_all(b"\n")?;
                    self.list_dir(tool, &e.path, true, out)?;
                }
            }
        }
        Ok(())
    }

    fn print_entries(
        &mut self,
        entries: &[Entry],
        total: bool,
        out: &mut impl Write,
    ) -> io::Result<()> {
        if (self.o.long || self.o.size_blocks) && total {
            let sum: u64 = entries
                .iter()
                .map(|e| crate::tools::stat::blocks(&e.st) / 2)
                .sum();
            writeln!(out, "total {}", self.size_text(sum * 1024, true))?;
        }
        if !self.o.long {
            for e in entries {
                if self.o.inode {
                    write!(out, "{} ", e.st.ino)?;
                }
                if self.o.size_blocks {
                    write!(out, "{} ", crate::tools::stat::blocks(&e.st) / 2)?;
                }
                writeln!(out, "{}{}", e.name, self.suffix(&e.st))?;
            }
            return Ok(());
        }
        let rows: Vec<[String; 6]> = entries.iter().map(|e| self.long_fields(e)).collect();
        let mut widths = BTreeMap::new();
        for row in &rows {
            for (i, field) in row.iter().enumerate() {
                let w = widths.entry(i).or_insert(0);
                *w = field.len().max(*w);
            }
        }
        let w = |i| widths.get(&i).copied().unwrap_or(0);
        for (e, row) in entries.iter().zip(&rows) {
            if self.o.inode {
                write!(out, "{:>w$} ", row[0], w = w(0))?;
            }
            write!(
                out,
                "{} {:>w$}",
                mode::render(e.st.mode),
                e.st.nlink,
                w = w(1)
            )?;
            if self.o.show_owner {
                write!(out, " {:<w$}", row[2], w = w(2))?;
            }
            if self.o.show_group {
                write!(out, " {:<w$}", row[3], w = w(3))?;
            }
            write!(out, " {:>w$} {} {}", row[4], row[5], e.name, w = w(4))?;
            if let Some(t) = &e.target {
                write!(out, " -> {t}")?;
            }
            writeln!(
                out,
                "{}",
                if e.target.is_some() {
                    ""
                } else {
                    self.suffix(&e.st)
                }
            )?;
        }
        Ok(())
    }

    fn long_fields(&mut self, e: &Entry) -> [String; 6] {
        let (owner, group) = if self.o.numeric {
            (e.st.uid.to_string(), e.st.gid.to_string())
        } else {
            (self.names.user(e.st.uid), self.names.group(e.st.gid))
        };
        let kind = e.st.mode & kind::MASK;
        let size = if kind == kind::CHAR || kind == kind::BLOCK {
            format!("{}, {}", e.st.rdev >> 8, e.st.rdev & 0xff)
        } else {
            self.size_text(e.st.size, false)
        };
        [
            e.st.ino.to_string(),
            e.st.nlink.to_string(),
            owner,
            group,
            size,
            self.time_text(e.st.mtime),
        ]
    }

    fn size_text(&self, bytes: u64, total: bool) -> String {
        if !self.o.human {
            return if total {
                (bytes / 1024).to_string()
            } else {
                bytes.to_string()
            };
        }
        human(bytes)
    }

    fn time_text(&self, t: sys::Time) -> String {
        let (y, mo, d, h, mi, s) = civil(t.sec);
        if self.o.full_time {
            return format!(
                "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:09} +0000",
                t.nsec
            );
        }
        // GNU shows the year instead of the time for files older than six months or in
        // the future.
        const SIX_MONTHS: i64 = 31_556_952 / 2;
        if t.sec > self.now || self.now - t.sec > SIX_MONTHS {
            format!("{} {d:>2}  {y}", month_name(mo))
        } else {
            format!("{} {d:>2} {h:02}:{mi:02}", month_name(mo))
        }
    }

    fn suffix(&self, st: &Stat) -> &'static str {
        if !self.o.classify && !self.o.slash {
            return "";
        }
        match st.mode & kind::MASK {
            kind::DIR => "/",
            _ if self.o.slash => "",
            kind::SYMLINK => "@",
            kind::FIFO => "|",
            kind::SOCKET => "=",
            _ if st.mode & 0o111 != 0 => "*",
            _ => "",
        }
    }
}

/// GNU `-h` sizes: 1024-based, one decimal below 10, rounded up.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if bytes < 1024 {
        return bytes.to_string();
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    value /= 1024.0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        let v = (value * 10.0).ceil() / 10.0;
        if v >= 10.0 {
            format!("{}{}", v.ceil() as u64, UNITS[unit])
        } else {
            format!("{v:.1}{}", UNITS[unit])
        }
    } else {
        format!("{}{}", value.ceil() as u64, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::human(1000), "1000");
        assert_eq!(super::human(1024), "1.0K");
        assert_eq!(super::human(1536), "1.5K");
        assert_eq!(super::human(10 * 1024 * 1024), "10M");
        assert_eq!(super::human(1_100_000), "1.1M");
    }
}
