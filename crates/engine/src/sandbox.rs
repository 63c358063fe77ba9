//! The sandbox a `RUN` step runs in: its tree shared with the runtime, the mount table
//! (secrets as in-memory files, caches, tmpfs, binds), the environment, and the shell with
//! its output going through the redactor to the progress events.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_dockerfile::graph::StageSource;
use kiln_dockerfile::{Mount, RunProgram};
use kiln_fs::{Timestamp, Tree};
use kiln_runtime::{MountTable, NetworkPolicy, Vfs};
use kiln_shell::{Shell, ShellOptions};

use crate::engine::Shared_;
use crate::error::StepError;
use crate::progress::{Event, OutputTail, StepId, Stream};
use crate::redact::Redactor;
use crate::state::StageState;
use crate::step;

/// How many lines of a failing step's output the error shows.
const TAIL_LINES: usize = 12;

/// Bounds for every RUN step of a build, from `kiln build --step-timeout` and `--memory`.
/// `None` keeps the runtime's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepLimits {
    /// Wall-clock time one RUN step may take. Off by default, as in BuildKit: a build
    /// tool cannot know how long a legitimate step takes, so only the user can say.
    pub timeout: Option<Duration>,
    /// Linear memory of each wasm instance of a step, and the shell's budget for its
    /// own values.
    pub memory_bytes: Option<u64>,
    /// Bytes of file data a step may write to disk (`kiln_fs::DEFAULT_DISK_QUOTA` when
    /// `None`).
    pub disk_bytes: Option<u64>,
}

impl StepLimits {
    /// The runtime limits for a step starting now.
    fn for_step(&self, now: Instant) -> kiln_runtime::Limits {
        let mut limits = kiln_runtime::Limits::default();
        if let Some(bytes) = self.memory_bytes {
            limits.memory_bytes = bytes;
        }
        limits.deadline = self.timeout.map(|t| now + t);
        limits
    }

    /// A fresh disk quota for one step's filesystem.
    fn disk_quota(&self) -> kiln_fs::DiskQuota {
        self.disk_bytes
            .map_or_else(kiln_fs::DiskQuota::default, kiln_fs::DiskQuota::new)
    }

    /// The shell's budget for its own values (variables, `$(…)` captures): `--memory`
    /// bounds them as it bounds each wasm process, else the shell's default.
    fn shell_memory(&self) -> usize {
        self.memory_bytes
            .map_or(kiln_shell::limits::DEFAULT_MEMORY_LIMIT, |b| {
                usize::try_from(b).unwrap_or(usize::MAX)
            })
    }

    /// The error of a step that was still running at its deadline.
    pub(crate) fn timed_out(&self) -> StepError {
        StepError::Timeout {
            limit: self.timeout.unwrap_or_default(),
        }
    }
}

/// What a RUN step runs with, besides its mounts and environment.
pub(crate) struct Exec {
    pub(crate) network: NetworkPolicy,
    pub(crate) cwd: String,
    pub(crate) user: String,
    pub(crate) shell: Vec<String>,
    /// Where each `--mount=from=` of this step comes from, by mount number.
    pub(crate) mount_sources: BTreeMap<usize, StageSource>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn execute(
    shared: &Shared_,
    state: &mut StageState,
    tree: &mut Tree,
    mounts: &[Mount],
    program: &RunProgram,
    mut env: Vec<(String, String)>,
    step: &Exec,
    id: &StepId,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<(), StepError> {
    let (uid, gid) = if step.user.is_empty() {
        (0, 0)
    } else {
        crate::passwd::resolve_owner(tree, &step.user)?
    };
    // Docker gives every step a HOME: the user's home from /etc/passwd, else /root.
    if !env.iter().any(|(k, _)| k == "HOME") {
        let home = crate::passwd::home_of(tree, uid)?.unwrap_or_else(|| "/root".into());
        env.push(("HOME".into(), home));
    }
    // Every step gets its own disk budget, whatever earlier steps wrote.
    let quota = shared.req.step_limits.disk_quota();
    tree.set_disk_quota(quota.clone());
    // The step's tree is shared with the runtime for the duration of the step.
    let owned = std::mem::replace(tree, Tree::new(state.store()));
    let shared_tree = Arc::new(parking_lot::Mutex::new(owned));
    let table = mount_table(
        shared,
        state,
        mounts,
        &mut env,
        &step.mount_sources,
        deps,
        &quota,
    )?;
    let vfs = Vfs::new(shared_tree.clone(), table).with_user(uid, gid);

    let out = Arc::new(OutputSink::new(shared, id.clone(), Stream::Stdout));
    let err = Arc::new(OutputSink::new(shared, id.clone(), Stream::Stderr));
    // `on_runtime` also makes the shell the runtime's launcher, so `env sh -c`, `xargs`
    // and `find -exec` inside guests come back to this interpreter.
    let limits = shared.req.step_limits.for_step(Instant::now());
    let deadline = limits.deadline;
    let mut sh = Shell::on_runtime(
        shared.runtime.clone(),
        vfs,
        limits,
        step.network.clone(),
        ShellOptions {
            env,
            cwd: step.cwd.clone(),
            stdout: out.clone(),
            stderr: err.clone(),
            memory_limit: shared.req.step_limits.shell_memory(),
            ..ShellOptions::default()
        },
    );
    let status = match program {
        RunProgram::Exec(argv) => sh.run_argv(argv).map_err(StepError::from),
        RunProgram::Shell(script) => {
            check_shell(&step.shell).and_then(|()| Ok(sh.run_script(script)?))
        }
        RunProgram::ScriptFile { content, .. } => sh.run_script(content).map_err(StepError::from),
    };
    drop(sh);
    out.finish();
    err.finish();
    *tree = Arc::try_unwrap(shared_tree)
        .map(parking_lot::Mutex::into_inner)
        .map_err(|_| StepError::Internal("the step's processes did not finish"))?;
    tree.set_clock(Timestamp::from_secs(shared.req.epoch));
    let failed = !matches!(&status, Ok(s) if s.success());
    if failed && deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(shared.req.step_limits.timed_out());
    }
    if failed && quota.exceeded() {
        return Err(StepError::DiskQuota {
            limit: quota.limit(),
        });
    }
    let status = status?;
    if !status.success() {
        let mut tail = out.tail();
        tail.extend(err.tail());
        let skip = tail.len().saturating_sub(TAIL_LINES);
        return Err(StepError::Exit {
            code: status.0,
            output_tail: tail.into_iter().skip(skip).collect(),
        });
    }
    Ok(())
}

/// kiln interprets POSIX shell itself; a SHELL of `sh` or `bash` with `-c` is that shell.
fn check_shell(shell: &[String]) -> Result<(), StepError> {
    let name = shell
        .first()
        .map(|s| s.rsplit('/').next().unwrap_or(s))
        .unwrap_or("");
    if matches!(name, "sh" | "bash" | "dash" | "ash")
        && shell.get(1).map(String::as_str) == Some("-c")
    {
        Ok(())
    } else {
        Err(StepError::Unsupported {
            feature: format!("SHELL {shell:?}"),
            instead: "RUN scripts run in kiln's own POSIX shell; use SHELL [\"/bin/sh\", \"-c\"] (or bash)",
        })
    }
}

fn mount_table(
    shared: &Shared_,
    state: &StageState,
    mounts: &[Mount],
    env: &mut Vec<(String, String)>,
    sources: &BTreeMap<usize, StageSource>,
    deps: &BTreeMap<usize, Arc<StageState>>,
    quota: &kiln_fs::DiskQuota,
) -> Result<MountTable, StepError> {
    let mut table = MountTable::new();
    // tmpfs mounts share the step's disk budget with its tree.
    table.set_disk_quota(quota.clone());
    for (n, m) in mounts.iter().enumerate() {
        match m {
            Mount::Secret {
                id,
                target,
                env: var,
                required,
                mode,
                uid,
                gid,
            } => {
                let Some(value) = shared.req.secrets.get(id.as_str()) else {
                    if *required {
                        return Err(StepError::MissingSecret {
                            id: id.as_str().to_owned(),
                        });
                    }
                    continue;
                };
                if let Some(var) = var {
                    let text = String::from_utf8_lossy(value.expose()).into_owned();
                    env.retain(|(k, _)| k != var);
                    env.push((var.clone(), text));
                }
                let target = match (target, var) {
                    (Some(t), _) => Some(t.clone()),
                    (None, None) => Some(format!("/run/secrets/{}", id.as_str())),
                    (None, Some(_)) => None,
                };
                if let Some(t) = target {
                    table
                        .add_secret(
                            &t,
                            kiln_runtime::Zeroizing::new(value.expose().to_vec()),
                            *mode,
                            *uid,
                            *gid,
                        )
                        .map_err(|source| StepError::SecretMount {
                            id: id.as_str().to_owned(),
                            source,
                        })?;
                }
            }
            Mount::Tmpfs { target, .. } => table.add_tmpfs(target, state.store())?,
            Mount::Cache { id, target, .. } => {
                let tree = shared.cache_mount(id)?;
                table.add_cache(target, tree)?;
            }
            Mount::Bind {
                target,
                source,
                from,
                readwrite,
            } => {
                let from = from.as_ref().and_then(|_| sources.get(&n));
                bind_mount(shared, &mut table, target, source, from, *readwrite, deps)?
            }
            Mount::Ssh { required, .. } => {
                if *required {
                    return Err(StepError::Unsupported {
                        feature: "RUN --mount=type=ssh".into(),
                        instead: "kiln has no ssh agent forwarding; fetch with https, or make the mount optional (required=false)",
                    });
                }
            }
        }
    }
    Ok(table)
}

fn bind_mount(
    shared: &Shared_,
    table: &mut MountTable,
    target: &str,
    source: &str,
    from: Option<&StageSource>,
    readwrite: bool,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<(), StepError> {
    match from {
        None => {
            // The context is copied into a private tree exactly as COPY would copy it
            // (`.dockerignore` applied, special files refused, times at the source date
            // epoch), never exposed as a host directory: a bind mount must not see more
            // of the host than COPY does. Writes (`rw` or not) land in this throwaway
            // tree only. `readwrite` therefore changes nothing here.
            let _ = readwrite;
            let tree = context_tree(shared, source)?;
            table
                .add_cache(target, Arc::new(parking_lot::Mutex::new(tree)))
                .map_err(StepError::from)
        }
        Some(from) if let Some(dir) = crate::images::local_context(shared, from) => {
            // `--build-context NAME=DIR`: that directory, seen as COPY would see it.
            let mtime = Timestamp::from_secs(shared.req.epoch);
            let tree = crate::copy::context_tree(&dir?, source, &shared.store, mtime)?;
            table
                .add_cache(target, Arc::new(parking_lot::Mutex::new(tree)))
                .map_err(StepError::from)
        }
        Some(from) => {
            // A stage or image: a private copy of its tree, so writes never reach it.
            let mut src = step::source_state(shared, from, deps)?;
            let snap = src.snapshot()?;
            let mut tree = Tree::from_snapshot(&snap);
            let root = tree.root();
            let sub = tree
                .resolve(root, source.as_bytes(), kiln_fs::Follow::Yes)
                .map_err(|e| StepError::BindSource {
                    path: source.to_owned(),
                    source: e,
                })?;
            if sub != root {
                return Err(StepError::Unsupported {
                    feature: "a bind mount of a subdirectory of a stage".into(),
                    instead: "mount the whole stage with source=/ and use the subdirectory under the target",
                });
            }
            table
                .add_cache(target, Arc::new(parking_lot::Mutex::new(tree)))
                .map_err(StepError::from)
        }
    }
}

/// The context directory `source` as a fresh tree: what a context bind mount shows.
fn context_tree(shared: &Shared_, source: &str) -> Result<Tree, StepError> {
    let mtime = Timestamp::from_secs(shared.req.epoch);
    Ok(crate::copy::context_tree(
        &shared.context,
        source,
        &shared.store,
        mtime,
    )?)
}

/// Forwards one output stream of a step to the progress view, redacted, and keeps its
/// last lines for the error message.
struct OutputSink {
    events: Arc<dyn crate::progress::EventSink>,
    step: StepId,
    stream: Stream,
    inner: Mutex<SinkState>,
}

struct SinkState {
    redactor: Redactor,
    tail: OutputTail,
}

impl OutputSink {
    fn new(shared: &Shared_, step: StepId, stream: Stream) -> Self {
        Self {
            events: shared.events.clone(),
            step,
            stream,
            inner: Mutex::new(SinkState {
                redactor: Redactor::new(shared.redact.clone()),
                tail: OutputTail::new(TAIL_LINES),
            }),
        }
    }

    fn emit(&self, state: &mut SinkState, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // Only the new bytes are scanned (a 100 MB line is not searched again per write).
        state.tail.push(bytes);
        let text = String::from_utf8_lossy(bytes).into_owned();
        self.events.emit(Event::StepOutput {
            step: self.step.clone(),
            stream: self.stream.clone(),
            text,
        });
    }

    fn finish(&self) {
        let Ok(mut state) = self.inner.lock() else {
            return;
        };
        let rest = state.redactor.finish();
        self.emit(&mut state, &rest);
        state.tail.finish();
    }

    fn tail(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|s| s.tail.lines())
            .unwrap_or_default()
    }
}

impl kiln_shell::io::Stream for OutputSink {
    fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut state) = self.inner.lock() {
            let safe = state.redactor.push(buf);
            self.emit(&mut state, &safe);
        }
        Ok(buf.len())
    }
}
