//! Parsing sed scripts into commands.

use regex::bytes::Regex;

use crate::posix_re::{self, Dialect};

#[derive(Debug)]
pub enum Addr {
    Line(u64),
    Last,
    /// `None` reuses the last regex applied (the empty regex `//`).
    Re(Option<Regex>),
    Step(u64, u64),
}

#[derive(Debug)]
pub enum Addr2 {
    Addr(Addr),
    Plus(u64),
    Multiple(u64),
}

#[derive(Debug)]
pub struct Subst {
    pub regex: Option<Regex>,
    pub replacement: Vec<Piece>,
    pub global: bool,
    pub occurrence: usize,
    pub print: bool,
}

/// One element of a replacement.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Literal(Vec<u8>),
    Group(usize),
    Case(CaseConv),
}

/// GNU's `\U \L \E \u \l` in replacements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CaseConv {
    Upper,
    Lower,
    End,
    UpperNext,
    LowerNext,
}

#[derive(Debug)]
pub enum Kind {
    BlockStart(usize),
    BlockEnd,
    Subst(Box<Subst>),
    Translit(Box<[u8; 256]>),
    Print,
    PrintFirst,
    Delete,
    DeleteFirst,
    Next,
    AppendNext,
    Quit(i32),
    QuitSilent(i32),
    Append(Vec<u8>),
    Insert(Vec<u8>),
    Change(Vec<u8>),
    LineNumber,
    Hold,
    HoldAppend,
    Get,
    GetAppend,
    Exchange,
    Zap,
    Label,
    Branch(Option<String>),
    BranchIf(Option<String>),
    BranchUnless(Option<String>),
}

#[derive(Debug)]
pub struct Command {
    pub a1: Option<Addr>,
    pub a2: Option<Addr2>,
    pub negate: bool,
    pub kind: Kind,
    pub label: Option<String>,
}

/// A script error with the position (1-based char offset) of the offending command.
#[derive(Debug, PartialEq)]
pub struct ScriptError {
    pub pos: usize,
    pub msg: String,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    dialect: Dialect,
}

/// Parses a complete script (the -e pieces joined by newlines).
pub fn parse(script: &str, dialect: Dialect) -> Result<Vec<Command>, ScriptError> {
    let mut p = Parser {
        s: script.as_bytes(),
        i: 0,
        dialect,
    };
    let mut cmds: Vec<Command> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        p.skip_separators();
        if p.i >= p.s.len() {
            break;
        }
        if p.peek() == Some(b'#') {
            p.skip_line();
            continue;
        }
        let cmd = p.command()?;
        match cmd.kind {
            Kind::BlockStart(_) => open.push(cmds.len()),
            Kind::BlockEnd => {
                let start = open.pop().ok_or_else(|| p.err("unexpected `}'"))?;
                let end = cmds.len();
                cmds[start].kind = Kind::BlockStart(end);
            }
            _ => {}
        }
        cmds.push(cmd);
    }
    if !open.is_empty() {
        return Err(p.err("unmatched `{'"));
    }
    for cmd in &cmds {
        let target = match &cmd.kind {
            Kind::Branch(t) | Kind::BranchIf(t) | Kind::BranchUnless(t) => t.as_ref(),
            _ => None,
        };
        if let Some(t) = target
            && !cmds.iter().any(|c| c.label.as_ref() == Some(t))
        {
            return Err(ScriptError {
                pos: 0,
                msg: format!("can't find label for jump to `{t}'"),
            });
        }
    }
    Ok(cmds)
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> ScriptError {
        ScriptError {
            pos: self.i + 1,
            msg: msg.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b';')) {
            self.i += 1;
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == b'\n' {
                break;
            }
        }
    }

    fn number(&mut self) -> Option<u64> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn address(&mut self) -> Result<Option<Addr>, ScriptError> {
        match self.peek() {
            Some(b'$') => {
                self.i += 1;
                Ok(Some(Addr::Last))
            }
            Some(c) if c.is_ascii_digit() => {
                let n = self
                    .number()
                    .ok_or_else(|| self.err("invalid line number"))?;
                if self.peek() == Some(b'~') {
                    self.i += 1;
                    let step = self.number().unwrap_or(0);
                    return Ok(Some(Addr::Step(n, step)));
                }
                Ok(Some(Addr::Line(n)))
            }
            Some(b'/') => {
                self.i += 1;
                Ok(Some(Addr::Re(self.regex_until(b'/')?)))
            }
            Some(b'\\') => {
                self.i += 1;
                let delim = self.peek().ok_or_else(|| self.err("unexpected end"))?;
                self.i += 1;
                Ok(Some(Addr::Re(self.regex_until(delim)?)))
            }
            _ => Ok(None),
        }
    }

    /// Reads a regex up to the unescaped `delim`, then any `I` flag (address form).
    fn regex_until(&mut self, delim: u8) -> Result<Option<Regex>, ScriptError> {
        let raw = self.delimited(delim, true)?;
        let mut icase = false;
        while matches!(self.peek(), Some(b'I')) {
            icase = true;
            self.i += 1;
        }
        self.compile(&raw, icase)
    }

    fn compile(&self, raw: &[u8], icase: bool) -> Result<Option<Regex>, ScriptError> {
        if raw.is_empty() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(raw);
        let translated = posix_re::translate(&text, self.dialect).map_err(|e| self.err(&e.0))?;
        // In sed `.` also matches the newlines that N puts into the pattern space.
        posix_re::build(&format!("(?s:{translated})"), icase)
            .map(Some)
            .map_err(|e| self.err(&e.0))
    }

    /// Text up to an unescaped `delim`; `\delim` becomes a literal delimiter (escaped
    /// again if it is special in the regex dialect), `\n` stays for the regex layer.
    fn delimited(&mut self, delim: u8, is_regex: bool) -> Result<Vec<u8>, ScriptError> {
        let mut out = Vec::new();
        let mut in_bracket = false;
        loop {
            let c = self
                .peek()
                .ok_or_else(|| self.err(&format!("unterminated `{}' command", delim as char)))?;
            self.i += 1;
            if is_regex && in_bracket {
                if c == b']' && !matches!(out.last(), Some(b'[' | b'^')) {
                    in_bracket = false;
                }
                out.push(c);
                continue;
            }
            if c == delim {
                return Ok(out);
            }
            if c == b'\\' {
                let next = self
                    .peek()
                    .ok_or_else(|| self.err("unterminated command"))?;
                self.i += 1;
                if next == delim {
                    let special: &[u8] = match self.dialect {
                        Dialect::Basic => b".*[]^$\\",
                        Dialect::Extended => b".[]()*+?{}|^$\\",
                    };
                    if (is_regex && special.contains(&delim))
                        || (!is_regex && matches!(delim, b'&' | b'\\'))
                    {
                        out.push(b'\\');
                    }
                    out.push(delim);
                } else if next == b'\n' && !is_regex {
                    out.push(b'\n');
                } else {
                    out.push(b'\\');
                    out.push(next);
                }
                continue;
            }
            if is_regex && c == b'[' {
                in_bracket = true;
                // `[]...]` and `[^]...]`: the first `]` is a member.
                if self.peek() == Some(b'^') {
                    out.push(c);
                    out.push(b'^');
                    self.i += 1;
                    if self.peek() == Some(b']') {
                        out.push(b']');
                        self.i += 1;
                    }
                    continue;
                }
                if self.peek() == Some(b']') {
                    out.push(c);
                    out.push(b']');
                    self.i += 1;
                    continue;
                }
            }
            out.push(c);
        }
    }

    fn command(&mut self) -> Result<Command, ScriptError> {
        let a1 = self.address()?;
        let mut a2 = None;
        if a1.is_some() {
            self.skip_ws();
            if self.peek() == Some(b',') {
                self.i += 1;
                self.skip_ws();
                a2 = Some(match self.peek() {
                    Some(b'+') => {
                        self.i += 1;
                        Addr2::Plus(self.number().ok_or_else(|| self.err("expected number"))?)
                    }
                    Some(b'~') => {
                        self.i += 1;
                        Addr2::Multiple(self.number().ok_or_else(|| self.err("expected number"))?)
                    }
                    _ => Addr2::Addr(self.address()?.ok_or_else(|| self.err("unexpected `,'"))?),
                });
            }
        }
        self.skip_ws();
        let mut negate = false;
        while self.peek() == Some(b'!') {
            negate = true;
            self.i += 1;
            self.skip_ws();
        }
        let c = self.peek().ok_or_else(|| self.err("missing command"))?;
        self.i += 1;
        let mut label = None;
        let kind = match c {
            b'{' => Kind::BlockStart(0),
            b'}' => Kind::BlockEnd,
            b's' => self.subst()?,
            b'y' => self.translit()?,
            b'p' => Kind::Print,
            b'P' => Kind::PrintFirst,
            b'd' => Kind::Delete,
            b'D' => Kind::DeleteFirst,
            b'n' => Kind::Next,
            b'N' => Kind::AppendNext,
            b'q' => Kind::Quit(self.exit_code()),
            b'Q' => Kind::QuitSilent(self.exit_code()),
            b'a' => Kind::Append(self.append_text()),
            b'i' => Kind::Insert(self.text()),
            b'c' => Kind::Change(self.text()),
            b'=' => Kind::LineNumber,
            b'h' => Kind::Hold,
            b'H' => Kind::HoldAppend,
            b'g' => Kind::Get,
            b'G' => Kind::GetAppend,
            b'x' => Kind::Exchange,
            b'z' => Kind::Zap,
            b':' => {
                if a1.is_some() {
                    return Err(self.err(": doesn't want any addresses"));
                }
                let name = self.label_name();
                if name.is_empty() {
                    return Err(self.err("\":\" lacks a label"));
                }
                label = Some(name);
                Kind::Label
            }
            b'b' => Kind::Branch(self.opt_label()),
            b't' => Kind::BranchIf(self.opt_label()),
            b'T' => Kind::BranchUnless(self.opt_label()),
            other => return Err(self.err(&format!("unknown command: `{}'", other as char))),
        };
        // `{` may be followed directly by a command; a/i/c text runs to the end of line.
        if !matches!(
            kind,
            Kind::BlockStart(_) | Kind::Append(_) | Kind::Insert(_) | Kind::Change(_)
        ) {
            self.end_of_command()?;
        }
        Ok(Command {
            a1,
            a2,
            negate,
            kind,
            label,
        })
    }

    fn end_of_command(&mut self) -> Result<(), ScriptError> {
        self.skip_ws();
        match self.peek() {
            None | Some(b';' | b'\n' | b'}') => Ok(()),
            Some(b'#') => {
                self.skip_line();
                Ok(())
            }
            Some(c) => Err(self.err(&format!("extra characters after command ({})", c as char))),
        }
    }

    fn exit_code(&mut self) -> i32 {
        self.skip_ws();
        self.number().map_or(0, |n| n.min(255) as i32)
    }

    fn label_name(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while self.peek().is_some_and(|c| !matches!(c, b'\n' | b';')) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i])
            .trim_end()
            .to_owned()
    }

    fn opt_label(&mut self) -> Option<String> {
        let name = self.label_name();
        (!name.is_empty()).then_some(name)
    }

    /// Text of a/i/c: GNU one-liner form (`a text`) or POSIX `a\` + newline + text, with
    /// backslash-newline continuing the text.
    /// `a`'s text with its newline. A bare `a\` ending the script appends nothing, as in
    /// GNU sed: `sed -e '$a\' f` is the idiom for "end with a newline" (Debian's
    /// update-ca-certificates builds its bundle with it).
    fn append_text(&mut self) -> Vec<u8> {
        self.skip_ws();
        if self.s.get(self.i..) == Some(b"\\".as_slice()) {
            self.i += 1;
            return Vec::new();
        }
        let mut text = self.text();
        text.push(b'\n');
        text
    }

    fn text(&mut self) -> Vec<u8> {
        self.skip_ws();
        if self.peek() == Some(b'\\') {
            self.i += 1;
            if self.peek() == Some(b'\n') {
                self.i += 1;
            }
        }
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'\\' => match self.peek() {
                    Some(n) => {
                        self.i += 1;
                        out.push(if n == b't' { b'\t' } else { n });
                    }
                    None => break,
                },
                b'\n' => break,
                c => out.push(c),
            }
        }
        out
    }

    fn subst(&mut self) -> Result<Kind, ScriptError> {
        let delim = self
            .peek()
            .ok_or_else(|| self.err("unterminated `s' command"))?;
        if delim == b'\n' || delim == b'\\' {
            return Err(self.err("unterminated `s' command"));
        }
        self.i += 1;
        let raw = self.delimited(delim, true)?;
        let repl = self.delimited(delim, false)?;
        let mut global = false;
        let mut occurrence = 1;
        let mut print = false;
        let mut icase = false;
        loop {
            match self.peek() {
                Some(b'g') => global = true,
                Some(b'p') => print = true,
                Some(b'i' | b'I') => icase = true,
                Some(c) if c.is_ascii_digit() => {
                    occurrence =
                        self.number().filter(|n| *n > 0).ok_or_else(|| {
                            self.err("number option to `s' command may not be zero")
                        })? as usize;
                    continue;
                }
                _ => break,
            }
            self.i += 1;
        }
        let regex = self.compile(&raw, icase)?;
        let replacement = parse_replacement(&repl);
        if let Some(re) = &regex {
            let max = replacement
                .iter()
                .filter_map(|p| match p {
                    Piece::Group(g) => Some(*g),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            if max >= re.captures_len() {
                return Err(self.err(&format!("invalid reference \\{max} on `s' command's RHS")));
            }
        }
        Ok(Kind::Subst(Box::new(Subst {
            regex,
            replacement,
            global,
            occurrence,
            print,
        })))
    }

    fn translit(&mut self) -> Result<Kind, ScriptError> {
        let delim = self
            .peek()
            .ok_or_else(|| self.err("unterminated `y' command"))?;
        self.i += 1;
        let from = unescape_y(&self.delimited(delim, false)?);
        let to = unescape_y(&self.delimited(delim, false)?);
        if from.len() != to.len() {
            return Err(self.err("strings for `y' command are different lengths"));
        }
        let mut map = Box::new([0u8; 256]);
        for (i, slot) in map.iter_mut().enumerate() {
            *slot = i as u8;
        }
        for (f, t) in from.iter().zip(&to) {
            map[*f as usize] = *t;
        }
        Ok(Kind::Translit(map))
    }
}

fn unescape_y(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = raw.iter();
    while let Some(&c) = it.next() {
        if c == b'\\' {
            match it.next() {
                Some(b'n') => out.push(b'\n'),
                Some(b't') => out.push(b'\t'),
                Some(&o) => out.push(o),
                None => out.push(b'\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits a replacement into literals, `&`/`\N` group references and case conversions.
pub fn parse_replacement(raw: &[u8]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut it = raw.iter().peekable();
    let flush = |lit: &mut Vec<u8>, pieces: &mut Vec<Piece>| {
        if !lit.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(lit)));
        }
    };
    while let Some(&c) = it.next() {
        match c {
            b'&' => {
                flush(&mut lit, &mut pieces);
                pieces.push(Piece::Group(0));
            }
            b'\\' => match it.next() {
                Some(&d) if d.is_ascii_digit() => {
                    flush(&mut lit, &mut pieces);
                    pieces.push(Piece::Group((d - b'0') as usize));
                }
                Some(b'n') => lit.push(b'\n'),
                Some(b't') => lit.push(b'\t'),
                Some(&k @ (b'U' | b'L' | b'E' | b'u' | b'l')) => {
                    flush(&mut lit, &mut pieces);
                    pieces.push(Piece::Case(match k {
                        b'U' => CaseConv::Upper,
                        b'L' => CaseConv::Lower,
                        b'E' => CaseConv::End,
                        b'u' => CaseConv::UpperNext,
                        _ => CaseConv::LowerNext,
                    }));
                }
                Some(&o) => lit.push(o),
                None => lit.push(b'\\'),
            },
            c => lit.push(c),
        }
    }
    flush(&mut lit, &mut pieces);
    pieces
}
