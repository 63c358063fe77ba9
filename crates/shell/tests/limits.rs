//! The shell's bounds (issue #12): hostile scripts end in a clear error naming the limit
//! instead of overflowing a stack, exhausting threads or the host's memory. Run on the
//! in-memory host, each on its own small-stacked thread like the engine's step threads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_shell::io::Capture;
use kiln_shell::limits::{self, LimitError};
use kiln_shell::memhost::MemHost;
use kiln_shell::{Shell, ShellError, ShellOptions};

struct Run {
    out: Vec<u8>,
    err: String,
    result: Result<i32, ShellError>,
}

/// Runs `script` on a 2 MiB stack (tokio's blocking threads have 2 MiB) with a memory
/// budget of `memory` bytes.
fn run_with(script: &str, memory: usize) -> Run {
    let script = script.to_string();
    let t = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let host = Arc::new(MemHost::new(
                1 << 20,
                Some(Instant::now() + Duration::from_secs(60)),
            ));
            host.mkdir("/tmp");
            let (out, err) = (Capture::new(), Capture::new());
            let opts = ShellOptions {
                cwd: "/tmp".into(),
                stdout: out.clone(),
                stderr: err.clone(),
                memory_limit: memory,
                ..Default::default()
            };
            let result = Shell::new(host, opts).run_script(&script).map(|s| s.0);
            Run {
                out: out.take(),
                err: String::from_utf8_lossy(&err.take()).into_owned(),
                result,
            }
        })
        .unwrap();
    t.join().expect("the shell thread did not crash")
}

fn run(script: &str) -> Run {
    run_with(script, limits::DEFAULT_MEMORY_LIMIT)
}

fn limit_err(r: &Run) -> LimitError {
    match &r.result {
        Err(ShellError::Limit(e)) => e.clone(),
        other => panic!("expected a limit error, got {other:?}; stderr: {}", r.err),
    }
}

#[test]
fn unbounded_recursion_is_a_nesting_error() {
    let r = run("f(){ f; }; f");
    assert_eq!(
        limit_err(&r),
        LimitError::Nesting {
            limit: limits::MAX_NESTING
        }
    );
    assert!(r.err.contains("nesting too deep (limit 20000"), "{}", r.err);
}

#[test]
fn recursion_5000_deep_finishes_like_dash() {
    let r = run("f(){ [ $1 -lt 5000 ] && f $(($1+1)); true; }; f 0; echo done");
    assert_eq!(r.result.unwrap(), 0, "{}", r.err);
    assert_eq!(r.out, b"done\n");
}

#[test]
fn eval_and_subshell_recursion_are_bounded() {
    for script in [
        "f(){ eval f; }; f",
        "f(){ (f); }; f",
        "f(){ x=$(f); }; f",
        "f(){ { f; }; }; f",
        "s='sh -c \"$s\"'; export s; sh -c \"$s\"",
    ] {
        let r = run(script);
        assert!(
            matches!(limit_err(&r), LimitError::Nesting { .. }),
            "{script}"
        );
    }
}

#[test]
fn deep_syntax_is_a_parse_error() {
    let n = limits::MAX_PARSE_NESTING + 10;
    for script in [
        format!("{}echo x{}", "$(".repeat(n), ")".repeat(n)),
        format!("echo $(( {}1{} ))", "(".repeat(5000), ")".repeat(5000)),
        format!("{}echo x{}", "( ".repeat(3000), " )".repeat(3000)),
        format!("{}x{}", "if true; then ".repeat(n), "; fi".repeat(n)),
    ] {
        let r = run(&script);
        assert_eq!(
            limit_err(&r),
            LimitError::ParseNesting {
                limit: limits::MAX_PARSE_NESTING
            }
        );
    }
}

#[test]
fn syntax_nested_within_the_limit_parses_and_runs() {
    let n = 300;
    let script = format!("echo {}x{}", "$(echo ".repeat(n), ")".repeat(n));
    let r = run(&script);
    assert_eq!(r.result.unwrap(), 0, "{}", r.err);
    assert_eq!(r.out, b"x\n");
    let r = run(&format!(
        "echo $(( {}1{} ))",
        "(".repeat(500),
        ")".repeat(500)
    ));
    assert_eq!(r.out, b"1\n", "{}", r.err);
}

#[test]
fn arithmetic_is_bounded() {
    let r = run("x=x; echo $((x))");
    assert_ne!(r.result.unwrap(), 0);
    assert!(r.err.contains("too complex (limit 1024"), "{}", r.err);
    let r = run(&format!("echo $(({}1))", "-".repeat(limits::MAX_ARITH_LEN)));
    assert!(
        r.err.contains("too complex (limit 16384 bytes"),
        "{}",
        r.err
    );
    // A long chain just under the limit evaluates (a deep tree).
    let r = run(&format!("echo $((0{}))", "+1".repeat(900)));
    assert_eq!(r.out, b"900\n", "{}", r.err);
}

#[test]
fn pipeline_bomb_hits_the_process_limit() {
    let r = run("f(){ f | f; }; f");
    assert_eq!(
        limit_err(&r),
        LimitError::Processes {
            limit: limits::MAX_SHELL_THREADS
        }
    );
}

#[test]
fn background_bomb_fails_the_step_even_if_the_script_ends_well() {
    let r = run("f() { f | f & }; f; true");
    assert_eq!(
        limit_err(&r),
        LimitError::Processes {
            limit: limits::MAX_SHELL_THREADS
        }
    );
    assert!(
        r.err.contains("too many processes (limit 512)"),
        "{}",
        r.err
    );
}

const MIB: usize = 1 << 20;

#[test]
fn doubling_a_variable_hits_the_memory_limit() {
    let r = run_with("x=0123456789abcdef; while :; do x=\"$x$x\"; done", 8 * MIB);
    assert!(
        matches!(limit_err(&r), LimitError::Memory { limit, .. } if limit == 8 * MIB),
        "{}",
        r.err
    );
    assert!(r.err.contains("raise it with --memory"), "{}", r.err);
}

#[test]
fn reading_an_endless_line_hits_the_memory_limit() {
    let r = run_with("read x < /dev/zero", 4 * MIB);
    assert_eq!(
        limit_err(&r),
        LimitError::Memory {
            limit: 4 * MIB,
            what: "a line read by `read`"
        }
    );
}

#[test]
fn command_substitution_over_the_limit_is_an_error_not_a_cut() {
    let script = "x=0123456789abcdef; i=0; while [ $i -lt 15 ]; do x=$x$x; i=$((i+1)); done; y=$(for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo $x; done)";
    let r = run_with(script, 8 * MIB);
    assert_eq!(
        limit_err(&r),
        LimitError::Memory {
            limit: 8 * MIB,
            what: "the output of a $(…) command substitution"
        }
    );
}

#[test]
fn values_within_the_limit_work() {
    let script = "x=0123456789abcdef; i=0; while [ $i -lt 16 ]; do x=$x$x; i=$((i+1)); done; y=$(printf %s \"$x\"); echo ${#y}";
    let r = run_with(script, 8 * MIB);
    assert_eq!(r.result.unwrap(), 0, "{}", r.err);
    assert_eq!(r.out, b"1048576\n");
}

#[test]
fn replacement_and_printf_widths_are_bounded() {
    let r = run_with("x=$(printf %0100000d 0); y=${x//0/$x}", 8 * MIB);
    assert!(
        matches!(limit_err(&r), LimitError::Memory { .. }),
        "{}",
        r.err
    );
    let r = run_with("printf '%*s' 2000000000 x", 8 * MIB);
    assert!(
        matches!(limit_err(&r), LimitError::Memory { .. }),
        "{}",
        r.err
    );
}

#[test]
fn here_document_with_unclosed_substitution_fails_fast() {
    // Found by the fuzzer: brush-parser's word parser backtracks exponentially on it.
    let script = format!(
        "cat <<EOF\ntoday is $(echo also {}so`\nEOF\n",
        "(".repeat(35)
    );
    let start = Instant::now();
    let r = run(&script);
    assert_eq!(r.result.unwrap(), 2);
    assert!(
        r.err.contains("unclosed parentheses (limit 8)"),
        "{}",
        r.err
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn oversized_redirection_number_is_a_syntax_error() {
    // Found by the fuzzer: brush-parser unwraps the number (a panic).
    let r = run(&format!("echo x {}> /dev/null", "1".repeat(70)));
    match &r.result {
        Err(ShellError::Syntax(m)) => assert!(m.contains("out of range"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn recursion_through_dot_stops_at_the_deadline() {
    // Found by the fuzzer (a slow input): a file that sources itself.
    let t = std::thread::spawn(|| {
        let deadline = Instant::now() + Duration::from_millis(300);
        let host = Arc::new(MemHost::new(1 << 20, Some(deadline)));
        host.mkdir("/tmp");
        let err = Capture::new();
        let opts = ShellOptions {
            cwd: "/tmp".into(),
            stderr: err.clone(),
            ..Default::default()
        };
        let script = "echo 'i=$((i+1)); . ./lib.sh' > lib.sh; . ./lib.sh";
        let st = Shell::new(host, opts).run_script(script).unwrap();
        (st.0, String::from_utf8_lossy(&err.take()).into_owned())
    });
    let (status, err) = t.join().unwrap();
    assert_eq!(status, 124, "{err}");
    assert!(err.contains("time limit exceeded"), "{err}");
}
