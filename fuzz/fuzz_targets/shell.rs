//! Runs arbitrary text as a RUN script through kiln's shell on the in-memory host (no
//! wasm: every external command is "not found"), with small bounds, so any panic, abort,
//! stack overflow, hang or unbounded allocation in the interpreter is a bug.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_shell::io::Capture;
use kiln_shell::memhost::MemHost;
use kiln_shell::{Shell, ShellOptions};
use libfuzzer_sys::fuzz_target;

/// Shell values per input: small, so memory attacks hit the bound quickly.
const MEMORY: usize = 8 << 20;
/// Bytes per in-memory file.
const MAX_FILE: usize = 1 << 20;
/// Loops stop after this (the fuzzer's own timeout is 10 s).
const DEADLINE: Duration = Duration::from_secs(2);

fuzz_target!(|data: &[u8]| {
    let Ok(script) = std::str::from_utf8(data) else {
        return;
    };
    let host = Arc::new(MemHost::new(MAX_FILE, Some(Instant::now() + DEADLINE)));
    host.mkdir("/tmp/d");
    let (out, err) = (Capture::with_limit(MEMORY), Capture::with_limit(MEMORY));
    let opts = ShellOptions {
        env: vec![
            ("PATH".into(), "/bin".into()),
            ("HOME".into(), "/tmp".into()),
        ],
        cwd: "/tmp".into(),
        stdout: out,
        stderr: err,
        memory_limit: MEMORY,
        ..ShellOptions::default()
    };
    match Shell::new(host, opts).run_script(script) {
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
