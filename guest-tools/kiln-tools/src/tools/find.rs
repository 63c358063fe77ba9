//! find [-H|-L|-P] [PATH...] [EXPRESSION]: tests -name -iname -path -ipath -wholename
//! -type -newer -empty -perm -user -group -uid -gid -size -mtime -mmin -links -true -false
//! -executable; actions -print -print0 -printf -exec/-execdir (`;` and `+`) -delete -prune
//! -quit; options -maxdepth -mindepth -depth; operators ! -not -a -and -o -or , ( ).
//! Directory entries are visited in sorted order, so output is deterministic.

use std::fs;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::glob;
use crate::passwd;
use crate::sys::{self, Stat, kind};
use crate::util::{self, describe, warn};
use crate::walk::{join, read_dir_sorted};

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Comma(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    True,
    False,
    Name(String, bool),
    Path(String, bool),
    Type(Vec<u32>),
    Newer(i64, u32),
    Empty,
    Perm(PermMatch, u32),
    Uid(u32),
    Gid(u32),
    Size(Cmp, u64, u64),
    Mtime(Cmp, i64, i64),
    Links(Cmp, u64),
    Executable,
    Print,
    Print0,
    Printf(String),
    Exec {
        argv: Vec<String>,
        batch: bool,
        in_dir: bool,
        id: usize,
    },
    Delete,
    Prune,
    Quit,
}

#[derive(Debug, Clone, Copy)]
enum PermMatch {
    Exact,
    All,
    Any,
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Less,
    Equal,
    More,
}

impl Cmp {
    fn test(self, value: i128, n: i128) -> bool {
        match self {
            Cmp::Less => value < n,
            Cmp::Equal => value == n,
            Cmp::More => value > n,
        }
    }
}

#[derive(Default)]
struct Globals {
    max_depth: Option<usize>,
    min_depth: usize,
    depth_first: bool,
    has_action: bool,
    exec_count: usize,
}

struct Parser<'a> {
    args: &'a [String],
    pos: usize,
    globals: Globals,
    now: i64,
}

fn bad(msg: impl Into<String>) -> String {
    msg.into()
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.args.get(self.pos).map(String::as_str)
    }

    fn value(&mut self, opt: &str) -> Result<String, String> {
        self.pos += 1;
        self.args
            .get(self.pos - 1)
            .cloned()
            .ok_or_else(|| bad(format!("missing argument to `{opt}'")))
    }

    fn parse(&mut self) -> Result<Expr, String> {
        let expr = self.comma()?;
        if let Some(extra) = self.peek() {
            return Err(bad(format!("unexpected `{extra}'")));
        }
        Ok(expr)
    }

    fn comma(&mut self) -> Result<Expr, String> {
        let mut left = self.or()?;
        while self.peek() == Some(",") {
            self.pos += 1;
            left = Expr::Comma(Box::new(left), Box::new(self.or()?));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some("-o" | "-or")) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some("-a" | "-and") => self.pos += 1,
                None | Some("-o" | "-or" | ")" | ",") => return Ok(left),
                _ => {}
            }
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some("!" | "-not") => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some("(") => {
                self.pos += 1;
                let inner = self.comma()?;
                if self.peek() != Some(")") {
                    return Err(bad(
                        "invalid expression; I was expecting to find a ')' somewhere but did not see one.",
                    ));
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(_) => self.primary(),
            None => Err(bad("invalid expression")),
        }
    }

    fn number_cmp(&mut self, opt: &str) -> Result<(Cmp, String), String> {
        let v = self.value(opt)?;
        Ok(match v.strip_prefix('+') {
            Some(rest) => (Cmp::More, rest.to_owned()),
            None => match v.strip_prefix('-') {
                Some(rest) => (Cmp::Less, rest.to_owned()),
                None => (Cmp::Equal, v),
            },
        })
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let Some(opt) = self.peek().map(str::to_owned) else {
            return Err(bad("invalid expression"));
        };
        self.pos += 1;
        let int = |s: &str, opt: &str| {
            s.parse::<i64>()
                .map_err(|_| bad(format!("invalid argument `{s}' to `{opt}'")))
        };
        Ok(match opt.as_str() {
            "-true" => Expr::True,
            "-false" => Expr::False,
            "-name" | "-iname" => Expr::Name(self.value(&opt)?, opt == "-iname"),
            "-path" | "-wholename" | "-ipath" | "-iwholename" => {
                Expr::Path(self.value(&opt)?, opt.starts_with("-i"))
            }
            "-type" => {
                let v = self.value(&opt)?;
                let mut kinds = Vec::new();
                for t in v.split(',') {
                    kinds.push(match t {
                        "f" => kind::REGULAR,
                        "d" => kind::DIR,
                        "l" => kind::SYMLINK,
                        "p" => kind::FIFO,
                        "s" => kind::SOCKET,
                        "b" => kind::BLOCK,
                        "c" => kind::CHAR,
                        _ => return Err(bad(format!("Unknown argument to -type: {t}"))),
                    });
                }
                Expr::Type(kinds)
            }
            "-newer" => {
                let f = self.value(&opt)?;
                let st =
                    sys::stat(&f, true).map_err(|e| bad(format!("'{f}': {}", describe(&e))))?;
                Expr::Newer(st.mtime.sec, st.mtime.nsec)
            }
            "-empty" => Expr::Empty,
            "-executable" => Expr::Executable,
            "-perm" => {
                let v = self.value(&opt)?;
                let (how, m) = match (v.strip_prefix('-'), v.strip_prefix('/')) {
                    (Some(m), _) => (PermMatch::All, m),
                    (_, Some(m)) => (PermMatch::Any, m),
                    _ => (PermMatch::Exact, v.as_str()),
                };
                let bits = crate::mode::apply(m, 0, false, 0)
                    .map_err(|_| bad(format!("invalid mode `{v}'")))?;
                Expr::Perm(how, bits)
            }
            "-user" | "-uid" => {
                let v = self.value(&opt)?;
                let uid = passwd::resolve_user(&v)
                    .map(|e| e.id)
                    .ok_or_else(|| bad(format!("'{v}' is not the name of a known user")))?;
                Expr::Uid(uid)
            }
            "-group" | "-gid" => {
                let v = self.value(&opt)?;
                Expr::Gid(
                    passwd::resolve_group(&v).ok_or_else(|| {
                        bad(format!("'{v}' is not the name of an existing group"))
                    })?,
                )
            }
            "-size" => {
                let (cmp, v) = self.number_cmp(&opt)?;
                let (digits, unit) = match v.char_indices().last() {
                    Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c),
                    _ => (v.as_str(), 'b'),
                };
                let unit_size = match unit {
                    'c' => 1,
                    'w' => 2,
                    'b' => 512,
                    'k' => 1024,
                    'M' => 1 << 20,
                    'G' => 1 << 30,
                    _ => return Err(bad(format!("invalid -size unit `{unit}'"))),
                };
                Expr::Size(cmp, int(digits, &opt)? as u64, unit_size)
            }
            "-mtime" | "-mmin" => {
                let (cmp, v) = self.number_cmp(&opt)?;
                Expr::Mtime(
                    cmp,
                    int(&v, &opt)?,
                    if opt == "-mtime" { 86_400 } else { 60 },
                )
            }
            "-links" => {
                let (cmp, v) = self.number_cmp(&opt)?;
                Expr::Links(cmp, int(&v, &opt)? as u64)
            }
            "-maxdepth" | "-mindepth" => {
                let v = self.value(&opt)?;
                let n = v.parse::<usize>().map_err(|_| {
                    bad(format!(
                        "Expected a positive decimal integer argument to {opt}, but got `{v}'"
                    ))
                })?;
                if opt == "-maxdepth" {
                    self.globals.max_depth = Some(n);
                } else {
                    self.globals.min_depth = n;
                }
                Expr::True
            }
            "-depth" | "-d" => {
                self.globals.depth_first = true;
                Expr::True
            }
            "-xdev" | "-mount" | "-noleaf" | "-ignore_readdir_race" => Expr::True,
            "-print" => {
                self.globals.has_action = true;
                Expr::Print
            }
            "-print0" => {
                self.globals.has_action = true;
                Expr::Print0
            }
            "-printf" => {
                self.globals.has_action = true;
                Expr::Printf(self.value(&opt)?)
            }
            "-delete" => {
                self.globals.has_action = true;
                self.globals.depth_first = true;
                Expr::Delete
            }
            "-prune" => Expr::Prune,
            "-quit" => Expr::Quit,
            "-exec" | "-execdir" => {
                self.globals.has_action = true;
                let mut argv = Vec::new();
                loop {
                    let Some(a) = self.peek().map(str::to_owned) else {
                        return Err(bad(format!("missing argument to `{opt}'")));
                    };
                    self.pos += 1;
                    if a == ";" {
                        break Expr::Exec {
                            argv,
                            batch: false,
                            in_dir: opt == "-execdir",
                            id: self.next_exec(),
                        };
                    }
                    if a == "+" && argv.last().is_some_and(|l| l == "{}") {
                        argv.pop();
                        break Expr::Exec {
                            argv,
                            batch: true,
                            in_dir: opt == "-execdir",
                            id: self.next_exec(),
                        };
                    }
                    argv.push(a);
                }
            }
            other => return Err(bad(format!("unknown predicate `{other}'"))),
        })
    }

    fn next_exec(&mut self) -> usize {
        self.globals.exec_count += 1;
        self.globals.exec_count - 1
    }
}

struct Node<'a> {
    path: &'a str,
    name: &'a str,
    st: Stat,
    depth: usize,
    root: &'a str,
}

struct Finder<'o> {
    globals: Globals,
    follow: Follow,
    now: i64,
    out: &'o mut dyn Write,
    status: i32,
    prune: bool,
    quit: bool,
    /// Pending `-exec ... {} +` arguments per exec id (with the directory for -execdir).
    batches: Vec<Vec<String>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Follow {
    Never,
    Roots,
    Always,
}

impl Finder<'_> {
    fn eval(&mut self, e: &Expr, n: &Node<'_>) -> io::Result<bool> {
        Ok(match e {
            Expr::And(a, b) => self.eval(a, n)? && !self.quit && self.eval(b, n)?,
            Expr::Or(a, b) => self.eval(a, n)? || (!self.quit && self.eval(b, n)?),
            Expr::Comma(a, b) => {
                self.eval(a, n)?;
                self.eval(b, n)?
            }
            Expr::Not(a) => !self.eval(a, n)?,
            Expr::True => true,
            Expr::False => false,
            Expr::Name(p, icase) => {
                let name = if n.name.is_empty() { n.path } else { n.name };
                if *icase {
                    glob::matches(
                        p.to_ascii_lowercase().as_bytes(),
                        name.to_ascii_lowercase().as_bytes(),
                    )
                } else {
                    glob::matches(p.as_bytes(), name.as_bytes())
                }
            }
            Expr::Path(p, icase) => {
                if *icase {
                    glob::matches(
                        p.to_ascii_lowercase().as_bytes(),
                        n.path.to_ascii_lowercase().as_bytes(),
                    )
                } else {
                    glob::matches(p.as_bytes(), n.path.as_bytes())
                }
            }
            Expr::Type(kinds) => kinds.contains(&(n.st.mode & kind::MASK)),
            Expr::Newer(sec, nsec) => (n.st.mtime.sec, n.st.mtime.nsec) > (*sec, *nsec),
            Expr::Empty => {
                if n.st.is_dir() {
                    fs::read_dir(n.path)
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false)
                } else {
                    n.st.is_file() && n.st.size == 0
                }
            }
            Expr::Executable => n.st.mode & 0o111 != 0,
            Expr::Perm(how, bits) => {
                let perm = n.st.perm();
                match how {
                    PermMatch::Exact => perm == *bits,
                    PermMatch::All => perm & bits == *bits,
                    PermMatch::Any => *bits == 0 || perm & bits != 0,
                }
            }
            Expr::Uid(u) => n.st.uid == *u,
            Expr::Gid(g) => n.st.gid == *g,
            Expr::Size(cmp, count, unit) => {
                let units = n.st.size.div_ceil(*unit);
                cmp.test(i128::from(units), i128::from(*count))
            }
            Expr::Mtime(cmp, count, unit) => {
                let age = (self.now - n.st.mtime.sec).max(0) / unit;
                cmp.test(i128::from(age), i128::from(*count))
            }
            Expr::Links(cmp, count) => cmp.test(i128::from(n.st.nlink), i128::from(*count)),
            Expr::Print => {
                writeln!(self.out, "{}", n.path)?;
                true
            }
            Expr::Print0 => {
                write!(self.out, "{}\0", n.path)?;
                true
            }
            Expr::Printf(fmt) => {
                let text = printf(fmt, n);
                self.out.write_all(text.as_bytes())?;
                true
            }
            Expr::Delete => {
                let r = if n.st.is_dir() {
                    fs::remove_dir(n.path)
                } else {
                    fs::remove_file(n.path)
                };
                if let Err(err) = r {
                    warn(
                        "find",
                        format!("cannot delete '{}': {}", n.path, describe(&err)),
                    );
                    self.status = 1;
                    false
                } else {
                    true
                }
            }
            Expr::Prune => {
                self.prune = true;
                true
            }
            Expr::Quit => {
                self.quit = true;
                true
            }
            Expr::Exec {
                argv,
                batch,
                in_dir,
                id,
            } => {
                let (dir, arg) = if *in_dir {
                    let dir = match n.path.rfind('/') {
                        Some(0) => "/".to_owned(),
                        Some(i) => n.path[..i].to_owned(),
                        None => ".".to_owned(),
                    };
                    (
                        Some(dir),
                        format!("./{}", if n.name.is_empty() { n.path } else { n.name }),
                    )
                } else {
                    (None, n.path.to_owned())
                };
                if *batch {
                    self.batches[*id].push(arg);
                    if self.batches[*id].len() >= 1024 {
                        self.flush_batch(argv, *id, dir)?;
                    }
                    return Ok(true);
                }
                let cmd: Vec<String> = argv.iter().map(|a| a.replace("{}", &arg)).collect();
                self.out.flush()?;
                let mut c = sys::Command::new(cmd);
                c.cwd = dir;
                match sys::run(&c) {
                    Ok(code) => code == 0,
                    Err(err) => {
                        warn(
                            "find",
                            format!(
                                "{}: {}",
                                argv.first().map_or("", String::as_str),
                                describe(&err)
                            ),
                        );
                        self.status = 1;
                        false
                    }
                }
            }
        })
    }

    fn flush_batch(&mut self, argv: &[String], id: usize, dir: Option<String>) -> io::Result<()> {
        if self.batches[id].is_empty() {
            return Ok(());
        }
        let files = std::mem::take(&mut self.batches[id]);
        let cmd: Vec<String> = argv.iter().cloned().chain(files).collect();
        self.out.flush()?;
        let mut c = sys::Command::new(cmd);
        c.cwd = dir;
        match sys::run(&c) {
            Ok(0) => {}
            Ok(_) => self.status = 1,
            Err(err) => {
                warn("find", describe(&err));
                self.status = 1;
            }
        }
        Ok(())
    }

    fn visit(
        &mut self,
        expr: &Expr,
        path: &str,
        name: &str,
        depth: usize,
        root: &str,
    ) -> io::Result<()> {
        let follow = match self.follow {
            Follow::Always => true,
            Follow::Roots => depth == 0,
            Follow::Never => false,
        };
        let st = match sys::stat(path, false) {
            Ok(st) if follow && st.is_symlink() => sys::stat(path, true).unwrap_or(st),
            Ok(st) => st,
            Err(e) => {
                warn("find", format!("'{path}': {}", describe(&e)));
                self.status = 1;
                return Ok(());
            }
        };
        let node = Node {
            path,
            name,
            st,
            depth,
            root,
        };
        let in_range = depth >= self.globals.min_depth;
        self.prune = false;
        if !self.globals.depth_first && in_range {
            self.eval(expr, &node)?;
        }
        let descend = st.is_dir()
            && !self.prune
            && self.globals.max_depth.is_none_or(|m| depth < m)
            && !self.quit;
        if descend {
            match read_dir_sorted(path) {
                Ok(names) => {
                    for child in names {
                        if self.quit {
                            break;
                        }
                        let child_path = join(path, &child);
                        self.visit(expr, &child_path, &child, depth + 1, node.root)?;
                    }
                }
                Err(e) => {
                    warn("find", format!("'{path}': {}", describe(&e)));
                    self.status = 1;
                }
            }
        }
        if self.globals.depth_first && in_range && !self.quit {
            self.eval(expr, &node)?;
        }
        Ok(())
    }
}

fn printf(fmt: &str, n: &Node<'_>) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            },
            '%' => match chars.next() {
                Some('p') => out.push_str(n.path),
                Some('f') => out.push_str(if n.name.is_empty() { n.path } else { n.name }),
                Some('h') => out.push_str(match n.path.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &n.path[..i],
                    None => ".",
                }),
                Some('P') => out.push_str(
                    n.path
                        .strip_prefix(n.root)
                        .map_or(n.path, |r| r.trim_start_matches('/')),
                ),
                Some('s') => out.push_str(&n.st.size.to_string()),
                Some('m') => out.push_str(&format!("{:o}", n.st.perm())),
                Some('M') => out.push_str(&crate::mode::render(n.st.mode)),
                Some('u') => out.push_str(&passwd::Names::default().user(n.st.uid)),
                Some('g') => out.push_str(&passwd::Names::default().group(n.st.gid)),
                Some('U') => out.push_str(&n.st.uid.to_string()),
                Some('G') => out.push_str(&n.st.gid.to_string()),
                Some('d') => out.push_str(&n.depth.to_string()),
                Some('T') if matches!(chars.clone().next(), Some('s')) => {
                    chars.next();
                    out.push_str(&n.st.mtime.sec.to_string());
                }
                Some('y') => out.push(match n.st.mode & kind::MASK {
                    kind::DIR => 'd',
                    kind::SYMLINK => 'l',
                    kind::FIFO => 'p',
                    kind::SOCKET => 's',
                    kind::BLOCK => 'b',
                    kind::CHAR => 'c',
                    _ => 'f',
                }),
                Some('l') => {
                    if n.st.is_symlink() {
                        out.push_str(
                            &fs::read_link(n.path)
                                .map(|t| t.to_string_lossy().into_owned())
                                .unwrap_or_default(),
                        );
                    }
                }
                Some('%') => out.push('%'),
                Some(o) => {
                    out.push('%');
                    out.push(o);
                }
                None => out.push('%'),
            },
            c => out.push(c),
        }
    }
    out
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let mut i = 0;
    let mut follow = Follow::Never;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-H" => follow = Follow::Roots,
            "-L" => follow = Follow::Always,
            "-P" => follow = Follow::Never,
            _ => break,
        }
        i += 1;
    }
    let mut roots = Vec::new();
    while let Some(a) = args.get(i) {
        if (a.starts_with('-') && a.len() > 1) || a == "(" || a == "!" {
            break;
        }
        roots.push(a.clone());
        i += 1;
    }
    if roots.is_empty() {
        roots.push(".".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut parser = Parser {
        args: &args[i..],
        pos: 0,
        globals: Globals::default(),
        now,
    };
    let expr = if args.len() == i {
        Expr::True
    } else {
        match parser.parse() {
            Ok(e) => e,
            Err(msg) => {
                warn(name, msg);
                return 1;
            }
        }
    };
    let globals = parser.globals;
    let now = parser.now;
    let expr = if globals.has_action {
        expr
    } else {
        Expr::And(Box::new(expr), Box::new(Expr::Print))
    };
    let mut stdout = util::stdout();
    let exec_count = globals.exec_count;
    let mut finder = Finder {
        globals,
        follow,
        now,
        out: &mut stdout,
        status: 0,
        prune: false,
        quit: false,
        batches: vec![Vec::new(); exec_count],
    };
    for root in &roots {
        let trimmed = root.trim_end_matches('/');
        let base = if trimmed.is_empty() {
            "/"
        } else {
            trimmed.rsplit('/').next().unwrap_or(trimmed)
        };
        if let Err(e) = finder.visit(&expr, root, base, 0, root) {
            if !util::is_broken_pipe(&e) {
                warn(name, describe(&e));
            }
            return 1;
        }
        if finder.quit {
            break;
        }
    }
    if let Err(e) = flush_all(&mut finder, &expr) {
        warn(name, describe(&e));
        finder.status = 1;
    }
    let status = finder.status;
    if stdout.flush().is_err() {
        return 1;
    }
    status
}

/// Runs the remaining `-exec ... {} +` batches.
fn flush_all(f: &mut Finder<'_>, e: &Expr) -> io::Result<()> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) | Expr::Comma(a, b) => {
            flush_all(f, a)?;
            flush_all(f, b)
        }
        Expr::Not(a) => flush_all(f, a),
        Expr::Exec {
            argv,
            batch: true,
            id,
            ..
        } => f.flush_batch(argv, *id, None),
        _ => Ok(()),
    }
}
