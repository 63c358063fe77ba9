//! xargs [-0] [-d DELIM] [-a FILE] [-n MAX] [-L MAX] [-I REPLACE] [-s SIZE] [-r] [-t] [-x]
//! [-P N] [COMMAND [ARG]...]. Commands run through the embedder (kiln_v1 spawn), one at a
//! time (-P is accepted; running sequentially keeps output deterministic). Exit status as
//! GNU: 123 if a command exited 1-125, 124 if one exited 255, 126/127 if it could not run.

use std::io::{self, BufRead, BufReader};

use crate::opts::{self, OptSpec, opt};
use crate::sys;
use crate::util::{self, describe, warn};

const SPECS: &[OptSpec] = &[
    opt('0', Some("null"), false),
    opt('d', Some("delimiter"), true),
    opt('a', Some("arg-file"), true),
    opt('n', Some("max-args"), true),
    opt('L', Some("max-lines"), true),
    opt('I', None, true),
    opt('i', Some("replace"), false),
    opt('s', Some("max-chars"), true),
    opt('r', Some("no-run-if-empty"), false),
    opt('t', Some("verbose"), false),
    opt('x', Some("exit"), false),
    opt('P', Some("max-procs"), true),
    opt('E', None, true),
    opt('e', Some("eof"), false),
];

/// How input is split into arguments.
#[derive(Clone, Copy)]
pub enum Split {
    /// Blanks and newlines separate; quotes and backslash escape (the default).
    Shell,
    Delimiter(u8),
}

/// Splits input into (argument, ends-a-line) items.
pub fn split_args(
    input: &mut dyn BufRead,
    split: Split,
    eof: Option<&str>,
) -> Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    match split {
        Split::Delimiter(d) => {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n = input.read_until(d, &mut buf).map_err(|e| describe(&e))?;
                if n == 0 {
                    break;
                }
                if buf.last() == Some(&d) {
                    buf.pop();
                }
                out.push((String::from_utf8_lossy(&buf).into_owned(), true));
            }
        }
        Split::Shell => {
            let mut text = String::new();
            input.read_to_string(&mut text).map_err(|e| describe(&e))?;
            let mut chars = text.chars().peekable();
            let mut current = String::new();
            let mut in_word = false;
            while let Some(c) = chars.next() {
                match c {
                    ' ' | '\t' | '\n' => {
                        if in_word {
                            if eof.is_some_and(|e| e == current) {
                                return Ok(out);
                            }
                            out.push((std::mem::take(&mut current), c == '\n'));
                            in_word = false;
                        } else if c == '\n'
                            && let Some(last) = out.last_mut()
                        {
                            last.1 = true;
                        }
                    }
                    '\'' | '"' => {
                        in_word = true;
                        loop {
                            match chars.next() {
                                Some(q) if q == c => break,
                                Some('\n') | None => {
                                    let kind = if c == '\'' { "single" } else { "double" };
                                    return Err(format!(
                                        "unmatched {kind} quote; by default quotes are special to xargs unless you use the -0 option"
                                    ));
                                }
                                Some(other) => current.push(other),
                            }
                        }
                    }
                    '\\' => {
                        in_word = true;
                        if let Some(n) = chars.next() {
                            current.push(n);
                        }
                    }
                    c => {
                        in_word = true;
                        current.push(c);
                    }
                }
            }
            if in_word && eof.is_none_or(|e| e != current) {
                out.push((current, true));
            }
        }
    }
    Ok(out)
}

fn parse_delim(d: &str) -> Option<u8> {
    match d {
        "\\n" => Some(b'\n'),
        "\\t" => Some(b'\t'),
        "\\0" => Some(0),
        s if s.len() == 1 => s.bytes().next(),
        _ => None,
    }
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let p = match opts::parse(&args, SPECS, false) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let split = if p.has('0') {
        Split::Delimiter(0)
    } else if let Some(d) = p.value('d') {
        match parse_delim(d) {
            Some(b) => Split::Delimiter(b),
            None => return util::usage_error(name, format!("invalid delimiter: {d}")),
        }
    } else {
        Split::Shell
    };
    let number = |c: char| -> Result<Option<usize>, i32> {
        match p.value(c).map(str::parse::<usize>) {
            None => Ok(None),
            Some(Ok(n)) if n > 0 => Ok(Some(n)),
            Some(_) => Err(util::usage_error(
                name,
                format!("invalid number for -{c} option"),
            )),
        }
    };
    let (max_args, max_lines, max_chars) = match (number('n'), number('L'), number('s')) {
        (Ok(n), Ok(l), Ok(s)) => (n, l, s.unwrap_or(128 * 1024)),
        (Err(c), _, _) | (_, Err(c), _) | (_, _, Err(c)) => return c,
    };
    let replace = p
        .value('I')
        .map(str::to_owned)
        .or_else(|| p.has('i').then(|| "{}".to_owned()));
    let command: Vec<String> = if p.operands.is_empty() {
        vec!["echo".into()]
    } else {
        p.operands.clone()
    };
    let mut input: Box<dyn BufRead> = match p.value('a') {
        Some(file) => match std::fs::File::open(file) {
            Ok(f) => Box::new(BufReader::new(f)),
            Err(e) => {
                warn(name, format!("{file}: {}", describe(&e)));
                return 1;
            }
        },
        None => Box::new(BufReader::new(io::stdin())),
    };
    let items = match split_args(&mut *input, split, p.value('E')) {
        Ok(items) => items,
        Err(msg) => {
            warn(name, msg);
            return 1;
        }
    };
    let batches = batches(
        &command,
        &items,
        replace.as_deref(),
        max_args,
        max_lines,
        max_chars,
    );
    if batches.is_empty() && !p.has('r') && replace.is_none() {
        return run(name, command.clone(), p.has('t'));
    }
    let mut status = 0;
    for argv in batches {
        match run(name, argv, p.has('t')) {
            0 => {}
            255 => {
                warn(
                    name,
                    format!("{}: exited with status 255; aborting", command[0]),
                );
                return 124;
            }
            code @ (126 | 127) => return code,
            code if code > 128 => return 125,
            _ => status = 123,
        }
    }
    status
}

/// The argument vectors to run.
fn batches(
    command: &[String],
    items: &[(String, bool)],
    replace: Option<&str>,
    max_args: Option<usize>,
    max_lines: Option<usize>,
    max_chars: usize,
) -> Vec<Vec<String>> {
    if let Some(r) = replace {
        // -I: one command per input line, with every occurrence replaced.
        return lines(items)
            .into_iter()
            .map(|line| {
                command
                    .iter()
                    .map(|a| a.replace(r, &line.join(" ")))
                    .collect()
            })
            .collect();
    }
    let base_len: usize = command.iter().map(|a| a.len() + 1).sum();
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut len = base_len;
    let mut lines_in_batch = 0;
    for (arg, ends_line) in items {
        let full = max_args.is_some_and(|m| current.len() >= m)
            || (len + arg.len() + 1 > max_chars && !current.is_empty());
        if full {
            out.push(command.iter().cloned().chain(current.drain(..)).collect());
            len = base_len;
            lines_in_batch = 0;
        }
        len += arg.len() + 1;
        current.push(arg.clone());
        if *ends_line {
            lines_in_batch += 1;
            if max_lines.is_some_and(|m| lines_in_batch >= m) {
                out.push(command.iter().cloned().chain(current.drain(..)).collect());
                len = base_len;
                lines_in_batch = 0;
            }
        }
    }
    if !current.is_empty() {
        out.push(command.iter().cloned().chain(current).collect());
    }
    out
}

fn lines(items: &[(String, bool)]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    for (arg, ends) in items {
        line.push(arg.clone());
        if *ends {
            out.push(std::mem::take(&mut line));
        }
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

fn run(name: &str, argv: Vec<String>, trace: bool) -> i32 {
    if trace {
        eprintln!("{}", argv.join(" "));
    }
    match sys::run(&sys::Command {
        stdin: sys::Stdio::Null,
        ..sys::Command::new(argv.clone())
    }) {
        Ok(code) => code,
        Err(e) => {
            warn(name, format!("{}: {}", argv[0], describe(&e)));
            126
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &str) -> Vec<(String, bool)> {
        split_args(&mut input.as_bytes(), Split::Shell, None).unwrap()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splitting_and_quotes() {
        let got: Vec<String> = items("a 'b c' \"d e\" f\\ g\n\nh")
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(got, ["a", "b c", "d e", "f g", "h"]);
        assert!(split_args(&mut "'open".as_bytes(), Split::Shell, None).is_err());
        let nul: Vec<String> = split_args(&mut "a b\0c\0".as_bytes(), Split::Delimiter(0), None)
            .unwrap()
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(nul, ["a b", "c"]);
        assert_eq!(items("a b STOP c").len(), 4);
        assert_eq!(
            split_args(&mut "a b STOP c".as_bytes(), Split::Shell, Some("STOP"))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn batching() {
        let it = items("1 2 3\n4 5\n");
        assert_eq!(
            batches(&s(&["echo"]), &it, None, None, None, 1000),
            [s(&["echo", "1", "2", "3", "4", "5"])]
        );
        assert_eq!(
            batches(&s(&["echo"]), &it, None, Some(2), None, 1000).len(),
            3
        );
        assert_eq!(
            batches(&s(&["echo"]), &it, None, None, Some(1), 1000),
            [s(&["echo", "1", "2", "3"]), s(&["echo", "4", "5"])]
        );
        assert_eq!(
            batches(
                &s(&["mv", "{}", "{}.bak"]),
                &it,
                Some("{}"),
                None,
                None,
                1000
            )[1],
            s(&["mv", "4 5", "4 5.bak"])
        );
        assert_eq!(batches(&s(&["echo"]), &it, None, None, None, 12).len(), 2);
    }
}
