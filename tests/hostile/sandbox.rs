//! Hostile inputs: sandbox edges. What a Dockerfile can reach of the host (the context
//! through bind mounts, host directories, URLs) and how long a step may run.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::*;

/// Runs `cmd`, killing it if it is still running after `limit`: a hang fails the test
/// with a message instead of hanging the suite. Returns the output and the elapsed time.
fn run_within(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = spawn_piped(cmd);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return (out, start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "kiln did not finish within {limit:?}:\n--- stderr\n{}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn build_cmd(ws: &Workspace, args: &[&str]) -> Command {
    let mut cmd = ws.kiln();
    cmd.arg("build")
        .args(["--progress", "plain"])
        .args(args)
        .arg(ws.context());
    cmd
}

/// A build that must end (either way) well within `secs` seconds.
fn build_within(ws: &Workspace, args: &[&str], secs: u64) -> Output {
    run_within(&mut build_cmd(ws, args), Duration::from_secs(secs)).0
}

// --- 1. A context bind mount sees exactly what COPY sees -------------------------------

const IGNORED_VALUE: &str = "ignored-value-7f3a9c1e";

#[test]
fn dockerignored_file_is_invisible_through_a_context_bind_mount() {
    let ws = Workspace::new();
    ws.write(".dockerignore", ".env\nsub/private\n");
    ws.write(".env", format!("TOKEN={IGNORED_VALUE}"));
    ws.write("sub/public.txt", "public");
    ws.write("sub/private", IGNORED_VALUE);
    // The attempt to bake the ignored file must find nothing to bake.
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=bind,target=/ctx cat /ctx/.env > /baked 2>&1 || true\n\
         RUN --mount=type=bind,target=/ctx test ! -e /ctx/.env && test -f /ctx/Dockerfile\n\
         RUN --mount=type=bind,source=sub,target=/x,rw cat /x/private >> /baked 2>&1 || true\n\
         RUN --mount=type=bind,source=sub,target=/x test ! -e /x/private && test \"$(cat /x/public.txt)\" = public\n",
    );
    let out = ws.build(&["-t", "bindignore"]);
    assert_ok(&out);
    for dir in [ws.cache(), ws.store()] {
        assert_eq!(find_in_tree(&dir, IGNORED_VALUE.as_bytes()), None);
    }
}

#[test]
fn dockerignored_bind_source_is_not_found() {
    let ws = Workspace::new();
    ws.write(".dockerignore", "secrets\n");
    ws.write("secrets/key", IGNORED_VALUE);
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=bind,source=secrets,target=/s cat /s/key\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(
        &out,
        "not found in the build context (is it excluded by .dockerignore?)",
    );
    assert!(!text(&out.stdout).contains(IGNORED_VALUE));
    assert!(!text(&out.stderr).contains(IGNORED_VALUE));
}

#[test]
fn context_bind_mount_reruns_when_the_visible_context_changes() {
    let ws = Workspace::new();
    ws.write(".dockerignore", "noise\n");
    ws.write("a.txt", "one");
    ws.write("noise", "1");
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=bind,target=/ctx cp /ctx/a.txt /a.txt\n",
    );
    assert_ok(&ws.build(&["-t", "t1"]));
    // An ignored file changing keeps the cache; a visible one changing does not.
    ws.write("noise", "2");
    let out = ws.build(&["-t", "t1"]);
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("CACHED"),
        "{}",
        text(&out.stderr)
    );
    ws.write("a.txt", "two");
    let out = ws.build(&["-t", "t1"]);
    assert_ok(&out);
    assert!(
        !text(&out.stderr).contains("CACHED"),
        "{}",
        text(&out.stderr)
    );
}

// --- 4. Host mtimes never show through a bind mount -------------------------------------

#[test]
fn context_bind_mount_shows_source_date_epoch_times() {
    let ws = Workspace::new();
    ws.write("a.txt", "a");
    ws.write("dir/b.txt", "b");
    // Host files have "now" as their mtime; the step must see the epoch instead, for
    // files, the directories holding them and the mount's root.
    for epoch in ["0", "1700000000"] {
        ws.write(
            "Dockerfile",
            format!(
                "FROM scratch\n\
                 RUN --mount=type=bind,target=/ctx for p in /ctx/a.txt /ctx/dir/b.txt /ctx/dir /ctx; \
                 do test \"$(stat -c %Y $p)\" = {epoch} || {{ echo \"$p: $(stat -c %Y $p)\"; exit 1; }}; done\n"
            ),
        );
        assert_ok(&ws.build(&["--build-arg", &format!("SOURCE_DATE_EPOCH={epoch}")]));
    }
}

// --- 5. Special files in the context never block or abort -------------------------------

#[cfg(unix)]
fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: `c` is a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

#[cfg(unix)]
#[test]
/// A FIFO is skipped (reading it could block the build); a socket arrives as an empty
/// regular file, as BuildKit's `testCopySocket` requires. Neither is ever opened.
fn fifo_and_socket_in_the_context_never_block_copy_or_bind() {
    let ws = Workspace::new();
    ws.write("a.txt", "a");
    mkfifo(&ws.context().join("pipe"));
    let _sock = std::os::unix::net::UnixListener::bind(ws.context().join("sock")).expect("bind");
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         COPY . /app/\n\
         RUN test -f /app/a.txt && test ! -e /app/pipe && test -f /app/sock && test ! -s /app/sock\n\
         RUN --mount=type=bind,target=/ctx test -f /ctx/a.txt && test ! -e /ctx/pipe && test -f /ctx/sock\n",
    );
    assert_ok(&build_within(&ws, &[], 60));
}

#[cfg(unix)]
#[test]
fn fifo_named_by_copy_is_a_clear_error() {
    let ws = Workspace::new();
    mkfifo(&ws.context().join("pipe"));
    ws.write("Dockerfile", "FROM scratch\nCOPY pipe /pipe\n");
    let out = build_within(&ws, &[], 60);
    assert_fails_with(
        &out,
        "source \"pipe\" in the build context is a FIFO (named pipe)",
    );
}

#[cfg(unix)]
#[test]
fn dockerignored_fifo_does_not_block_a_bind_mount() {
    let ws = Workspace::new();
    ws.write(".dockerignore", "pipe\n");
    mkfifo(&ws.context().join("pipe"));
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=bind,target=/ctx test ! -e /ctx/pipe && cat /ctx/Dockerfile > /dev/null\n",
    );
    assert_ok(&build_within(&ws, &[], 60));
}

// --- 3. ADD <url> obeys the network policy at every hop ---------------------------------

const PAYLOAD: &str = "payload-from-loopback\n";

/// `/file.txt` is the payload; `/to-localhost` redirects to another host name;
/// `/hop` redirects to `/file.txt` on the same host; `/loop` redirects to itself.
fn routes(port_of_target: u16) -> impl Fn(&str) -> Reply + Send + 'static {
    move |path: &str| {
        let redirect = |to: String| (302, vec![("Location".to_owned(), to)], Vec::new());
        match path.split('?').next().unwrap_or("") {
            "/file.txt" => (200, Vec::new(), PAYLOAD.as_bytes().to_vec()),
            "/hop" => redirect("/file.txt".to_owned()),
            "/loop" => redirect("/loop".to_owned()),
            "/stall" => (
                200,
                vec![("X-Stall".to_owned(), "1".to_owned())],
                b"a first chunk".to_vec(),
            ),
            "/to-localhost" => redirect(format!("http://LocalHost:{port_of_target}/file.txt")),
            _ => (404, Vec::new(), Vec::new()),
        }
    }
}

#[test]
fn add_url_redirect_to_a_host_outside_allow_host_is_refused() {
    let target = RouteServer::start(routes(0));
    let server = RouteServer::start(routes(target.port));
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        format!("FROM scratch\nADD {} /f\n", server.url("/to-localhost")),
    );
    let out = ws.build(&["--allow-host", "127.0.0.1"]);
    assert_fails_with(&out, "host \"localhost\" is not in --allow-host");
    assert_eq!(target.requested(), Vec::<String>::new());
}

#[test]
fn add_url_userinfo_does_not_hide_the_real_host() {
    let server = RouteServer::start(routes(0));
    let ws = Workspace::new();
    let url = format!("http://allowed:x@127.0.0.1:{}/file.txt", server.port);
    ws.write("Dockerfile", format!("FROM scratch\nADD {url} /f\n"));
    let out = ws.build(&["--allow-host", "allowed"]);
    assert_fails_with(&out, "host \"127.0.0.1\" is not in --allow-host");
    assert_eq!(server.requested(), Vec::<String>::new());
    // kiln's own message masks the password (the excerpt of the Dockerfile shows the line
    // as its author wrote it).
    let stderr = text(&out.stderr);
    let message = stderr.lines().find(|l| l.contains("ERROR:")).unwrap_or("");
    assert!(message.contains("allowed:****@"), "{stderr}");
}

#[test]
fn add_url_follows_allowed_redirects_and_stops_loops() {
    let server = RouteServer::start(routes(0));
    let ws = Workspace::new();
    // Allowed hosts match case-insensitively, as RUN's network policy does. A `?` in a URL
    // is a query, never a wildcard: `/f` is a file, not a directory for several sources.
    ws.write(
        "Dockerfile",
        format!(
            "FROM scratch\nADD {} /f\nADD {} /g\nRUN test \"$(cat /f)\" = {} && test \"$(cat /g)\" = \"$(cat /f)\"\n",
            server.url("/hop"),
            server.url("/file.txt?sig=a*b"),
            PAYLOAD.trim()
        ),
    );
    assert_ok(&ws.build(&["--allow-host", "127.0.0.1"]));
    assert_eq!(
        server.requested(),
        ["/hop", "/file.txt", "/file.txt?sig=a*b"]
    );

    ws.write(
        "Dockerfile",
        format!("FROM scratch\nADD {} /f\n", server.url("/loop")),
    );
    let out = ws.build(&["--allow-host", "127.0.0.1"]);
    assert_fails_with(&out, "more than 10 redirects");
    assert_eq!(server.requested().len(), 3 + 11);
}

#[test]
fn add_url_redirect_with_network_none_is_refused() {
    let server = RouteServer::start(routes(0));
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        format!("FROM scratch\nADD {} /f\n", server.url("/hop")),
    );
    let out = ws.build(&["--network", "none"]);
    assert_fails_with(&out, "the build has no network (--network=none)");
    assert_eq!(server.requested(), Vec::<String>::new());
}

// --- 2. Host image layouts come from the command line, never from a Dockerfile ----------

/// Builds a small image and exports it as an OCI layout directory; returns its path.
fn layout_with_marker(ws: &Workspace) -> std::path::PathBuf {
    ws.write("marker.txt", "from-the-layout");
    ws.write("Dockerfile", "FROM scratch\nCOPY marker.txt /marker.txt\n");
    let dest = ws.path("layout");
    let out = ws.build(&["-o", &format!("type=oci,dest={},tar=false", dest.display())]);
    assert_ok(&out);
    dest
}

#[test]
fn from_oci_layout_in_a_dockerfile_is_refused() {
    let ws = Workspace::new();
    let layout = layout_with_marker(&ws);
    for line in [
        format!("FROM oci-layout://{}\n", layout.display()),
        format!(
            "FROM scratch\nCOPY --from=oci-layout://{} /marker.txt /m\n",
            layout.display()
        ),
    ] {
        ws.write("Dockerfile", &line);
        let out = ws.build(&[]);
        assert_fails_with(&out, "a Dockerfile cannot name a host directory");
        assert_fails_with(&out, "--build-context NAME=oci-layout:///DIR[:TAG]");
    }
}

#[test]
fn build_context_names_an_oci_layout_for_from_and_copy_from() {
    let ws = Workspace::new();
    let layout = layout_with_marker(&ws);
    let context = format!("base=oci-layout://{}", layout.display());
    ws.write(
        "Dockerfile",
        "FROM base\nRUN test \"$(cat /marker.txt)\" = from-the-layout\n\
         FROM scratch\nCOPY --from=base /marker.txt /copied\nRUN test \"$(cat /copied)\" = from-the-layout\n",
    );
    assert_ok(&ws.build(&["--build-context", &context]));
    // A value kiln cannot use is refused before anything runs, naming the flag.
    let out = ws.build(&["--build-context", "base=git://host/repo"]);
    assert_fails_with(
        &out,
        "--build-context base=git://host/repo: use oci-layout:///DIR[:TAG], docker-image://REF or a local directory",
    );
}

#[test]
fn build_context_docker_image_renames_a_stored_image() {
    let ws = Workspace::new();
    ws.write("marker.txt", "stored");
    ws.write("Dockerfile", "FROM scratch\nCOPY marker.txt /marker.txt\n");
    assert_ok(&ws.build(&["-t", "stored-base:v1"]));
    ws.write(
        "Dockerfile",
        "FROM alpine\nRUN test \"$(cat /marker.txt)\" = stored\n",
    );
    assert_ok(&ws.build(&["--build-context", "alpine=docker-image://stored-base:v1"]));
}

// --- 6. Step limits ----------------------------------------------------------------------

#[test]
fn step_timeout_stops_a_builtin_loop_and_a_wasm_process() {
    for script in ["while :; do :; done", "yes > /dev/null"] {
        let ws = Workspace::new();
        ws.write("Dockerfile", format!("FROM scratch\nRUN {script}\n"));
        let (out, took) = run_within(
            &mut build_cmd(&ws, &["--step-timeout", "2s"]),
            Duration::from_secs(60),
        );
        assert_fails_with(
            &out,
            "the step did not finish within the step timeout of 2s (kiln build --step-timeout 2s)",
        );
        // The error names the step.
        assert_fails_with(&out, "Dockerfile:2: ");
        assert!(took < Duration::from_secs(15), "{script}: took {took:?}");
        eprintln!("{script}: failed after {took:?}");
    }
}

#[test]
fn step_timeout_does_not_fail_a_step_that_finishes() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN i=0; while [ $i -lt 100 ]; do i=$((i+1)); done\n",
    );
    assert_ok(&build_within(&ws, &["--step-timeout", "1m"], 60));
    let out = ws.build(&["--step-timeout", "soon"]);
    assert_fails_with(&out, "invalid duration \"soon\"");
}

#[test]
fn memory_flag_bounds_a_wasm_process() {
    let ws = Workspace::new();
    // `sort` holds its whole input: 16 MiB of lines fit in the default limit, not in 8 MiB
    // (the guest's allocator sees memory.grow fail and reports it).
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN head -c 16777216 /dev/zero | tr '\\0' 'a' | fold -w 100 | sort > /sorted && wc -l < /sorted\n",
    );
    let (out, rss) = run_measured(&mut build_cmd(&ws, &["--memory", "8m"]));
    assert_fails_with(&out, "sort: out of memory");
    eprintln!("peak RSS with --memory 8m: {rss} KiB");
    let (out, rss) = run_measured(&mut build_cmd(&ws, &[]));
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("167773"),
        "{}",
        text(&out.stderr)
    );
    eprintln!("peak RSS without --memory: {rss} KiB");
}

#[test]
fn memory_flag_bounds_the_shell_and_names_itself() {
    let ws = Workspace::new();
    // Shell values double until they pass the budget --memory sets for them.
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN x=a; while :; do x=$x$x; done\n",
    );
    let out = build_within(&ws, &["--memory", "1m"], 60);
    assert_fails_with(&out, "shell memory limit exceeded");
    assert_fails_with(
        &out,
        "limit 1048576 bytes of shell values; raise it with --memory",
    );
    // A wasm program whose memory cannot fit at all is stopped with the flag's name.
    ws.write("Dockerfile", "FROM scratch\nRUN cat /dev/null\n");
    let out = build_within(&ws, &["--memory", "64k"], 60);
    assert_fails_with(&out, "raise it with kiln build --memory BYTES");
}

#[test]
fn step_timeout_bounds_an_add_download_that_stalls() {
    let server = RouteServer::start(routes(0));
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        format!("FROM scratch\nADD {} /f\n", server.url("/stall")),
    );
    let (out, took) = run_within(
        &mut build_cmd(&ws, &["--step-timeout", "2s"]),
        Duration::from_secs(60),
    );
    assert_fails_with(
        &out,
        "within the step timeout of 2s (kiln build --step-timeout 2s)",
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    eprintln!("stalled ADD failed after {took:?}");
}

#[test]
fn disk_quota_flag_bounds_what_a_step_writes() {
    let ws = Workspace::new();
    // 4 MiB of file data against a 1 MiB quota; the same step fits the default.
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN head -c 4194304 /dev/zero > /f\n",
    );
    let out = build_within(&ws, &["--disk-quota", "1m"], 60);
    assert_fails_with(&out, "disk quota of 1048576 bytes for one step exceeded");
    assert_fails_with(&out, "raise it with kiln build --disk-quota BYTES");
    assert_ok(&build_within(&ws, &[], 60));
}

#[cfg(unix)]
#[test]
fn fifo_dockerfile_or_dockerignore_is_a_clear_error() {
    let ws = Workspace::new();
    mkfifo(&ws.context().join("Dockerfile"));
    let out = build_within(&ws, &[], 60);
    assert_fails_with(
        &out,
        "Dockerfile is a FIFO (named pipe), not a regular file",
    );
    let out = run_within(
        ws.kiln().args(["build", "--check"]).arg(ws.context()),
        Duration::from_secs(60),
    )
    .0;
    assert_fails_with(&out, "not a regular file");

    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\n");
    mkfifo(&ws.context().join(".dockerignore"));
    let out = build_within(&ws, &[], 60);
    assert_fails_with(
        &out,
        ".dockerignore is a FIFO (named pipe), not a regular file",
    );
}

#[test]
fn oversized_dockerfile_is_refused_before_it_is_read_whole() {
    let ws = Workspace::new();
    let mut body = b"FROM scratch\n".to_vec();
    body.resize((16 << 20) + 1, b'#');
    ws.write("Dockerfile", body);
    let (out, rss) = run_measured(&mut build_cmd(&ws, &[]));
    assert_fails_with(&out, "larger than 16777216 bytes, the most kiln reads");
    eprintln!("peak RSS for a 16 MiB + 1 Dockerfile: {rss} KiB");
}

#[test]
fn build_context_local_dir_serves_copy_from_and_bind_from_with_its_ignore_rules() {
    let ws = Workspace::new();
    let extra = ws.path("extra");
    std::fs::create_dir_all(extra.join("sub")).expect("mkdir");
    std::fs::write(extra.join("sub/a.txt"), "extra-a").expect("write");
    std::fs::write(extra.join("hidden.env"), IGNORED_VALUE).expect("write");
    std::fs::write(extra.join(".dockerignore"), "*.env\n").expect("write");
    let context = format!("extra={}", extra.display());
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         COPY --from=extra /sub/a.txt /a.txt\n\
         RUN --mount=type=bind,from=extra,target=/x test -f /x/sub/a.txt && test ! -e /x/hidden.env && test \"$(cat /a.txt)\" = extra-a\n",
    );
    assert_ok(&ws.build(&["--build-context", &context]));
    // The directory's content is in a bind step's key: a change reruns it.
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=bind,from=extra,target=/x test \"$(cat /x/sub/a.txt)\" = extra-a\n",
    );
    assert_ok(&ws.build(&["--build-context", &context]));
    std::fs::write(extra.join("sub/a.txt"), "changed").expect("write");
    let out = ws.build(&["--build-context", &context]);
    assert_fails_with(&out, "exit code: 1");
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY --from=extra /hidden.env /h\n",
    );
    let out = ws.build(&["--build-context", &context]);
    assert_fails_with(
        &out,
        "not found in the build context (is it excluded by .dockerignore?)",
    );
    ws.write("Dockerfile", "FROM extra\n");
    let out = ws.build(&["--build-context", &context]);
    assert_fails_with(
        &out,
        "use it with COPY --from=extra or RUN --mount=from=extra",
    );
}

#[test]
fn oversized_or_deeply_nested_patterns_are_errors_not_panics() {
    // globset panicked ("regex compilation shouldn't fail") on a 1 MB pattern, past the
    // regex crate's size limit: it is an error naming the bound.
    for (ignore, source) in [
        ("a".repeat(1 << 20), "f".to_owned()),
        (String::new(), format!("*{}", "a".repeat(1 << 20))),
    ] {
        let ws = Workspace::new();
        ws.write("f", "x");
        ws.write(".dockerignore", &ignore);
        ws.write("Dockerfile", format!("FROM scratch\nCOPY {source} /x\n"));
        assert_fails_with(&ws.build(&[]), "(MAX_GLOB_BYTES)");
    }
    // It panicked on 1,000 nested `{a,{a,...}}` too, past the regex parser's nesting
    // limit; braces are literal in Docker's patterns, so that is an ordinary name.
    let nested = "{a,".repeat(1000) + &"}".repeat(1000);
    let ws = Workspace::new();
    ws.write("f", "x");
    ws.write(".dockerignore", &nested);
    ws.write(
        "Dockerfile",
        format!("FROM scratch\nCOPY f /x\nCOPY *{nested} /y\n"),
    );
    // (A wildcard matching nothing copies nothing, as in BuildKit.)
    assert_ok(&ws.build(&[]));
}
