//! Stage 1 of parsing: physical lines to logical instructions ("raw nodes").
//!
//! Follows BuildKit's line rules: parser directives only at the very top, comment lines
//! (also inside continuations) dropped, the escape character at end of line joins lines
//! (with nothing inserted), empty continuation lines skipped, heredoc bodies read after the
//! instruction line for RUN/COPY/ADD.

use crate::error::{ErrorKind, ParseError, Span};
use crate::expand;
use crate::lint::CheckConfig;

/// Parser directives from the top of the file (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub syntax: Option<String>,
    /// `\` (default) or `` ` ``.
    pub escape: char,
    pub check: CheckConfig,
    /// Directives kiln does not interpret, lowercased name and value, in file order.
    pub other: Vec<(String, String)>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: CheckConfig::default(),
            other: Vec::new(),
        }
    }
}

/// A here-document attached to a RUN, COPY or ADD instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// Body, each line followed by `\n`, as written (see [`Heredoc::body`] for `<<-`).
    pub content: String,
    /// False when any part of the delimiter was quoted: the body is then literal.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines and the delimiter line.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

impl Heredoc {
    /// The body with `<<-` tab stripping applied.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// Where each piece of a logical line came from, to point errors at the right column.
#[derive(Debug, Clone, Default)]
pub(crate) struct Logical {
    pub text: String,
    /// (offset in `text`, 0-based physical line, byte column in that line)
    segs: Vec<(usize, usize, usize)>,
}

impl Logical {
    fn push(&mut self, piece: &str, line: usize, col: usize) {
        self.segs.push((self.text.len(), line, col));
        self.text.push_str(piece);
    }

    /// Physical (0-based line, byte column) for an offset in `text`.
    pub(crate) fn locate(&self, off: usize) -> (usize, usize) {
        let idx = self.segs.partition_point(|s| s.0 <= off).saturating_sub(1);
        match self.segs.get(idx) {
            Some(&(start, line, col)) => (line, col + off.saturating_sub(start)),
            None => (0, 0),
        }
    }
}

/// A flag word (`--mount=...`), quotes already removed as BuildKit does.
#[derive(Debug, Clone)]
pub(crate) struct FlagWord {
    pub text: String,
    pub off: usize,
}

/// One instruction before typing.
#[derive(Debug, Clone)]
pub(crate) struct RawNode {
    /// Instruction keyword as written (`run`, `RUN`).
    pub keyword: String,
    pub keyword_off: usize,
    pub flags: Vec<FlagWord>,
    /// Everything after the flags, trimmed.
    pub rest: String,
    pub rest_off: usize,
    /// The trimmed logical line (BuildKit's `Original`), used for history.
    pub original: String,
    pub heredocs: Vec<Heredoc>,
    pub span: Span,
    /// The line BuildKit reports NoEmptyContinuation at (the continuation's last line),
    /// when an empty line continued the instruction.
    pub empty_continuation: Option<usize>,
    /// BuildKit's `PrevComment`: the comment lines since the previous instruction (a bare
    /// `#` clears them; parser directives are not comments), without the `#`.
    pub comments: Vec<String>,
    pub logical: std::sync::Arc<Logical>,
}

impl RawNode {
    pub(crate) fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }
}

pub(crate) struct Source<'a> {
    pub file: &'a str,
    pub lines: Vec<&'a str>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Source<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines: Vec<&str> = text.split('\n').collect();
        if text.ends_with('\n') {
            lines.pop();
        }
        Source { file, lines }
    }

    fn line_text(&self, idx: usize) -> &'a str {
        let l = self.lines.get(idx).copied().unwrap_or("");
        l.strip_suffix('\r').unwrap_or(l)
    }

    /// An error at a 0-based line and byte column.
    pub(crate) fn error_at(&self, line: usize, byte_col: usize, kind: ErrorKind) -> ParseError {
        let text = self.line_text(line);
        let mut b = byte_col.min(text.len());
        while !text.is_char_boundary(b) {
            b -= 1;
        }
        ParseError {
            file: self.file.to_string(),
            line: line + 1,
            column: text[..b].chars().count() + 1,
            kind: Box::new(kind),
            source_line: text.to_string(),
            in_instruction: false,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn error_in(&self, logical: &Logical, off: usize, kind: ErrorKind) -> ParseError {
        let (line, col) = logical.locate(off);
        self.error_at(line, col, kind)
    }
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

/// Adds a comment line to the pending comments; a bare `#` ends a comment block.
fn collect_comment(line: &str, comments: &mut Vec<String>) {
    let text = line.trim_start_matches(is_space)[1..].trim_matches(is_space);
    if text.is_empty() {
        comments.clear();
    } else {
        comments.push(text.to_string());
    }
}

/// Strips the escape character (plus trailing blanks) ending a line; returns whether the
/// logical line ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(s) => (s, false),
        None => (line, true),
    }
}

struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
}

/// BuildKit's directive syntax after the comment mark: `[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=
/// [ \t]*(.+?)[ \t]*$`; the name lowercased. Also how `# check=` comments are read.
pub(crate) fn split_directive(body: &str) -> Option<(String, String)> {
    let body = body.trim_start_matches([' ', '\t']);
    let name_len = body
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let name = &body[..name_len];
    let value = body[name_len..]
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')?
        .trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

impl DirectiveParser {
    /// Matches BuildKit's `^#` followed by [`split_directive`].
    fn split(line: &str) -> Option<(String, String)> {
        split_directive(line.strip_prefix('#')?)
    }

    /// Reads one line; true when it was a parser directive.
    fn line(&mut self, line: &str, d: &mut Directives) -> Result<bool, ErrorKind> {
        if self.done {
            return Ok(false);
        }
        let Some((name, value)) = Self::split(line.trim_start_matches(is_space)) else {
            self.done = true;
            return Ok(false);
        };
        if self.seen.contains(&name) {
            return Err(ErrorKind::Directive(format!(
                "only one {name} parser directive can be used"
            )));
        }
        self.seen.push(name.clone());
        match name.as_str() {
            "escape" => {
                d.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ErrorKind::Directive(format!(
                            "invalid escape token '{value}' does not match ` or \\"
                        )));
                    }
                }
            }
            "syntax" => d.syntax = Some(value),
            "check" => d.check = CheckConfig::parse(&value).map_err(ErrorKind::Directive)?,
            _ => d.other.push((name, value)),
        }
        Ok(true)
    }
}

/// Splits the source into directives and raw instruction nodes.
pub(crate) fn split_source(src: &Source<'_>) -> Result<(Directives, Vec<RawNode>), ParseError> {
    let mut d = Directives::default();
    let mut dp = DirectiveParser {
        done: false,
        seen: Vec::new(),
    };
    let mut nodes = Vec::new();
    let mut comments = Vec::new();
    let n = src.lines.len();
    let mut i = 0;
    while i < n {
        let raw = src.line_text(i);
        let directive = dp.line(raw, &mut d).map_err(|k| src.error_at(i, 0, k))?;
        let start = i;
        i += 1;
        if is_comment(raw) {
            if !directive {
                collect_comment(raw, &mut comments);
            }
            continue;
        }
        let lead = raw.len() - raw.trim_start_matches(is_space).len();
        let (first, mut ended) = trim_continuation(&raw[lead..], d.escape);
        if ended && first.trim_matches(is_space).is_empty() {
            continue;
        }
        let mut logical = Logical::default();
        logical.push(first, start, lead);
        let mut empty_continuation = None;
        while !ended && i < n {
            let l = src.line_text(i);
            dp.line(l, &mut d).map_err(|k| src.error_at(i, 0, k))?;
            i += 1;
            if is_comment(l) {
                continue;
            }
            if l.trim_matches(is_space).is_empty() {
                empty_continuation = Some(0);
                continue;
            }
            let (piece, e) = trim_continuation(l, d.escape);
            ended = e;
            logical.push(piece, i - 1, 0);
        }
        let logical = std::sync::Arc::new(logical);
        let mut node = node_from(&logical, 0, logical.text.len());
        // BuildKit reports the empty line at the line that ends the instruction.
        node.empty_continuation = empty_continuation.map(|_| i);
        node.comments = std::mem::take(&mut comments);
        let end_line = read_heredocs(src, &mut node, &mut i)?;
        node.span = Span {
            start_line: start + 1,
            end_line: end_line.max(i),
        };
        nodes.push(node);
    }
    Ok((d, nodes))
}

/// Builds a node from `logical.text[from..to]` (ONBUILD re-enters with its sub-range).
pub(crate) fn node_from(logical: &std::sync::Arc<Logical>, from: usize, to: usize) -> RawNode {
    let text = &logical.text[from..to];
    let trimmed_start = text.len() - text.trim_start_matches(is_space).len();
    let body = text.trim_matches(is_space);
    let base = from + trimmed_start;
    let kw_len = body.find(is_ws_sep).unwrap_or(body.len());
    let keyword = body[..kw_len].to_string();
    let after = &body[kw_len..];
    let after_lead = after.len() - after.trim_start_matches(is_ws_sep).len();
    let args_off = base + kw_len + after_lead;
    let (flags, rest_rel) = extract_flags(&after[after_lead..], args_off);
    let rest_src = &after[after_lead + rest_rel..];
    let rest_lead = rest_src.len() - rest_src.trim_start_matches(is_space).len();
    RawNode {
        keyword,
        keyword_off: base,
        flags,
        rest: rest_src[rest_lead..].to_string(),
        rest_off: args_off + rest_rel + rest_lead,
        original: body.to_string(),
        heredocs: Vec::new(),
        span: Span::line(1),
        empty_continuation: None,
        comments: Vec::new(),
        logical: logical.clone(),
    }
}

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]`.
fn is_ws_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// BuildKit's `extractBuilderFlags`: leading `--words` (quotes removed, `\` escapes the next
/// character); stops at the first word not starting with `--` or after a bare `--`.
/// Returns the flags and the byte offset (in `line`) where the arguments start.
fn extract_flags(line: &str, base: usize) -> (Vec<FlagWord>, usize) {
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        while pos < b.len() && (b[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= b.len() {
            return (words, b.len());
        }
        if !(b[pos] == b'-' && b.get(pos + 1) == Some(&b'-')) {
            return (words, pos);
        }
        let start = pos;
        let mut word: Vec<u8> = Vec::new();
        let mut quote: Option<u8> = None;
        let mut blank_ok = false;
        while pos < b.len() {
            let c = b[pos];
            match quote {
                None if (c as char).is_ascii_whitespace() => break,
                None if c == b'\'' || c == b'"' => {
                    quote = Some(c);
                    blank_ok = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == b'\\' => {
                    if pos + 1 < b.len() {
                        pos += 1;
                        word.push(b[pos]);
                    }
                }
                _ => word.push(c),
            }
            pos += 1;
        }
        let text = String::from_utf8_lossy(&word).into_owned();
        if text == "--" {
            return (words, pos);
        }
        if blank_ok || !text.is_empty() {
            words.push(FlagWord {
                text,
                off: base + start,
            });
        }
    }
}

fn can_contain_heredoc(node: &RawNode) -> bool {
    match node.name().as_str() {
        "run" | "copy" | "add" => !looks_json(&node.rest),
        // `ONBUILD RUN <<EOF`: the trigger's body follows the line as for a plain RUN.
        "onbuild" => {
            let end = node.rest_off + node.rest.len();
            let trigger = node_from(&node.logical, node.rest_off, end);
            trigger.name() != "onbuild" && can_contain_heredoc(&trigger)
        }
        _ => false,
    }
}

fn looks_json(rest: &str) -> bool {
    crate::instruction::parse_json_array(rest).is_ok()
}

/// Reads heredoc bodies following the instruction; returns the last line consumed.
fn read_heredocs(src: &Source<'_>, node: &mut RawNode, i: &mut usize) -> Result<usize, ParseError> {
    if !can_contain_heredoc(node) || !node.logical.text.contains("<<") {
        return Ok(*i);
    }
    let found = heredocs_in_line(&node.original)
        .map_err(|m| src.error_in(&node.logical, node.keyword_off, ErrorKind::Heredoc(m)))?;
    for mut h in found {
        let start = *i;
        let mut terminated = false;
        while *i < src.lines.len() {
            let raw = src.lines[*i];
            *i += 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let cand = if h.chomp {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if cand == h.name {
                terminated = true;
                break;
            }
            h.content.push_str(raw);
            h.content.push('\n');
        }
        if !terminated {
            return Err(src.error_at(
                start.saturating_sub(1),
                0,
                ErrorKind::Heredoc(format!(
                    "unterminated heredoc: missing delimiter {}",
                    h.name
                )),
            ));
        }
        node.heredocs.push(h);
    }
    Ok(*i)
}

/// Finds heredoc redirections (`<<EOF`, `<<-"EOF"`, `3<<EOF`) among the shell words of a
/// line, as BuildKit does: each must be a whole word.
pub(crate) fn heredocs_in_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let words = expand::raw_words(line);
    let mut out = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc_word(&w)? {
            out.push(h);
        }
    }
    Ok(out)
}

/// Parses one word as a heredoc marker: `^(\d*)<<(-?)([^<]*)$`.
pub(crate) fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    // Like BuildKit, an out-of-range descriptor is not an error (it is only informative).
    let fd = word[..digits].parse::<u32>().ok();
    let unquoted = expand::expand_words(rest, '\\', &|_| None).map_err(|e| e.to_string())?;
    if unquoted.len() != 1 {
        return Ok(None);
    }
    let name = unquoted.into_iter().next().unwrap_or_default();
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let expand = quotes(&name) == quotes(rest);
    Ok(Some(Heredoc {
        name,
        content: String::new(),
        expand,
        chomp,
        fd,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (Directives, Vec<RawNode>) {
        split_source(&Source::new("Dockerfile", text)).unwrap()
    }

    #[test]
    fn directives_only_at_top() {
        let (d, n) = split(
            "# syntax=docker/dockerfile:1\n#escape=`\n# check=skip=all\nFROM a\n# escape=\\\n",
        );
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.escape, '`');
        assert!(d.check.skip_all);
        assert_eq!(n.len(), 1);
        let (d, _) = split("# comment\n# escape=`\nFROM a\n");
        assert_eq!(d.escape, '\\');
        let (d, _) = split("\n# escape=`\nFROM a\n");
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn directive_errors() {
        let e = split_source(&Source::new("D", "# escape=x\nFROM a")).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().contains("invalid escape token"), "{e}");
        let e = split_source(&Source::new("D", "# escape=`\n# Escape=\\\nFROM a")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("only one escape"));
    }

    #[test]
    fn unknown_directive_kept() {
        let (d, _) = split("# foo=bar\nFROM a");
        assert_eq!(d.other, vec![("foo".to_string(), "bar".to_string())]);
    }

    #[test]
    fn continuation_comments_and_empty_lines() {
        let (_, n) = split("RUN echo a \\\n  # comment\n\n    b \\\n c\nFROM x\n");
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].rest, "echo a     b  c");
        assert_eq!(n[0].empty_continuation, Some(5));
        assert_eq!(
            n[0].span,
            Span {
                start_line: 1,
                end_line: 5
            }
        );
        assert_eq!(n[1].span, Span::line(6));
    }

    #[test]
    fn backtick_escape_continuation() {
        let (_, n) = split("# escape=`\nRUN dir c:\\ `\n  /w\n");
        assert_eq!(n[0].rest, "dir c:\\   /w");
    }

    #[test]
    fn flags_extracted_with_quotes() {
        let (_, n) = split("COPY --from=\"a b\" --link  --chown=1:1 x y");
        let f: Vec<_> = n[0].flags.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(f, ["--from=a b", "--link", "--chown=1:1"]);
        assert_eq!(n[0].rest, "x y");
        assert_eq!(n[0].flags[1].off, 18);
        let (_, n) = split("RUN -- --not-a-flag");
        assert!(n[0].flags.is_empty());
        assert_eq!(n[0].rest, "--not-a-flag");
    }

    #[test]
    fn heredocs_read() {
        let (_, n) = split(
            "RUN <<EOF bash\necho hi\nEOF\nCOPY <<-\"A\" <<B /d/\n\tx $y\n\tA\nb\nB\nFROM z\n",
        );
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].heredocs[0].name, "EOF");
        assert_eq!(n[0].heredocs[0].content, "echo hi\n");
        assert!(n[0].heredocs[0].expand);
        assert_eq!(
            n[0].span,
            Span {
                start_line: 1,
                end_line: 3
            }
        );
        let h = &n[1].heredocs;
        assert_eq!(h.len(), 2);
        assert!(!h[0].expand && h[0].chomp);
        assert_eq!(h[0].content, "\tx $y\n");
        assert_eq!(h[0].body(), "x $y\n");
        assert_eq!(h[1].content, "b\n");
        assert_eq!(n[2].span.start_line, 9);
    }

    #[test]
    fn heredoc_words() {
        let h = parse_heredoc_word("3<<'E'\"F\"").unwrap().unwrap();
        assert_eq!(h.name, "EF");
        assert_eq!(h.fd, Some(3));
        assert!(!h.expand);
        assert!(parse_heredoc_word("<<").unwrap().is_none());
        assert_eq!(
            parse_heredoc_word("99999999999<<E").unwrap().unwrap().fd,
            None
        );
        assert!(parse_heredoc_word("a<<b").unwrap().is_none());
        assert!(parse_heredoc_word("<<a<b").unwrap().is_none());
    }

    #[test]
    fn unterminated_heredoc() {
        let e = split_source(&Source::new("D", "FROM a\nRUN cat <<EOF\nhello\n")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("unterminated heredoc"));
    }

    #[test]
    fn heredoc_not_in_json_or_quotes() {
        let (_, n) = split("RUN [\"cat\", \"<<EOF\"]\nRUN echo \"<<EOF\"\n");
        assert!(n[0].heredocs.is_empty() && n[1].heredocs.is_empty());
        assert_eq!(n.len(), 2);
    }

    #[test]
    fn bom_and_crlf() {
        let (_, n) = split("\u{feff}FROM a\r\nRUN x \\\r\n y\r\n");
        assert_eq!(n[0].keyword, "FROM");
        assert_eq!(n[1].rest, "x  y");
    }

    #[test]
    fn locate_maps_continuations() {
        let (_, n) = split("RUN a \\\n   --bad\n");
        let (line, col) = n[0].logical.locate(n[0].rest_off + 5);
        assert_eq!((line, col), (1, 3));
    }
}
