//! Running a process: load (cached), instantiate with fresh host state, call `_start`,
//! and turn the outcome into an exit status or a named limit.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, Trap, UpdateDeadline};

use sha2::{Digest as _, Sha256};

use crate::engine::{Persist, Runtime};
use crate::error::{Errno, RuntimeError};
use crate::process::{
    CommandView, ExitStatus, Limits, NetworkPolicy, ProcessSpec, Program, command_view,
};
use crate::stdio::Stdio;
use crate::vfs::{OpenOptions, Opened, Vfs};
use crate::wasi_p1::{Ctx, CtxInit, ProcExit, Stop};

/// Modules larger than this are refused rather than read into memory.
const MAX_MODULE_BYTES: u64 = 512 << 20;

/// One module run on its own, as `kiln run` or a conformance suite drives it.
#[derive(Clone)]
pub struct ModuleRun {
    pub name: String,
    pub bytes: Arc<[u8]>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub limits: Limits,
    pub network: NetworkPolicy,
    /// Extra preopened directories after `/` (fd 3): (name the guest sees, path in the
    /// Vfs). Test suites that look for a preopen by name need these.
    pub preopens: Vec<(String, String)>,
}

impl std::fmt::Debug for ModuleRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ModuleRun");
        d.field("name", &self.name)
            .field("bytes", &self.bytes.len());
        command_view!(self).fields(&mut d);
        d.field("preopens", &self.preopens).finish()
    }
}

impl Runtime {
    /// Runs a process to completion on the calling thread.
    pub fn run(&self, vfs: &Vfs, spec: ProcessSpec) -> Result<ExitStatus, RuntimeError> {
        self.run_inner(vfs, spec, Vec::new(), true)
    }

    /// Runs one module with the given filesystem (mounts included), args, env and stdio.
    /// The env is passed exactly as given (no `PWD` is added), as conformance suites
    /// expect.
    pub fn run_module(&self, vfs: &Vfs, run: ModuleRun) -> Result<ExitStatus, RuntimeError> {
        let spec = ProcessSpec {
            program: Program::Module {
                name: run.name,
                bytes: run.bytes,
            },
            argv: run.argv,
            env: run.env,
            cwd: run.cwd,
            stdin: run.stdin,
            stdout: run.stdout,
            stderr: run.stderr,
            limits: run.limits,
            network: run.network,
            launcher: None,
        };
        self.run_inner(vfs, spec, run.preopens, false)
    }

    fn run_inner(
        &self,
        vfs: &Vfs,
        spec: ProcessSpec,
        preopens: Vec<(String, String)>,
        add_pwd: bool,
    ) -> Result<ExitStatus, RuntimeError> {
        let program = spec.program.display_name();
        let _slot = spec.limits.enter(&program)?;
        let mut argv = spec.argv;
        let loaded = match &spec.program {
            // Bytes the embedder chose: it vouches for them, so they may be cached.
            Program::Module { name, bytes } => self.load(name, bytes, Persist::Yes)?,
            Program::Bundled(tool) => {
                let t = crate::bundled::lookup(tool).ok_or_else(|| RuntimeError::Spec {
                    program: tool.clone(),
                    reason: "kiln has no bundled tool of this name".into(),
                })?;
                match argv.first_mut() {
                    Some(a) => *a = t.argv0().to_owned(),
                    None => argv.push(t.argv0().to_owned()),
                }
                self.load_bundled(t.module)?
            }
            Program::Path(path) => {
                let (bytes, committed) = read_program(vfs, &spec.cwd, path)?;
                // Only the exact bytes of a base-image or committed-layer file may be
                // compiled into the on-disk cache; anything the step wrote (perhaps
                // from a secret) or a mount holds is compiled in memory only.
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                let persist = match committed {
                    Some(c) if c.as_bytes() == &digest => Persist::Yes,
                    _ => Persist::MemoryOnly,
                };
                self.load_with_digest(path, &bytes, digest, persist)?
            }
        };
        let mut env: Vec<Vec<u8>> = spec
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}").into_bytes())
            .collect();
        if add_pwd && !spec.env.iter().any(|(k, _)| k == "PWD") {
            env.push(format!("PWD={}", spec.cwd).into_bytes());
        }
        let limits = spec.limits.clone();
        let init = CtxInit {
            runtime: self.clone(),
            vfs: vfs.clone(),
            args: argv.into_iter().map(String::into_bytes).collect(),
            env,
            cwd: spec.cwd,
            stdio: [spec.stdin, spec.stdout, spec.stderr],
            limits: spec.limits.clone(),
            network: spec.network,
            launcher: spec.launcher,
        };
        let mut ctx = Ctx::new(init).map_err(|errno| RuntimeError::Load {
            program: program.clone(),
            errno,
        })?;
        ctx.add_preopens(&preopens)
            .map_err(|errno| RuntimeError::Spec {
                program: program.clone(),
                reason: format!("preopen: {errno}"),
            })?;
        let mut store = Store::new(&self.inner.engine, ctx);
        store.limiter(|c| &mut c.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut cx| match limits.stop_due(Instant::now()) {
            Some(stop) => {
                let e = wasmtime::format_err!("{stop}");
                cx.data_mut().stopped = Some(stop);
                Err(e)
            }
            None => Ok(UpdateDeadline::Continue(1)),
        });
        let outcome = self.start(&mut store, &loaded.pre, &program);
        let children = std::mem::take(&mut store.data_mut().children);
        let result = outcome.or_else(|e| classify(e, store.data(), &program, &spec.limits));
        drop(store);
        for (_, child) in children {
            let _ = child.join();
        }
        result
    }

    fn start(
        &self,
        store: &mut Store<Ctx>,
        pre: &wasmtime::InstancePre<Ctx>,
        program: &str,
    ) -> Result<ExitStatus, wasmtime::Error> {
        let instance = pre.instantiate(&mut *store)?;
        let memory = instance.get_memory(&mut *store, "memory");
        store.data_mut().memory = memory;
        let start = instance
            .get_typed_func::<(), ()>(&mut *store, "_start")
            .map_err(|_| {
                wasmtime::format_err!("{program}: module has no `_start` (not a WASI command)")
            })?;
        start.call(&mut *store, ())?;
        Ok(ExitStatus(0))
    }
}

fn classify(
    e: wasmtime::Error,
    ctx: &Ctx,
    program: &str,
    limits: &Limits,
) -> Result<ExitStatus, RuntimeError> {
    if let Some(exit) = e.downcast_ref::<ProcExit>() {
        return Ok(ExitStatus((exit.0 & 0xff) as u8));
    }
    let program = program.to_owned();
    match ctx.stopped {
        Some(Stop::Deadline) => return Err(RuntimeError::Deadline { program }),
        Some(Stop::Cancelled) => return Err(RuntimeError::Cancelled { program }),
        Some(Stop::Output) => {
            return Err(RuntimeError::OutputLimit {
                program,
                limit: limits.output_bytes,
            });
        }
        None => {}
    }
    if let Some(err) = e.downcast_ref::<RuntimeError>() {
        return Err(clone_limit_error(err, &program));
    }
    if ctx.limiter.hit {
        return Err(RuntimeError::MemoryLimit {
            program,
            limit: limits.memory_bytes,
        });
    }
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return Err(RuntimeError::Deadline { program });
    }
    Err(RuntimeError::Trap {
        program,
        reason: format!("{e:#}"),
    })
}

/// A child's limit error, re-raised in the parent (the step fails for the same reason).
fn clone_limit_error(e: &RuntimeError, program: &str) -> RuntimeError {
    let program = program.to_owned();
    match e {
        RuntimeError::Deadline { .. } => RuntimeError::Deadline { program },
        RuntimeError::Cancelled { .. } => RuntimeError::Cancelled { program },
        RuntimeError::OutputLimit { limit, .. } => RuntimeError::OutputLimit {
            program,
            limit: *limit,
        },
        RuntimeError::MemoryLimit { limit, .. } => RuntimeError::MemoryLimit {
            program,
            limit: *limit,
        },
        RuntimeError::ProcessLimit { limit, .. } => RuntimeError::ProcessLimit {
            program,
            limit: *limit,
        },
        other => RuntimeError::Trap {
            program,
            reason: other.to_string(),
        },
    }
}

/// A program file's bytes, and the digest its content has in the step's snapshot (see
/// [`crate::vfs::VfsFile::snapshot_digest`]).
fn read_program(
    vfs: &Vfs,
    cwd: &str,
    path: &str,
) -> Result<(Vec<u8>, Option<kiln_fs::Digest>), RuntimeError> {
    let load_err = |errno: Errno| RuntimeError::Load {
        program: path.to_owned(),
        errno,
    };
    let Opened::File(f) = vfs
        .open(cwd.as_bytes(), path.as_bytes(), &OpenOptions::read_only())
        .map_err(load_err)?
    else {
        return Err(load_err(Errno::ISDIR));
    };
    let size = f.stat().map_err(load_err)?.size;
    if size > MAX_MODULE_BYTES {
        return Err(load_err(Errno::FBIG));
    }
    let mut bytes = vec![0u8; size as usize];
    let mut done = 0;
    while done < bytes.len() {
        let n = f.read(&mut bytes[done..]).map_err(load_err)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    bytes.truncate(done);
    Ok((bytes, f.snapshot_digest()))
}
