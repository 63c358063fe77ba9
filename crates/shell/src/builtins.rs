//! Builtin commands.

use crate::host::{FileKind, Resolved};
use crate::interp::{Flow, Interp, Res};

const SPECIAL: &[&str] = &[
    ":", ".", "break", "continue", "eval", "exec", "exit", "export", "readonly", "return", "set",
    "shift", "times", "trap", "unset", "source", "local",
];
const REGULAR: &[&str] = &[
    "cd", "pwd", "true", "false", "echo", "printf", "test", "[", "read", "command", "type",
    "umask", "wait", "getopts", "hash",
];

/// Builtins whose job is to write to stdout (they fail when it is closed).
const WRITERS: &[&str] = &["echo", "printf", "pwd", "type", "times"];

/// POSIX special builtins (assignments before them persist), plus `source` and `local`.
pub(crate) fn is_special(name: &str) -> bool {
    SPECIAL.contains(&name)
}

/// Regular builtins (found before `PATH`).
pub(crate) fn is_regular(name: &str) -> bool {
    REGULAR.contains(&name)
}

fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && cs.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Quotes a value for `set`/`export -p` output the way dash does.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `p` without `.` components, repeated or trailing slashes; `..` goes up (not past `/`).
pub(crate) fn normalize_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Interp {
    /// Runs builtin `argv[0]`.
    pub(crate) fn builtin(&mut self, argv: &[String]) -> Res {
        if WRITERS.contains(&argv[0].as_str()) && !self.fds.contains_key(&1) {
            self.err(&format!("{0}: {0}: I/O error", argv[0]));
            return Ok(1);
        }
        self.write_failed.set(false);
        let res = self.builtin_body(argv);
        // A builtin whose output could not be written (stdout a read-only fd, a full
        // disk) fails as in dash, instead of reporting success.
        if self.write_failed.replace(false) && res.is_ok() {
            self.err(&format!("{0}: {0}: I/O error", argv[0]));
            return Ok(1);
        }
        res
    }

    fn builtin_body(&mut self, argv: &[String]) -> Res {
        let args = &argv[1..];
        match argv[0].as_str() {
            ":" | "true" | "hash" => Ok(0),
            "false" => Ok(1),
            "echo" => self.b_echo(args),
            "printf" => crate::printf::run(self, args),
            "test" => Ok(crate::test_cmd::run(self, "test", args)),
            "[" => {
                if args.last().map(String::as_str) != Some("]") {
                    self.err("[: missing ]");
                    return Ok(2);
                }
                Ok(crate::test_cmd::run(self, "[", &args[..args.len() - 1]))
            }
            "cd" => Ok(self.b_cd(args)),
            "pwd" => {
                let s = format!("{}\n", self.cwd);
                self.out(s.as_bytes())?;
                Ok(0)
            }
            "export" | "readonly" => self.b_export(&argv[0], args),
            "unset" => self.b_unset(args),
            "set" => self.b_set(args),
            "shift" => {
                let n = match args.first() {
                    Some(a) => a.parse::<usize>().unwrap_or(usize::MAX),
                    None => 1,
                };
                if n > self.params.len() {
                    self.err("shift: can't shift that many");
                    return Err(Flow::Exit(2));
                }
                self.params.drain(..n);
                Ok(0)
            }
            "exit" => {
                let n = self.num_arg("exit", args, self.status)?;
                Err(Flow::Exit(n & 0xff))
            }
            "return" => {
                let n = self.num_arg("return", args, self.status)?;
                Err(Flow::Return(n & 0xff))
            }
            "break" | "continue" => {
                let n = self.num_arg(&argv[0], args, 1)?;
                if n < 1 {
                    self.err(&format!("{}: Illegal number: {}", argv[0], n));
                    return Err(Flow::Exit(2));
                }
                if self.loop_depth == 0 {
                    return Ok(0);
                }
                let n = (n as u32).min(self.loop_depth);
                Err(if argv[0] == "break" {
                    Flow::Break(n)
                } else {
                    Flow::Continue(n)
                })
            }
            "eval" => {
                let src = args.join(" ");
                self.eval_string(&src)
            }
            "exec" => {
                if args.is_empty() {
                    return Ok(0);
                }
                let st = self.run_external(args, &[])?;
                Err(Flow::Exit(st))
            }
            "." | "source" => self.b_source(args),
            "trap" => Ok(self.b_trap(args)),
            "times" => {
                self.out(b"0m0.000s 0m0.000s\n0m0.000s 0m0.000s\n")?;
                Ok(0)
            }
            "local" => self.b_local(args),
            "read" => self.b_read(args),
            "command" => self.b_command(args),
            "type" => self.b_type(args),
            "umask" => self.b_umask(args),
            "wait" => Ok(match args.first() {
                None => {
                    self.wait_all();
                    0
                }
                Some(p) => match p.parse::<u32>() {
                    Ok(pid) => self.wait_pid(pid),
                    Err(_) => 127,
                },
            }),
            "getopts" => self.b_getopts(args),
            other => {
                self.err(&format!("{other}: not found"));
                Ok(127)
            }
        }
    }

    fn num_arg(&self, name: &str, args: &[String], default: i32) -> Result<i32, Flow> {
        match args.first() {
            None => Ok(default),
            Some(a) => match a.parse::<i32>() {
                Ok(n) if n >= 0 => Ok(n),
                _ => {
                    self.err(&format!("{name}: Illegal number: {a}"));
                    Err(Flow::Exit(2))
                }
            },
        }
    }

    /// dash's echo (`-n` only as the first argument, escapes always interpreted), or
    /// bash's (`-n`, `-e`, `-E` flags, escapes only with `-e`) when invoked as bash.
    fn b_echo(&mut self, args: &[String]) -> Res {
        let (newline, escapes, args) = if self.bash {
            bash_echo_flags(args)
        } else {
            match args.first().map(String::as_str) {
                Some("-n") => (false, true, &args[1..]),
                _ => (true, true, args),
            }
        };
        let mut out = String::new();
        let mut stop = false;
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if !escapes {
                out.push_str(a);
            } else if crate::printf::escapes(a, &mut out, true) {
                stop = true;
                break;
            }
        }
        if newline && !stop {
            out.push('\n');
        }
        self.out(out.as_bytes())?;
        Ok(0)
    }

    fn b_cd(&mut self, args: &[String]) -> i32 {
        let args: Vec<&String> = args.iter().filter(|a| *a != "-L" && *a != "-P").collect();
        let (target, print) = match args.first().map(|s| s.as_str()) {
            None => match self.get_var("HOME") {
                Some(h) => (h.to_string(), false),
                None => return 0,
            },
            Some("-") => (self.get_var("OLDPWD").unwrap_or("").to_string(), true),
            Some(t) => (t.to_string(), false),
        };
        let new = normalize_path(&self.abs_path(&target));
        match self.host.stat(&new, true) {
            Ok(st) if st.kind == FileKind::Dir => {
                let old = std::mem::replace(&mut self.cwd, new.clone());
                let _ = self.set_var("OLDPWD", old);
                let _ = self.set_var("PWD", new.clone());
                if print {
                    let _ = self.out(format!("{new}\n").as_bytes());
                }
                0
            }
            _ => {
                self.err(&format!("cd: can't cd to {target}"));
                2
            }
        }
    }

    fn b_export(&mut self, which: &str, args: &[String]) -> Res {
        let ro = which == "readonly";
        let args: Vec<&String> = args.iter().filter(|a| *a != "-p").collect();
        if args.is_empty() {
            let mut lines: Vec<(String, String)> = self
                .vars
                .iter()
                .filter(|(_, v)| (ro && v.readonly) || (!ro && v.exported))
                .map(|(k, v)| {
                    (
                        k.clone(),
                        format!("{which} {k}={}\n", shell_quote(&v.value)),
                    )
                })
                .collect();
            if !ro {
                lines.extend(
                    self.export_unset
                        .iter()
                        .map(|k| (k.clone(), format!("export {k}\n"))),
                );
            }
            lines.sort();
            let out: String = lines.into_iter().map(|(_, l)| l).collect();
            self.out(out.as_bytes())?;
            return Ok(0);
        }
        for a in args {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            if !is_name(name) {
                self.err(&format!("{which}: {name}: bad variable name"));
                return Err(Flow::Exit(2));
            }
            if let Some(v) = value {
                if let Err(e) = self.set_var(name, v) {
                    self.err(&e);
                    return Err(Flow::Exit(2));
                }
            } else if self.get_var(name).is_none() {
                if ro {
                    let _ = self.set_var(name, String::new());
                } else {
                    self.export_unset.insert(name.to_string());
                }
            }
            if let Some(var) = self.vars.get_mut(name) {
                if ro {
                    var.readonly = true;
                } else {
                    var.exported = true;
                }
            }
        }
        Ok(0)
    }

    fn b_unset(&mut self, args: &[String]) -> Res {
        let mut funcs = false;
        for a in args {
            match a.as_str() {
                "-f" => funcs = true,
                "-v" => funcs = false,
                name if funcs => {
                    self.funcs.remove(name);
                }
                name => {
                    if let Err(e) = self.unset_var(name) {
                        self.err(&format!("unset: {e}"));
                        return Err(Flow::Exit(2));
                    }
                }
            }
        }
        Ok(0)
    }

    pub(crate) fn option_flags(&self) -> String {
        let o = &self.opts;
        [
            (o.errexit, 'e'),
            (o.noglob, 'f'),
            (o.nounset, 'u'),
            (o.xtrace, 'x'),
            (o.noclobber, 'C'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect()
    }

    pub(crate) fn set_option_char(&mut self, c: char, on: bool) -> Result<(), String> {
        let o = &mut self.opts;
        match c {
            'e' => o.errexit = on,
            'u' => o.nounset = on,
            'x' => o.xtrace = on,
            'f' => o.noglob = on,
            'C' => o.noclobber = on,
            'a' | 'b' | 'h' | 'm' | 'n' | 'v' => {}
            // bash's brace expansion, ERR/DEBUG trap inheritance, history, physical cd:
            // accepted (a `SHELL ["/bin/bash", "-E", "-c"]` must run) and without effect.
            'B' | 'E' | 'H' | 'P' | 'T' => {}
            _ => return Err(format!("Illegal option -{c}")),
        }
        Ok(())
    }

    pub(crate) fn set_option_name(&mut self, name: &str, on: bool) -> Result<(), String> {
        let c = match name {
            "errexit" => 'e',
            "nounset" => 'u',
            "xtrace" => 'x',
            "noglob" => 'f',
            "noclobber" => 'C',
            "pipefail" => {
                self.opts.pipefail = on;
                return Ok(());
            }
            "allexport" | "notify" | "monitor" | "verbose" | "nolog" | "emacs" | "vi" => 'a',
            "posix"
            | "braceexpand"
            | "hashall"
            | "interactive-comments"
            | "histexpand"
            | "history"
            | "physical"
            | "errtrace"
            | "functrace"
            | "ignoreeof" => 'a',
            _ => return Err(format!("Illegal option -o {name}")),
        };
        self.set_option_char(c, on)
    }

    fn b_set(&mut self, args: &[String]) -> Res {
        if args.is_empty() {
            let mut out = String::new();
            for (k, v) in &self.vars {
                out.push_str(&format!("{k}={}\n", shell_quote(&v.value)));
            }
            self.out(out.as_bytes())?;
            return Ok(0);
        }
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                self.params = args[i + 1..].to_vec();
                return Ok(0);
            }
            if a == "-o" || a == "+o" {
                match args.get(i + 1) {
                    Some(name) => {
                        if let Err(e) = self.set_option_name(name, a == "-o") {
                            self.err(&format!("set: {e}"));
                            return Err(Flow::Exit(2));
                        }
                        i += 2;
                    }
                    None => {
                        let o = self.opts.clone();
                        let s = format!(
                            "errexit\t{}\nnoglob\t{}\nnounset\t{}\nxtrace\t{}\nnoclobber\t{}\npipefail\t{}\n",
                            onoff(o.errexit),
                            onoff(o.noglob),
                            onoff(o.nounset),
                            onoff(o.xtrace),
                            onoff(o.noclobber),
                            onoff(o.pipefail)
                        );
                        self.out(s.as_bytes())?;
                        i += 1;
                    }
                }
                continue;
            }
            if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
                for c in a[1..].chars() {
                    if let Err(e) = self.set_option_char(c, a.starts_with('-')) {
                        self.err(&format!("set: {e}"));
                        return Err(Flow::Exit(2));
                    }
                }
                i += 1;
                continue;
            }
            if a == "-" {
                i += 1;
            }
            self.params = args[i..].to_vec();
            return Ok(0);
        }
        Ok(0)
    }

    fn b_source(&mut self, args: &[String]) -> Res {
        let Some(file) = args.first() else {
            self.err(".: filename argument required");
            return Err(Flow::Exit(2));
        };
        let path = if file.contains('/') {
            Some(self.abs_path(file))
        } else {
            let pv = self
                .get_var("PATH")
                .unwrap_or(crate::DEFAULT_PATH)
                .to_string();
            pv.split(':')
                .map(|d| self.abs_path(&format!("{}/{file}", if d.is_empty() { "." } else { d })))
                .find(|p| {
                    self.host
                        .stat(p, true)
                        .is_ok_and(|s| s.kind == FileKind::File)
                })
        };
        let text = match path.map(|p| self.host.read_file(&p)) {
            Some(Ok(b)) => crate::bytes::from_bytes(&b),
            _ => {
                self.err(&format!(".: cannot open {file}: No such file"));
                return Err(Flow::Exit(2));
            }
        };
        let prog = self.parse_or_fail(&text)?;
        let saved =
            (args.len() > 1).then(|| std::mem::replace(&mut self.params, args[1..].to_vec()));
        let r = self.nested(|s| s.run_program(&prog));
        if let Some(p) = saved {
            self.params = p;
        }
        match r {
            Err(Flow::Return(n)) => Ok(n),
            other => other,
        }
    }

    fn b_trap(&mut self, args: &[String]) -> i32 {
        if args.is_empty() {
            let mut out = String::new();
            for (k, v) in &self.traps {
                out.push_str(&format!("trap -- {} {k}\n", shell_quote(v)));
            }
            let _ = self.out(out.as_bytes());
            return 0;
        }
        let (action, conds) = if args.len() == 1 || args[0] == "-" {
            (None, if args.len() == 1 { args } else { &args[1..] })
        } else {
            (Some(args[0].clone()), &args[1..])
        };
        let mut st = 0;
        for c in conds {
            let name = c.strip_prefix("SIG").unwrap_or(c);
            let name = match name {
                "0" | "EXIT" => "EXIT",
                "ERR" => "ERR",
                "1" | "HUP" => "HUP",
                "2" | "INT" => "INT",
                "3" | "QUIT" => "QUIT",
                "13" | "PIPE" => "PIPE",
                "15" | "TERM" => "TERM",
                "USR1" | "USR2" | "CHLD" | "ALRM" => name,
                _ => {
                    self.err(&format!("trap: {c}: bad trap"));
                    st = 1;
                    continue;
                }
            };
            match &action {
                Some(a) => {
                    self.traps.insert(name.to_string(), a.clone());
                }
                None => {
                    self.traps.remove(name);
                }
            }
        }
        st
    }

    fn b_local(&mut self, args: &[String]) -> Res {
        if self.locals.is_empty() {
            self.err("local: not in a function");
            return Err(Flow::Exit(2));
        }
        for a in args {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let old = self.vars.get(name).cloned();
            if let Some(frame) = self.locals.last_mut()
                && !frame.iter().any(|(n, _)| n == name)
            {
                frame.push((name.to_string(), old));
            }
            if let Some(v) = value
                && let Err(e) = self.set_var(name, v)
            {
                self.err(&e);
                return Err(Flow::Exit(2));
            }
        }
        Ok(0)
    }

    /// `read [-r] [-p prompt] name...`: reads one byte at a time so the rest of the input
    /// stays for the next command.
    fn b_read(&mut self, args: &[String]) -> Res {
        let mut raw = false;
        let mut names = Vec::new();
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "-r" => raw = true,
                "-p" => {
                    i += 1;
                    if let Some(p) = args.get(i) {
                        let _ = crate::io::write_all(&self.fd(2), &crate::bytes::to_bytes(p));
                    }
                }
                a => names.push(a.to_string()),
            }
            i += 1;
        }
        if names.is_empty() {
            names.push("REPLY".into());
        }
        let input = self.fd(0);
        let mut bytes = Vec::new();
        let mut escaped_at = Vec::new();
        let mut eof = false;
        let mut b = [0u8; 1];
        loop {
            // Each byte also costs a `(char, bool)` when the line is split.
            if bytes.len().saturating_mul(9) > self.budget().memory() {
                return Err(self.trip(crate::limits::LimitError::Memory {
                    limit: self.budget().memory(),
                    what: "a line read by `read`",
                }));
            }
            match input.read(&mut b) {
                Ok(0) | Err(_) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
            }
            if b[0] == b'\n' {
                break;
            }
            if b[0] == b'\\' && !raw {
                match input.read(&mut b) {
                    Ok(1) if b[0] == b'\n' => continue,
                    Ok(1) => {
                        escaped_at.push(bytes.len());
                        bytes.push(b[0]);
                        continue;
                    }
                    _ => {
                        eof = true;
                        break;
                    }
                }
            }
            bytes.push(b[0]);
        }
        let line = crate::bytes::from_bytes(&bytes);
        let chars: Vec<(char, bool)> = crate::bytes::char_offsets(&line)
            .into_iter()
            .map(|(c, i)| (c, escaped_at.binary_search(&i).is_ok()))
            .collect();
        let values = split_read(&chars, &self.ifs(), names.len());
        for (n, v) in names.iter().zip(values) {
            if let Err(e) = self.set_var(n, v) {
                self.err(&e);
                return Ok(2);
            }
        }
        Ok(if eof { 1 } else { 0 })
    }

    fn describe(&self, name: &str) -> Option<String> {
        if is_special(name) {
            return Some(format!("{name} is a special shell builtin"));
        }
        if self.funcs.contains_key(name) {
            return Some(format!("{name} is a shell function"));
        }
        if is_regular(name) {
            return Some(format!("{name} is a shell builtin"));
        }
        self.lookup_path(name).map(|p| format!("{name} is {p}"))
    }

    fn lookup_path(&self, name: &str) -> Option<String> {
        let pv = self.get_var("PATH").unwrap_or(crate::DEFAULT_PATH);
        match self.host.resolve(name, pv, &self.cwd) {
            Resolved::Program(p) => Some(p.path),
            Resolved::Script { path, .. } | Resolved::NotWasm(path) => Some(path),
            Resolved::Denied(_) | Resolved::NotFound => None,
        }
    }

    fn b_command(&mut self, args: &[String]) -> Res {
        match args.first().map(String::as_str) {
            None => Ok(0),
            Some("-v") | Some("-V") => {
                let verbose = args[0] == "-V";
                let mut st = 0;
                for name in &args[1..] {
                    let line = if verbose {
                        self.describe(name)
                    } else if is_special(name)
                        || is_regular(name)
                        || self.funcs.contains_key(name.as_str())
                    {
                        Some(name.clone())
                    } else {
                        self.lookup_path(name)
                    };
                    match line {
                        Some(l) => self.out(format!("{l}\n").as_bytes())?,
                        None => {
                            if verbose {
                                self.err(&format!("command: {name}: not found"));
                            }
                            st = 127;
                        }
                    }
                }
                Ok(st)
            }
            Some("-p") => self.b_command(&args[1..]),
            Some(name) => {
                if is_special(name) || is_regular(name) {
                    self.builtin(args)
                } else {
                    self.run_external(args, &[])
                }
            }
        }
    }

    fn b_type(&mut self, args: &[String]) -> Res {
        let mut st = 0;
        for name in args {
            match self.describe(name) {
                Some(l) => self.out(format!("{l}\n").as_bytes())?,
                None => {
                    self.out(format!("{name}: not found\n").as_bytes())?;
                    st = 127;
                }
            }
        }
        Ok(st)
    }

    fn b_umask(&mut self, args: &[String]) -> Res {
        let symbolic = args.first().map(String::as_str) == Some("-S");
        let args: Vec<&String> = args.iter().filter(|a| *a != "-S").collect();
        let Some(spec) = args.first() else {
            let s = if symbolic {
                let perm = |shift: u32| {
                    let bits = (!self.umask >> shift) & 7;
                    let mut s = String::new();
                    for (b, c) in [(4, 'r'), (2, 'w'), (1, 'x')] {
                        if bits & b != 0 {
                            s.push(c);
                        }
                    }
                    s
                };
                format!("u={},g={},o={}\n", perm(6), perm(3), perm(0))
            } else {
                format!("{:04o}\n", self.umask)
            };
            self.out(s.as_bytes())?;
            return Ok(0);
        };
        if let Ok(m) = u32::from_str_radix(spec, 8) {
            self.umask = m & 0o777;
            return Ok(0);
        }
        let mut mask = self.umask;
        for clause in spec.split(',') {
            let Some((who, perms)) = clause.split_once('=') else {
                self.err(&format!("umask: Illegal mode: {spec}"));
                return Ok(1);
            };
            let mut bits = 0;
            for c in perms.chars() {
                bits |= match c {
                    'r' => 4,
                    'w' => 2,
                    'x' => 1,
                    _ => 0,
                };
            }
            let who = if who.is_empty() || who == "a" {
                "ugo"
            } else {
                who
            };
            for w in who.chars() {
                let shift = match w {
                    'u' => 6,
                    'g' => 3,
                    _ => 0,
                };
                mask = (mask & !(7 << shift)) | ((!bits & 7) << shift);
            }
        }
        self.umask = mask;
        Ok(0)
    }

    fn b_getopts(&mut self, args: &[String]) -> Res {
        if args.len() < 2 {
            self.err("getopts: usage: getopts optstring var [arg...]");
            return Ok(2);
        }
        let optstring = args[0].clone();
        let var = args[1].clone();
        let list: Vec<String> = if args.len() > 2 {
            args[2..].to_vec()
        } else {
            self.params.clone()
        };
        let silent = optstring.starts_with(':');
        let mut optind: usize = self
            .get_var("OPTIND")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1);
        let set = |s: &mut Interp, n: &str, v: &str| {
            let keep = s.getopts_char;
            let _ = s.set_var(n, v.to_string());
            s.getopts_char = keep;
        };
        let done = |s: &mut Interp, optind: usize| {
            set(s, &var, "?");
            s.getopts_char = 0;
            set(s, "OPTIND", &optind.to_string());
            Ok(1)
        };
        let Some(arg) = list.get(optind - 1).cloned() else {
            return done(self, optind);
        };
        if self.getopts_char == 0 {
            if arg == "--" {
                return done(self, optind + 1);
            }
            if !arg.starts_with('-') || arg == "-" {
                return done(self, optind);
            }
            self.getopts_char = 1;
        }
        let chars: Vec<char> = arg.chars().collect();
        let c = chars.get(self.getopts_char).copied().unwrap_or('?');
        self.getopts_char += 1;
        let at_end = self.getopts_char >= chars.len();
        let spec = optstring.trim_start_matches(':');
        let pos = if c == ':' { None } else { spec.find(c) };
        match pos {
            None => {
                if silent {
                    set(self, "OPTARG", &c.to_string());
                } else {
                    self.raw_err(&format!("Illegal option -{c}"));
                    let _ = self.unset_var("OPTARG");
                }
                set(self, &var, "?");
                if at_end {
                    {
                        optind += 1;
                        self.getopts_char = 0;
                    }
                }
            }
            Some(p) if spec[p + c.len_utf8()..].starts_with(':') => {
                if !at_end {
                    let rest: String = chars[self.getopts_char..].iter().collect();
                    set(self, "OPTARG", &rest);
                    set(self, &var, &c.to_string());
                    {
                        optind += 1;
                        self.getopts_char = 0;
                    }
                } else if let Some(next) = list.get(optind) {
                    let next = next.clone();
                    set(self, "OPTARG", &next);
                    set(self, &var, &c.to_string());
                    {
                        optind += 2;
                        self.getopts_char = 0;
                    }
                } else {
                    if silent {
                        set(self, "OPTARG", &c.to_string());
                        set(self, &var, ":");
                    } else {
                        self.raw_err(&format!("No arg for -{c} option"));
                        let _ = self.unset_var("OPTARG");
                        set(self, &var, "?");
                    }
                    {
                        optind += 1;
                        self.getopts_char = 0;
                    }
                }
            }
            Some(_) => {
                let _ = self.unset_var("OPTARG");
                set(self, &var, &c.to_string());
                if at_end {
                    {
                        optind += 1;
                        self.getopts_char = 0;
                    }
                }
            }
        }
        let keep = self.getopts_char;
        set(self, "OPTIND", &optind.to_string());
        self.getopts_char = keep;
        Ok(0)
    }
}

/// Leading bash echo options: returns (newline, interpret escapes, remaining args).
fn bash_echo_flags(args: &[String]) -> (bool, bool, &[String]) {
    let (mut newline, mut escapes) = (true, false);
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let Some(flags) = a.strip_prefix('-') else {
            break;
        };
        if flags.is_empty() || !flags.chars().all(|c| matches!(c, 'n' | 'e' | 'E')) {
            break;
        }
        for c in flags.chars() {
            match c {
                'n' => newline = false,
                'e' => escapes = true,
                _ => escapes = false,
            }
        }
        i += 1;
    }
    (newline, escapes, &args[i..])
}

fn onoff(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Splits a `read` line into `n` values by IFS; escaped characters never split.
fn split_read(chars: &[(char, bool)], ifs: &str, n: usize) -> Vec<String> {
    let is_ifs = |p: &(char, bool)| !p.1 && ifs.contains(p.0);
    let is_ws = |p: &(char, bool)| is_ifs(p) && matches!(p.0, ' ' | '\t' | '\n');
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() && is_ws(&chars[i]) {
        i += 1;
    }
    while out.len() + 1 < n && i < chars.len() {
        let start = i;
        while i < chars.len() && !is_ifs(&chars[i]) {
            i += 1;
        }
        out.push(chars[start..i].iter().map(|p| p.0).collect());
        while i < chars.len() && is_ws(&chars[i]) {
            i += 1;
        }
        if i < chars.len() && is_ifs(&chars[i]) {
            i += 1;
            while i < chars.len() && is_ws(&chars[i]) {
                i += 1;
            }
        }
    }
    let mut end = chars.len();
    while end > i && is_ws(&chars[end - 1]) {
        end -= 1;
    }
    out.push(chars[i.min(end)..end].iter().map(|p| p.0).collect());
    while out.len() < n {
        out.push(String::new());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> Vec<(char, bool)> {
        s.chars().map(|c| (c, false)).collect()
    }

    #[test]
    fn read_splits_last_variable_takes_rest() {
        assert_eq!(
            split_read(&plain("  a b  c d  "), " \t\n", 2),
            vec!["a", "b  c d"]
        );
        assert_eq!(split_read(&plain("x"), " \t\n", 3), vec!["x", "", ""]);
        assert_eq!(split_read(&plain("1,2,3"), ",", 2), vec!["1", "2,3"]);
    }

    #[test]
    fn read_escaped_separator_does_not_split() {
        let mut v = plain("a b");
        v[1].1 = true;
        assert_eq!(split_read(&v, " ", 2), vec!["a b", ""]);
    }

    #[test]
    fn logical_cd_paths() {
        assert_eq!(normalize_path("/a/b/../c/./d/"), "/a/c/d");
        assert_eq!(normalize_path("/../.."), "/");
    }
}
