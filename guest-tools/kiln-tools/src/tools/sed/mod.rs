//! sed: s (g, N, p, I; `&`, `\1`..`\9`, `\U\L\E\u\l`), y, p P d D n N q Q a i c = h H g G
//! x z, `{}`, `!`, labels with b/t/T; addresses N, $, /re/, \cREc, first~step, ranges
//! addr,addr addr,+N addr,~N; options -n -e -f -E/-r -s -i[SUFFIX] -z.

mod parse;

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};

use regex::bytes::Regex;

use crate::opts::{self, OptSpec, long_id, opt};
use crate::posix_re::Dialect;
use crate::util::{self, describe, warn};
use parse::{Addr, Addr2, CaseConv, Command, Kind, Piece, Subst};

const SPECS: &[OptSpec] = &[
    opt('n', Some("quiet"), false),
    opt('e', Some("expression"), true),
    opt('f', Some("file"), true),
    opt('E', Some("regexp-extended"), false),
    opt('r', None, false),
    opt('s', Some("separate"), false),
    opt('z', Some("null-data"), false),
    opt('u', Some("unbuffered"), false),
    opt(long_id(1), Some("silent"), false),
    opt(long_id(2), Some("posix"), false),
    opt(long_id(3), Some("debug"), false),
];

pub fn main(name: &str, args: Vec<String>) -> i32 {
    // `-i[SUFFIX]` takes an optional attached value, which getopt tables cannot express.
    let mut in_place: Option<String> = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut after_dashdash = false;
    for arg in args {
        if after_dashdash {
            rest.push(arg);
            continue;
        }
        if arg == "--" {
            after_dashdash = true;
            rest.push(arg);
        } else if let Some(suffix) = arg.strip_prefix("--in-place") {
            in_place = Some(suffix.strip_prefix('=').unwrap_or("").to_owned());
        } else if let Some(suffix) = arg.strip_prefix("-i") {
            in_place = Some(suffix.to_owned());
        } else if arg.starts_with('-')
            && !arg.starts_with("--")
            && arg.len() > 2
            && arg[1..].contains('i')
            && !arg.starts_with("-e")
            && !arg.starts_with("-f")
        {
            // `-ni`, `-Ei.bak` and similar clusters.
            let pos = arg.find('i').unwrap_or(arg.len());
            in_place = Some(arg[pos + 1..].to_owned());
            rest.push(arg[..pos].to_owned());
        } else {
            rest.push(arg);
        }
    }
    let parsed = match opts::parse(&rest, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let mut operands = parsed.operands.clone();
    let mut pieces: Vec<String> = Vec::new();
    for (id, value) in &parsed.opts {
        match (id, value) {
            ('e', Some(v)) => pieces.push(v.clone()),
            ('f', Some(file)) => match util::open_input(file).and_then(|mut r| {
                let mut s = String::new();
                r.read_to_string(&mut s).map(|_| s)
            }) {
                Ok(text) => pieces.push(text.strip_suffix('\n').unwrap_or(&text).to_owned()),
                Err(e) => {
                    warn(name, format!("couldn't open file {file}: {}", describe(&e)));
                    return 1;
                }
            },
            _ => {}
        }
    }
    if pieces.is_empty() {
        if operands.is_empty() {
            return util::usage_error(name, "no script specified");
        }
        pieces.push(operands.remove(0));
    }
    let dialect = if parsed.has('E') || parsed.has('r') {
        Dialect::Extended
    } else {
        Dialect::Basic
    };
    let script = pieces.join("\n");
    let commands = match parse::parse(&script, dialect) {
        Ok(c) => c,
        Err(e) => {
            warn(name, format!("-e expression #1, char {}: {}", e.pos, e.msg));
            return 1;
        }
    };
    let config = Config {
        quiet: parsed.has('n') || parsed.has(long_id(1)),
        separator: if parsed.has('z') { 0 } else { b'\n' },
    };
    if operands.is_empty() {
        if in_place.is_some() {
            warn(name, "no input files");
            return 1;
        }
        operands.push("-".into());
    }
    if let Some(suffix) = in_place {
        let mut status = 0;
        for file in &operands {
            if let Err(msg) = edit_in_place(&commands, &config, file, &suffix) {
                warn(name, msg);
                status = 4;
            }
        }
        return status;
    }
    let mut out = util::stdout();
    let mut sed = Sed::new(&commands, &config);
    let result = if parsed.has('s') {
        let mut status = Ok(0);
        for file in &operands {
            sed.reset_file();
            status = sed.run(name, std::slice::from_ref(file), &mut out);
            if !matches!(status, Ok(0)) || sed.quit.is_some() {
                break;
            }
        }
        status
    } else {
        sed.run(name, &operands, &mut out)
    };
    let flushed = out.flush();
    match result {
        Ok(code) if flushed.is_ok() || flushed.as_ref().is_err_and(util::is_broken_pipe) => code,
        Ok(_) => 4,
        Err(e) if util::is_broken_pipe(&e) => 0,
        Err(e) => {
            warn(name, format!("couldn't write: {}", describe(&e)));
            4
        }
    }
}

struct Config {
    quiet: bool,
    separator: u8,
}

fn edit_in_place(
    commands: &[Command],
    config: &Config,
    file: &str,
    suffix: &str,
) -> Result<(), String> {
    let meta = fs::metadata(file).map_err(|e| format!("can't read {file}: {}", describe(&e)))?;
    if !meta.is_file() {
        return Err(format!("couldn't edit {file}: not a regular file"));
    }
    let dir = match file.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(pos) => file[..pos].to_owned(),
        None => ".".to_owned(),
    };
    let base = file.rsplit('/').next().unwrap_or(file);
    let temp = format!("{}/.sed-{base}.tmp", dir.trim_end_matches('/'));
    let out_file = fs::File::create(&temp)
        .map_err(|e| format!("couldn't open temporary file {temp}: {}", describe(&e)))?;
    let mut out = io::BufWriter::new(out_file);
    let mut sed = Sed::new(commands, config);
    let run = sed
        .run("sed", &[file.to_owned()], &mut out)
        .and_then(|_| out.flush());
    drop(out);
    if let Err(e) = run {
        let _ = fs::remove_file(&temp);
        return Err(format!("{file}: {}", describe(&e)));
    }
    crate::sys::copy_owner(file, &temp);
    // std cannot set modes on WASI; the edited file keeps the original's mode.
    if let Ok(st) = crate::sys::stat(file, true) {
        let _ = crate::sys::chmod(&temp, st.perm(), true);
    }
    if !suffix.is_empty() {
        let backup = if suffix.contains('*') {
            suffix.replace('*', base)
        } else {
            format!("{file}{suffix}")
        };
        fs::rename(file, &backup).map_err(|e| format!("cannot rename {file}: {}", describe(&e)))?;
    }
    fs::rename(&temp, file).map_err(|e| format!("cannot rename {temp}: {}", describe(&e)))
}

/// Reads records one ahead so `$` is known.
struct Input<'a> {
    files: &'a [String],
    next_file: usize,
    reader: Option<Box<dyn BufRead>>,
    peeked: Option<(Vec<u8>, bool)>,
    separator: u8,
    errors: bool,
    tool: &'a str,
}

impl Input<'_> {
    fn read_raw(&mut self) -> Option<(Vec<u8>, bool)> {
        loop {
            if self.reader.is_none() {
                let file = self.files.get(self.next_file)?;
                self.next_file += 1;
                match util::open_input(file) {
                    Ok(r) => self.reader = Some(Box::new(BufReader::with_capacity(64 * 1024, r))),
                    Err(e) => {
                        warn(self.tool, format!("can't read {file}: {}", describe(&e)));
                        self.errors = true;
                        continue;
                    }
                }
            }
            let reader = self.reader.as_mut()?;
            let mut buf = Vec::new();
            match reader.read_until(self.separator, &mut buf) {
                Ok(0) => self.reader = None,
                Ok(_) => {
                    let had_newline = buf.last() == Some(&self.separator);
                    if had_newline {
                        buf.pop();
                    }
                    return Some((buf, had_newline));
                }
                Err(e) => {
                    warn(self.tool, format!("read error: {}", describe(&e)));
                    self.errors = true;
                    self.reader = None;
                }
            }
        }
    }

    fn next(&mut self) -> Option<(Vec<u8>, bool)> {
        let current = match self.peeked.take() {
            Some(p) => Some(p),
            None => self.read_raw(),
        };
        if current.is_some() {
            self.peeked = self.read_raw();
        }
        current
    }

    fn is_last(&self) -> bool {
        self.peeked.is_none()
    }
}

struct Sed<'a> {
    commands: &'a [Command],
    config: &'a Config,
    /// Per command: the line number where an active range ends (or u64::MAX: until regex).
    ranges: Vec<Option<u64>>,
    hold: Vec<u8>,
    line: u64,
    last_regex: Option<Regex>,
    quit: Option<i32>,
}

impl<'a> Sed<'a> {
    fn new(commands: &'a [Command], config: &'a Config) -> Self {
        Sed {
            commands,
            config,
            ranges: vec![None; commands.len()],
            hold: Vec::new(),
            line: 0,
            last_regex: None,
            quit: None,
        }
    }

    fn reset_file(&mut self) {
        self.line = 0;
        self.ranges.iter_mut().for_each(|r| *r = None);
    }

    fn run(&mut self, tool: &str, files: &[String], out: &mut dyn Write) -> io::Result<i32> {
        let mut input = Input {
            files,
            next_file: 0,
            reader: None,
            peeked: None,
            separator: self.config.separator,
            errors: false,
            tool,
        };
        let sep = self.config.separator;
        'cycle: while let Some((mut space, mut newline)) = input.next() {
            self.line += 1;
            let mut append: Vec<u8> = Vec::new();
            // An `a` ran: the line gets the newline it may lack before the text (GNU).
            let mut appended = false;
            let mut substituted = false;
            let mut pc = 0;
            let mut print_space = !self.config.quiet;
            while pc < self.commands.len() {
                let cmd = &self.commands[pc];
                if !self.selected(pc, &space, input.is_last())? {
                    pc = match cmd.kind {
                        Kind::BlockStart(end) => end + 1,
                        _ => pc + 1,
                    };
                    continue;
                }
                pc += 1;
                match &cmd.kind {
                    Kind::BlockStart(_) | Kind::BlockEnd | Kind::Label => {}
                    Kind::Subst(s) => {
                        if let Some(new) = self.substitute(s, &space)? {
                            space = new;
                            substituted = true;
                            if s.print {
                                out.write_all(&space)?;
                                out.write_all(&[sep])?;
                            }
                        }
                    }
                    Kind::Translit(map) => space.iter_mut().for_each(|b| *b = map[*b as usize]),
                    Kind::Print => {
                        out.write_all(&space)?;
                        out.write_all(&[sep])?;
                    }
                    Kind::PrintFirst => {
                        let end = space
                            .iter()
                            .position(|&b| b == b'\n')
                            .unwrap_or(space.len());
                        out.write_all(&space[..end])?;
                        out.write_all(&[sep])?;
                    }
                    Kind::Delete => {
                        out.write_all(&append)?;
                        continue 'cycle;
                    }
                    Kind::DeleteFirst => {
                        match space.iter().position(|&b| b == b'\n') {
                            Some(pos) => {
                                space.drain(..=pos);
                                out.write_all(&append)?;
                                append.clear();
                                // Restart the cycle without reading a new line.
                                pc = 0;
                                substituted = false;
                                continue;
                            }
                            None => {
                                out.write_all(&append)?;
                                continue 'cycle;
                            }
                        }
                    }
                    Kind::Next => {
                        if print_space {
                            write_record(out, &space, newline || !input.is_last(), sep)?;
                        }
                        out.write_all(&append)?;
                        append.clear();
                        match input.next() {
                            Some((next, nl)) => {
                                space = next;
                                newline = nl;
                                self.line += 1;
                            }
                            None => {
                                print_space = false;
                                break;
                            }
                        }
                    }
                    Kind::AppendNext => match input.next() {
                        Some((next, nl)) => {
                            out.write_all(&append)?;
                            append.clear();
                            space.push(b'\n');
                            space.extend_from_slice(&next);
                            newline = nl;
                            self.line += 1;
                        }
                        None => break, // GNU prints the pattern space when N hits EOF.
                    },
                    Kind::Quit(code) => {
                        self.quit = Some(*code);
                        break;
                    }
                    Kind::QuitSilent(code) => {
                        self.quit = Some(*code);
                        print_space = false;
                        break;
                    }
                    Kind::Append(text) => {
                        append.extend_from_slice(text);
                        appended = true;
                    }
                    Kind::Insert(text) => {
                        out.write_all(text)?;
                        out.write_all(b"\n")?;
                    }
                    Kind::Change(text) => {
                        // With a range, the text replaces the whole range once, at its end.
                        let range_done = cmd.a2.is_none() || self.ranges[pc - 1].is_none();
                        if range_done || cmd.negate {
                            out.write_all(text)?;
                            out.write_all(b"\n")?;
                        }
                        out.write_all(&append)?;
                        continue 'cycle;
                    }
                    Kind::LineNumber => writeln!(out, "{}", self.line)?,
                    Kind::Hold => self.hold.clone_from(&space),
                    Kind::HoldAppend => {
                        self.hold.push(b'\n');
                        self.hold.extend_from_slice(&space);
                    }
                    Kind::Get => space.clone_from(&self.hold),
                    Kind::GetAppend => {
                        space.push(b'\n');
                        space.extend_from_slice(&self.hold);
                    }
                    Kind::Exchange => std::mem::swap(&mut space, &mut self.hold),
                    Kind::Zap => space.clear(),
                    Kind::Branch(label) => pc = self.jump(label.as_deref()),
                    Kind::BranchIf(label) => {
                        if substituted {
                            substituted = false;
                            pc = self.jump(label.as_deref());
                        }
                    }
                    Kind::BranchUnless(label) => {
                        if !substituted {
                            pc = self.jump(label.as_deref());
                        } else {
                            substituted = false;
                        }
                    }
                }
            }
            if print_space {
                write_record(out, &space, newline || !input.is_last() || appended, sep)?;
            }
            out.write_all(&append)?;
            if let Some(code) = self.quit {
                return Ok(code);
            }
        }
        Ok(if input.errors { 2 } else { 0 })
    }

    fn jump(&self, label: Option<&str>) -> usize {
        match label {
            None => self.commands.len(),
            Some(l) => self
                .commands
                .iter()
                .position(|c| c.label.as_deref() == Some(l))
                .unwrap_or(self.commands.len()),
        }
    }

    fn regex_for<'r>(&'r self, re: &'r Option<Regex>) -> io::Result<&'r Regex> {
        re.as_ref().or(self.last_regex.as_ref()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "no previous regular expression",
            )
        })
    }

    fn addr_matches(&mut self, addr: &Addr, space: &[u8], last: bool) -> io::Result<bool> {
        Ok(match addr {
            Addr::Line(n) => self.line == *n,
            Addr::Last => last,
            Addr::Step(first, step) => {
                if *step == 0 {
                    self.line == *first
                } else {
                    self.line >= *first && (self.line - first).is_multiple_of(*step)
                }
            }
            Addr::Re(re) => {
                let regex = self.regex_for(re)?.clone();
                let hit = regex.is_match(space);
                self.last_regex = Some(regex);
                hit
            }
        })
    }

    fn selected(&mut self, index: usize, space: &[u8], last: bool) -> io::Result<bool> {
        let cmd = &self.commands[index];
        let Some(a1) = &cmd.a1 else {
            return Ok(!cmd.negate);
        };
        let hit = match &cmd.a2 {
            None => self.addr_matches(a1, space, last)?,
            Some(a2) => {
                if let Some(end) = self.ranges[index] {
                    // Inside a range: does this line close it?
                    let closes = match a2 {
                        Addr2::Addr(Addr::Line(_)) | Addr2::Plus(_) | Addr2::Multiple(_) => {
                            self.line >= end
                        }
                        Addr2::Addr(other) => self.addr_matches(other, space, last)?,
                    };
                    if closes {
                        self.ranges[index] = None;
                    }
                    true
                } else if self.addr_matches(a1, space, last)? {
                    let line = self.line;
                    let end = match a2 {
                        Addr2::Addr(Addr::Line(n)) => Some(*n),
                        Addr2::Plus(n) => Some(line + n),
                        Addr2::Multiple(m) => {
                            Some(if *m == 0 { line } else { line.div_ceil(*m) * m })
                        }
                        Addr2::Addr(_) => None,
                    };
                    match end {
                        Some(end) if end <= line => {}
                        Some(end) => self.ranges[index] = Some(end),
                        None if last => {}
                        None => self.ranges[index] = Some(u64::MAX),
                    }
                    true
                } else {
                    false
                }
            }
        };
        Ok(hit != cmd.negate)
    }

    fn substitute(&mut self, s: &Subst, space: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let regex = self.regex_for(&s.regex)?.clone();
        let mut out = Vec::with_capacity(space.len());
        let mut last_end = 0;
        let mut count = 0;
        let mut changed = false;
        let mut pos = 0;
        while pos <= space.len() {
            let Some(caps) = regex.captures_at(space, pos) else {
                break;
            };
            let Some(whole) = caps.get(0) else { break };
            count += 1;
            if count >= s.occurrence {
                out.extend_from_slice(&space[last_end..whole.start()]);
                expand(&s.replacement, &caps, &mut out);
                last_end = whole.end();
                changed = true;
                if !s.global {
                    break;
                }
            }
            pos = if whole.end() > whole.start() {
                whole.end()
            } else {
                whole.end() + 1
            };
        }
        self.last_regex = Some(regex);
        if !changed {
            return Ok(None);
        }
        out.extend_from_slice(&space[last_end..]);
        Ok(Some(out))
    }
}

fn write_record(out: &mut dyn Write, space: &[u8], newline: bool, sep: u8) -> io::Result<()> {
    out.write_all(space)?;
    if newline {
        out.write_all(&[sep])?;
    }
    Ok(())
}

/// Appends the replacement for one match, applying GNU case conversions.
fn expand(pieces: &[Piece], caps: &regex::bytes::Captures<'_>, out: &mut Vec<u8>) {
    let mut mode = CaseConv::End;
    let mut next: Option<CaseConv> = None;
    let emit = |bytes: &[u8], mode: CaseConv, next: &mut Option<CaseConv>, out: &mut Vec<u8>| {
        for &b in bytes {
            let b = match next.take() {
                Some(CaseConv::UpperNext) => b.to_ascii_uppercase(),
                Some(CaseConv::LowerNext) => b.to_ascii_lowercase(),
                _ => match mode {
                    CaseConv::Upper => b.to_ascii_uppercase(),
                    CaseConv::Lower => b.to_ascii_lowercase(),
                    _ => b,
                },
            };
            out.push(b);
        }
    };
    for piece in pieces {
        match piece {
            Piece::Literal(l) => emit(l, mode, &mut next, out),
            Piece::Group(g) => {
                if let Some(m) = caps.get(*g) {
                    emit(m.as_bytes(), mode, &mut next, out);
                }
            }
            Piece::Case(c @ (CaseConv::UpperNext | CaseConv::LowerNext)) => next = Some(*c),
            Piece::Case(c) => mode = *c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sed(script: &str, quiet: bool, ere: bool, input: &str) -> String {
        let dialect = if ere {
            Dialect::Extended
        } else {
            Dialect::Basic
        };
        let commands = parse::parse(script, dialect).unwrap();
        let config = Config {
            quiet,
            separator: b'\n',
        };
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kiln-sed-{}-{n}", std::process::id()));
        std::fs::write(&dir, input).unwrap();
        let mut out = Vec::new();
        let mut s = Sed::new(&commands, &config);
        s.run("sed", &[dir.to_string_lossy().into_owned()], &mut out)
            .unwrap();
        std::fs::remove_file(&dir).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn substitution() {
        assert_eq!(sed("s/o/0/", false, false, "foo\nboo\n"), "f0o\nb0o\n");
        assert_eq!(sed("s/o/0/g", false, false, "foo\n"), "f00\n");
        assert_eq!(sed("s/o/0/2", false, false, "fooo\n"), "fo0o\n");
        assert_eq!(sed(r"s/\(a*\)b/[\1]&/", false, false, "aab\n"), "[aa]aab\n");
        assert_eq!(sed("s/(a+)(b)/\\2\\1/", false, true, "aab\n"), "baa\n");
        assert_eq!(
            sed(r"s|/usr|/opt|g", false, false, "/usr/bin:/usr/lib\n"),
            "/opt/bin:/opt/lib\n"
        );
        assert_eq!(sed(r"s/\(.*\)/\U\1\E!/", false, false, "hi\n"), "HI!\n");
        assert_eq!(sed(r"s/x*/-/g", false, false, "abc\n"), "-a-b-c-\n");
        assert_eq!(sed("s/a/b/p", true, false, "a\nc\n"), "b\n");
        assert_eq!(sed("s/A/x/I", false, false, "a\n"), "x\n");
        assert_eq!(sed(r"s/a\/b/X/", false, false, "a/b\n"), "X\n");
        assert_eq!(sed("s/$/\\n/", false, false, "a\n"), "a\n\n");
    }

    #[test]
    fn addresses_and_ranges() {
        let input = "1\n2\n3\n4\n5\n";
        assert_eq!(sed("2d", false, false, input), "1\n3\n4\n5\n");
        assert_eq!(sed("2,4d", false, false, input), "1\n5\n");
        assert_eq!(sed("$d", false, false, input), "1\n2\n3\n4\n");
        assert_eq!(sed("/2/,/4/p", true, false, input), "2\n3\n4\n");
        assert_eq!(sed("2,+1d", false, false, input), "1\n4\n5\n");
        assert_eq!(sed("1~2d", false, false, input), "2\n4\n");
        assert_eq!(sed("2!d", false, false, input), "2\n");
        assert_eq!(sed("/3/,$!d", false, false, input), "3\n4\n5\n");
        assert_eq!(sed("4,2p", true, false, input), "4\n");
        assert_eq!(sed("\\,3,d", false, false, input), "1\n2\n4\n5\n");
        assert_eq!(sed("2q", false, false, input), "1\n2\n");
        assert_eq!(sed("2Q", false, false, input), "1\n");
        assert_eq!(sed("$=", true, false, input), "5\n");
    }

    #[test]
    fn text_commands_and_blocks() {
        assert_eq!(sed("2i\\\nnew", false, false, "a\nb\n"), "a\nnew\nb\n");
        assert_eq!(sed("1a after", false, false, "a\nb\n"), "a\nafter\nb\n");
        assert_eq!(
            sed("2c changed", false, false, "a\nb\nc\n"),
            "a\nchanged\nc\n"
        );
        assert_eq!(sed("/b/{s/b/B/;p}", true, false, "a\nb\n"), "B\n");
        assert_eq!(sed("y/abc/xyz/", false, false, "aabbcc\n"), "xxyyzz\n");
    }

    #[test]
    fn hold_space_and_branches() {
        assert_eq!(
            sed(":a;N;$!ba;s/\\n/,/g", false, false, "1\n2\n3\n"),
            "1,2,3\n"
        );
        assert_eq!(sed("1!G;h;$!d", false, false, "1\n2\n3\n"), "3\n2\n1\n");
        assert_eq!(sed("$!N;P;D", false, false, "1\n2\n3\n"), "1\n2\n3\n");
        assert_eq!(
            sed("s/a/A/;ta;s/$/-/;:a", false, false, "a\nb\n"),
            "A\nb-\n"
        );
    }

    #[test]
    fn missing_final_newline_is_preserved() {
        assert_eq!(sed("s/a/b/", false, false, "a\na"), "b\nb");
    }

    #[test]
    fn a_bare_append_only_ends_the_last_line() {
        // As GNU sed 4.9: the `$a\` idiom adds a missing final newline and nothing else;
        // appended text also goes after a newline; `a\` followed by a line appends it.
        assert_eq!(sed("$a\\", false, false, "x\ny"), "x\ny\n");
        assert_eq!(sed("$a\\", false, false, "x\ny\n"), "x\ny\n");
        assert_eq!(sed("$a foo", false, false, "a\na"), "a\na\nfoo\n");
        assert_eq!(sed("$a\\\nfoo", false, false, "x\n"), "x\nfoo\n");
        assert_eq!(sed("$a\\\n", false, false, "x\n"), "x\n\n");
    }

    #[test]
    fn script_errors() {
        for bad in [
            "s/a/b", "k", "2,d x", "{p", "p}", "ba", "s/a/\\1/", "y/ab/c/",
        ] {
            assert!(parse::parse(bad, Dialect::Basic).is_err(), "{bad}");
        }
    }
}
