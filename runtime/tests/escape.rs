//! Escape attempts: each must end with the expected error and leave the host untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::time::{Duration, Instant};

use common::*;
use kiln_runtime::{MountTable, RuntimeError};

fn base_tree() -> (std::sync::Arc<kiln_fs::Store>, kiln_runtime::SharedTree) {
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/etc/passwd", b"virtual passwd");
    mkdir_p(&tree, "/app");
    (store, tree)
}

fn symlink(tree: &kiln_runtime::SharedTree, dir: &str, name: &str, target: &str) {
    let mut t = tree.lock();
    let root = t.root();
    let d = t
        .resolve(root, dir.as_bytes(), kiln_fs::Follow::Yes)
        .unwrap();
    t.symlink(d, name.as_bytes(), target.as_bytes(), 0, 0)
        .unwrap();
}

#[test]
fn dotdot_storms_and_symlink_escapes_stay_in_the_tree() {
    let (_s, tree) = base_tree();
    symlink(&tree, "/app", "abs", "/etc/passwd");
    symlink(&tree, "/app", "rel", "../../../../../../../../etc/passwd");
    symlink(&tree, "/app", "dirup", "../../../../..");
    symlink(&tree, "/app", "loop1", "loop2");
    symlink(&tree, "/app", "loop2", "loop1");
    symlink(&tree, "/app", "self", "self");
    let vfs = vfs_with(&tree, MountTable::new());
    let storm = format!("{}etc/passwd", "../".repeat(200));
    let out = run(
        &vfs,
        &rust_guest(),
        &[
            "guest",
            "read",
            &storm,
            "/../../../etc/passwd",
            "abs",
            "rel",
            "dirup/etc/passwd",
            "loop1",
            "self",
            "/proc/self/environ",
            "/etc/shadow",
        ],
        "/app",
    );
    let mut lines = out.stdout.lines();
    let expect_virtual = format!("{storm}: ok virtual passwd");
    assert_eq!(lines.next(), Some(expect_virtual.as_str()));
    assert_eq!(
        lines.next(),
        Some("/../../../etc/passwd: ok virtual passwd")
    );
    assert_eq!(lines.next(), Some("abs: ok virtual passwd"));
    assert_eq!(lines.next(), Some("rel: ok virtual passwd"));
    assert_eq!(lines.next(), Some("dirup/etc/passwd: ok virtual passwd"));
    assert_eq!(lines.next(), Some("loop1: FilesystemLoop"));
    assert_eq!(lines.next(), Some("self: FilesystemLoop"));
    assert_eq!(lines.next(), Some("/proc/self/environ: NotFound"));
    assert_eq!(lines.next(), Some("/etc/shadow: NotFound"));
    assert!(
        !out.stdout.contains("root:"),
        "a host file leaked: {}",
        out.stdout
    );
}

#[test]
fn bind_mount_symlinks_cannot_leave_the_host_dir() {
    let host = tempfile::tempdir().unwrap();
    let ctx = host.path().join("ctx");
    let outside = host.path().join("outside");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "HOST SECRET").unwrap();
    std::fs::write(ctx.join("inside.txt"), "inside").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("../outside/secret.txt", ctx.join("out_rel")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), ctx.join("out_abs")).unwrap();
        std::os::unix::fs::symlink("../..", ctx.join("up")).unwrap();
        std::os::unix::fs::symlink("inside.txt", ctx.join("ok_link")).unwrap();
    }
    let (_s, tree) = base_tree();
    let mut mounts = MountTable::new();
    let dir = cap_std::fs::Dir::open_ambient_dir(&ctx, cap_std::ambient_authority()).unwrap();
    mounts.add_bind("/ctx", dir).unwrap();
    let vfs = vfs_with(&tree, mounts);
    let out = run(
        &vfs,
        &rust_guest(),
        &[
            "guest",
            "read",
            "/ctx/inside.txt",
            "/ctx/ok_link",
            "/ctx/out_rel",
            "/ctx/out_abs",
            "/ctx/up/outside/secret.txt",
            "/ctx/../outside/secret.txt",
        ],
        "/",
    );
    assert!(!out.stdout.contains("HOST SECRET"), "{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "/ctx/inside.txt: ok inside");
    if cfg!(unix) {
        assert_eq!(lines[1], "/ctx/ok_link: ok inside");
        for l in &lines[2..] {
            assert!(l.ends_with("NotFound"), "{l}");
        }
    }
    // Writes to a read-only bind fail and the host directory is unchanged.
    let out = run(
        &vfs,
        &rust_guest(),
        &["guest", "write", "/ctx/new.txt", "x"],
        "/",
    );
    assert_eq!(out.stdout, "ReadOnlyFilesystem\n");
    let out = run(
        &vfs,
        &rust_guest(),
        &["guest", "write", "/ctx/inside.txt", "x"],
        "/",
    );
    assert_eq!(out.stdout, "ReadOnlyFilesystem\n");
    let mut names: Vec<_> = std::fs::read_dir(&ctx)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names.len(), if cfg!(unix) { 5 } else { 1 });
    assert_eq!(
        std::fs::read_to_string(ctx.join("inside.txt")).unwrap(),
        "inside"
    );
}

#[test]
fn fd_exhaustion_is_emfile() {
    let (_s, tree) = base_tree();
    write_file(&tree, "/etc/hostname", b"kiln");
    let vfs = vfs_with(&tree, MountTable::new());
    let mut s = spec(module(&rust_guest(), "guest"), &["guest", "fds"], "/");
    s.limits.open_fds = 64;
    let out = run_spec(&vfs, s);
    assert_eq!(out.code(), 0);
    // 64 fds minus stdio and the preopen; EMFILE is errno 33.
    assert_eq!(out.stdout, "opened 60 then Some(33)\n");
}

#[test]
fn infinite_loop_hits_the_deadline() {
    let (_s, tree) = base_tree();
    let vfs = vfs_with(&tree, MountTable::new());
    let _ = rust_guest();
    let mut s = spec(module(&rust_guest(), "guest"), &["guest", "loop"], "/");
    s.limits.deadline = Some(Instant::now() + Duration::from_millis(300));
    let t = Instant::now();
    let out = run_spec(&vfs, s);
    assert!(
        matches!(out.status, Err(RuntimeError::Deadline { .. })),
        "{:?}",
        out.status.map_err(|e| e.to_string())
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    let msg = out.status.unwrap_err().to_string();
    assert!(msg.contains("time limit") && msg.contains("raise"), "{msg}");
}

#[test]
fn a_blocked_pipe_read_also_hits_the_deadline() {
    let (_s, tree) = base_tree();
    let vfs = vfs_with(&tree, MountTable::new());
    let (r, _w) = kiln_runtime::pipe();
    let mut s = spec(module(&rust_guest(), "guest"), &["guest", "cat"], "/");
    s.stdin = kiln_runtime::Stdio::pipe_read(r);
    s.limits.deadline = Some(Instant::now() + Duration::from_millis(200));
    let out = run_spec(&vfs, s);
    assert!(matches!(out.status, Err(RuntimeError::Deadline { .. })));
}

#[test]
fn unbounded_memory_growth_hits_the_memory_limit() {
    let (_s, tree) = base_tree();
    let vfs = vfs_with(&tree, MountTable::new());
    let mut s = spec(module(&rust_guest(), "guest"), &["guest", "grow"], "/");
    s.limits.memory_bytes = 64 << 20;
    let out = run_spec(&vfs, s);
    match out.status {
        Err(RuntimeError::MemoryLimit { limit, .. }) => assert_eq!(limit, 64 << 20),
        other => panic!("{:?}", other.map_err(|e| e.to_string())),
    }
}

#[test]
fn stdout_flood_hits_the_output_limit() {
    let (_s, tree) = base_tree();
    let vfs = vfs_with(&tree, MountTable::new());
    let mut s = spec(module(&rust_guest(), "guest"), &["guest", "flood"], "/");
    s.limits.output_bytes = 1 << 20;
    let out = run_spec(&vfs, s);
    assert!(
        matches!(out.status, Err(RuntimeError::OutputLimit { .. })),
        "{:?}",
        out.status.map_err(|e| e.to_string())
    );
    assert!(out.stdout.len() <= 1 << 20);
}
