//! Builds kiln's guest tools (`../guest-tools`, its own cargo workspace) for
//! wasm32-wasip1 and generates `bundled_gen.rs`, which embeds the resulting modules with
//! `include_bytes!` so the kiln binary is self-contained.
//!
//! The nested cargo gets a cleaned environment: flags meant for the host build
//! (RUSTFLAGS, a host `--target`, clippy's rustc wrapper, profile overrides) would break or
//! slow a wasm build. It has its own target dir (shared by every host profile, so `cargo
//! test`, `cargo build --release` and `cargo clippy` compile the guests once between them),
//! and this script reruns only when a guest source file changes.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

// The runtime's own engine configuration, so the code compiled here is what its engine
// would compile (see `precompile`).
#[path = "src/engine_config.rs"]
mod engine_config;

const TARGET: &str = "wasm32-wasip1";

/// The multicall modules: (cargo package, wasm file stem, tool list relative to guest-tools).
const MODULES: &[(&str, &str, &str)] = &[
    ("uutils-multicall", "uutils", "uutils/tools.txt"),
    ("kiln-tools", "kiln-tools", "kiln-tools/tools.txt"),
    // dpkg, apt and their helpers: a module of their own so that the OpenPGP and
    // decompression code they carry is loaded only by steps that run one of them.
    ("kiln-pkg", "kiln-pkg", "pkg/tools.txt"),
];

/// Environment the outer cargo sets for the host build that must not reach the nested one.
const SCRUB_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "__CARGO_FIX_PLZ",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

fn main() {
    if let Err(msg) = run() {
        eprintln!("error: building kiln guest tools: {msg}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);
    let guest_dir = manifest_dir.join("..").join("guest-tools");
    let guest_dir = guest_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", guest_dir.display()))?;
    let target_dir = match env::var_os("KILN_GUEST_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => guest_dir.join("target"),
    };

    println!("cargo:rerun-if-env-changed=KILN_GUEST_TARGET_DIR");
    emit_rerun_if_changed(&guest_dir, &target_dir)?;

    ensure_wasm_target()?;
    cargo_build(&guest_dir, &target_dir)?;
    let engine = precompile_engine()?;

    let mut gen_src = String::new();
    let mut tools: Vec<(String, usize)> = Vec::new();
    gen_src.push_str("pub(crate) static MODULES: [BundledModule; ");
    let _ = writeln!(gen_src, "{}] = [", MODULES.len());
    for (index, (_, stem, list)) in MODULES.iter().enumerate() {
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{stem}.wasm"));
        let bytes = fs::read(&built).map_err(|e| format!("{}: {e}", built.display()))?;
        let embedded = out_dir.join(format!("{stem}.wasm"));
        write_if_changed(&embedded, &bytes)?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let compiled = precompile(
            engine.as_ref(),
            &bytes,
            &out_dir.join(format!("{stem}.cwasm")),
        )?;
        let _ = writeln!(
            gen_src,
            "    BundledModule {{ name: {stem:?}, bytes: include_bytes!({:?}), sha256: {digest:?}, compiled: {compiled} }},",
            embedded.display().to_string()
        );
        for name in read_tool_list(&guest_dir.join(list))? {
            tools.push((name, index));
        }
    }
    gen_src.push_str("];\n");

    tools.sort();
    if let Some(pair) = tools.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("tool {:?} is listed by two modules", pair[0].0));
    }
    let _ = writeln!(
        gen_src,
        "/// (tool name, index into MODULES), sorted by name.\npub(crate) static TOOLS: [(&str, usize); {}] = [",
        tools.len()
    );
    for (name, index) in &tools {
        let _ = writeln!(gen_src, "    ({name:?}, {index}),");
    }
    gen_src.push_str("];\n");
    write_if_changed(&out_dir.join("bundled_gen.rs"), gen_src.as_bytes())
}

/// The engine that compiles the bundled modules ahead of time, so a fresh machine's first
/// RUN step does not spend seconds in cranelift. `None` when cross-compiling: the code
/// would be for another machine, so that kiln compiles on first use instead.
fn precompile_engine() -> Result<Option<wasmtime::Engine>, String> {
    if env_var("HOST")? != env_var("TARGET")? {
        return Ok(None);
    }
    wasmtime::Engine::new(&engine_config::engine_config())
        .map(Some)
        .map_err(|e| format!("wasmtime engine: {e:#}"))
}

/// Compiles `wasm` into `path` and returns the Rust expression embedding it (an empty
/// slice without an engine). The runtime checks at load that its engine accepts the code
/// (same wasmtime, settings and a host with every CPU feature it uses), else compiles.
fn precompile(
    engine: Option<&wasmtime::Engine>,
    wasm: &[u8],
    path: &Path,
) -> Result<String, String> {
    let Some(engine) = engine else {
        return Ok("&[]".into());
    };
    let code = engine
        .precompile_module(wasm)
        .map_err(|e| format!("precompiling {}: {e:#}", path.display()))?;
    write_if_changed(path, &code)?;
    Ok(format!("include_bytes!({:?})", path.display().to_string()))
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("{name} is not set"))
}

/// Reports every guest source file and directory (not the guest target dir), so that
/// adding, editing or removing a source reruns this script and nothing else does.
fn emit_rerun_if_changed(dir: &Path, target_dir: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        if path == target_dir || name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            emit_rerun_if_changed(&path, target_dir)?;
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Ok(())
}

/// Adds the wasm target through rustup when this toolchain lacks it. rustup installs
/// `rust-toolchain.toml`'s targets only when it installs the toolchain, so a machine that
/// already had the pinned toolchain would otherwise fail its first `cargo build` here.
fn ensure_wasm_target() -> Result<(), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && libdir.is_dir() {
        return Ok(());
    }
    // Set by rustup's proxies; without it this toolchain is not rustup's to change.
    let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") else {
        return Ok(());
    };
    println!(
        "cargo:warning=the {TARGET} target kiln's guest tools need is missing from toolchain {toolchain}: running `rustup target add {TARGET}`"
    );
    let status = Command::new("rustup")
        .args(["target", "add", TARGET, "--toolchain", &toolchain])
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("cannot run rustup to add the {TARGET} target: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`rustup target add {TARGET} --toolchain {toolchain}` failed ({status})"
        ))
    }
}

fn cargo_build(guest_dir: &Path, target_dir: &Path) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guest_dir)
        .arg("build")
        .arg("--release")
        .arg("--locked")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(guest_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for (package, _, _) in MODULES {
        cmd.arg("-p").arg(package);
    }
    for var in SCRUB_ENV {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PROFILE_") || key.starts_with("CARGO_FEATURE_") {
            cmd.env_remove(key.as_ref());
        }
    }
    // Our stdout is cargo's directive channel; the nested build's chatter goes to stderr.
    let status = cmd
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo build --target {TARGET}` in {} failed ({status}); is the {TARGET} target \
             installed (`rustup target add {TARGET}`)?",
            guest_dir.display()
        ))
    }
}

fn read_tool_list(path: &Path) -> Result<Vec<String>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// Leaves an unchanged file untouched so its mtime does not trigger rebuilds downstream.
fn write_if_changed(path: &Path, data: &[u8]) -> Result<(), String> {
    if fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))
}
