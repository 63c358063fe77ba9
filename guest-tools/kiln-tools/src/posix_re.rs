//! Translation of POSIX regular expressions (BRE as grep and sed use by default, ERE for
//! `-E`) into `regex` crate syntax. Matching is byte-oriented with C-locale semantics
//! (`.` is any byte but newline, `[[:alpha:]]` is ASCII), which is what a build step with
//! no locale configured gets from GNU tools.
//!
//! Limits, each reported as an error rather than silently mismatched: back-references in
//! patterns (`\1` in a pattern; replacements in sed support them) cannot be expressed by
//! the `regex` crate. Alternation is leftmost-first rather than POSIX leftmost-longest.

use regex::bytes::{Regex, RegexBuilder};

/// Which POSIX dialect a pattern is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Basic,
    Extended,
}

/// A pattern the translator or the regex engine rejected, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Compiles a POSIX pattern.
pub fn compile(pattern: &str, dialect: Dialect, icase: bool) -> Result<Regex, PatternError> {
    let translated = translate(pattern, dialect)?;
    build(&translated, icase)
}

/// Compiles already-translated `regex` syntax with kiln's byte/C-locale settings.
pub fn build(translated: &str, icase: bool) -> Result<Regex, PatternError> {
    RegexBuilder::new(translated)
        .unicode(false)
        .case_insensitive(icase)
        .size_limit(64 << 20)
        .build()
        .map_err(|e| PatternError(e.to_string()))
}

/// Rewrites a POSIX pattern as `regex` crate syntax.
pub fn translate(pattern: &str, dialect: Dialect) -> Result<String, PatternError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // True where `*` would be literal in a BRE and `^` an anchor.
    let mut at_start = true;
    while i < chars.len() {
        let c = chars[i];
        let was_start = at_start;
        at_start = false;
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    return Err(PatternError("trailing backslash (\\)".into()));
                };
                i += 2;
                match (dialect, next) {
                    (Dialect::Basic, '(') => {
                        out.push('(');
                        at_start = true;
                    }
                    (Dialect::Basic, ')') => out.push(')'),
                    (Dialect::Basic, '|') => {
                        out.push('|');
                        at_start = true;
                    }
                    (Dialect::Basic, '{') => {
                        i = copy_interval(&chars, i, &mut out, true)?;
                    }
                    (Dialect::Basic, '}') => return Err(PatternError("unmatched \\}".into())),
                    (Dialect::Basic, '+' | '?') => out.push(next),
                    (_, '1'..='9') => {
                        return Err(PatternError(
                            "back-references in patterns are not supported".into(),
                        ));
                    }
                    (_, '<') => out.push_str(r"\b{start}"),
                    (_, '>') => out.push_str(r"\b{end}"),
                    (_, 'w' | 'W' | 's' | 'S' | 'b' | 'B') => {
                        out.push('\\');
                        out.push(next);
                    }
                    (_, 'n') => out.push_str(r"\n"),
                    (_, 't') => out.push_str(r"\t"),
                    (_, '`') => out.push_str(r"\A"),
                    (_, '\'') => out.push_str(r"\z"),
                    (_, other) => push_literal(&mut out, other),
                }
                continue;
            }
            '[' => {
                i = copy_bracket(&chars, i, &mut out)?;
                continue;
            }
            '*' if was_start && dialect == Dialect::Basic => push_literal(&mut out, '*'),
            '*' if was_start => {}
            '^' if dialect == Dialect::Extended || was_start => {
                out.push('^');
                at_start = true;
            }
            '^' => push_literal(&mut out, '^'),
            '$' if dialect == Dialect::Extended || is_bre_end(&chars, i + 1) => out.push('$'),
            '$' => push_literal(&mut out, '$'),
            '(' | ')' | '|' | '+' | '?' | '{' | '}' if dialect == Dialect::Basic => {
                push_literal(&mut out, c)
            }
            '(' | '|' => {
                out.push(c);
                at_start = true;
            }
            '{' => {
                i = copy_interval(&chars, i + 1, &mut out, false)?;
                continue;
            }
            '}' => push_literal(&mut out, '}'),
            '+' | '?' if was_start => push_literal(&mut out, c),
            c => push_literal_or_meta(&mut out, c),
        }
        i += 1;
    }
    Ok(out)
}

/// In a BRE `$` anchors only at the end of the pattern or of a `\(` group.
fn is_bre_end(chars: &[char], next: usize) -> bool {
    next == chars.len()
        || (chars.get(next) == Some(&'\\') && matches!(chars.get(next + 1), Some(')' | '|')))
}

fn push_literal(out: &mut String, c: char) {
    if regex_syntax_is_meta(c) {
        out.push('\\');
    }
    out.push(c);
}

/// `.`, `*` and the like stay operators; everything else is literal.
fn push_literal_or_meta(out: &mut String, c: char) {
    match c {
        '.' | '*' | ')' | '+' | '?' => out.push(c),
        _ => push_literal(out, c),
    }
}

fn regex_syntax_is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

/// Copies `{m,n}` starting after the opening brace. An ERE brace that does not start a
/// valid interval is a literal, as GNU grep treats it.
fn copy_interval(
    chars: &[char],
    start: usize,
    out: &mut String,
    bre: bool,
) -> Result<usize, PatternError> {
    let mut j = start;
    let mut body = String::new();
    while let Some(&c) = chars.get(j) {
        if c.is_ascii_digit() || c == ',' {
            body.push(c);
            j += 1;
        } else {
            break;
        }
    }
    let closed = if bre {
        chars.get(j) == Some(&'\\') && chars.get(j + 1) == Some(&'}')
    } else {
        chars.get(j) == Some(&'}')
    };
    let valid = closed && !body.is_empty() && !body.starts_with(',')
        || closed && body.starts_with(',') && body.len() > 1;
    if !valid {
        if bre {
            return Err(PatternError("invalid content of \\{\\}".into()));
        }
        out.push_str(r"\{");
        return Ok(start);
    }
    let body = if let Some(rest) = body.strip_prefix(',') {
        format!("0,{rest}")
    } else {
        body
    };
    out.push('{');
    out.push_str(&body);
    out.push('}');
    Ok(if bre { j + 2 } else { j + 1 })
}

/// Copies a bracket expression starting at `[`. In POSIX a backslash inside brackets is
/// literal and `]` first is a member; the regex crate needs both escaped, and `&`, `~`,
/// `[` escaped so they are not read as class set operations.
fn copy_bracket(chars: &[char], start: usize, out: &mut String) -> Result<usize, PatternError> {
    let mut j = start + 1;
    out.push('[');
    if chars.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(j) else {
            return Err(PatternError("unmatched [, [^, [:, [., or [=".into()));
        };
        match c {
            ']' if !first => {
                out.push(']');
                return Ok(j + 1);
            }
            '[' if matches!(chars.get(j + 1), Some(':' | '=' | '.')) => {
                let kind = chars[j + 1];
                let close = (j + 2..chars.len().saturating_sub(1))
                    .find(|&k| chars[k] == kind && chars[k + 1] == ']')
                    .ok_or_else(|| PatternError("unmatched [, [^, [:, [., or [=".into()))?;
                let name: String = chars[j + 2..close].iter().collect();
                if kind == ':' {
                    if !CLASSES.contains(&name.as_str()) {
                        return Err(PatternError(format!("invalid character class '{name}'")));
                    }
                    out.push_str(&format!("[:{name}:]"));
                } else {
                    // Collating symbols and equivalence classes of one character are that
                    // character in the C locale.
                    let mut it = name.chars();
                    match (it.next(), it.next()) {
                        (Some(ch), None) => push_class_literal(out, ch),
                        _ => return Err(PatternError("invalid collation character".into())),
                    }
                }
                j = close + 2;
            }
            '-' => {
                let is_range = !first && chars.get(j + 1).is_some_and(|n| *n != ']');
                if is_range {
                    out.push('-');
                } else {
                    out.push_str(r"\-");
                }
                j += 1;
            }
            c => {
                push_class_literal(out, c);
                j += 1;
            }
        }
        first = false;
    }
}

fn push_class_literal(out: &mut String, c: char) {
    if matches!(c, '\\' | '[' | ']' | '&' | '~' | '^' | '-') {
        out.push('\\');
    }
    out.push(c);
}

const CLASSES: &[&str] = &[
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "xdigit",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, d: Dialect, text: &str) -> Option<String> {
        let re = compile(p, d, false).unwrap();
        re.find(text.as_bytes())
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
    }

    #[test]
    fn bre_operators_and_literals() {
        use Dialect::Basic as B;
        assert_eq!(m(r"a\(b\)*c", B, "xabbc"), Some("abbc".into()));
        assert_eq!(m("a(b)", B, "a(b)"), Some("a(b)".into()));
        assert_eq!(m("a+", B, "aa+"), Some("a+".into()));
        assert_eq!(m(r"a\+", B, "caaa"), Some("aaa".into()));
        assert_eq!(m(r"x\{2,3\}", B, "xxxxx"), Some("xxx".into()));
        assert_eq!(m("*a", B, "b*a"), Some("*a".into()));
        assert_eq!(m("a^b$c", B, "a^b$c"), Some("a^b$c".into()));
        assert_eq!(m("^ab$", B, "ab"), Some("ab".into()));
        assert_eq!(m(r"foo\|bar", B, "xbar"), Some("bar".into()));
        assert_eq!(m("a|b", B, "a|b"), Some("a|b".into()));
    }

    #[test]
    fn ere_operators() {
        use Dialect::Extended as E;
        assert_eq!(m("(ab)+", E, "ababx"), Some("abab".into()));
        assert_eq!(m("colou?r", E, "color"), Some("color".into()));
        assert_eq!(m("a{2}", E, "aaa"), Some("aa".into()));
        assert_eq!(m("a{,2}b", E, "aab"), Some("aab".into()));
        assert_eq!(m("a{x", E, "a{x"), Some("a{x".into()));
        assert_eq!(m("cat|dog", E, "hotdog"), Some("dog".into()));
    }

    #[test]
    fn brackets() {
        use Dialect::Basic as B;
        assert_eq!(m(r"[\]x", B, r"a\x"), Some(r"\x".into()));
        assert_eq!(m("[]a]*", B, "]a]b"), Some("]a]".into()));
        assert_eq!(m("[^]x]", B, "]xy"), Some("y".into()));
        assert_eq!(m("[[:digit:]]*", B, "123a"), Some("123".into()));
        assert_eq!(m("[a-c-]*", B, "ab-cd"), Some("ab-c".into()));
        assert_eq!(m("[&~]", B, "x~"), Some("~".into()));
        assert!(compile("[[:nope:]]", B, false).is_err());
        assert!(compile("[abc", B, false).is_err());
    }

    #[test]
    fn escapes_and_errors() {
        use Dialect::Extended as E;
        assert_eq!(m(r"\.", E, "a.b"), Some(".".into()));
        assert_eq!(m(r"\<is\>", E, "this is"), Some("is".into()));
        assert_eq!(m(r"\/x", E, "a/x"), Some("/x".into()));
        assert!(compile(r"(a)\1", E, false).is_err());
        assert!(compile("a\\", E, false).is_err());
        assert!(compile(r"a\{1", Dialect::Basic, false).is_err());
    }

    #[test]
    fn bytes_and_case() {
        let re = compile("h.llo", Dialect::Basic, true).unwrap();
        assert!(re.is_match(b"H\xffLLO"));
    }
}
