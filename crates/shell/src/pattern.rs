//! Shell pattern matching (`case`, `${x#p}`, pathname expansion).
//!
//! Written here rather than using `globset`: shell patterns need per-character quoting
//! (a quoted `*` is literal), shortest/longest prefix and suffix matches, and bracket
//! expressions with `!`/`^` negation, which a path glob library does not expose.

/// One pattern character: `active` is false when it came from quoted text.
pub(crate) type PatChar = (char, bool);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum ClassItem {
    Char(char),
    Range(char, char),
    Named(String),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
}

/// Does `pat` contain an active glob metacharacter? A `[` counts only when an active `]`
/// closes it (as in dash and bash): `[` alone (the `test` command) is literal, and
/// treating it as a pattern read the whole directory for every `while [ ... ]` iteration,
/// making a loop that creates files quadratic in their number.
pub(crate) fn has_meta(pat: &[PatChar]) -> bool {
    let last_close = pat.iter().rposition(|&(c, a)| a && c == ']');
    pat.iter().enumerate().any(|(i, &(c, a))| {
        a && match c {
            '*' | '?' => true,
            '[' => last_close.is_some_and(|j| j > i + 1),
            _ => false,
        }
    })
}

impl Pattern {
    /// Compiles a pattern; a `\` in active text quotes the next character.
    pub(crate) fn new(pat: &[PatChar]) -> Pattern {
        let mut toks = Vec::new();
        let mut i = 0;
        while i < pat.len() {
            let (c, active) = pat[i];
            i += 1;
            if !active {
                toks.push(Tok::Lit(c));
                continue;
            }
            match c {
                '\\' if i < pat.len() => {
                    toks.push(Tok::Lit(pat[i].0));
                    i += 1;
                }
                '*' => {
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::Any),
                '[' => match parse_class(&pat[i..]) {
                    Some((tok, used)) => {
                        toks.push(tok);
                        i += used;
                    }
                    None => toks.push(Tok::Lit('[')),
                },
                _ => toks.push(Tok::Lit(c)),
            }
        }
        Pattern { toks }
    }

    /// A pattern from unquoted text (every character active).
    pub(crate) fn from_str(s: &str) -> Pattern {
        let v: Vec<PatChar> = s.chars().map(|c| (c, true)).collect();
        Pattern::new(&v)
    }

    /// Whole-string match.
    pub(crate) fn matches(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        match_at(&self.toks, &chars)
    }

    /// Whole-string match on a char slice.
    pub(crate) fn matches_chars(&self, s: &[char]) -> bool {
        match_at(&self.toks, s)
    }

    /// True when the first token must match a leading `.` explicitly (pathname expansion).
    pub(crate) fn starts_with_literal_dot(&self) -> bool {
        self.toks.first() == Some(&Tok::Lit('.'))
    }
}

fn parse_class(rest: &[PatChar]) -> Option<(Tok, usize)> {
    let mut i = 0;
    let mut negated = false;
    if i < rest.len() && rest[i].1 && (rest[i].0 == '!' || rest[i].0 == '^') {
        negated = true;
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    while i < rest.len() {
        let (c, active) = rest[i];
        if c == ']' && active && !first {
            return Some((Tok::Class { negated, items }, i + 1));
        }
        first = false;
        if c == '[' && active && rest.get(i + 1).map(|p| p.0) == Some(':') {
            let name: String = rest[i + 2..].iter().map(|p| p.0).collect();
            if let Some(end) = name.find(":]") {
                items.push(ClassItem::Named(name[..end].to_string()));
                i += 2 + end + 2;
                continue;
            }
        }
        let lo = if c == '\\' && active && i + 1 < rest.len() {
            i += 1;
            rest[i].0
        } else {
            c
        };
        i += 1;
        if i + 1 < rest.len() && rest[i].0 == '-' && !(rest[i + 1].0 == ']' && rest[i + 1].1) {
            items.push(ClassItem::Range(lo, rest[i + 1].0));
            i += 2;
        } else {
            items.push(ClassItem::Char(lo));
        }
    }
    None
}

fn class_has(items: &[ClassItem], c: char) -> bool {
    items.iter().any(|it| match it {
        ClassItem::Char(x) => *x == c,
        ClassItem::Range(a, b) => *a <= c && c <= *b,
        ClassItem::Named(n) => match n.as_str() {
            "alpha" => c.is_ascii_alphabetic(),
            "digit" => c.is_ascii_digit(),
            "alnum" => c.is_ascii_alphanumeric(),
            "upper" => c.is_ascii_uppercase(),
            "lower" => c.is_ascii_lowercase(),
            "space" => c.is_ascii_whitespace() || c == '\x0b',
            "blank" => c == ' ' || c == '\t',
            "punct" => c.is_ascii_punctuation(),
            "xdigit" => c.is_ascii_hexdigit(),
            "cntrl" => c.is_ascii_control(),
            "print" => (' '..='~').contains(&c),
            "graph" => ('!'..='~').contains(&c),
            _ => false,
        },
    })
}

fn match_at(toks: &[Tok], s: &[char]) -> bool {
    // Iterative matcher with single-star backtracking: linear for the common cases.
    let (mut ti, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if ti < toks.len() {
            match &toks[ti] {
                Tok::Star => {
                    star = Some((ti, si));
                    ti += 1;
                    continue;
                }
                Tok::Lit(c) if *c == s[si] => {
                    ti += 1;
                    si += 1;
                    continue;
                }
                Tok::Any => {
                    ti += 1;
                    si += 1;
                    continue;
                }
                Tok::Class { negated, items } if class_has(items, s[si]) != *negated => {
                    ti += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((st, ss)) => {
                ti = st + 1;
                si = ss + 1;
                star = Some((st, ss + 1));
            }
            None => return false,
        }
    }
    toks[ti..].iter().all(|t| *t == Tok::Star)
}

/// Which end of a value `${x#p}`-style removal works on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Trim {
    /// `#`: shortest prefix.
    ShortPrefix,
    /// `##`: longest prefix.
    LongPrefix,
    /// `%`: shortest suffix.
    ShortSuffix,
    /// `%%`: longest suffix.
    LongSuffix,
}

/// Removes the matching prefix or suffix from `value`.
pub(crate) fn trim(value: &str, pat: &Pattern, how: Trim) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let cut = |range: &mut dyn Iterator<Item = usize>, prefix: bool| -> Option<String> {
        for k in range {
            let (m, rest) = if prefix {
                (&chars[..k], &chars[k..])
            } else {
                (&chars[k..], &chars[..k])
            };
            if pat.matches_chars(m) {
                return Some(rest.iter().collect());
            }
        }
        None
    };
    let r = match how {
        Trim::ShortPrefix => cut(&mut (0..=n), true),
        Trim::LongPrefix => cut(&mut (0..=n).rev(), true),
        Trim::ShortSuffix => cut(&mut (0..=n).rev(), false),
        Trim::LongSuffix => cut(&mut (0..=n), false),
    };
    r.unwrap_or_else(|| value.to_string())
}

/// Finds the first (leftmost, longest) match of `pat` in `chars` at or after `from`.
pub(crate) fn find(
    chars: &[char],
    pat: &Pattern,
    from: usize,
    anchored: bool,
) -> Option<(usize, usize)> {
    let starts: Box<dyn Iterator<Item = usize>> = if anchored {
        Box::new(std::iter::once(from))
    } else {
        Box::new(from..=chars.len())
    };
    for st in starts {
        for end in (st..=chars.len()).rev() {
            if pat.matches_chars(&chars[st..end]) {
                return Some((st, end));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_globs() {
        assert!(Pattern::from_str("*.txt").matches("a.txt"));
        assert!(!Pattern::from_str("*.txt").matches("a.txt.bak"));
        assert!(Pattern::from_str("a?c").matches("abc"));
        assert!(Pattern::from_str("[a-c]x").matches("bx"));
        assert!(Pattern::from_str("[!a-c]x").matches("dx"));
        assert!(Pattern::from_str("[[:digit:]]*").matches("1abc"));
        assert!(Pattern::from_str("a\\*").matches("a*"));
        assert!(!Pattern::from_str("a\\*").matches("ab"));
        assert!(Pattern::from_str("[]]").matches("]"));
    }

    #[test]
    fn an_unclosed_bracket_is_not_a_glob() {
        let active = |s: &str| s.chars().map(|c| (c, true)).collect::<Vec<_>>();
        assert!(!has_meta(&active("[")));
        assert!(!has_meta(&active("[]")));
        assert!(!has_meta(&active("a[b")));
        assert!(has_meta(&active("[ab]")));
        assert!(has_meta(&active("[]]")));
        assert!(has_meta(&active("x*")));
        assert!(!has_meta(&[('[', true), ('a', true), (']', false)]));
    }

    #[test]
    fn quoted_star_is_literal() {
        let p = Pattern::new(&[('a', true), ('*', false)]);
        assert!(p.matches("a*"));
        assert!(!p.matches("ab"));
    }

    #[test]
    fn trims() {
        let p = Pattern::from_str("*/");
        assert_eq!(trim("a/b/c", &p, Trim::ShortPrefix), "b/c");
        assert_eq!(trim("a/b/c", &p, Trim::LongPrefix), "c");
        let p = Pattern::from_str(".*");
        assert_eq!(trim("x.tar.gz", &p, Trim::ShortSuffix), "x.tar");
        assert_eq!(trim("x.tar.gz", &p, Trim::LongSuffix), "x");
    }
}
