//! fnmatch(3) without flags, as `find -name/-path` and `grep --include` use it: `*` and `?`
//! match any byte (including `/` and a leading `.`), `[...]` sets with `!`/`^` negation,
//! ranges and `[:class:]`, and `\` quoting the next byte.

/// True if `name` matches `pattern`.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative with single-star backtracking: linear in practice, no recursion to blow
    // the stack on hostile patterns.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((hit, next)) = bracket(pattern, p, name[n]) {
                        if hit {
                            p = next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == name[n] {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the set starting at `pattern[start] == b'['`. Returns whether it
/// matched and the index after the set, or None if the set is unterminated (then `[` is a
/// literal).
fn bracket(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &b = pattern.get(i)?;
        if b == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if b == b'[' && pattern.get(i + 1) == Some(&b':') {
            let end = (i + 2..pattern.len().saturating_sub(1))
                .find(|&k| pattern[k] == b':' && pattern[k + 1] == b']')?;
            hit |= class_matches(&pattern[i + 2..end], c);
            i = end + 2;
            continue;
        }
        let lo = if b == b'\\' {
            i += 1;
            *pattern.get(i)?
        } else {
            b
        };
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pattern[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

fn class_matches(class: &[u8], c: u8) -> bool {
    match class {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(p: &str, n: &str) -> bool {
        matches(p.as_bytes(), n.as_bytes())
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("*.rs", "main.rs"));
        assert!(m("*", ".hidden"));
        assert!(!m("*.rs", "main.rs.bak"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(m("?x", "ax"));
        assert!(!m("?x", "x"));
        assert!(m("*/src/*", "./a/src/b.rs"));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn sets_and_escapes() {
        assert!(m("[abc].txt", "b.txt"));
        assert!(!m("[!abc].txt", "b.txt"));
        assert!(m("[a-z]1", "q1"));
        assert!(m("[]]", "]"));
        assert!(m("[[:digit:]]*", "9lives"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        assert!(m("[", "["));
        assert!(m("a[", "a["));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let name = "a".repeat(200);
        assert!(!m(&format!("{}b", "*a".repeat(50)), &name));
    }
}
