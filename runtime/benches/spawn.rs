//! Process start-up costs: instantiate-and-run of a trivial module with a warm module
//! cache, and 1,000 sequential spawns of real (wasi-libc, bundled) programs.
//! `cargo bench -p kiln-runtime --bench spawn`
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::Arc;
use std::time::Instant;

use kiln_fs::{Store, Tree};
use kiln_runtime::{MountTable, ProcessSpec, Program, Runtime, RuntimeConfig, Vfs};

/// `(module (memory (export "memory") 1) (func (export "_start")))`
const TRIVIAL: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
    0x03, 0x02, 0x01, 0x00, // func 0: type 0
    0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1
    0x07, 0x13, 0x02, 0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, 0x06, b'_', b's', b't',
    b'a', b'r', b't', 0x00, 0x00, // exports
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
];

fn bench(label: &str, n: u32, mut f: impl FnMut()) {
    f();
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let per = t.elapsed() / n;
    println!(
        "{label:<52} {n:>6} runs  {:>9.1} µs/op",
        per.as_secs_f64() * 1e6
    );
}

fn c_true() -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().ok()?;
    let src = dir.path().join("true.c");
    let out = dir.path().join("true.wasm");
    std::fs::write(&src, "int main(void) { return 0; }\n").ok()?;
    let st = std::process::Command::new("clang")
        .args(["--target=wasm32-wasi", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .ok()?;
    st.success().then(|| std::fs::read(&out).ok()).flatten()
}

fn main() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        realtime_epoch: 0,
    };
    let store = Store::temp().unwrap();
    let tree = Arc::new(parking_lot::Mutex::new(Tree::new(&store)));
    let vfs = Vfs::new(tree, MountTable::new());
    let rt = Runtime::new(config.clone()).unwrap();

    let trivial: Arc<[u8]> = TRIVIAL.into();
    let spec = ProcessSpec::new(
        Program::Module {
            name: "trivial".into(),
            bytes: trivial,
        },
        vec!["trivial".into()],
    );
    bench(
        "instantiate+run trivial module (warm cache)",
        10_000,
        || {
            assert!(rt.run(&vfs, spec.clone()).unwrap().success());
        },
    );

    if let Some(bytes) = c_true() {
        let bytes: Arc<[u8]> = bytes.into();
        let t = Instant::now();
        let cold = Runtime::new(RuntimeConfig {
            cache_dir: None,
            realtime_epoch: 0,
        })
        .unwrap();
        let spec = ProcessSpec::new(
            Program::Module {
                name: "true".into(),
                bytes,
            },
            vec!["true".into()],
        );
        cold.run(&vfs, spec.clone()).unwrap();
        println!(
            "{:<52} {:>6}       {:>9.1} ms",
            "first run of C `true` (compile)",
            1,
            t.elapsed().as_secs_f64() * 1e3
        );
        // A new runtime over the same disk cache: deserialise, never recompile.
        let t = Instant::now();
        let warm = Runtime::new(config.clone()).unwrap();
        warm.run(&vfs, spec.clone()).unwrap();
        warm.run(&vfs, spec.clone()).unwrap();
        let warm2 = Runtime::new(config.clone()).unwrap();
        let t2 = Instant::now();
        warm2.run(&vfs, spec.clone()).unwrap();
        println!(
            "{:<52} {:>6}       {:>9.1} ms",
            "new runtime, disk-cached C `true` (deserialise)",
            1,
            t2.elapsed().as_secs_f64() * 1e3
        );
        let _ = t;
        bench(
            "1,000 sequential spawns: C `true` (wasi-libc)",
            1_000,
            || {
                assert!(warm.run(&vfs, spec.clone()).unwrap().success());
            },
        );
    } else {
        println!("clang for wasm32-wasi not available: skipping the C `true` figures");
    }

    if kiln_runtime::bundled_tools().any(|t| t == "true") {
        let spec = ProcessSpec::new(Program::Bundled("true".into()), vec!["true".into()]);
        let t = Instant::now();
        rt.run(&vfs, spec.clone()).unwrap();
        println!(
            "{:<52} {:>6}       {:>9.1} ms",
            "first bundled `true` (uutils module, cache fill)",
            1,
            t.elapsed().as_secs_f64() * 1e3
        );
        bench(
            "1,000 sequential spawns: bundled `true` (uutils)",
            1_000,
            || {
                assert!(rt.run(&vfs, spec.clone()).unwrap().success());
            },
        );
    }
}
