//! The bare instantiate reference: what wasmtime alone costs to instantiate a tiny
//! module and call its entry point, the floor under kiln's per-command cost.

use std::time::{Duration, Instant};

use anyhow::Result;
use wasmtime::{Engine, Linker, Module, Store};

use crate::measure::{Run, Samples};
use crate::scenarios::Outcome;

const BATCH: u32 = 1000;

const WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (i32.store (i32.const 0) (i32.const 42))))"#;

pub(crate) fn run(reps: usize) -> Result<Outcome> {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT)?;
    let pre = Linker::<()>::new(&engine).instantiate_pre(&module)?;
    let mut per_call = Samples::default();
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        for _ in 0..BATCH {
            let mut store = Store::new(&engine, ());
            let instance = pre.instantiate(&mut store)?;
            instance
                .get_typed_func::<(), ()>(&mut store, "_start")?
                .call(&mut store, ())?;
        }
        per_call.push(Run {
            wall: start.elapsed() / BATCH,
            max_rss_kib: None,
        });
    }
    let min = per_call.min().unwrap_or(Duration::ZERO);
    let median = per_call.median().unwrap_or(Duration::ZERO);
    Ok(Outcome {
        title: "Reference: bare wasmtime instantiate".into(),
        setup: vec![format!(
            "In-process, default `wasmtime::Engine`: new `Store`, instantiate a pre-linked module with one memory page, call `_start`; {BATCH} per batch, {} batches.",
            per_call.runs.len()
        )],
        kiln: Samples::default(),
        peers: Vec::new(),
        per_unit: None,
        lines: vec![format!(
            "Per instantiate + call: min {:.1} µs, median {:.1} µs.",
            min.as_secs_f64() * 1e6,
            median.as_secs_f64() * 1e6
        )],
        targets: Vec::new(),
    })
}
