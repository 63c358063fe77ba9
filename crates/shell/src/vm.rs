//! [`Host`] over kiln-runtime: redirections, globbing and `test` go through the step's
//! [`Vfs`] (so mounts behave as they do for guests) and every program is a wasm process.
//! Also the runtime's [`Launcher`], so commands spawned by guests (env, xargs,
//! `find -exec`, `sh -c`) come back through the shell.

use std::io::{self, Read, Write};
use std::sync::Arc;

use kiln_runtime::{
    Errno, LaunchRequest, Launcher, Limits, NetworkPolicy, OpenOptions, Opened, PipeReader,
    PipeWriter, ProcessSpec, Resolved as RtResolved, Runtime, RuntimeError, Stdio, Vfs, VfsFile,
};

use crate::host::{FileKind, FileStat, Host, OpenMode, Program, Resolved, Spawn};
use crate::io::{self as sio, Endpoint, Stream};

/// Runs a step's commands on kiln's wasm runtime over its virtual filesystem.
#[derive(Clone)]
pub struct RuntimeHost {
    runtime: Runtime,
    vfs: Vfs,
    limits: Limits,
    network: NetworkPolicy,
}

impl RuntimeHost {
    /// A host for one step; `limits` and `network` apply to every process it starts,
    /// and commands those processes spawn come back through the shell.
    pub fn new(runtime: Runtime, vfs: Vfs, limits: Limits, network: NetworkPolicy) -> RuntimeHost {
        RuntimeHost {
            runtime,
            vfs,
            limits,
            network,
        }
    }
}

fn errno_to_io(e: Errno) -> io::Error {
    let kind = match e {
        Errno::NOENT => io::ErrorKind::NotFound,
        Errno::EXIST => io::ErrorKind::AlreadyExists,
        Errno::ACCES | Errno::PERM | Errno::ROFS => io::ErrorKind::PermissionDenied,
        Errno::ISDIR => io::ErrorKind::IsADirectory,
        Errno::NOTDIR => io::ErrorKind::NotADirectory,
        Errno::PIPE => io::ErrorKind::BrokenPipe,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.message())
}

fn kind_of(ft: kiln_fs::FileType) -> FileKind {
    use kiln_fs::FileType as T;
    match ft {
        T::Directory => FileKind::Dir,
        T::Symlink => FileKind::Symlink,
        T::Fifo => FileKind::Fifo,
        T::CharDevice => FileKind::CharDevice,
        T::BlockDevice => FileKind::BlockDevice,
        _ => FileKind::File,
    }
}

/// The read end of a runtime pipe, usable by builtins and handed to processes as is.
struct RtPipeRead(Arc<PipeReader>);
impl Stream for RtPipeRead {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut r: &PipeReader = &self.0;
        r.read(buf)
    }
}

/// The write end of a runtime pipe.
struct RtPipeWrite(PipeWriter);
impl Stream for RtPipeWrite {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut w: &PipeWriter = &self.0;
        w.write(buf)
    }
}

/// A file of the step filesystem (redirection target).
struct RtFile(VfsFile);
impl Stream for RtFile {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(errno_to_io)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(errno_to_io)
    }
}

/// A runtime endpoint the shell cannot use itself (a capture buffer owned by the
/// embedder): passed through to processes unchanged, builtins get `EBADF`.
struct RtOpaque(Stdio);
impl Stream for RtOpaque {}

/// A runtime sink callback.
struct RtSink(kiln_runtime::SinkFn);
impl Stream for RtSink {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (self.0)(buf);
        Ok(buf.len())
    }
}

/// Wraps a runtime stdio endpoint for the shell.
fn endpoint_of(s: Stdio) -> Endpoint {
    match s {
        Stdio::Null => Arc::new(sio::Null),
        Stdio::Bytes(b) => sio::Bytes::endpoint(b.to_vec()),
        Stdio::PipeRead(r) => Arc::new(RtPipeRead(r)),
        Stdio::PipeWrite(w) => Arc::new(RtPipeWrite(w)),
        Stdio::File(f) => Arc::new(RtFile(f)),
        Stdio::Sink(f) => Arc::new(RtSink(f)),
        other => Arc::new(RtOpaque(other)),
    }
}

/// Turns a shell endpoint into a process stdio endpoint. Runtime-native endpoints pass
/// through; shell-only ones are bridged (a sink for output, a pumped pipe for input).
fn stdio_of(ep: &Endpoint, input: bool) -> Stdio {
    let any: &dyn std::any::Any = &**ep;
    if let Some(r) = any.downcast_ref::<RtPipeRead>() {
        return Stdio::PipeRead(r.0.clone());
    }
    if let Some(w) = any.downcast_ref::<RtPipeWrite>() {
        return Stdio::PipeWrite(w.0.clone());
    }
    if let Some(f) = any.downcast_ref::<RtFile>() {
        return Stdio::File(f.0.clone());
    }
    if let Some(s) = any.downcast_ref::<RtSink>() {
        return Stdio::Sink(s.0.clone());
    }
    if let Some(o) = any.downcast_ref::<RtOpaque>() {
        return o.0.clone();
    }
    if any.is::<sio::Null>() {
        return Stdio::Null;
    }
    if let Some(b) = any.downcast_ref::<sio::Bytes>() {
        return Stdio::Bytes(b.take_rest().into());
    }
    if input {
        let (r, mut w) = kiln_runtime::pipe();
        let src = ep.clone();
        // The pump ends when the source hits EOF or the process closes its stdin.
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = src.read(&mut buf) {
                if n == 0 || w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        Stdio::pipe_read(r)
    } else {
        let dst = ep.clone();
        Stdio::Sink(Arc::new(move |b: &[u8]| {
            let _ = sio::write_all(&dst, b);
        }))
    }
}

/// A process writing into a bounded `$(…)` capture writes into a runtime pipe instead,
/// pumped into the capture by a thread: once the capture is full the pump stops reading
/// and the process gets `EPIPE` at once, rather than running on until the runtime's
/// output limit with its output thrown away. `None` for any other endpoint.
fn capture_pipe(ep: &Endpoint) -> Option<(Stdio, std::thread::JoinHandle<()>)> {
    let any: &dyn std::any::Any = &**ep;
    if !any.is::<sio::Capture>() {
        return None;
    }
    let (mut r, w) = kiln_runtime::pipe();
    let dst = ep.clone();
    let pump = std::thread::Builder::new()
        .name("kiln-capture".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || sio::write_all(&dst, &buf[..n]).is_err() {
                    break;
                }
            }
        })
        .ok()?;
    Some((Stdio::PipeWrite(w), pump))
}

/// A shell string as a program argument or environment value. The runtime takes
/// `String`s, so bytes that are not UTF-8 cannot reach a program intact yet: they become
/// U+FFFD (never the shell's private escape code points, which would be a different,
/// unredacted spelling of the value).
fn program_string(s: &str) -> String {
    match crate::bytes::to_bytes(s) {
        std::borrow::Cow::Borrowed(_) => s.to_string(),
        std::borrow::Cow::Owned(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

/// A shell's status for a command that was found but could not run (POSIX, as dash):
/// what a program the runtime refuses (not wasm, no `_start`, a failed load) exits with.
const CANNOT_RUN: i32 = 126;

impl Host for RuntimeHost {
    fn open(&self, path: &str, m: OpenMode, umask: u32) -> io::Result<Endpoint> {
        let opts = OpenOptions {
            read: m.read,
            write: m.write,
            append: m.append,
            create: m.create,
            exclusive: m.exclusive,
            truncate: m.truncate,
            directory: false,
            follow: true,
            mode: 0o666,
        };
        // The umask is the process's: the filesystem applies it, as the kernel does.
        match self
            .vfs
            .with_umask(umask)
            .open(b"/", &crate::bytes::to_bytes(path), &opts)
            .map_err(errno_to_io)?
        {
            Opened::File(f) => Ok(Arc::new(RtFile(f))),
            Opened::Dir(_) => Err(io::ErrorKind::IsADirectory.into()),
            Opened::Fd(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    fn stat(&self, path: &str, follow: bool) -> io::Result<FileStat> {
        let st = self
            .vfs
            .stat(b"/", &crate::bytes::to_bytes(path), follow)
            .map_err(errno_to_io)?;
        Ok(FileStat {
            kind: kind_of(st.file_type),
            mode: st.mode,
            size: st.size,
            mtime: st.mtime.sec,
            ino: st.ino ^ (st.dev << 48),
        })
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let entries = self
            .vfs
            .read_dir(b"/", &crate::bytes::to_bytes(path))
            .map_err(errno_to_io)?;
        Ok(entries
            .into_iter()
            .map(|e| crate::bytes::from_bytes(&e.name))
            .collect())
    }

    fn read_file(&self, path: &str) -> io::Result<Vec<u8>> {
        let ep = self.open(
            path,
            OpenMode {
                read: true,
                ..Default::default()
            },
            0,
        )?;
        let mut out = Vec::new();
        sio::read_to_end(&ep, &mut out)?;
        Ok(out)
    }

    fn resolve(&self, name: &str, path_var: &str, cwd: &str) -> Resolved {
        match self.runtime.resolve_command(&self.vfs, name, path_var, cwd) {
            RtResolved::Module(p) => Resolved::Program(Program {
                handle: Arc::new(kiln_runtime::Program::Path(p.clone())),
                path: p,
            }),
            RtResolved::Bundled(t) => Resolved::Program(Program {
                path: if name.contains('/') {
                    name.to_string()
                } else {
                    format!("/usr/bin/{t}")
                },
                handle: Arc::new(kiln_runtime::Program::Bundled(t)),
            }),
            RtResolved::Script {
                path,
                interpreter,
                arg,
            } => Resolved::Script {
                path,
                interpreter,
                arg,
            },
            RtResolved::NotWasm { path } => Resolved::NotWasm(path),
            RtResolved::Denied { path } => Resolved::Denied(path),
            RtResolved::NotFound => Resolved::NotFound,
        }
    }

    fn spawn(&self, s: Spawn<'_>) -> io::Result<i32> {
        let Some(program) = s.program.handle.downcast_ref::<kiln_runtime::Program>() else {
            return Err(io::Error::other("program was not resolved by the runtime"));
        };
        let [i, o, e] = s.stdio;
        let (stdout, pump) = match capture_pipe(&o) {
            Some((w, pump)) => (w, Some(pump)),
            None => (stdio_of(&o, false), None),
        };
        let spec = ProcessSpec {
            program: program.clone(),
            argv: s.argv.iter().map(|a| program_string(a)).collect(),
            env: s
                .env
                .iter()
                .map(|(k, v)| (program_string(k), program_string(v)))
                .collect(),
            cwd: s.cwd.to_string(),
            stdin: stdio_of(&i, true),
            stdout,
            stderr: stdio_of(&e, false),
            limits: self.limits.clone(),
            network: self.network.clone(),
            // What the process spawns comes back through the shell, with the descriptors
            // it inherited.
            launcher: Some(Arc::new(ShellLauncher { passed: s.passed })),
        };
        // The process holds its own clones; dropping ours now lets a pipe reach EOF
        // as soon as the process exits.
        drop((i, o));
        let r = self.runtime.run(&self.vfs.with_umask(s.umask), spec);
        // The process's end of the pipe is gone: the pump has everything it wrote.
        if let Some(pump) = pump {
            let _ = pump.join();
        }
        match r {
            Ok(st) => Ok(st.code()),
            Err(err) => {
                let _ = sio::write_all(&e, format!("sh: {err}\n").as_bytes());
                Ok(CANNOT_RUN)
            }
        }
    }

    fn deadline_passed(&self) -> bool {
        self.limits.cancel.is_cancelled()
            || self
                .limits
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
    }

    fn enter_process(&self) -> Result<Option<crate::host::ProcessToken>, u32> {
        match self.limits.enter("sh") {
            Ok(slot) => Ok(Some(Box::new(slot))),
            Err(_) => Err(self.limits.processes),
        }
    }

    fn pipe(&self) -> (Endpoint, Endpoint) {
        let (r, w) = kiln_runtime::pipe();
        (Arc::new(RtPipeRead(Arc::new(r))), Arc::new(RtPipeWrite(w)))
    }
}

/// Sends guest-spawned commands through the shell: builtins, `sh -c`, `#!` scripts and
/// PATH lookup behave exactly as in a RUN script. It holds nothing: the runtime and the
/// filesystem come with each launch, so no runtime is kept alive by its processes'
/// launcher. It holds only the descriptors the spawning process passes on.
struct ShellLauncher {
    passed: Vec<(i32, Endpoint)>,
}

impl Launcher for ShellLauncher {
    fn launch(
        &self,
        runtime: &Runtime,
        vfs: &Vfs,
        req: LaunchRequest,
    ) -> Result<kiln_runtime::ExitStatus, RuntimeError> {
        let host = Arc::new(RuntimeHost::new(
            runtime.clone(),
            vfs.clone(),
            req.limits,
            req.network,
        ));
        let stdio = [
            endpoint_of(req.stdin),
            endpoint_of(req.stdout),
            endpoint_of(req.stderr),
        ];
        let status = crate::run_command_process(
            host,
            &req.argv,
            &req.env,
            &req.cwd,
            stdio,
            self.passed.clone(),
            vfs.umask(),
        );
        Ok(kiln_runtime::ExitStatus((status & 0xff) as u8))
    }
}
