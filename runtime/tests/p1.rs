//! The p1 surface end to end: a C guest calling every p1 function raw (with error
//! paths), a Rust guest through std, and the working-directory protocol.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use kiln_runtime::MountTable;

#[test]
fn c_guest_calls_every_p1_function() {
    let store = store();
    let tree = new_tree(&store);
    mkdir_p(&tree, "/work");
    let vfs = vfs_with(&tree, MountTable::new());
    let mut s = spec(
        module(&c_guest("p1_all"), "p1_all"),
        &["p1_all", "one", "two"],
        "/",
    );
    s.env = vec![("KILN_TEST".into(), "yes".into())];
    let out = run_spec(&vfs, s);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    assert!(
        out.stdout.contains("done ok="),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(out.code(), 0, "{}", out.stdout);
}

#[test]
fn rust_guest_std_fs() {
    let store = store();
    let tree = new_tree(&store);
    mkdir_p(&tree, "/app");
    let vfs = vfs_with(&tree, MountTable::new());
    let out = run(&vfs, &rust_guest(), &["guest", "std_fs"], "/app");
    assert_eq!(out.code(), 0, "{}{}", out.stdout, out.stderr);
    // SystemTime::now() reads the configured epoch (1234 s), not the host clock.
    assert_eq!(out.stdout, "std_fs ok now=1234\n");
    assert!(read_file(&tree, "/app/a").is_none());
}

/// wasi-libc resolves relative paths against its own cwd, which starts at "/" and cannot
/// be passed through p1; kiln sets PWD and its guests chdir($PWD) first (ABI.md).
#[test]
fn relative_paths_resolve_in_cwd_for_c_and_rust() {
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/app/relative.txt", b"in app\n");
    write_file(&tree, "/relative.txt", b"at root\n");
    let vfs = vfs_with(&tree, MountTable::new());

    let out = run(&vfs, &rust_guest(), &["guest", "cwd"], "/app");
    assert_eq!(out.stdout, "in app\ncwd=/app\n", "{}", out.stderr);
    // Without the chdir, wasi-libc would read /relative.txt: the pitfall this avoids.
    let out = run(&vfs, &rust_guest(), &["guest", "nochdir"], "/app");
    assert_eq!(out.stdout, "at root\n");

    let out = run(
        &vfs,
        &c_guest("cat_relative"),
        &["cat_relative", "relative.txt"],
        "/app",
    );
    assert_eq!(out.stdout, "in app\n", "{}", out.stderr);
    assert_eq!(out.code(), 0);
}

#[test]
fn exit_status_is_reported_not_trapped() {
    let store = store();
    let vfs = vfs_with(&new_tree(&store), MountTable::new());
    for code in [0, 1, 42, 255] {
        let c = code.to_string();
        let out = run(&vfs, &rust_guest(), &["guest", "exit", &c], "/");
        assert_eq!(out.code(), code);
    }
}
