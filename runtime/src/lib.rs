//! kiln-runtime: the "kernel" of a build step. kiln's own WASI preview 1 host on
//! wasmtime over the step's virtual filesystem ([`Vfs`]: a `kiln_fs::Tree` plus a
//! [`MountTable`] of secrets, binds, caches, tmpfs and devices), with in-memory pipes,
//! limits, the versioned `kiln_v1` host imports (see `ABI.md`), command resolution and a
//! compiled-module cache.
//!
//! It is NOT a shell (the shell drives it and installs a [`Launcher`]), it knows nothing
//! of Dockerfiles or images, and nothing of the host is visible to a guest except a
//! bind-mounted directory, read-only, through a capability handle.

mod bundled;
mod engine;
mod engine_config;
mod error;
mod kiln_v1;
mod module_cache;
mod precompiled;
mod process;
mod resolve;
mod run;
mod stdio;
mod vfs;
mod wasi_p1;

pub use engine::{Runtime, RuntimeConfig};
pub use error::{Errno, RuntimeError};
pub use process::{
    Cancel, EnvNames, ExitStatus, LaunchRequest, Launcher, Limits, NetworkPolicy, ProcessSpec,
    Program,
};
pub use resolve::{DEFAULT_PATH, Resolved};
pub use run::ModuleRun;
pub use stdio::{CaptureBuffer, PIPE_CAPACITY, PipeReader, PipeWriter, SinkFn, Stdio, pipe};
pub use vfs::Identity;
pub use vfs::{
    Access, MountError, MountTable, OpenOptions, Opened, SharedTree, Stat, Vfs, VfsDir,
    VfsDirEntry, VfsFile,
};
pub use zeroize::Zeroizing;

/// SHA-256 over the bundled modules' digests, in order: which userland a RUN step runs
/// with. A build cache keys results on it, so a kiln whose tools behave differently never
/// replays another kiln's results.
pub fn userland_digest() -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for m in bundled::modules() {
        h.update((m.name.len() as u64).to_le_bytes());
        h.update(m.name.as_bytes());
        h.update(m.sha256);
    }
    h.finalize().into()
}

/// Names of the bundled tools, sorted.
pub fn bundled_tools() -> impl Iterator<Item = &'static str> {
    bundled::all().map(|t| t.name)
}
