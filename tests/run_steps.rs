//! RUN as BuildKit runs it: SHELL with options, heredoc shebangs, progress output, tools met on the way.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::PathBuf;

use support::*;

/// Builds the workspace's Dockerfile into a local directory; returns kiln's output and
/// the directory.
fn build_local(ws: &Workspace) -> (std::process::Output, PathBuf) {
    let dest = ws.path("rootfs");
    let out = ws.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    (out, dest)
}

fn read(dir: &std::path::Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn shell_options_apply_to_run_scripts() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        r#"FROM scratch
SHELL ["/bin/sh", "-euxc"]
RUN echo traced > /traced
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN (false | true) || echo pipefail-on > /pipefail
SHELL ["/bin/bash", "-c"]
RUN echo 'a\tb' > /bash-echo
SHELL ["/bin/sh", "-c"]
RUN echo 'a\tb' > /sh-echo; echo "[$UNSET]" > /unset
"#,
    );
    let (out, dir) = build_local(&ws);
    assert_ok(&out);
    // -x traces the command to the step's output.
    assert!(
        text(&out.stderr).contains("+ echo traced"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(read(&dir, "traced"), "traced\n");
    assert_eq!(read(&dir, "pipefail"), "pipefail-on\n");
    assert_eq!(read(&dir, "bash-echo"), "a\\tb\n");
    assert_eq!(read(&dir, "sh-echo"), "a\tb\n");
    assert_eq!(read(&dir, "unset"), "[]\n");
}

#[test]
fn shell_options_fail_the_step_as_they_would_under_buildkit() {
    for (shell, script) in [
        (r#"["/bin/sh", "-euxc"]"#, r#"echo "$UNSET""#),
        (r#"["/bin/bash", "-o", "pipefail", "-c"]"#, "false | true"),
        (
            r#"["/bin/bash", "-eo", "pipefail", "-c"]"#,
            "false | true; echo reach''ed",
        ),
    ] {
        let ws = Workspace::new();
        ws.write(
            "Dockerfile",
            format!("FROM scratch\nSHELL {shell}\nRUN {script}\n"),
        );
        let out = ws.build(&[]);
        assert_fails_with(&out, "Dockerfile:3");
        // The step stopped at the failure (the line as written says `reach''ed`).
        assert!(!text(&out.stderr).contains("reached"), "{shell}");
    }
}

/// A SHELL that is no shell is run as BuildKit runs it: the program, its arguments and
/// the command string. Exec-form CMD is not touched by SHELL.
#[test]
fn a_shell_that_is_another_program_runs_that_program() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        r#"FROM scratch
SHELL ["/bin/echo", "said:"]
RUN hello world
CMD ["/app"]
ENTRYPOINT ["/entry"]
"#,
    );
    let out = ws.build(&[]);
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("said: hello world"),
        "{}",
        text(&out.stderr)
    );
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nSHELL [\"/usr/bin/python3\", \"-c\"]\nRUN print(1)\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "/usr/bin/python3: not found");
    assert_fails_with(&out, "Dockerfile:3");
    // A native program there gets kiln's explanation, naming the line.
    let ws = Workspace::new();
    ws.write("python3", b"\x7fELF\x02\x01\x01\0rest of a native binary");
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY --chmod=755 python3 /usr/bin/python3\nSHELL [\"/usr/bin/python3\", \"-c\"]\nRUN print(1)\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "cannot execute native binary");
    assert_fails_with(&out, "Dockerfile:4");
}

#[test]
fn a_heredoc_with_a_shebang_runs_with_its_interpreter() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        r#"FROM scratch
RUN <<EOF
#!/bin/awk -f
BEGIN { print "awk ran " ARGV[0] > "/by-awk" }
EOF
SHELL ["/bin/bash", "-c"]
RUN <<EOF
echo "no shebang: $0 a\tb" > /by-shell
EOF
RUN <<EOT
#!/bin/sh -e
echo "shebang sh $0" > /by-sh
EOT
RUN cat <<EOF > /from-stdin
fed to cat
EOF
RUN awk '{ print "awk read " $0 }' > /awk-stdin <<EOF
line
EOF
"#,
    );
    let (out, dir) = build_local(&ws);
    assert_ok(&out);
    assert_eq!(read(&dir, "by-awk"), "awk ran awk\n");
    // Without a shebang the body runs in the SHELL (bash: no escapes in echo).
    assert_eq!(read(&dir, "by-shell"), "no shebang: /bin/bash a\\tb\n");
    assert_eq!(read(&dir, "by-sh"), "shebang sh /dev/pipes/EOT\n");
    assert_eq!(read(&dir, "from-stdin"), "fed to cat\n");
    assert_eq!(read(&dir, "awk-stdin"), "awk read line\n");
    // The script file lives in a mount of the step only.
    assert!(!dir.join("dev/pipes").exists());
}

/// BuildKit's progress shows whole lines: a message written in pieces is one line, per
/// stream, and an unfinished last line still shows when the step ends.
#[test]
fn progress_shows_output_written_in_pieces_as_whole_lines() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        r#"FROM scratch
RUN printf rm >&2; printf out; printf ': ' >&2; printf 'cannot remove x\n' >&2; printf 'put\n'; printf tail
"#,
    );
    let out = ws.build(&[]);
    assert_ok(&out);
    let log = text(&out.stderr);
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("#1 "))
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .collect();
    assert!(lines.contains(&"rm: cannot remove x"), "{log}");
    assert!(lines.contains(&"output"), "{log}");
    assert!(lines.contains(&"tail"), "{log}");
    assert!(!lines.contains(&"rm") && !lines.contains(&": "), "{log}");
}

/// `cat` and `cp` read devices and pipes: a pipe from /dev/urandom no longer hashes
/// empty input.
#[test]
fn devices_read_through_cat() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        r#"FROM scratch
RUN cat /dev/urandom | head -c 100 | wc -c > /urandom && cat /dev/random | head -c 3 | wc -c > /random
RUN cat /dev/zero | head -c 4 | od -An -tx1 > /zero && cat /dev/null > /null && echo in | cat /dev/stdin - > /stdin
RUN echo old > /log && cp /dev/null /log && cp -R /dev/null /copied || echo refused > /recreate
"#,
    );
    let (out, dir) = build_local(&ws);
    assert_ok(&out);
    assert_eq!(read(&dir, "urandom").trim(), "100");
    assert_eq!(read(&dir, "random").trim(), "3");
    assert_eq!(read(&dir, "zero").trim(), "00 00 00 00");
    assert_eq!(read(&dir, "null"), "");
    assert_eq!(read(&dir, "stdin"), "in\n");
    // cp copies what a device reads (GNU cp without -R), and cannot recreate one.
    assert_eq!(read(&dir, "log"), "");
    assert_eq!(read(&dir, "recreate"), "refused\n");
}

#[test]
fn awk_reads_its_program_from_stdin_and_has_getline() {
    let ws = Workspace::new();
    ws.write("data.txt", "a\nb\nc\n");
    ws.write("prog.awk", "{ print \"f:\" $0 }\n");
    ws.write(
        "Dockerfile",
        r#"FROM scratch
COPY data.txt prog.awk /
RUN awk -f - /data.txt < /prog.awk > /f-stdin
RUN awk '{ while ((getline line) > 0) n++; print $0, line, n, NR }' /data.txt > /main-var
RUN awk 'NR == 1 { getline; print "got " $0 " NR=" NR " FNR=" FNR }' /data.txt > /main
RUN awk 'BEGIN { while ((r = getline line < "/data.txt") > 0) s = s line; print s, r, NR; print (getline x < "/missing") }' > /file
RUN awk 'BEGIN { c = "echo x; echo y"; while ((c | getline v) > 0) s = s v; print s, NR, close(c); "exit 3" | getline; print close("exit 3") }' > /cmd
RUN awk 'BEGIN { "echo a b" | getline; print $2, NF, NR }' > /cmd-record
"#,
    );
    let (out, dir) = build_local(&ws);
    assert_ok(&out);
    assert_eq!(read(&dir, "f-stdin"), "f:a\nf:b\nf:c\n");
    assert_eq!(read(&dir, "main-var"), "a c 2 3\n");
    assert_eq!(read(&dir, "main"), "got b NR=2 FNR=2\n");
    assert_eq!(read(&dir, "file"), "abc 0 0\n-1\n");
    assert_eq!(read(&dir, "cmd"), "xy 2 0\n3\n");
    assert_eq!(read(&dir, "cmd-record"), "b 2 1\n");
}
