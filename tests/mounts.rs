//! RUN --mount as BuildKit does it: cache mount owners and modes, file and sub-path binds, hostname and /etc/hosts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use support::*;

/// Builds and exports the image's filesystem to a fresh directory, which it returns.
fn build_local(ws: &Workspace, extra: &[&str]) -> tempfile::TempDir {
    let dest = tempfile::tempdir().unwrap();
    let mut args = vec![
        "-o".to_owned(),
        format!("type=local,dest={}", dest.path().display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ws.build(&args);
    assert_ok(&out);
    dest
}

fn read(dir: &std::path::Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn a_cache_mount_is_created_with_its_uid_gid_and_mode() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=cache,target=/c,uid=1001,gid=1002,mode=0751 stat -c '%u %g %f' /c > /seen\n\
         RUN --mount=type=cache,target=/d stat -c '%u %g %f' /d > /plain\n",
    );
    let out = build_local(&ws, &[]);
    // BuildKit's `stat` of the same mount.
    assert_eq!(read(out.path(), "seen"), "1001 1002 41e9\n");
    assert_eq!(read(out.path(), "plain"), "0 0 41ed\n");
}

#[test]
fn caches_differing_in_owner_are_different_caches() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=cache,id=c,target=/c echo root > /c/who\n\
         RUN --mount=type=cache,id=c,target=/c,uid=7 ls /c > /seen7; echo seven > /c/who\n\
         RUN --mount=type=cache,id=c,target=/c cat /c/who > /seen0\n",
    );
    let out = build_local(&ws, &[]);
    assert_eq!(read(out.path(), "seen7"), "");
    assert_eq!(read(out.path(), "seen0"), "root\n");
}

#[test]
fn a_read_only_cache_mount_refuses_writes() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=cache,id=c,target=/c echo kept > /c/f\n\
         RUN --mount=type=cache,id=c,target=/c,ro cat /c/f > /seen; if echo x > /c/g; then echo wrote; else echo refused; fi >> /seen\n",
    );
    let out = build_local(&ws, &[]);
    assert_eq!(read(out.path(), "seen"), "kept\nrefused\n");
}

#[test]
fn a_cache_mount_starts_from_a_stage_path() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch AS seed\n\
         RUN mkdir -p /deps && echo pinned > /deps/lock\n\
         FROM scratch\n\
         RUN --mount=type=cache,target=/c,from=seed,source=/deps cat /c/lock > /seen; echo more > /c/added\n\
         RUN --mount=type=cache,target=/c,from=seed,source=/deps ls /c > /listed\n",
    );
    let out = build_local(&ws, &[]);
    assert_eq!(read(out.path(), "seen"), "pinned\n");
    // The cache keeps what the first step wrote; the stage itself never changes.
    assert_eq!(read(out.path(), "listed"), "added\nlock\n");
}

#[test]
fn a_context_file_binds_at_a_file_path() {
    let ws = Workspace::new();
    ws.write("go.mod", "module example.com/m\n");
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=bind,source=go.mod,target=/src/go.mod cat /src/go.mod > /seen && ls /src >> /seen\n",
    );
    let out = build_local(&ws, &[]);
    assert_eq!(read(out.path(), "seen"), "module example.com/m\ngo.mod\n");
    // The mount and the directory made for it are not in the layer.
    assert!(!out.path().join("src").exists());
}

#[test]
fn a_stage_sub_path_binds() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch AS build\n\
         RUN mkdir -p /out/bin && echo tool > /out/bin/tool && echo other > /elsewhere\n\
         FROM scratch\n\
         RUN --mount=type=bind,from=build,source=/out/bin,target=/bin2 cat /bin2/tool > /seen && ls /bin2 >> /seen\n\
         RUN --mount=type=bind,from=build,source=/out/bin/tool,target=/one cat /one >> /seen\n",
    );
    let out = build_local(&ws, &[]);
    assert_eq!(read(out.path(), "seen"), "tool\ntool\ntool\n");
}

#[test]
fn a_bind_mount_is_read_only_unless_rw_and_rw_writes_are_discarded() {
    let ws = Workspace::new();
    ws.write("src/a.txt", "a\n");
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=bind,source=src,target=/s if echo x > /s/new 2>/dev/null; then echo wrote; else echo refused; fi > /ro\n\
         RUN --mount=type=bind,source=src,target=/s,rw echo x > /s/new && cat /s/new > /rw\n\
         RUN --mount=type=bind,source=src,target=/s ls /s > /after\n",
    );
    let out = build_local(&ws, &[]);
    assert_eq!(read(out.path(), "ro"), "refused\n");
    assert_eq!(read(out.path(), "rw"), "x\n");
    assert_eq!(read(out.path(), "after"), "a.txt\n");
}

#[test]
fn a_read_only_bind_write_fails_with_erofs() {
    let ws = Workspace::new();
    ws.write("src/a.txt", "a\n");
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=bind,source=src,target=/s touch /s/new\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "Read-only file system");
}

#[test]
fn a_step_sees_buildkits_hostname_and_hosts_never_in_a_layer() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN mkdir /etc && echo '10.0.0.1 image-own' > /etc/hosts\n\
         RUN hostname > /name && cat /etc/hosts > /hosts && cat /etc/hostname > /hostname\n",
    );
    let out = build_local(&ws, &[]);
    assert_eq!(read(out.path(), "name"), "buildkitsandbox\n");
    assert_eq!(
        read(out.path(), "hosts"),
        "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    );
    assert_eq!(read(out.path(), "hostname"), "buildkitsandbox\n");
    // The image's own /etc/hosts is what the image keeps; no /etc/hostname was made.
    assert_eq!(read(out.path(), "etc/hosts"), "10.0.0.1 image-own\n");
    assert!(!out.path().join("etc/hostname").exists());
}

/// Two stages that run at the same time, each with one step holding cache `c` as
/// `sharing` says: `a` writes `/c/x` and reads it back two seconds later, `b` writes it
/// after one second and lists what it found.
fn concurrent_cache_steps(sharing: &str) -> tempfile::TempDir {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        format!(
            "FROM scratch AS a\n\
             RUN --mount=type=cache,id=c,target=/c,sharing={sharing} echo a > /c/x && sleep 2 && cat /c/x > /seen-a\n\
             FROM scratch AS b\n\
             RUN --mount=type=cache,id=c,target=/c,sharing={sharing} sleep 1 && ls /c > /seen-b && echo b > /c/x\n\
             FROM scratch\n\
             COPY --from=a /seen-a /\n\
             COPY --from=b /seen-b /\n"
        ),
    );
    build_local(&ws, &[])
}

#[test]
fn a_locked_cache_mount_waits_for_the_step_holding_it() {
    let out = concurrent_cache_steps("locked");
    // One step waited for the other (either may go first): `a` read its own write, and
    // `b` found the cache empty or as `a` left it, never `a` half way.
    assert_eq!(read(out.path(), "seen-a"), "a\n");
    let seen_b = read(out.path(), "seen-b");
    assert!(seen_b.is_empty() || seen_b == "x\n", "{seen_b:?}");
}

#[test]
fn a_private_cache_mount_in_use_gets_a_fresh_directory() {
    let out = concurrent_cache_steps("private");
    assert_eq!(read(out.path(), "seen-a"), "a\n");
    assert_eq!(read(out.path(), "seen-b"), "");
}

#[test]
fn a_shared_cache_mount_is_one_directory_for_concurrent_steps() {
    let out = concurrent_cache_steps("shared");
    assert_eq!(read(out.path(), "seen-a"), "b\n");
    assert_eq!(read(out.path(), "seen-b"), "x\n");
}

#[test]
fn a_step_without_etc_still_has_buildkits_hostname_and_may_make_etc() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN hostname > /name && mkdir /etc && echo 'root:x:0:0::/root:/bin/sh' > /etc/passwd\n",
    );
    let out = build_local(&ws, &[]);
    assert_eq!(read(out.path(), "name"), "buildkitsandbox\n");
    assert!(out.path().join("etc/passwd").exists());
    assert!(!out.path().join("etc/hosts").exists());
}

/// Steps that lock the same two caches in opposite orders. Before kiln took a step's
/// caches in one global order, `a` could hold `x` while `b` held `y`, each waiting for
/// the other for ever: holders of `x` and `y` make both start waiting at once, so about
/// one pair in two hung. The build must end (the watchdog kills a hung one).
#[test]
fn steps_locking_two_caches_in_opposite_orders_do_not_deadlock() {
    let ws = Workspace::new();
    let lock = |id: &str| format!("--mount=type=cache,id={id},target=/{id},sharing=locked");
    let mut dockerfile = String::new();
    let mut last = String::from("FROM scratch\n");
    for pair in 0..3 {
        let (x, y) = (format!("x{pair}"), format!("y{pair}"));
        for (stage, first, second) in [("a", &x, &y), ("b", &y, &x)] {
            dockerfile += &format!(
                "FROM scratch AS hold-{first}\nRUN {} sleep 1\n\
                 FROM scratch AS {stage}{pair}\nRUN {} {} echo {stage} > /{stage}{pair}\n",
                lock(first),
                lock(first),
                lock(second),
            );
            last += &format!(
                "COPY --from=hold-{first} /etc* /\nCOPY --from={stage}{pair} /{stage}{pair} /\n"
            );
        }
    }
    ws.write("Dockerfile", dockerfile + &last);
    let dest = tempfile::tempdir().unwrap();
    let mut child = ws
        .kiln()
        .args(["build", "--progress", "plain", "-o"])
        .arg(format!("type=local,dest={}", dest.path().display()))
        .arg(ws.context())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the build hung: two steps deadlocked on their cache mounts");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success());
    for pair in 0..3 {
        assert_eq!(read(dest.path(), &format!("a{pair}")), "a\n");
        assert_eq!(read(dest.path(), &format!("b{pair}")), "b\n");
    }
}
