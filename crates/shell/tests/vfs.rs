//! kiln-specific behaviour on the virtual tree that has no dash counterpart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure
#![cfg(feature = "runtime")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use kiln_shell::io::Capture;
use kiln_shell::{Host, Shell, ShellError, ShellOptions};

struct Run {
    out: String,
    err: String,
    status: i32,
}

fn run(host: Arc<dyn Host>, script: &str) -> Run {
    let (tx, rx) = std::sync::mpsc::channel();
    let script = script.to_string();
    std::thread::spawn(move || {
        let out = Capture::new();
        let err = Capture::new();
        let opts = ShellOptions {
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: "/work".into(),
            stdout: out.clone(),
            stderr: err.clone(),
            ..Default::default()
        };
        let st = Shell::new(host, opts).run_script(&script).unwrap();
        let _ = tx.send(Run {
            out: String::from_utf8_lossy(&out.take()).into_owned(),
            err: String::from_utf8_lossy(&err.take()).into_owned(),
            status: st.0,
        });
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("script finished in time")
}

#[test]
fn native_elf_is_refused_with_a_clear_message() {
    let host = common::vfs::host_with(&[("tool", "\x7fELF\x02\x01\x01rest-of-binary")]);
    let r = run(host, "chmod +x tool; ./tool arg; echo \"status $?\"");
    assert_eq!(r.out, "status 126\n");
    assert!(
        r.err.contains("./tool") || r.err.contains("/work/tool"),
        "{}",
        r.err
    );
    assert!(r.err.contains("WebAssembly"), "{}", r.err);
}

#[test]
fn not_found_is_127_with_sh_message() {
    let r = run(
        common::vfs::host_with(&[]),
        "definitely_not_a_tool_xyz; echo $?",
    );
    assert_eq!(r.out, "127\n");
    assert_eq!(r.err, "sh: definitely_not_a_tool_xyz: not found\n");
    assert_eq!(r.status, 0);
}

#[test]
fn yes_into_head_terminates() {
    let r = run(
        common::vfs::host_with(&[]),
        "yes | head -n1; echo \"end $?\"",
    );
    assert_eq!(r.out, "y\nend 0\n");
}

#[test]
fn executable_text_without_shebang_runs_as_shell_script() {
    let host = common::vfs::host_with(&[("s", "echo from-script \"$1\"\n")]);
    let r = run(host, "chmod +x s; ./s x");
    assert_eq!(r.out, "from-script x\n", "{}", r.err);
}

#[test]
fn redirections_stay_inside_the_virtual_tree() {
    let host = common::vfs::host_with(&[]);
    let r = run(
        host.clone(),
        "echo x > ../../../../tmp/kiln-shell-escape-test; cat /tmp/kiln-shell-escape-test",
    );
    assert_eq!(r.out, "x\n", "{}", r.err);
    assert!(!std::path::Path::new("/tmp/kiln-shell-escape-test").exists());
    assert!(host.stat("/tmp/kiln-shell-escape-test", true).is_ok());
}

#[test]
fn guest_spawned_shell_comes_back_to_the_interpreter() {
    let r = run(
        common::vfs::host_with(&[]),
        "printf 'a\\nb\\n' | xargs sh -c 'echo \"[$0] [$1]\"'",
    );
    assert_eq!(r.out, "[a] [b]\n", "{}", r.err);
}

#[test]
fn syntax_error_is_reported_before_running() {
    let mut sh = Shell::new(common::vfs::host_with(&[]), ShellOptions::default());
    assert!(matches!(
        sh.run_script("if true; then echo x"),
        Err(ShellError::Syntax(_))
    ));
}

#[test]
fn exec_form_runs_argv_without_shell_processing() {
    let out = Capture::new();
    let opts = ShellOptions {
        stdout: out.clone(),
        ..Default::default()
    };
    let tree = Arc::new(parking_lot::Mutex::new(common::vfs::tree_with(&[])));
    let vfs = kiln_runtime::Vfs::new(tree, kiln_runtime::MountTable::new());
    let mut sh = Shell::on_runtime(
        common::vfs::runtime(),
        vfs,
        kiln_runtime::Limits::default(),
        kiln_runtime::NetworkPolicy::default(),
        opts,
    );
    let st = sh
        .run_argv(&["echo".into(), "$HOME".into(), "*".into()])
        .unwrap();
    assert!(st.success());
    assert_eq!(out.take(), b"$HOME *\n");
    let st = sh
        .run_argv(&["sh".into(), "-c".into(), "exit 3".into()])
        .unwrap();
    assert_eq!(st.0, 3);
}

#[test]
fn builtin_only_loop_stops_at_the_step_deadline() {
    use kiln_runtime::{Limits, MountTable, NetworkPolicy, Vfs};
    let tree = Arc::new(parking_lot::Mutex::new(common::vfs::tree_with(&[])));
    let mut limits = Limits::default();
    limits.deadline = Some(std::time::Instant::now() + Duration::from_millis(300));
    let vfs = Vfs::new(tree, MountTable::new());
    let host = Arc::new(kiln_shell::RuntimeHost::new(
        common::vfs::runtime(),
        vfs,
        limits,
        NetworkPolicy::default(),
    ));
    let r = run(host, "while :; do :; done; echo never");
    assert_eq!(r.status, 124);
    assert_eq!(r.out, "");
    assert!(r.err.contains("time limit"), "{}", r.err);
}

/// Runs `script` on a runtime host with `processes` allowed at once and `memory` bytes of
/// shell values; the run's error (a bound hit), stdout and stderr.
fn run_bounded(
    script: &str,
    processes: u32,
    memory: usize,
) -> (Result<i32, ShellError>, Vec<u8>, String) {
    let tree = Arc::new(parking_lot::Mutex::new(common::vfs::tree_with(&[])));
    let vfs = kiln_runtime::Vfs::new(tree, kiln_runtime::MountTable::new());
    let mut limits = kiln_runtime::Limits::default();
    limits.processes = processes;
    let host = Arc::new(kiln_shell::RuntimeHost::new(
        common::vfs::runtime(),
        vfs,
        limits,
        kiln_runtime::NetworkPolicy::default(),
    ));
    let (out, err) = (Capture::new(), Capture::new());
    let opts = ShellOptions {
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: "/work".into(),
        stdout: out.clone(),
        stderr: err.clone(),
        memory_limit: memory,
        ..Default::default()
    };
    let r = Shell::new(host, opts).run_script(script).map(|s| s.0);
    (
        r,
        out.take(),
        String::from_utf8_lossy(&err.take()).into_owned(),
    )
}

#[test]
fn shell_threads_share_the_steps_process_limit() {
    // The recursing stage is a thread that stays alive while it recurses, so the count
    // grows by one per level whatever the scheduling (with `true | f` a quick `true` may
    // exit first and the nesting limit be reached instead).
    let (r, _, err) = run_bounded("f(){ f | true; }; f", 16, 64 << 20);
    assert!(
        matches!(
            r,
            Err(ShellError::Limit(kiln_shell::LimitError::Processes {
                limit: 16
            }))
        ),
        "{r:?} {err}"
    );
    // Within the limit, pipelines of programs run as before.
    let (r, out, err) = run_bounded("seq 1 5 | sort -r | head -n 2", 16, 64 << 20);
    assert_eq!(r.unwrap(), 0, "{err}");
    assert_eq!(out, b"5\n4\n");
}

#[test]
fn endless_program_output_in_command_substitution_stops_at_the_memory_limit() {
    let start = std::time::Instant::now();
    let (r, _, err) = run_bounded("x=$(yes)", 64, 4 << 20);
    assert!(
        matches!(r, Err(ShellError::Limit(kiln_shell::LimitError::Memory { limit, .. })) if limit == 4 << 20),
        "{r:?} {err}"
    );
    assert!(
        err.contains("the output of a $(…) command substitution"),
        "{err}"
    );
    // `yes` got EPIPE once the capture was full, rather than running to the runtime's
    // 1 GiB output limit.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let (r, out, err) = run_bounded("x=$(seq 1 100000); echo ${#x}", 64, 4 << 20);
    assert_eq!(r.unwrap(), 0, "{err}");
    assert_eq!(out, b"588894\n");
}

#[test]
fn non_utf8_bytes_survive_variables_substitution_read_and_output() {
    // printf writes the raw bytes; cat (a wasm program) reads them back into $(…).
    let script = "printf '\\377TOKEN\\376' > s
x=$(cat s)
printf %s \"$x\" > f
echo \"$x\" > g
read -r y < s
printf '%s\\n' \"$y\" > h
cat > i <<END
$x
END
cat <<< \"$x\" > j
n=$(printf 'a\\377b'); echo \"${#n}\" > k
cat f g h i j k";
    let (r, out, err) = run_bounded(script, 64, 64 << 20);
    assert_eq!(r.unwrap(), 0, "{err}");
    let want: &[u8] =
        b"\xffTOKEN\xfe\xffTOKEN\xfe\n\xffTOKEN\xfe\n\xffTOKEN\xfe\n\xffTOKEN\xfe\n3\n";
    assert_eq!(out, want, "{}", String::from_utf8_lossy(&out));
}
