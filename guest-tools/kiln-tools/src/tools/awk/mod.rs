//! awk: POSIX awk without user-defined functions. Patterns (BEGIN, END,
//! expressions, /re/, ranges), fields and NF/NR/FNR/FS/OFS/ORS/RS/FILENAME/SUBSEP/
//! RSTART/RLENGTH/ENVIRON, associative arrays (`for (k in a)` visits keys in sorted
//! order, so output is deterministic), print/printf with `>`/`>>` redirection, and the
//! string and math builtins, `getline` in all its forms (see `input`). `-F`, `-v`, `-f`
//! (`-f -` reads the program from stdin), `var=value` operands.

mod input;
mod lex;
mod parse;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};

use regex::bytes::Regex;

use crate::posix_re::{self, Dialect};
use crate::util::{self, describe, warn};
use parse::{Expr, Pattern, Rule, Stmt};

#[derive(Debug, Clone)]
enum Value {
    Num(f64),
    Str(String),
    /// Input-derived text that compares as a number when it looks like one.
    StrNum(String),
    Uninit,
}

fn looks_numeric(s: &str) -> Option<f64> {
    let t = s.trim_matches([' ', '\t', '\n']);
    if t.is_empty() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    if lower.contains("inf") || lower.contains("nan") || lower.starts_with("0x") {
        return None;
    }
    t.parse::<f64>().ok()
}

/// strtod-like: the longest numeric prefix, 0 if none.
fn to_num(s: &str) -> f64 {
    let t = s.trim_start_matches([' ', '\t', '\n']);
    let b = t.as_bytes();
    let mut end = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let digits_start = end;
    while b.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    if b.get(end) == Some(&b'.') {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    if end == digits_start || (end == digits_start + 1 && b.get(digits_start) == Some(&b'.')) {
        return 0.0;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut e = end + 1;
        if matches!(b.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        if b.get(e).is_some_and(u8::is_ascii_digit) {
            while b.get(e).is_some_and(u8::is_ascii_digit) {
                e += 1;
            }
            end = e;
        }
    }
    t[..end].parse().unwrap_or(0.0)
}

/// Number to string: integers print as integers, others with `%.6g`.
fn num_to_str(n: f64, fmt: &str) -> String {
    if n == n.trunc() && n.abs() < 1e16 {
        format!("{}", n as i64)
    } else {
        sprintf(fmt, &[Value::Num(n)], "%.6g")
    }
}

impl Value {
    fn num(&self) -> f64 {
        match self {
            Value::Num(n) => *n,
            Value::Str(s) | Value::StrNum(s) => to_num(s),
            Value::Uninit => 0.0,
        }
    }

    fn string(&self, convfmt: &str) -> String {
        match self {
            Value::Num(n) => num_to_str(*n, convfmt),
            Value::Str(s) | Value::StrNum(s) => s.clone(),
            Value::Uninit => String::new(),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Value::Num(n) => *n != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::StrNum(s) => looks_numeric(s).map_or(!s.is_empty(), |n| n != 0.0),
            Value::Uninit => false,
        }
    }

    fn numeric_for_compare(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Uninit => Some(0.0),
            Value::StrNum(s) => looks_numeric(s),
            Value::Str(_) => None,
        }
    }
}

enum Flow {
    Normal,
    Next,
    Exit,
    Break,
    Continue,
}

struct Awk {
    vars: HashMap<String, Value>,
    arrays: HashMap<String, BTreeMap<String, Value>>,
    record: String,
    fields: Vec<String>,
    fields_valid: bool,
    regexes: HashMap<String, Regex>,
    outputs: HashMap<String, Box<dyn Write>>,
    stdout: io::BufWriter<io::Stdout>,
    exit_code: i32,
    ranges: Vec<bool>,
    main: input::MainInput,
    streams: input::Streams,
}

type R<T> = Result<T, String>;

impl Awk {
    fn var(&self, name: &str) -> String {
        self.vars
            .get(name)
            .map(|v| v.string("%.6g"))
            .unwrap_or_default()
    }

    fn convfmt(&self) -> String {
        self.var("CONVFMT")
    }

    fn regex(&mut self, re: &str) -> R<Regex> {
        if let Some(r) = self.regexes.get(re) {
            return Ok(r.clone());
        }
        let compiled = posix_re::compile(re, Dialect::Extended, false)
            .map_err(|e| format!("regex /{re}/: {e}"))?;
        self.regexes.insert(re.to_owned(), compiled.clone());
        Ok(compiled)
    }

    fn set_record(&mut self, text: String) {
        self.record = text;
        self.fields_valid = false;
    }

    fn split_fields(&mut self) -> R<()> {
        if self.fields_valid {
            return Ok(());
        }
        let fs = self.var("FS");
        let record = self.record.clone();
        self.fields = self.split_with(&record, &fs)?;
        self.vars
            .insert("NF".into(), Value::Num(self.fields.len() as f64));
        self.fields_valid = true;
        Ok(())
    }

    fn split_with(&mut self, text: &str, fs: &str) -> R<Vec<String>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        Ok(if fs == " " {
            text.split([' ', '\t', '\n'])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        } else if fs.chars().count() == 1 && fs != "\\" {
            text.split(fs).map(str::to_owned).collect()
        } else {
            let re = self.regex(fs)?;
            let mut out = Vec::new();
            let mut last = 0;
            for m in re.find_iter(text.as_bytes()) {
                if m.end() == m.start() {
                    continue;
                }
                out.push(text[last..m.start()].to_owned());
                last = m.end();
            }
            out.push(text[last..].to_owned());
            out
        })
    }

    fn rebuild_record(&mut self) {
        let ofs = self.var("OFS");
        self.record = self.fields.join(&ofs);
    }

    fn get_field(&mut self, i: usize) -> R<Value> {
        if i == 0 {
            return Ok(Value::StrNum(self.record.clone()));
        }
        self.split_fields()?;
        Ok(self
            .fields
            .get(i - 1)
            .map_or(Value::Uninit, |f| Value::StrNum(f.clone())))
    }

    fn set_field(&mut self, i: usize, v: String) -> R<()> {
        if i == 0 {
            self.set_record(v);
            return Ok(());
        }
        self.split_fields()?;
        if self.fields.len() < i {
            self.fields.resize(i, String::new());
            self.vars.insert("NF".into(), Value::Num(i as f64));
        }
        self.fields[i - 1] = v;
        self.rebuild_record();
        Ok(())
    }

    fn field_index(&mut self, e: &Expr) -> R<usize> {
        let n = self.eval(e)?.num();
        if n < 0.0 {
            return Err(format!("trying to access out of range field {}", n as i64));
        }
        Ok(n as usize)
    }

    fn subscript(&mut self, subs: &[Expr]) -> R<String> {
        let sep = self.var("SUBSEP");
        let conv = self.convfmt();
        let mut parts = Vec::new();
        for s in subs {
            parts.push(self.eval(s)?.string(&conv));
        }
        Ok(parts.join(&sep))
    }

    fn assign(&mut self, target: &Expr, v: Value) -> R<Value> {
        match target {
            Expr::Var(name) => {
                if self.arrays.contains_key(name) {
                    return Err(format!("can't use array {name} in scalar context"));
                }
                if name == "NF" {
                    self.split_fields()?;
                    let n = v.num().max(0.0) as usize;
                    self.fields.resize(n, String::new());
                    self.rebuild_record();
                }
                let stored = match v {
                    Value::Uninit => Value::Str(String::new()),
                    v => v,
                };
                self.vars.insert(name.clone(), stored.clone());
                Ok(stored)
            }
            Expr::Index(name, subs) => {
                let key = self.subscript(subs)?;
                self.arrays
                    .entry(name.clone())
                    .or_default()
                    .insert(key, v.clone());
                Ok(v)
            }
            Expr::Field(e) => {
                let i = self.field_index(e)?;
                let conv = self.convfmt();
                self.set_field(i, v.string(&conv))?;
                Ok(Value::StrNum(v.string(&conv)))
            }
            _ => Err("assignment to a non-variable".into()),
        }
    }

    fn compare(&self, a: &Value, b: &Value) -> std::cmp::Ordering {
        match (a.numeric_for_compare(), b.numeric_for_compare()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            _ => {
                let conv = self.convfmt();
                a.string(&conv).cmp(&b.string(&conv))
            }
        }
    }

    fn matches(&mut self, subject: &Value, re: &Expr) -> R<bool> {
        let pattern = match re {
            Expr::Regex(r) => r.clone(),
            other => {
                let conv = self.convfmt();
                self.eval(other)?.string(&conv)
            }
        };
        let conv = self.convfmt();
        let text = subject.string(&conv);
        Ok(self.regex(&pattern)?.is_match(text.as_bytes()))
    }

    fn eval(&mut self, e: &Expr) -> R<Value> {
        Ok(match e {
            Expr::Num(n) => Value::Num(*n),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Regex(r) => {
                let record = self.record.clone();
                Value::Num(f64::from(u8::from(
                    self.regex(r)?.is_match(record.as_bytes()),
                )))
            }
            Expr::Field(i) => {
                let i = self.field_index(i)?;
                self.get_field(i)?
            }
            Expr::Var(name) => {
                if name == "NF" {
                    self.split_fields()?;
                }
                self.vars.get(name).cloned().unwrap_or(Value::Uninit)
            }
            Expr::Index(name, subs) => {
                let key = self.subscript(subs)?;
                self.arrays
                    .entry(name.clone())
                    .or_default()
                    .entry(key)
                    .or_insert(Value::Uninit)
                    .clone()
            }
            Expr::Assign(target, op, rhs) => {
                let r = self.eval(rhs)?;
                let v = match op {
                    None => r,
                    Some(op) => {
                        let l = self.eval(target)?.num();
                        Value::Num(arith(op, l, r.num())?)
                    }
                };
                self.assign(target, v)?
            }
            Expr::Cond(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::And(a, b) => Value::Num(f64::from(u8::from(
                self.eval(a)?.truthy() && self.eval(b)?.truthy(),
            ))),
            Expr::Or(a, b) => Value::Num(f64::from(u8::from(
                self.eval(a)?.truthy() || self.eval(b)?.truthy(),
            ))),
            Expr::Not(a) => Value::Num(f64::from(u8::from(!self.eval(a)?.truthy()))),
            Expr::Neg(a) => Value::Num(-self.eval(a)?.num()),
            Expr::Pos(a) => Value::Num(self.eval(a)?.num()),
            Expr::Binary(op, a, b) => {
                let x = self.eval(a)?;
                let y = self.eval(b)?;
                match *op {
                    "<" | "<=" | "==" | "!=" | ">" | ">=" => {
                        use std::cmp::Ordering::*;
                        let ord = self.compare(&x, &y);
                        let t = match *op {
                            "<" => ord == Less,
                            "<=" => ord != Greater,
                            "==" => ord == Equal,
                            "!=" => ord != Equal,
                            ">" => ord == Greater,
                            _ => ord != Less,
                        };
                        Value::Num(f64::from(u8::from(t)))
                    }
                    op => Value::Num(arith(op, x.num(), y.num())?),
                }
            }
            Expr::Concat(a, b) => {
                let conv = self.convfmt();
                let mut s = self.eval(a)?.string(&conv);
                s.push_str(&self.eval(b)?.string(&conv));
                Value::Str(s)
            }
            Expr::Match(negate, subject, re) => {
                let v = self.eval(subject)?;
                Value::Num(f64::from(u8::from(self.matches(&v, re)? != *negate)))
            }
            Expr::In(subs, arr) => {
                let key = self.subscript(subs)?;
                Value::Num(f64::from(u8::from(
                    self.arrays.get(arr).is_some_and(|a| a.contains_key(&key)),
                )))
            }
            Expr::Incr { pre, delta, target } => {
                let old = self.eval(target)?.num();
                self.assign(target, Value::Num(old + delta))?;
                Value::Num(if *pre { old + delta } else { old })
            }
            Expr::Call(name, args) => self.call(name, args)?,
            Expr::Getline(target, source) => self.getline(target.as_deref(), source)?,
            Expr::Group(list) => {
                // `(a, b)` outside print/in: awk evaluates to the subscript string.
                Value::Str(self.subscript(list)?)
            }
        })
    }

    fn call(&mut self, name: &str, args: &[Expr]) -> R<Value> {
        let conv = self.convfmt();
        let arg_str = |me: &mut Awk, i: usize| -> R<String> {
            match args.get(i) {
                Some(e) => Ok(me.eval(e)?.string(&conv)),
                None => Ok(String::new()),
            }
        };
        let arg_num = |me: &mut Awk, i: usize| -> R<f64> {
            match args.get(i) {
                Some(e) => Ok(me.eval(e)?.num()),
                None => Ok(0.0),
            }
        };
        Ok(match name {
            "length" => match args.first() {
                None => Value::Num(self.record.chars().count() as f64),
                Some(Expr::Var(v)) if self.arrays.contains_key(v) => {
                    Value::Num(self.arrays[v].len() as f64)
                }
                Some(_) => Value::Num(arg_str(self, 0)?.chars().count() as f64),
            },
            "substr" => {
                let s: Vec<char> = arg_str(self, 0)?.chars().collect();
                let m = arg_num(self, 1)?;
                let n = if args.len() > 2 {
                    arg_num(self, 2)?
                } else {
                    f64::INFINITY
                };
                // POSIX: characters from position round(m) for round(n) characters, 1-based.
                let start = m.round();
                let end = if n.is_infinite() {
                    f64::INFINITY
                } else {
                    start + n.round()
                };
                let lo = start.max(1.0) as usize;
                let hi = end.min(s.len() as f64 + 1.0);
                let text: String = if hi <= lo as f64 {
                    String::new()
                } else {
                    s[lo - 1..hi as usize - 1].iter().collect()
                };
                Value::Str(text)
            }
            "index" => {
                let s = arg_str(self, 0)?;
                let t = arg_str(self, 1)?;
                Value::Num(s.find(&t).map_or(0, |b| s[..b].chars().count() + 1) as f64)
            }
            "split" => {
                let s = arg_str(self, 0)?;
                let Some(Expr::Var(arr)) = args.get(1) else {
                    return Err("split: second argument must be an array".into());
                };
                let fs = match args.get(2) {
                    Some(Expr::Regex(r)) => r.clone(),
                    Some(_) => arg_str(self, 2)?,
                    None => self.var("FS"),
                };
                let parts = self.split_with(&s, &fs)?;
                let map: BTreeMap<String, Value> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ((i + 1).to_string(), Value::StrNum(p.clone())))
                    .collect();
                self.arrays.insert(arr.clone(), map);
                Value::Num(parts.len() as f64)
            }
            "sub" | "gsub" => {
                let re = match args.first() {
                    Some(Expr::Regex(r)) => r.clone(),
                    Some(_) => arg_str(self, 0)?,
                    None => return Err(format!("{name}: missing regex")),
                };
                let repl = arg_str(self, 1)?;
                let target = args
                    .get(2)
                    .cloned()
                    .unwrap_or(Expr::Field(Box::new(Expr::Num(0.0))));
                let text = self.eval(&target)?.string(&conv);
                let regex = self.regex(&re)?;
                let (out, n) = substitute(&regex, &text, &repl, name == "gsub");
                if n > 0 {
                    self.assign(&target, Value::Str(out))?;
                }
                Value::Num(n as f64)
            }
            "match" => {
                let s = arg_str(self, 0)?;
                let re = match args.get(1) {
                    Some(Expr::Regex(r)) => r.clone(),
                    _ => arg_str(self, 1)?,
                };
                let regex = self.regex(&re)?;
                let (start, len) = match regex.find(s.as_bytes()) {
                    Some(m) => (
                        s[..m.start()].chars().count() as f64 + 1.0,
                        s[m.start()..m.end()].chars().count() as f64,
                    ),
                    None => (0.0, -1.0),
                };
                self.vars.insert("RSTART".into(), Value::Num(start));
                self.vars.insert("RLENGTH".into(), Value::Num(len));
                Value::Num(start)
            }
            "sprintf" => {
                let fmt = arg_str(self, 0)?;
                let mut vals = Vec::new();
                for a in args.iter().skip(1) {
                    vals.push(self.eval(a)?);
                }
                Value::Str(sprintf(&fmt, &vals, &conv))
            }
            "tolower" => Value::Str(arg_str(self, 0)?.to_lowercase()),
            "toupper" => Value::Str(arg_str(self, 0)?.to_uppercase()),
            "int" => Value::Num(arg_num(self, 0)?.trunc()),
            "sqrt" => Value::Num(arg_num(self, 0)?.sqrt()),
            "exp" => Value::Num(arg_num(self, 0)?.exp()),
            "log" => Value::Num(arg_num(self, 0)?.ln()),
            "sin" => Value::Num(arg_num(self, 0)?.sin()),
            "cos" => Value::Num(arg_num(self, 0)?.cos()),
            "atan2" => {
                let y = arg_num(self, 0)?;
                Value::Num(y.atan2(arg_num(self, 1)?))
            }
            "rand" => Value::Num(0.237_788_581_987_548_47),
            "srand" => Value::Num(0.0),
            "system" => {
                let cmd = arg_str(self, 0)?;
                self.flush_all();
                let status = crate::sys::run(&crate::sys::Command::new(vec![
                    "sh".into(),
                    "-c".into(),
                    cmd,
                ]))
                .unwrap_or(127);
                Value::Num(f64::from(status))
            }
            "close" => {
                let f = arg_str(self, 0)?;
                match self.outputs.remove(&f) {
                    Some(mut w) => Value::Num(if w.flush().is_ok() { 0.0 } else { -1.0 }),
                    None => Value::Num(self.streams.close(&f).map_or(-1.0, f64::from)),
                }
            }
            "fflush" => {
                self.flush_all();
                Value::Num(0.0)
            }
            other => return Err(format!("function {other} is not supported")),
        })
    }

    fn flush_all(&mut self) {
        let _ = self.stdout.flush();
        for w in self.outputs.values_mut() {
            let _ = w.flush();
        }
    }

    fn write_out(&mut self, dest: &Option<(&'static str, Expr)>, text: &str) -> R<()> {
        let io_err = |e: io::Error| describe(&e);
        match dest {
            None => self.stdout.write_all(text.as_bytes()).map_err(io_err),
            Some((op, target)) => {
                let conv = self.convfmt();
                let name = self.eval(target)?.string(&conv);
                if *op == "|" {
                    return Err("output pipes are not supported by kiln's awk".into());
                }
                if name == "/dev/stdout" || name == "-" {
                    return self.stdout.write_all(text.as_bytes()).map_err(io_err);
                }
                if name == "/dev/stderr" {
                    self.stdout.flush().map_err(io_err)?;
                    return io::stderr().write_all(text.as_bytes()).map_err(io_err);
                }
                if !self.outputs.contains_key(&name) {
                    let file = if *op == ">>" {
                        fs::OpenOptions::new().append(true).create(true).open(&name)
                    } else {
                        fs::File::create(&name)
                    }
                    .map_err(|e| format!("can't redirect to `{name}': {}", describe(&e)))?;
                    self.outputs
                        .insert(name.clone(), Box::new(io::BufWriter::new(file)));
                }
                match self.outputs.get_mut(&name) {
                    Some(w) => w.write_all(text.as_bytes()).map_err(io_err),
                    None => Ok(()),
                }
            }
        }
    }

    fn exec_block(&mut self, stmts: &[Stmt]) -> R<Flow> {
        for s in stmts {
            match self.exec(s)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn exec(&mut self, s: &Stmt) -> R<Flow> {
        match s {
            Stmt::Expr(e) => {
                self.eval(e)?;
            }
            Stmt::Print(args, dest) => {
                let conv = self.var("OFMT");
                let mut parts = Vec::new();
                if args.is_empty() {
                    parts.push(self.record.clone());
                }
                for a in args {
                    let v = self.eval(a)?;
                    parts.push(match v {
                        Value::Num(n) => num_to_str(n, &conv),
                        other => other.string(&conv),
                    });
                }
                let mut line = parts.join(&self.var("OFS"));
                line.push_str(&self.var("ORS"));
                self.write_out(dest, &line)?;
            }
            Stmt::Printf(args, dest) => {
                let Some(fmt) = args.first() else {
                    return Err("printf: no format".into());
                };
                let conv = self.convfmt();
                let fmt = self.eval(fmt)?.string(&conv);
                let mut vals = Vec::new();
                for a in &args[1..] {
                    vals.push(self.eval(a)?);
                }
                let text = sprintf(&fmt, &vals, &conv);
                self.write_out(dest, &text)?;
            }
            Stmt::If(c, then, other) => {
                if self.eval(c)?.truthy() {
                    return self.exec(then);
                } else if let Some(o) = other {
                    return self.exec(o);
                }
            }
            Stmt::While(c, body) => {
                while self.eval(c)?.truthy() {
                    match self.exec(body)? {
                        Flow::Break => break,
                        Flow::Continue | Flow::Normal => {}
                        other => return Ok(other),
                    }
                }
            }
            Stmt::Do(body, c) => loop {
                match self.exec(body)? {
                    Flow::Break => break,
                    Flow::Continue | Flow::Normal => {}
                    other => return Ok(other),
                }
                if !self.eval(c)?.truthy() {
                    break;
                }
            },
            Stmt::For(init, cond, step, body) => {
                if let Some(i) = init {
                    self.exec(i)?;
                }
                loop {
                    if let Some(c) = cond
                        && !self.eval(c)?.truthy()
                    {
                        break;
                    }
                    match self.exec(body)? {
                        Flow::Break => break,
                        Flow::Continue | Flow::Normal => {}
                        other => return Ok(other),
                    }
                    if let Some(s) = step {
                        self.exec(s)?;
                    }
                }
            }
            Stmt::ForIn(var, arr, body) => {
                let keys: Vec<String> = self
                    .arrays
                    .get(arr)
                    .map(|a| a.keys().cloned().collect())
                    .unwrap_or_default();
                for k in keys {
                    self.vars.insert(var.clone(), Value::StrNum(k));
                    match self.exec(body)? {
                        Flow::Break => break,
                        Flow::Continue | Flow::Normal => {}
                        other => return Ok(other),
                    }
                }
            }
            Stmt::Block(b) => return self.exec_block(b),
            Stmt::Next => return Ok(Flow::Next),
            Stmt::Exit(code) => {
                if let Some(c) = code {
                    self.exit_code = self.eval(c)?.num() as i32;
                }
                return Ok(Flow::Exit);
            }
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Continue => return Ok(Flow::Continue),
            Stmt::Delete(arr, subs) => match subs {
                Some(s) => {
                    let key = self.subscript(s)?;
                    if let Some(a) = self.arrays.get_mut(arr) {
                        a.remove(&key);
                    }
                }
                None => {
                    self.arrays.remove(arr);
                }
            },
        }
        Ok(Flow::Normal)
    }
}

fn arith(op: &str, a: f64, b: f64) -> R<f64> {
    Ok(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => {
            if b == 0.0 {
                return Err("division by zero".into());
            }
            a / b
        }
        "%" => {
            if b == 0.0 {
                return Err("division by zero in %".into());
            }
            a % b
        }
        _ => a.powf(b),
    })
}

/// sub/gsub: `&` is the match, `\&` a literal ampersand.
fn substitute(re: &Regex, text: &str, repl: &str, global: bool) -> (String, usize) {
    let mut out = String::new();
    let mut last = 0;
    let mut count = 0;
    let mut pos = 0;
    let bytes = text.as_bytes();
    while pos <= bytes.len() {
        let Some(m) = re.find_at(bytes, pos) else {
            break;
        };
        out.push_str(&text[last..m.start()]);
        let matched = &text[m.start()..m.end()];
        let mut chars = repl.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'&') => {
                    chars.next();
                    out.push('&');
                }
                '\\' if chars.peek() == Some(&'\\') => {
                    chars.next();
                    out.push('\\');
                }
                '&' => out.push_str(matched),
                c => out.push(c),
            }
        }
        count += 1;
        last = m.end();
        if m.end() == m.start() {
            if let Some(c) = text[m.end()..].chars().next() {
                out.push(c);
                last = m.end() + c.len_utf8();
            }
            pos = last.max(m.end() + 1);
        } else {
            pos = m.end();
        }
        if !global {
            break;
        }
    }
    out.push_str(&text[last.min(text.len())..]);
    (out, count)
}

/// printf-style formatting with awk's conversions.
fn sprintf(fmt: &str, vals: &[Value], convfmt: &str) -> String {
    let mut out = String::new();
    let mut args = vals.iter();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.get(i).filter(|f| "-+ #0".contains(**f)) {
            flags.push(f);
            i += 1;
        }
        let mut width: Option<usize> = None;
        if chars.get(i) == Some(&'*') {
            let w = args.next().map_or(0.0, Value::num);
            if w < 0.0 {
                flags.push('-');
            }
            width = Some(w.abs() as usize);
            i += 1;
        } else {
            let start = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            if i > start {
                width = chars[start..i].iter().collect::<String>().parse().ok();
            }
        }
        let mut precision: Option<usize> = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            if chars.get(i) == Some(&'*') {
                precision = Some(args.next().map_or(0.0, Value::num).max(0.0) as usize);
                i += 1;
            } else {
                let start = i;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                precision = Some(
                    chars[start..i]
                        .iter()
                        .collect::<String>()
                        .parse()
                        .unwrap_or(0),
                );
            }
        }
        let Some(&conv) = chars.get(i) else {
            out.push('%');
            out.push_str(&flags);
            break;
        };
        i += 1;
        let arg = args.next().cloned().unwrap_or(Value::Uninit);
        let left = flags.contains('-');
        let zero = flags.contains('0') && !left;
        let sign = |n: f64, body: String| -> String {
            if n < 0.0 || body.starts_with('-') {
                body
            } else if flags.contains('+') {
                format!("+{body}")
            } else if flags.contains(' ') {
                format!(" {body}")
            } else {
                body
            }
        };
        let body = match conv {
            'd' | 'i' => {
                let n = arg.num().trunc();
                let mut digits = format!("{}", (n.abs()) as u64);
                if let Some(p) = precision
                    && digits.len() < p
                {
                    digits = format!("{}{digits}", "0".repeat(p - digits.len()));
                }
                sign(
                    n,
                    if n < 0.0 {
                        format!("-{digits}")
                    } else {
                        digits
                    },
                )
            }
            'o' => format!("{:o}", arg.num() as i64 as u64),
            'x' => format!("{:x}", arg.num() as i64 as u64),
            'X' => format!("{:X}", arg.num() as i64 as u64),
            'u' => format!("{}", arg.num() as i64 as u64),
            'c' => match arg {
                Value::Num(n) => char::from_u32(n as u32)
                    .map(String::from)
                    .unwrap_or_default(),
                other => other
                    .string(convfmt)
                    .chars()
                    .next()
                    .map(String::from)
                    .unwrap_or_default(),
            },
            's' => {
                let s = arg.string(convfmt);
                match precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            'f' | 'F' => {
                let n = arg.num();
                sign(n, format!("{:.*}", precision.unwrap_or(6), n))
            }
            'e' | 'E' => {
                let n = arg.num();
                let s = fmt_e(n, precision.unwrap_or(6));
                sign(n, if conv == 'E' { s.to_uppercase() } else { s })
            }
            'g' | 'G' => {
                let n = arg.num();
                let s = fmt_g(n, precision.unwrap_or(6), flags.contains('#'));
                sign(n, if conv == 'G' { s.to_uppercase() } else { s })
            }
            other => {
                out.push('%');
                out.push(other);
                continue;
            }
        };
        let w = width.unwrap_or(0);
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(w - len));
        } else if zero && !matches!(conv, 's' | 'c') {
            let (sign_part, digits) = if body.starts_with(['-', '+', ' ']) {
                body.split_at(1)
            } else {
                ("", body.as_str())
            };
            out.push_str(sign_part);
            out.push_str(&"0".repeat(w - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(w - len));
            out.push_str(&body);
        }
    }
    out
}

/// C's `%e`: mantissa with `prec` decimals and a two-digit signed exponent.
fn fmt_e(n: f64, prec: usize) -> String {
    let s = format!("{:.*e}", prec, n);
    match s.split_once('e') {
        Some((m, e)) => {
            let exp: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
        }
        None => s,
    }
}

/// C's `%g`: `%e` or `%f` by exponent, trailing zeros removed unless `#`.
fn fmt_g(n: f64, prec: usize, alt: bool) -> String {
    if n == 0.0 {
        return "0".into();
    }
    if !n.is_finite() {
        return if n.is_nan() {
            "nan".into()
        } else if n > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let p = prec.max(1);
    let exp = format!("{:.*e}", p - 1, n)
        .split_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(0);
    let s = if exp < -4 || exp >= p as i32 {
        fmt_e(n, p - 1)
    } else {
        format!("{:.*}", (p as i32 - 1 - exp).max(0) as usize, n)
    };
    if alt {
        return s;
    }
    let (mantissa, exponent) = match s.find('e') {
        Some(pos) => (s[..pos].to_owned(), s[pos..].to_owned()),
        None => (s.clone(), String::new()),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        mantissa
    };
    format!("{mantissa}{exponent}")
}

/// Backslash escapes in -v values and `var=value` operands.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('/') => out.push('/'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn is_assignment(arg: &str) -> Option<(&str, &str)> {
    let (name, value) = arg.split_once('=')?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((name, value))
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let mut i = 0;
    let mut fs: Option<String> = None;
    let mut assigns: Vec<(String, String)> = Vec::new();
    let mut program: Option<String> = None;
    while i < args.len() {
        let a = &args[i];
        let value_of = |flag: &str, i: &mut usize| -> Option<String> {
            if a.len() > flag.len() {
                Some(a[flag.len()..].to_owned())
            } else {
                *i += 1;
                args.get(*i).cloned()
            }
        };
        if a == "--" {
            i += 1;
            break;
        } else if a.starts_with("-F") {
            match value_of("-F", &mut i) {
                Some(v) => fs = Some(if v == "t" { "\t".into() } else { unescape(&v) }),
                None => return util::usage_error(name, "option requires an argument -- 'F'"),
            }
        } else if a.starts_with("-v") {
            match value_of("-v", &mut i).as_deref().and_then(is_assignment) {
                Some((k, v)) => assigns.push((k.to_owned(), unescape(v))),
                None => return util::usage_error(name, "-v needs var=value"),
            }
        } else if a.starts_with("-f") {
            match value_of("-f", &mut i) {
                Some(file) => match read_source(&file) {
                    Ok(text) => program = Some(program.unwrap_or_default() + &text + "\n"),
                    Err(e) => {
                        warn(
                            name,
                            format!("can't open source file `{file}': {}", describe(&e)),
                        );
                        return 2;
                    }
                },
                None => return util::usage_error(name, "option requires an argument -- 'f'"),
            }
        } else if a.starts_with('-') && a.len() > 1 {
            return util::usage_error(name, format!("unknown option {a}"));
        } else {
            break;
        }
        i += 1;
    }
    let program = match program {
        Some(p) => p,
        None => match args.get(i) {
            Some(p) => {
                i += 1;
                p.clone()
            }
            None => return util::usage_error(name, "no program given"),
        },
    };
    let operands = &args[i..];
    let rules = match lex::lex(&program).and_then(|toks| parse::Parser::new(toks).program()) {
        Ok(r) => r,
        Err(msg) => {
            warn(name, format!("cmd. line:1: {msg}"));
            return 2;
        }
    };
    let mut awk = Awk {
        vars: HashMap::new(),
        arrays: HashMap::new(),
        record: String::new(),
        fields: Vec::new(),
        fields_valid: true,
        regexes: HashMap::new(),
        outputs: HashMap::new(),
        stdout: util::stdout(),
        exit_code: 0,
        ranges: vec![false; rules.len()],
        main: input::MainInput::new(operands),
        streams: input::Streams::default(),
    };
    for (k, v) in [
        ("FS", " "),
        ("OFS", " "),
        ("ORS", "\n"),
        ("RS", "\n"),
        ("SUBSEP", "\x1c"),
        ("CONVFMT", "%.6g"),
        ("OFMT", "%.6g"),
    ] {
        awk.vars.insert(k.into(), Value::Str(v.into()));
    }
    for k in ["NR", "NF", "FNR", "RSTART"] {
        awk.vars.insert(k.into(), Value::Num(0.0));
    }
    awk.vars.insert("RLENGTH".into(), Value::Num(-1.0));
    awk.arrays.insert(
        "ENVIRON".into(),
        std::env::vars()
            .map(|(k, v)| (k, Value::StrNum(v)))
            .collect(),
    );
    let mut argv: BTreeMap<String, Value> = BTreeMap::new();
    argv.insert("0".into(), Value::Str("awk".into()));
    for (n, op) in operands.iter().enumerate() {
        argv.insert((n + 1).to_string(), Value::StrNum(op.clone()));
    }
    awk.arrays.insert("ARGV".into(), argv);
    awk.vars
        .insert("ARGC".into(), Value::Num(operands.len() as f64 + 1.0));
    if let Some(f) = fs {
        awk.vars.insert("FS".into(), Value::Str(f));
    }
    for (k, v) in assigns {
        awk.vars.insert(k, Value::StrNum(v));
    }
    let result = run(&mut awk, &rules);
    awk.flush_all();
    awk.streams.close_all();
    match result {
        Ok(()) => awk.exit_code,
        Err(msg) => {
            warn(name, msg);
            2
        }
    }
}

fn run(awk: &mut Awk, rules: &[Rule]) -> R<()> {
    for rule in rules.iter().filter(|r| matches!(r.pattern, Pattern::Begin)) {
        if let Some(action) = &rule.action
            && let Flow::Exit = awk.exec_block(action)?
        {
            return run_end(awk, rules);
        }
    }
    let has_main = rules.iter().any(|r| !matches!(r.pattern, Pattern::Begin));
    if !has_main {
        return Ok(());
    }
    while let Some(record) = awk.next_main_record()? {
        awk.set_record(record);
        if let Flow::Exit = run_rules(awk, rules)? {
            break;
        }
    }
    run_end(awk, rules)
}

/// The text of a `-f` program file; `-` is standard input.
fn read_source(file: &str) -> io::Result<String> {
    if file == "-" {
        return io::read_to_string(io::stdin());
    }
    fs::read_to_string(file)
}

fn run_rules(awk: &mut Awk, rules: &[Rule]) -> R<Flow> {
    for (index, rule) in rules.iter().enumerate() {
        let selected = match &rule.pattern {
            Pattern::Begin | Pattern::End => continue,
            Pattern::All => true,
            Pattern::Expr(e) => awk.eval(e)?.truthy(),
            Pattern::Range(start, end) => {
                if awk.ranges[index] {
                    if awk.eval(end)?.truthy() {
                        awk.ranges[index] = false;
                    }
                    true
                } else if awk.eval(start)?.truthy() {
                    awk.ranges[index] = !awk.eval(end)?.truthy();
                    true
                } else {
                    false
                }
            }
        };
        if !selected {
            continue;
        }
        let flow = match &rule.action {
            Some(action) => awk.exec_block(action)?,
            None => awk.exec(&Stmt::Print(Vec::new(), None))?,
        };
        match flow {
            Flow::Next => return Ok(Flow::Normal),
            Flow::Exit => return Ok(Flow::Exit),
            _ => {}
        }
    }
    Ok(Flow::Normal)
}

fn run_end(awk: &mut Awk, rules: &[Rule]) -> R<()> {
    for rule in rules.iter().filter(|r| matches!(r.pattern, Pattern::End)) {
        if let Some(action) = &rule.action
            && let Flow::Exit = awk.exec_block(action)?
        {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(num_to_str(3.0, "%.6g"), "3");
        assert_eq!(num_to_str(0.1 + 0.2, "%.6g"), "0.3");
        assert_eq!(fmt_g(1234567.0, 6, false), "1.23457e+06");
        assert_eq!(fmt_g(0.0001, 6, false), "0.0001");
        assert_eq!(fmt_g(0.00001, 6, false), "1e-05");
        assert_eq!(
            sprintf(
                "%5.2f|%-4d|%04d|%x|%s|%c|%%",
                &[
                    Value::Num(2.5183),
                    Value::Num(7.0),
                    Value::Num(-5.0),
                    Value::Num(255.0),
                    Value::Str("hi".into()),
                    Value::Num(65.0)
                ],
                "%.6g"
            ),
            " 2.52|7   |-005|ff|hi|A|%"
        );
        assert_eq!(to_num(" 12abc"), 12.0);
        assert_eq!(to_num("1e3x"), 1000.0);
        assert_eq!(to_num(".5"), 0.5);
        assert_eq!(to_num("abc"), 0.0);
    }

    #[test]
    fn substitution() {
        let re = posix_re::compile("o", Dialect::Extended, false).unwrap();
        assert_eq!(substitute(&re, "foo", "[&]", true), ("f[o][o]".into(), 2));
        assert_eq!(substitute(&re, "foo", "\\&", false), ("f&o".into(), 1));
        let empty = posix_re::compile("x*", Dialect::Extended, false).unwrap();
        assert_eq!(substitute(&empty, "ab", "-", true), ("-a-b-".into(), 3));
    }

    /// The parse of a one-expression program `{ <expr> }`, debug-printed.
    fn parsed(expr: &str) -> String {
        let src = format!("{{ {expr} }}");
        let toks = lex::lex(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let rules = parse::Parser::new(toks).program();
        format!("{:?}", rules.unwrap_or_else(|e| panic!("{src}: {e}")))
    }

    #[test]
    fn getline_parses_in_every_form() {
        assert!(parsed("getline").contains("Getline(None, Main)"));
        assert!(parsed("getline line").contains("Getline(Some(Var(\"line\")), Main)"));
        assert!(parsed("getline a[1]").contains("Getline(Some(Index(\"a\""));
        assert!(parsed("getline $2").contains("Getline(Some(Field("));
        let file = parsed("while ((getline line < \"/f\") > 0) n++");
        assert!(file.contains("File(Str(\"/f\"))"), "{file}");
        // The file is one operand: `getline < dir "/f"` reads `dir`.
        let dir = parsed("x = getline < d \"/f\"");
        assert!(
            dir.contains("Concat(Getline(None, File(Var(\"d\")))"),
            "{dir}"
        );
        // A command is a whole concatenation, and the result compares.
        let cmd = parsed("while (\"echo \" x | getline v > 0) n++");
        assert!(
            cmd.contains("Binary(\">\", Getline(Some(Var(\"v\")), Command(Concat("),
            "{cmd}"
        );
        assert!(parsed("print \"a\" | \"cat\"").contains("Print("));
    }

    #[test]
    fn parses_common_programs() {
        for p in [
            "{print $1}",
            "BEGIN { FS=\":\" } $3 >= 1000 { print $1 > \"/dev/stderr\" }",
            "/^#/ {next} NF { n++ } END { printf \"%d\\n\", n }",
            "{ for (i = NF; i > 0; i--) printf \"%s%s\", $i, (i > 1 ? OFS : ORS) }",
            "{ a[$1] += $2 } END { for (k in a) print k, a[k] }",
            "NR==1, /end/ { if ($0 ~ /x/) print; else print \"no\" }",
            "{ $2 = \"\"; print }",
            "length > 3",
            "{ print length($0), substr($0, 2, 3), index($0, \"b\"), toupper($1) }",
            "{ gsub(/a/, \"b\"); sub(\"c\", \"d\", $2); n = split($0, parts, \",\") }",
            "BEGIN { while (i < 3) i++; do { j++ } while (j < 2); print i j }",
            "{ print $1, $NF; print $(NF-1) }",
            "!seen[$0]++",
            "BEGIN { x = 2 ^ 3 ^ 2; y = -2 ^ 2; print x, y, 7 % 3, 1e3 }",
        ] {
            let toks = lex::lex(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            parse::Parser::new(toks)
                .program()
                .unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        for bad in ["{print", "function f() {}", "BEGIN", "{ x = }"] {
            let r = lex::lex(bad).and_then(|t| parse::Parser::new(t).program());
            assert!(r.is_err(), "{bad}");
        }
    }
}
