//! Shared helpers for the runtime's integration tests: building the test guests (C with
//! clang for wasm32-wasi, Rust with cargo for wasm32-wasip1), a shared runtime, trees.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use kiln_fs::{Follow, Store, Tree};
use kiln_runtime::{
    CaptureBuffer, ExitStatus, MountTable, ProcessSpec, Program, Runtime, RuntimeConfig,
    RuntimeError, SharedTree, Stdio, Vfs,
};

fn guests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests")
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-runtime-guests");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles `tests/guests/c/<name>.c` (once per test process).
pub(crate) fn c_guest(name: &str) -> Arc<[u8]> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap();
    let src = guests_dir().join("c").join(format!("{name}.c"));
    let out = out_dir().join(format!("{name}-{}.wasm", std::process::id()));
    if !out.exists() {
        let st = Command::new("clang")
            .args(["--target=wasm32-wasi", "-O2", "-Wall", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run clang (Debian: clang, wasi-libc, libclang-rt-14-dev-wasm32)");
        assert!(st.success(), "clang failed for {}", src.display());
    }
    std::fs::read(&out).unwrap().into()
}

/// Builds the Rust test guest workspace for wasm32-wasip1 (once per test process).
pub(crate) fn rust_guest() -> Arc<[u8]> {
    static GUEST: OnceLock<Arc<[u8]>> = OnceLock::new();
    GUEST
        .get_or_init(|| {
            let dir = guests_dir().join("rust");
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-rust-guests");
            let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cmd.current_dir(&dir)
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip1",
                    "--target-dir",
                ])
                .arg(&target);
            for var in [
                "RUSTFLAGS",
                "CARGO_ENCODED_RUSTFLAGS",
                "CARGO_BUILD_TARGET",
                "CARGO_TARGET_DIR",
                "RUSTC_WORKSPACE_WRAPPER",
            ] {
                cmd.env_remove(var);
            }
            let st = cmd.status().expect("run cargo for the test guest");
            assert!(st.success(), "building the Rust test guest failed");
            std::fs::read(target.join("wasm32-wasip1/release/guest.wasm"))
                .unwrap()
                .into()
        })
        .clone()
}

pub(crate) fn runtime() -> Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-runtime-cache")),
            realtime_epoch: 1234,
        })
        .unwrap()
    })
    .clone()
}

pub(crate) fn store() -> Arc<Store> {
    Store::temp().unwrap()
}

pub(crate) fn new_tree(store: &Arc<Store>) -> SharedTree {
    Arc::new(parking_lot::Mutex::new(Tree::new(store)))
}

pub(crate) fn mkdir_p(tree: &SharedTree, path: &str) {
    let mut t = tree.lock();
    let mut cur = t.root();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        cur = match t.lookup(cur, c.as_bytes()) {
            Ok(i) => i,
            Err(_) => t.mkdir(cur, c.as_bytes(), 0o755, 0, 0).unwrap(),
        };
    }
}

pub(crate) fn write_file(tree: &SharedTree, path: &str, data: &[u8]) {
    let (dir, name) = path.rsplit_once('/').unwrap();
    mkdir_p(tree, dir);
    let mut t = tree.lock();
    let root = t.root();
    let d = if dir.is_empty() {
        root
    } else {
        t.resolve(root, dir.as_bytes(), Follow::Yes).unwrap()
    };
    let f = t.create_file(d, name.as_bytes(), 0o644, 0, 0).unwrap();
    t.write_at(f, 0, data).unwrap();
}

pub(crate) fn read_file(tree: &SharedTree, path: &str) -> Option<Vec<u8>> {
    let mut t = tree.lock();
    let root = t.root();
    let f = t.resolve(root, path.as_bytes(), Follow::Yes).ok()?;
    let size = t.metadata(f).ok()?.size as usize;
    let mut buf = vec![0u8; size];
    t.read_at(f, 0, &mut buf).ok()?;
    Some(buf)
}

pub(crate) fn vfs_with(tree: &SharedTree, mounts: MountTable) -> Vfs {
    Vfs::new(tree.clone(), mounts)
}

pub(crate) struct Out {
    pub status: Result<ExitStatus, RuntimeError>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub(crate) fn code(&self) -> i32 {
        match &self.status {
            Ok(s) => s.code(),
            Err(e) => panic!(
                "expected an exit status, got {e}\nstdout: {}\nstderr: {}",
                self.stdout, self.stderr
            ),
        }
    }
}

pub(crate) fn spec(program: Program, argv: &[&str], cwd: &str) -> ProcessSpec {
    let mut s = ProcessSpec::new(program, argv.iter().map(|s| s.to_string()).collect());
    s.cwd = cwd.into();
    s
}

pub(crate) fn module(bytes: &Arc<[u8]>, name: &str) -> Program {
    Program::Module {
        name: name.into(),
        bytes: bytes.clone(),
    }
}

/// Runs with captured stdout/stderr.
pub(crate) fn run_spec(vfs: &Vfs, mut spec: ProcessSpec) -> Out {
    let (out, err) = (CaptureBuffer::new(), CaptureBuffer::new());
    spec.stdout = Stdio::Capture(out.clone());
    spec.stderr = Stdio::Capture(err.clone());
    let status = runtime().run(vfs, spec);
    Out {
        status,
        stdout: String::from_utf8_lossy(&out.contents()).into_owned(),
        stderr: String::from_utf8_lossy(&err.contents()).into_owned(),
    }
}

pub(crate) fn run(vfs: &Vfs, bytes: &Arc<[u8]>, argv: &[&str], cwd: &str) -> Out {
    run_spec(vfs, spec(module(bytes, argv[0]), argv, cwd))
}
