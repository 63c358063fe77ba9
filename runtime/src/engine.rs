//! The wasmtime engine, the epoch ticker that enforces deadlines, and the compiled-module
//! cache (memory + disk) that makes a warm start skip compilation entirely.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, InstancePre, Linker, Module};

use crate::bundled::BundledModule;
use crate::error::RuntimeError;
use crate::module_cache::DiskCache;
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
    disk: Option<DiskCache>,
    modules: Mutex<HashMap<[u8; 32], InstancePre<Ctx>>>,
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

/// Whether a compiled module may be written to the on-disk cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Persist {
    /// Bundled tools, embedder-provided bytes and committed files of the step's tree.
    Yes,
    /// Anything a step could have derived from a secret: compiled in memory only.
    MemoryOnly,
}

/// A module ready to instantiate, with the digest it is cached under.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub(crate) pre: InstancePre<Ctx>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine = Engine::new(&crate::engine_config::engine_config()).map_err(|e| {
            RuntimeError::Cache {
                path: "<engine>".into(),
                reason: e.to_string(),
            }
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
        let disk = match &config.cache_dir {
            Some(dir) => Some(DiskCache::open(dir, compat)?),
            None => None,
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), ticker_stop.clone());
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                config,
                disk,
                modules: Mutex::new(HashMap::new()),
                ticker_stop,
            }),
        })
    }

    /// Compiles (or fetches from the caches) the module with these bytes.
    pub(crate) fn load(
        &self,
        name: &str,
        bytes: &[u8],
        persist: Persist,
    ) -> Result<Loaded, RuntimeError> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        self.load_with_digest(name, bytes, digest, persist)
    }

    /// Like [`Runtime::load`] when the digest is already known (bundled modules), so a
    /// warm start does not even hash the bytes.
    pub(crate) fn load_with_digest(
        &self,
        name: &str,
        bytes: &[u8],
        digest: [u8; 32],
        persist: Persist,
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
        let module = self.compile_cached(name, bytes, &digest, persist)?;
        self.prepare(name, digest, &module)
    }

    /// A bundled module: the code compiled for it when kiln was built, when this engine
    /// accepts it (see `precompiled.rs`), else compiled and cached like any module.
    pub(crate) fn load_bundled(&self, module: &BundledModule) -> Result<Loaded, RuntimeError> {
        if let Some(pre) = self.inner.modules.lock().get(&module.sha256) {
            return Ok(Loaded { pre: pre.clone() });
        }
        match crate::precompiled::deserialize(&self.inner.engine, module) {
            Some(compiled) => self.prepare(module.name, module.sha256, &compiled),
            None => self.load_with_digest(module.name, module.bytes, module.sha256, Persist::Yes),
        }
    }

    /// Links `module` against kiln's imports and remembers it under `digest`.
    fn prepare(
        &self,
        name: &str,
        digest: [u8; 32],
        module: &Module,
    ) -> Result<Loaded, RuntimeError> {
        let pre =
            self.inner
                .linker
                .instantiate_pre(module)
                .map_err(|e| RuntimeError::Instantiate {
                    program: name.into(),
                    reason: format!("{e:#}"),
                })?;
        self.inner.modules.lock().insert(digest, pre.clone());
        Ok(Loaded { pre })
    }

    fn compile_cached(
        &self,
        name: &str,
        bytes: &[u8],
        digest: &[u8; 32],
        persist: Persist,
    ) -> Result<Module, RuntimeError> {
        let disk = self.inner.disk.as_ref().filter(|_| persist == Persist::Yes);
        if let Some(m) = disk.and_then(|d| d.load(&self.inner.engine, digest)) {
            return Ok(m);
        }
        let module = Module::new(&self.inner.engine, bytes).map_err(|e| RuntimeError::Compile {
            program: name.into(),
            reason: format!("{e:#}"),
        })?;
        if let Some(d) = disk {
            // The cache is an optimisation: failing to write it must not fail the run.
            let _ = d.store(digest, &module);
        }
        Ok(module)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn module_bytes() -> Vec<u8> {
        wat::parse_str(r#"(module (func (export "_start")))"#).unwrap()
    }

    fn cwasm_files(dir: &std::path::Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect()
    }

    #[test]
    fn a_corrupted_cache_file_is_recompiled_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let config = RuntimeConfig {
            cache_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let bytes = module_bytes();
        Runtime::new(config.clone())
            .unwrap()
            .load("m", &bytes, Persist::Yes)
            .unwrap();
        let [file] = cwasm_files(dir.path()).try_into().unwrap();
        let good = std::fs::read(&file).unwrap();
        let mut bad = good.clone();
        let end = bad.len().min(68 << 10);
        bad[(4 << 10).min(end / 2)..end].fill(0xCC);
        std::fs::write(&file, &bad).unwrap();
        // A fresh runtime (no in-memory module) must not run the planted bytes.
        let rt = Runtime::new(config).unwrap();
        rt.load("m", &bytes, Persist::Yes).unwrap();
        assert_eq!(
            std::fs::read(&file).unwrap(),
            good,
            "file was not rewritten"
        );
    }

    #[test]
    fn multi_memory_modules_are_refused() {
        let rt = Runtime::new(RuntimeConfig::default()).unwrap();
        let wat = r#"(module (memory 1) (memory 1) (func (export "_start")))"#;
        let Err(err) = rt.load("mm", &wat::parse_str(wat).unwrap(), Persist::Yes) else {
            panic!("a module with two memories compiled");
        };
        assert!(err.to_string().contains("multiple memories"), "{err}");
    }

    /// A launcher holding a clone of the runtime: what used to keep every runtime (and
    /// its epoch thread) alive for ever once installed in it.
    struct HoldsRuntime {
        _runtime: Runtime,
        launched: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl crate::Launcher for HoldsRuntime {
        fn launch(
            &self,
            _runtime: &Runtime,
            _vfs: &crate::Vfs,
            _request: crate::LaunchRequest,
        ) -> Result<crate::ExitStatus, RuntimeError> {
            self.launched.fetch_add(1, Ordering::Relaxed);
            Ok(crate::ExitStatus(7))
        }
    }

    /// Spawns `true` through `kiln_v1` and exits with its status.
    const SPAWNS: &str = r#"(module
      (import "kiln_v1" "spawn" (func $spawn (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "kiln_v1" "wait" (func $wait (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 100) "true\00")
      (func (export "_start")
        (drop (call $spawn (i32.const 100) (i32.const 5) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 2) (i32.const 200)))
        (drop (call $wait (i32.load (i32.const 200)) (i32.const 204)))
        (call $exit (i32.load (i32.const 204)))))"#;

    #[test]
    fn a_runtime_is_freed_even_when_its_processes_launcher_holds_it() {
        let rt = Runtime::new(RuntimeConfig::default()).unwrap();
        let store = kiln_fs::Store::temp().unwrap();
        let tree = Arc::new(parking_lot::Mutex::new(kiln_fs::Tree::new(&store)));
        let vfs = crate::Vfs::new(tree, crate::MountTable::new());
        let launched = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let program = crate::Program::Module {
            name: "spawns".into(),
            bytes: wat::parse_str(SPAWNS).unwrap().into(),
        };
        let mut spec = crate::ProcessSpec::new(program, vec!["spawns".into()]);
        spec.launcher = Some(Arc::new(HoldsRuntime {
            _runtime: rt.clone(),
            launched: launched.clone(),
        }));
        assert_eq!(rt.run(&vfs, spec).unwrap(), crate::ExitStatus(7));
        assert_eq!(launched.load(Ordering::Relaxed), 1);
        let weak = Arc::downgrade(&rt.inner);
        drop(rt);
        assert!(
            weak.upgrade().is_none(),
            "the runtime outlived its last handle"
        );
    }
}
