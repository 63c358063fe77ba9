//! Variable substitution with BuildKit's rules (its `shell.Lex`), written for kiln.
//!
//! Supported: `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`,
//! `${VAR:?e}`, `${VAR?e}`, `${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`,
//! `${VAR/p/r}`, `${VAR//p/r}`; single quotes are literal, double quotes expand, the escape
//! character (the `escape` directive, `\` by default) quotes the next character.
//! An unset variable expands to the empty string (BuildKit does the same).
//!
//! Which instructions expand (BuildKit's list): ADD, COPY, ENV, EXPOSE, FROM, LABEL,
//! STOPSIGNAL, USER, VOLUME, WORKDIR, ARG and ONBUILD (its trigger, when it runs in a
//! child build). Flags: FROM `--platform`, COPY/ADD `--chown` and `--chmod`, ADD
//! `--checksum` and RUN `--mount` values expand; COPY `--from` and `--exclude` do not. RUN, CMD,
//! ENTRYPOINT, SHELL and HEALTHCHECK are not expanded by the frontend (the shell expands
//! them at run time). See [`crate::Instruction::expand`].

/// A failed expansion. Messages name the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("substitutions nested more than {MAX_DEPTH} deep")]
    TooDeep,
    #[error(
        "the expanded value is over {} MiB (MAX_EXPANSION_BYTES), more than an image config may hold; put large data in a file in the build context",
        MAX_EXPANSION_BYTES >> 20
    )]
    TooLarge,
    #[error(
        "pattern matching in this substitution takes over {MAX_PATTERN_STEPS} steps (MAX_PATTERN_STEPS); use a shorter value or pattern"
    )]
    PatternTooCostly,
    #[error(
        "this stage's ARG and ENV values would total over {} MiB (MAX_STAGE_VARIABLE_BYTES), more than an image config may hold; put large data in a file in the build context",
        crate::args::MAX_STAGE_VARIABLE_BYTES >> 20
    )]
    VariablesTooLarge,
}

/// Bounds recursion on hostile input like `${a:-${a:-${a:-...}}}`.
const MAX_DEPTH: usize = 64;

/// The largest result of one expansion (the image config limit, `kiln_oci`'s
/// `MAX_CONFIG_SIZE`): an ENV or LABEL value lands in the config and an ARG value in a RUN's
/// history, so a larger value could never be part of an image. Without a bound,
/// `ENV a=$a$a` repeated doubles memory with every line, and `${a//?/$a}` squares it.
pub const MAX_EXPANSION_BYTES: usize = 16 << 20;

/// Bounds the work of glob matching in `${v#p}`, `${v%p}` and `${v/p/r}` (states times
/// characters, a few seconds at most): matching is O(pattern x value), and a replacement
/// matches again from every position, so a 200 KB value with `${a//*b/c}` took hours.
const MAX_PATTERN_STEPS: u64 = 1 << 26;

/// A variable lookup: the environment at the point of expansion.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands one word (quotes removed, whitespace kept), like BuildKit's `ProcessWord`.
pub fn expand(word: &str, escape: char, lookup: Lookup<'_>) -> Result<String, ExpandError> {
    let mut lx = Lexer::new(word, escape, lookup);
    Ok(lx.process(None, false)?.0)
}

/// Expands and splits into words on unquoted whitespace (also whitespace produced by an
/// expansion), like BuildKit's `ProcessWords`; used for EXPOSE.
pub fn expand_words(
    word: &str,
    escape: char,
    lookup: Lookup<'_>,
) -> Result<Vec<String>, ExpandError> {
    let mut lx = Lexer::new(word, escape, lookup);
    Ok(lx.process(None, false)?.1)
}

/// Expands a heredoc body (COPY/ADD heredoc files whose delimiter is unquoted): `$` forms
/// expand, quotes are ordinary characters, `\` escapes the next character.
pub fn expand_heredoc(body: &str, lookup: Lookup<'_>) -> Result<String, ExpandError> {
    let mut lx = Lexer::new(body, '\\', lookup);
    lx.skip_quotes = true;
    Ok(lx.process(None, false)?.0)
}

/// Like [`expand`], also returning the names that were referenced but not set.
pub(crate) fn expand_tracked(
    word: &str,
    escape: char,
    lookup: Lookup<'_>,
) -> Result<(String, Vec<String>), ExpandError> {
    let mut lx = Lexer::new(word, escape, lookup);
    let r = lx.process(None, false)?.0;
    Ok((r, lx.unmatched))
}

/// Shell words of a line with quotes and escapes kept, variables left as written
/// (heredoc detection); unbalanced input yields no words, as in BuildKit.
pub(crate) fn raw_words(line: &str) -> Vec<String> {
    let none = |_: &str| None;
    let mut lx = Lexer::new(line, '\\', &none);
    lx.raw_quotes = true;
    lx.raw_escapes = true;
    lx.skip_unset = true;
    lx.process(None, false).map(|r| r.1).unwrap_or_default()
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    fn raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }
    fn char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.raw_char(c);
        }
    }
    fn string(&mut self, s: &str) {
        s.chars().for_each(|c| self.char(c));
    }
    fn raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: Lookup<'a>,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset: bool,
    skip_quotes: bool,
    unmatched: Vec<String>,
    depth: usize,
    /// What is left of [`MAX_PATTERN_STEPS`] for this word.
    pattern_steps: u64,
}

impl<'a> Lexer<'a> {
    fn new(s: &str, escape: char, lookup: Lookup<'a>) -> Lexer<'a> {
        Lexer {
            chars: s.chars().collect(),
            pos: 0,
            escape,
            lookup,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
            unmatched: Vec::new(),
            depth: 0,
            pattern_steps: MAX_PATTERN_STEPS,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get(&mut self, name: &str) -> Option<String> {
        let v = (self.lookup)(name);
        if v.is_none() && !self.unmatched.iter().any(|n| n == name) {
            self.unmatched.push(name.to_string());
        }
        v
    }

    /// Processes until `stop` (consumed) or the end; returns the joined result and words.
    fn process(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        if self.depth >= MAX_DEPTH {
            return Err(ExpandError::TooDeep);
        }
        self.depth += 1;
        let saved = self.raw_escapes;
        self.raw_escapes |= raw_escapes;
        let r = self.process_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        r
    }

    fn process_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                    words.string(&v);
                }
                '\'' if !self.skip_quotes => {
                    let v = self.single_quote()?;
                    result.push_str(&v);
                    words.raw_string(&v);
                }
                '"' if !self.skip_quotes => {
                    let v = self.double_quote()?;
                    result.push_str(&v);
                    words.raw_string(&v);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        if self.raw_escapes {
                            words.raw_char(c);
                            result.push(c);
                        }
                        let Some(n) = self.next() else { break };
                        words.raw_char(n);
                        result.push(n);
                    } else {
                        words.char(c);
                        result.push(c);
                    }
                }
            }
            within_bound(&result)?;
        }
        if stop.is_some() {
            return Err(ExpandError::MissingBrace);
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut r = String::new();
        if self.raw_quotes {
            r.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::Unterminated("single-quote")),
                Some('\'') => {
                    if self.raw_quotes {
                        r.push('\'');
                    }
                    return Ok(r);
                }
                Some(c) => r.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut r = String::new();
        if self.raw_quotes {
            r.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(ExpandError::Unterminated("double-quote")),
                Some('"') => {
                    self.pos += 1;
                    if self.raw_quotes {
                        r.push('"');
                    }
                    return Ok(r);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    r.push_str(&v);
                    within_bound(&r)?;
                }
                Some(c) => {
                    self.pos += 1;
                    let mut out = c;
                    if c == self.escape {
                        if self.raw_escapes {
                            r.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out = n;
                            }
                            Some(_) => {}
                        }
                    }
                    r.push(out);
                }
            }
        }
    }

    /// A name after `$`: letters/digits/`_`, or all digits, or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return c.to_string();
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get(&name) {
                Some(v) => v,
                None if self.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            _ => {}
        }
        let name = self.name();
        let Some(mut op) = self.next() else {
            return Err(ExpandError::MissingBrace);
        };
        let mut ops = op.to_string();
        let mut null_is_unset = false;
        match op {
            '}' => {
                return Ok(match self.get(&name) {
                    Some(v) => v,
                    None if self.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            ':' => {
                null_is_unset = true;
                op = self.next().ok_or(ExpandError::MissingBrace)?;
                ops.push(op);
                if !matches!(op, '+' | '-' | '?') {
                    return Err(ExpandError::UnsupportedModifier(ops));
                }
            }
            '/' => return self.replace(name),
            '+' | '-' | '?' | '#' | '%' => {}
            _ => return Err(ExpandError::UnsupportedModifier(ops)),
        }
        let raw = op == '#' || op == '%';
        let (word, _) = self.process(Some('}'), raw)?;
        // A name with a default/alternative/required form is not "undefined" for lints.
        let value = if raw {
            self.get(&name)
        } else {
            (self.lookup)(&name)
        };
        if self.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{ops}{word}}}"));
        }
        let empty = |v: &Option<String>| v.as_deref().is_none_or(|s| null_is_unset && s.is_empty());
        match op {
            '-' => Ok(if empty(&value) {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty(&value) { String::new() } else { word }),
            '?' => match value {
                None => Err(required(name, word, "is not allowed to be unset")),
                Some(v) if null_is_unset && v.is_empty() => {
                    Err(required(name, word, "is not allowed to be empty"))
                }
                Some(v) => Ok(v),
            },
            _ => {
                let (greedy, pat) = match word.strip_prefix(op) {
                    Some(p) => (true, p),
                    None => (false, word.as_str()),
                };
                let value = value.unwrap_or_default();
                let pat = Pattern::parse(pat);
                let steps = &mut self.pattern_steps;
                if op == '#' {
                    pat.trim_prefix(&value, greedy, steps)
                } else {
                    pat.trim_suffix(&value, greedy, steps)
                }
            }
        }
    }

    fn replace(&mut self, name: String) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let (pattern, _) = self.process(Some('/'), true)?;
        let (replacement, _) = self.process(Some('}'), true)?;
        let value = self.get(&name);
        let Some(value) = value else {
            if self.skip_unset {
                let sep = if all { "//" } else { "/" };
                return Ok(format!("${{{name}{sep}{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        Pattern::parse(&pattern).replace(&value, &replacement, all, &mut self.pattern_steps)
    }
}

/// [`MAX_EXPANSION_BYTES`], checked as a result grows.
fn within_bound(s: &str) -> Result<(), ExpandError> {
    if s.len() > MAX_EXPANSION_BYTES {
        return Err(ExpandError::TooLarge);
    }
    Ok(())
}

/// Takes `n` steps from what is left of [`MAX_PATTERN_STEPS`].
fn spend(left: &mut u64, n: usize) -> Result<(), ExpandError> {
    *left = left
        .checked_sub(n as u64)
        .ok_or(ExpandError::PatternTooCostly)?;
    Ok(())
}

fn required(name: String, word: String, default: &str) -> ExpandError {
    let message = if word.is_empty() {
        default.to_string()
    } else {
        word
    };
    ExpandError::Required { name, message }
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A shell glob pattern (`*`, `?`, `[...]`, `\x`) matched with an NFA, so matching is
/// O(pattern × text) for any input (no backtracking blow-up on hostile patterns).
struct Pattern(Vec<Tok>);

impl Pattern {
    fn parse(p: &str) -> Pattern {
        let cs: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < cs.len() {
            let c = cs[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' if i < cs.len() => {
                    toks.push(Tok::Lit(cs[i]));
                    i += 1;
                }
                '[' => match parse_class(&cs, i) {
                    Some((tok, next)) => {
                        toks.push(tok);
                        i = next;
                    }
                    None => toks.push(Tok::Lit('[')),
                },
                _ => toks.push(Tok::Lit(c)),
            }
        }
        Pattern(toks)
    }

    fn closure(&self, states: &mut [bool]) {
        for i in 0..self.0.len() {
            if states[i] && matches!(self.0[i], Tok::Star) {
                states[i + 1] = true;
            }
        }
    }

    /// The states after reading `c` from `states`, into `next`.
    fn step(&self, states: &[bool], c: char, next: &mut [bool]) {
        next.fill(false);
        for (i, tok) in self.0.iter().enumerate() {
            if !states[i] {
                continue;
            }
            match tok {
                Tok::Star => next[i] = true,
                Tok::Any => next[i + 1] = true,
                Tok::Lit(l) if *l == c => next[i + 1] = true,
                Tok::Class { negate, ranges } => {
                    if ranges.iter().any(|&(a, b)| a <= c && c <= b) != *negate {
                        next[i + 1] = true;
                    }
                }
                Tok::Lit(_) => {}
            }
        }
        self.closure(next);
    }

    /// For each prefix length of `text` (0..=len), whether the pattern matches it exactly,
    /// up to where no state is left (later lengths cannot match, and are left out, so
    /// that trying a pattern at every position of a value is not quadratic in memory);
    /// each character costs the pattern's length in `steps`.
    fn prefix_matches(&self, text: &[char], steps: &mut u64) -> Result<Vec<bool>, ExpandError> {
        let n = self.0.len();
        let mut states = vec![false; n + 1];
        states[0] = true;
        self.closure(&mut states);
        let mut next = vec![false; n + 1];
        let mut out = vec![states[n]];
        for &c in text {
            spend(steps, n + 1)?;
            self.step(&states, c, &mut next);
            std::mem::swap(&mut states, &mut next);
            out.push(states[n]);
            if !states.iter().any(|&s| s) {
                break;
            }
        }
        Ok(out)
    }

    fn reversed(&self) -> Pattern {
        Pattern(self.0.iter().rev().cloned().collect())
    }

    fn trim_prefix(
        &self,
        value: &str,
        greedy: bool,
        steps: &mut u64,
    ) -> Result<String, ExpandError> {
        let cs: Vec<char> = value.chars().collect();
        let m = self.prefix_matches(&cs, steps)?;
        let len = if greedy {
            m.iter().rposition(|&b| b)
        } else {
            m.iter().position(|&b| b)
        };
        Ok(match len {
            Some(l) => cs[l..].iter().collect(),
            None => value.to_string(),
        })
    }

    fn trim_suffix(
        &self,
        value: &str,
        greedy: bool,
        steps: &mut u64,
    ) -> Result<String, ExpandError> {
        let rev: Vec<char> = value.chars().rev().collect();
        let m = self.reversed().prefix_matches(&rev, steps)?;
        let len = if greedy {
            m.iter().rposition(|&b| b)
        } else {
            m.iter().position(|&b| b)
        };
        Ok(match len {
            Some(l) => rev[l..].iter().rev().collect(),
            None => value.to_string(),
        })
    }

    /// Replaces the leftmost-longest match (or every non-overlapping match).
    fn replace(
        &self,
        value: &str,
        with: &str,
        all: bool,
        steps: &mut u64,
    ) -> Result<String, ExpandError> {
        let cs: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= cs.len() {
            within_bound(&out)?;
            let found = if all || !replaced {
                self.prefix_matches(&cs[i..], steps)?
                    .iter()
                    .rposition(|&b| b)
            } else {
                None
            };
            match found {
                Some(len) => {
                    out.push_str(with);
                    replaced = true;
                    if len == 0 {
                        if let Some(&c) = cs.get(i) {
                            out.push(c);
                        }
                        i += 1;
                    } else {
                        i += len;
                    }
                }
                None => {
                    if let Some(&c) = cs.get(i) {
                        out.push(c);
                    }
                    i += 1;
                }
            }
        }
        within_bound(&out)?;
        Ok(out)
    }
}

fn parse_class(cs: &[char], mut i: usize) -> Option<(Tok, usize)> {
    let negate = matches!(cs.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *cs.get(i)?;
        if c == ']' && !first {
            return Some((Tok::Class { negate, ranges }, i + 1));
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *cs.get(i)?
        } else {
            c
        };
        i += 1;
        if cs.get(i) == Some(&'-') && cs.get(i + 1).is_some_and(|&c| c != ']') {
            let hi = cs[i + 1];
            ranges.push((lo, hi));
            i += 2;
        } else {
            ranges.push((lo, lo));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("apple".into()),
            "E" => Some(String::new()),
            "P" => Some("/usr/local/bin/tool.tar.gz".into()),
            "S" => Some("a b  c".into()),
            _ => None,
        }
    }

    fn x(w: &str) -> String {
        expand(w, '\\', &env).unwrap()
    }

    fn xe(w: &str) -> ExpandError {
        expand(w, '\\', &env).unwrap_err()
    }

    #[test]
    fn simple_forms() {
        assert_eq!(x("$A"), "apple");
        assert_eq!(x("${A}s"), "apples");
        assert_eq!(x("$As"), "");
        assert_eq!(x("x$NOPE-y"), "x-y");
        assert_eq!(x("$"), "$");
        assert_eq!(x("a$/b"), "a$/b");
        assert_eq!(x("$1x"), "x");
    }

    #[test]
    fn defaults_and_alternatives() {
        assert_eq!(x("${NOPE:-def}"), "def");
        assert_eq!(x("${E:-def}"), "def");
        assert_eq!(x("${E-def}"), "");
        assert_eq!(x("${NOPE-def}"), "def");
        assert_eq!(x("${A:-def}"), "apple");
        assert_eq!(x("${A:+alt}"), "alt");
        assert_eq!(x("${E:+alt}"), "");
        assert_eq!(x("${E+alt}"), "alt");
        assert_eq!(x("${NOPE+alt}"), "");
        assert_eq!(x("${NOPE:-${A}x}"), "applex");
    }

    #[test]
    fn required_errors() {
        assert_eq!(xe("${NOPE:?must be set}").to_string(), "NOPE: must be set");
        assert_eq!(
            xe("${NOPE?}").to_string(),
            "NOPE: is not allowed to be unset"
        );
        assert_eq!(xe("${E:?}").to_string(), "E: is not allowed to be empty");
        assert_eq!(x("${E?}"), "");
        assert_eq!(x("${A:?x}"), "apple");
    }

    #[test]
    fn pattern_forms() {
        assert_eq!(x("${P#*/}"), "usr/local/bin/tool.tar.gz");
        assert_eq!(x("${P##*/}"), "tool.tar.gz");
        assert_eq!(x("${P%.*}"), "/usr/local/bin/tool.tar");
        assert_eq!(x("${P%%.*}"), "/usr/local/bin/tool");
        assert_eq!(x("${P#nomatch}"), "/usr/local/bin/tool.tar.gz");
        assert_eq!(x("${A/p/P}"), "aPple");
        assert_eq!(x("${A//p/P}"), "aPPle");
        assert_eq!(x("${A/p*/X}"), "aX");
        assert_eq!(x("${A//[aeiou]/_}"), "_ppl_");
        assert_eq!(x("${A#[!b]}"), "pple");
        assert_eq!(x("${A/q/P}"), "apple");
        assert_eq!(x("${NOPE/a/b}"), "");
        assert_eq!(x("${A%\\e}"), "appl");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A b\""), "apple b");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("\"\\$A\\\"\\x\""), "$A\"\\x");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(x("trail\\"), "trail");
        assert_eq!(expand("`$A", '`', &env).unwrap(), "$A");
        assert_eq!(expand("\\$A", '`', &env).unwrap(), "\\apple");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(xe("'abc"), ExpandError::Unterminated("single-quote"));
        assert_eq!(xe("\"abc"), ExpandError::Unterminated("double-quote"));
        assert_eq!(xe("${A"), ExpandError::MissingBrace);
        assert_eq!(xe("${A:-x"), ExpandError::MissingBrace);
        assert_eq!(xe("${}"), ExpandError::BadSubstitution);
        assert_eq!(xe("${:a}"), ExpandError::BadSubstitution);
        assert_eq!(xe("${A:#x}"), ExpandError::UnsupportedModifier(":#".into()));
        assert_eq!(xe("${A^x}"), ExpandError::UnsupportedModifier("^".into()));
    }

    #[test]
    fn word_splitting() {
        let w = |s: &str| expand_words(s, '\\', &env).unwrap();
        assert_eq!(w("80 $S"), ["80", "a", "b", "c"]);
        assert_eq!(w("\"$S\" x"), ["a b  c", "x"]);
        assert_eq!(w("  "), Vec::<String>::new());
        assert_eq!(w("a\\ b c"), ["a b", "c"]);
    }

    #[test]
    fn heredoc_expansion() {
        let h = expand_heredoc("say \"$A\" '${E:-x}' \\$A\n", &env).unwrap();
        assert_eq!(h, "say \"apple\" 'x' $A\n");
    }

    #[test]
    fn tracking_unmatched() {
        let (r, u) = expand_tracked("$A $B ${C:-x} $B", '\\', &env).unwrap();
        assert_eq!(r, "apple  x ");
        assert_eq!(u, ["B"]);
    }

    #[test]
    fn raw_words_keep_quotes() {
        assert_eq!(
            raw_words("RUN cat <<'EOF' \"a b\" $X"),
            ["RUN", "cat", "<<'EOF'", "\"a b\"", "$X"]
        );
        assert!(raw_words("RUN 'unterminated").is_empty());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = "${a:-".repeat(10_000) + &"}".repeat(10_000);
        assert_eq!(xe(&deep), ExpandError::TooDeep);
        let ok = "${a:-".repeat(10) + "x" + &"}".repeat(10);
        assert_eq!(x(&ok), "x");
    }

    #[test]
    fn hostile_patterns_are_fast() {
        let long = "a".repeat(400);
        let lookup = |_: &str| Some(long.clone());
        let start = std::time::Instant::now();
        let r = expand("${X//*a*a*a*a*a*a*b/z}", '\\', &lookup).unwrap();
        assert_eq!(r, long);
        assert!(start.elapsed().as_secs() < 20);
    }

    #[test]
    fn results_over_the_bound_are_an_error() {
        let half = "a".repeat(MAX_EXPANSION_BYTES / 2 + 1);
        let lookup = |_: &str| Some(half.clone());
        assert_eq!(expand("$X", '\\', &lookup).unwrap().len(), half.len());
        for word in ["$X$X", "\"$X$X\"", "${X//a/aa}", "${X:+$X$X}"] {
            assert_eq!(
                expand(word, '\\', &lookup),
                Err(ExpandError::TooLarge),
                "{word}"
            );
        }
    }

    #[test]
    fn quadratic_pattern_work_is_bounded() {
        // A replacement matches again from every position: 200,000 characters with a
        // pattern that never ends a match is 2 * 10^10 steps, refused at the bound.
        let long = "a".repeat(200_000);
        let lookup = |_: &str| Some(long.clone());
        let start = std::time::Instant::now();
        assert_eq!(
            expand("${X//*b/c}", '\\', &lookup),
            Err(ExpandError::PatternTooCostly)
        );
        assert!(start.elapsed().as_secs() < 60);
        assert_eq!(expand("${X%%*b*}", '\\', &lookup).unwrap(), long);
    }
}
