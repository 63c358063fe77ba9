//! What a process is made of ([`ProcessSpec`]), its limits, and how it ends.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::engine::Runtime;
use crate::error::RuntimeError;
use crate::stdio::Stdio;
use crate::vfs::Vfs;
use crate::wasi_p1::Stop;

/// The program a process runs.
#[derive(Clone)]
pub enum Program {
    /// Module bytes already in memory; `name` is used in messages.
    Module { name: String, bytes: Arc<[u8]> },
    /// A file of the step filesystem holding a wasm module (resolved by
    /// [`crate::Runtime::resolve_command`]).
    Path(String),
    /// One of kiln's bundled tools, by name (`ls`, `sha256sum`).
    Bundled(String),
}

impl Program {
    pub(crate) fn display_name(&self) -> String {
        match self {
            Program::Module { name, .. } => name.clone(),
            Program::Path(p) => p.clone(),
            Program::Bundled(n) => n.clone(),
        }
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Module { name, bytes } => write!(f, "Module({name}, {} bytes)", bytes.len()),
            Program::Path(p) => write!(f, "Path({p})"),
            Program::Bundled(n) => write!(f, "Bundled({n})"),
        }
    }
}

/// Per-step counters shared by every process started with clones of one [`Limits`].
#[derive(Debug, Default)]
struct Counters {
    output: AtomicU64,
    live: AtomicU32,
}

/// Resource limits. Clones share the output and process counters, so giving every
/// process of a step a clone of the step's `Limits` makes those limits per step.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Linear memory per instance, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock deadline; processes still running then are stopped.
    pub deadline: Option<Instant>,
    /// Bytes of stdout/stderr that may go to capture buffers and sinks (memory, logs).
    pub output_bytes: u64,
    /// Open file descriptors per process.
    pub open_fds: u32,
    /// Processes alive at once (including spawned children).
    pub processes: u32,
    /// Set by whoever started the build to stop it: processes stop as at a deadline.
    pub cancel: Cancel,
    counters: Arc<Counters>,
}

/// A handle that stops every process given a clone of it: running wasm at its next
/// epoch tick, a sleeping `poll_oneoff` at its next wake-up, the shell between commands.
/// Clones share one flag; cancelling cannot be undone.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks every process holding a clone to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 4 << 30,
            deadline: None,
            output_bytes: 1 << 30,
            open_fds: 1024,
            processes: 512,
            cancel: Cancel::default(),
            counters: Arc::default(),
        }
    }
}

impl Limits {
    /// Why a process must stop now, if it must: cancelled, or past its deadline.
    pub(crate) fn stop_due(&self, now: Instant) -> Option<Stop> {
        if self.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else if self.deadline.is_some_and(|d| now >= d) {
            Some(Stop::Deadline)
        } else {
            None
        }
    }

    /// Counts `n` output bytes; false once the limit is passed.
    pub(crate) fn charge_output(&self, n: usize) -> bool {
        let before = self.counters.output.fetch_add(n as u64, Ordering::Relaxed);
        before.saturating_add(n as u64) <= self.output_bytes
    }

    /// Takes a place in the step's process count for `program` (the shell also takes
    /// one for each of its own threads: pipeline stages and background jobs).
    pub fn enter(&self, program: &str) -> Result<ProcessSlot, RuntimeError> {
        let live = self.counters.live.fetch_add(1, Ordering::AcqRel);
        let slot = ProcessSlot(self.counters.clone());
        if live >= self.processes {
            return Err(RuntimeError::ProcessLimit {
                program: program.into(),
                limit: self.processes,
            });
        }
        Ok(slot)
    }
}

/// Holds one place in the process count while a process runs.
pub struct ProcessSlot(Arc<Counters>);

impl Drop for ProcessSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a process may make HTTP requests through `kiln_v1.http_request`.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    pub enabled: bool,
    /// Host names allowed (exact, case-insensitive); empty means any host.
    pub allowed_hosts: Vec<String>,
}

impl NetworkPolicy {
    pub fn allows(&self, host: &str) -> bool {
        self.enabled
            && (self.allowed_hosts.is_empty()
                || self
                    .allowed_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(host)))
    }
}

/// Everything needed to run one process.
#[derive(Clone)]
pub struct ProcessSpec {
    pub program: Program,
    /// `argv[0]` first. For bundled tools `argv[0]` is replaced by the tool name.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Absolute working directory in the step filesystem. `PWD` is set to it unless
    /// `env` has one (see ABI.md: guests chdir to `$PWD` at startup).
    pub cwd: String,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub limits: Limits,
    pub network: NetworkPolicy,
    /// Runs the commands this process spawns (`kiln_v1.spawn`) and, through it, theirs;
    /// `None`: the runtime resolves and runs them itself. The launcher travels with the
    /// process and is dropped with it, so the runtime never holds the embedder.
    pub launcher: Option<Arc<dyn Launcher>>,
}

impl ProcessSpec {
    /// A spec with null stdio, cwd `/`, no env and default limits.
    pub fn new(program: Program, argv: Vec<String>) -> ProcessSpec {
        ProcessSpec {
            program,
            argv,
            env: Vec::new(),
            cwd: "/".into(),
            stdin: Stdio::Null,
            stdout: Stdio::Null,
            stderr: Stdio::Null,
            limits: Limits::default(),
            network: NetworkPolicy::default(),
            launcher: None,
        }
    }
}

/// How a process ended: its exit status (0-255), from returning from `_start` (0) or
/// from `proc_exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus(pub u8);

impl ExitStatus {
    pub fn success(self) -> bool {
        self.0 == 0
    }
    pub fn code(self) -> i32 {
        i32::from(self.0)
    }
}

/// A command a guest asked to run (`kiln_v1.spawn`), for the embedder's [`Launcher`].
#[derive(Clone)]
pub struct LaunchRequest {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub limits: Limits,
    pub network: NetworkPolicy,
}

/// Runs commands spawned by guests (env, xargs, find -exec, `sh -c`). The shell passes
/// itself in [`ProcessSpec::launcher`] so those go through its builtins, PATH lookup and
/// script interpreter. Implementations report a command that cannot be found or run the
/// way a shell does (message on `stderr`, status 127/126). `runtime` is the runtime the
/// spawning process runs on: a launcher needs no runtime of its own.
pub trait Launcher: Send + Sync {
    fn launch(
        &self,
        runtime: &Runtime,
        vfs: &Vfs,
        request: LaunchRequest,
    ) -> Result<ExitStatus, RuntimeError>;
}

/// Shows the names of an environment, never its values (a secret can be one): the one
/// way kiln's Debug output shows an environment.
pub struct EnvNames<'a, V>(pub &'a [(String, V)]);

impl<V> fmt::Debug for EnvNames<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// Shows a command's name and how many arguments follow it: an argument can hold a
/// secret value the shell expanded.
struct ArgvShape<'a>(&'a [String]);

impl fmt::Debug for ArgvShape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_first() {
            Some((arg0, rest)) => write!(f, "[{arg0:?}, +{} args]", rest.len()),
            None => f.write_str("[]"),
        }
    }
}

/// What a command is made of, as [`ProcessSpec`], [`LaunchRequest`] and
/// [`crate::ModuleRun`] show it: env names, never values.
pub(crate) struct CommandView<'a> {
    pub(crate) argv: &'a [String],
    pub(crate) env: &'a [(String, String)],
    pub(crate) cwd: &'a str,
    pub(crate) stdio: [&'a Stdio; 3],
    pub(crate) limits: &'a Limits,
    pub(crate) network: &'a NetworkPolicy,
}

/// The [`CommandView`] of a struct with the command fields (same names in both).
macro_rules! command_view {
    ($s:expr) => {
        CommandView {
            argv: &$s.argv,
            env: &$s.env,
            cwd: &$s.cwd,
            stdio: [&$s.stdin, &$s.stdout, &$s.stderr],
            limits: &$s.limits,
            network: &$s.network,
        }
    };
}
pub(crate) use command_view;

impl CommandView<'_> {
    pub(crate) fn fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("argv", &ArgvShape(self.argv))
            .field("env", &EnvNames(self.env))
            .field("cwd", &self.cwd)
            .field("stdio", &self.stdio)
            .field("limits", self.limits)
            .field("network", self.network);
    }
}

impl fmt::Debug for ProcessSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ProcessSpec");
        d.field("program", &self.program);
        command_view!(self).fields(&mut d);
        d.field("launcher", &self.launcher.is_some()).finish()
    }
}

impl fmt::Debug for LaunchRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("LaunchRequest");
        command_view!(self).fields(&mut d);
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands for a secret: it goes into env, argv and stdin and must not be shown.
    const VALUE: &str = "s3cr3t-token-value";

    fn env() -> Vec<(String, String)> {
        vec![
            ("PATH".into(), "/bin".into()),
            ("TOKEN".into(), VALUE.into()),
        ]
    }

    fn argv() -> Vec<String> {
        vec!["sh".into(), "-c".into(), format!("echo {VALUE}")]
    }

    /// Both renderings hide the value and show the env names and the command name.
    fn assert_redacted(shown: [String; 2]) {
        for s in shown {
            assert!(!s.contains(VALUE), "{s}");
            assert!(s.contains("\"TOKEN\"") && s.contains("\"PATH\""), "{s}");
            assert!(s.contains("\"sh\"") && s.contains("+2 args"), "{s}");
        }
    }

    #[test]
    fn a_process_spec_shows_env_names_never_values() {
        let mut spec = ProcessSpec::new(Program::Bundled("sh".into()), argv());
        spec.env = env();
        spec.stdin = Stdio::Bytes(VALUE.as_bytes().into());
        assert_redacted([format!("{spec:?}"), format!("{spec:#?}")]);
    }

    #[test]
    fn a_launch_request_shows_env_names_never_values() {
        let req = LaunchRequest {
            argv: argv(),
            env: env(),
            cwd: "/".into(),
            stdin: Stdio::Bytes(VALUE.as_bytes().into()),
            stdout: Stdio::Null,
            stderr: Stdio::Null,
            limits: Limits::default(),
            network: NetworkPolicy::default(),
        };
        assert_redacted([format!("{req:?}"), format!("{req:#?}")]);
    }

    #[test]
    fn a_module_run_shows_env_names_never_values() {
        let run = crate::ModuleRun {
            name: "m".into(),
            bytes: Arc::from(VALUE.as_bytes()),
            argv: argv(),
            env: env(),
            cwd: "/".into(),
            stdin: Stdio::Null,
            stdout: Stdio::Null,
            stderr: Stdio::Null,
            limits: Limits::default(),
            network: NetworkPolicy::default(),
            preopens: Vec::new(),
        };
        assert_redacted([format!("{run:?}"), format!("{run:#?}")]);
    }
}
