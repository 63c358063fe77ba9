//! kiln-shell: the POSIX shell that interprets `RUN` scripts on the host.
//!
//! Scripts are parsed with `brush-parser`; expansion, redirections, pipelines (each stage
//! on its own thread, joined by in-memory pipes), control flow and builtins run here, and
//! every external command is handed to a [`Host`] — in kiln a fresh WebAssembly instance
//! over the step's virtual filesystem ([`RuntimeHost`]).
//!
//! It is NOT a process-level shell: there are no signals, job control, interactive
//! features, arrays, `[[ ]]`, aliases or process substitution, and external programs only
//! see fds 0-2.

mod arith;
mod builtins;
mod bytes;
mod dparen;
mod expand;
pub mod host;
mod interp;
pub mod io;
pub mod limits;
pub mod memhost;
mod pattern;
mod printf;
mod test_cmd;
#[cfg(feature = "runtime")]
mod vm;

use std::sync::Arc;

pub use host::{FileKind, FileStat, Host, OpenMode, Program, Resolved, Spawn};
pub use io::Endpoint;
pub use limits::LimitError;
#[cfg(feature = "runtime")]
pub use vm::RuntimeHost;

/// `PATH` when the environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Exit status of a script (0-255).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus(pub i32);

impl ExitStatus {
    /// True for status 0.
    pub fn success(self) -> bool {
        self.0 == 0
    }
}

/// Errors that stop a script before it runs.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The script does not parse.
    #[error("shell {0}")]
    Syntax(String),
    /// Exec-form `RUN []` with no arguments.
    #[error("empty command")]
    EmptyCommand,
    /// The script hit one of the shell's bounds (see [`limits`]).
    #[error("{0}")]
    Limit(#[from] LimitError),
}

/// How a shell starts.
#[derive(Clone)]
pub struct ShellOptions {
    /// Environment (all exported).
    pub env: Vec<(String, String)>,
    /// Working directory (absolute path in the step filesystem).
    pub cwd: String,
    /// Standard input.
    pub stdin: Endpoint,
    /// Standard output.
    pub stdout: Endpoint,
    /// Standard error.
    pub stderr: Endpoint,
    /// File creation mask.
    pub umask: u32,
    /// Bytes of shell values the step may hold (see [`limits::DEFAULT_MEMORY_LIMIT`]).
    pub memory_limit: usize,
}

/// Shows the environment's names, never its values: an `env=` secret is one of them.
impl std::fmt::Debug for ShellOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ShellOptions")
            .field("env", &names)
            .field("cwd", &self.cwd)
            .field("umask", &format_args!("{:03o}", self.umask))
            .field("memory_limit", &self.memory_limit)
            .finish_non_exhaustive()
    }
}

impl Default for ShellOptions {
    fn default() -> Self {
        ShellOptions {
            env: Vec::new(),
            cwd: "/".into(),
            stdin: Arc::new(io::Null),
            stdout: Arc::new(io::Null),
            stderr: Arc::new(io::Null),
            umask: 0o022,
            memory_limit: limits::DEFAULT_MEMORY_LIMIT,
        }
    }
}

/// A shell over one step: see the crate docs.
pub struct Shell {
    interp: interp::Interp,
}

impl Shell {
    /// A shell whose commands run through `host`.
    pub fn new(host: Arc<dyn Host>, opts: ShellOptions) -> Shell {
        let mut interp = interp::Interp::new(
            host,
            &opts.env,
            &opts.cwd,
            [opts.stdin, opts.stdout, opts.stderr],
        );
        interp.umask = opts.umask;
        interp
            .held
            .rebind(Arc::new(limits::Budget::new(opts.memory_limit)));
        Shell { interp }
    }

    /// A shell for one build step on kiln's runtime: programs are wasm processes over
    /// `vfs` with `limits` and `network`, and commands spawned by guests come back here
    /// (each process carries the shell as its launcher; the runtime keeps none).
    #[cfg(feature = "runtime")]
    pub fn on_runtime(
        runtime: kiln_runtime::Runtime,
        vfs: kiln_runtime::Vfs,
        limits: kiln_runtime::Limits,
        network: kiln_runtime::NetworkPolicy,
        opts: ShellOptions,
    ) -> Shell {
        Shell::new(
            Arc::new(RuntimeHost::new(runtime, vfs, limits, network)),
            opts,
        )
    }

    /// Exports `name` with `value` given as bytes, exactly (non-UTF-8 bytes included):
    /// for a secret exposed as a variable (`RUN --mount=type=secret,env=VAR`), which the
    /// engine keeps out of plain strings until the shell takes it. Replaces any variable
    /// of that name.
    pub fn export_bytes(&mut self, name: &str, value: &[u8]) {
        let var = interp::Var {
            value: bytes::from_bytes(value),
            exported: true,
            readonly: false,
        };
        self.interp.restore_var(name, Some(var));
    }

    /// Runs a `RUN` script like `/bin/sh -c script`.
    pub fn run_script(&mut self, script: &str) -> Result<ExitStatus, ShellError> {
        self.run_source(&bytes::from_str(script))
    }

    /// Runs a shell-form `RUN` as BuildKit does: the stage's `SHELL` with the script as
    /// its last argument. A `SHELL` naming sh, bash, dash or ash is this interpreter with
    /// the `SHELL`'s options applied (`-euxc`, `-o pipefail -c`; bash's `echo` for bash);
    /// any other program runs with its arguments and the script, as BuildKit runs it.
    pub fn run_with_shell(
        &mut self,
        shell: &[String],
        script: &str,
    ) -> Result<ExitStatus, ShellError> {
        let argv: Vec<String> = shell
            .iter()
            .map(String::as_str)
            .chain([script])
            .map(|a| bytes::from_str(a).into_owned())
            .collect();
        match shell.first() {
            Some(prog) if interp::is_shell_name(prog) => {
                self.interp.bash = interp::base_name(prog) == "bash";
                self.interp.arg0.clone_from(&argv[0]);
                match self.interp.invocation(&argv[1..]) {
                    Ok(interp::Source::Command(src)) => self.run_source(&src),
                    // `SHELL ["sh"]` reads a file (or stdin): the general path does that.
                    Ok(_) => self.run_argv(&argv),
                    Err(msg) => {
                        self.interp.err(&msg);
                        Ok(ExitStatus(2))
                    }
                }
            }
            _ => self.run_argv(&argv),
        }
    }

    /// Runs script text already in the shell's byte mapping (see `bytes`).
    fn run_source(&mut self, script: &str) -> Result<ExitStatus, ShellError> {
        let prog = interp::parse(script).map_err(|e| match e {
            interp::ParseError::Syntax(m) => ShellError::Syntax(m),
            interp::ParseError::Limit(l) => ShellError::Limit(l),
        })?;
        let status = self.interp.run_toplevel(&prog);
        self.limit_hit()?;
        Ok(ExitStatus(status))
    }

    /// The bound the script hit, if any: the step fails with it whatever its status.
    fn limit_hit(&self) -> Result<(), ShellError> {
        match self.interp.budget().tripped() {
            Some(e) => Err(ShellError::Limit(e.clone())),
            None => Ok(()),
        }
    }

    /// Runs exec-form `RUN ["prog", "arg"]`: no shell processing, but `sh -c` in it comes
    /// back to this interpreter.
    pub fn run_argv(&mut self, argv: &[String]) -> Result<ExitStatus, ShellError> {
        if argv.is_empty() {
            return Err(ShellError::EmptyCommand);
        }
        let r = self.interp.run_external(argv, &[]);
        let status = self.interp.finish(r);
        self.limit_hit()?;
        Ok(ExitStatus(status))
    }
}

/// Runs `argv` as a command "process" (a builtin, `sh -c ...`, or a program found on
/// `PATH`) with its own environment and stdio: what the runtime's launcher calls when a
/// guest spawns a command.
#[cfg(feature = "runtime")]
fn run_command_process(
    host: Arc<dyn Host>,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    stdio: [Endpoint; 3],
    passed: Vec<(i32, Endpoint)>,
    umask: u32,
) -> i32 {
    if argv.is_empty() {
        return 0;
    }
    let mut it = interp::Interp::new(host, env, cwd, stdio);
    // A shell a guest spawns inherits the guest's umask and descriptors, as across exec.
    it.umask = umask;
    it.fds.extend(passed);
    let r = it.dispatch(argv, Vec::new());
    it.finish(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_bytes_reach_the_script_exactly() {
        let out = io::Capture::new();
        let host = Arc::new(memhost::MemHost::new(1 << 10, None));
        let mut sh = Shell::new(
            host,
            ShellOptions {
                env: vec![("T".into(), "plain".into())],
                stdout: out.clone(),
                ..ShellOptions::default()
            },
        );
        sh.export_bytes("T", b"a\xffb\xf4\x8f\xbc\x80c");
        let status = sh.run_script("printf %s \"$T\"").unwrap();
        assert!(status.success());
        // The stray byte and the bytes of an escape code point both come back as given.
        assert_eq!(out.take(), b"a\xffb\xf4\x8f\xbc\x80c");
        sh.run_script("export -p").unwrap();
        let listed = String::from_utf8_lossy(&out.take()).into_owned();
        assert!(listed.contains("export T="), "{listed}");
    }

    #[test]
    fn a_child_shell_inherits_descriptors_3_to_9_as_dash() {
        let out = io::Capture::new();
        let host = Arc::new(memhost::MemHost::new(1 << 10, None));
        let mut sh = Shell::new(
            host,
            ShellOptions {
                stdout: out.clone(),
                ..ShellOptions::default()
            },
        );
        // debconf's confmodule: fd 3 is the protocol channel, stdout goes to stderr.
        let script = "exec 3>&1 1>&2; sh -c 'echo child >&3'; exec 9>&3; sh -c 'echo nine >&9'";
        let status = sh.run_script(script).unwrap();
        assert!(status.success());
        assert_eq!(out.take(), b"child\nnine\n");
    }

    /// Runs `script` under `SHELL` `shell`; returns the status, stdout and stderr.
    fn under_shell(shell: &[&str], script: &str) -> (i32, String, String) {
        let (out, err) = (io::Capture::new(), io::Capture::new());
        let host = Arc::new(memhost::MemHost::new(1 << 10, None));
        let mut sh = Shell::new(
            host,
            ShellOptions {
                stdout: out.clone(),
                stderr: err.clone(),
                ..ShellOptions::default()
            },
        );
        let shell: Vec<String> = shell.iter().map(|s| s.to_string()).collect();
        let status = sh.run_with_shell(&shell, script).unwrap();
        let text = |c: &io::Capture| String::from_utf8(c.take()).unwrap();
        (status.0, text(&out), text(&err))
    }

    #[test]
    fn a_shell_takes_the_options_of_the_shell_instruction() {
        let unset = "echo a; echo \"$NOPE\"; echo b";
        assert_eq!(under_shell(&["/bin/sh", "-c"], unset).1, "a\n\nb\n");
        let (st, out, err) = under_shell(&["/bin/sh", "-euxc"], unset);
        assert_eq!((st, out.as_str()), (2, "a\n"));
        assert!(
            err.starts_with("+ echo a\n") && err.contains("NOPE"),
            "{err}"
        );
        let fails_first = "false | true; echo $?";
        assert_eq!(under_shell(&["/bin/sh", "-c"], fails_first).1, "0\n");
        for pipefail in [
            &["/bin/bash", "-o", "pipefail", "-c"][..],
            &["/bin/bash", "-uo", "pipefail", "-c"],
            &["bash", "--login", "-o", "pipefail", "-c"],
            &["/bin/bash", "-E", "-o", "posix", "-o", "pipefail", "-c"],
        ] {
            assert_eq!(under_shell(pipefail, fails_first).1, "1\n", "{pipefail:?}");
        }
        let errexit = "false; echo after";
        assert_eq!(
            under_shell(&["/bin/sh", "-o", "errexit", "-c"], errexit).0,
            1
        );
        assert_eq!(
            under_shell(&["/bin/sh", "-e", "+e", "-c"], errexit).1,
            "after\n"
        );
        // bash's echo takes no escapes; dash's does.
        assert_eq!(
            under_shell(&["/bin/bash", "-c"], "echo 'a\\tb'").1,
            "a\\tb\n"
        );
        assert_eq!(under_shell(&["/bin/sh", "-c"], "echo 'a\\tb'").1, "a\tb\n");
        // `$0` and the positional parameters after the script, as `sh -c` gives them.
        let params = under_shell(&["/bin/sh", "-c", "echo $0 $1", "name", "one"], "ignored");
        assert_eq!(params.1, "name one\n");
        // `sh -s`: the script from stdin, the operands as parameters (the in-memory
        // host's stdin is empty, so nothing runs but the parameters are set first).
        let mut interp = interp::Interp::new(
            Arc::new(memhost::MemHost::new(1 << 10, None)),
            &[],
            "/",
            [Arc::new(io::Null), Arc::new(io::Null), Arc::new(io::Null)],
        );
        let args = ["-s".to_string(), "a".into(), "b".into()];
        assert!(matches!(
            interp.invocation(&args),
            Ok(interp::Source::Stdin)
        ));
        assert_eq!(interp.params, ["a", "b"]);
    }

    #[test]
    fn an_unknown_shell_option_fails_the_script_and_other_programs_run_as_themselves() {
        let (st, out, err) = under_shell(&["/bin/sh", "-Q", "-c"], "echo never");
        assert_eq!((st, out.as_str()), (2, ""));
        assert!(err.contains("Illegal option -Q"), "{err}");
        assert_eq!(under_shell(&["bash", "--rcfile", "-c"], "echo never").0, 2);
        // Anything else gets the script as an argument; the in-memory host has no programs.
        let (st, _, err) = under_shell(&["/usr/bin/python3", "-c"], "print(1)");
        assert_eq!(st, 127);
        assert!(err.contains("/usr/bin/python3: not found"), "{err}");
    }

    #[test]
    fn shell_options_show_env_names_never_values() {
        let value = "s3cr3t-token-value";
        let opts = ShellOptions {
            env: vec![
                ("TOKEN".into(), value.into()),
                ("HOME".into(), "/root".into()),
            ],
            ..Default::default()
        };
        for shown in [format!("{opts:?}"), format!("{opts:#?}")] {
            assert!(
                !shown.contains(value) && !shown.contains("/root"),
                "{shown}"
            );
            assert!(
                shown.contains("\"TOKEN\"") && shown.contains("\"HOME\""),
                "{shown}"
            );
        }
    }
}
