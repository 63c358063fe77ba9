//! awk grammar (POSIX, without user-defined functions).

use super::lex::Tok;

#[derive(Debug, Clone)]
pub enum Expr {
    Num(f64),
    Str(String),
    /// A bare `/re/`: matches against `$0`.
    Regex(String),
    Field(Box<Expr>),
    Var(String),
    Index(String, Vec<Expr>),
    Assign(Box<Expr>, Option<&'static str>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Pos(Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Match(bool, Box<Expr>, Box<Expr>),
    In(Vec<Expr>, String),
    Incr {
        pre: bool,
        delta: f64,
        target: Box<Expr>,
    },
    Call(String, Vec<Expr>),
    /// `(a, b)`: only valid as print arguments or before `in`.
    Group(Vec<Expr>),
    /// `getline [lvalue]`, with where the record comes from.
    Getline(Option<Box<Expr>>, Source),
}

/// Where `getline` reads.
#[derive(Debug, Clone)]
pub enum Source {
    /// The main input (the operands, else stdin): sets NR and FNR.
    Main,
    /// `getline < file`.
    File(Box<Expr>),
    /// `cmd | getline`: sets NR.
    Command(Box<Expr>),
}

#[derive(Debug, Clone)]
pub enum Stmt {
    Expr(Expr),
    Print(Vec<Expr>, Option<(&'static str, Expr)>),
    Printf(Vec<Expr>, Option<(&'static str, Expr)>),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    While(Expr, Box<Stmt>),
    Do(Box<Stmt>, Expr),
    For(
        Option<Box<Stmt>>,
        Option<Expr>,
        Option<Box<Stmt>>,
        Box<Stmt>,
    ),
    ForIn(String, String, Box<Stmt>),
    Block(Vec<Stmt>),
    Next,
    Exit(Option<Expr>),
    Break,
    Continue,
    Delete(String, Option<Vec<Expr>>),
}

#[derive(Debug)]
pub enum Pattern {
    Begin,
    End,
    All,
    Expr(Expr),
    Range(Expr, Expr),
}

#[derive(Debug)]
pub struct Rule {
    pub pattern: Pattern,
    /// `None`: print the record.
    pub action: Option<Vec<Stmt>>,
}

pub struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    no_gt: bool,
    no_in: bool,
}

type R<T> = Result<T, String>;

impl Parser {
    pub fn new(toks: Vec<Tok>) -> Parser {
        Parser {
            toks,
            pos: 0,
            no_gt: false,
            no_in: false,
        }
    }

    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).unwrap_or(&Tok::Eof)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok) -> R<()> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(format!(
                "syntax error: expected {t:?}, found {:?}",
                self.peek()
            ))
        }
    }

    fn skip_newlines(&mut self) {
        while self.eat(&Tok::Newline) {}
    }

    fn skip_terminators(&mut self) {
        while matches!(self.peek(), Tok::Newline | Tok::Semi) {
            self.pos += 1;
        }
    }

    pub fn program(&mut self) -> R<Vec<Rule>> {
        let mut rules = Vec::new();
        self.skip_terminators();
        while *self.peek() != Tok::Eof {
            rules.push(self.rule()?);
            self.skip_terminators();
        }
        Ok(rules)
    }

    fn rule(&mut self) -> R<Rule> {
        let pattern = match self.peek() {
            Tok::Begin => {
                self.pos += 1;
                Pattern::Begin
            }
            Tok::End => {
                self.pos += 1;
                Pattern::End
            }
            Tok::Function => {
                return Err("user-defined functions are not supported by kiln's awk".into());
            }
            Tok::LBrace => Pattern::All,
            _ => {
                let first = self.expr()?;
                if self.eat(&Tok::Comma) {
                    self.skip_newlines();
                    Pattern::Range(first, self.expr()?)
                } else {
                    Pattern::Expr(first)
                }
            }
        };
        let action = if *self.peek() == Tok::LBrace {
            Some(self.block()?)
        } else if matches!(pattern, Pattern::Begin | Pattern::End) {
            return Err("BEGIN and END need an action".into());
        } else {
            None
        };
        Ok(Rule { pattern, action })
    }

    fn block(&mut self) -> R<Vec<Stmt>> {
        self.expect(&Tok::LBrace)?;
        let mut stmts = Vec::new();
        loop {
            self.skip_terminators();
            if self.eat(&Tok::RBrace) {
                return Ok(stmts);
            }
            stmts.push(self.stmt()?);
        }
    }

    fn end_simple(&mut self) -> R<()> {
        match self.peek() {
            Tok::Semi | Tok::Newline => {
                self.pos += 1;
                Ok(())
            }
            Tok::RBrace | Tok::Eof => Ok(()),
            other => Err(format!("syntax error at {other:?}")),
        }
    }

    fn stmt(&mut self) -> R<Stmt> {
        match self.peek().clone() {
            Tok::LBrace => Ok(Stmt::Block(self.block()?)),
            Tok::If => {
                self.pos += 1;
                self.expect(&Tok::LParen)?;
                let cond = self.expr()?;
                self.expect(&Tok::RParen)?;
                self.skip_newlines();
                let then = self.stmt()?;
                let save = self.pos;
                self.skip_terminators();
                if self.eat(&Tok::Else) {
                    self.skip_newlines();
                    Ok(Stmt::If(cond, Box::new(then), Some(Box::new(self.stmt()?))))
                } else {
                    self.pos = save;
                    Ok(Stmt::If(cond, Box::new(then), None))
                }
            }
            Tok::While => {
                self.pos += 1;
                self.expect(&Tok::LParen)?;
                let cond = self.expr()?;
                self.expect(&Tok::RParen)?;
                if self.eat(&Tok::Semi) {
                    return Ok(Stmt::While(cond, Box::new(Stmt::Block(Vec::new()))));
                }
                self.skip_newlines();
                Ok(Stmt::While(cond, Box::new(self.stmt()?)))
            }
            Tok::Do => {
                self.pos += 1;
                self.skip_newlines();
                let body = self.stmt()?;
                self.skip_terminators();
                self.expect(&Tok::While)?;
                self.expect(&Tok::LParen)?;
                let cond = self.expr()?;
                self.expect(&Tok::RParen)?;
                self.end_simple()?;
                Ok(Stmt::Do(Box::new(body), cond))
            }
            Tok::For => {
                self.pos += 1;
                self.expect(&Tok::LParen)?;
                if let (Tok::Name(var), Tok::In, Tok::Name(arr), Tok::RParen) = (
                    self.peek().clone(),
                    self.toks.get(self.pos + 1).cloned().unwrap_or(Tok::Eof),
                    self.toks.get(self.pos + 2).cloned().unwrap_or(Tok::Eof),
                    self.toks.get(self.pos + 3).cloned().unwrap_or(Tok::Eof),
                ) {
                    self.pos += 4;
                    self.skip_newlines();
                    return Ok(Stmt::ForIn(var, arr, Box::new(self.stmt()?)));
                }
                let init = if *self.peek() == Tok::Semi {
                    None
                } else {
                    Some(Box::new(self.simple()?))
                };
                self.expect(&Tok::Semi)?;
                self.skip_newlines();
                let cond = if *self.peek() == Tok::Semi {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect(&Tok::Semi)?;
                self.skip_newlines();
                let step = if *self.peek() == Tok::RParen {
                    None
                } else {
                    Some(Box::new(self.simple()?))
                };
                self.expect(&Tok::RParen)?;
                if self.eat(&Tok::Semi) {
                    return Ok(Stmt::For(
                        init,
                        cond,
                        step,
                        Box::new(Stmt::Block(Vec::new())),
                    ));
                }
                self.skip_newlines();
                Ok(Stmt::For(init, cond, step, Box::new(self.stmt()?)))
            }
            Tok::Semi => {
                self.pos += 1;
                Ok(Stmt::Block(Vec::new()))
            }
            _ => {
                let s = self.simple()?;
                self.end_simple()?;
                Ok(s)
            }
        }
    }

    fn simple(&mut self) -> R<Stmt> {
        match self.peek().clone() {
            Tok::Print | Tok::Printf => {
                let is_printf = *self.peek() == Tok::Printf;
                self.pos += 1;
                let mut args = Vec::new();
                if !matches!(
                    self.peek(),
                    Tok::Semi | Tok::Newline | Tok::RBrace | Tok::Eof | Tok::Op(">" | ">>" | "|")
                ) {
                    let old = self.no_gt;
                    self.no_gt = true;
                    let first = self.expr()?;
                    match first {
                        Expr::Group(list) => args.extend(list),
                        e => args.push(e),
                    }
                    while self.eat(&Tok::Comma) {
                        self.skip_newlines();
                        args.push(self.expr()?);
                    }
                    self.no_gt = old;
                }
                let dest = match self.peek() {
                    Tok::Op(op @ (">" | ">>" | "|")) => {
                        let op: &'static str = op;
                        self.pos += 1;
                        let old = self.no_gt;
                        self.no_gt = true;
                        let target = self.concat()?;
                        self.no_gt = old;
                        Some((op, target))
                    }
                    _ => None,
                };
                Ok(if is_printf {
                    Stmt::Printf(args, dest)
                } else {
                    Stmt::Print(args, dest)
                })
            }
            Tok::Next => {
                self.pos += 1;
                Ok(Stmt::Next)
            }
            Tok::Break => {
                self.pos += 1;
                Ok(Stmt::Break)
            }
            Tok::Continue => {
                self.pos += 1;
                Ok(Stmt::Continue)
            }
            Tok::Exit => {
                self.pos += 1;
                let code = if matches!(
                    self.peek(),
                    Tok::Semi | Tok::Newline | Tok::RBrace | Tok::Eof
                ) {
                    None
                } else {
                    Some(self.expr()?)
                };
                Ok(Stmt::Exit(code))
            }
            Tok::Return => Err("return outside a function".into()),
            Tok::Delete => {
                self.pos += 1;
                let Tok::Name(name) = self.next() else {
                    return Err("delete needs an array".into());
                };
                if self.eat(&Tok::LBracket) {
                    let subs = self.expr_list(&Tok::RBracket)?;
                    Ok(Stmt::Delete(name, Some(subs)))
                } else {
                    Ok(Stmt::Delete(name, None))
                }
            }
            _ => Ok(Stmt::Expr(self.expr()?)),
        }
    }

    fn expr_list(&mut self, close: &Tok) -> R<Vec<Expr>> {
        let mut list = vec![self.expr()?];
        while self.eat(&Tok::Comma) {
            self.skip_newlines();
            list.push(self.expr()?);
        }
        self.expect(close)?;
        Ok(list)
    }

    pub fn expr(&mut self) -> R<Expr> {
        let left = self.ternary()?;
        if let Tok::Op(op @ ("=" | "+=" | "-=" | "*=" | "/=" | "%=" | "^=")) = self.peek().clone()
            && matches!(left, Expr::Var(_) | Expr::Index(..) | Expr::Field(_))
        {
            self.pos += 1;
            self.skip_newlines();
            let right = self.expr()?;
            let op: Option<&'static str> = match op {
                "+=" => Some("+"),
                "-=" => Some("-"),
                "*=" => Some("*"),
                "/=" => Some("/"),
                "%=" => Some("%"),
                "^=" => Some("^"),
                _ => None,
            };
            return Ok(Expr::Assign(Box::new(left), op, Box::new(right)));
        }
        Ok(left)
    }

    fn ternary(&mut self) -> R<Expr> {
        let cond = self.or()?;
        if self.eat(&Tok::Op("?")) {
            self.skip_newlines();
            let a = self.ternary()?;
            self.skip_newlines();
            self.expect(&Tok::Op(":"))?;
            self.skip_newlines();
            let b = self.ternary()?;
            return Ok(Expr::Cond(Box::new(cond), Box::new(a), Box::new(b)));
        }
        Ok(cond)
    }

    fn or(&mut self) -> R<Expr> {
        let mut left = self.and()?;
        while self.eat(&Tok::Op("||")) {
            self.skip_newlines();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> R<Expr> {
        let mut left = self.in_expr()?;
        while self.eat(&Tok::Op("&&")) {
            self.skip_newlines();
            left = Expr::And(Box::new(left), Box::new(self.in_expr()?));
        }
        Ok(left)
    }

    fn in_expr(&mut self) -> R<Expr> {
        let mut left = self.matching()?;
        while !self.no_in && *self.peek() == Tok::In {
            self.pos += 1;
            let Tok::Name(arr) = self.next() else {
                return Err("expected an array after `in'".into());
            };
            let subs = match left {
                Expr::Group(list) => list,
                e => vec![e],
            };
            left = Expr::In(subs, arr);
        }
        Ok(left)
    }

    fn matching(&mut self) -> R<Expr> {
        let mut left = self.compare()?;
        loop {
            let negate = match self.peek() {
                Tok::Op("~") => false,
                Tok::Op("!~") => true,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Match(negate, Box::new(left), Box::new(self.compare()?));
        }
    }

    /// The optional variable, element or field after `getline`.
    fn getline_target(&mut self) -> R<Option<Box<Expr>>> {
        if !matches!(self.peek(), Tok::Name(_) | Tok::Op("$")) {
            return Ok(None);
        }
        Ok(Some(Box::new(self.primary()?)))
    }

    /// `cmd | getline [lvalue]`: the command is a whole concatenation, and the result
    /// can be compared (`"cmd" | getline > 0`), as in other awks.
    fn piped_getline(&mut self) -> R<Expr> {
        let mut left = self.concat()?;
        while *self.peek() == Tok::Op("|") && self.toks.get(self.pos + 1) == Some(&Tok::Getline) {
            self.pos += 2;
            let target = self.getline_target()?;
            left = Expr::Getline(target, Source::Command(Box::new(left)));
        }
        Ok(left)
    }

    fn compare(&mut self) -> R<Expr> {
        let left = self.piped_getline()?;
        let op: &'static str = match self.peek() {
            Tok::Op("<") => "<",
            Tok::Op("<=") => "<=",
            Tok::Op("==") => "==",
            Tok::Op("!=") => "!=",
            Tok::Op(">=") => ">=",
            Tok::Op(">") if !self.no_gt => ">",
            _ => return Ok(left),
        };
        self.pos += 1;
        Ok(Expr::Binary(op, Box::new(left), Box::new(self.concat()?)))
    }

    fn starts_concat_operand(&self) -> bool {
        match self.peek() {
            Tok::Num(_)
            | Tok::Str(_)
            | Tok::Ere(_)
            | Tok::Name(_)
            | Tok::Builtin(_)
            | Tok::LParen => true,
            Tok::Op("$" | "!" | "++" | "--") => true,
            Tok::In => false,
            _ => false,
        }
    }

    fn concat(&mut self) -> R<Expr> {
        let mut left = self.additive()?;
        while self.starts_concat_operand() {
            left = Expr::Concat(Box::new(left), Box::new(self.additive()?));
        }
        Ok(left)
    }

    fn additive(&mut self) -> R<Expr> {
        let mut left = self.mul()?;
        loop {
            let op: &'static str = match self.peek() {
                Tok::Op("+") => "+",
                Tok::Op("-") => "-",
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.mul()?));
        }
    }

    fn mul(&mut self) -> R<Expr> {
        let mut left = self.unary()?;
        loop {
            let op: &'static str = match self.peek() {
                Tok::Op("*") => "*",
                Tok::Op("/") => "/",
                Tok::Op("%") => "%",
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> R<Expr> {
        match self.peek() {
            Tok::Op("!") => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Tok::Op("-") => {
                self.pos += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Tok::Op("+") => {
                self.pos += 1;
                Ok(Expr::Pos(Box::new(self.unary()?)))
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> R<Expr> {
        let base = self.postfix()?;
        if self.eat(&Tok::Op("^")) {
            let exp = match self.peek() {
                Tok::Op("-" | "+" | "!") => self.unary()?,
                _ => self.power()?,
            };
            return Ok(Expr::Binary("^", Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> R<Expr> {
        let e = self.primary()?;
        if matches!(e, Expr::Var(_) | Expr::Index(..) | Expr::Field(_)) {
            let delta = match self.peek() {
                Tok::Op("++") => 1.0,
                Tok::Op("--") => -1.0,
                _ => return Ok(e),
            };
            self.pos += 1;
            return Ok(Expr::Incr {
                pre: false,
                delta,
                target: Box::new(e),
            });
        }
        Ok(e)
    }

    fn primary(&mut self) -> R<Expr> {
        match self.next() {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Ere(r) => Ok(Expr::Regex(r)),
            Tok::Op("$") => {
                let inner = match self.peek() {
                    Tok::Op("++" | "--" | "-" | "+" | "!") => self.unary()?,
                    _ => self.primary()?,
                };
                Ok(Expr::Field(Box::new(inner)))
            }
            Tok::Op(op @ ("++" | "--")) => {
                let target = self.primary()?;
                if !matches!(target, Expr::Var(_) | Expr::Index(..) | Expr::Field(_)) {
                    return Err(format!("{op} needs a variable"));
                }
                Ok(Expr::Incr {
                    pre: true,
                    delta: if op == "++" { 1.0 } else { -1.0 },
                    target: Box::new(target),
                })
            }
            Tok::Op("-") => Ok(Expr::Neg(Box::new(self.unary()?))),
            Tok::Op("!") => Ok(Expr::Not(Box::new(self.unary()?))),
            Tok::LParen => {
                let (old_gt, old_in) = (self.no_gt, self.no_in);
                self.no_gt = false;
                self.no_in = false;
                let first = self.expr()?;
                let result = if *self.peek() == Tok::Comma {
                    let mut list = vec![first];
                    while self.eat(&Tok::Comma) {
                        self.skip_newlines();
                        list.push(self.expr()?);
                    }
                    Expr::Group(list)
                } else {
                    first
                };
                self.no_gt = old_gt;
                self.no_in = old_in;
                self.expect(&Tok::RParen)?;
                Ok(result)
            }
            Tok::Name(name) => {
                if self.eat(&Tok::LBracket) {
                    let subs = self.expr_list(&Tok::RBracket)?;
                    return Ok(Expr::Index(name, subs));
                }
                Ok(Expr::Var(name))
            }
            Tok::Builtin(name) => {
                let mut args = Vec::new();
                if self.eat(&Tok::LParen) {
                    if !self.eat(&Tok::RParen) {
                        let (old_gt, old_in) = (self.no_gt, self.no_in);
                        self.no_gt = false;
                        self.no_in = false;
                        args = self.expr_list(&Tok::RParen)?;
                        self.no_gt = old_gt;
                        self.no_in = old_in;
                    }
                } else if name != "length" {
                    return Err(format!("{name} needs arguments"));
                }
                Ok(Expr::Call(name, args))
            }
            Tok::Getline => {
                let target = self.getline_target()?;
                if !self.eat(&Tok::Op("<")) {
                    return Ok(Expr::Getline(target, Source::Main));
                }
                // As in other awks, the file is one operand: `getline < dir "/f"` is
                // `(getline < dir) "/f"`.
                let file = Box::new(self.primary()?);
                Ok(Expr::Getline(target, Source::File(file)))
            }
            other => Err(format!("syntax error at {other:?}")),
        }
    }
}
