//! Hostile inputs: shell. RUN scripts that recurse, nest, fork or allocate without end
//! must fail the step with an error naming the shell's limit (kiln exits non-zero, never
//! aborts), and scripts within the limits must behave as dash does.

#[allow(unused_imports)]
use crate::support::*;

/// Builds a one-step image running `script`; returns the output and kiln's peak RSS (KiB).
fn build_run(script: &str) -> (std::process::Output, u64) {
    let ws = Workspace::new();
    ws.write("Dockerfile", format!("FROM scratch\nRUN {script}\n"));
    let mut cmd = ws.kiln();
    cmd.args(["build", "--progress", "plain"]).arg(ws.context());
    run_measured(&mut cmd)
}

const MIB_KIB: u64 = 1024;

#[test]
fn endless_function_recursion_is_a_nesting_error() {
    let (out, _) = build_run("f(){ f; }; f");
    assert_fails_with(&out, "nesting too deep (limit 20000 levels");
}

#[test]
fn recursion_5000_deep_finishes_as_in_dash() {
    let (out, _) = build_run(
        "f(){ [ $1 -lt 5000 ] && f $(($1+1)); true; }; f 0 && echo deep-ok > /ok && cat /ok",
    );
    assert_ok(&out);
    assert!(text(&out.stdout).contains("deep-ok") || text(&out.stderr).contains("deep-ok"));
}

#[test]
fn deeply_nested_command_substitution_runs() {
    // ~800 levels of $( crashed brush-parser's stack; it is within the parse limit.
    let n = 800;
    let script = format!("echo {}x{} > /x", "$(echo ".repeat(n), ")".repeat(n));
    let (out, _) = build_run(&script);
    assert_ok(&out);
}

#[test]
fn nesting_beyond_the_parse_limit_is_an_error() {
    for script in [
        format!("echo $(( {}1{} ))", "(".repeat(5000), ")".repeat(5000)),
        format!("{}echo x{}", "( ".repeat(3000), " )".repeat(3000)),
    ] {
        let (out, _) = build_run(&script);
        assert_fails_with(&out, "nesting too deep to parse (limit 1000 levels");
    }
}

#[test]
fn pipeline_bomb_hits_the_process_limit() {
    let (out, _) = build_run("f(){ f | f; }; f");
    assert_fails_with(&out, "too many processes (limit 512)");
}

#[test]
fn background_bomb_fails_the_step_although_the_script_ends_with_true() {
    let (out, _) = build_run("f() { f | f & }; f; true");
    assert_fails_with(&out, "too many processes (limit 512)");
}

#[test]
fn endless_read_is_bounded_by_the_memory_limit() {
    let (out, peak) = build_run("read x < /dev/zero");
    assert_fails_with(&out, "shell memory limit exceeded by a line read by `read`");
    // Was 1.7 GB and growing; ~55 MiB now (the line stops at a ninth of the 256 MiB
    // budget, since splitting it costs 8 more bytes a character).
    assert!(peak < 200 * MIB_KIB, "peak RSS {peak} KiB");
}

#[test]
fn doubling_a_variable_is_bounded_by_the_memory_limit() {
    let (out, peak) = build_run("x=0123456789abcdef; while :; do x=\"$x$x\"; done");
    assert_fails_with(&out, "shell memory limit exceeded");
    assert!(out_mentions(&out, "raise it with --memory"));
    // Was 4.6 GB after 27 doublings; ~350 MiB now (a 128 MiB value and its copy).
    assert!(peak < 600 * MIB_KIB, "peak RSS {peak} KiB");
}

#[test]
fn command_substitution_overflow_is_an_error_not_a_cut() {
    let (out, peak) = build_run("x=$(yes); echo ${#x}");
    assert_fails_with(&out, "the output of a $(…) command substitution");
    // Was cut silently at 1 GiB; ~320 MiB now (the 256 MiB capture).
    assert!(peak < 600 * MIB_KIB, "peak RSS {peak} KiB");
}

fn out_mentions(out: &std::process::Output, needle: &str) -> bool {
    text(&out.stderr).contains(needle) || text(&out.stdout).contains(needle)
}

/// A secret with non-UTF-8 bytes, copied through a shell variable and `$(…)`, reaches the
/// layer byte for byte (so the leak guard sees the real value), and `echo` prints the
/// exact bytes (so the log redactor sees them too).
#[test]
fn binary_secret_keeps_its_bytes_through_shell_variables() {
    let ws = Workspace::new();
    let value: &[u8] = b"\xffTOKEN-binary-secret-\xfe4242";
    let file = ws.path("secret-s");
    std::fs::write(&file, value).expect("secret file");
    let flag = format!("id=s,src={}", file.display());
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=secret,id=s x=$(cat /run/secrets/s); printf %s \"$x\" > /f; echo \"$x\"\n",
    );
    let out = ws.build(&["-t", "bin", "--secret", &flag, "--secret-leak=warn"]);
    assert_ok(&out);
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        log.contains("secret leak: the value of secret \"s\" was found in /f"),
        "{log}"
    );
    assert!(
        !log.contains("TOKEN-binary-secret"),
        "echo printed it unredacted: {log}"
    );
    let cat = ws.kiln().args(["run", "bin", "cat", "/f"]).output();
    let cat = cat.expect("kiln run");
    assert_ok(&cat);
    assert_eq!(cat.stdout, value, "the layer holds the exact bytes");
}

/// `( ( … ) )` and `((…) )` are nested subshells (dash, bash), not an arithmetic error.
#[test]
fn nested_subshells_are_not_arithmetic() {
    let (out, _) = build_run("( ( echo x ) ) > /x && ((echo y) ) >> /x && (( 1 + 1 )) && cat /x");
    assert_ok(&out);
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let lines: Vec<&str> = log.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert!(lines.windows(2).any(|w| w == ["x", "y"]), "{log}");
}

#[test]
fn an_empty_here_document_delimiter_is_a_syntax_error_not_a_hang() {
    // brush-parser's tokenizer loops for ever on `<<''` (found by the shell fuzzer);
    // kiln refuses it before parsing. The script is a file, as the fuzzer's input was.
    let ws = Workspace::new();
    ws.write("s.sh", "cat <<''\nbody\n\necho after\n");
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY s.sh /s.sh\nRUN sh /s.sh\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "empty here-document delimiter");
}

#[test]
fn a_builtin_writing_to_a_read_only_fd_fails() {
    // The runtime refuses the write (EBADF); echo must report it, as dash does, and the
    // file must be unchanged.
    let (out, _) = build_run("echo hi > /f && exec 3</f && echo x >&3");
    assert_fails_with(&out, "echo: echo: I/O error");
    let (out, _) = build_run("echo hi > /f; exec 3</f; echo x >&3; cat /f");
    assert_ok(&out);
    let log = text(&out.stdout) + &text(&out.stderr);
    assert!(log.contains("hi") && !log.contains("\nx\n"), "{log}");
}

#[test]
fn many_unclosed_parentheses_are_a_syntax_error_not_a_hang() {
    // 64 unclosed `(` before a here-document made brush-parser's arithmetic rules
    // backtrack for minutes (found by the shell fuzzer); kiln refuses it before parsing.
    let ws = Workspace::new();
    ws.write(
        "s.sh",
        format!("{}[at 0<<EOF\nfd zero\nEOF\n", "(".repeat(64)),
    );
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY s.sh /s.sh\nRUN sh /s.sh\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "64 unclosed '('");
}

/// CPU seconds of a one-step build running `script`.
fn run_cpu_s(script: &str) -> f64 {
    let ws = Workspace::new();
    ws.write("Dockerfile", format!("FROM scratch\nRUN {script}\n"));
    let mut cmd = ws.kiln();
    cmd.args(["build", "--progress", "plain"]).arg(ws.context());
    let (out, usage) = run_with_usage(&mut cmd);
    assert_ok(&out);
    usage.cpu_s
}

#[test]
fn a_test_bracket_loop_creating_files_stays_linear() {
    // `[` alone was taken for a glob: every `while [ ... ]` iteration read the whole
    // directory the loop was filling, so 10,000 files took 105 s instead of 4 s.
    let files = |open: &str, close: &str| {
        format!("i=0; while {open} $i -lt 10000 {close}; do : > /f$i; i=$((i+1)); done")
    };
    let with_test = run_cpu_s(&files("test", ""));
    let with_bracket = run_cpu_s(&files("[", "]"));
    assert!(
        with_bracket < 3.0 * with_test + 2.0,
        "`[` loop {with_bracket:.1}s vs `test` loop {with_test:.1}s"
    );
}
