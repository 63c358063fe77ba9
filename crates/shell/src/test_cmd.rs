//! `test` / `[` with dash's behaviour (POSIX argument-count rules, `-a`/`-o`, `!`, `( )`).

use crate::host::FileKind;
use crate::interp::Interp;

/// Runs `test`; returns 0 (true), 1 (false) or 2 (error, message printed).
pub(crate) fn run(sh: &Interp, name: &str, args: &[String]) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = P {
        sh,
        args: &args,
        pos: 0,
    };
    let r = match args.len() {
        0 => Ok(false),
        1 => Ok(!args[0].is_empty()),
        2 if args[0] == "!" => Ok(args[1].is_empty()),
        3 if is_binary(args[1]) => p.binary(args[0], args[1], args[2]),
        3 if args[0] == "!" => {
            p.pos = 1;
            p.expr().map(|b| !b)
        }
        4 if args[0] == "!" => {
            p.pos = 1;
            p.expr().map(|b| !b)
        }
        _ => p.expr(),
    };
    let r = r.and_then(|b| {
        if args.len() > 3 && p.pos < args.len() && !(args.len() == 4 && args[0] == "!") {
            Err(format!("{}: unexpected operator", args[p.pos]))
        } else {
            Ok(b)
        }
    });
    match r {
        Ok(b) => (!b) as i32,
        Err(m) => {
            sh.err(&format!("{name}: {m}"));
            2
        }
    }
}

fn is_binary(op: &str) -> bool {
    matches!(
        op,
        "=" | "=="
            | "!="
            | "<"
            | ">"
            | "-eq"
            | "-ne"
            | "-lt"
            | "-le"
            | "-gt"
            | "-ge"
            | "-nt"
            | "-ot"
            | "-ef"
    )
}

fn is_unary(op: &str) -> bool {
    op.len() == 2 && op.starts_with('-') && "bcdefghLnprsStuwxzGOk".contains(&op[1..])
}

struct P<'a> {
    sh: &'a Interp,
    args: &'a [&'a str],
    pos: usize,
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.args.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<&'a str, String> {
        let a = self
            .args
            .get(self.pos)
            .copied()
            .ok_or("argument expected")?;
        self.pos += 1;
        Ok(a)
    }

    fn expr(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.peek() == Some("-o") {
            self.pos += 1;
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.not()?;
        while self.peek() == Some("-a") {
            self.pos += 1;
            let r = self.not()?;
            v = v && r;
        }
        Ok(v)
    }

    fn not(&mut self) -> Result<bool, String> {
        if self.peek() == Some("!") {
            self.pos += 1;
            return Ok(!self.not()?);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<bool, String> {
        let a = self.next()?;
        if a == "(" {
            let v = self.expr()?;
            if self.next()? != ")" {
                return Err("closing paren expected".into());
            }
            return Ok(v);
        }
        if let Some(op) = self.peek()
            && is_binary(op)
            && self.pos + 1 < self.args.len()
        {
            self.pos += 1;
            let b = self.next()?;
            return self.binary(a, op, b);
        }
        if is_unary(a) && self.pos < self.args.len() {
            let b = self.next()?;
            return Ok(self.unary(a, b));
        }
        Ok(!a.is_empty())
    }

    fn int(&self, s: &str) -> Result<i64, String> {
        let t = s.trim_start();
        t.parse::<i64>().map_err(|_| format!("Illegal number: {s}"))
    }

    fn binary(&self, a: &str, op: &str, b: &str) -> Result<bool, String> {
        Ok(match op {
            "=" | "==" => a == b,
            "!=" => a != b,
            "<" => a < b,
            ">" => a > b,
            "-eq" => self.int(a)? == self.int(b)?,
            "-ne" => self.int(a)? != self.int(b)?,
            "-lt" => self.int(a)? < self.int(b)?,
            "-le" => self.int(a)? <= self.int(b)?,
            "-gt" => self.int(a)? > self.int(b)?,
            "-ge" => self.int(a)? >= self.int(b)?,
            "-nt" | "-ot" => {
                let ma = self.stat(a, true).map(|s| s.mtime);
                let mb = self.stat(b, true).map(|s| s.mtime);
                match (ma, mb, op) {
                    (Some(x), Some(y), "-nt") => x > y,
                    (Some(x), Some(y), _) => x < y,
                    (Some(_), None, "-nt") => true,
                    (None, Some(_), "-ot") => true,
                    _ => false,
                }
            }
            _ => match (self.stat(a, true), self.stat(b, true)) {
                (Some(x), Some(y)) => x.ino == y.ino,
                _ => false,
            },
        })
    }

    fn stat(&self, path: &str, follow: bool) -> Option<crate::host::FileStat> {
        if path.is_empty() {
            return None;
        }
        self.sh.host.stat(&self.sh.abs_path(path), follow).ok()
    }

    fn unary(&self, op: &str, arg: &str) -> bool {
        let kind = |k: FileKind| self.stat(arg, true).is_some_and(|s| s.kind == k);
        match op {
            "-n" => !arg.is_empty(),
            "-z" => arg.is_empty(),
            "-e" => self.stat(arg, true).is_some(),
            "-f" => kind(FileKind::File),
            "-d" => kind(FileKind::Dir),
            "-p" => kind(FileKind::Fifo),
            "-S" => kind(FileKind::Socket),
            "-b" => kind(FileKind::BlockDevice),
            "-c" => kind(FileKind::CharDevice),
            "-h" | "-L" => self
                .stat(arg, false)
                .is_some_and(|s| s.kind == FileKind::Symlink),
            "-s" => self.stat(arg, true).is_some_and(|s| s.size > 0),
            // Build steps run as root: readable and writable whenever it exists.
            "-r" | "-w" => self.stat(arg, true).is_some(),
            "-x" => self
                .stat(arg, true)
                .is_some_and(|s| s.kind == FileKind::Dir || s.mode & 0o111 != 0),
            "-u" => self.stat(arg, true).is_some_and(|s| s.mode & 0o4000 != 0),
            "-g" => self.stat(arg, true).is_some_and(|s| s.mode & 0o2000 != 0),
            "-k" => self.stat(arg, true).is_some_and(|s| s.mode & 0o1000 != 0),
            "-O" | "-G" => self.stat(arg, true).is_some(),
            _ => false,
        }
    }
}
