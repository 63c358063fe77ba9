//! `((` that is not arithmetic. brush-parser reads any `(` `(` … `)` `)` token sequence
//! as an arithmetic command, even `( ( echo x ) )`. POSIX (and dash, bash) decide on the
//! characters: `( (` with a blank between is always two subshells, and `((` is arithmetic
//! only when the parenthesis opened by its second `(` is closed right before another `)`
//! (`((x=1))`, not `((echo x) )`). Before parsing, a newline is put between the two `(`
//! of every such nested subshell, which brush-parser then reads as two subshells; nothing
//! else in the script changes (quotes, comments and here-document bodies are skipped).
//!
//! The same scan refuses two inputs brush-parser cannot survive (both found by the shell
//! fuzzer), as clear syntax errors before parsing: a here-document whose delimiter is
//! empty after quote removal (`<<''`), on which its tokenizer loops for ever; and a
//! script that leaves more than [`crate::limits::MAX_UNCLOSED_PARENS`] `(` open, on which
//! its arithmetic rules backtrack exponentially. Neither is a valid script's text.

use std::borrow::Cow;

/// Why a script is refused before parsing.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// A here-document delimiter that is empty once quotes are removed.
    #[error(
        "empty here-document delimiter (<<'') is not supported; use a non-empty word such as <<'EOF'"
    )]
    EmptyHereTag,
    /// `(` left open at the end of the script.
    #[error("{0} unclosed '(' (more than {max} cannot be parsed safely)", max = crate::limits::MAX_UNCLOSED_PARENS)]
    UnclosedParens(usize),
}

/// `src` with a newline inserted after the first `(` of every `( (` / `((…) )` that
/// opens nested subshells (see the module docs).
pub(crate) fn split_nested_subshells(src: &str) -> Result<Cow<'_, str>, Refused> {
    let at = insertion_points(src.as_bytes())?;
    if at.is_empty() {
        return Ok(Cow::Borrowed(src));
    }
    let mut out = String::with_capacity(src.len() + at.len());
    let mut last = 0;
    for i in at {
        out.push_str(&src[last..i]);
        out.push('\n');
        last = i;
    }
    out.push_str(&src[last..]);
    Ok(Cow::Owned(out))
}

/// Byte offsets right after each `(` that opens an outer subshell of a nested pair.
fn insertion_points(b: &[u8]) -> Result<Vec<usize>, Refused> {
    let mut at = Vec::new();
    // `(` still open outside quotes, comments and here-document bodies; a stray `)` (a
    // `case` pattern's) only ever lowers it.
    let mut open = 0usize;
    let mut heredocs: Vec<(Vec<u8>, bool)> = Vec::new();
    let (mut i, mut cmd_pos, mut word_start) = (0, true, true);
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => i += 1,
            b'\'' => i = skip_until(b, i + 1, b'\''),
            b'"' => i = skip_double_quoted(b, i + 1),
            b'#' if word_start => i = skip_until(b, i, b'\n').saturating_sub(1),
            b'\n' if !heredocs.is_empty() => {
                i = skip_heredoc_bodies(b, i + 1, &mut heredocs);
                (cmd_pos, word_start) = (true, true);
                continue;
            }
            b'<' if b.get(i + 1) == Some(&b'<') && b.get(i + 2) != Some(&b'<') => {
                i = read_heredoc_word(b, i + 2, &mut heredocs).ok_or(Refused::EmptyHereTag)?;
                (cmd_pos, word_start) = (false, true);
                continue;
            }
            b'$' if b.get(i + 1) == Some(&b'(') => {
                // `$((` is arithmetic expansion, `$(` a command substitution.
                let arith = b.get(i + 2) == Some(&b'(');
                open += if arith { 2 } else { 1 };
                i += if arith { 3 } else { 2 };
                (cmd_pos, word_start) = (!arith, true);
                continue;
            }
            b'(' if cmd_pos => match classify(b, i) {
                Paren::Nested(j) => {
                    open += 1;
                    at.push(i + 1);
                    i = j;
                    (cmd_pos, word_start) = (true, true);
                    continue;
                }
                Paren::Arith(end) => {
                    // Nothing inside an arithmetic command is a command.
                    (i, cmd_pos, word_start) = (end + 1, false, true);
                    continue;
                }
                Paren::Single => {}
            },
            _ => {}
        }
        if c.is_ascii_alphabetic() && word_start {
            let end = b[i..]
                .iter()
                .position(|c| !c.is_ascii_alphanumeric() && *c != b'_')
                .map_or(b.len(), |n| i + n);
            cmd_pos = cmd_pos && is_reserved(&b[i..end]);
            word_start = false;
            i = end;
            continue;
        }
        match c {
            b'(' => open += 1,
            b')' => open = open.saturating_sub(1),
            _ => {}
        }
        if b";&|(){}`!\n".contains(&c) {
            cmd_pos = true;
        } else if c != b' ' && c != b'\t' {
            cmd_pos = false;
        }
        word_start = !c.is_ascii_alphanumeric() && c != b'_';
        i += 1;
    }
    if open > crate::limits::MAX_UNCLOSED_PARENS {
        return Err(Refused::UnclosedParens(open));
    }
    Ok(at)
}

/// Reserved words after which a command (and so a subshell) may start.
fn is_reserved(word: &[u8]) -> bool {
    matches!(
        word,
        b"if" | b"then" | b"else" | b"elif" | b"while" | b"until" | b"do" | b"for"
    )
}

/// What a `(` in command position opens.
enum Paren {
    /// A subshell whose first command is another subshell starting at this offset.
    Nested(usize),
    /// An arithmetic command `((…))` ending at this offset (its last `)`).
    Arith(usize),
    /// Anything else (one subshell, or unbalanced text brush-parser will reject).
    Single,
}

fn classify(b: &[u8], i: usize) -> Paren {
    let j = i
        + 1
        + b[i + 1..]
            .iter()
            .take_while(|c| **c == b' ' || **c == b'\t')
            .count();
    if b.get(j) != Some(&b'(') {
        return Paren::Single;
    }
    if j > i + 1 {
        return Paren::Nested(j);
    }
    // `((`: arithmetic only if the second `(` closes right before a `)`.
    match matching_paren(b, j) {
        Some(close) if b.get(close + 1) == Some(&b')') => Paren::Arith(close + 1),
        Some(_) => Paren::Nested(j),
        None => Paren::Single,
    }
}

/// Offset of the `)` matching the `(` at `open`, skipping quoted text.
fn matching_paren(b: &[u8], open: usize) -> Option<usize> {
    let (mut depth, mut i) = (0usize, open);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'\'' => i = skip_until(b, i + 1, b'\''),
            b'"' => i = skip_double_quoted(b, i + 1),
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Offset of the next `end` at or after `i` (the end of input if none).
fn skip_until(b: &[u8], i: usize, end: u8) -> usize {
    b.get(i..)
        .and_then(|r| r.iter().position(|&c| c == end))
        .map_or(b.len(), |n| i + n)
}

/// Offset of the `"` closing a double-quoted string whose text starts at `i`.
fn skip_double_quoted(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    i
}

/// After `<<`: records the here-document's delimiter (unquoted) and whether it is `<<-`;
/// returns the offset after the delimiter word, or `None` for a quoted empty delimiter.
fn read_heredoc_word(b: &[u8], mut i: usize, docs: &mut Vec<(Vec<u8>, bool)>) -> Option<usize> {
    let strip_tabs = b.get(i) == Some(&b'-');
    if strip_tabs {
        i += 1;
    }
    while b.get(i).is_some_and(|c| *c == b' ' || *c == b'\t') {
        i += 1;
    }
    let (start, mut word) = (i, Vec::new());
    while let Some(&c) = b.get(i) {
        if c.is_ascii_whitespace() || b";&|<>()".contains(&c) {
            break;
        }
        if c != b'\'' && c != b'"' && c != b'\\' {
            word.push(c);
        }
        i += 1;
    }
    if word.is_empty() {
        // Only quotes (or backslashes): an empty delimiter. Nothing at all is brush-parser's
        // own syntax error.
        return (i == start).then_some(i);
    }
    docs.push((word, strip_tabs));
    Some(i)
}

/// Skips the bodies of the pending here-documents, which start at `i`; returns the
/// offset after the last delimiter line.
fn skip_heredoc_bodies(b: &[u8], mut i: usize, docs: &mut Vec<(Vec<u8>, bool)>) -> usize {
    for (word, strip_tabs) in docs.drain(..) {
        while i < b.len() {
            let end = skip_until(b, i, b'\n');
            let mut line = &b[i..end];
            if strip_tabs {
                let tabs = line.iter().take_while(|c| **c == b'\t').count();
                line = &line[tabs..];
            }
            i = end + 1;
            if line == word.as_slice() {
                break;
            }
        }
    }
    i.min(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> String {
        split_nested_subshells(s)
            .expect("no empty here tag")
            .into_owned()
    }

    #[test]
    fn unclosed_parentheses_are_refused() {
        let attack = format!("{}[at 0<<EOF\nfd zero\nEOF\n", "(".repeat(64));
        assert_eq!(
            split_nested_subshells(&attack),
            Err(Refused::UnclosedParens(64))
        );
        assert!(split_nested_subshells(&"(".repeat(20)).is_err());
        for s in [
            "case x in a) echo (1);; (b) :;; esac",
            "echo $( (echo a) ) $((1+(2))) \"((((((((((\" '((((((((((' # ((((((((((",
            "cat <<EOF\n((((((((((((\nEOF\n",
            "f() { ( (echo x) ); }",
        ] {
            assert!(split_nested_subshells(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn an_empty_here_document_delimiter_is_refused() {
        for s in [
            "cat <<''\nfoo\n\n",
            "cat <<\"\"\nfoo\n",
            "cat <<- '' x\n",
            "a; cat <<''''",
        ] {
            assert!(split_nested_subshells(s).is_err(), "{s:?}");
        }
        for s in [
            "echo \"<<''\"",
            "echo '<<\"\"'",
            "# cat <<''",
            "cat <<'E'\n''\nE\n",
        ] {
            assert!(split_nested_subshells(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn nested_subshells_are_split() {
        assert_eq!(split("( ( echo x ) )"), "(\n ( echo x ) )");
        assert_eq!(split("((echo x) )"), "(\n(echo x) )");
        assert_eq!(split("a; ( (b) )"), "a; (\n (b) )");
        assert_eq!(split("x=$( ( echo q ) )"), "x=$( ( echo q ) )");
        assert_eq!(split("x=$( ( (echo q) ) )"), "x=$( (\n (echo q) ) )");
        assert_eq!(
            split("if ( (true) ); then :; fi"),
            "if (\n (true) ); then :; fi"
        );
    }

    #[test]
    fn arithmetic_and_other_text_are_left_alone() {
        for s in [
            "((x=1))",
            "(( (1+2) * 3 ))",
            "(( (a) + (b) ))",
            "(((1+2)))",
            "for ((i=0; i<3; i++)); do :; done",
            "echo $((1+2)) $(( (1) ))",
            "echo '( (x) )' \"( (y) )\" # ( (z) )",
            "echo ( (",
            "cat <<EOF\n( (x) )\nEOF\necho",
            "cat <<-'E'\n\t( (x) )\n\tE\n",
        ] {
            assert_eq!(split(s), s, "{s:?}");
        }
        assert_eq!(
            split("cat <<EOF\n( (x) )\nEOF\n( (y) )"),
            "cat <<EOF\n( (x) )\nEOF\n(\n (y) )"
        );
    }
}
