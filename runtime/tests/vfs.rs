//! The path-based `Vfs` API the shell uses (redirections, globbing, `cd`, `test`):
//! mounts merged into listings, busy/read-only errors, devices, determinism.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use kiln_runtime::{Errno, MountTable, OpenOptions, Opened, Zeroizing};

fn vfs() -> (
    std::sync::Arc<kiln_fs::Store>,
    kiln_runtime::SharedTree,
    kiln_runtime::Vfs,
) {
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/etc/os-release", b"ID=kiln\n");
    mkdir_p(&tree, "/app");
    let mut mounts = MountTable::new();
    mounts
        .add_secret(
            "/run/secrets/token",
            Zeroizing::new(b"t0k".to_vec()),
            0o440,
            0,
            10,
        )
        .unwrap();
    mounts.add_tmpfs("/app/tmp", &store).unwrap();
    let vfs = vfs_with(&tree, mounts);
    (store, tree, vfs)
}

fn names(v: &kiln_runtime::Vfs, dir: &str) -> Vec<String> {
    v.read_dir(b"/", dir.as_bytes())
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect()
}

#[test]
fn listings_merge_mounts_sorted() {
    let (_s, _t, v) = vfs();
    assert_eq!(names(&v, "/"), ["app", "dev", "etc", "run"]);
    assert_eq!(names(&v, "/app"), ["tmp"]);
    assert_eq!(names(&v, "/run"), ["secrets"]);
    assert_eq!(names(&v, "/run/secrets"), ["token"]);
    let st = v.stat(b"/", b"/run/secrets/token", true).unwrap();
    assert_eq!((st.mode, st.uid, st.gid, st.size), (0o440, 0, 10, 3));
    assert!(v.stat(b"/app", b"../run/secrets", true).unwrap().is_dir());
    assert_eq!(
        v.canonical_dir(b"/app", b"tmp/../../run/./secrets")
            .unwrap(),
        b"/run/secrets"
    );
}

#[test]
fn mounts_are_busy_and_synthetic_dirs_read_only() {
    let (_s, tree, v) = vfs();
    assert_eq!(v.remove_file(b"/", b"/run/secrets/token"), Err(Errno::BUSY));
    assert_eq!(
        v.rename(b"/", b"/run/secrets/token", b"/", b"/x"),
        Err(Errno::BUSY)
    );
    assert_eq!(v.remove_dir(b"/", b"/run"), Err(Errno::BUSY));
    assert_eq!(v.remove_dir(b"/", b"/app/tmp"), Err(Errno::BUSY));
    assert_eq!(v.mkdir(b"/", b"/run/other", 0o755), Err(Errno::ROFS));
    assert_eq!(
        v.chmod(b"/", b"/run/secrets/token", true, 0o777),
        Err(Errno::ACCES)
    );
    let err = v
        .open(b"/", b"/run/secrets/token", &OpenOptions::write_truncate())
        .unwrap_err();
    assert_eq!(err, Errno::ACCES);
    // tmpfs is writable; cross-mount renames are EXDEV.
    let Opened::File(f) = v
        .open(b"/app", b"tmp/f", &OpenOptions::write_truncate())
        .unwrap()
    else {
        panic!("not a file")
    };
    f.write(b"hello").unwrap();
    assert_eq!(
        v.rename(b"/", b"/app/tmp/f", b"/", b"/app/f"),
        Err(Errno::XDEV)
    );
    assert!(read_file(&tree, "/app/tmp/f").is_none());
    assert_eq!(v.stat(b"/", b"/app/tmp/f", true).unwrap().size, 5);
}

#[test]
fn redirection_modes_and_devices() {
    let (_s, tree, v) = vfs();
    let open = |p: &str, o: OpenOptions| match v.open(b"/app", p.as_bytes(), &o).unwrap() {
        Opened::File(f) => f,
        other => panic!("{other:?}"),
    };
    open("out", OpenOptions::write_truncate())
        .write(b"one\n")
        .unwrap();
    open("out", OpenOptions::append()).write(b"two\n").unwrap();
    assert_eq!(read_file(&tree, "/app/out").unwrap(), b"one\ntwo\n");
    open("out", OpenOptions::write_truncate())
        .write(b"3\n")
        .unwrap();
    assert_eq!(read_file(&tree, "/app/out").unwrap(), b"3\n");
    let st = v.stat(b"/", b"/app/out", true).unwrap();
    assert_eq!(st.mode, 0o644, "umask 022");
    assert_eq!(
        open("/dev/null", OpenOptions::write_truncate()).write(b"x"),
        Ok(1)
    );
    let mut buf = [1u8; 4];
    assert_eq!(
        open("/dev/zero", OpenOptions::read_only()).read(&mut buf),
        Ok(4)
    );
    assert_eq!(buf, [0; 4]);
    assert!(matches!(
        v.open(b"/", b"/dev/stderr", &OpenOptions::append()),
        Ok(Opened::Fd(2))
    ));
    assert!(matches!(
        v.open(b"/", b"/dev/fd/7", &OpenOptions::read_only()),
        Ok(Opened::Fd(7))
    ));
    assert!(matches!(
        v.open(b"/", b"/app", &OpenOptions::write_truncate()),
        Err(Errno::ISDIR)
    ));
    assert!(matches!(
        v.open(b"/", b"/app/out/x", &OpenOptions::read_only()),
        Err(Errno::NOTDIR)
    ));
    let excl = OpenOptions {
        exclusive: true,
        ..OpenOptions::write_truncate()
    };
    assert!(matches!(
        v.open(b"/", b"/app/out", &excl),
        Err(Errno::EXIST)
    ));
}

#[test]
fn same_operations_give_the_same_snapshot() {
    let ids: Vec<_> = (0..2)
        .map(|_| {
            let (_s, tree, v) = vfs();
            v.mkdir(b"/", b"/app/d", 0o777).unwrap();
            v.symlink(b"../etc/os-release", b"/app", b"link").unwrap();
            v.hard_link(b"/", b"/etc/os-release", true, b"/app", b"hard")
                .unwrap();
            v.set_times(
                b"/",
                b"/app/d",
                true,
                None,
                Some(kiln_fs::Timestamp::from_secs(7)),
            )
            .unwrap();
            let snap = tree.lock().snapshot().unwrap();
            snap.id()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}
