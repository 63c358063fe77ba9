//! grep: BRE by default, -E, -F; -i -v -w -x -c -l -L -n -h -H -o -q -s -r -R, -e, -f.
//! Exit status 0 if a line was selected, 1 if none, 2 on error (as GNU grep).
//! Recursive walks visit directory entries in sorted order for deterministic output.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};

use regex::bytes::Regex;

use crate::opts::{self, OptSpec, long_id, opt};
use crate::posix_re::{self, Dialect};
use crate::util::{self, describe, warn};

const SPECS: &[OptSpec] = &[
    opt('E', Some("extended-regexp"), false),
    opt('F', Some("fixed-strings"), false),
    opt('G', Some("basic-regexp"), false),
    opt('e', Some("regexp"), true),
    opt('f', Some("file"), true),
    opt('i', Some("ignore-case"), false),
    opt('y', None, false),
    opt('v', Some("invert-match"), false),
    opt('w', Some("word-regexp"), false),
    opt('x', Some("line-regexp"), false),
    opt('c', Some("count"), false),
    opt('l', Some("files-with-matches"), false),
    opt('L', Some("files-without-match"), false),
    opt('n', Some("line-number"), false),
    opt('h', Some("no-filename"), false),
    opt('H', Some("with-filename"), false),
    opt('o', Some("only-matching"), false),
    opt('q', Some("quiet"), false),
    opt('s', Some("no-messages"), false),
    opt('r', Some("recursive"), false),
    opt('R', Some("dereference-recursive"), false),
    opt('a', Some("text"), false),
    opt('m', Some("max-count"), true),
    opt(long_id(1), Some("silent"), false),
    opt(long_id(2), Some("color"), true),
    opt(long_id(3), Some("colour"), true),
    opt(long_id(4), Some("include"), true),
    opt(long_id(5), Some("exclude"), true),
    opt(long_id(6), Some("exclude-dir"), true),
    opt(long_id(7), Some("null"), false),
    opt('Z', None, false),
];

#[derive(Clone, Copy, PartialEq)]
enum ListMode {
    None,
    Matching,
    NonMatching,
}

struct Grep {
    matcher: Matcher,
    invert: bool,
    count: bool,
    list: ListMode,
    line_numbers: bool,
    only_matching: bool,
    quiet: bool,
    no_messages: bool,
    text: bool,
    max_count: Option<u64>,
    with_filename: bool,
    null_after_name: bool,
    include: Vec<String>,
    exclude: Vec<String>,
    exclude_dir: Vec<String>,
}

/// What selects a line: a compiled pattern plus the -w/-x constraints.
pub struct Matcher {
    regex: Regex,
    word: bool,
}

impl Matcher {
    /// Builds the matcher for `patterns` (each may hold several newline-separated ones).
    pub fn new(
        patterns: &[String],
        fixed: bool,
        dialect: Dialect,
        icase: bool,
        word: bool,
        line: bool,
    ) -> Result<Matcher, posix_re::PatternError> {
        let mut alternatives = Vec::new();
        for pattern in patterns.iter().flat_map(|p| p.split('\n')) {
            alternatives.push(if fixed {
                regex::escape(pattern)
            } else {
                posix_re::translate(pattern, dialect)?
            });
        }
        let joined = alternatives
            .iter()
            .map(|a| format!("(?:{a})"))
            .collect::<Vec<_>>()
            .join("|");
        let full = if line {
            format!("^(?:{joined})$")
        } else {
            joined
        };
        Ok(Matcher {
            regex: posix_re::build(&full, icase)?,
            word,
        })
    }

    /// The matches in `line` (without its newline), honouring -w.
    pub fn find_iter<'a>(&'a self, line: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
        let mut pos = 0;
        std::iter::from_fn(move || {
            while pos <= line.len() {
                let m = self.regex.find_at(line, pos)?;
                let (s, e) = (m.start(), m.end());
                pos = if e > s { e } else { e + 1 };
                if !self.word || is_word_bounded(line, s, e) {
                    return Some((s, e));
                }
                if e > s && self.word {
                    pos = s + 1;
                }
            }
            None
        })
    }

    pub fn is_match(&self, line: &[u8]) -> bool {
        if self.word {
            self.find_iter(line).next().is_some()
        } else {
            self.regex.is_match(line)
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_word_bounded(line: &[u8], s: usize, e: usize) -> bool {
    let before = s == 0 || !is_word_byte(line[s - 1]);
    let after = e == line.len() || !is_word_byte(line[e]);
    before && after && e > s
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let parsed = match opts::parse(&args, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let mut operands = parsed.operands.clone();
    let mut patterns: Vec<String> = parsed.values('e').map(str::to_owned).collect();
    for file in parsed.values('f') {
        match util::open_input(file).and_then(|mut r| {
            let mut s = String::new();
            r.read_to_string(&mut s).map(|_| s)
        }) {
            Ok(text) => patterns.extend(text.lines().map(str::to_owned)),
            Err(e) => {
                warn(name, format!("{file}: {}", describe(&e)));
                return 2;
            }
        }
    }
    if !parsed.has('e') && !parsed.has('f') {
        if operands.is_empty() {
            return util::usage_error(name, "no pattern given");
        }
        patterns.push(operands.remove(0));
    }
    // Later -E/-F/-G win, as in GNU grep.
    let mode = parsed.opts.iter().rev().find_map(|(id, _)| match id {
        'E' | 'F' | 'G' => Some(*id),
        _ => None,
    });
    let mode = match (name, mode) {
        (_, Some(m)) => m,
        ("egrep", None) => 'E',
        ("fgrep", None) => 'F',
        _ => 'G',
    };
    let dialect = if mode == 'E' {
        Dialect::Extended
    } else {
        Dialect::Basic
    };
    let matcher = match Matcher::new(
        &patterns,
        mode == 'F',
        dialect,
        parsed.has('i') || parsed.has('y'),
        parsed.has('w'),
        parsed.has('x'),
    ) {
        Ok(m) => m,
        Err(e) => {
            warn(name, e);
            return 2;
        }
    };
    let recursive = parsed.has('r') || parsed.has('R');
    if operands.is_empty() {
        operands.push(if recursive { ".".into() } else { "-".into() });
    }
    let max_count = match parsed.value('m').map(str::parse::<u64>) {
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return util::usage_error(name, "invalid max count"),
        None => None,
    };
    let list = if parsed.has('l') {
        ListMode::Matching
    } else if parsed.has('L') {
        ListMode::NonMatching
    } else {
        ListMode::None
    };
    let with_filename = if parsed.has('h') {
        false
    } else {
        parsed.has('H') || recursive || operands.len() > 1
    };
    let grep = Grep {
        matcher,
        invert: parsed.has('v'),
        count: parsed.has('c'),
        list,
        line_numbers: parsed.has('n'),
        only_matching: parsed.has('o'),
        quiet: parsed.has('q') || parsed.has(long_id(1)),
        no_messages: parsed.has('s'),
        text: parsed.has('a'),
        max_count,
        with_filename,
        null_after_name: parsed.has('Z') || parsed.has(long_id(7)),
        include: parsed.values(long_id(4)).map(str::to_owned).collect(),
        exclude: parsed.values(long_id(5)).map(str::to_owned).collect(),
        exclude_dir: parsed.values(long_id(6)).map(str::to_owned).collect(),
    };
    let mut out = util::stdout();
    let mut state = State {
        matched: false,
        error: false,
    };
    for operand in &operands {
        if let Err(e) = grep.operand(
            name,
            operand,
            parsed.has('R'),
            recursive,
            true,
            &mut out,
            &mut state,
        ) {
            if util::is_broken_pipe(&e) {
                break;
            }
            state.error = true;
        }
        if state.matched && grep.quiet {
            break;
        }
    }
    if out.flush().is_err() && !state.matched {
        state.error = true;
    }
    match (state.matched, state.error) {
        (true, _) if grep.quiet => 0,
        (_, true) => 2,
        (true, false) => 0,
        (false, false) => 1,
    }
}

struct State {
    matched: bool,
    error: bool,
}

impl Grep {
    #[allow(clippy::too_many_arguments)]
    fn operand(
        &self,
        tool: &str,
        path: &str,
        deref: bool,
        recursive: bool,
        top: bool,
        out: &mut impl Write,
        state: &mut State,
    ) -> io::Result<()> {
        if path == "-" {
            let stdin = io::stdin();
            return self.search(tool, "(standard input)", &mut stdin.lock(), out, state);
        }
        let meta = if deref || top {
            fs::metadata(path)
        } else {
            fs::symlink_metadata(path)
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                if !self.no_messages {
                    warn(tool, format!("{path}: {}", describe(&e)));
                }
                state.error = true;
                return Ok(());
            }
        };
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        if meta.is_dir() {
            if !recursive {
                if !self.no_messages {
                    warn(tool, format!("{path}: Is a directory"));
                }
                return Ok(());
            }
            let base = path.rsplit('/').next().unwrap_or(path);
            if !top && self.exclude_dir.iter().any(|g| glob_match(g, base)) {
                return Ok(());
            }
            let mut names: Vec<String> = match fs::read_dir(path) {
                Ok(rd) => rd
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) => {
                    warn(tool, format!("{path}: {}", describe(&e)));
                    state.error = true;
                    return Ok(());
                }
            };
            names.sort();
            for entry in names {
                let child = if path.ends_with('/') {
                    format!("{path}{entry}")
                } else {
                    format!("{path}/{entry}")
                };
                self.operand(tool, &child, deref, recursive, false, out, state)?;
                if state.matched && self.quiet {
                    break;
                }
            }
            return Ok(());
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        if !top || recursive {
            if !self.include.is_empty() && !self.include.iter().any(|g| glob_match(g, base)) {
                return Ok(());
            }
            if self.exclude.iter().any(|g| glob_match(g, base)) {
                return Ok(());
            }
        }
        match fs::File::open(path) {
            Ok(file) => self.search(
                tool,
                path,
                &mut BufReader::with_capacity(64 * 1024, file),
                out,
                state,
            ),
            Err(e) => {
                if !self.no_messages {
                    warn(tool, format!("{path}: {}", describe(&e)));
                }
                state.error = true;
                Ok(())
            }
        }
    }

    fn search(
        &self,
        tool: &str,
        name: &str,
        input: &mut impl BufRead,
        out: &mut impl Write,
        state: &mut State,
    ) -> io::Result<()> {
        let mut binary = false;
        if !self.text {
            let head = match input.fill_buf() {
                Ok(buf) => buf,
                Err(e) => {
                    warn(tool, format!("{name}: {}", describe(&e)));
                    state.error = true;
                    return Ok(());
                }
            };
            binary = head.contains(&0);
        }
        let sep: &[u8] = if self.null_after_name { b"\0" } else { b":" };
        let mut line = Vec::new();
        let mut number = 0u64;
        let mut selected = 0u64;
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    warn(tool, format!("{name}: {}", describe(&e)));
                    state.error = true;
                    break;
                }
            }
            number += 1;
            let content = line.strip_suffix(b"\n").unwrap_or(&line);
            if self.matcher.is_match(content) == self.invert {
                continue;
            }
            selected += 1;
            state.matched = true;
            if self.quiet {
                return Ok(());
            }
            if self.list != ListMode::None {
                break;
            }
            if !self.count {
                if binary {
                    // GNU grep >= 3.5 reports this on stderr.
                    out.flush()?;
                    warn(tool, format!("{name}: binary file matches"));
                    break;
                }
                self.print_line(name, sep, number, content, out)?;
            }
            if self.max_count.is_some_and(|m| selected >= m) {
                break;
            }
        }
        if self.count {
            if self.with_filename {
                out.write_all(name.as_bytes())?;
                out.write_all(sep)?;
            }
            writeln!(out, "{selected}")?;
        }
        let listed = match self.list {
            ListMode::Matching => selected > 0,
            ListMode::NonMatching => selected == 0,
            ListMode::None => false,
        };
        if listed {
            out.write_all(name.as_bytes())?;
            out.write_all(if self.null_after_name { b"\0" } else { b"\n" })?;
        }
        Ok(())
    }

    fn print_line(
        &self,
        name: &str,
        sep: &[u8],
        number: u64,
        content: &[u8],
        out: &mut impl Write,
    ) -> io::Result<()> {
        let prefix = |out: &mut dyn Write| -> io::Result<()> {
            if self.with_filename {
                out.write_all(name.as_bytes())?;
                out.write_all(sep)?;
            }
            if self.line_numbers {
                write!(out, "{number}:")?;
            }
            Ok(())
        };
        if self.only_matching {
            if self.invert {
                return Ok(());
            }
            for (s, e) in self.matcher.find_iter(content) {
                if e > s {
                    prefix(out)?;
                    out.write_all(&content[s..e])?;
                    out.write_all(b"\n")?;
                }
            }
            return Ok(());
        }
        prefix(out)?;
        out.write_all(content)?;
        out.write_all(b"\n")
    }
}

/// Shell-style glob (`*`, `?`, `[...]`) for --include/--exclude.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    crate::glob::matches(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(p: &str, word: bool, line: bool) -> Matcher {
        Matcher::new(&[p.to_owned()], false, Dialect::Basic, false, word, line).unwrap()
    }

    #[test]
    fn word_and_line_constraints() {
        let m = matcher("foo", true, false);
        assert!(m.is_match(b"a foo b"));
        assert!(!m.is_match(b"foobar"));
        assert!(m.is_match(b"foobar foo"));
        let m = matcher("foo", false, true);
        assert!(m.is_match(b"foo"));
        assert!(!m.is_match(b"foo "));
    }

    #[test]
    fn multiple_and_fixed_patterns() {
        let m = Matcher::new(
            &["a.c\nx*".into()],
            true,
            Dialect::Basic,
            false,
            false,
            false,
        )
        .unwrap();
        assert!(m.is_match(b"1a.c2"));
        assert!(!m.is_match(b"abc"));
        assert!(m.is_match(b"x*"));
        let found: Vec<_> = matcher("o", false, false).find_iter(b"foo").collect();
        assert_eq!(found, [(1, 2), (2, 3)]);
    }
}
