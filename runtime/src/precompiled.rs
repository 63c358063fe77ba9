//! The bundled modules' code compiled when kiln was built (`build.rs`), so that a fresh
//! machine runs its first RUN step without seconds of compilation.
//!
//! What must match for the code to be usable, and who checks it:
//! - the engine configuration: `build.rs` and the runtime both take it from
//!   `engine_config::engine_config`;
//! - the wasmtime version, the target, cranelift's settings, the wasm features and the
//!   engine's tunables: `Module::deserialize` compares the artifact's metadata with the
//!   engine and refuses a mismatch;
//! - the CPU: the build machine's features are compiled in, and `Module::deserialize`
//!   refuses an artifact using a feature this host lacks (wasmtime detects the host's
//!   features for each enabled flag). A host with more features accepts it as it is.
//!
//! Any refusal means "compile as usual" (then the on-disk module cache), never an error.

use wasmtime::{Engine, Module, Precompiled};

use crate::bundled::BundledModule;

/// The module compiled for `module` at build time, if this engine can run it.
pub(crate) fn deserialize(engine: &Engine, module: &BundledModule) -> Option<Module> {
    let code = module.compiled;
    if Engine::detect_precompiled(code) != Some(Precompiled::Module) {
        return None;
    }
    // SAFETY: `Module::deserialize` trusts its input to be wasmtime's own output, because
    // the code is mapped executable. These bytes are kiln's own: `build.rs` produced them
    // from `module.bytes` with this crate's wasmtime and engine configuration, in the same
    // build as this binary, and `include_bytes!` embedded them read-only; nothing outside
    // the binary can supply or alter them. The remaining ways they could be wrong for
    // this engine (another configuration, target or CPU) are exactly what
    // `Module::deserialize` checks, returning an error we treat as "compile instead".
    unsafe { Module::deserialize(engine, code) }.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::new(&crate::engine_config::engine_config()).unwrap()
    }

    #[test]
    fn every_bundled_module_loads_precompiled_on_the_build_host() {
        let engine = engine();
        for module in crate::bundled::modules() {
            assert!(
                deserialize(&engine, module).is_some(),
                "{}: the build-time code was refused (has engine_config drifted?)",
                module.name
            );
        }
    }

    #[test]
    fn an_engine_configured_otherwise_compiles_instead() {
        let mut config = crate::engine_config::engine_config();
        config.epoch_interruption(false);
        let other = Engine::new(&config).unwrap();
        for module in crate::bundled::modules() {
            assert!(deserialize(&other, module).is_none(), "{}", module.name);
        }
    }

    #[test]
    fn bytes_that_are_not_an_artifact_are_never_deserialised() {
        let module = BundledModule {
            name: "fake",
            bytes: b"\0asm",
            sha256: [0; 32],
            compiled: b"\x7fELF not really",
        };
        assert!(deserialize(&engine(), &module).is_none());
    }
}
