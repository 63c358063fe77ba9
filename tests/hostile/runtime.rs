//! Hostile inputs: runtime. The compiled-module cache, wasm resource limits and file
//! descriptor modes, attacked through the real binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

/// The `.cwasm` files of a module cache directory.
fn cwasm_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

/// A private module cache for one test, seeded from the suite's shared one when it
/// exists (so the bundled tools need not be compiled again), since this test damages it.
fn private_module_cache(ws: &Workspace) -> PathBuf {
    let shared = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-modules");
    let own = ws.path("modules");
    std::fs::create_dir_all(&own).expect("module dir");
    for entry in std::fs::read_dir(&shared).into_iter().flatten().flatten() {
        let _ = std::fs::copy(entry.path(), own.join(entry.file_name()));
    }
    own
}

/// Bytes 4-68 KiB of a file set to 0xCC (`int3` on x86: code run from it traps).
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read cwasm");
    let end = bytes.len().min(68 << 10);
    let start = (4 << 10).min(end);
    bytes[start..end].fill(0xCC);
    std::fs::write(path, bytes).expect("write cwasm");
}

#[test]
fn corrupted_compiled_modules_are_recompiled_not_run() {
    let ws = Workspace::new();
    let modules = private_module_cache(&ws);
    // A module of the image's own: kiln's bundled tools are compiled when kiln is built
    // and embedded, so only modules from images reach the on-disk module cache.
    ws.write("echo.wasm", echo_module());
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY --chmod=755 echo.wasm /echo\nRUN /echo\n",
    );
    let build = || {
        ws.kiln()
            .env("KILN_MODULE_CACHE", &modules)
            .args(["build", "--progress", "plain", "--no-cache"])
            .arg(ws.context())
            .output()
            .expect("run kiln")
    };
    assert_ok(&build());
    let files = cwasm_files(&modules);
    assert!(!files.is_empty(), "no compiled module was cached");
    for f in &files {
        corrupt(f);
    }
    let out = build();
    assert_no_crash(&out);
    assert_ok(&out);
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(log.contains("CAChe-TesT"), "step output missing:\n{log}");
    // The module the step ran was compiled afresh and its cache file replaced.
    let rewritten = files.iter().any(|f| {
        let bytes = std::fs::read(f).expect("read cwasm");
        let end = bytes.len().min(68 << 10);
        !bytes[(4 << 10).min(end)..end].iter().all(|&b| b == 0xCC)
    });
    assert!(rewritten, "no corrupted cache file was replaced");
}

/// A WASI command that prints `CAChe-TesT`.
fn echo_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write"
                (func $fd_write (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 16) "CAChe-TesT\n")
            (func (export "_start")
                (i32.store (i32.const 0) (i32.const 16))
                (i32.store (i32.const 4) (i32.const 11))
                (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    )
    .expect("valid WAT")
}

/// A WASI command with three memories of one page each whose `_start` grows each by
/// 24,576 pages (1.5 GiB): 4.5 GiB together, each alone under the 4 GiB memory limit.
/// Hand-assembled so the test needs no WAT toolchain.
fn three_memories_module() -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    // type section: one type, () -> ()
    m.extend([0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
    // function section: one function of type 0
    m.extend([0x03, 0x02, 0x01, 0x00]);
    // memory section: three memories, min 1 page, no max
    m.extend([0x05, 0x07, 0x03, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01]);
    // export section: "_start" -> func 0
    m.extend([0x07, 0x0a, 0x01, 0x06]);
    m.extend(b"_start");
    m.extend([0x00, 0x00]);
    // code section: for each memory, i32.const 24576; memory.grow idx; drop
    let mut body = vec![0x00]; // no locals
    for idx in 0u8..3 {
        body.extend([0x41, 0x80, 0xc0, 0x01, 0x40, idx, 0x1a]);
    }
    body.push(0x0b);
    m.extend([0x0a, body.len() as u8 + 2, 0x01, body.len() as u8]);
    m.extend(body);
    m
}

#[test]
fn a_module_with_several_memories_is_refused() {
    let ws = Workspace::new();
    ws.write("mm.wasm", three_memories_module());
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY --chmod=755 mm.wasm /mm\nRUN /mm\n",
    );
    let (out, peak_kib) = run_measured(
        ws.kiln()
            .args(["build", "--progress", "plain"])
            .arg(ws.context()),
    );
    assert_fails_with(&out, "multiple memories");
    // Nothing near the 4.5 GB the memories would have taken was ever touched.
    assert!(peak_kib < 512 << 10, "peak RSS {peak_kib} KiB");
}

/// A context file larger than what the tree keeps inline, with a marker in it.
fn big_marked_file(marker: &str) -> Vec<u8> {
    let mut body = marker.as_bytes().repeat(8);
    body.resize(256 << 10, b'.');
    body.extend(marker.as_bytes());
    body
}

#[test]
fn writable_bind_and_tmpfs_data_never_rests_in_the_cache() {
    const MARKER: &str = "scratch-marker-5b1d0e9a";
    let ws = Workspace::new();
    ws.write("big.txt", big_marked_file(MARKER));
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=bind,target=/ctx,rw --mount=type=tmpfs,target=/t \
         cp /ctx/big.txt /t/copy && cat /t/copy > /ctx/again && wc -c /ctx/again\n",
    );
    let out = ws.build(&[]);
    assert_ok(&out);
    assert!(text(&out.stdout).contains("262167") || text(&out.stderr).contains("262167"));
    assert_eq!(find_in_tree(&ws.cache(), MARKER.as_bytes()), None);
}

/// A WASI command (one memory, an empty `_start`) whose data segment holds `data`:
/// compiled code embeds it, so a cached `.cwasm` of it would hold these bytes.
fn module_with_data(data: &[u8]) -> Vec<u8> {
    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        let mut s = vec![id];
        leb(&mut s, body.len());
        s.extend(body);
        s
    }
    fn leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend(section(1, &[0x01, 0x60, 0x00, 0x00]));
    m.extend(section(3, &[0x01, 0x00]));
    m.extend(section(5, &[0x01, 0x00, 0x01]));
    let mut exports = vec![0x02, 0x06];
    exports.extend(b"memory");
    exports.extend([0x02, 0x00, 0x06]);
    exports.extend(b"_start");
    exports.extend([0x00, 0x00]);
    m.extend(section(7, &exports));
    m.extend(section(10, &[0x01, 0x02, 0x00, 0x0b]));
    let mut seg = vec![0x01, 0x00, 0x41, 0x00, 0x0b];
    leb(&mut seg, data.len());
    seg.extend(data);
    m.extend(section(11, &seg));
    m
}

#[test]
fn a_module_built_from_a_secret_is_never_cached_on_disk() {
    const MARKER: &[u8] = b"module-secret-3e8a61f0c2";
    let ws = Workspace::new();
    let modules = private_module_cache(&ws);
    let secret = ws.path("secret-m");
    std::fs::write(&secret, module_with_data(&MARKER.repeat(4))).expect("secret file");
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=secret,id=m cp /run/secrets/m /m.wasm && chmod +x /m.wasm \
         && /m.wasm && rm /m.wasm && echo ran-module-$((6 * 7))\n",
    );
    let out = ws
        .kiln()
        .env("KILN_MODULE_CACHE", &modules)
        .args(["build", "--progress", "plain", "--secret"])
        .arg(format!("id=m,src={}", secret.display()))
        .arg(ws.context())
        .output()
        .expect("run kiln");
    assert_ok(&out);
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(log.contains("ran-module-42"), "{log}");
    assert_eq!(find_in_tree(&modules, MARKER), None);
    assert_eq!(find_in_tree(&ws.cache(), MARKER), None);
}

#[test]
fn a_program_writing_to_a_read_only_fd_fails_with_ebadf() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN echo original > /f && exec 3</f && cat /f >&3\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "Bad file descriptor");
}

/// Spawns `cmd`, waits until `needle` appears in its stdout or stderr (or `limit`
/// passes), then kills it with SIGKILL. Returns whether the needle was seen.
fn kill_when_printed(cmd: &mut std::process::Command, needle: &str, limit: Duration) -> bool {
    use std::io::BufRead;
    let mut child = spawn_piped(cmd);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ]
    .into_iter()
    .map(|pipe| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        })
    })
    .collect();
    drop(tx);
    let deadline = std::time::Instant::now() + limit;
    let mut seen = false;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => {
                seen = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
    for r in readers {
        let _ = r.join();
    }
    seen
}

#[test]
fn sigkill_mid_step_leaves_no_spilled_secret() {
    const SECRET: &str = "spill-secret-9d2c4b7a";
    let ws = Workspace::new();
    let secret = ws.path("secret-s");
    std::fs::write(&secret, SECRET).expect("secret file");
    // 2^12 copies of the secret (100 KB): past the inline size, so both the tmpfs file
    // and its copy in the step's tree live in spill files when kiln is killed.
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=secret,id=s --mount=type=tmpfs,target=/t \
         cat /run/secrets/s > /t/x && \
         for i in 1 2 3 4 5 6 7 8 9 10 11 12; do cat /t/x /t/x > /t/y && mv /t/y /t/x; done && \
         cp /t/x /big && echo spilled-$((40 + 2)) && while :; do :; done\n",
    );
    let mut cmd = ws.kiln();
    cmd.args(["build", "--progress", "plain", "--secret"])
        .arg(format!("id=s,src={}", secret.display()))
        .arg(ws.context());
    assert!(
        kill_when_printed(&mut cmd, "spilled-42", Duration::from_secs(120)),
        "the step never reached its busy loop"
    );
    assert_eq!(find_in_tree(&ws.cache(), SECRET.as_bytes()), None);
    assert_eq!(find_in_tree(&ws.store(), SECRET.as_bytes()), None);
}
