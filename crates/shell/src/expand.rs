//! Word expansion in POSIX order (tilde, parameter, command substitution, arithmetic,
//! field splitting, pathname expansion, quote removal) and redirections.

use std::sync::Arc;

use brush_parser::ast;
use brush_parser::word::{
    Parameter, ParameterExpr as PE, ParameterTestType, SpecialParameter, SubstringMatchKind,
    TildeExpr, WordPiece, WordPieceWithSource,
};

use crate::host::{FileKind, OpenMode};
use crate::interp::{Flow, Interp, parser_options};
use crate::io::{self as sio, Endpoint};
use crate::limits::LimitError;
use crate::pattern::{self, PatChar, Pattern, Trim};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Unquoted literal text: globbed, not split.
    Lit,
    /// Quoted text: neither split nor globbed.
    Quoted,
    /// Result of an unquoted expansion: split and globbed.
    Exp,
    /// Field boundary from `"$@"`.
    Break,
}

/// No `Debug`: expanded text can hold a secret value.
#[derive(Clone)]
struct Piece {
    text: String,
    kind: Kind,
}

fn piece(text: impl Into<String>, kind: Kind) -> Piece {
    Piece {
        text: text.into(),
        kind,
    }
}

/// A parameter's value: unset, a string, or the positional list (`$@`, `$*`).
enum Value {
    Unset,
    Scalar(String),
    List(Vec<String>, bool),
}

impl Value {
    fn is_unset_or_null(&self, t: &ParameterTestType) -> bool {
        match (self, t) {
            (Value::Unset, _) => true,
            (Value::Scalar(s), ParameterTestType::UnsetOrNull) => s.is_empty(),
            (Value::List(l, _), ParameterTestType::UnsetOrNull) => {
                l.is_empty() || (l.len() == 1 && l[0].is_empty())
            }
            _ => false,
        }
    }
}

fn param_of(pe: &PE) -> Option<&Parameter> {
    match pe {
        PE::Parameter { parameter, .. }
        | PE::UseDefaultValues { parameter, .. }
        | PE::AssignDefaultValues { parameter, .. }
        | PE::IndicateErrorIfNullOrUnset { parameter, .. }
        | PE::UseAlternativeValue { parameter, .. }
        | PE::ParameterLength { parameter, .. }
        | PE::RemoveSmallestSuffixPattern { parameter, .. }
        | PE::RemoveLargestSuffixPattern { parameter, .. }
        | PE::RemoveSmallestPrefixPattern { parameter, .. }
        | PE::RemoveLargestPrefixPattern { parameter, .. }
        | PE::Substring { parameter, .. }
        | PE::Transform { parameter, .. }
        | PE::UppercaseFirstChar { parameter, .. }
        | PE::UppercasePattern { parameter, .. }
        | PE::LowercaseFirstChar { parameter, .. }
        | PE::LowercasePattern { parameter, .. }
        | PE::ReplaceSubstring { parameter, .. } => Some(parameter),
        PE::VariableNames { .. } | PE::MemberKeys { .. } => None,
    }
}

fn param_name(p: &Parameter) -> String {
    match p {
        Parameter::Positional(n) => n.to_string(),
        Parameter::Special(s) => s.to_string().trim_start_matches('$').to_string(),
        Parameter::Named(n) => n.clone(),
        Parameter::NamedWithIndex { name, .. } | Parameter::NamedWithAllIndices { name, .. } => {
            name.clone()
        }
    }
}

impl crate::arith::Vars for Interp {
    fn get(&self, name: &str) -> Option<String> {
        self.get_var(name).map(str::to_string)
    }
    fn set(&mut self, name: &str, value: String) -> Result<(), String> {
        self.set_var(name, value)
    }
}

impl Interp {
    fn parse_word(&self, word: &str) -> Result<Vec<WordPieceWithSource>, Flow> {
        self.check_unclosed(word)?;
        let levels = crate::limits::parse_nesting(word);
        let parsed = crate::limits::bounded_parse(levels, || {
            brush_parser::word::parse(word, &parser_options())
        });
        parsed.map_err(|e| self.trip(e))?.map_err(|e| {
            self.err(&format!("bad substitution: {e}"));
            Flow::Exit(2)
        })
    }

    /// Refuses text whose `$(` leaves more than [`crate::limits::MAX_UNCLOSED_PARENS`]
    /// parentheses open, before the word parser backtracks on it for ever.
    fn check_unclosed(&self, text: &str) -> Result<(), Flow> {
        let open = crate::limits::unclosed_subst_parens(text);
        if open > crate::limits::MAX_UNCLOSED_PARENS {
            self.err(&format!(
                "bad substitution: $( with {open} unclosed parentheses (limit {})",
                crate::limits::MAX_UNCLOSED_PARENS
            ));
            return Err(Flow::Exit(2));
        }
        Ok(())
    }

    /// Expands command words into fields (split and globbed).
    pub(crate) fn expand_words(&mut self, words: &[&ast::Word]) -> Result<Vec<String>, Flow> {
        let mut out = Vec::new();
        for w in words {
            let pieces = self.word_pieces(&w.value, false)?;
            // Splitting holds a word as one `PatChar` (8 bytes) per character.
            let chars: usize = pieces.iter().map(|p| p.text.len()).sum();
            let size = chars.saturating_mul(std::mem::size_of::<PatChar>());
            self.check_memory(size, "a word being split into fields")?;
            for field in self.split_fields(&pieces) {
                self.glob_field(&field, &mut out);
            }
        }
        Ok(out)
    }

    /// Expands a word to one string (assignments, `case` words, redirection targets).
    pub(crate) fn expand_string(&mut self, word: &str) -> Result<String, Flow> {
        let pieces = self.word_pieces(word, false)?;
        Ok(join_pieces(&pieces))
    }

    /// Expands an assignment value; tildes after `=` and `:` were handled by the parser.
    pub(crate) fn expand_assignment(&mut self, word: &str) -> Result<String, Flow> {
        self.expand_string(word)
    }

    /// Expands a word into a pattern: quoted characters match literally.
    pub(crate) fn expand_pattern(&mut self, word: &str) -> Result<Vec<PatChar>, Flow> {
        let pieces = self.word_pieces(word, false)?;
        Ok(pattern_chars(&pieces))
    }

    /// Expands a here-document body (no quote processing, no splitting).
    pub(crate) fn expand_heredoc(&mut self, body: &str) -> Result<String, Flow> {
        let body = join_continuations(body);
        self.check_unclosed(&body)?;
        let levels = crate::limits::parse_nesting(&body);
        let parsed = crate::limits::bounded_parse(levels, || {
            brush_parser::word::parse_heredoc(&body, &parser_options())
        });
        let parsed = parsed.map_err(|e| self.trip(e))?.map_err(|e| {
            self.err(&format!("bad substitution: {e}"));
            Flow::Exit(2)
        })?;
        let mut out = Vec::new();
        self.pieces(&parsed, true, &mut out)?;
        Ok(join_pieces(&out))
    }

    /// Evaluates `$((text))`.
    pub(crate) fn arith(&mut self, text: &str) -> Result<i64, Flow> {
        let expanded = self.expand_heredoc(text)?;
        crate::arith::eval_str(&expanded, self).map_err(|e| {
            self.err(&format!("arithmetic expression: {e}: \"{expanded}\""));
            Flow::Exit(2)
        })
    }

    /// Expands `word` into pieces; nested words (`${a:-${b:-…}}`) recurse here, so each
    /// level keeps [`crate::limits::RED_ZONE`] of stack.
    fn word_pieces(&mut self, word: &str, dq: bool) -> Result<Vec<Piece>, Flow> {
        let parsed = self.parse_word(word)?;
        let mut out = Vec::new();
        let red = crate::limits::RED_ZONE;
        stacker::maybe_grow(red, crate::limits::STACK_SEGMENT, || {
            self.pieces(&parsed, dq, &mut out)
        })?;
        Ok(out)
    }

    fn pieces(
        &mut self,
        parsed: &[WordPieceWithSource],
        dq: bool,
        out: &mut Vec<Piece>,
    ) -> Result<(), Flow> {
        let q = |k: Kind| if dq { Kind::Quoted } else { k };
        // Bytes of `out` so far, counted up to piece `counted`.
        let (mut size, mut counted) = (0usize, 0usize);
        for p in parsed {
            let new: usize = out[counted..].iter().map(|p| p.text.len()).sum();
            (size, counted) = (size.saturating_add(new), out.len());
            // A variable's value is copied into the result: refuse before copying it.
            let next = match &p.piece {
                WordPiece::ParameterExpansion(PE::Parameter {
                    parameter: Parameter::Named(n),
                    ..
                }) => self.get_var(n).map_or(0, str::len),
                _ => 0,
            };
            self.check_expansion(size.saturating_add(next))?;
            match &p.piece {
                WordPiece::Text(t) => out.push(piece(t, q(Kind::Lit))),
                WordPiece::SingleQuotedText(t) => out.push(piece(t, Kind::Quoted)),
                WordPiece::AnsiCQuotedText(t) => out.push(piece(ansi_c(t), Kind::Quoted)),
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    out.push(piece("", Kind::Quoted));
                    self.pieces(inner, true, out)?;
                }
                WordPiece::EscapeSequence(s) => {
                    let lit = s.strip_prefix('\\').unwrap_or(s);
                    if dq && !matches!(lit.chars().next(), Some('$' | '`' | '"' | '\\' | '\n')) {
                        out.push(piece(s, Kind::Quoted));
                    } else if lit != "\n" {
                        out.push(piece(lit, Kind::Quoted));
                    }
                }
                WordPiece::TildeExpansion(t) => {
                    let s = match t {
                        TildeExpr::Home => self.get_var("HOME").unwrap_or("/root").to_string(),
                        TildeExpr::UserHome(u) if u == "root" => "/root".into(),
                        TildeExpr::UserHome(u) => format!("~{u}"),
                        TildeExpr::WorkingDir => self.cwd.clone(),
                        TildeExpr::OldWorkingDir => {
                            self.get_var("OLDPWD").unwrap_or("").to_string()
                        }
                        _ => "~".into(),
                    };
                    out.push(piece(s, Kind::Quoted));
                }
                WordPiece::ParameterExpansion(pe) => self.param_expansion(pe, dq, out)?,
                WordPiece::CommandSubstitution(src) => {
                    let s = self.command_subst(src)?;
                    out.push(piece(s, q(Kind::Exp)));
                }
                WordPiece::BackquotedCommandSubstitution(src) => {
                    let s = self.command_subst(&unescape_backquoted(src))?;
                    out.push(piece(s, q(Kind::Exp)));
                }
                WordPiece::ArithmeticExpression(e) => {
                    let v = self.arith(&e.value)?;
                    out.push(piece(v.to_string(), q(Kind::Exp)));
                }
            }
        }
        let new: usize = out[counted..].iter().map(|p| p.text.len()).sum();
        self.check_expansion(size.saturating_add(new))
    }

    /// An expansion result of `len` bytes counts with the variables the step holds:
    /// both are shell memory.
    fn check_expansion(&self, len: usize) -> Result<(), Flow> {
        let total = len.saturating_add(self.budget().used());
        self.check_memory(total, "an expansion result")
    }

    /// Runs `$(src)` in a subshell and returns its output minus trailing newlines.
    fn command_subst(&mut self, src: &str) -> Result<String, Flow> {
        let prog = self.parse_or_fail(src)?;
        let cap = sio::Capture::with_limit(self.budget().memory());
        let mut sub = self.subshell()?;
        sub.fds.insert(1, cap.clone());
        let r = sub.nested(|s| s.run_program(&prog));
        let st = sub.finish(r);
        drop(sub);
        self.cmdsub_status = Some(st);
        self.status = st;
        if cap.overflowed() {
            return Err(self.trip(LimitError::Memory {
                limit: self.budget().memory(),
                what: "the output of a $(…) command substitution",
            }));
        }
        let mut s = crate::bytes::from_bytes(&cap.take());
        while s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    fn get_param(&self, p: &Parameter) -> Value {
        match p {
            Parameter::Positional(0) => Value::Scalar(self.arg0.clone()),
            Parameter::Positional(n) => match self.params.get(*n as usize - 1) {
                Some(v) => Value::Scalar(v.clone()),
                None => Value::Unset,
            },
            Parameter::Named(n) => match self.get_var(n) {
                Some(v) => Value::Scalar(v.to_string()),
                None => Value::Unset,
            },
            Parameter::Special(s) => match s {
                SpecialParameter::AllPositionalParameters { concatenate } => {
                    Value::List(self.params.clone(), *concatenate)
                }
                SpecialParameter::PositionalParameterCount => {
                    Value::Scalar(self.params.len().to_string())
                }
                SpecialParameter::LastExitStatus => Value::Scalar(self.status.to_string()),
                SpecialParameter::CurrentOptionFlags => Value::Scalar(self.option_flags()),
                SpecialParameter::ProcessId => Value::Scalar("1".into()),
                SpecialParameter::LastBackgroundProcessId => match self.last_bg {
                    Some(p) => Value::Scalar(p.to_string()),
                    None => Value::Unset,
                },
                SpecialParameter::ShellName => Value::Scalar(self.arg0.clone()),
            },
            Parameter::NamedWithIndex { .. } | Parameter::NamedWithAllIndices { .. } => {
                Value::Unset
            }
        }
    }

    fn push_value(&self, v: Value, dq: bool, out: &mut Vec<Piece>) {
        let k = if dq { Kind::Quoted } else { Kind::Exp };
        match v {
            Value::Unset => out.push(piece("", k)),
            Value::Scalar(s) => out.push(piece(s, k)),
            Value::List(l, true) if dq => {
                let sep: String = self
                    .ifs()
                    .chars()
                    .next()
                    .map(String::from)
                    .unwrap_or_default();
                out.push(piece(l.join(&sep), k));
            }
            Value::List(l, _) => {
                for (i, s) in l.into_iter().enumerate() {
                    if i > 0 {
                        out.push(piece("", Kind::Break));
                    }
                    out.push(piece(s, k));
                }
            }
        }
    }

    /// Expands the word inside `${x:-word}`: quoted context propagates, unquoted literal
    /// text becomes splittable like any expansion result.
    fn sub_word(
        &mut self,
        word: Option<&String>,
        dq: bool,
        out: &mut Vec<Piece>,
    ) -> Result<(), Flow> {
        let Some(w) = word else {
            out.push(piece("", if dq { Kind::Quoted } else { Kind::Exp }));
            return Ok(());
        };
        for mut p in self.word_pieces(w, dq)? {
            if p.kind == Kind::Lit {
                p.kind = Kind::Exp;
            }
            out.push(p);
        }
        Ok(())
    }

    fn sub_string(&mut self, word: Option<&String>) -> Result<String, Flow> {
        match word {
            Some(w) => self.expand_string(w),
            None => Ok(String::new()),
        }
    }

    fn scalar_of(&self, v: Value) -> String {
        match v {
            Value::Unset => String::new(),
            Value::Scalar(s) => s,
            Value::List(l, _) => {
                let sep: String = self
                    .ifs()
                    .chars()
                    .next()
                    .map(String::from)
                    .unwrap_or_default();
                l.join(&sep)
            }
        }
    }

    fn checked_param(&self, p: &Parameter) -> Result<Value, Flow> {
        let v = self.get_param(p);
        if matches!(v, Value::Unset) && self.opts.nounset {
            self.err(&format!("{}: parameter not set", param_name(p)));
            return Err(Flow::Exit(2));
        }
        Ok(v)
    }

    fn param_expansion(&mut self, pe: &PE, dq: bool, out: &mut Vec<Piece>) -> Result<(), Flow> {
        let k = if dq { Kind::Quoted } else { Kind::Exp };
        let Some(param) = param_of(pe) else {
            return Err(self.bad_subst());
        };
        match pe {
            PE::Parameter { .. } => {
                let v = self.checked_param(param)?;
                self.push_value(v, dq, out);
            }
            PE::UseDefaultValues {
                test_type,
                default_value,
                ..
            } => {
                let v = self.get_param(param);
                if v.is_unset_or_null(test_type) {
                    self.sub_word(default_value.as_ref(), dq, out)?;
                } else {
                    self.push_value(v, dq, out);
                }
            }
            PE::AssignDefaultValues {
                test_type,
                default_value,
                ..
            } => {
                let v = self.get_param(param);
                if v.is_unset_or_null(test_type) {
                    let Parameter::Named(name) = param else {
                        self.err(&format!("{}: bad variable name", param_name(param)));
                        return Err(Flow::Exit(2));
                    };
                    let s = self.sub_string(default_value.as_ref())?;
                    if let Err(e) = self.set_var(name, s.clone()) {
                        self.err(&e);
                        return Err(Flow::Exit(2));
                    }
                    out.push(piece(s, k));
                } else {
                    self.push_value(v, dq, out);
                }
            }
            PE::IndicateErrorIfNullOrUnset {
                test_type,
                error_message,
                ..
            } => {
                let v = self.get_param(param);
                if v.is_unset_or_null(test_type) {
                    let msg = match error_message {
                        Some(m) if !m.is_empty() => self.expand_string(m)?,
                        _ if matches!(test_type, ParameterTestType::UnsetOrNull) => {
                            "parameter not set or null".into()
                        }
                        _ => "parameter not set".into(),
                    };
                    self.err(&format!("{}: {msg}", param_name(param)));
                    return Err(Flow::Exit(2));
                }
                self.push_value(v, dq, out);
            }
            PE::UseAlternativeValue {
                test_type,
                alternative_value,
                ..
            } => {
                let v = self.get_param(param);
                if !v.is_unset_or_null(test_type) {
                    self.sub_word(alternative_value.as_ref(), dq, out)?;
                } else {
                    out.push(piece("", k));
                }
            }
            PE::ParameterLength { .. } => {
                let n = match self.checked_param(param)? {
                    Value::List(l, _) => l.len(),
                    v => self.scalar_of(v).chars().count(),
                };
                out.push(piece(n.to_string(), k));
            }
            PE::RemoveSmallestSuffixPattern { pattern, .. }
            | PE::RemoveLargestSuffixPattern { pattern, .. }
            | PE::RemoveSmallestPrefixPattern { pattern, .. }
            | PE::RemoveLargestPrefixPattern { pattern, .. } => {
                let how = match pe {
                    PE::RemoveSmallestSuffixPattern { .. } => Trim::ShortSuffix,
                    PE::RemoveLargestSuffixPattern { .. } => Trim::LongSuffix,
                    PE::RemoveSmallestPrefixPattern { .. } => Trim::ShortPrefix,
                    _ => Trim::LongPrefix,
                };
                let v = self.checked_param(param)?;
                let pat = match pattern {
                    Some(p) => Pattern::new(&self.expand_pattern(p)?),
                    None => Pattern::from_str(""),
                };
                match v {
                    Value::List(l, c) => {
                        let l = l.iter().map(|s| pattern::trim(s, &pat, how)).collect();
                        self.push_value(Value::List(l, c), dq, out);
                    }
                    v => {
                        let s = self.scalar_of(v);
                        out.push(piece(pattern::trim(&s, &pat, how), k));
                    }
                }
            }
            PE::ReplaceSubstring {
                pattern,
                replacement,
                match_kind,
                ..
            } => {
                let v = self.checked_param(param)?;
                let s = self.scalar_of(v);
                let pat = Pattern::new(&self.expand_pattern(pattern)?);
                let rep = self.sub_string(replacement.as_ref())?;
                let limit = self.budget().memory();
                let Some(r) = replace(&s, &pat, &rep, match_kind, limit) else {
                    return Err(self.trip(LimitError::Memory {
                        limit,
                        what: "a ${x//pattern/replacement} result",
                    }));
                };
                out.push(piece(r, k));
            }
            PE::Substring { offset, length, .. } => {
                let v = self.checked_param(param)?;
                let chars: Vec<char> = self.scalar_of(v).chars().collect();
                let n = chars.len() as i64;
                let mut off = self.arith(&offset.value)?;
                if off < 0 {
                    off = (n + off).max(0);
                }
                let off = off.min(n);
                let end = match length {
                    Some(l) => {
                        let l = self.arith(&l.value)?;
                        if l < 0 {
                            (n + l).max(off)
                        } else {
                            (off + l).min(n)
                        }
                    }
                    None => n,
                };
                let s: String = chars[off as usize..end as usize].iter().collect();
                out.push(piece(s, k));
            }
            PE::Transform { op, .. } => {
                use brush_parser::word::ParameterTransformOp as T;
                let v = self.checked_param(param)?;
                let s = self.scalar_of(v);
                let s = match op {
                    T::ToUpperCase => s.to_uppercase(),
                    T::ToLowerCase => s.to_lowercase(),
                    T::Quoted => format!("'{}'", s.replace('\'', "'\\''")),
                    _ => return Err(self.bad_subst()),
                };
                out.push(piece(s, k));
            }
            PE::UppercasePattern { .. }
            | PE::LowercasePattern { .. }
            | PE::UppercaseFirstChar { .. }
            | PE::LowercaseFirstChar { .. } => {
                let v = self.checked_param(param)?;
                let s = self.scalar_of(v);
                let s = match pe {
                    PE::UppercasePattern { .. } => s.to_uppercase(),
                    PE::LowercasePattern { .. } => s.to_lowercase(),
                    PE::UppercaseFirstChar { .. } => first_char_map(&s, true),
                    _ => first_char_map(&s, false),
                };
                out.push(piece(s, k));
            }
            PE::VariableNames { .. } | PE::MemberKeys { .. } => return Err(self.bad_subst()),
        }
        Ok(())
    }

    fn bad_subst(&self) -> Flow {
        self.err("Bad substitution");
        Flow::Exit(2)
    }

    /// Field splitting with `IFS` (POSIX 2.6.5).
    fn split_fields(&self, pieces: &[Piece]) -> Vec<Vec<PatChar>> {
        let ifs = self.ifs();
        let is_ws = |c: char| ifs.contains(c) && matches!(c, ' ' | '\t' | '\n');
        let mut fields = Vec::new();
        let mut cur: Vec<PatChar> = Vec::new();
        let mut started = false;
        let mut ws_term = false;
        for p in pieces {
            match p.kind {
                Kind::Break => {
                    fields.push(std::mem::take(&mut cur));
                    started = false;
                    ws_term = false;
                }
                Kind::Lit | Kind::Quoted => {
                    let active = p.kind == Kind::Lit;
                    cur.extend(p.text.chars().map(|c| (c, active)));
                    started = true;
                    ws_term = false;
                }
                Kind::Exp => {
                    for c in p.text.chars() {
                        if !ifs.contains(c) {
                            cur.push((c, true));
                            started = true;
                            ws_term = false;
                        } else if is_ws(c) {
                            if started {
                                fields.push(std::mem::take(&mut cur));
                                started = false;
                                ws_term = true;
                            }
                        } else {
                            if started || !ws_term {
                                fields.push(std::mem::take(&mut cur));
                            }
                            started = false;
                            ws_term = false;
                        }
                    }
                }
            }
        }
        if started {
            fields.push(cur);
        }
        fields
    }

    /// Pathname expansion of one field; no match leaves the field as it is.
    fn glob_field(&self, field: &[PatChar], out: &mut Vec<String>) {
        let text: String = field.iter().map(|p| p.0).collect();
        if self.opts.noglob || !pattern::has_meta(field) {
            out.push(text);
            return;
        }
        let mut matches = self.glob(field);
        if matches.is_empty() {
            out.push(text);
        } else {
            matches.sort();
            out.append(&mut matches);
        }
    }

    fn glob(&self, pat: &[PatChar]) -> Vec<String> {
        let comps: Vec<&[PatChar]> = pat.split(|p| p.0 == '/').collect();
        let absolute = pat.first().is_some_and(|p| p.0 == '/');
        let trailing_slash = pat.len() > 1 && pat.last().is_some_and(|p| p.0 == '/');
        let mut cands: Vec<String> = vec![if absolute { "/".into() } else { String::new() }];
        let parts: Vec<&[PatChar]> = comps.into_iter().filter(|c| !c.is_empty()).collect();
        for (i, comp) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let mut next = Vec::new();
            for cand in &cands {
                let dir = if cand.is_empty() {
                    self.cwd.clone()
                } else {
                    self.abs_path(cand)
                };
                if !pattern::has_meta(comp) {
                    let name: String = comp.iter().map(|p| p.0).collect();
                    let path = join(cand, &name);
                    if self.host.stat(&self.abs_path(&path), false).is_ok() {
                        next.push(path);
                    }
                    continue;
                }
                let p = Pattern::new(comp);
                let Ok(names) = self.host.read_dir(&dir) else {
                    continue;
                };
                for name in names {
                    if name.starts_with('.') && !p.starts_with_literal_dot() {
                        continue;
                    }
                    if !p.matches(&name) {
                        continue;
                    }
                    let path = join(cand, &name);
                    if (!last || trailing_slash) && !self.is_dir(&path) {
                        continue;
                    }
                    next.push(path);
                }
            }
            cands = next;
        }
        if trailing_slash {
            for c in &mut cands {
                c.push('/');
            }
        }
        cands
    }

    fn is_dir(&self, path: &str) -> bool {
        self.host
            .stat(&self.abs_path(path), true)
            .is_ok_and(|s| s.kind == FileKind::Dir)
    }

    // ---- redirections ----------------------------------------------------------------

    /// Applies redirections to the fd table; on failure prints the error and returns the
    /// status to use (the caller restores the table).
    pub(crate) fn apply_redirs(
        &mut self,
        redirs: &[ast::IoRedirect],
    ) -> Result<(), Result<i32, Flow>> {
        for r in redirs {
            self.apply_redir(r)?;
        }
        Ok(())
    }

    fn apply_redir(&mut self, r: &ast::IoRedirect) -> Result<(), Result<i32, Flow>> {
        use ast::IoFileRedirectKind as K;
        match r {
            ast::IoRedirect::File(fd, kind, target) => {
                let default_fd = match kind {
                    K::Read | K::ReadAndWrite | K::DuplicateInput => 0,
                    _ => 1,
                };
                let fd = fd.unwrap_or(default_fd);
                let word = match target {
                    ast::IoFileRedirectTarget::Filename(w)
                    | ast::IoFileRedirectTarget::Duplicate(w) => {
                        self.expand_string(&w.value).map_err(Err)?
                    }
                    ast::IoFileRedirectTarget::Fd(n) => n.to_string(),
                    ast::IoFileRedirectTarget::ProcessSubstitution(..) => {
                        self.err("process substitution: not supported by kiln's shell");
                        return Err(Ok(2));
                    }
                };
                match kind {
                    K::DuplicateInput | K::DuplicateOutput => self.dup_fd(fd, &word),
                    _ => {
                        let mode = match kind {
                            K::Read => OpenMode {
                                read: true,
                                ..Default::default()
                            },
                            K::ReadAndWrite => OpenMode {
                                read: true,
                                write: true,
                                create: true,
                                ..Default::default()
                            },
                            K::Append => OpenMode {
                                write: true,
                                create: true,
                                append: true,
                                ..Default::default()
                            },
                            K::Write => OpenMode {
                                write: true,
                                create: true,
                                truncate: true,
                                exclusive: self.opts.noclobber,
                                ..Default::default()
                            },
                            _ => OpenMode {
                                write: true,
                                create: true,
                                truncate: true,
                                ..Default::default()
                            },
                        };
                        let ep = self.open_path(&word, mode)?;
                        self.fds.insert(fd, ep);
                        Ok(())
                    }
                }
            }
            ast::IoRedirect::HereDocument(fd, hd) => {
                let body = if hd.requires_expansion {
                    self.expand_heredoc(&hd.doc.value).map_err(Err)?
                } else {
                    hd.doc.value.clone()
                };
                self.fds
                    .insert(fd.unwrap_or(0), sio::Bytes::endpoint(to_bytes(body)));
                Ok(())
            }
            ast::IoRedirect::HereString(fd, w) => {
                let mut s = self.expand_string(&w.value).map_err(Err)?;
                s.push('\n');
                self.fds
                    .insert(fd.unwrap_or(0), sio::Bytes::endpoint(to_bytes(s)));
                Ok(())
            }
            ast::IoRedirect::OutputAndError(w, append) => {
                let word = self.expand_string(&w.value).map_err(Err)?;
                let mode = OpenMode {
                    write: true,
                    create: true,
                    truncate: !append,
                    append: *append,
                    ..Default::default()
                };
                let ep = self.open_path(&word, mode)?;
                self.fds.insert(1, ep.clone());
                self.fds.insert(2, ep);
                Ok(())
            }
        }
    }

    fn dup_fd(&mut self, fd: i32, word: &str) -> Result<(), Result<i32, Flow>> {
        if word == "-" {
            self.fds.remove(&fd);
            return Ok(());
        }
        let Ok(src) = word.parse::<i32>() else {
            self.err(&format!("{word}: Bad file descriptor"));
            return Err(Ok(2));
        };
        match self.fds.get(&src).cloned() {
            Some(ep) => {
                self.fds.insert(fd, ep);
                Ok(())
            }
            None => {
                self.err(&format!("{src}: Bad file descriptor"));
                Err(Ok(2))
            }
        }
    }

    /// Opens a redirection target; `/dev/null`, `/dev/std*` and `/dev/fd/N` are the
    /// shell's own so they work whatever the image contains.
    fn open_path(&mut self, path: &str, mode: OpenMode) -> Result<Endpoint, Result<i32, Flow>> {
        let dev_fd = match path {
            "/dev/null" => return Ok(Arc::new(sio::Null)),
            "/dev/zero" => return Ok(Arc::new(sio::Zero)),
            "/dev/stdin" => Some(0),
            "/dev/stdout" => Some(1),
            "/dev/stderr" => Some(2),
            p => p
                .strip_prefix("/dev/fd/")
                .and_then(|n| n.parse::<i32>().ok()),
        };
        if let Some(n) = dev_fd {
            return self.fds.get(&n).cloned().ok_or_else(|| {
                self.err(&format!("{n}: Bad file descriptor"));
                Ok(2)
            });
        }
        let abs = self.abs_path(path);
        match self.host.open(&abs, mode, self.umask) {
            Ok(ep) => Ok(ep),
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound if mode.create => "Directory nonexistent",
                    std::io::ErrorKind::NotFound => "No such file",
                    std::io::ErrorKind::AlreadyExists => "File exists",
                    std::io::ErrorKind::PermissionDenied => "Permission denied",
                    std::io::ErrorKind::IsADirectory => "Is a directory",
                    _ => "I/O error",
                };
                let verb = if mode.create { "create" } else { "open" };
                self.err(&format!("cannot {verb} {path}: {why}"));
                Err(Ok(2))
            }
        }
    }
}

/// A shell string's bytes for a here-document or here-string.
fn to_bytes(s: String) -> Vec<u8> {
    match crate::bytes::to_bytes(&s) {
        std::borrow::Cow::Borrowed(_) => s.into_bytes(),
        std::borrow::Cow::Owned(b) => b,
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn join_pieces(pieces: &[Piece]) -> String {
    let mut s = String::new();
    for p in pieces {
        if p.kind == Kind::Break {
            s.push(' ');
        } else {
            s.push_str(&p.text);
        }
    }
    s
}

fn pattern_chars(pieces: &[Piece]) -> Vec<PatChar> {
    let mut v = Vec::new();
    for p in pieces {
        let active = matches!(p.kind, Kind::Lit | Kind::Exp);
        if p.kind == Kind::Break {
            v.push((' ', false));
        }
        v.extend(p.text.chars().map(|c| (c, active)));
    }
    v
}

fn first_char_map(s: &str, upper: bool) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(c) if upper => c.to_uppercase().chain(cs).collect(),
        Some(c) => c.to_lowercase().chain(cs).collect(),
        None => String::new(),
    }
}

/// `${s/pat/rep}` and friends; `None` once the result would exceed `limit` bytes.
fn replace(
    s: &str,
    pat: &Pattern,
    rep: &str,
    kind: &SubstringMatchKind,
    limit: usize,
) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let splice = |st: usize, en: usize| -> String {
        let mut r: String = chars[..st].iter().collect();
        r.push_str(rep);
        r.extend(&chars[en..]);
        r
    };
    Some(match kind {
        SubstringMatchKind::Prefix => match (0..=n).rev().find(|&e| pat.matches_chars(&chars[..e]))
        {
            Some(e) => splice(0, e),
            None => s.to_string(),
        },
        SubstringMatchKind::Suffix => match (0..=n).find(|&b| pat.matches_chars(&chars[b..])) {
            Some(b) => splice(b, n),
            None => s.to_string(),
        },
        SubstringMatchKind::FirstOccurrence => match pattern::find(&chars, pat, 0, false) {
            Some((st, en)) if en > st => splice(st, en),
            _ => s.to_string(),
        },
        SubstringMatchKind::Anywhere => {
            let mut out = String::new();
            let mut i = 0;
            while i < n {
                match pattern::find(&chars, pat, i, true) {
                    Some((st, en)) if en > st => {
                        out.push_str(rep);
                        if out.len() > limit {
                            return None;
                        }
                        i = en;
                    }
                    _ => {
                        out.push(chars[i]);
                        i += 1;
                    }
                }
            }
            out
        }
    })
}

/// Removes backslash-newline pairs (line continuations in unquoted here-documents).
fn join_continuations(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('\n') => {}
                Some(n) => {
                    out.push(c);
                    out.push(n);
                }
                None => out.push(c),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Inside backquotes, `\$`, `` \` `` and `\\` stand for the bare character.
fn unescape_backquoted(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut it = src.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\'
            && let Some(&n) = it.peek()
            && matches!(n, '$' | '`' | '\\')
        {
            out.push(n);
            it.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// `$'...'` escapes (bash).
fn ansi_c(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\x07'),
            Some('b') => out.push('\x08'),
            Some('e') | Some('E') => out.push('\x1b'),
            Some('f') => out.push('\x0c'),
            Some('v') => out.push('\x0b'),
            Some('\\') => out.push('\\'),
            Some('\'') => out.push('\''),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}
