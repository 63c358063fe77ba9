//! Bundled guest tools: module sizes, first-run compile time (cold, empty cache), load
//! from the on-disk cache, and warm per-command latency for `cat`, `ls -l` and
//! `sha256sum` of a 10 MB file. Run with `cargo bench -p kiln-runtime --bench tools`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_fs::{Follow, Store, Tree};
use kiln_runtime::{
    CaptureBuffer, MountTable, ProcessSpec, Program, Runtime, RuntimeConfig, SharedTree, Stdio, Vfs,
};

fn guest_target() -> PathBuf {
    match std::env::var_os("KILN_GUEST_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guest-tools/target"),
    }
    .join("wasm32-wasip1/release")
}

fn vfs() -> Vfs {
    let store = Store::temp().unwrap();
    let mut tree = Tree::new(&store);
    let root = tree.root();
    let etc = tree.mkdir(root, b"etc", 0o755, 0, 0).unwrap();
    let passwd = tree.create_file(etc, b"passwd", 0o644, 0, 0).unwrap();
    tree.write_at(passwd, 0, b"root:x:0:0:root:/root:/bin/sh\n")
        .unwrap();
    let group = tree.create_file(etc, b"group", 0o644, 0, 0).unwrap();
    tree.write_at(group, 0, b"root:x:0:\n").unwrap();
    let data = tree.mkdir(root, b"data", 0o755, 0, 0).unwrap();
    let small = tree.create_file(data, b"small.txt", 0o644, 0, 0).unwrap();
    tree.write_at(small, 0, &b"hello kiln\n".repeat(100))
        .unwrap();
    for i in 0..30 {
        let f = tree
            .create_file(data, format!("file{i:02}").as_bytes(), 0o644, 0, 0)
            .unwrap();
        tree.write_at(f, 0, format!("{i}\n").as_bytes()).unwrap();
    }
    let big = tree.create_file(data, b"big.bin", 0o644, 0, 0).unwrap();
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..10u64 {
        tree.write_at(big, i * chunk.len() as u64, &chunk).unwrap();
    }
    assert!(tree.resolve(root, b"/data/big.bin", Follow::Yes).is_ok());
    let shared: SharedTree = Arc::new(parking_lot::Mutex::new(tree));
    Vfs::new(shared, MountTable::new())
}

fn run(rt: &Runtime, vfs: &Vfs, argv: &[&str]) -> Vec<u8> {
    let out = CaptureBuffer::new();
    let mut spec = ProcessSpec::new(
        Program::Bundled(argv[0].into()),
        argv.iter().map(|s| s.to_string()).collect(),
    );
    spec.cwd = "/data".into();
    spec.stdout = Stdio::Capture(out.clone());
    let status = rt.run(vfs, spec).unwrap();
    assert!(status.success(), "{argv:?} failed");
    out.contents()
}

fn time(label: &str, iterations: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per = start.elapsed() / iterations;
    println!(
        "{label:<44} {:>10.3} ms/op  ({iterations} runs)",
        per.as_secs_f64() * 1e3
    );
    per
}

fn main() {
    let dir = guest_target();
    for module in ["uutils", "kiln-tools"] {
        let size = std::fs::metadata(dir.join(format!("{module}.wasm")))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "module {module:<37} {:>10.2} MiB",
            size as f64 / (1024.0 * 1024.0)
        );
    }
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let vfs = vfs();

    let rt = Runtime::new(config.clone()).unwrap();
    time("first run: compile uutils + cat", 1, || {
        run(&rt, &vfs, &["cat", "small.txt"]);
    });
    time("first run: compile kiln-tools + ls -l", 1, || {
        run(&rt, &vfs, &["ls", "-l"]);
    });
    drop(rt);
    let rt = Runtime::new(config).unwrap();
    time("new runtime, disk cache: uutils + cat", 1, || {
        run(&rt, &vfs, &["cat", "small.txt"]);
    });
    time("new runtime, disk cache: kiln-tools + ls -l", 1, || {
        run(&rt, &vfs, &["ls", "-l"]);
    });
    time("warm: cat small.txt (1.1 KB)", 200, || {
        run(&rt, &vfs, &["cat", "small.txt"]);
    });
    time("warm: ls -l (32 entries)", 200, || {
        run(&rt, &vfs, &["ls", "-l"]);
    });
    time("warm: true", 200, || {
        run(&rt, &vfs, &["true"]);
    });
    let per = time("warm: sha256sum big.bin (10 MiB)", 10, || {
        let out = run(&rt, &vfs, &["sha256sum", "big.bin"]);
        assert_eq!(out.len(), 64 + 2 + 7 + 1);
    });
    println!(
        "{:<44} {:>10.1} MiB/s",
        "sha256sum throughput",
        10.0 / per.as_secs_f64()
    );
    time("warm: grep -c -v over 10 MiB", 5, || {
        run(&rt, &vfs, &["grep", "-c", "-v", "kiln", "big.bin"]);
    });
}
