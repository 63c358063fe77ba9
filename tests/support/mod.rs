//! Shared helpers for kiln's end-to-end tests (`tests/*.rs`), which drive the real
//! `kiln` binary: a temp workspace with its own cache and image store, a loopback HTTP
//! server with basic auth, and readers for the images kiln writes.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the `kiln` binary built for this test run.
pub(crate) fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

/// A scratch workspace: a build context directory plus private cache and image store,
/// so tests never touch the user's real ones and can inspect everything kiln wrote.
pub(crate) struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub(crate) fn context(&self) -> PathBuf {
        let p = self.dir.path().join("ctx");
        std::fs::create_dir_all(&p).expect("context dir");
        p
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub(crate) fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file into the build context.
    pub(crate) fn write(&self, rel: &str, body: impl AsRef<[u8]>) -> PathBuf {
        let p = self.context().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, body).expect("write");
        p
    }

    /// A `kiln` command with this workspace's cache and store.
    pub(crate) fn kiln(&self) -> Command {
        let mut c = Command::new(kiln_bin());
        c.env("KILN_CACHE", self.cache())
            .env("KILN_STORE", self.store())
            // Compiled tool modules are shared by all tests: they hold no image data.
            .env(
                "KILN_MODULE_CACHE",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-modules"),
            )
            .env_remove("SOURCE_DATE_EPOCH")
            .current_dir(self.dir.path());
        c
    }

    /// Runs `kiln build` with `args` (the context is appended); returns the output.
    pub(crate) fn build(&self, args: &[&str]) -> Output {
        self.kiln()
            .arg("build")
            .args(["--progress", "plain"])
            .args(args)
            .arg(self.context())
            .output()
            .expect("run kiln")
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads a JSON blob of the workspace's local image store by digest.
pub(crate) fn store_blob(ws: &Workspace, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let path = ws.store().join("blobs/sha256").join(hex);
    serde_json::from_slice(&std::fs::read(path).expect("store blob")).expect("JSON blob")
}

/// The config of the image tagged `tag` in the workspace's local image store.
pub(crate) fn config_of(ws: &Workspace, tag: &str) -> serde_json::Value {
    let index = ws.store().join("index.json");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(index).expect("index.json")).expect("index");
    let name = format!("{tag}:latest");
    let manifest = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name.as_str())
        .unwrap_or_else(|| panic!("no {name} in {index}"));
    let manifest = store_blob(ws, manifest["digest"].as_str().expect("digest"));
    store_blob(ws, manifest["config"]["digest"].as_str().expect("config"))
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Panics with kiln's output unless it succeeded.
pub(crate) fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "kiln failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Every file under `dir` (recursively), for "the secret is nowhere" checks.
pub(crate) fn all_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

/// Whether `needle` occurs in any file under `dir`; also looks inside gzip/zstd blobs.
pub(crate) fn find_in_tree(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    all_files(dir).into_iter().find(|path| {
        let Ok(bytes) = std::fs::read(path) else {
            return false;
        };
        contains(&bytes, needle) || contains(&decompressed(&bytes), needle)
    })
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The bytes inside a gzip or zstd blob (empty if it is neither).
pub(crate) fn decompressed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let _ = flate2::read::GzDecoder::new(bytes).read_to_end(&mut out);
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        && let Ok(mut d) = zstd::stream::read::Decoder::new(bytes)
    {
        let _ = d.read_to_end(&mut out);
    }
    out
}

mod server;
#[allow(unused_imports)] // build.rs's tests don't start a server
pub(crate) use server::{HelloServer, Reply, RouteServer};

pub(crate) mod apt;
pub(crate) mod debian;
mod image;
#[allow(unused_imports)] // only some test binaries build from an image
pub(crate) use image::{host_arch, write_layout};

mod registry;
#[allow(unused_imports)] // not every test binary drives a registry
pub(crate) use registry::{Registry, have, start_registry};

/// Panics unless kiln ended with an exit status of its own: a signal (abort, SIGSEGV,
/// SIGTRAP) or a Rust panic message means kiln crashed instead of reporting an error.
pub(crate) fn assert_no_crash(out: &Output) {
    let stderr = text(&out.stderr);
    assert!(
        out.status.code().is_some() && !stderr.contains("panicked at"),
        "kiln crashed ({}):\n--- stderr\n{}",
        out.status,
        stderr
    );
}

/// Panics unless kiln failed cleanly (non-zero exit, no crash) with `needle` in stderr.
pub(crate) fn assert_fails_with(out: &Output, needle: &str) {
    assert_no_crash(out);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(needle),
        "expected a failure mentioning {needle:?}, got {}:\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        stderr
    );
}

/// Starts `cmd` with no stdin and both output streams piped.
pub(crate) fn spawn_piped(cmd: &mut Command) -> std::process::Child {
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kiln")
}

/// Runs `cmd` to completion and returns its output with its peak resident set size in
/// KiB (from `wait4`'s rusage, so it is the child's own peak, not the test process's).
#[cfg(unix)]
pub(crate) fn run_measured(cmd: &mut Command) -> (Output, u64) {
    let (out, usage) = run_with_usage(cmd);
    (out, usage.peak_kib)
}

/// What a finished child used, from `wait4`'s rusage.
#[cfg(unix)]
pub(crate) struct Usage {
    pub peak_kib: u64,
    /// User plus system CPU seconds. Tests that compare costs compare these, not wall
    /// time: a loaded CI machine stretches wall time several-fold, CPU time barely.
    pub cpu_s: f64,
}

/// Runs `cmd` to completion; its output and what it used.
#[cfg(unix)]
pub(crate) fn run_with_usage(cmd: &mut Command) -> (Output, Usage) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = spawn_piped(cmd);
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unwaited child; both out-pointers are valid locals.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    };
    // The child is reaped; dropping `child` must not wait on it again (it does not).
    drop(child);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let used = Usage {
        peak_kib: usage.ru_maxrss as u64,
        cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
    };
    (output, used)
}
