//! The wasmtime configuration of kiln's engine, in one place for two users: the runtime
//! (`engine.rs`), and `build.rs`, which includes this file to compile the bundled modules
//! ahead of time. Code compiled under one configuration is only usable by an engine with
//! the same one; sharing the function means the two cannot drift apart.

/// The configuration every kiln engine is built from.
pub(crate) fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    // Deadlines (`--step-timeout`) interrupt a running guest by epoch.
    config.epoch_interruption(true);
    // No guest kiln runs needs several memories (wasi-libc and Rust's std use one),
    // and each extra memory is another reservation a hostile module could fill;
    // such modules are refused at compile time. The limiter still bounds the sum.
    config.wasm_multi_memory(false);
    config
}
