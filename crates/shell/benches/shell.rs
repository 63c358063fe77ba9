//! kiln's shell against `busybox sh` on the same machine:
//! 1. a script running 1,000 short external commands;
//! 2. a 4-stage pipeline moving 50 MB.
//!
//! kiln runs each command as a wasm instance (bundled tools) over a virtual tree;
//! busybox runs host programs (or its own applets) natively. Prints times and ratios.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_fs::{Snapshot, Store, Tree};
use kiln_runtime::{Limits, MountTable, NetworkPolicy, Runtime, RuntimeConfig, Vfs};
use kiln_shell::io::Capture;
use kiln_shell::{RuntimeHost, Shell, ShellOptions};

const SHORT: &str = r#"i=0
while [ $i -lt 1000 ]; do
  basename /usr/lib/file.txt .txt > /dev/null
  i=$((i+1))
done
echo done"#;

const PIPE: &str = "head -c 52428800 /dev/zero | tr '\\0' a | cat | wc -c";

fn kiln(rt: &Runtime, script: &str) -> (Duration, String) {
    let store = Store::temp().expect("store");
    let tree = Tree::from_snapshot(&Snapshot::empty(&store));
    let vfs = Vfs::new(Arc::new(parking_lot::Mutex::new(tree)), MountTable::new());
    let host = Arc::new(RuntimeHost::new(
        rt.clone(),
        vfs,
        Limits::default(),
        NetworkPolicy::default(),
    ));
    let out = Capture::new();
    let opts = ShellOptions {
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        stdout: out.clone(),
        ..Default::default()
    };
    let mut sh = Shell::new(host, opts);
    let t = Instant::now();
    let st = sh.run_script(script).expect("script parses");
    let d = t.elapsed();
    assert!(st.success(), "kiln script failed: {st:?}");
    (d, String::from_utf8_lossy(&out.take()).trim().to_string())
}

fn busybox(script: &str) -> Option<(Duration, String)> {
    let t = Instant::now();
    let out = Command::new("busybox")
        .args(["sh", "-c", script])
        .output()
        .ok()?;
    let d = t.elapsed();
    out.status
        .success()
        .then(|| (d, String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

fn report(name: &str, ops: f64, unit: &str, k: (Duration, String), b: Option<(Duration, String)>) {
    let ks = k.0.as_secs_f64();
    println!(
        "{name}: kiln {:.3} s ({:.3} ms/{unit}), output {:?}",
        ks,
        ks * 1e3 / ops,
        k.1
    );
    match b {
        Some((bd, bo)) => {
            let bs = bd.as_secs_f64();
            println!(
                "{name}: busybox sh {:.3} s ({:.3} ms/{unit}), output {:?}",
                bs,
                bs * 1e3 / ops,
                bo
            );
            println!("{name}: ratio kiln/busybox = {:.2}x", ks / bs);
        }
        None => println!("{name}: busybox sh not available"),
    }
}

fn main() {
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(std::env::temp_dir().join("kiln-shell-bench-modules")),
        ..Default::default()
    })
    .expect("runtime");
    // Warm-up: compile (or load from the disk cache) the modules used below.
    kiln(
        &rt,
        "basename /a/b; head -c 1 /dev/zero | tr '\\0' a | cat | wc -c",
    );
    report(
        "1000 short commands",
        1000.0,
        "command",
        kiln(&rt, SHORT),
        busybox(SHORT),
    );
    report(
        "4-stage pipeline, 50 MB",
        50.0,
        "MB",
        kiln(&rt, PIPE),
        busybox(PIPE),
    );
}
