//! Hand-written hostile guests (WAT): calls a normal libc never makes, checked against
//! the open mode of the fd and the resource limits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::sync::Arc;

use common::*;
use kiln_runtime::{Errno, MountTable};

const RIGHTS_FD_READ: u64 = 1 << 1;
const RIGHTS_FD_WRITE: u64 = 1 << 6;

/// A WASI command that opens `/f` with `rights`, runs `op` (WAT instructions leaving
/// an errno on the stack; `$fd` is the opened fd) and exits with that errno. Memory:
/// an iovec at 16 pointing at one byte at 32; results are written at 24.
fn fd_guest(rights: u64, op: &str) -> Arc<[u8]> {
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite"
    (func $pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size"
    (func $set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "f")
  (data (i32.const 16) "\20\00\00\00\01\00\00\00")
  (data (i32.const 32) "x")
  (func (export "_start")
    (local $r i32) (local $fd i32)
    (local.set $r (call $open (i32.const 3) (i32.const 1) (i32.const 0) (i32.const 1)
      (i32.const 0) (i64.const {rights}) (i64.const 0) (i32.const 0) (i32.const 8)))
    (if (local.get $r) (then (call $exit (i32.add (i32.const 100) (local.get $r)))))
    (local.set $fd (i32.load (i32.const 8)))
    (call $exit {op})))"#
    );
    wat::parse_str(wat).unwrap().into()
}

fn errno_of(rights: u64, op: &str) -> (i32, Vec<u8>) {
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/f", b"original");
    let vfs = vfs_with(&tree, MountTable::new());
    let out = run(&vfs, &fd_guest(rights, op), &["guest"], "/");
    (out.code(), read_file(&tree, "/f").unwrap())
}

#[test]
fn writes_through_a_read_only_fd_fail_with_ebadf() {
    let ops = [
        "(call $write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24))",
        "(call $pwrite (local.get $fd) (i32.const 16) (i32.const 1) (i64.const 0) (i32.const 24))",
        "(call $allocate (local.get $fd) (i64.const 0) (i64.const 1000))",
        "(call $set_size (local.get $fd) (i64.const 0))",
        "(call $set_size (local.get $fd) (i64.const 1000))",
    ];
    for op in ops {
        let (code, body) = errno_of(RIGHTS_FD_READ, op);
        assert_eq!(code, i32::from(Errno::BADF.0), "{op}");
        assert_eq!(body, b"original", "{op} changed the file");
    }
}

#[test]
fn reads_through_a_write_only_fd_fail_with_ebadf() {
    let op = "(call $read (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24))";
    let (code, _) = errno_of(RIGHTS_FD_WRITE, op);
    assert_eq!(code, i32::from(Errno::BADF.0));
}

#[test]
fn a_read_write_fd_still_writes() {
    let op = "(call $write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24))";
    let (code, body) = errno_of(RIGHTS_FD_READ | RIGHTS_FD_WRITE, op);
    assert_eq!(code, 0);
    assert_eq!(body, b"xriginal");
}

/// A trivial WASI command; `tag` makes its bytes (and digest) unique.
fn tagged_module(tag: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{tag}")
             (func (export "_start")))"#
    );
    wat::parse_str(wat).unwrap()
}

fn cwasm_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        })
        .count()
}

fn vfs_write(vfs: &kiln_runtime::Vfs, path: &str, bytes: &[u8]) {
    let opts = kiln_runtime::OpenOptions::write_truncate();
    let Ok(kiln_runtime::Opened::File(f)) = vfs.open(b"/", path.as_bytes(), &opts) else {
        panic!("cannot open {path} for writing")
    };
    assert_eq!(f.write(bytes).unwrap(), bytes.len());
}

fn run_path(rt: &kiln_runtime::Runtime, vfs: &kiln_runtime::Vfs, path: &str) {
    let program = kiln_runtime::Program::Path(path.into());
    let status = rt.run(vfs, spec(program, &[path], "/")).unwrap();
    assert!(status.success());
}

#[test]
fn only_committed_modules_reach_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let rt = kiln_runtime::Runtime::new(kiln_runtime::RuntimeConfig {
        cache_dir: Some(dir.path().into()),
        realtime_epoch: 0,
    })
    .unwrap();
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/committed.wasm", &tagged_module("committed"));
    write_file(&tree, "/changed.wasm", &tagged_module("before"));
    let snap = tree.lock().snapshot().unwrap();
    let tree: kiln_runtime::SharedTree =
        Arc::new(parking_lot::Mutex::new(kiln_fs::Tree::from_snapshot(&snap)));
    // During the step: a new module, a changed one, one on a tmpfs mount.
    let mut mounts = MountTable::new();
    mounts.add_tmpfs("/t", &store).unwrap();
    let vfs = vfs_with(&tree, mounts);
    vfs_write(&vfs, "/new.wasm", &tagged_module("from-a-secret"));
    vfs_write(&vfs, "/changed.wasm", &tagged_module("after"));
    vfs_write(&vfs, "/t/m.wasm", &tagged_module("on-tmpfs"));
    for p in ["/new.wasm", "/changed.wasm", "/t/m.wasm"] {
        run_path(&rt, &vfs, p);
        assert_eq!(cwasm_count(dir.path()), 0, "{p} was cached on disk");
    }
    run_path(&rt, &vfs, "/committed.wasm");
    assert_eq!(cwasm_count(dir.path()), 1, "a committed module is cached");
}

/// Seconds to stat the deepest directory of a `depth`-deep chain inside a tmpfs mount
/// `reps` times (each stat resolves the whole path, mount table included).
fn deep_stat_secs(depth: usize, reps: usize) -> f64 {
    let store = store();
    let tree = new_tree(&store);
    let mut mounts = MountTable::new();
    mounts.add_tmpfs("/m", &store).unwrap();
    let vfs = vfs_with(&tree, mounts);
    let mut path = b"/m".to_vec();
    for _ in 0..depth {
        path.extend_from_slice(b"/d");
        vfs.mkdir(b"/", &path, 0o755).unwrap();
    }
    let t = std::time::Instant::now();
    for _ in 0..reps {
        assert!(vfs.stat(b"/", &path, true).unwrap().is_dir());
    }
    t.elapsed().as_secs_f64()
}

#[test]
fn deep_paths_resolve_in_linear_time() {
    // Resolving a path must cost O(depth), not O(depth^2) (a `find` over a 500-deep
    // mount was O(depth^3)). Four times the depth must cost about four times as much;
    // quadratic work would cost sixteen times. The ratio compares two runs on the same
    // machine, so it does not depend on its speed. Depths stay under the tree's
    // MAX_DEPTH (256).
    deep_stat_secs(60, 50); // warm up allocator and code paths
    let short = deep_stat_secs(60, 400);
    let long = deep_stat_secs(240, 400);
    let ratio = long / short;
    eprintln!("4x depth cost {ratio:.1}x ({short:.3}s -> {long:.3}s)");
    assert!(
        ratio < 10.0,
        "4x depth cost {ratio:.1}x ({short:.3}s -> {long:.3}s)"
    );
}

#[test]
fn tmpfs_writes_count_against_the_tables_disk_quota() {
    let store = store();
    let tree = new_tree(&store);
    let mut mounts = MountTable::new();
    mounts.set_disk_quota(kiln_fs::DiskQuota::new(1 << 20));
    mounts.add_tmpfs("/t", &store).unwrap();
    let vfs = vfs_with(&tree, mounts);
    let opts = kiln_runtime::OpenOptions::write_truncate();
    let Ok(kiln_runtime::Opened::File(f)) = vfs.open(b"/", b"/t/big", &opts) else {
        panic!("cannot open /t/big")
    };
    let chunk = vec![1u8; 256 << 10];
    let err = (0..8).map(|_| f.write(&chunk)).find_map(Result::err);
    assert_eq!(err, Some(Errno::DQUOT));
}
