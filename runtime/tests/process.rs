//! Processes together: pipelines with backpressure and EPIPE, spawn/wait through
//! `kiln_v1`, the network capability, devices, tmpfs/cache mounts, command resolution
//! and the compiled-module cache.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use kiln_runtime::{
    CaptureBuffer, MountTable, NetworkPolicy, Resolved, Runtime, RuntimeConfig, Stdio, pipe,
};

#[test]
fn yes_into_head_terminates_with_epipe() {
    let store = store();
    let vfs = vfs_with(&new_tree(&store), MountTable::new());
    let guest = rust_guest();
    let (r, w) = pipe();
    let yes_err = CaptureBuffer::new();
    let mut yes = spec(module(&guest, "yes"), &["guest", "yes"], "/");
    yes.stdout = Stdio::PipeWrite(w);
    yes.stderr = Stdio::Capture(yes_err.clone());
    let mut head = spec(module(&guest, "head"), &["guest", "head1"], "/");
    head.stdin = Stdio::pipe_read(r);
    let out = CaptureBuffer::new();
    head.stdout = Stdio::Capture(out.clone());
    let t = Instant::now();
    let (vfs2, rt) = (vfs.clone(), runtime());
    let producer = std::thread::spawn(move || rt.run(&vfs2, yes));
    let status = runtime().run(&vfs, head).unwrap();
    assert!(status.success());
    let yes_status = producer.join().unwrap().unwrap();
    assert_eq!(out.contents(), b"y\n");
    assert_eq!(
        yes_status.code(),
        0,
        "yes saw BrokenPipe: {}",
        String::from_utf8_lossy(&yes_err.contents())
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn pipe_carries_large_data_between_processes() {
    let store = store();
    let tree = new_tree(&store);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    write_file(&tree, "/big", &big);
    let vfs = vfs_with(&tree, MountTable::new());
    let guest = rust_guest();
    let (r, w) = pipe();
    let mut cat1 = spec(module(&guest, "cat"), &["guest", "cat"], "/");
    cat1.stdin = Stdio::File(
        match vfs
            .open(b"/", b"/big", &kiln_runtime::OpenOptions::read_only())
            .unwrap()
        {
            kiln_runtime::Opened::File(f) => f,
            other => panic!("{other:?}"),
        },
    );
    cat1.stdout = Stdio::PipeWrite(w);
    let mut cat2 = spec(module(&guest, "cat"), &["guest", "cat"], "/");
    cat2.stdin = Stdio::pipe_read(r);
    let out = CaptureBuffer::new();
    cat2.stdout = Stdio::Capture(out.clone());
    let (vfs2, rt) = (vfs.clone(), runtime());
    let t = std::thread::spawn(move || rt.run(&vfs2, cat1));
    runtime().run(&vfs, cat2).unwrap();
    t.join().unwrap().unwrap();
    assert!(out.contents() == big);
}

#[test]
fn spawn_and_wait_through_kiln_v1() {
    let store = store();
    let tree = new_tree(&store);
    let guest = rust_guest();
    // The guest finds itself on PATH as a wasm module.
    write_file(&tree, "/usr/bin/guest", &guest);
    {
        let mut t = tree.lock();
        let root = t.root();
        let f = t
            .resolve(root, b"/usr/bin/guest", kiln_fs::Follow::Yes)
            .unwrap();
        t.chmod(f, 0o755).unwrap();
    }
    let vfs = vfs_with(&tree, MountTable::new());
    let mut s = spec(
        module(&guest, "guest"),
        &["guest", "spawn", "guest", "echo", "from", "child"],
        "/",
    );
    s.env = vec![("PATH".into(), "/usr/bin".into())];
    let out = run_spec(&vfs, s.clone());
    assert_eq!(
        out.stdout, "from child\nchild status 0 errno 0\n",
        "{}",
        out.stderr
    );
    // Empty arguments survive the trip (dpkg runs `postinst configure ''`).
    s.argv = ["guest", "spawn", "guest", "echo", "", "a", "", "b", ""]
        .map(String::from)
        .to_vec();
    assert_eq!(
        run_spec(&vfs, s.clone()).stdout,
        " a  b \nchild status 0 errno 0\n"
    );
    s.argv = ["guest", "spawn", "guest", "exit", "7"]
        .map(String::from)
        .to_vec();
    assert_eq!(run_spec(&vfs, s.clone()).stdout, "child status 7 errno 0\n");
    s.argv = ["guest", "spawn", "no-such-command"]
        .map(String::from)
        .to_vec();
    let out = run_spec(&vfs, s);
    assert_eq!(out.stdout, "child status 127 errno 0\n");
    assert_eq!(out.stderr, "no-such-command: command not found\n");
}

#[test]
fn http_without_network_capability_fails_fast() {
    let store = store();
    let vfs = vfs_with(&new_tree(&store), MountTable::new());
    let t = Instant::now();
    let out = run(
        &vfs,
        &rust_guest(),
        &["guest", "http", "https://example.com/"],
        "/",
    );
    assert!(
        out.stdout
            .starts_with("http errno 2 status 0 msg network access is disabled"),
        "{}",
        out.stdout
    );
    let mut s = spec(
        module(&rust_guest(), "guest"),
        &["guest", "http", "http://10.255.255.1/x"],
        "/",
    );
    s.network = NetworkPolicy {
        enabled: true,
        allowed_hosts: vec!["example.com".into()],
    };
    let out = run_spec(&vfs, s);
    assert!(
        out.stdout
            .starts_with("http errno 2 status 0 msg host \"10.255.255.1\" is not in the allowed"),
        "{}",
        out.stdout
    );
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn http_with_network_capability_reaches_a_local_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf);
        sock.write_all(
            b"HTTP/1.1 418 I'm a teapot\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
        )
        .unwrap();
    });
    let store = store();
    let vfs = vfs_with(&new_tree(&store), MountTable::new());
    let mut s = spec(
        module(&rust_guest(), "guest"),
        &["guest", "http", &format!("http://127.0.0.1:{port}/")],
        "/",
    );
    s.network = NetworkPolicy {
        enabled: true,
        allowed_hosts: vec![],
    };
    let out = run_spec(&vfs, s);
    server.join().unwrap();
    assert!(
        out.stdout.starts_with("http errno 0 status 418"),
        "{}",
        out.stdout
    );
}

#[test]
fn devices_tmpfs_and_cache_mounts() {
    let store = store();
    let tree = new_tree(&store);
    let cache = new_tree(&store);
    let mut mounts = MountTable::new();
    mounts.add_tmpfs("/tmp", &store).unwrap();
    mounts.add_cache("/root/.cache", cache.clone()).unwrap();
    let vfs = vfs_with(&tree, mounts);
    let g = rust_guest();
    let out = run(&vfs, &g, &["guest", "write", "/tmp/t", "tmpdata"], "/");
    assert_eq!(out.stdout, "ok\n");
    let out = run(
        &vfs,
        &g,
        &["guest", "write", "/root/.cache/c", "cached"],
        "/",
    );
    assert_eq!(out.stdout, "ok\n");
    let out = run(&vfs, &g, &["guest", "write", "/dev/null", "gone"], "/");
    assert_eq!(out.stdout, "ok\n");
    let out = run(
        &vfs,
        &g,
        &["guest", "read", "/tmp/t", "/root/.cache/c", "/dev/null"],
        "/",
    );
    assert_eq!(
        out.stdout,
        "/tmp/t: ok tmpdata\n/root/.cache/c: ok cached\n/dev/null: ok \n"
    );
    let out = run(&vfs, &g, &["guest", "ls", "/", "/dev", "/root"], "/");
    assert_eq!(
        out.stdout,
        "/: dev,root,tmp\n/dev: fd,null,random,stderr,stdin,stdout,urandom,zero\n/root: .cache\n"
    );
    let out = run(
        &vfs,
        &g,
        &["guest", "write", "/dev/stdout", "to-stdout"],
        "/",
    );
    assert_eq!(out.stdout, "to-stdoutok\n");
    // The cache tree keeps its file; the step's tree has no trace of either mount.
    assert_eq!(read_file(&cache, "/c").as_deref(), Some(&b"cached"[..]));
    assert!(read_file(&tree, "/tmp/t").is_none());
    let snap = tree.lock().snapshot().unwrap();
    let empty = kiln_fs::Snapshot::empty(&store);
    assert!(kiln_fs::diff(&empty, &snap).is_empty());
}

#[test]
fn command_resolution() {
    let store = store();
    let tree = new_tree(&store);
    let guest = rust_guest();
    write_file(&tree, "/usr/local/bin/tool", &guest);
    write_file(&tree, "/bin/ls", b"\x7fELF\x02\x01\x01native");
    write_file(&tree, "/bin/native-only", b"\x7fELF\x02\x01\x01native");
    write_file(&tree, "/bin/script", b"#!/bin/sh -e\necho hi\n");
    write_file(&tree, "/bin/noexec", &guest);
    {
        let mut t = tree.lock();
        let root = t.root();
        for p in [
            "/usr/local/bin/tool",
            "/bin/ls",
            "/bin/native-only",
            "/bin/script",
        ] {
            let f = t.resolve(root, p.as_bytes(), kiln_fs::Follow::Yes).unwrap();
            t.chmod(f, 0o755).unwrap();
        }
    }
    let vfs = vfs_with(&tree, MountTable::new());
    let rt = runtime();
    let path = "/usr/local/bin:/bin";
    assert_eq!(
        rt.resolve_command(&vfs, "tool", path, "/"),
        Resolved::Module("/usr/local/bin/tool".into())
    );
    assert_eq!(
        rt.resolve_command(&vfs, "ls", path, "/"),
        Resolved::Bundled("ls".into())
    );
    assert_eq!(
        rt.resolve_command(&vfs, "/bin/ls", path, "/"),
        Resolved::Bundled("ls".into())
    );
    assert_eq!(
        rt.resolve_command(&vfs, "native-only", path, "/"),
        Resolved::NotWasm {
            path: "/bin/native-only".into()
        }
    );
    assert_eq!(
        rt.resolve_command(&vfs, "script", path, "/"),
        Resolved::Script {
            path: "/bin/script".into(),
            interpreter: "/bin/sh".into(),
            arg: Some("-e".into())
        }
    );
    assert_eq!(
        rt.resolve_command(&vfs, "noexec", path, "/"),
        Resolved::NotFound
    );
    assert_eq!(
        rt.resolve_command(&vfs, "cat", path, "/"),
        Resolved::Bundled("cat".into())
    );
    assert_eq!(
        rt.resolve_command(&vfs, "nothing-here", path, "/"),
        Resolved::NotFound
    );
    assert_eq!(
        rt.resolve_command(&vfs, "./tool", path, "/usr/local/bin"),
        Resolved::Module("/usr/local/bin/./tool".into())
    );
}

/// A script whose interpreter is a native program (Debian's Perl deb-systemd-helper)
/// resolves to the bundled tool of its name; a `#!/bin/sh` one stays a script for kiln's
/// shell even where a bundled tool has the name (Debian's invoke-rc.d).
#[test]
fn scripts_for_native_interpreters_resolve_to_bundled_tools() {
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/usr/bin/perl", b"\x7fELF\x02\x01\x01native");
    write_file(&tree, "/bin/sh", b"\x7fELF\x02\x01\x01native");
    write_file(
        &tree,
        "/usr/bin/deb-systemd-helper",
        b"#!/usr/bin/perl\nuse strict;\n",
    );
    write_file(&tree, "/usr/bin/not-bundled", b"#!/usr/bin/perl\n");
    write_file(&tree, "/usr/sbin/invoke-rc.d", b"#!/bin/sh\nexit 0\n");
    {
        let mut t = tree.lock();
        let root = t.root();
        for p in [
            "/usr/bin/perl",
            "/bin/sh",
            "/usr/bin/deb-systemd-helper",
            "/usr/bin/not-bundled",
            "/usr/sbin/invoke-rc.d",
        ] {
            let f = t.resolve(root, p.as_bytes(), kiln_fs::Follow::Yes).unwrap();
            t.chmod(f, 0o755).unwrap();
        }
    }
    let vfs = vfs_with(&tree, MountTable::new());
    let rt = runtime();
    let path = "/usr/sbin:/usr/bin:/bin";
    assert_eq!(
        rt.resolve_command(&vfs, "deb-systemd-helper", path, "/"),
        Resolved::Bundled("deb-systemd-helper".into())
    );
    assert_eq!(
        rt.resolve_command(&vfs, "not-bundled", path, "/"),
        Resolved::Script {
            path: "/usr/bin/not-bundled".into(),
            interpreter: "/usr/bin/perl".into(),
            arg: None
        }
    );
    assert_eq!(
        rt.resolve_command(&vfs, "invoke-rc.d", path, "/"),
        Resolved::Script {
            path: "/usr/sbin/invoke-rc.d".into(),
            interpreter: "/bin/sh".into(),
            arg: None
        }
    );
}

#[test]
fn compiled_modules_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        realtime_epoch: 0,
    };
    let guest: Arc<[u8]> = c_guest("cat_relative");
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/x", b"x");
    let vfs = vfs_with(&tree, MountTable::new());
    let cold = Runtime::new(config.clone()).unwrap();
    let mut s = spec(module(&guest, "cat"), &["cat", "/x"], "/");
    assert!(cold.run(&vfs, s.clone()).unwrap().success());
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // A new runtime (a new kiln process) deserialises instead of compiling.
    let warm = Runtime::new(config).unwrap();
    let t = Instant::now();
    let out = CaptureBuffer::new();
    s.stdout = Stdio::Capture(out.clone());
    assert!(warm.run(&vfs, s).unwrap().success());
    assert_eq!(out.contents(), b"x");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}
