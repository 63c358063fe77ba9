//! The wasmtime engine, the epoch ticker that enforces deadlines, and the compiled-module
//! cache (memory + disk) that makes a warm start skip compilation entirely.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstancePre, Linker, Module};

use crate::error::RuntimeError;
use crate::process::Launcher;
use crate::wasi_p1::Ctx;

/// How often the epoch advances; deadlines are accurate to about this much.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Settings of a [`Runtime`].
#[derive(Clone, Debug, Default)]
pub struct RuntimeConfig {
    /// Where compiled modules are cached across runs (`None`: memory only).
    pub cache_dir: Option<PathBuf>,
    /// What the guest's realtime clock reads, in seconds since the Unix epoch
    /// (`SOURCE_DATE_EPOCH`; default 0), so builds are reproducible.
    pub realtime_epoch: i64,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<Ctx>,
    pub(crate) config: RuntimeConfig,
    compat: String,
    modules: Mutex<HashMap<[u8; 32], InstancePre<Ctx>>>,
    pub(crate) launcher: RwLock<Option<Arc<dyn Launcher>>>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// kiln's WASI runtime: one wasmtime engine, its module caches and the bundled tools.
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.inner.config.cache_dir)
            .finish()
    }
}

/// A module ready to instantiate, with the digest it is cached under.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub(crate) pre: InstancePre<Ctx>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let mut wc = Config::new();
        wc.epoch_interruption(true);
        let engine = Engine::new(&wc).map_err(|e| RuntimeError::Cache {
            path: "<engine>".into(),
            reason: e.to_string(),
        })?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = format!("{:016x}", hasher.finish());
        let mut linker = Linker::new(&engine);
        crate::wasi_p1::add_to_linker(&mut linker).map_err(|e| RuntimeError::Cache {
            path: "<linker>".into(),
            reason: e.to_string(),
        })?;
        crate::kiln_v1::add_to_linker(&mut linker).map_err(|e| RuntimeError::Cache {
            path: "<linker>".into(),
            reason: e.to_string(),
        })?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Cache {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), ticker_stop.clone());
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                config,
                compat,
                modules: Mutex::new(HashMap::new()),
                launcher: RwLock::new(None),
                ticker_stop,
            }),
        })
    }

    /// Installs the embedder's launcher, used when a guest spawns a command through the
    /// `kiln_v1` imports (the shell installs itself so `sh -c`, builtins and PATH lookup
    /// behave as in RUN scripts). Without one, the runtime resolves the command itself.
    pub fn set_launcher(&self, launcher: Arc<dyn Launcher>) {
        *self.inner.launcher.write() = Some(launcher);
    }

    /// Compiles (or fetches from the caches) the module with these bytes.
    pub(crate) fn load(&self, name: &str, bytes: &[u8]) -> Result<Loaded, RuntimeError> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        self.load_with_digest(name, bytes, digest)
    }

    /// Like [`Runtime::load`] when the digest is already known (bundled modules), so a
    /// warm start does not even hash the bytes.
    pub(crate) fn load_with_digest(
        &self,
        name: &str,
        bytes: &[u8],
        digest: [u8; 32],
    ) -> Result<Loaded, RuntimeError> {
        if let Some(pre) = self.inner.modules.lock().get(&digest) {
            return Ok(Loaded { pre: pre.clone() });
        }
        if bytes.get(..4) != Some(b"\0asm") {
            return Err(RuntimeError::NotWasm {
                program: name.into(),
                reason: "no WebAssembly magic number".into(),
            });
        }
        let module = self.compile_cached(name, bytes, &digest)?;
        let pre =
            self.inner
                .linker
                .instantiate_pre(&module)
                .map_err(|e| RuntimeError::Instantiate {
                    program: name.into(),
                    reason: format!("{e:#}"),
                })?;
        self.inner.modules.lock().insert(digest, pre.clone());
        Ok(Loaded { pre })
    }

    fn cache_path(&self, digest: &[u8; 32]) -> Option<PathBuf> {
        let dir = self.inner.config.cache_dir.as_ref()?;
        Some(dir.join(format!(
            "{}-{}.cwasm",
            hex::encode(digest),
            self.inner.compat
        )))
    }

    fn compile_cached(
        &self,
        name: &str,
        bytes: &[u8],
        digest: &[u8; 32],
    ) -> Result<Module, RuntimeError> {
        let path = self.cache_path(digest);
        if let Some(p) = &path
            && p.is_file()
        {
            // SAFETY: the file is one kiln wrote itself (named by the module digest and
            // this engine's compatibility hash, written to a temp file then renamed), in
            // a cache directory the embedder owns. A corrupt file fails to deserialise
            // and is recompiled below.
            if let Ok(m) = unsafe { Module::deserialize_file(&self.inner.engine, p) } {
                return Ok(m);
            }
        }
        let module = Module::new(&self.inner.engine, bytes).map_err(|e| RuntimeError::Compile {
            program: name.into(),
            reason: format!("{e:#}"),
        })?;
        if let Some(p) = path {
            // The cache is an optimisation: failing to write it must not fail the run.
            let _ = write_atomic(&p, &module);
        }
        Ok(module)
    }

    /// Compiles (or loads from the disk cache) every bundled module, so that the first
    /// command of a build does not pay for it. Safe to call from a background thread.
    pub fn precompile_bundled(&self) -> Result<(), RuntimeError> {
        for m in crate::bundled::modules() {
            self.load_with_digest(m.name, m.bytes, m.sha256)?;
        }
        Ok(())
    }

    /// Number of modules compiled or loaded in memory (for tests and benchmarks).
    pub fn cached_modules(&self) -> usize {
        self.inner.modules.lock().len()
    }
}

fn write_atomic(path: &Path, module: &Module) -> std::io::Result<()> {
    let data = module.serialize().map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn spawn_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    // A named thread per runtime; it exits within one tick of the runtime's drop.
    let _ = std::thread::Builder::new()
        .name("kiln-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
}
