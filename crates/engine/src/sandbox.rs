//! The sandbox a command runs in, written once for a `RUN` step and for `kiln run`
//! ([`Sandbox`]): the tree shared with the runtime under a mount table, the user and
//! `HOME` from the image's `/etc/passwd`, the environment (secrets kept as secret values
//! until the shell takes them), and kiln's shell. For `RUN` it also builds the mount
//! table (secrets as in-memory files, caches, tmpfs, binds) and sends the output through
//! the redactor to the progress events.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_dockerfile::graph::StageSource;
use kiln_dockerfile::{CacheSharing, Mount, RunProgram};
use kiln_fs::{Ino, Timestamp, Tree};
use kiln_runtime::Identity;
use kiln_runtime::{Access, EnvNames, MountTable, NetworkPolicy, Runtime, RuntimeError, Vfs};
use kiln_shell::{Endpoint, Shell, ShellOptions};

use crate::engine::Shared_;
use crate::error::StepError;
use crate::passwd;
use crate::places::CacheLayout;
use crate::progress::{Event, LineBuffer, OutputTail, StepId, Stream};
use crate::redact::Redactor;
use crate::secrets::SecretValue;
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
    pub(crate) fn disk_quota(&self) -> kiln_fs::DiskQuota {
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

/// What a RUN step runs: its program, mounts and environment, and where it runs.
pub(crate) struct Exec {
    pub(crate) program: RunProgram,
    /// Its `--mount`s, resolved.
    pub(crate) mounts: Vec<Mount>,
    /// The ARG and ENV values it sees (secrets given as `env=` come from its mounts).
    pub(crate) env: Vec<(String, String)>,
    pub(crate) network: NetworkPolicy,
    pub(crate) cwd: String,
    pub(crate) user: String,
    pub(crate) shell: Vec<String>,
    /// Where each `--mount=from=` of this step comes from, by mount number.
    pub(crate) mount_sources: BTreeMap<usize, StageSource>,
    /// `BUILDKIT_SANDBOX_HOSTNAME`, when the build sets one ([`sandbox_hostname`]).
    pub(crate) hostname: Option<String>,
}

/// The wasm runtime of a build or a `kiln run`: compiled modules cached under the cache
/// directory, and the guest's clock reading the source date epoch (so `date` in a step
/// is reproducible).
pub(crate) fn runtime(cache_dir: &Path, epoch: i64) -> Result<Runtime, RuntimeError> {
    Runtime::new(kiln_runtime::RuntimeConfig {
        cache_dir: Some(CacheLayout::new(cache_dir).modules()),
        realtime_epoch: epoch,
    })
}

/// Where a sandboxed command's standard streams go.
pub(crate) struct Stdio {
    pub(crate) stdin: Endpoint,
    pub(crate) stdout: Endpoint,
    pub(crate) stderr: Endpoint,
}

/// What a command runs with in the sandbox, the same for a `RUN` step and `kiln run`.
pub(crate) struct StepSpec {
    /// `USER` as written (`name`, `uid`, `user:group`); empty runs as root.
    pub(crate) user: String,
    pub(crate) env: Vec<(String, String)>,
    /// Secrets exposed as variables (`RUN --mount=type=secret,env=VAR`): they stay
    /// zeroised, redacting values until the shell takes them.
    pub(crate) secret_env: Vec<(String, SecretValue)>,
    pub(crate) cwd: String,
    pub(crate) network: NetworkPolicy,
    pub(crate) limits: kiln_runtime::Limits,
    /// Bytes of the shell's own values (variables, `$(…)` captures).
    pub(crate) shell_memory: usize,
    pub(crate) stdio: Stdio,
}

/// Names only: an environment can hold tokens, and a secret's value must never print.
impl fmt::Debug for StepSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepSpec")
            .field("user", &self.user)
            .field("env", &EnvNames(&self.env))
            .field("secret_env", &EnvNames(&self.secret_env))
            .field("cwd", &self.cwd)
            .field("network", &self.network.enabled)
            .finish_non_exhaustive()
    }
}

/// One command's sandbox: the filesystem shared with the runtime under its mount table,
/// the user and environment resolved against the image, and kiln's shell over them.
pub(crate) struct Sandbox {
    shell: Shell,
    tree: kiln_runtime::SharedTree,
}

impl Sandbox {
    /// Resolves `USER` and `HOME` against `tree`'s `/etc/passwd`, then takes `tree` (an
    /// empty tree over `store` stands in until [`Sandbox::close`] puts it back) and
    /// starts the shell. On an error `tree` is left as it was.
    pub(crate) fn open(
        runtime: Runtime,
        tree: &mut Tree,
        store: &Arc<kiln_fs::Store>,
        mounts: MountTable,
        spec: StepSpec,
    ) -> Result<Self, StepError> {
        let (uid, gid) = match spec.user.as_str() {
            "" => (0, 0),
            user => passwd::resolve_user(tree, user)?,
        };
        let groups = passwd::supplementary_groups(tree, &spec.user)?;
        let mut env = spec.env;
        // Docker gives every process a HOME: the user's home from /etc/passwd, else /root.
        if !env.iter().any(|(k, _)| k == "HOME") {
            let home = passwd::home_of(tree, uid)?.unwrap_or_else(|| "/root".into());
            env.push(("HOME".into(), home));
        }
        let owned = std::mem::replace(tree, Tree::new(store));
        let shared = Arc::new(parking_lot::Mutex::new(owned));
        let vfs = Vfs::new(shared.clone(), mounts).with_identity(Identity::new(uid, gid, groups));
        let options = ShellOptions {
            env,
            cwd: spec.cwd,
            stdin: spec.stdio.stdin,
            stdout: spec.stdio.stdout,
            stderr: spec.stdio.stderr,
            memory_limit: spec.shell_memory,
            ..ShellOptions::default()
        };
        // Guests that spawn a shell (`env sh -c`, `xargs`, `find -exec`) come back to
        // this interpreter.
        let mut shell = Shell::on_runtime(runtime, vfs, spec.limits, spec.network, options);
        for (name, value) in &spec.secret_env {
            shell.export_bytes(name, value.expose());
        }
        Ok(Self {
            shell,
            tree: shared,
        })
    }

    pub(crate) fn shell(&mut self) -> &mut Shell {
        &mut self.shell
    }

    /// Stops the shell and puts the filesystem back into `tree`.
    pub(crate) fn close(self, tree: &mut Tree) -> Result<(), StepError> {
        drop(self.shell);
        *tree = Arc::try_unwrap(self.tree)
            .map(parking_lot::Mutex::into_inner)
            .map_err(|_| StepError::Internal("the step's processes did not finish"))?;
        Ok(())
    }
}

pub(crate) fn execute(
    shared: &Shared_,
    state: &mut StageState,
    tree: &mut Tree,
    step: Exec,
    id: &StepId,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<(), StepError> {
    // Every step gets its own disk budget, whatever earlier steps wrote.
    let quota = shared.req.step_limits.disk_quota();
    tree.set_disk_quota(quota.clone());
    let (mut table, secret_env) = mount_table(
        shared,
        state,
        &step.mounts,
        &step.mount_sources,
        deps,
        &quota,
    )?;
    if has_etc(tree) {
        let hostname = step.hostname.as_deref().unwrap_or(HOSTNAME);
        add_host_files(&mut table, state.store(), hostname)?;
    }
    crate::run::add_script_file(&mut table, &step.program)?;
    let out = Arc::new(OutputSink::new(shared, id.clone(), Stream::Stdout));
    let err = Arc::new(OutputSink::new(shared, id.clone(), Stream::Stderr));
    let mut limits = shared.req.step_limits.for_step(Instant::now());
    limits.cancel = shared.req.cancel.clone();
    let deadline = limits.deadline;
    let spec = StepSpec {
        user: step.user,
        env: step.env,
        secret_env,
        cwd: step.cwd,
        network: step.network,
        limits,
        shell_memory: shared.req.step_limits.shell_memory(),
        stdio: Stdio {
            stdin: Arc::new(kiln_shell::io::Null),
            stdout: out.clone(),
            stderr: err.clone(),
        },
    };
    let mut sandbox = Sandbox::open(shared.runtime()?, tree, state.store(), table, spec)?;
    let status = crate::run::run_program(sandbox.shell(), &step.program, &step.shell);
    let closed = sandbox.close(tree);
    out.finish();
    err.finish();
    closed?;
    tree.set_clock(Timestamp::from_secs(shared.req.epoch));
    let failed = !matches!(&status, Ok(s) if s.success());
    if failed && shared.req.cancel.is_cancelled() {
        return Err(StepError::Cancelled);
    }
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
            command: crate::error::shown_command(&crate::history::run_argv(
                &step.shell,
                &step.program,
            )),
            code: status.0,
            output_tail: tail.into_iter().skip(skip).collect(),
        });
    }
    Ok(())
}

/// The host name a step sees: BuildKit's default.
const HOSTNAME: &str = "buildkitsandbox";

/// Linux's `HOST_NAME_MAX`: `sethostname` refuses a longer name, so BuildKit's step
/// would fail with it too.
const MAX_HOSTNAME: usize = 64;

/// The host name RUN steps see when the build sets one: the `BUILDKIT_SANDBOX_HOSTNAME`
/// build arg, as BuildKit's frontend reads it (the last one given; empty means the
/// default). A name must be letters, digits, `-` and `.`: it is written into
/// `/etc/hosts`, where a space or a newline would add names or lines.
pub(crate) fn sandbox_hostname(
    build_args: &[(String, String)],
) -> Result<Option<String>, StepError> {
    let given = build_args
        .iter()
        .rev()
        .find(|(k, _)| k == "BUILDKIT_SANDBOX_HOSTNAME");
    let Some((_, name)) = given.filter(|(_, v)| !v.is_empty()) else {
        return Ok(None);
    };
    let valid = name.len() <= MAX_HOSTNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return Err(StepError::Hostname(name.clone()));
    }
    Ok(Some(name.clone()))
}

/// Whether the step's tree has an `/etc` directory to hold [`add_host_files`]'s files.
/// Without one they are left out: a mount there would make `/etc` a synthesised,
/// read-only directory, and a step building an image from scratch must be able to write
/// `/etc/passwd`.
fn has_etc(tree: &mut Tree) -> bool {
    let root = tree.root();
    tree.resolve(root, b"/etc", kiln_fs::Follow::Yes)
        .and_then(|ino| tree.metadata(ino))
        .is_ok_and(|m| m.file_type == kiln_fs::FileType::Directory)
}

/// `/etc/hosts` as BuildKit's executor writes it, and `/etc/hostname`, as read-only files
/// mounted over whatever the image has, so they are never in a layer. BuildKit sets the
/// host name in the step's UTS namespace; a wasm guest has none, so kiln's `hostname`
/// reads `/etc/hostname`, which kiln provides where BuildKit leaves the image's. A
/// `--mount` of the step at either path wins.
fn add_host_files(
    table: &mut MountTable,
    store: &Arc<kiln_fs::Store>,
    hostname: &str,
) -> Result<(), StepError> {
    let files = [
        (
            "/etc/hosts",
            format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
        ),
        ("/etc/hostname", format!("{hostname}\n")),
    ];
    let tree = Arc::new(parking_lot::Mutex::new(Tree::scratch(store)));
    for (path, body) in files {
        let ino = {
            let mut t = tree.lock();
            let root = t.root();
            let name = path.rsplit('/').next().unwrap_or(path);
            let ino = t.create_file(root, name.as_bytes(), 0o644, 0, 0)?;
            t.write_at(ino, 0, body.as_bytes())?;
            ino
        };
        match table.add_tree(path, tree.clone(), Some(ino), Access::ReadOnly) {
            Ok(()) | Err(kiln_runtime::MountError::Duplicate(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The step's mount table, and the secrets it exposes as variables.
fn mount_table(
    shared: &Shared_,
    state: &StageState,
    mounts: &[Mount],
    sources: &BTreeMap<usize, StageSource>,
    deps: &BTreeMap<usize, Arc<StageState>>,
    quota: &kiln_fs::DiskQuota,
) -> Result<(MountTable, Vec<(String, SecretValue)>), StepError> {
    let mut table = MountTable::new();
    let mut secret_env = Vec::new();
    let mut caches = take_caches(shared, mounts, sources, deps)?;
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
                        return Err(StepError::MissingSecret { id: id.clone() });
                    }
                    continue;
                };
                if let Some(var) = var {
                    secret_env.push((var.clone(), value.clone()));
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
                            id: id.clone(),
                            source,
                        })?;
                }
            }
            Mount::Tmpfs { target, .. } => table.add_tmpfs(target, state.store())?,
            Mount::Cache {
                target, readonly, ..
            } => {
                let (tree, at) = caches
                    .remove(&n)
                    .ok_or(StepError::Internal("cache mount not taken"))?;
                table.add_tree(target, tree, at, access(!*readonly))?;
            }
            Mount::Bind {
                target,
                source,
                from,
                readwrite,
            } => {
                let from = from.as_ref().and_then(|_| sources.get(&n));
                let (tree, at) = mount_source(shared, source, from, deps)?;
                let tree = Arc::new(parking_lot::Mutex::new(tree));
                table.add_tree(target, tree, Some(at), access(*readwrite))?;
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
    Ok((table, secret_env))
}

/// A mount's access: a bind is read-only unless `rw` (a write fails with `EROFS`, as in
/// BuildKit), a cache is writable unless `ro`.
fn access(writable: bool) -> Access {
    if writable {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    }
}

/// What a bind mount of `source` shows: a private tree (so writes, with `rw`, never reach
/// the source and are discarded with the step) and the file or directory to mount.
/// The context (or a `--build-context NAME=DIR`) is copied exactly as COPY would copy it
/// (`.dockerignore` applied, special files refused, times at the source date epoch),
/// never exposed as a host directory: a bind mount must not see more of the host than
/// COPY does. A stage or image is its snapshot, opened in O(1).
fn mount_source(
    shared: &Shared_,
    source: &str,
    from: Option<&StageSource>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<(Tree, Ino), StepError> {
    let mtime = Timestamp::from_secs(shared.req.epoch);
    let copy = |dir: &crate::context::Context| -> Result<(Tree, Ino), StepError> {
        Ok(crate::copy::context_tree(
            dir,
            source,
            &shared.store,
            mtime,
        )?)
    };
    let Some(from) = from else {
        return copy(&shared.context);
    };
    if let Some(dir) = crate::images::local_context(shared, from) {
        return copy(&dir?);
    }
    let snap = step::source_state(shared, from, deps)?.snapshot()?;
    let mut tree = Tree::from_snapshot(&snap);
    let at = resolve_source(&mut tree, source)?;
    Ok((tree, at))
}

/// `source` in `tree`, symlinks followed inside the tree.
fn resolve_source(tree: &mut Tree, source: &str) -> Result<Ino, StepError> {
    let root = tree.root();
    tree.resolve(root, source.as_bytes(), kiln_fs::Follow::Yes)
        .map_err(|e| StepError::BindSource {
            path: source.to_owned(),
            source: e,
        })
}

/// A cache mount's tree and the inode to mount (`None`: the tree's root).
type TakenCache = (kiln_runtime::SharedTree, Option<Ino>);

/// Fills a new cache mount's tree.
type Fill<'a> = Box<dyn Fn() -> Result<Tree, StepError> + 'a>;

/// Takes every cache mount of the step, by its index in `mounts`, before any is mounted.
/// They are taken in one order for every step (by name), so two steps that lock the same
/// two caches never each hold one while waiting for the other.
fn take_caches(
    shared: &Shared_,
    mounts: &[Mount],
    sources: &BTreeMap<usize, StageSource>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<BTreeMap<usize, TakenCache>, StepError> {
    let mut wanted = Vec::new();
    for (n, m) in mounts.iter().enumerate() {
        let Mount::Cache {
            id,
            from,
            source,
            mode,
            uid,
            gid,
            sharing,
            ..
        } = m
        else {
            continue;
        };
        let from = from.as_ref().and_then(|_| sources.get(&n));
        let source = source.as_deref().unwrap_or("/");
        let spec = CacheSpec {
            id,
            sharing: *sharing,
            seed: Seed {
                uid: *uid,
                gid: *gid,
                mode: *mode & 0o7777,
            },
            from: from.map(|f| (f, source)),
        };
        let (name, fill) = cache_source(shared, &spec, deps)?;
        wanted.push((name, n, spec, fill));
    }
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    // A step mounting one cache twice holds it once (a `locked` cache would wait for
    // itself).
    let mut held: BTreeMap<String, kiln_runtime::SharedTree> = BTreeMap::new();
    let mut taken = BTreeMap::new();
    for (name, n, spec, fill) in wanted {
        let tree = match held.get(&name) {
            Some(tree) => tree.clone(),
            None => {
                let tree = shared.cache_mount(&name, spec.sharing, &*fill)?;
                held.insert(name, tree.clone());
                tree
            }
        };
        let at = match spec.from {
            // A context's source was copied as the tree itself.
            Some((from, _)) if crate::images::local_context(shared, from).is_some() => None,
            Some((_, source)) => Some(resolve_source(&mut tree.lock(), source)?),
            None => None,
        };
        taken.insert(n, (tree, at));
    }
    Ok(taken)
}

/// A cache mount's name and how a new one is filled. As in BuildKit, a cache is one per
/// id and per what it starts from: nothing, a directory owned `uid:gid` with `mode`
/// (when those differ from root's 0755), or `source` of a `from=` stage, image or build
/// context (a changed stage starts another cache). A new cache starts as that; an
/// existing one is reused as the last build left it.
fn cache_source<'a>(
    shared: &'a Shared_,
    spec: &CacheSpec<'a>,
    deps: &'a BTreeMap<usize, Arc<StageState>>,
) -> Result<(String, Fill<'a>), StepError> {
    let &CacheSpec { id, seed, from, .. } = spec;
    Ok(match from {
        None if seed == Seed::ROOT => (
            id.to_owned(),
            Box::new(move || Ok(Tree::new(&shared.store))),
        ),
        None => (
            format!(
                "{id} (uid {}, gid {}, mode {:o})",
                seed.uid, seed.gid, seed.mode
            ),
            Box::new(move || seed.directory(&shared.store)),
        ),
        Some((from, source)) => (
            format!("{id} (from {})", seed_key(shared, from, source, deps)?),
            Box::new(move || Ok(mount_source(shared, source, Some(from), deps)?.0)),
        ),
    })
}

/// A cache mount as the step asks for it.
struct CacheSpec<'a> {
    id: &'a str,
    sharing: CacheSharing,
    seed: Seed,
    /// The `from=` stage, image or context and the `source` path in it.
    from: Option<(&'a StageSource, &'a str)>,
}

/// The owner and mode a new cache mount's directory gets (`uid`, `gid`, `mode`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Seed {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl Seed {
    /// BuildKit's defaults, which an empty new directory has anyway.
    const ROOT: Seed = Seed {
        uid: 0,
        gid: 0,
        mode: 0o755,
    };

    /// A new cache: an empty directory with this owner and mode.
    fn directory(self, store: &Arc<kiln_fs::Store>) -> Result<Tree, StepError> {
        let mut tree = Tree::new(store);
        let root = tree.root();
        tree.chmod(root, self.mode)?;
        tree.chown(root, Some(self.uid), Some(self.gid))?;
        Ok(tree)
    }
}

/// What a `from=` cache starts from, for its name: the stage's or image's key, or the
/// content digest of a `--build-context` directory's `source`.
fn seed_key(
    shared: &Shared_,
    from: &StageSource,
    source: &str,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<String, StepError> {
    let key = match crate::images::local_context(shared, from) {
        Some(dir) => {
            let dir = dir?;
            hex::encode(dir.digest_sources(&dir.resolve(source)?)?)
        }
        None => step::source_state(shared, from, deps)?.key.to_hex(),
    };
    Ok(format!("{key}:{source}"))
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
    /// Redacted output waiting for its line's end: the view shows whole lines.
    lines: LineBuffer,
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
                lines: LineBuffer::default(),
            }),
        }
    }

    /// Takes redacted output: into the error's tail at once, to the view once its
    /// lines end.
    fn emit(&self, state: &mut SinkState, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // Only the new bytes are scanned (a 100 MB line is not searched again per write).
        state.tail.push(bytes);
        let ready = state.lines.push(bytes);
        self.send(&ready);
    }

    /// Shows output whose lines are complete (or cut at the bound) in the progress view.
    fn send(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
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
        let last = state.lines.finish();
        self.send(&last);
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

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_fs::{Follow, Store};
    use kiln_shell::io::Capture;

    /// A tree with an `/etc/passwd` naming `app` (uid 1000, home /home/app).
    fn image(store: &Arc<Store>) -> Tree {
        let mut t = Tree::new(store);
        // Where anyone may create files, as in a real image.
        t.mkdir(t.root(), b"tmp", 0o1777, 0, 0).unwrap();
        let etc = t.mkdir(t.root(), b"etc", 0o755, 0, 0).unwrap();
        let f = t.create_file(etc, b"passwd", 0o644, 0, 0).unwrap();
        t.write_at(
            f,
            0,
            b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        t
    }

    fn spec(user: &str, out: &Arc<Capture>) -> StepSpec {
        StepSpec {
            user: user.into(),
            env: vec![("PLAIN".into(), "visible-value".into())],
            secret_env: vec![("TOKEN".into(), SecretValue::new(b"s3cr\xffet".to_vec()))],
            cwd: "/".into(),
            network: NetworkPolicy {
                enabled: false,
                allowed_hosts: Vec::new(),
            },
            limits: kiln_runtime::Limits::default(),
            shell_memory: kiln_shell::limits::DEFAULT_MEMORY_LIMIT,
            stdio: Stdio {
                stdin: Arc::new(kiln_shell::io::Null),
                stdout: out.clone(),
                stderr: Arc::new(kiln_shell::io::Null),
            },
        }
    }

    fn open(tree: &mut Tree, store: &Arc<Store>, spec: StepSpec) -> Result<Sandbox, StepError> {
        let cache = tempfile::tempdir().unwrap();
        let runtime = runtime(cache.path(), 0).unwrap();
        Sandbox::open(runtime, tree, store, MountTable::new(), spec)
    }

    #[test]
    fn user_home_and_secret_env_come_from_one_place() {
        let store = Store::temp().unwrap();
        let mut tree = image(&store);
        let out = Capture::new();
        let mut sandbox = open(&mut tree, &store, spec("app", &out)).unwrap();
        let script = "printf '%s|%s' \"$HOME\" \"$TOKEN\"; : > /tmp/made";
        assert!(sandbox.shell().run_script(script).unwrap().success());
        sandbox.close(&mut tree).unwrap();
        // The secret's bytes reach the script exactly, not through a lossy string.
        assert_eq!(out.take(), b"/home/app|s3cr\xffet");
        // The user's ids reach the filesystem: what the command creates is theirs.
        let made = tree.resolve(tree.root(), b"/tmp/made", Follow::No).unwrap();
        let meta = tree.metadata(made).unwrap();
        assert_eq!((meta.uid, meta.gid), (1000, 1001));
    }

    #[test]
    fn root_gets_its_home_and_an_explicit_home_wins() {
        let store = Store::temp().unwrap();
        let mut tree = image(&store);
        let out = Capture::new();
        let mut s = spec("", &out);
        let mut sandbox = open(&mut tree, &store, s).unwrap();
        sandbox.shell().run_script("printf %s \"$HOME\"").unwrap();
        sandbox.close(&mut tree).unwrap();
        assert_eq!(out.take(), b"/root");
        s = spec("app", &out);
        s.env.push(("HOME".into(), "/custom".into()));
        let mut sandbox = open(&mut tree, &store, s).unwrap();
        sandbox.shell().run_script("printf %s \"$HOME\"").unwrap();
        sandbox.close(&mut tree).unwrap();
        assert_eq!(out.take(), b"/custom");
    }

    #[test]
    fn an_unknown_user_fails_and_leaves_the_tree() {
        let store = Store::temp().unwrap();
        let mut tree = image(&store);
        let out = Capture::new();
        let err = open(&mut tree, &store, spec("nobody", &out)).err().unwrap();
        assert!(
            matches!(&err, StepError::Passwd(crate::passwd::PasswdError::UnknownUser(u)) if u == "nobody"),
            "{err}"
        );
        assert!(
            tree.resolve(tree.root(), b"/etc/passwd", Follow::No)
                .is_ok()
        );
    }

    #[test]
    fn debug_shows_names_never_values() {
        let out = Capture::new();
        let shown = format!("{:?}", spec("app", &out));
        assert!(
            shown.contains("PLAIN") && shown.contains("TOKEN"),
            "{shown}"
        );
        assert!(!shown.contains("visible-value"), "{shown}");
        assert!(!shown.contains("s3cr"), "{shown}");
    }

    #[test]
    fn a_shell_is_interpreted_and_any_other_program_runs_as_itself() {
        let store = Store::temp().unwrap();
        let mut tree = image(&store);
        let out = Capture::new();
        let mut sandbox = open(&mut tree, &store, spec("", &out)).unwrap();
        let script = RunProgram::Shell("exit 3".into());
        let sh = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let run = |sandbox: &mut Sandbox, shell: &[&str]| {
            crate::run::run_program(sandbox.shell(), &script, &sh(shell))
                .unwrap()
                .0
        };
        assert_eq!(run(&mut sandbox, &["/bin/bash", "-o", "pipefail", "-c"]), 3);
        assert_eq!(run(&mut sandbox, &["/bin/sh", "-euxc"]), 3);
        // Not a shell: BuildKit runs it with the script as its argument; here it is not
        // found.
        assert_eq!(run(&mut sandbox, &["pwsh", "-Command"]), 127);
        sandbox.close(&mut tree).unwrap();
    }

    #[test]
    fn durations_show_as_the_flag_takes_them() {
        let limits = StepLimits {
            timeout: Some(Duration::from_secs(90)),
            ..StepLimits::default()
        };
        assert!(limits.timed_out().to_string().contains("1m30s"));
        let now = Instant::now();
        assert_eq!(
            limits.for_step(now).deadline,
            Some(now + Duration::from_secs(90))
        );
    }
}
