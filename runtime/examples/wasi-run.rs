//! Runs one WASI p1 command module in kiln's runtime, the way conformance suites drive a
//! runtime: `wasi-run [--env K=V]... [--root HOSTDIR] module.wasm [args...]`.
//! `--root` copies a host directory into a fresh virtual tree used as `/` (changes are
//! discarded). stdout/stderr go to the host's; exit status is the guest's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use kiln_fs::{Store, Tree};
use kiln_runtime::{
    ModuleRun, MountTable, OpenOptions, Opened, Runtime, RuntimeConfig, Stdio, Vfs,
};

fn copy_in(vfs: &Vfs, host: &Path, at: &str) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(host)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = format!("{}/{name}", at.trim_end_matches('/'));
        let ft = e.file_type()?;
        let err = |e: kiln_runtime::Errno| std::io::Error::other(format!("{path}: {e}"));
        if ft.is_dir() {
            vfs.mkdir(b"/", path.as_bytes(), 0o755).map_err(err)?;
            copy_in(vfs, &e.path(), &path)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(e.path())?;
            vfs.symlink(target.to_string_lossy().as_bytes(), b"/", path.as_bytes())
                .map_err(err)?;
        } else {
            let data = std::fs::read(e.path())?;
            let opts = OpenOptions {
                mode: 0o644,
                ..OpenOptions::write_truncate()
            };
            if let Opened::File(f) = vfs.open(b"/", path.as_bytes(), &opts).map_err(err)? {
                f.write(&data).map_err(err)?;
            }
        }
    }
    Ok(())
}

fn sink(w: impl Write + Send + 'static) -> Stdio {
    let w = parking_lot::Mutex::new(w);
    Stdio::Sink(Arc::new(move |b: &[u8]| {
        let mut w = w.lock();
        let _ = w.write_all(b);
        let _ = w.flush();
    }))
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut env = Vec::new();
    let mut root = None;
    while let Some(a) = args.peek() {
        match a.as_str() {
            "--env" => {
                args.next();
                let kv = args.next().expect("--env K=V");
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                env.push((k.to_owned(), v.to_owned()));
            }
            "--root" => {
                args.next();
                root = Some(args.next().expect("--root DIR"));
            }
            _ => break,
        }
    }
    let module = args
        .next()
        .expect("usage: wasi-run [--env K=V]... [--root DIR] module.wasm [args...]");
    let bytes = std::fs::read(&module).unwrap_or_else(|e| panic!("{module}: {e}"));
    let store = Store::temp().expect("content store");
    let tree = Arc::new(parking_lot::Mutex::new(Tree::new(&store)));
    let vfs = Vfs::new(tree, MountTable::new());
    if let Some(root) = &root {
        copy_in(&vfs, Path::new(root), "/").unwrap_or_else(|e| panic!("copying {root}: {e}"));
    }
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(std::env::temp_dir().join("kiln-wasi-run-cache")),
        realtime_epoch: 0,
    })
    .expect("runtime");
    let name = Path::new(&module)
        .file_name()
        .map_or(module.clone(), |n| n.to_string_lossy().into_owned());
    let mut argv = vec![name.clone()];
    argv.extend(args);
    let run = ModuleRun {
        name,
        bytes: bytes.into(),
        argv,
        env,
        cwd: "/".into(),
        stdin: Stdio::Null,
        stdout: sink(std::io::stdout()),
        stderr: sink(std::io::stderr()),
        limits: kiln_runtime::Limits::default(),
        network: kiln_runtime::NetworkPolicy::default(),
        preopens: Vec::new(),
    };
    match rt.run_module(&vfs, run) {
        Ok(status) => std::process::exit(status.code()),
        Err(e) => {
            eprintln!("wasi-run: {e}");
            std::process::exit(134);
        }
    }
}
