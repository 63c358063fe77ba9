//! The interpreter: shell state and command execution.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use brush_parser::ast;

use crate::host::{Host, Resolved, Spawn};
use crate::io::{self as sio, Endpoint};
use crate::limits::{self, Budget, LimitError};

/// Non-local control flow out of a command.
#[derive(Debug)]
pub(crate) enum Flow {
    Break(u32),
    Continue(u32),
    Return(i32),
    Exit(i32),
}

/// A command's exit status, or control flow leaving it.
pub(crate) type Res = Result<i32, Flow>;

/// No `Debug`: a value can be a secret (an `env=` secret, a `$(cat /run/secrets/…)`).
#[derive(Clone)]
pub(crate) struct Var {
    pub value: String,
    pub exported: bool,
    pub readonly: bool,
}

#[derive(Clone, Default, Debug)]
pub(crate) struct Opts {
    pub errexit: bool,
    pub nounset: bool,
    pub xtrace: bool,
    pub pipefail: bool,
    pub noglob: bool,
    pub noclobber: bool,
}

/// A shell thread's place in the step's budgets (see `Interp::enter_thread`).
type ThreadPlace = (limits::ThreadSlot, Option<crate::host::ProcessToken>);

/// Whether a pipeline's non-zero status is a failure of its own for `set -e` and the
/// ERR trap. A compound command made of lists (`if`, `for`, `case`, `while`, `{ }`)
/// only passes on the status of the command it ran last, which was checked itself or
/// exempt (`[ -x f ] && f` as the last command of an `if` body must not end the
/// script); a subshell, a simple command, a function call and a pipeline of several
/// commands are checked, as in dash.
fn fails_by_itself(p: &ast::Pipeline) -> bool {
    use ast::CompoundCommand as C;
    match p.seq.as_slice() {
        [ast::Command::Compound(cc, _)] => matches!(cc, C::Subshell(_) | C::Arithmetic(_)),
        _ => true,
    }
}

/// What undoes one command's redirections: each descriptor they changed, with the
/// endpoint it had before (`None`: it was closed).
type FdUndo = Vec<(i32, Option<Endpoint>)>;

/// Background jobs belong to one shell: a subshell starts with none.
#[derive(Default)]
pub(crate) struct Jobs(pub Vec<(u32, JoinHandle<i32>)>);
impl Clone for Jobs {
    fn clone(&self) -> Self {
        Jobs::default()
    }
}

/// Descriptors a child shell (`sh -c`, a shell script) inherits beyond its stdio: 3 to 9,
/// as dash, which opens descriptors of 10 and up close-on-exec. Scripts hand them to
/// their children on purpose: debconf's confmodule does `exec 3>&1` once and every
/// script it runs writes its protocol to fd 3.
const INHERITED_FDS: std::ops::RangeInclusive<i32> = 3..=9;

#[derive(Clone)]
pub(crate) struct Interp {
    pub host: Arc<dyn Host>,
    pub vars: BTreeMap<String, Var>,
    pub locals: Vec<Vec<(String, Option<Var>)>>,
    pub funcs: HashMap<String, Arc<ast::FunctionBody>>,
    pub params: Vec<String>,
    pub arg0: String,
    pub opts: Opts,
    pub cwd: String,
    pub status: i32,
    pub traps: BTreeMap<String, String>,
    pub umask: u32,
    pub fds: BTreeMap<i32, Endpoint>,
    pub jobs: Jobs,
    pub last_bg: Option<u32>,
    pub loop_depth: u32,
    pub func_depth: u32,
    pub no_errexit: u32,
    pub pids: Arc<AtomicU32>,
    pub cmdsub_status: Option<i32>,
    pub getopts_char: usize,
    /// Names marked for export while unset (`export X` before `X=...`, or an exported
    /// variable that was unset): they export as soon as they get a value.
    pub export_unset: std::collections::BTreeSet<String>,
    /// Invoked as `bash`: builtins that differ between dash and bash (echo) follow bash.
    pub bash: bool,
    /// Nesting level (see [`limits::MAX_NESTING`]).
    pub depth: u32,
    /// A builtin's write to stdout failed (other than EPIPE); see `builtin`.
    pub write_failed: std::cell::Cell<bool>,
    /// Bytes held by `vars` and saved call frames, against the step's memory budget.
    pub held: limits::Held,
}

pub(crate) fn parser_options() -> brush_parser::ParserOptions {
    brush_parser::ParserOptions {
        enable_extended_globbing: false,
        tilde_expansion_at_word_start: true,
        ..Default::default()
    }
}

/// Why a script did not parse.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// brush-parser's message.
    Syntax(String),
    /// The script nests too deep to parse safely.
    Limit(LimitError),
}

/// Parses a script on a stack big enough for its (bounded) nesting.
pub(crate) fn parse(src: &str) -> Result<ast::Program, ParseError> {
    if let Some(n) = limits::oversized_io_number(src) {
        return Err(ParseError::Syntax(format!(
            "syntax error: file descriptor {n} out of range"
        )));
    }
    let src = &*crate::dparen::split_nested_subshells(src)
        .map_err(|e| ParseError::Syntax(format!("syntax error: {e}")))?;
    let parsed = limits::bounded_parse(limits::parse_nesting(src), || {
        let mut p =
            brush_parser::Parser::new(std::io::BufReader::new(src.as_bytes()), &parser_options());
        p.parse_program()
            .map_err(|e| ParseError::Syntax(format!("syntax error: {e}")))
    });
    parsed.map_err(ParseError::Limit)?
}

pub(crate) fn is_shell_name(path: &str) -> bool {
    matches!(base_name(path), "sh" | "bash" | "dash" | "ash")
}

/// The last component of a command path (`/bin/bash` -> `bash`).
pub(crate) fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Where a shell invocation reads its commands (see [`Interp::invocation`]).
pub(crate) enum Source {
    /// `-c script`.
    Command(String),
    /// A script file.
    File(String),
    /// Standard input.
    Stdin,
}

/// bash's long options that change nothing for a step's non-interactive shell (no
/// startup files are read either way); any other is an error, as in bash.
fn check_long_option(name: &str) -> Result<(), String> {
    match name {
        "login" | "noprofile" | "norc" | "posix" | "noediting" => Ok(()),
        _ => Err(format!("--{name}: invalid option")),
    }
}

/// ELF, Mach-O (both byte orders, fat) and PE/COFF executables.
fn is_native_binary(head: &[u8]) -> bool {
    const MAGICS: &[&[u8]] = &[
        b"\x7fELF",
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
        b"\xca\xfe\xba\xbe",
        b"MZ",
    ];
    MAGICS.iter().any(|m| head.starts_with(m))
}

/// An I/O error as a shell prints it (no "(os error N)" suffix).
fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        std::io::ErrorKind::NotFound => "not found".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_string()
        }
    }
}

impl Interp {
    pub(crate) fn new(
        host: Arc<dyn Host>,
        env: &[(String, String)],
        cwd: &str,
        stdio: [Endpoint; 3],
    ) -> Interp {
        let mut vars = BTreeMap::new();
        for (k, v) in env {
            vars.insert(
                k.clone(),
                Var {
                    value: crate::bytes::from_str(v).into_owned(),
                    exported: true,
                    readonly: false,
                },
            );
        }
        let mut fds = BTreeMap::new();
        for (i, ep) in stdio.into_iter().enumerate() {
            fds.insert(i as i32, ep);
        }
        let mut it = Interp {
            host,
            vars,
            locals: Vec::new(),
            funcs: HashMap::new(),
            params: Vec::new(),
            arg0: "sh".into(),
            opts: Opts::default(),
            cwd: cwd.to_string(),
            status: 0,
            traps: BTreeMap::new(),
            umask: 0o022,
            fds,
            jobs: Jobs::default(),
            last_bg: None,
            loop_depth: 0,
            func_depth: 0,
            no_errexit: 0,
            pids: Arc::new(AtomicU32::new(100)),
            cmdsub_status: None,
            getopts_char: 0,
            bash: false,
            export_unset: Default::default(),
            held: limits::Held::new(Arc::new(Budget::new(limits::DEFAULT_MEMORY_LIMIT))),
            depth: 0,
            write_failed: std::cell::Cell::new(false),
        };
        let env_bytes = it.vars.iter().map(|(k, v)| k.len() + v.value.len()).sum();
        it.held.add_unchecked(env_bytes);
        let _ = it.set_var("PWD", cwd.to_string());
        if it.get_var("IFS").is_none() {
            let _ = it.set_var("IFS", " \t\n".into());
        }
        if it.get_var("PS4").is_none() {
            let _ = it.set_var("PS4", "+ ".into());
        }
        it.set_var_raw("OPTIND", "1".into());
        it
    }

    /// A copy of this shell for a subshell: same variables and functions, traps reset.
    /// The copy's variables count against the step's memory budget too.
    pub(crate) fn subshell(&self) -> Result<Interp, Flow> {
        let mut s = self.clone();
        s.traps.clear();
        self.budget().check_used().map_err(|e| self.trip(e))?;
        Ok(s)
    }

    /// A place for a new shell thread: one in the shell's own count and one in the
    /// host's process budget, both held until the thread ends.
    fn enter_thread(&self) -> Result<ThreadPlace, Flow> {
        let slot = self.budget().enter_thread().map_err(|e| self.trip(e))?;
        let token = self
            .host
            .enter_process()
            .map_err(|limit| self.trip(LimitError::Processes { limit }))?;
        Ok((slot, token))
    }

    /// The descriptors beyond stdio that a command this shell starts inherits.
    pub(crate) fn inherited_fds(&self) -> Vec<(i32, Endpoint)> {
        self.fds
            .range(INHERITED_FDS)
            .map(|(n, ep)| (*n, ep.clone()))
            .collect()
    }

    /// A fresh shell process (`sh -c`, `#!` scripts): only exported variables survive.
    pub(crate) fn child(&self, stdio: [Endpoint; 3]) -> Interp {
        let env: Vec<(String, String)> = self.exported_env(&[]);
        let mut c = Interp::new(self.host.clone(), &env, &self.cwd, stdio);
        c.fds.extend(self.inherited_fds());
        c.umask = self.umask;
        c.pids = self.pids.clone();
        c.held.rebind(self.budget().clone());
        c.depth = self.depth;
        c
    }

    // ---- bounds ------------------------------------------------------------------------

    /// Records a bound the script hit as the step's fatal error, prints it once and ends
    /// this shell; every other shell of the step stops at its next command.
    pub(crate) fn trip(&self, e: LimitError) -> Flow {
        let msg = e.to_string();
        if self.budget().trip(e) {
            self.err(&msg);
        }
        Flow::Exit(2)
    }

    /// Runs `f` one nesting level deeper, with [`limits::RED_ZONE`] of stack guaranteed.
    /// Also stops at the step's deadline: recursion through `.`, `eval` or `sh -c`
    /// never passes the loop and function-call checks.
    pub(crate) fn nested(&mut self, f: impl FnOnce(&mut Self) -> Res) -> Res {
        if self.host.deadline_passed() {
            self.err("time limit exceeded");
            return Err(Flow::Exit(124));
        }
        if self.depth >= limits::MAX_NESTING {
            return Err(self.trip(LimitError::Nesting {
                limit: limits::MAX_NESTING,
            }));
        }
        self.depth += 1;
        let r = stacker::maybe_grow(limits::RED_ZONE, limits::STACK_SEGMENT, || f(self));
        self.depth -= 1;
        r
    }

    /// Fails the step when `len` bytes of `what` exceed the memory budget.
    pub(crate) fn check_memory(&self, len: usize, what: &'static str) -> Result<(), Flow> {
        self.budget()
            .check_memory(len, what)
            .map_err(|e| self.trip(e))
    }

    /// The step's bounds.
    pub(crate) fn budget(&self) -> &Arc<Budget> {
        self.held.budget()
    }

    // ---- variables -------------------------------------------------------------------

    pub(crate) fn get_var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.value.as_str())
    }

    /// Sets a variable without the read-only and memory checks (the shell's own).
    fn set_var_raw(&mut self, name: &str, value: String) {
        let old = self
            .vars
            .get(name)
            .map_or(0, |v| v.value.len() + name.len());
        self.held.release(old);
        self.held.add_unchecked(value.len() + name.len());
        match self.vars.get_mut(name) {
            Some(v) => v.value = value,
            None => {
                let exported = self.export_unset.remove(name);
                self.vars.insert(
                    name.to_string(),
                    Var {
                        value,
                        exported,
                        readonly: false,
                    },
                );
            }
        }
    }

    pub(crate) fn set_var(&mut self, name: &str, value: String) -> Result<(), String> {
        if self.vars.get(name).is_some_and(|v| v.readonly) {
            return Err(format!("{name}: is read only"));
        }
        let old = self
            .vars
            .get(name)
            .map_or(0, |v| v.value.len() + name.len());
        let grow = (value.len() + name.len()).saturating_sub(old);
        if let Err(e) = self.budget().check_growth(grow) {
            let msg = e.to_string();
            self.budget().trip(e);
            return Err(msg);
        }
        if name == "OPTIND" {
            self.getopts_char = 0;
        }
        self.set_var_raw(name, value);
        Ok(())
    }

    pub(crate) fn unset_var(&mut self, name: &str) -> Result<(), String> {
        if self.vars.get(name).is_some_and(|v| v.readonly) {
            return Err(format!("{name}: is read only"));
        }
        self.restore_var(name, None);
        self.export_unset.remove(name);
        Ok(())
    }

    /// Puts a saved variable back (or removes it), keeping `var_bytes` right.
    pub(crate) fn restore_var(&mut self, name: &str, var: Option<Var>) {
        let new = var.as_ref().map_or(0, |v| v.value.len() + name.len());
        let old = match var {
            Some(v) => self.vars.insert(name.to_string(), v),
            None => self.vars.remove(name),
        };
        self.held
            .release(old.map_or(0, |v| v.value.len() + name.len()));
        self.held.add_unchecked(new);
    }

    pub(crate) fn ifs(&self) -> String {
        self.get_var("IFS").unwrap_or(" \t\n").to_string()
    }

    /// Exported variables plus `extra` (command-prefix assignments), sorted by name.
    pub(crate) fn exported_env(&self, extra: &[(String, String)]) -> Vec<(String, String)> {
        let mut m: BTreeMap<String, String> = self
            .vars
            .iter()
            .filter(|(_, v)| v.exported)
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
        m.into_iter().collect()
    }

    pub(crate) fn abs_path(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else if self.cwd.ends_with('/') {
            format!("{}{p}", self.cwd)
        } else {
            format!("{}/{p}", self.cwd)
        }
    }

    pub(crate) fn fd(&self, n: i32) -> Endpoint {
        self.fds
            .get(&n)
            .cloned()
            .unwrap_or_else(|| Arc::new(sio::Null))
    }

    /// Writes builtin output to stdout; a closed pipe ends this (sub)shell like SIGPIPE.
    pub(crate) fn out(&self, data: &[u8]) -> Result<(), Flow> {
        match self.fds.get(&1) {
            Some(ep) => match sio::write_all(ep, &crate::bytes::encoded_to_bytes(data)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Flow::Exit(141)),
                Err(_) => {
                    self.write_failed.set(true);
                    Ok(())
                }
            },
            None => Ok(()),
        }
    }

    /// Prints `sh: msg` to stderr.
    pub(crate) fn err(&self, msg: &str) {
        if let Some(ep) = self.fds.get(&2) {
            let line = format!("sh: {msg}\n");
            let _ = sio::write_all(ep, &crate::bytes::to_bytes(&line));
        }
    }

    /// Prints `msg` to stderr without the `sh: ` prefix (getopts diagnostics).
    pub(crate) fn raw_err(&self, msg: &str) {
        if let Some(ep) = self.fds.get(&2) {
            let line = format!("{msg}\n");
            let _ = sio::write_all(ep, &crate::bytes::to_bytes(&line));
        }
    }

    pub(crate) fn next_pid(&self) -> u32 {
        self.pids.fetch_add(1, Ordering::Relaxed)
    }

    // ---- running programs ------------------------------------------------------------

    /// Runs a parsed program, then the EXIT trap; returns the shell's exit status.
    pub(crate) fn run_toplevel(&mut self, prog: &ast::Program) -> i32 {
        let r = self.run_program(prog);
        self.finish(r)
    }

    /// Ends a shell or subshell: maps control flow to a status and runs the EXIT trap.
    pub(crate) fn finish(&mut self, r: Res) -> i32 {
        let mut st = match r {
            Ok(s) | Err(Flow::Exit(s)) | Err(Flow::Return(s)) => s,
            Err(Flow::Break(_)) | Err(Flow::Continue(_)) => self.status,
        };
        self.wait_all();
        if let Some(cmd) = self.traps.remove("EXIT") {
            self.status = st;
            if let Err(Flow::Exit(n)) = self.eval_string(&cmd) {
                st = n;
            }
        }
        st
    }

    pub(crate) fn run_program(&mut self, prog: &ast::Program) -> Res {
        let mut st = 0;
        for cc in &prog.complete_commands {
            st = self.run_list(cc)?;
        }
        Ok(st)
    }

    /// `eval`, traps: parses and runs `src` one nesting level deeper.
    pub(crate) fn eval_string(&mut self, src: &str) -> Res {
        let p = self.parse_or_fail(src)?;
        self.nested(|s| s.run_program(&p))
    }

    /// Parses `src`; a syntax error ends this shell with status 2, a script nesting too
    /// deep fails the step.
    pub(crate) fn parse_or_fail(&self, src: &str) -> Result<ast::Program, Flow> {
        match parse(src) {
            Ok(p) => Ok(p),
            Err(ParseError::Syntax(e)) => {
                self.err(&e);
                Err(Flow::Exit(2))
            }
            Err(ParseError::Limit(e)) => Err(self.trip(e)),
        }
    }

    pub(crate) fn run_list(&mut self, list: &ast::CompoundList) -> Res {
        let mut st = 0;
        for item in &list.0 {
            st = match item.1 {
                ast::SeparatorOperator::Async => self.spawn_background(&item.0)?,
                ast::SeparatorOperator::Sequence => self.run_and_or(&item.0)?,
            };
            self.status = st;
        }
        Ok(st)
    }

    fn spawn_background(&mut self, ao: &ast::AndOrList) -> Res {
        let mut sub = self.subshell()?;
        // Without job control a background job's stdin is /dev/null (POSIX 2.9.3.1).
        sub.fds.insert(0, Arc::new(sio::Null));
        let ao = ao.clone();
        let pid = self.next_pid();
        let place = self.enter_thread()?;
        let spawned = std::thread::Builder::new()
            .stack_size(limits::THREAD_STACK)
            .spawn(move || {
                let _place = place;
                let r = sub.run_and_or(&ao);
                sub.finish(r)
            });
        match spawned {
            Ok(h) => {
                self.jobs.0.push((pid, h));
                self.last_bg = Some(pid);
                Ok(0)
            }
            Err(e) => Err(self.trip(LimitError::Spawn {
                what: "a background job",
                reason: e.to_string(),
            })),
        }
    }

    pub(crate) fn wait_all(&mut self) -> i32 {
        let mut st = 0;
        for (_, h) in std::mem::take(&mut self.jobs.0) {
            st = h.join().unwrap_or(1);
        }
        st
    }

    pub(crate) fn wait_pid(&mut self, pid: u32) -> i32 {
        match self.jobs.0.iter().position(|(p, _)| *p == pid) {
            Some(i) => {
                let (_, h) = self.jobs.0.remove(i);
                h.join().unwrap_or(1)
            }
            None => 127,
        }
    }

    fn run_and_or(&mut self, ao: &ast::AndOrList) -> Res {
        let n = ao.additional.len();
        let mut st = self.run_pipeline_checked(&ao.first, n > 0)?;
        for (i, next) in ao.additional.iter().enumerate() {
            let cond = i + 1 < n;
            st = match next {
                ast::AndOr::And(p) if st == 0 => self.run_pipeline_checked(p, cond)?,
                ast::AndOr::Or(p) if st != 0 => self.run_pipeline_checked(p, cond)?,
                _ => st,
            };
        }
        Ok(st)
    }

    /// Runs a pipeline; `cond` is true when it is tested by `&&`/`||` (no `set -e`).
    fn run_pipeline_checked(&mut self, p: &ast::Pipeline, cond: bool) -> Res {
        let quiet = cond || p.bang;
        if quiet {
            self.no_errexit += 1;
        }
        let r = self.run_pipeline(p);
        if quiet {
            self.no_errexit -= 1;
        }
        let st = r?;
        self.status = st;
        if st != 0 && !quiet && self.no_errexit == 0 && fails_by_itself(p) {
            if let Some(cmd) = self.traps.get("ERR").cloned() {
                self.no_errexit += 1;
                let r = self.eval_string(&cmd);
                self.no_errexit -= 1;
                r?;
                self.status = st;
            }
            if self.opts.errexit {
                return Err(Flow::Exit(st));
            }
        }
        Ok(st)
    }

    fn run_pipeline(&mut self, p: &ast::Pipeline) -> Res {
        // brush-parser accepts a lone `!` as an empty pipeline: it runs nothing.
        let st = match p.seq.len() {
            0 => 0,
            1 => self.run_command(&p.seq[0])?,
            _ => self.run_concurrent(&p.seq)?,
        };
        Ok(if p.bang { (st == 0) as i32 } else { st })
    }

    /// Every stage is a subshell on its own thread, connected by host pipes; the last
    /// runs on this thread.
    fn run_concurrent(&mut self, seq: &[ast::Command]) -> Res {
        let last = seq.len() - 1;
        let pipefail = self.opts.pipefail;
        let statuses: Vec<i32> = std::thread::scope(|s| {
            let mut handles = Vec::new();
            let mut next_in: Option<Endpoint> = None;
            let mut failed = None;
            for cmd in &seq[..last] {
                match self.spawn_stage(s, cmd, &mut next_in) {
                    Ok(h) => handles.push(h),
                    Err(f) => {
                        failed = Some(f);
                        break;
                    }
                }
            }
            let last_status = match failed {
                Some(f) => Err(f),
                None => self.subshell().map(|mut sub| {
                    if let Some(r) = next_in.take() {
                        sub.fds.insert(0, r);
                    }
                    let r = sub.run_command(&seq[last]);
                    sub.finish(r)
                }),
            };
            // The stages see EOF or a broken pipe once the ends they talk to are gone.
            drop(next_in);
            let mut out: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap_or(1)).collect();
            out.push(last_status?);
            Ok(out)
        })?;
        Ok(if pipefail {
            statuses
                .iter()
                .rev()
                .find(|&&s| s != 0)
                .copied()
                .unwrap_or(0)
        } else {
            statuses[last]
        })
    }

    /// Starts one pipeline stage on its own thread, reading `next_in` and leaving the
    /// read end of its output pipe there for the next stage.
    fn spawn_stage<'s, 'e>(
        &self,
        scope: &'s std::thread::Scope<'s, 'e>,
        cmd: &'e ast::Command,
        next_in: &mut Option<Endpoint>,
    ) -> Result<std::thread::ScopedJoinHandle<'s, i32>, Flow> {
        let mut sub = self.subshell()?;
        if let Some(r) = next_in.take() {
            sub.fds.insert(0, r);
        }
        let (r, w) = self.host.pipe();
        sub.fds.insert(1, w);
        *next_in = Some(r);
        let place = self.enter_thread()?;
        std::thread::Builder::new()
            .stack_size(limits::THREAD_STACK)
            .spawn_scoped(scope, move || {
                let _place = place;
                let r = sub.run_command(cmd);
                sub.finish(r)
            })
            .map_err(|e| {
                self.trip(LimitError::Spawn {
                    what: "a pipeline stage",
                    reason: e.to_string(),
                })
            })
    }

    pub(crate) fn run_command(&mut self, cmd: &ast::Command) -> Res {
        // A bound hit anywhere in the step ends every shell of it.
        if self.budget().tripped().is_some() {
            return Err(Flow::Exit(2));
        }
        match cmd {
            ast::Command::Simple(sc) => self.run_simple(sc),
            ast::Command::Compound(cc, redirs) => {
                self.nested(|s| s.run_compound_redirected(cc, redirs.as_ref()))
            }
            ast::Command::Function(fd) => {
                self.funcs
                    .insert(fd.fname.value.clone(), Arc::new(fd.body.clone()));
                Ok(0)
            }
            ast::Command::ExtendedTest(..) => {
                self.err("[[: not supported; use [ or test");
                Ok(2)
            }
        }
    }

    pub(crate) fn run_compound_redirected(
        &mut self,
        cc: &ast::CompoundCommand,
        redirs: Option<&ast::RedirectList>,
    ) -> Res {
        let Some(redirs) = redirs else {
            return self.run_compound(cc);
        };
        let (applied, undo) = self.redirect(&redirs.0);
        let r = match applied {
            Ok(()) => self.run_compound(cc),
            Err(e) => e,
        };
        self.undo_redirs(undo);
        r
    }

    /// Applies one command's redirections; returns their outcome and what undoes them:
    /// the previous endpoint of each descriptor they changed. Only those are restored
    /// after the command, as in dash: what the command itself does to other descriptors
    /// persists (debconf's confmodule, sourced with `.`, does `exec 3>&1`, and its
    /// functions write to fd 3 afterwards).
    fn redirect(&mut self, redirs: &[ast::IoRedirect]) -> (Result<(), Res>, FdUndo) {
        // Most commands have none: no copy of the table for them.
        if redirs.is_empty() {
            return (Ok(()), Vec::new());
        }
        let before = self.fds.clone();
        let applied = self.apply_redirs(redirs);
        let mut undo: FdUndo = before
            .iter()
            .filter(|(n, ep)| self.fds.get(n).is_none_or(|now| !Arc::ptr_eq(now, ep)))
            .map(|(n, ep)| (*n, Some(ep.clone())))
            .collect();
        undo.extend(
            self.fds
                .keys()
                .filter(|n| !before.contains_key(n))
                .map(|n| (*n, None)),
        );
        (applied, undo)
    }

    fn undo_redirs(&mut self, undo: FdUndo) {
        for (n, ep) in undo {
            match ep {
                Some(ep) => self.fds.insert(n, ep),
                None => self.fds.remove(&n),
            };
        }
    }

    fn run_compound(&mut self, cc: &ast::CompoundCommand) -> Res {
        use ast::CompoundCommand as C;
        match cc {
            C::BraceGroup(b) => self.run_list(&b.list),
            C::Subshell(s) => {
                let mut sub = self.subshell()?;
                let r = sub.run_list(&s.list);
                Ok(sub.finish(r))
            }
            C::ForClause(f) => self.run_for(f),
            C::CaseClause(c) => self.run_case(c),
            C::IfClause(i) => self.run_if(i),
            C::WhileClause(w) => self.run_while(w, false),
            C::UntilClause(w) => self.run_while(w, true),
            C::Arithmetic(a) => {
                let v = self.arith(&a.expr.value)?;
                Ok((v == 0) as i32)
            }
            C::ArithmeticForClause(f) => self.run_arith_for(f),
            C::Coprocess(_) => {
                self.err("coproc: not supported");
                Ok(2)
            }
        }
    }

    fn run_cond(&mut self, list: &ast::CompoundList) -> Res {
        self.no_errexit += 1;
        let r = self.run_list(list);
        self.no_errexit -= 1;
        r
    }

    fn run_if(&mut self, i: &ast::IfClauseCommand) -> Res {
        if self.run_cond(&i.condition)? == 0 {
            return self.run_list(&i.then);
        }
        for e in i.elses.iter().flatten() {
            match &e.condition {
                Some(c) => {
                    if self.run_cond(c)? == 0 {
                        return self.run_list(&e.body);
                    }
                }
                None => return self.run_list(&e.body),
            }
        }
        Ok(0)
    }

    /// Runs a loop body; `Ok(false)` means break out of this loop.
    fn loop_body(&mut self, body: &ast::CompoundList, st: &mut i32) -> Result<bool, Flow> {
        if self.host.deadline_passed() {
            self.err("time limit exceeded");
            return Err(Flow::Exit(124));
        }
        self.loop_depth += 1;
        let r = self.run_list(body);
        self.loop_depth -= 1;
        match r {
            Ok(s) => {
                *st = s;
                Ok(true)
            }
            Err(Flow::Break(n)) if n > 1 => Err(Flow::Break(n - 1)),
            Err(Flow::Break(_)) => {
                *st = 0;
                Ok(false)
            }
            Err(Flow::Continue(n)) if n > 1 => Err(Flow::Continue(n - 1)),
            Err(Flow::Continue(_)) => {
                *st = 0;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    fn run_while(&mut self, w: &ast::WhileOrUntilClauseCommand, until: bool) -> Res {
        let mut st = 0;
        loop {
            let c = self.run_cond(&w.0)?;
            if (c == 0) == until {
                break;
            }
            if !self.loop_body(&w.1.list, &mut st)? {
                break;
            }
        }
        Ok(st)
    }

    fn run_for(&mut self, f: &ast::ForClauseCommand) -> Res {
        let values = match &f.values {
            Some(words) => {
                let ws: Vec<&ast::Word> = words.iter().collect();
                self.expand_words(&ws)?
            }
            None => self.params.clone(),
        };
        let mut st = 0;
        for v in values {
            if let Err(e) = self.set_var(&f.variable_name, v) {
                self.err(&e);
                return Err(Flow::Exit(2));
            }
            if !self.loop_body(&f.body.list, &mut st)? {
                break;
            }
        }
        Ok(st)
    }

    fn run_arith_for(&mut self, f: &ast::ArithmeticForClauseCommand) -> Res {
        if let Some(i) = &f.initializer {
            self.arith(&i.value)?;
        }
        let mut st = 0;
        loop {
            if let Some(c) = &f.condition
                && self.arith(&c.value)? == 0
            {
                break;
            }
            if !self.loop_body(&f.body.list, &mut st)? {
                break;
            }
            if let Some(u) = &f.updater {
                self.arith(&u.value)?;
            }
        }
        Ok(st)
    }

    fn run_case(&mut self, c: &ast::CaseClauseCommand) -> Res {
        let value = self.expand_string(&c.value.value)?;
        let mut fall = false;
        let mut st = 0;
        for item in &c.cases {
            if !fall {
                let mut hit = false;
                for p in &item.patterns {
                    let pat = self.expand_pattern(&p.value)?;
                    if crate::pattern::Pattern::new(&pat).matches(&value) {
                        hit = true;
                        break;
                    }
                }
                if !hit {
                    continue;
                }
            }
            if let Some(cmd) = &item.cmd {
                st = self.run_list(cmd)?;
            }
            match item.post_action {
                ast::CaseItemPostAction::ExitCase => return Ok(st),
                ast::CaseItemPostAction::UnconditionallyExecuteNextCaseItem => fall = true,
                ast::CaseItemPostAction::ContinueEvaluatingCases => fall = false,
            }
        }
        Ok(st)
    }

    // ---- simple commands --------------------------------------------------------------

    fn run_simple(&mut self, sc: &ast::SimpleCommand) -> Res {
        use ast::CommandPrefixOrSuffixItem as I;
        let mut assigns = Vec::new();
        let mut words: Vec<&ast::Word> = Vec::new();
        let mut redirs = Vec::new();
        for item in sc.prefix.iter().flat_map(|p| p.0.iter()) {
            match item {
                I::AssignmentWord(a, _) => assigns.push(a),
                I::IoRedirect(r) => redirs.push(r),
                I::Word(w) => words.push(w),
                I::ProcessSubstitution(..) => return self.unsupported("process substitution"),
            }
        }
        if let Some(w) = &sc.word_or_name {
            words.push(w);
        }
        for item in sc.suffix.iter().flat_map(|p| p.0.iter()) {
            match item {
                I::AssignmentWord(_, w) | I::Word(w) => words.push(w),
                I::IoRedirect(r) => redirs.push(r),
                I::ProcessSubstitution(..) => return self.unsupported("process substitution"),
            }
        }
        self.cmdsub_status = None;
        let argv = self.expand_words(&words)?;
        let mut avals = Vec::new();
        for a in &assigns {
            let ast::AssignmentName::VariableName(name) = &a.name else {
                return self.unsupported("array assignment");
            };
            let ast::AssignmentValue::Scalar(w) = &a.value else {
                return self.unsupported("array assignment");
            };
            let mut v = self.expand_assignment(&w.value)?;
            if a.append {
                v = format!("{}{v}", self.get_var(name).unwrap_or(""));
            }
            avals.push((name.clone(), v));
        }
        if self.opts.xtrace {
            self.trace(&avals, &argv);
        }
        let redirs: Vec<ast::IoRedirect> = redirs.iter().map(|r| (*r).clone()).collect();
        let (applied, mut undo) = self.redirect(&redirs);
        let r = match applied {
            Err(e) => e,
            Ok(()) if argv.is_empty() => {
                self.undo_redirs(std::mem::take(&mut undo));
                for (n, v) in avals {
                    if let Err(e) = self.set_var(&n, v) {
                        self.err(&e);
                        return Err(Flow::Exit(2));
                    }
                }
                Ok(self.cmdsub_status.unwrap_or(0))
            }
            Ok(()) => self.dispatch(&argv, avals),
        };
        // `exec` with no command keeps its redirections for the rest of the shell.
        if !matches!(argv.first().map(String::as_str), Some("exec")) || argv.len() > 1 {
            self.undo_redirs(undo);
        }
        r
    }

    fn unsupported(&self, what: &str) -> Res {
        self.err(&format!("{what}: not supported by kiln's shell"));
        Err(Flow::Exit(2))
    }

    fn trace(&self, avals: &[(String, String)], argv: &[String]) {
        let mut line = self.get_var("PS4").unwrap_or("+ ").to_string();
        let parts: Vec<String> = avals
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(argv.iter().cloned())
            .collect();
        line.push_str(&parts.join(" "));
        line.push('\n');
        let _ = sio::write_all(&self.fd(2), &crate::bytes::to_bytes(&line));
    }

    /// Runs `argv` with prefix assignments `avals`: special builtin, function, builtin,
    /// then a program.
    pub(crate) fn dispatch(&mut self, argv: &[String], avals: Vec<(String, String)>) -> Res {
        let name = argv[0].as_str();
        if crate::builtins::is_special(name) {
            for (n, v) in avals {
                if let Err(e) = self.set_var(&n, v) {
                    self.err(&e);
                    return Err(Flow::Exit(2));
                }
            }
            return self.builtin(argv);
        }
        if let Some(body) = self.funcs.get(name).cloned() {
            return self.with_temp_vars(avals, |s| s.call_function(&body, argv));
        }
        if crate::builtins::is_regular(name) {
            return self.with_temp_vars(avals, |s| s.builtin(argv));
        }
        self.run_external(argv, &avals)
    }

    fn with_temp_vars(
        &mut self,
        avals: Vec<(String, String)>,
        f: impl FnOnce(&mut Self) -> Res,
    ) -> Res {
        let mut saved = Vec::new();
        for (n, v) in avals {
            saved.push((n.clone(), self.vars.get(&n).cloned()));
            if let Err(e) = self.set_var(&n, v) {
                self.err(&e);
                return Err(Flow::Exit(2));
            }
            if let Some(var) = self.vars.get_mut(&n) {
                var.exported = true;
            }
        }
        let r = f(self);
        for (n, old) in saved.into_iter().rev() {
            self.restore_var(&n, old);
        }
        r
    }

    pub(crate) fn call_function(&mut self, body: &ast::FunctionBody, argv: &[String]) -> Res {
        if self.host.deadline_passed() {
            self.err("time limit exceeded");
            return Err(Flow::Exit(124));
        }
        let saved_params = std::mem::replace(&mut self.params, argv[1..].to_vec());
        let saved_loop = std::mem::replace(&mut self.loop_depth, 0);
        self.locals.push(Vec::new());
        self.func_depth += 1;
        let r = self.nested(|s| s.run_compound_redirected(&body.0, body.1.as_ref()));
        self.func_depth -= 1;
        for (n, old) in self.locals.pop().unwrap_or_default().into_iter().rev() {
            self.restore_var(&n, old);
        }
        self.loop_depth = saved_loop;
        self.params = saved_params;
        match r {
            Err(Flow::Return(n)) => Ok(n),
            other => other,
        }
    }

    fn stdio(&self) -> [Endpoint; 3] {
        [self.fd(0), self.fd(1), self.fd(2)]
    }

    pub(crate) fn run_external(&mut self, argv: &[String], avals: &[(String, String)]) -> Res {
        let name = argv[0].as_str();
        if is_shell_name(name) {
            return self.nested(|s| {
                let mut child = s.child(s.stdio());
                child.bash = base_name(name) == "bash";
                child.arg0 = name.to_owned();
                for (k, v) in avals {
                    child.set_var_raw(k, v.clone());
                    if let Some(var) = child.vars.get_mut(k) {
                        var.exported = true;
                    }
                }
                Ok(child.run_shell_args(&argv[1..]))
            });
        }
        let path_var = self
            .get_var("PATH")
            .unwrap_or(crate::DEFAULT_PATH)
            .to_string();
        match self.host.resolve(name, &path_var, &self.cwd) {
            Resolved::Program(p) => {
                let env = self.exported_env(avals);
                let spawn = Spawn {
                    program: &p,
                    argv,
                    env: &env,
                    cwd: &self.cwd,
                    stdio: self.stdio(),
                    passed: self.inherited_fds(),
                    umask: self.umask,
                };
                // The runtime (and a guest spawning commands back into the shell) runs on
                // this stack.
                let host = self.host.clone();
                let r = stacker::maybe_grow(limits::SPAWN_RED_ZONE, limits::STACK_SEGMENT, || {
                    host.spawn(spawn)
                });
                match r {
                    Ok(st) => Ok(st),
                    Err(e) => {
                        self.err(&format!("{name}: {}", io_message(&e)));
                        Ok(126)
                    }
                }
            }
            Resolved::Script {
                path,
                interpreter,
                arg,
            } => {
                let mut full = vec![interpreter.clone()];
                full.extend(arg);
                full.push(path);
                full.extend(argv[1..].iter().cloned());
                if is_shell_name(&interpreter) {
                    self.run_external(&full, avals)
                } else {
                    match self.host.resolve(&interpreter, &path_var, &self.cwd) {
                        Resolved::Program(_) | Resolved::NotWasm(_) => {
                            self.run_external(&full, avals)
                        }
                        _ => {
                            self.err(&format!("{name}: {interpreter}: bad interpreter"));
                            Ok(127)
                        }
                    }
                }
            }
            Resolved::NotWasm(path) => self.run_non_wasm(&path, argv, avals),
            Resolved::Denied(_) => {
                self.err(&format!("{name}: Permission denied"));
                Ok(126)
            }
            Resolved::NotFound => {
                self.err(&format!("{name}: not found"));
                Ok(127)
            }
        }
    }

    /// A file that is neither wasm nor `#!`: not executable -> EACCES; a native binary
    /// -> kiln's explanation; any other executable file is a shell script (POSIX ENOEXEC).
    fn run_non_wasm(&mut self, path: &str, argv: &[String], avals: &[(String, String)]) -> Res {
        let abs = self.abs_path(path);
        let mode = self.host.stat(&abs, true).map(|s| s.mode).unwrap_or(0);
        if mode & 0o111 == 0 {
            self.err(&format!("{}: Permission denied", argv[0]));
            return Ok(126);
        }
        let mut head = [0u8; 4];
        let n = self
            .host
            .open(
                &abs,
                crate::host::OpenMode {
                    read: true,
                    ..Default::default()
                },
                0,
            )
            .and_then(|ep| ep.read(&mut head))
            .unwrap_or(0);
        if is_native_binary(&head[..n]) {
            self.err(&format!(
                "{path}: cannot execute native binary: kiln runs only WebAssembly (WASI) programs"
            ));
            return Ok(126);
        }
        let mut full = vec!["sh".to_string(), path.to_string()];
        full.extend(argv[1..].iter().cloned());
        self.run_external(&full, avals)
    }

    /// `sh [-eux] [-o opt] (-c script [name args...] | file [args...] | < stdin)`.
    pub(crate) fn run_shell_args(&mut self, args: &[String]) -> i32 {
        let src = match self.invocation(args) {
            Ok(Source::Command(s)) => s,
            Ok(Source::File(file)) => match self.host.read_file(&self.abs_path(&file)) {
                Ok(b) => crate::bytes::from_bytes(&b),
                Err(_) => {
                    self.err(&format!("cannot open {file}: No such file"));
                    return 2;
                }
            },
            Ok(Source::Stdin) => {
                let mut b = Vec::new();
                let _ = sio::read_to_end(&self.fd(0), &mut b);
                crate::bytes::from_bytes(&b)
            }
            Err(msg) => {
                self.err(&msg);
                return 2;
            }
        };
        match self.parse_or_fail(&src) {
            Ok(p) => self.run_toplevel(&p),
            Err(_) => 2,
        }
    }

    /// Applies the options of `sh args...` to this shell (`-eux`, `-o pipefail`, also
    /// inside a cluster as in `-euo pipefail`), sets `$0` and the positional parameters,
    /// and says where the commands come from. An unknown option is an error, as in dash.
    pub(crate) fn invocation(&mut self, args: &[String]) -> Result<Source, String> {
        let mut i = 0;
        let mut want_c = false;
        let mut want_s = false;
        while let Some(a) = args.get(i) {
            if a == "--" || a == "-" {
                i += 1;
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                check_long_option(long)?;
                i += 1;
                continue;
            }
            let on = a.starts_with('-');
            if a.len() < 2 || !(on || a.starts_with('+')) {
                break;
            }
            i += 1;
            for c in a[1..].chars() {
                match c {
                    'c' => want_c = true,
                    's' => want_s = true,
                    // Login, interactive, privileged: nothing a step's shell does
                    // differently.
                    'l' | 'i' | 'p' => {}
                    'o' => {
                        let name = args.get(i).ok_or("-o: option requires an argument")?;
                        i += 1;
                        self.set_option_name(name, on)?;
                    }
                    c => self.set_option_char(c, on)?,
                }
            }
        }
        let rest = &args[i..];
        if want_c {
            let s = rest.first().ok_or("-c requires an argument")?;
            if let Some(n) = rest.get(1) {
                self.arg0 = n.clone();
            }
            self.params = rest.iter().skip(2).cloned().collect();
            return Ok(Source::Command(s.clone()));
        }
        // `sh -s a b`: commands from stdin, the operands are the positional parameters.
        let Some(file) = rest.first().filter(|_| !want_s) else {
            self.params = rest.to_vec();
            return Ok(Source::Stdin);
        };
        self.arg0 = file.clone();
        self.params = rest[1..].to_vec();
        Ok(Source::File(file.clone()))
    }
}
